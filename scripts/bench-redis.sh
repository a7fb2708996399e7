#!/usr/bin/env bash
# mostdb's Redis port against redis-server (Debian's), both loaded by redis-benchmark on this
# machine, in one run (issue 13's benchmark; DESIGN §13):
#
#   redis-benchmark -t set,get -r 100000 -n N -c 50 [-P 16] --csv
#
# Setups (each a pair, mostdb against the Redis configuration beside it):
#   1node      one mostdb node (MOSTDB_SYNC=os)     vs redis-server --appendonly no --save ''
#   1node-1thread  one mostdb node with MOSTDB_THREADS=1 vs redis-server --appendonly no
#   1node-aof  the same mostdb node                 vs redis-server --appendonly yes --appendfsync everysec
#   3nodes     three mostdb nodes on loopback, load on one (MOSTDB_THREADS=1 each)
#                                                  vs redis-server --appendonly no
#   always     one mostdb node, MOSTDB_SYNC=always  vs redis-server --appendonly yes --appendfsync always
# Each pair runs ROUNDS times, alternating which goes first; a figure is the median of its
# runs, with the spread (min-max); the ratio is mostdb's median over Redis's. Only the
# requests redis-benchmark counts as answered count (it stops on an error reply).
#
# Environment: ROUNDS=3  N=200000  NP=1000000 (with -P 16)  CLIENTS=50  SETUPS="1node 1node-aof 3nodes always"
#              PORT=5680 (mostdb HTTP; RESP on PORT+100…)  REDIS_PORT=6680
#              ONE_NODE_THREADS= (MOSTDB_THREADS of a single node; default: the node's, one
#              per core, one on a machine of 1-2 cores)
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
NP=${NP:-1000000}
CLIENTS=${CLIENTS:-50}
SETUPS=${SETUPS:-1node 1node-aof 3nodes always}
PORT=${PORT:-5680}
REDIS_PORT=${REDIS_PORT:-6680}
HOST=127.0.0.1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-bench-redis.XXXXXX")
PIDS=()

log() { printf '%s\n' "$*" >&2; }
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null ||
  { apt-get update >/dev/null && apt-get install -y redis-tools redis-server >/dev/null; }
# Debian's package starts a redis-server on 6379; this script starts its own.

log "building (release)"
cargo build --release --bin mostdb 2>/dev/null

# start_mostdb NODES SYNC THREADS: the nodes (THREADS each; empty: one per core), RESP on
# PORT+100+i; waits until each is ready.
start_mostdb() {
  local nodes=$1 sync=$2 threads=$3 urls="" i
  for i in $(seq "$nodes"); do urls+="${urls:+;}http://$HOST:$((PORT + i))"; done
  for i in $(seq "$nodes"); do
    env MOSTDB_STORE_ROOT="$WORK/m$nodes-$sync-$i" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + i)) \
      MOSTDB_RESP_PORT=$((PORT + 100 + i)) MOSTDB_SYNC="$sync" MOSTDB_LOG_LEVEL=WARN \
      ${threads:+MOSTDB_THREADS=$threads} MOSTDB_SERVER_URL="http://$HOST:$((PORT + i))" \
      MOSTDB_CLUSTER_URLS="$([[ $nodes -gt 1 ]] && echo "$urls")" target/release/mostdb \
      >"$WORK/m$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq "$nodes"); do
    for _ in $(seq 300); do curl -sf -o /dev/null "http://$HOST:$((PORT + i))/readyz" && break; sleep 0.1; done
  done
}

# start_redis ARGS…: a redis-server on REDIS_PORT in its own directory.
start_redis() {
  rm -rf "$WORK/redis"
  mkdir -p "$WORK/redis"
  redis-server --port "$REDIS_PORT" --bind $HOST --dir "$WORK/redis" --save '' "$@" \
    >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break; sleep 0.05; done
}

