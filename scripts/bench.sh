#!/usr/bin/env bash
# Whole-server load benchmark on loopback, every figure a ratio to a ceiling measured in the
# same run: (a) mostdb-ceiling (mostdb's runtime and HTTP layer answering a fixed body; run
# first and last, the baseline is the mean of both),
# (b) GET and (c) SET on one mostdb node with MOSTDB_SYNC=os, (d) the same over TLS (same
# store, MOSTDB_TLS_CERT/KEY from a throwaway CA made with openssl; wrk speaks https and keeps
# its connections, so this is the cost of encryption, not of handshakes), (e) GET and SET with
# MOSTDB_SYNC=always. wrk counts only successful answers (scripts/wrk-*.lua), the same way
# for the ceiling. Targets: GET >= 0.8x and SET >= 0.6x of the ceiling with MOSTDB_SYNC=os.
#
# `scripts/bench.sh cluster` measures a 3-node cluster on this machine instead: GET and SET
# against one node (MOSTDB_SYNC=os) beside the same ceiling. Targets: GET >= 0.3x and
# SET >= 0.25x (all three nodes and wrk share the machine's cores).
#
# Environment:
#   DURATION=10      seconds per scenario        CONNS=64        wrk connections
#   WRK_THREADS=1    wrk threads                 KEYS=10000      keys pre-loaded for GET
#   PIN=0            1: server on CPUs 0..n-2, wrk on the last CPU (taskset)
#   MOSTDB_THREADS   server threads (default: one per core, or per server CPU with PIN=1)
#   PORT=5380        first of the loopback ports used (ceiling, then the node or nodes)
#   TLS=1            0: skip the TLS rows (they also need the openssl CLI)
#   NODE_THREADS=1   cluster mode: threads of each node
#   BENCH_TMPDIR     where the node's temporary store root goes (default $TMPDIR or /tmp;
#                    must not be tmpfs, where fsync is free)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
KEYS=${KEYS:-10000}
PIN=${PIN:-0}
PORT=${PORT:-5380}
TLS=${TLS:-1}
# curl options for probing a TLS node (set once its certificates exist).
CURL_TLS=()
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
HOST=127.0.0.1
# Longest wait for a server to answer after it is started.
READY_TIMEOUT_S=30
# Longest wait for a server to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S=10

PIDS=()
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/mostdb-bench.XXXXXX")

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }

install_wrk() {
  command -v wrk >/dev/null && return
  log "wrk not found; installing it with apt-get"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
}

# CPU lists for PIN=1: the server gets all CPUs but the last, wrk the last one.
cpus=$(nproc)
if [[ $PIN == 1 && $cpus -ge 2 ]]; then
  SERVER_RUN=(taskset -c "0-$((cpus - 2))")
  WRK_RUN=(taskset -c "$((cpus - 1))")
  export MOSTDB_THREADS=${MOSTDB_THREADS:-$((cpus - 1))}
else
  SERVER_RUN=()
  WRK_RUN=()
fi

stop_pid() {
  local pid=$1 waited=0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < STOP_TIMEOUT_S * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start NAME PORT PROBE_URL PROBE_METHOD -- COMMAND...: starts a server in the background,
# waits until PROBE_URL answers 200. Sets SERVER_PID.
start() {
  local name=$1 port=$2 url=$3 method=$4
  shift 5
  if curl -s -o /dev/null --max-time 1 "http://$HOST:$port/"; then
    log "port $port already answers: stop whatever listens there (SO_REUSEPORT would share it)"
    exit 1
  fi
  "${SERVER_RUN[@]}" "$@" >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local tries=0
  until curl -sf -o /dev/null --max-time 1 "${CURL_TLS[@]}" -X "$method" "$url"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null || ((tries >= READY_TIMEOUT_S * 10)); then
      log "$name did not come up; its log:"
      cat "$WORK/$name.log" >&2
      exit 1
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
}

start_node() {
  local name=$1 sync=$2
  start "$name" "$((PORT + 1))" "http://$HOST:$((PORT + 1))/readyz" GET -- \
    env MOSTDB_STORE_ROOT="$WORK/store" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + 1)) \
    MOSTDB_SYNC="$sync" MOSTDB_LOG_LEVEL=WARN "$TARGET_DIR/release/mostdb"
}

# A throwaway CA and a P-256 certificate for $HOST, in $WORK/tls.
make_certs() {
  local d="$WORK/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=bench-ca" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$HOST" \
    -keyout "$d/node.key" -out "$d/node.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$HOST" >"$d/ext.cnf"
  openssl x509 -req -in "$d/node.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 1 -extfile "$d/ext.cnf" -out "$d/node.pem" 2>/dev/null
  CURL_TLS=(--cacert "$d/ca.pem")
}

# The node of start_node, with MOSTDB_SYNC=os and TLS on (https:// on the same port).
start_node_tls() {
  start "$1" "$((PORT + 1))" "https://$HOST:$((PORT + 1))/readyz" GET -- \
    env MOSTDB_STORE_ROOT="$WORK/store" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + 1)) \
    MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN MOSTDB_TLS_CERT="$WORK/tls/node.pem" \
    MOSTDB_TLS_KEY="$WORK/tls/node.key" "$TARGET_DIR/release/mostdb"
}

