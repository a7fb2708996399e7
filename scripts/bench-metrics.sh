#!/usr/bin/env bash
# What the operations surface costs, as ratios from one run on loopback (helpers from
# scripts/bench.sh; the same environment variables: DURATION, CONNS, WRK_THREADS, KEYS, PIN,
# PORT, BENCH_TMPDIR):
#   (a) GET and SET with the per-request counting compiled out (`--features no-request-metrics`)
#   (b) the same with it compiled in (the default build), nobody scraping
#   (c) the default build, /metrics scraped every SCRAPE_INTERVAL_S seconds (default 1)
#   (d) the default build with the audit log on (MOSTDB_AUDIT_LOG in the bench's directory)
# between two runs of the ceiling (mostdb-ceiling), with MOSTDB_SYNC=os on one store.
# Prints each row's ratio to the ceiling, then b/a (counting compiled in), c/b (scraping) and
# d/b (the audit log; reads are not audited, so GET shows only noise).
#
#   scripts/bench-metrics.sh              # or e.g. DURATION=20 PIN=1 scripts/bench-metrics.sh
set -euo pipefail

# shellcheck source=scripts/bench.sh
source "$(dirname "$0")/bench.sh"

SCRAPE_INTERVAL_S=${SCRAPE_INTERVAL_S:-1}

# start_node_bin NAME BINARY: the node of bench.sh's start_node (MOSTDB_SYNC=os) from BINARY.
start_node_bin() {
  start "$1" "$((PORT + 1))" "http://$HOST:$((PORT + 1))/readyz" GET -- \
    env MOSTDB_STORE_ROOT="$WORK/store" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + 1)) \
    MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN MOSTDB_AUDIT_LOG="${AUDIT_LOG:-}" "$2"
}

# Scrapes /metrics every SCRAPE_INTERVAL_S seconds until killed. Sets SCRAPER_PID.
start_scraper() {
  (
    while sleep "$SCRAPE_INTERVAL_S"; do
      curl -s -o /dev/null --max-time 5 "http://$HOST:$((PORT + 1))/metrics" || true
    done
  ) &
  SCRAPER_PID=$!
  PIDS+=("$SCRAPER_PID")
}

# get_and_set PREFIX BINARY [scrape]: GET and SET rows of one node run.
get_and_set() {
  local prefix=$1 binary=$2 scrape=${3:-}
  start_node_bin "node-$prefix" "$binary"
  [[ -s $WORK/preloaded ]] || { preload "$((PORT + 1))"; echo yes >"$WORK/preloaded"; }
  [[ -z $scrape ]] || start_scraper
  run_wrk "get_$prefix" "$((PORT + 1))" wrk-get.lua "$KEYS"
  run_wrk "set_$prefix" "$((PORT + 1))" wrk-set.lua "$prefix-$$-$(date +%s)"
  [[ -z $scrape ]] || stop_pid "$SCRAPER_PID"
  stop_pid "$SERVER_PID"
}

main_metrics() {
  install_wrk
  local bare="$WORK/mostdb-no-request-metrics" rows=""
  cargo build --release --bin mostdb --features no-request-metrics
  cp "$TARGET_DIR/release/mostdb" "$bare"
  cargo build --release --bins
  log "wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, $KEYS keys, PIN=$PIN, scrape every ${SCRAPE_INTERVAL_S}s"
  rows+=$(run_ceiling ceiling)$'\n'
  rows+=$(get_and_set compiled_out "$bare")$'\n'
  rows+=$(get_and_set counted "$TARGET_DIR/release/mostdb")$'\n'
  rows+=$(get_and_set scraped "$TARGET_DIR/release/mostdb" scrape)$'\n'
  rows+=$(AUDIT_LOG="$WORK/audit.log" get_and_set audited "$TARGET_DIR/release/mostdb")$'\n'
  rows+=$(run_ceiling ceiling_again)$'\n'
  echo
  print_table "${rows%$'\n'}" get_counted 0.8 set_counted 0.6
  awk '{ rps[$1] = $2; cpu[$1] = $6 }
    END {
      n = split("get set", ops, " ")
      for (i = 1; i <= n; i++) {
        o = ops[i]
        printf "%s: counting compiled in %.3fx of compiled out (cpu/req %.3fx); scraped every '"$SCRAPE_INTERVAL_S"'s %.3fx of not scraped (cpu/req %.3fx); audit log on %.3fx of off (cpu/req %.3fx)\n",
          toupper(o), rps[o "_counted"] / rps[o "_compiled_out"], cpu[o "_counted"] / cpu[o "_compiled_out"],
          rps[o "_scraped"] / rps[o "_counted"], cpu[o "_scraped"] / cpu[o "_counted"],
          rps[o "_audited"] / rps[o "_counted"], cpu[o "_audited"] / cpu[o "_counted"]
      }
    }' <<<"${rows%$'\n'}"
}

main_metrics "$@"