# bench PORT PIPELINE: "SET rps p50 p99 GET rps p50 p99" from one redis-benchmark run.
bench() {
  local port=$1 pipeline=$2 n=$N
  [[ $pipeline -gt 1 ]] && n=$NP
  redis-benchmark -h $HOST -p "$port" -t set,get -r 100000 -n "$n" -c "$CLIENTS" -P "$pipeline" --csv 2>/dev/null |
    python3 -c '
import csv, sys
rows = {r["test"]: r for r in csv.DictReader(sys.stdin)}
fields = ("rps", "p50_latency_ms", "p99_latency_ms")
print(" ".join(" ".join([t] + [rows[t][f] for f in fields]) for t in ("SET", "GET")))'
}

RESULTS="$WORK/results"
: >"$RESULTS"
for setup in $SETUPS; do
  case $setup in
    1node) nodes=1 sync=os threads=${ONE_NODE_THREADS:-} redis_args=(--appendonly no) ;;
    1node-1thread) nodes=1 sync=os threads=1 redis_args=(--appendonly no) ;;
    1node-aof) nodes=1 sync=os threads=${ONE_NODE_THREADS:-} redis_args=(--appendonly yes --appendfsync everysec) ;;
    3nodes) nodes=3 sync=os threads=1 redis_args=(--appendonly no) ;;
    always) nodes=1 sync=always threads=${ONE_NODE_THREADS:-} redis_args=(--appendonly yes --appendfsync always) ;;
    *) log "unknown setup $setup"; exit 2 ;;
  esac
  for pipeline in 1 16; do
    for round in $(seq "$ROUNDS"); do
      order=(mostdb redis)
      [[ $((round % 2)) == 0 ]] && order=(redis mostdb)
      for who in "${order[@]}"; do
        if [[ $who == mostdb ]]; then
          start_mostdb "$nodes" "$sync" "$threads"
          line=$(bench $((PORT + 101)) "$pipeline")
        else
          start_redis "${redis_args[@]}"
          line=$(bench "$REDIS_PORT" "$pipeline")
        fi
        stop_all
        log "$setup -P $pipeline round $round $who: $line"
        echo "$setup $pipeline $who $line" >>"$RESULTS"
      done
    done
  done
done

python3 - "$RESULTS" "$N" "$NP" "$CLIENTS" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    setup, pipeline, who, *f = line.split()
    for i, test in ((0, "SET"), (4, "GET")):
        assert f[i] == test
        runs[(setup, pipeline, test, who)].append(tuple(float(x) for x in f[i + 1:i + 4]))
def fig(rs, k):
    vals = sorted(r[k] for r in rs)
    return statistics.median(vals), vals[0], vals[-1]
print("| setup | -P | test | mostdb req/s (spread) | redis req/s (spread) | ratio | mostdb p50 / p99 ms | redis p50 / p99 ms |")
print("|---|---|---|---|---|---|---|---|")
keys = sorted({k[:3] for k in runs}, key=lambda k: (k[0], int(k[1]), k[2] != "SET"))
for setup, pipeline, test in keys:
    m, r = runs[(setup, pipeline, test, "mostdb")], runs[(setup, pipeline, test, "redis")]
    (mr, mlo, mhi), (rr, rlo, rhi) = fig(m, 0), fig(r, 0)
    print(f"| {setup} | {pipeline} | {test} | {mr:,.0f} ({mlo:,.0f}-{mhi:,.0f}) | {rr:,.0f} ({rlo:,.0f}-{rhi:,.0f}) | "
          f"{mr / rr:.2f}x | {fig(m, 1)[0]:.2f} / {fig(m, 2)[0]:.2f} | {fig(r, 1)[0]:.2f} / {fig(r, 2)[0]:.2f} |")
n, np_, clients = sys.argv[2:5]
print(f"\n{len(m)} runs per figure (median, min-max); redis-benchmark -t set,get -r 100000 -c {clients}, "
      f"-n {n} (-n {np_} with -P 16).")
PY
