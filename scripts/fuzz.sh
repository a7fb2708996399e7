#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz (one per parser that reads client or peer bytes,
# DESIGN §14): `scripts/fuzz.sh [target|all] [seconds]`, each target for `seconds` (default 60),
# one after the other. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
# Targets: http_head, chunked, json_body, peer_frame, handshake.
# Inputs:  tests/fuzz/seeds/<target>/ (committed, small; make_seeds.py writes them) plus
#          tests/fuzz/corpus/<target>/, where libFuzzer keeps what it found (not committed).
# Crashes: tests/fuzz/artifacts/<target>/; replay one with
#          cargo +nightly fuzz run --fuzz-dir tests/fuzz <target> <file>
#          and keep it as a regression test beside the parser's unit tests.
#
# Environment: FUZZ_ARGS extra libFuzzer flags (e.g. "-jobs=2"); the exit status is the first
# failing target's.
set -euo pipefail

cd "$(dirname "$0")/.."
TARGETS=(http_head chunked json_body peer_frame handshake)
TARGET=${1:-all}
SECONDS_EACH=${2:-60}
# Per input: anything slower than this is a hang. Memory: far above what any parser may use.
INPUT_TIMEOUT_S=10
RSS_LIMIT_MB=2048

# Longest input per target: past every size limit a target can reach (head: HEAD_BYTES_MAX).
max_len() {
    case "$1" in
        http_head) echo 17408 ;;
        chunked) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

run_one() {
    local target=$1
    mkdir -p "tests/fuzz/corpus/$target"
    echo "== fuzz $target for ${SECONDS_EACH}s ($(date -u +%FT%TZ))"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" \
        "tests/fuzz/corpus/$target" "tests/fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -timeout="$INPUT_TIMEOUT_S" \
        -rss_limit_mb="$RSS_LIMIT_MB" -max_len="$(max_len "$target")" \
        -print_final_stats=1 ${FUZZ_ARGS:-}
}

case "$TARGET" in
    all)
        status=0
        for t in "${TARGETS[@]}"; do
            rc=0
            run_one "$t" || rc=$?
            if [ "$status" -eq 0 ]; then status=$rc; fi
        done
        exit "$status"
        ;;
    http_head | chunked | json_body | peer_frame | handshake) run_one "$TARGET" ;;
    *)
        echo "usage: scripts/fuzz.sh [all|${TARGETS[*]// /|}] [seconds]" >&2
        exit 2
        ;;
esac
