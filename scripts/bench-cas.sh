#!/usr/bin/env bash
# Compare-and-set, and what its protocol changes cost the plain path, side by side in one run
# on loopback:
#
#  (a) GET and SET on one node (MOSTDB_SYNC=os) built from BASE_REF (default: the commit
#      before CAS existed) and on one built from the working tree, alternated (ROUNDS
#      pairs, the order flipping each round): each ratio is new / base over the sums of the runs, in req/s and in
#      the server's CPU time per request. Target: >= 0.97.
#  (b) CAS on a 3-node cluster of the new build, clients on one node: successful CAS/s on
#      distinct keys and on one hot key, with the share of every outcome (applied, compare
#      failed, definite NotMost, indeterminate).
#
# Both builds are release builds; the base one goes to its own worktree and target directory
# (kept in $BASE_DIR for the next run).
#
# Environment:
#   DURATION=10   seconds per scenario       CONNS=64    wrk connections (CAS_CONNS=16 for b)
#   KEYS=10000    keys pre-loaded            PORT=5480   first loopback port used
#   BASE_REF=9616586                         BASE_DIR=/tmp/mostdb-bench-base
#   ROUNDS=3      base/new pairs
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
CAS_CONNS=${CAS_CONNS:-16}
KEYS=${KEYS:-10000}
PORT=${PORT:-5480}
BASE_REF=${BASE_REF:-9616586}
BASE_DIR=${BASE_DIR:-/tmp/mostdb-bench-base}
ROUNDS=${ROUNDS:-3}
HOST=127.0.0.1
# Longest wait for a server to answer after it is started, in tenths of a second.
READY_TENTHS=300
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-bench-cas.XXXXXX")
PIDS=()

log() { printf '%s\n' "$*" >&2; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }

build() {
  log "building the new binary (release)"
  cargo build --release --bin mostdb 2>/dev/null
  if [[ ! -d $BASE_DIR ]]; then
    # A worktree whose directory went (a cleaned /tmp) is still registered: forget it first.
    git worktree prune
    git worktree add --detach "$BASE_DIR" "$BASE_REF" >/dev/null
  fi
  log "building the base binary ($BASE_REF, release)"
  (cd "$BASE_DIR" && git checkout -q --detach "$BASE_REF" && cargo build --release --bin mostdb 2>/dev/null)
}

# wait_ready URL PID NAME
wait_ready() {
  local tries=0
  until curl -sf -o /dev/null --max-time 1 "$1"; do
    if ! kill -0 "$2" 2>/dev/null || ((tries >= READY_TENTHS)); then
      log "$3 did not come up:"
      cat "$WORK/$3.log" >&2
      exit 1
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
}

# node NAME BINARY PORT [ENV...]: starts one node in the background; sets NODE_PID.
node() {
  local name=$1 binary=$2 port=$3
  shift 3
  env MOSTDB_STORE_ROOT="$WORK/$name" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT="$port" \
    MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN "$@" "$binary" >"$WORK/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Writes k0..k{KEYS-1} with the values scripts/wrk-kv.lua expects, over one curl connection.
preload() {
  local port=$1 config="$WORK/preload.curl" i pad ok
  pad=$(printf 'v%.0s' $(seq 56))
  : >"$config"
  for ((i = 0; i < KEYS; i++)); do
    ((i == 0)) || echo next >>"$config"
    printf 'url = "http://%s:%s/mostdb/set"\ndata = "{\\"key\\":\\"k%d\\",\\"value\\":\\"k%d:%s\\"}"\n' \
      "$HOST" "$port" "$i" "$i" "$pad" >>"$config"
  done
  ok=$(curl -s -K "$config" | grep -o '"success":true' | wc -l)
  ((ok == KEYS)) || { log "preload: only $ok of $KEYS sets succeeded"; exit 1; }
}

# CPU time (user + system, in clock ticks) the process PID has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure PID SCRIPT ARGS...: one wrk run; prints "ok_rps cpu_us_per_request" (the server's
# CPU time per successful request, which a shared machine's noise moves far less).
measure() {
  local pid=$1 script=$2 t0 t1 out rps ok
  shift 2
  t0=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$script" "http://$HOST:$PORT" -- "$@")
  t1=$(cpu_ticks "$pid")
  rps=$(grep -oE 'ok_rps=[0-9]+' <<<"$out" | cut -d= -f2)
  ok=$(grep -oE ' ok=[0-9]+' <<<"$out" | cut -d= -f2)
  echo "$rps $(((t1 - t0) * 1000000 / $(getconf CLK_TCK) / (ok > 0 ? ok : 1)))"
}

# plain NAME BINARY: GET then SET on one fresh node; prints "NAME get_rps get_cpu_us set_rps
# set_cpu_us".
plain() {
  local name=$1 binary=$2 get set
  node "$name" "$binary" "$PORT"
  wait_ready "http://$HOST:$PORT/readyz" "$NODE_PID" "$name"
  preload "$PORT"
  get=$(measure "$NODE_PID" scripts/wrk-get.lua "$KEYS")
  set=$(measure "$NODE_PID" scripts/wrk-set.lua "$name")
  stop "$NODE_PID"
  rm -rf "${WORK:?}/$name"
  echo "$name $get $set"
}

cluster_cas() {
  local urls="http://$HOST:$((PORT + 1));http://$HOST:$((PORT + 2));http://$HOST:$((PORT + 3))" i
  for i in 1 2 3; do
    node "c$i" target/release/mostdb $((PORT + i)) MOSTDB_THREADS=1 \
      MOSTDB_SERVER_URL="http://$HOST:$((PORT + i))" MOSTDB_CLUSTER_URLS="$urls"
  done
  for i in 1 2 3; do wait_ready "http://$HOST:$((PORT + i))/readyz" "${PIDS[-1]}" "c$i"; done
  preload $((PORT + 1))
  for mode in distinct hot; do
    wrk -t1 -c"$CAS_CONNS" -d"${DURATION}s" -s scripts/wrk-cas.lua "http://$HOST:$((PORT + 1))" \
      -- "$mode" "$KEYS" | grep '^MOSTDB_CAS' | sed "s/^MOSTDB_CAS/cas $mode:/"
  done
}

build
log "plain path: base ($BASE_REF) and new, alternated"
results=()
# Alternated, and the order flips every round, so that neither build always runs on a machine
# the other has just warmed.
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then
    results+=("$(plain base-$round "$BASE_DIR/target/release/mostdb")")
    results+=("$(plain new-$round target/release/mostdb)")
  else
    results+=("$(plain new-$round target/release/mostdb)")
    results+=("$(plain base-$round "$BASE_DIR/target/release/mostdb")")
  fi
done
printf '%s\n' "${results[@]}"
printf '%s\n' "${results[@]}" | awk '
  /^base/ { bg += $2; bgc += $3; bs += $4; bsc += $5 }
  /^new/ { ng += $2; ngc += $3; ns += $4; nsc += $5 }
  END {
    printf "ratio new/base, req/s:           GET %.3f  SET %.3f (target >= 0.97)\n", ng / bg, ns / bs
    printf "ratio base/new, CPU per request: GET %.3f  SET %.3f (above 1: new costs less)\n", bgc / ngc, bsc / nsc
  }'
log "CAS on a 3-node cluster (MOSTDB_THREADS=1 per node), $CAS_CONNS connections to one node"
cluster_cas
