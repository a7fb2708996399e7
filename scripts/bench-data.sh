#!/usr/bin/env bash
# Reading many keys (DESIGN §11), measured on a 3-node cluster on loopback (release build,
# MOSTDB_THREADS=1 per node, MOSTDB_SYNC=os):
#
#  (a) listing throughput: every key of LIST_KEYS (default 1,000,000) listed page by page
#      (limit 1000) through one node, majority and local, in keys/s;
#  (b) what a running listing and 1,000 idle watches cost GET and SET on that node: wrk runs
#      side by side in one script, alternated with a baseline (ROUNDS pairs per load, the order
#      flipping each round); each ratio is loaded / baseline over the sums, in req/s. The
#      listing load is one client listing the whole key space in a loop through the same node;
#      the watch load is WATCHERS long polls (wait_ms=300000) on keys nobody writes; the
#      prefix-watch load is one prefix watch (its change feed records every write).
#
# Environment: LIST_KEYS=1000000  KEYS=10000 (for wrk)  DURATION=8  CONNS=32  ROUNDS=2
#              WATCHERS=1000  PORT=5580  LOADS="list watch prefix-watch"
set -euo pipefail

cd "$(dirname "$0")/.."
LIST_KEYS=${LIST_KEYS:-1000000}
KEYS=${KEYS:-10000}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-2}
WATCHERS=${WATCHERS:-1000}
PORT=${PORT:-5580}
HOST=127.0.0.1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-bench-data.XXXXXX")
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

log "building (release)"
cargo build --release --bin mostdb 2>/dev/null
urls="http://$HOST:$((PORT + 1));http://$HOST:$((PORT + 2));http://$HOST:$((PORT + 3))"
for i in 1 2 3; do
  env MOSTDB_STORE_ROOT="$WORK/n$i" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + i)) \
    MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN MOSTDB_THREADS=1 MOSTDB_SERVER_URL="http://$HOST:$((PORT + i))" \
    MOSTDB_CLUSTER_URLS="$urls" MOSTDB_MAX_CONNECTIONS_PER_SOURCE=4096 target/release/mostdb >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 300); do curl -sf -o /dev/null "http://$HOST:$((PORT + i))/readyz" && break; sleep 0.1; done
done
NODE=http://$HOST:$((PORT + 1))

log "loading $LIST_KEYS keys (p/…) and $KEYS keys for wrk (k…)"
python3 - "$HOST" $((PORT + 1)) "$LIST_KEYS" "$KEYS" <<'PY'
import http.client, json, sys
host, port, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = http.client.HTTPConnection(host, port)
pad = "v" * 56
def batch(ops):
    c.request("POST", "/mostdb/batch", json.dumps({"ops": ops}))
    body = c.getresponse().read()
    assert b"NotMost" not in body, body[:200]
ops = []
for i in range(n):
    ops.append({"op": "set", "key": f"p/{i:08d}", "value": f"value-{i}"})
    if len(ops) == 128:
        batch(ops); ops = []
for i in range(k):
    ops.append({"op": "set", "key": f"k{i}", "value": f"k{i}:{pad}"})
    if len(ops) == 128:
        batch(ops); ops = []
if ops:
    batch(ops)
PY

log "(a) listing $LIST_KEYS keys, pages of 1000"
python3 - "$HOST" $((PORT + 1)) "$LIST_KEYS" <<'PY'
import http.client, json, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for mode in ("majority", "local"):
    c = http.client.HTTPConnection(host, port)
    cursor, seen, t0 = None, 0, time.time()
    while True:
        path = f"/mostdb/list?prefix=p/&limit=1000&consistency={mode}"
        if cursor:
            path += f"&cursor={cursor}"
        c.request("GET", path)
        r = json.loads(c.getresponse().read())["result"]
        seen += len(r["items"])
        if not r["more"]:
            break
        cursor = r["cursor"]
    dt = time.time() - t0
    assert seen == n, (mode, seen, n)
    print(f"list {mode}: {seen} keys in {dt:.1f} s = {seen / dt:.0f} keys/s")
PY

# measure SCRIPT ARGS...: ok req/s of one wrk run against the first node.
measure() {
  local script=$1
  shift
  wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$script" "$NODE" -- "$@" | grep -oE 'ok_rps=[0-9]+' | cut -d= -f2
}

# Background loads: start_load NAME sets LOAD_PID.
start_load() {
  case $1 in
    list)
      python3 - "$HOST" $((PORT + 1)) <<'PY' &
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]))
while True:
    cursor = None
    while True:
        path = "/mostdb/list?prefix=p/&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        c.request("GET", path)
        r = json.loads(c.getresponse().read())["result"]
        if not r["more"]:
            break
        cursor = r["cursor"]
PY
      ;;
    prefix-watch)
      # One prefix watch on a prefix nobody writes, re-polled with its cursor: the change
      # feed records every write the node stores (its mutex on every write).
      python3 - "$HOST" $((PORT + 1)) <<'PY' &
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]))
cursor = None
while True:
    path = "/mostdb/watch?prefix=quiet/&wait_ms=60000" + (f"&cursor={cursor}" if cursor else "")
    c.request("GET", path)
    cursor = json.loads(c.getresponse().read())["result"]["cursor"]
PY
      ;;
    watch)
      python3 - "$HOST" $((PORT + 1)) "$WATCHERS" <<'PY' &
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection((host, port))
    s.sendall(f"GET /mostdb/watch?key=quiet/{i}&wait_ms=300000 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    socks.append(s)
time.sleep(3600)
PY
      ;;
  esac
  LOAD_PID=$!
  sleep 2
}

results=()
for load in ${LOADS:-list watch prefix-watch}; do
  for ((round = 1; round <= ROUNDS; round++)); do
    for phase in $( ((round % 2)) && echo "base $load" || echo "$load base"); do
      LOAD_PID=
      [[ $phase == base ]] || start_load "$phase"
      get=$(measure scripts/wrk-get.lua "$KEYS")
      set=$(measure scripts/wrk-set.lua "bench-$load-$round-$phase")
      [[ -z $LOAD_PID ]] || { kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; }
      results+=("$load $phase $get $set")
      log "$load round $round $phase: GET $get/s SET $set/s"
    done
  done
done
printf '%s\n' "${results[@]}" | awk '
  $1 == $2 { lg[$1] += $3; ls[$1] += $4 }
  $2 == "base" { bg[$1] += $3; bs[$1] += $4 }
  END {
    for (l in lg) printf "with %s / without, req/s: GET %.3f  SET %.3f\n", l, lg[l] / bg[l], ls[l] / bs[l]
  }'