# Writes k0..k{KEYS-1} with the values scripts/wrk-kv.lua expects, over one curl connection.
preload() {
  local port=$1 config="$WORK/preload.curl" i key pad
  pad=$(printf 'v%.0s' $(seq 56))
  : >"$config"
  for ((i = 0; i < KEYS; i++)); do
    key="k$i"
    ((i == 0)) || echo next >>"$config"
    printf 'url = "http://%s:%s/mostdb/set"\nheader = "Content-Type: application/json"\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s:%s\\"}"\n' \
      "$HOST" "$port" "$key" "$key" "$pad" >>"$config"
  done
  local ok
  ok=$(curl -s -K "$config" | grep -o '"success":true' | wc -l)
  if ((ok != KEYS)); then
    log "preload: only $ok of $KEYS sets succeeded"
    exit 1
  fi
}

# CPU time (user + system, in clock ticks) the process PID has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run_wrk SCENARIO PORT SCRIPT ARGS...: prints "scenario ok_rps p50_us p99_us bad cpu_us",
# cpu_us being the server's CPU time per request (all requests), which the noise of a shared
# machine moves far less than req/s; "-" when CPU_PID=none (a cluster: three processes).
# SCHEME=https for a TLS node.
run_wrk() {
  local scenario=$1 port=$2 script=$3
  shift 3
  local out line pid=${CPU_PID:-$SERVER_PID} t0=0 t1=0 cpu=-
  [[ $pid == none ]] || t0=$(cpu_ticks "$pid")
  out=$("${WRK_RUN[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s "$REPO/scripts/$script" "${SCHEME:-http}://$HOST:$port" -- "$@")
  [[ $pid == none ]] || t1=$(cpu_ticks "$pid")
  line=$(grep '^MOSTDB_BENCH ' <<<"$out") || { log "wrk printed no result:"; log "$out"; exit 1; }
  field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  if [[ $pid != none ]]; then
    cpu=$(awk -v t=$((t1 - t0)) -v r="$(field requests)" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f", (r > 0 ? t * 1e6 / hz / r : 0) }')
  fi
  echo "$scenario $(field ok_rps) $(field p50_us) $(field p99_us) $(field bad) $cpu"
  log "  $scenario: $line"
}

# The baseline is the mean of the two ceiling runs (first and last), so that drift of a
# shared machine during the run shows instead of skewing every ratio one way.
# print_table ROWS [GET_SCENARIO GET_TARGET SET_SCENARIO SET_TARGET]
print_table() {
  awk -v gname="${2:-get_sync_os}" -v gmin="${3:-0.8}" -v sname="${4:-set_sync_os}" -v smin="${5:-0.6}" '
    { name[NR] = $1; rps[NR] = $2; p50[NR] = $3; p99[NR] = $4; bad[NR] = $5; cpu[NR] = $6 }
    $1 ~ /^ceiling/ { ceil_sum += $2; ceil_n++; ceil[ceil_n] = $2 }
    END {
      base = ceil_sum / ceil_n
      for (i = 1; i <= NR; i++)
        printf "%-26s %12d %9.2f %9.2f %8d %7.2fx %10s\n", name[i], rps[i], p50[i] / 1000, p99[i] / 1000, bad[i], rps[i] / base, cpu[i]
      for (i = 1; i <= NR; i++) {
        if (name[i] == gname) get = rps[i] / base
        if (name[i] == sname) set = rps[i] / base
      }
      printf "\nratio = successful req/s / mean of the two ceiling runs (%.0f)", base
      if (ceil_n == 2 && (ceil[1] - ceil[2]) ^ 2 > (0.1 * base) ^ 2)
        printf "; the ceiling moved %+.0f%% during the run: a busy machine, rerun", 100 * (ceil[2] - ceil[1]) / ceil[1]
      printf "\ntargets (MOSTDB_SYNC=os): GET >= %.2fx: %.2fx %s; SET >= %.2fx: %.2fx %s\n",
        gmin, get, (get >= gmin ? "met" : "NOT met"), smin, set, (set >= smin ? "met" : "NOT met")
      for (i = 1; i <= NR; i++) {
        if (name[i] == gname) { gplain = rps[i]; gpcpu = cpu[i] }
        if (name[i] == sname) { splain = rps[i]; spcpu = cpu[i] }
        if (name[i] == "get_tls") { gtls = rps[i]; gtcpu = cpu[i] }
        if (name[i] == "set_tls") { stls = rps[i]; stcpu = cpu[i] }
      }
      if (gtls && stls && gplain && splain) {
        printf "TLS cost (MOSTDB_SYNC=os, same store): req/s over TLS %.2fx of plain for GET, %.2fx for SET",
          gtls / gplain, stls / splain
        if (gpcpu > 0 && spcpu > 0)
          printf "; server CPU per request %.2fx for GET, %.2fx for SET", gtcpu / gpcpu, stcpu / spcpu
        printf "\n"
      }
    }' <<<"$1" | {
    printf '%-26s %12s %9s %9s %8s %8s %10s\n' scenario "ok req/s" "p50 ms" "p99 ms" failed "ratio" "cpu us/req"
    cat
  }
}

run_ceiling() {
  start "$1" "$PORT" "http://$HOST:$PORT/" POST -- \
    env MOSTDB_SERVER_PORT="$PORT" "$TARGET_DIR/release/mostdb-ceiling"
  run_wrk "$1" "$PORT" wrk-fixed.lua "$KEYS"
  stop_pid "$SERVER_PID"
}

# Three nodes on PORT+1..PORT+3, configured as the original deploys a cluster.
start_cluster() {
  local i urls=""
  for i in 1 2 3; do urls+="${urls:+;}http://$HOST:$((PORT + i))"; done
  # Each node is awaited alive (/healthz), not ready: a new cluster is ready only once all
  # its nodes are up (README, Recovery); /readyz of all three is awaited below.
  for i in 1 2 3; do
    start "node$i" "$((PORT + i))" "http://$HOST:$((PORT + i))/healthz" GET -- \
      env MOSTDB_STORE_ROOT="$WORK/node$i" MOSTDB_HOST=$HOST MOSTDB_SERVER_PORT=$((PORT + i)) \
      MOSTDB_SERVER_URL="http://$HOST:$((PORT + i))" MOSTDB_CLUSTER_URLS="$urls" \
      MOSTDB_THREADS="${NODE_THREADS:-1}" MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN \
      "$TARGET_DIR/release/mostdb"
    CLUSTER_PIDS+=("$SERVER_PID")
  done
  local tries=0
  for i in 1 2 3; do
    until curl -sf -o /dev/null --max-time 1 "http://$HOST:$((PORT + i))/readyz"; do
      if ((tries >= READY_TIMEOUT_S * 10)); then
        log "node$i not ready; its log:"
        cat "$WORK/node$i.log" >&2
        exit 1
      fi
      sleep 0.1
      tries=$((tries + 1))
    done
  done
}

main_cluster() {
  install_wrk
  cargo build --release --bins
  log "cluster of 3 (threads=${NODE_THREADS:-1} each): wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s against node 1, $KEYS keys"
  local rows="" pid
  rows+=$(run_ceiling ceiling)$'\n'
  CLUSTER_PIDS=()
  start_cluster
  preload "$((PORT + 1))"
  rows+=$(CPU_PID=none run_wrk cluster_get "$((PORT + 1))" wrk-get.lua "$KEYS")$'\n'
  rows+=$(CPU_PID=none run_wrk cluster_set "$((PORT + 1))" wrk-set.lua "cluster-$$-$(date +%s)")$'\n'
  for pid in "${CLUSTER_PIDS[@]}"; do stop_pid "$pid"; done
  rows+=$(run_ceiling ceiling_again)$'\n'
  echo
  print_table "${rows%$'\n'}" cluster_get 0.3 cluster_set 0.25
}

main() {
  if [[ ${1:-} == cluster ]]; then
    main_cluster
    return
  fi
  if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    log "warning: $WORK is on tmpfs, where fsync costs nothing; set BENCH_TMPDIR"
  fi
  install_wrk
  cargo build --release --bins
  log "wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, $KEYS keys, PIN=$PIN, threads=${MOSTDB_THREADS:-one per core}"
  local rows=""

  rows+=$(run_ceiling ceiling)$'\n'

  start_node node-os os
  preload "$((PORT + 1))"
  rows+=$(run_wrk get_sync_os "$((PORT + 1))" wrk-get.lua "$KEYS")$'\n'
  rows+=$(run_wrk set_sync_os "$((PORT + 1))" wrk-set.lua "os-$$-$(date +%s)")$'\n'
  stop_pid "$SERVER_PID"

  # Same store over TLS, right after the plain runs so that the two compare.
  if [[ $TLS == 1 ]] && command -v openssl >/dev/null; then
    make_certs
    start_node_tls node-tls
    rows+=$(SCHEME=https run_wrk get_tls "$((PORT + 1))" wrk-get.lua "$KEYS")$'\n'
    rows+=$(SCHEME=https run_wrk set_tls "$((PORT + 1))" wrk-set.lua "tls-$$-$(date +%s)")$'\n'
    stop_pid "$SERVER_PID"
  elif [[ $TLS == 1 ]]; then
    log "no openssl CLI: TLS rows skipped"
  fi

  # Same store, reopened: the pre-loaded keys are still there.
  start_node node-always always
  rows+=$(run_wrk get_sync_always "$((PORT + 1))" wrk-get.lua "$KEYS")$'\n'
  rows+=$(run_wrk set_sync_always "$((PORT + 1))" wrk-set.lua "always-$$-$(date +%s)")$'\n'
  stop_pid "$SERVER_PID"

  rows+=$(run_ceiling ceiling_again)$'\n'
  echo
  print_table "${rows%$'\n'}"
}

# Sourced (scripts/bench-metrics.sh uses its helpers): define, do not run.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
