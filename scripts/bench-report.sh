#!/usr/bin/env bash
# mostdb's benchmark report in one go (issue 14): every figure beside two ceilings measured in
# the same run, mostdb-ceiling (mostdb's own runtime and HTTP layer answering a fixed body) and
# nginx (Debian's nginx-light answering a body shaped like mostdb's GET answer), both run first
# and last (the base is the mean of the two; drift between them is printed). Not a test.
#
# What it measures (wrk on loopback; only answers whose body says success count, and for GET
# only those carrying the value written; the ceilings are counted the same way):
#   ceilings    mostdb-ceiling and nginx, CONNS connections, first and last; the load
#               generator's own ceiling from wrk's CPU time per request in the nginx runs
#   store       one node: inserts of new 16-byte keys with 80-byte values up to GROWTH_KEYS, in
#               steps of GROWTH_STEP_S (each step: keys so far, insert req/s, p99, RSS, disk);
#               GET (random over all keys) and SET (overwrite of a random key, so the store
#               stays the same size) at BASE_KEYS and again at GROWTH_KEYS
#   conns       one node with BASE_KEYS keys: GET, SET (overwrite) and nginx at each of CONNS_LIST
#   values      one node: SET (overwrite of 64 keys) and GET of each of VALUE_SIZES bytes, in
#               bytes/s, beside nginx reading the same request bodies (SET) and serving a
#               static file of the same answer's size (GET)
#   nodes       1, 3, 5 nodes on loopback (one core thread each when more than one, like
#               `scripts/bench.sh cluster`), load against node 1: GET and SET (overwrite)
# Each figure but a store step runs RUNS times; runs of one curve go round by round (every
# point once, then every point again), so that a figure's runs are minutes apart and the
# spread says how much the shared machine moved. A figure is the median of its runs (max: the
# largest), printed with its run count and spread (max-min over median).
#
# Output: a table on stdout; with SAVE=1, benches/results/<date>-<sha>.txt (machine, raw wrk
# lines, table), <date>-<sha>-{store,conns,values,nodes}.dat, <date>-<sha>.svg (gnuplot) and
# latest.svg; without SAVE=1 the same files go to a fresh directory under $TMPDIR (printed).
#
# Environment (defaults; QUICK=1 shrinks every scenario so the run takes ~3-4 minutes):
#   DURATION=10 (2)         seconds per wrk run     RUNS=3 (2)      runs per figure
#   CONNS=64                connections of every figure but the connection curve
#   GROWTH_KEYS=16000000 (200000)  GROWTH_STEP_S=30 (2)  GROWTH_MAX_S=450: inserts stop there
#   BASE_KEYS=100000        keys of the conns and nodes stores, and the first store figures
#   CONNS_LIST="16 64 256 1024 4096" ("16 64 256")
#   VALUE_SIZES="100 1024 16384 262144 1048576" ("100 1024 16384 65536")
#   NODES_LIST="1 3 5" ("1 3")   NODE_THREADS=1 (core threads of each node of a cluster)
#   WRK_THREADS=1           wrk threads (with several, inserts may leave holes: see wrk-seq.lua)
#   PORT=5480               first port: mostdb-ceiling on PORT, nodes PORT+1.., nginx PORT+9
#   BIN_DIR                 mostdb and mostdb-ceiling (default ${CARGO_TARGET_DIR:-target}/release,
#                           built with `cargo build --release --bins` unless NO_BUILD=1)
#   BENCH_TMPDIR            where stores go (default $TMPDIR or /tmp; must not be tmpfs)
#   SAVE=1                  write the results into benches/results/
#
# Connection caps: every node runs with MOSTDB_MAX_CONNECTIONS_PER_SOURCE and
# MOSTDB_MAX_CONNECTIONS at MAX_CONNS (default 16384), above the largest step (all of wrk's
# connections come from 127.0.0.1, and the per-source default of 1,024 would refuse the
# 4,096-connection step); `ulimit -n` is raised to its hard limit.
set -euo pipefail

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  DURATION=${DURATION:-2}
  RUNS=${RUNS:-2}
  GROWTH_KEYS=${GROWTH_KEYS:-200000}
  GROWTH_STEP_S=${GROWTH_STEP_S:-2}
  CONNS_LIST=${CONNS_LIST:-16 64 256}
  VALUE_SIZES=${VALUE_SIZES:-100 1024 16384 65536}
  NODES_LIST=${NODES_LIST:-1 3}
fi
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
GROWTH_KEYS=${GROWTH_KEYS:-16000000}
GROWTH_STEP_S=${GROWTH_STEP_S:-30}
GROWTH_MAX_S=${GROWTH_MAX_S:-450}
BASE_KEYS=${BASE_KEYS:-100000}
CONNS_LIST=${CONNS_LIST:-16 64 256 1024 4096}
VALUE_SIZES=${VALUE_SIZES:-100 1024 16384 262144 1048576}
NODES_LIST=${NODES_LIST:-1 3 5}
NODE_THREADS=${NODE_THREADS:-1}
MAX_CONNS=${MAX_CONNS:-16384}
PORT=${PORT:-5480}
SAVE=${SAVE:-0}
NGINX_PORT=$((PORT + 9))
# Keys a value-size figure overwrites round robin (and GET reads).
VALUE_KEYS=64

# scripts/bench.sh only defines its helpers when sourced (start, stop_pid, cpu_ticks, log,
# install_wrk), and sets up WORK (the temporary store root, removed on exit), PIDS (every
# process started, stopped on exit) and its trap.
# shellcheck source=scripts/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench.sh"

BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}
STAMP=$(date -u +%Y-%m-%dT%H%M)
SHA=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $SAVE == 1 ]]; then
  OUT=$REPO/benches/results
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-bench-report.XXXXXX")
fi
mkdir -p "$OUT"
NAME="$STAMP-$SHA"
# Every wrk run, one line each (RUN figure=… fields…), and the store steps (STEP …).
RAW=$WORK/raw.txt
: >"$RAW"
# Round of the current run (1..RUNS), written into its RUN line.
ROUND=1
# Fields of the last run (its RUN line), for field().
LAST=""
# Processes whose CPU time counts as the server's in a run (a node, a cluster, nginx).
CPU_PIDS=()

# field NAME [LINE]: the value of NAME=… in LINE (default: the last run).
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" ${2:-$LAST}"; }

# CPU time (clock ticks) of the processes given and their children (nginx's workers).
cpu_all() {
  local total=0 pid child children
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    total=$((total + $(cpu_ticks "$pid")))
    # The children file is one line of pids separated by spaces.
    children=()
    read -r -a children <"/proc/$pid/task/$pid/children" 2>/dev/null || true
    for child in "${children[@]}"; do
      [[ -r /proc/$child/stat ]] && total=$((total + $(cpu_ticks "$child")))
    done
  done
  echo "$total"
}

# measure FIGURE PORT CONNS SCRIPT ARGS...: one wrk run of DURATION seconds; appends its RUN
# line to RAW (wrk's MOSTDB_BENCH and MOSTDB_SEQ fields, plus the server's and wrk's CPU
# seconds) and keeps it in LAST. wrk's CPU time comes from `times` in the subshell that ran it
# (the subshell's only child), so it costs nothing to measure.
measure() {
  local figure=$1 port=$2 conns=$3 script=$4
  shift 4
  local out t0 t1 at wrk_cpu bench seq hz
  hz=$(getconf CLK_TCK)
  at=$(date +%s)
  t0=$(cpu_all "${CPU_PIDS[@]}")
  out=$(
    "${WRK_RUN[@]}" wrk -t"$WRK_THREADS" -c"$conns" -d"${DURATION}s" --timeout 10s \
      -s "$REPO/scripts/$script" "http://$HOST:$port" -- "$@" 2>&1
    times
  )
  t1=$(cpu_all "${CPU_PIDS[@]}")
  bench=$(grep '^MOSTDB_BENCH ' <<<"$out") || { log "wrk printed no result for $figure:"; log "$out"; exit 1; }
  seq=$(grep '^MOSTDB_SEQ ' <<<"$out" || true)
  # The last line of `times`: the children's user and system time, as 0m1.234s 0m0.567s.
  wrk_cpu=$(tail -n 1 <<<"$out" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }; printf "%.3f", t }')
  LAST="RUN figure=$figure round=$ROUND at=$at conns=$conns duration_s=$DURATION srv_cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.3f", t / hz }') wrk_cpu_s=$wrk_cpu ${bench#MOSTDB_BENCH } ${seq#MOSTDB_SEQ }"
  echo "$LAST" >>"$RAW"
  log "  $figure (round $ROUND, c=$conns): ok_rps=$(field ok_rps) p99=$(field p99_us)us bad=$(field bad)"
}

# install_pkg COMMAND PACKAGE: Debian's package when its command is missing.
install_pkg() {
  command -v "$1" >/dev/null && return
  log "$1 not found; installing $2 with apt-get"
  apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}

# The machine, the tools and the settings, for the top of the .txt.
describe_machine() {
  echo "mostdb benchmark report $NAME (scripts/bench-report.sh$([[ $QUICK == 1 ]] && echo ", QUICK=1: a smoke run, not a measurement"))"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit:   $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (working tree differs)')"
  echo "binary:   $("$BIN_DIR/mostdb" --version 2>/dev/null | head -n 1) ($BIN_DIR)"
  echo "cpu:      $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  echo "memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel:   $(uname -sr)"
  echo "store fs: $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }') ($WORK)"
  echo "wrk:      $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), -t$WRK_THREADS, --timeout 10s"
  echo "nginx:    $(nginx -v 2>&1 | sed 's/.*: //'), worker_processes $(nproc)"
  echo "load:     $(cut -d ' ' -f 1-3 /proc/loadavg) (1/5/15 min load average at the start; wrk, servers and anything else share the CPUs)"
  echo "settings: DURATION=${DURATION}s RUNS=$RUNS CONNS=$CONNS GROWTH_KEYS=$GROWTH_KEYS GROWTH_STEP_S=$GROWTH_STEP_S GROWTH_MAX_S=$GROWTH_MAX_S BASE_KEYS=$BASE_KEYS"
  echo "          CONNS_LIST=\"$CONNS_LIST\" VALUE_SIZES=\"$VALUE_SIZES\" NODES_LIST=\"$NODES_LIST\" NODE_THREADS=$NODE_THREADS"
  echo "          MOSTDB_SYNC=os, MOSTDB_MAX_CONNECTIONS=MOSTDB_MAX_CONNECTIONS_PER_SOURCE=$MAX_CONNS, ulimit -n $(ulimit -n)"
}

# nginx as a ceiling: a non-daemon master with one worker per CPU, its files in WORK. "/"
# answers every request (POST included: `return` reads and discards the body) with a body the
# size of mostdb's GET answer; /blob/SIZE are static files shaped like mostdb's GET answer
# with a SIZE-byte value (the value-size ceiling). Connections are kept (keepalive_requests).
start_nginx() {
  local d=$WORK/nginx size
  mkdir -p "$d/blob" "$d/tmp"
  # nginx's workers run as another user (nobody) when started by root: they must reach blob/.
  chmod 711 "$WORK"
  chmod 755 "$d" "$d/blob"
  for size in $VALUE_SIZES; do
    { printf '{"code":200,"success":true,"result":{"key":"v%s-0","value":"' "$size"
      head -c "$size" /dev/zero | tr '\0' x
      printf '"}}'; } >"$d/blob/$size"
  done
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $(nproc);
worker_rlimit_nofile $(ulimit -n);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $MAX_CONNS; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  client_max_body_size 64m;
  sendfile on;
  server {
    listen $HOST:$NGINX_PORT backlog=4096;
    default_type application/json;
    location / {
      return 200 '{"code":200,"success":true,"result":{"key":"k0","value":"k0:$(printf 'v%.0s' $(seq 56))"}}';
    }
    location /blob/ { root $d; }
  }
}
EOF
  start nginx "$NGINX_PORT" "http://$HOST:$NGINX_PORT/" POST -- nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
  NGINX_PID=$SERVER_PID
}

# start_nodes NAME N THREADS: N nodes on PORT+1..PORT+N (a cluster when N > 1), stores in
# WORK/NAME-i, THREADS core threads each (empty: one per CPU). Waits until all are ready; their
# pids go to NODE_PIDS and CPU_PIDS. Each starts a fresh key sequence (SEQ_*).
start_nodes() {
  local name=$1 n=$2 threads=$3 i urls="" opts
  for ((i = 1; i <= n; i++)); do urls+="${urls:+;}http://$HOST:$((PORT + i))"; done
  NODE_PIDS=()
  for ((i = 1; i <= n; i++)); do
    opts=(MOSTDB_STORE_ROOT="$WORK/$name-$i" MOSTDB_HOST="$HOST" MOSTDB_SERVER_PORT=$((PORT + i))
      MOSTDB_SYNC=os MOSTDB_LOG_LEVEL=WARN MOSTDB_MAX_CONNECTIONS="$MAX_CONNS"
      MOSTDB_MAX_CONNECTIONS_PER_SOURCE="$MAX_CONNS")
    [[ -z $threads ]] || opts+=(MOSTDB_THREADS="$threads")
    ((n == 1)) || opts+=(MOSTDB_SERVER_URL="http://$HOST:$((PORT + i))" MOSTDB_CLUSTER_URLS="$urls")
    # Awaited alive (/healthz), not ready: a new cluster is ready only once all its nodes are up.
    start "$name-$i" "$((PORT + i))" "http://$HOST:$((PORT + i))/healthz" GET -- \
      env "${opts[@]}" "$BIN_DIR/mostdb"
    NODE_PIDS+=("$SERVER_PID")
  done
  local tries=0
  for ((i = 1; i <= n; i++)); do
    until curl -sf -o /dev/null --max-time 1 "http://$HOST:$((PORT + i))/readyz"; do
      if ((tries >= READY_TIMEOUT_S * 10)); then
        log "$name-$i not ready; its log:"
        cat "$WORK/$name-$i.log" >&2
        exit 1
      fi
      sleep 0.1
      tries=$((tries + 1))
    done
  done
  CPU_PIDS=("${NODE_PIDS[@]}")
  SEQ_NEXT=0 SEQ_KEYS=0 SEQ_BYTES=0
}

# Stops the nodes of start_nodes and removes their stores (the disk is shared).
stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK/$1"-*
  NODE_PIDS=()
  CPU_PIDS=()
}

# Key and value bytes of one inserted key (wrk-seq.lua: a 16-byte key, an 80-byte value).
KV_BYTES_PER_KEY=96

# insert FIGURE: one wrk run inserting the next keys of the sequence into node 1 (new keys
# only), then the keys it generated but may not have written again (see rewrite), so that
# every number below SEQ_NEXT is a key GET may ask for: the run's first number (wrk calls
# request() once on thread 0 to check the script and never sends that request) and those in
# flight when wrk stopped. SEQ_KEYS counts them less the inserts that failed.
insert() {
  local from=$SEQ_NEXT
  measure "$1" $((PORT + 1)) "$CONNS" wrk-seq.lua set "$SEQ_NEXT" "$WRK_THREADS"
  SEQ_NEXT=$(field next)
  local low
  low=$(field low)
  rewrite "$from" "$((from + 1))"
  rewrite "$((low - CONNS > from + 1 ? low - CONNS : from + 1))" "$SEQ_NEXT"
  SEQ_KEYS=$((SEQ_KEYS + SEQ_NEXT - from - $(field bad)))
  SEQ_BYTES=$((SEQ_KEYS * KV_BYTES_PER_KEY))
}

# rewrite FROM TO: keys FROM..TO-1 written (again) over one curl connection. Exits when one
# fails.
rewrite() {
  local from=$1 to=$2 config="$WORK/rewrite.curl" i key pad ok
  ((to > from)) || return 0
  pad=$(printf 'v%.0s' $(seq 63))
  : >"$config"
  for ((i = from; i < to; i++)); do
    printf -v key 'g%015d' "$i"
    ((i == from)) || echo next >>"$config"
    printf 'url = "http://%s:%s/mostdb/set"\nheader = "Content-Type: application/json"\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s:%s\\"}"\n' \
      "$HOST" "$((PORT + 1))" "$key" "$key" "$pad" >>"$config"
  done
  ok=$(curl -s -K "$config" | grep -o '"success":true' | wc -l)
  if ((ok != to - from)); then
    log "rewrite of keys $from..$((to - 1)): only $ok of $((to - from)) sets succeeded"
    exit 1
  fi
}

# fill_to KEYS: inserts until the store holds KEYS keys, in runs sized from the rate so far.
fill_to() {
  local target=$1 secs=1 rate
  while ((SEQ_KEYS < target)); do
    DURATION=$secs insert fill
    rate=$(field ok_rps)
    secs=$(((target - SEQ_KEYS) / (rate > 0 ? rate : 1) + 1))
    ((secs <= 60)) || secs=60
  done
}

# store_state: RSS (KiB) of node 1 and the bytes of its store directory.
store_state() {
  echo "rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/${NODE_PIDS[0]}/status") disk_b=$(du -sb "$WORK/store-1" | cut -f 1)"
}

# The two ceilings, RUNS times each, alternating; FIGURE_SUFFIX first or last.
ceilings() {
  local r
  CPU_PIDS=("$CEILING_PID")
  for ((r = 1; r <= RUNS; r++)); do
    ROUND=$r
    CPU_PIDS=("$CEILING_PID")
    measure "ceiling-$1" "$PORT" "$CONNS" wrk-fixed.lua "$BASE_KEYS"
    CPU_PIDS=("$NGINX_PID")
    measure "nginx-$1" "$NGINX_PORT" "$CONNS" wrk-fixed.lua "$BASE_KEYS"
  done
  CPU_PIDS=()
}

# GET and SET (overwrite) at the store's current size, RUNS times, as FIGURE names get-X, set-X.
get_set_figures() {
  local r
  for ((r = 1; r <= RUNS; r++)); do
    ROUND=$r
    measure "get-$1" $((PORT + 1)) "$CONNS" wrk-seq.lua get "$SEQ_NEXT"
    measure "set-$1" $((PORT + 1)) "$CONNS" wrk-seq.lua over "$SEQ_NEXT"
  done
}

# Store growth on one node: BASE_KEYS figures, inserts in steps up to GROWTH_KEYS (or
# GROWTH_MAX_S), each step recorded with the store's RSS and disk, then the same figures at the
# final size.
store_curve() {
  log "store: one node, inserts up to $GROWTH_KEYS keys"
  start_nodes store 1 ""
  fill_to "$BASE_KEYS"
  echo "STEP keys=$SEQ_KEYS kv_bytes=$SEQ_BYTES rps=$(field ok_rps) p99_us=$(field p99_us) $(store_state)" >>"$RAW"
  get_set_figures base
  local started=$SECONDS secs=$GROWTH_STEP_S left rate
  while ((SEQ_KEYS < GROWTH_KEYS && SECONDS - started < GROWTH_MAX_S)); do
    ROUND=1
    DURATION=$secs insert step
    echo "STEP keys=$SEQ_KEYS kv_bytes=$SEQ_BYTES rps=$(field ok_rps) p99_us=$(field p99_us) $(store_state)" >>"$RAW"
    rate=$(field ok_rps)
    left=$(((GROWTH_KEYS - SEQ_KEYS) / (rate > 0 ? rate : 1) + 1))
    secs=$((left < GROWTH_STEP_S ? left : GROWTH_STEP_S))
  done
  ((SEQ_KEYS >= GROWTH_KEYS)) || log "store: stopped at $SEQ_KEYS keys after GROWTH_MAX_S=${GROWTH_MAX_S}s"
  get_set_figures grown
  echo "STORE keys=$SEQ_KEYS kv_bytes=$SEQ_BYTES $(store_state)" >>"$RAW"
  stop_nodes store
}

# Connections and value sizes on one node with BASE_KEYS keys, round by round.
conns_and_values() {
  log "connections ($CONNS_LIST) and value sizes ($VALUE_SIZES): one node"
  start_nodes one 1 ""
  fill_to "$BASE_KEYS"
  local r c size
  for ((r = 1; r <= RUNS; r++)); do
    ROUND=$r
    for c in $CONNS_LIST; do
      measure "get-c$c" $((PORT + 1)) "$c" wrk-seq.lua get "$SEQ_NEXT"
      measure "set-c$c" $((PORT + 1)) "$c" wrk-seq.lua over "$SEQ_NEXT"
      CPU_PIDS=("$NGINX_PID")
      measure "nginx-c$c" "$NGINX_PORT" "$c" wrk-fixed.lua "$BASE_KEYS"
      CPU_PIDS=("${NODE_PIDS[@]}")
    done
  done
  for ((r = 1; r <= RUNS; r++)); do
    ROUND=$r
    for size in $VALUE_SIZES; do
      measure "set-v$size" $((PORT + 1)) "$CONNS" wrk-value.lua set "$size" "$VALUE_KEYS"
      measure "get-v$size" $((PORT + 1)) "$CONNS" wrk-value.lua get "$size" "$VALUE_KEYS"
      CPU_PIDS=("$NGINX_PID")
      measure "nginx-set-v$size" "$NGINX_PORT" "$CONNS" wrk-value.lua set "$size" "$VALUE_KEYS"
      measure "nginx-get-v$size" "$NGINX_PORT" "$CONNS" wrk-value.lua static-get "$size" "$VALUE_KEYS"
      CPU_PIDS=("${NODE_PIDS[@]}")
    done
  done
  stop_nodes one
}

# Clusters of each size in NODES_LIST, BASE_KEYS keys, load against node 1.
nodes_curve() {
  local n r threads
  for n in $NODES_LIST; do
    log "nodes: $n"
    threads=$NODE_THREADS
    ((n > 1)) || threads=""
    start_nodes "n$n" "$n" "$threads"
    fill_to "$BASE_KEYS"
    for ((r = 1; r <= RUNS; r++)); do
      ROUND=$r
      measure "get-n$n" $((PORT + 1)) "$CONNS" wrk-seq.lua get "$SEQ_NEXT"
      measure "set-n$n" $((PORT + 1)) "$CONNS" wrk-seq.lua over "$SEQ_NEXT"
    done
    stop_nodes "n$n"
  done
}

# One summary line per figure from the RUN lines: n, median/min/max successful req/s, median
# p50/p99/p99.9, largest max, failures (bad answers + socket errors + non-2xx), CPU seconds per
# request of the server and of wrk, first and last start time.
summarize() {
  awk '
    $1 != "RUN" { next }
    {
      delete f
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      k = f["figure"]
      if (!(k in n)) order[++figures] = k
      m = ++n[k]
      rps[k, m] = f["ok_rps"]; p50[k, m] = f["p50_us"]; p99[k, m] = f["p99_us"]; p999[k, m] = f["p999_us"]
      if (f["max_us"] > mx[k]) mx[k] = f["max_us"]
      # Non-2xx answers are in bad too (wrk hands every answer to response()).
      fail[k] += f["bad"] + f["errors_connect"] + f["errors_read"] + f["errors_write"] + f["errors_timeout"]
      req[k] += f["requests"]; srv[k] += f["srv_cpu_s"]; wrk[k] += f["wrk_cpu_s"]; dur[k] += f["duration_us"] / 1e6
      if (!(k in first)) first[k] = f["at"]
      last[k] = f["at"]
    }
    function median(a, k, c,   i, j, t, v) {
      for (i = 1; i <= c; i++) v[i] = a[k, i] + 0
      for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
      lo = v[1]; hi = v[c]
      return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
    }
    END {
      for (x = 1; x <= figures; x++) {
        k = order[x]; c = n[k]
        r = median(rps, k, c); rlo = lo; rhi = hi
        printf "%s n=%d rps=%.0f rps_min=%.0f rps_max=%.0f spread=%.3f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%d fail=%d srv_us=%.2f wrk_us=%.2f wrk_busy=%.3f first=%d last=%d\n",
          k, c, r, rlo, rhi, (r > 0 ? (rhi - rlo) / r : 0), median(p50, k, c), median(p99, k, c), median(p999, k, c), mx[k], fail[k],
          (req[k] ? srv[k] * 1e6 / req[k] : 0), (req[k] ? wrk[k] * 1e6 / req[k] : 0), (dur[k] ? wrk[k] / dur[k] : 0), first[k], last[k]
      }
    }' "$RAW" >"$WORK/summary"
}

# get FIGURE FIELD: one field of a figure's summary line (empty when there is none).
get() { awk -v k="$1" '$1 == k' "$WORK/summary" | { read -r line || true; [[ -z ${line:-} ]] || field "$2" "$line"; }; }

# span FIGURE: minutes from the start of a figure's first run to the start of its last.
span() { awk -v a="$(get "$1" first)" -v b="$(get "$1" last)" 'BEGIN { if (a != "") printf "%.1f min", (b - a) / 60 }'; }

# failures FIGURE...: the failures of the figures summed (0 for a figure not run).
failures() {
  local k total=0 v
  for k in "$@"; do
    v=$(get "$k" fail)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The bases: mean of the medians of the first and last runs of each ceiling.
bases() {
  CEIL_BASE=$(awk -v a="$(get ceiling-first rps)" -v b="$(get ceiling-last rps)" 'BEGIN { printf "%.0f", (a + b) / 2 }')
  NGINX_BASE=$(awk -v a="$(get nginx-first rps)" -v b="$(get nginx-last rps)" 'BEGIN { printf "%.0f", (a + b) / 2 }')
}

# ratio A B: A/B with two decimals ("-" when B is 0 or missing).
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# row LABEL FIGURE: a table row: successful req/s, ratio to both ceilings, p50/p99/p99.9/max
# in ms, failures, runs and their spread and time span.
row() {
  local label=$1 k=$2
  awk -v label="$label" -v line="$(awk -v k="$k" '$1 == k' "$WORK/summary")" -v cb="$CEIL_BASE" -v nb="$NGINX_BASE" 'BEGIN {
    if (line == "") { printf "%-30s (not run)\n", label; exit }
    split(line, w, " "); for (i in w) { split(w[i], kv, "="); f[kv[1]] = kv[2] }
    printf "%-30s %9d %6.2fx %6.2fx %7.2f %7.2f %7.2f %8.1f %6d   %d, %2.0f%%, %.1f min\n", label, f["rps"], f["rps"] / cb, f["rps"] / nb,
      f["p50_us"] / 1000, f["p99_us"] / 1000, f["p999_us"] / 1000, f["max_us"] / 1000, f["fail"], f["n"], 100 * f["spread"], (f["last"] - f["first"]) / 60
  }'
}

header() {
  printf '%-30s %9s %7s %7s %7s %7s %7s %8s %6s   %s\n' "$1" "ok req/s" "/ceil" "/nginx" "p50 ms" "p99 ms" "p99.9" "max ms" failed "runs, spread, span"
}

# The .dat files of the four curves (gnuplot reads them; columns named on the first line).
write_dat() {
  awk '$1 == "STEP" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf "%d %d %.3f %.1f %.1f %.1f\n", f["keys"], f["rps"], f["p99_us"] / 1000, f["rss_kib"] / 1024, f["disk_b"] / 1048576, (f["keys"] ? f["disk_b"] / f["keys"] : 0) }' "$RAW" |
    { echo "# keys insert_rps p99_ms rss_mib disk_mib disk_bytes_per_key"; cat; } >"$OUT/$NAME-store.dat"
  local c size n
  { echo "# conns get_rps get_p99_ms set_rps set_p99_ms nginx_rps nginx_p99_ms"
    for c in $CONNS_LIST; do
      echo "$c $(get "get-c$c" rps) $(get "get-c$c" p99_us) $(get "set-c$c" rps) $(get "set-c$c" p99_us) $(get "nginx-c$c" rps) $(get "nginx-c$c" p99_us)"
    done | awk '{ printf "%s %s %.3f %s %.3f %s %.3f\n", $1, $2, $3 / 1000, $4, $5 / 1000, $6, $7 / 1000 }'
  } >"$OUT/$NAME-conns.dat"
  { echo "# value_bytes get_bytes_per_s get_p99_ms set_bytes_per_s set_p99_ms nginx_get_bytes_per_s nginx_set_bytes_per_s"
    for size in $VALUE_SIZES; do
      echo "$size $(get "get-v$size" rps) $(get "get-v$size" p99_us) $(get "set-v$size" rps) $(get "set-v$size" p99_us) $(get "nginx-get-v$size" rps) $(get "nginx-set-v$size" rps)"
    done | awk '{ printf "%s %.0f %.3f %.0f %.3f %.0f %.0f\n", $1, $2 * $1, $3 / 1000, $4 * $1, $5 / 1000, $6 * $1, $7 * $1 }'
  } >"$OUT/$NAME-values.dat"
  { echo "# nodes get_rps get_p99_ms set_rps set_p99_ms"
    for n in $NODES_LIST; do
      echo "$n $(get "get-n$n" rps) $(get "get-n$n" p99_us) $(get "set-n$n" rps) $(get "set-n$n" p99_us)"
    done | awk '{ printf "%s %s %.3f %s %.3f\n", $1, $2, $3 / 1000, $4, $5 / 1000 }'
  } >"$OUT/$NAME-nodes.dat"
}

# Four panels, throughput (left axis) and p99 (right axis) against store size, connections,
# value size and nodes.
plot() {
  install_pkg gnuplot gnuplot-nox
  gnuplot 2>"$WORK/gnuplot.log" <<EOF
set terminal svg size 1100,800 dynamic font "sans,11" background "white"
set output "$OUT/$NAME.svg"
set multiplot layout 2,2 title "mostdb $NAME: medians of $RUNS runs (store steps: 1 run each), ${DURATION}s each, load and server sharing $(nproc) CPUs"
set key top right font ",9" samplen 2
set grid
set ytics nomirror
set y2tics
set y2label "p99 ms"
set yrange [0:*]
set y2range [0:*]
# One colour per series: throughput solid, its p99 dashed on the right axis.
set linetype 1 lc rgb "#1f77b4" lw 1.5 pt 7 ps 0.6
set linetype 2 lc rgb "#d62728" lw 1.5 pt 5 ps 0.6
set linetype 3 lc rgb "#7f7f7f" lw 1.5 pt 9 ps 0.6
set linetype 4 lc rgb "#2ca02c" lw 1.5 pt 11 ps 0.6
set title "store size (one node, inserts of new keys)"
set xlabel "keys (millions)"
set ylabel "inserts/s"
plot "$OUT/$NAME-store.dat" using (\$1/1e6):2 with linespoints lt 1 title "insert req/s", \
     "" using (\$1/1e6):3 axes x1y2 with linespoints lt 1 dt 2 title "insert p99"
set title "connections (one node, $BASE_KEYS keys)"
set logscale x 2
set xlabel "connections"
set ylabel "req/s"
plot "$OUT/$NAME-conns.dat" using 1:2 with linespoints lt 1 title "GET", "" using 1:4 with linespoints lt 2 title "SET", \
     "" using 1:6 with linespoints lt 3 title "nginx", \
     "" using 1:3 axes x1y2 with linespoints lt 1 dt 2 title "GET p99", "" using 1:5 axes x1y2 with linespoints lt 2 dt 2 title "SET p99"
set title "value size (one node, $CONNS connections)"
set logscale x 2
set logscale y
set yrange [*:*]
set xlabel "value bytes"
set ylabel "MB/s of values"
plot "$OUT/$NAME-values.dat" using 1:(\$2/1e6) with linespoints lt 1 title "GET", "" using 1:(\$4/1e6) with linespoints lt 2 title "SET", \
     "" using 1:(\$6/1e6) with linespoints lt 3 title "nginx GET", "" using 1:(\$7/1e6) with linespoints lt 4 title "nginx SET", \
     "" using 1:3 axes x1y2 with linespoints lt 1 dt 2 title "GET p99", "" using 1:5 axes x1y2 with linespoints lt 2 dt 2 title "SET p99"
unset logscale
set yrange [0:*]
set title "nodes (load against one, $CONNS connections)"
set xlabel "nodes"
set ylabel "req/s"
set xtics 1
plot "$OUT/$NAME-nodes.dat" using 1:2 with linespoints lt 1 title "GET", "" using 1:4 with linespoints lt 2 title "SET", \
     "" using 1:3 axes x1y2 with linespoints lt 1 dt 2 title "GET p99", "" using 1:5 axes x1y2 with linespoints lt 2 dt 2 title "SET p99"
unset multiplot
EOF
  [[ ! -s $WORK/gnuplot.log ]] || log "gnuplot: $(cat "$WORK/gnuplot.log")"
  cp "$OUT/$NAME.svg" "$OUT/latest.svg"
}

# verdict LABEL VALUE OP LIMIT: one target line, "met" or "NOT met".
verdict() {
  awk -v label="$1" -v v="$2" -v op="$3" -v lim="$4" 'BEGIN {
    if (v == "" || v == "-") { printf "  %-62s %10s  %s\n", label, "-", "NOT met (not measured)"; exit }
    ok = (op == ">=" ? v + 0 >= lim + 0 : v + 0 <= lim + 0)
    printf "  %-62s %10s  %s\n", label, v, (ok ? "met" : "NOT met")
  }'
}

# The human table and the targets.
report() {
  local c size n line keys rss disk first_rps last_rps
  bases
  echo
  echo "Every figure: the median of its runs (max ms: the largest of them); ok req/s counts only answers"
  echo "whose body says success (GET: with the value written); /ceil and /nginx divide by the ceilings'"
  echo "bases (mean of their first and last runs); failed = bad answers + socket errors + timeouts,"
  echo "summed over the runs; runs, spread, span = number of runs, (max - min) / median of their req/s,"
  echo "minutes from the first run's start to the last's. Latencies are wrk's, over every answer (failures"
  echo "included), from the request's send to its answer (wrk 4 corrects no coordinated omission)."
  echo
  echo "== Ceilings (fixed answers, $CONNS connections) =="
  header ceiling
  row "mostdb-ceiling, first" ceiling-first
  row "mostdb-ceiling, last" ceiling-last
  row "nginx, first" nginx-first
  row "nginx, last" nginx-last
  awk -v a="$(get ceiling-first rps)" -v b="$(get ceiling-last rps)" -v c="$(get nginx-first rps)" -v d="$(get nginx-last rps)" \
    -v cb="$CEIL_BASE" -v nb="$NGINX_BASE" 'BEGIN {
    printf "bases: mostdb-ceiling %d req/s (drift first to last %+.0f%%), nginx %d req/s (drift %+.0f%%)%s\n", cb, 100 * (b - a) / a, nb, 100 * (d - c) / c,
      ((b - a) ^ 2 > (0.1 * cb) ^ 2 || (d - c) ^ 2 > (0.1 * nb) ^ 2 ? ": a ceiling moved over 10%, the machine was busy, rerun" : "")
  }'
  # The load generator: wrk's CPU per request in the nginx runs bounds what it can send.
  awk -v us="$(get nginx-first wrk_us)" -v busy="$(get nginx-first wrk_busy)" -v t="$WRK_THREADS" -v nb="$NGINX_BASE" -v cpus="$(nproc)" 'BEGIN {
    lim = (us > 0 ? 1e6 / us * t : 0)
    printf "load generator: wrk spent %.1f us of CPU per request against nginx and kept %.0f%% of its %d thread(s) busy;\n", us, 100 * busy / t, t
    printf "  alone on %d core(s) it could send at most ~%.0f req/s, so the nginx base is %.2fx of wrk'"'"'s own ceiling%s\n", t, lim, (lim > 0 ? nb / lim : 0),
      (busy / t > 0.9 ? " (wrk-bound: ratios near 1 mean the client saturates too)" : "")
    printf "  (wrk and the servers share the %d CPUs: every figure here is of the pair, not of the server alone)\n", cpus
  }'
  echo
  echo "== GET and SET, $CONNS connections (SET overwrites a random existing key; the store keeps its size) =="
  header scenario
  keys=$(awk '$1 == "STEP" { sub("keys=", "", $2); print $2; exit }' "$RAW")
  row "1 node, GET, ${keys:-?} keys" get-base
  row "1 node, SET, ${keys:-?} keys" set-base
  keys=$(awk '$1 == "STORE" { sub("keys=", "", $2); print $2 }' "$RAW")
  row "1 node, GET, ${keys:-?} keys" get-grown
  row "1 node, SET, ${keys:-?} keys" set-grown
  for n in $NODES_LIST; do
    row "$n node(s), GET, $BASE_KEYS keys" "get-n$n"
    row "$n node(s), SET, $BASE_KEYS keys" "set-n$n"
  done
  echo
  echo "== Store growth: one node, inserts of new keys (16 B key + 80 B value), one run per step =="
  printf '%12s %10s %8s %9s %10s %11s %10s %9s\n' keys "insert/s" "p99 ms" "RSS MiB" "disk MiB" "disk B/key" "RSS B/key" "disk/raw"
  awk '$1 == "STEP" || $1 == "STORE" { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if ($1 == "STORE") { printf "%12s\n", "at the end:" }
    printf "%12d %10s %8s %9.1f %10.1f %11.1f %10.1f %9.2f\n", f["keys"], ($1 == "STEP" ? f["rps"] : "-"), ($1 == "STEP" ? sprintf("%.2f", f["p99_us"] / 1000) : "-"),
      f["rss_kib"] / 1024, f["disk_b"] / 1048576, f["disk_b"] / f["keys"], f["rss_kib"] * 1024 / f["keys"], f["disk_b"] / f["kv_bytes"] }' "$RAW"
  echo "(raw = key + value bytes of the successful inserts; disk = du -sb of the store directory; RSS = VmRSS)"
  echo
  echo "== Connections: one node, $BASE_KEYS keys; /nginx@c = ratio to nginx at the same connection count =="
  printf '%6s %9s %8s %7s %9s %8s %7s %9s %7s %7s   %s\n' conns "GET/s" "/nginx@c" "p99 ms" "SET/s" "/nginx@c" "p99 ms" "nginx/s" "p99 ms" failed "runs, spread (GET/SET), span"
  for c in $CONNS_LIST; do
    printf '%6s %9s %8s %7s %9s %8s %7s %9s %7s %7s   %s, %s/%s, %s\n' "$c" "$(get "get-c$c" rps)" "$(ratio "$(get "get-c$c" rps)" "$(get "nginx-c$c" rps)")" \
      "$(awk -v v="$(get "get-c$c" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "$(get "set-c$c" rps)" "$(ratio "$(get "set-c$c" rps)" "$(get "nginx-c$c" rps)")" \
      "$(awk -v v="$(get "set-c$c" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "$(get "nginx-c$c" rps)" \
      "$(awk -v v="$(get "nginx-c$c" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "$(failures "get-c$c" "set-c$c")" \
      "$(get "get-c$c" n)" "$(awk -v v="$(get "get-c$c" spread)" 'BEGIN { printf "%.0f%%", 100 * v }')" "$(awk -v v="$(get "set-c$c" spread)" 'BEGIN { printf "%.0f%%", 100 * v }')" "$(span "get-c$c")"
  done
  echo
  echo "== Value sizes: one node, $CONNS connections, $VALUE_KEYS keys per size; bytes/s of values; /nginx = ratio to nginx at the same size =="
  printf '%9s %11s %7s %7s %11s %7s %7s %7s   %s\n' bytes "GET MB/s" "/nginx" "p99 ms" "SET MB/s" "/nginx" "p99 ms" failed "runs, spread (GET/SET), span"
  for size in $VALUE_SIZES; do
    printf '%9s %11s %7s %7s %11s %7s %7s %7s   %s, %s/%s, %s\n' "$size" \
      "$(awk -v r="$(get "get-v$size" rps)" -v s="$size" 'BEGIN { printf "%.1f", r * s / 1e6 }')" "$(ratio "$(get "get-v$size" rps)" "$(get "nginx-get-v$size" rps)")" \
      "$(awk -v v="$(get "get-v$size" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" \
      "$(awk -v r="$(get "set-v$size" rps)" -v s="$size" 'BEGIN { printf "%.1f", r * s / 1e6 }')" "$(ratio "$(get "set-v$size" rps)" "$(get "nginx-set-v$size" rps)")" \
      "$(awk -v v="$(get "set-v$size" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "$(failures "get-v$size" "set-v$size")" \
      "$(get "get-v$size" n)" "$(awk -v v="$(get "get-v$size" spread)" 'BEGIN { printf "%.0f%%", 100 * v }')" "$(awk -v v="$(get "set-v$size" spread)" 'BEGIN { printf "%.0f%%", 100 * v }')" "$(span "get-v$size")"
  done
  echo "(nginx ceilings: SET, nginx reads and discards the same request bodies; GET, it serves a static file the size of mostdb's answer)"
  echo
  # Targets (2-core machine, load and server sharing cores), judged against the nginx base.
  local big=1024
  for c in $CONNS_LIST; do ((c < 1000)) || { big=$c; break; }; done
  echo "== Targets (ratios to the nginx base; the mostdb-ceiling ratio is in the tables above) =="
  for line in "base:$(awk '$1 == "STEP" { sub("keys=", "", $2); print $2; exit }' "$RAW")" "grown:$(awk '$1 == "STORE" { sub("keys=", "", $2); print $2 }' "$RAW")"; do
    keys=${line#*:}
    verdict "1 node, $CONNS conns, ${keys:-?} keys: GET >= 0.95x nginx" "$(ratio "$(get "get-${line%%:*}" rps)" "$NGINX_BASE")" ">=" 0.95
    verdict "1 node, $CONNS conns, ${keys:-?} keys: SET >= 0.9x nginx" "$(ratio "$(get "set-${line%%:*}" rps)" "$NGINX_BASE")" ">=" 0.9
    verdict "1 node, $CONNS conns, ${keys:-?} keys: GET p99 <= 3 ms" "$(awk -v v="$(get "get-${line%%:*}" p99_us)" 'BEGIN { if (v != "") printf "%.2f", v / 1000 }')" "<=" 3
    verdict "1 node, $CONNS conns, ${keys:-?} keys: SET p99 <= 3 ms" "$(awk -v v="$(get "set-${line%%:*}" p99_us)" 'BEGIN { if (v != "") printf "%.2f", v / 1000 }')" "<=" 3
  done
  keys=$(awk '$1 == "STORE" { sub("keys=", "", $2); print $2 }' "$RAW")
  verdict "store at ${keys:-?} keys: SET >= 0.95x of the first figure" "$(ratio "$(get set-grown rps)" "$(get set-base rps)")" ">=" 0.95
  verdict "store at ${keys:-?} keys: GET >= 0.9x of the first figure" "$(ratio "$(get get-grown rps)" "$(get get-base rps)")" ">=" 0.9
  first_rps=$(awk '$1 == "STEP" { sub("rps=", "", $4); print $4; exit }' "$RAW")
  last_rps=$(awk '$1 == "STEP" { sub("rps=", "", $4); r = $4 } END { print r }' "$RAW")
  echo "  (inserts: last step $(ratio "$last_rps" "$first_rps")x of the first; not a target, the store curve above shows them)"
  rss=$(awk '$1 == "STORE" { for (i = 2; i <= NF; i++) if ($i ~ /^rss_kib=/) { sub("rss_kib=", "", $i); printf "%.1f", $i / 1024 } }' "$RAW")
  verdict "store at ${keys:-?} keys: RSS <= 256 MiB" "$rss" "<=" 256
  disk=$(awk '$1 == "STORE" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }; if (f["kv_bytes"] > 0) printf "%.2f", f["disk_b"] / f["kv_bytes"] }' "$RAW")
  verdict "store at ${keys:-?} keys: disk <= 1.3x raw key+value bytes" "$disk" "<=" 1.3
  ((GROWTH_KEYS >= 16000000 && ${keys:-0} >= 16000000)) || echo "  (the store targets are for 16,000,000 keys: this run's store held ${keys:-?})"
  if [[ " $CONNS_LIST " == *" $big "* && $big -ge 1000 ]]; then
    verdict "$big conns: GET p99 <= 30 ms" "$(awk -v v="$(get "get-c$big" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "<=" 30
    verdict "$big conns: SET p99 <= 30 ms" "$(awk -v v="$(get "set-c$big" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "<=" 30
    verdict "$big conns: failures (GET + SET, all runs) = 0" "$(failures "get-c$big" "set-c$big")" "<=" 0
  else
    verdict "1,000 conns: p99 <= 30 ms, no errors" "" "<=" 30
  fi
  if [[ " $NODES_LIST " == *" 3 "* ]]; then
    verdict "3 nodes: SET >= 0.45x nginx" "$(ratio "$(get set-n3 rps)" "$NGINX_BASE")" ">=" 0.45
    verdict "3 nodes: GET >= 0.55x nginx" "$(ratio "$(get get-n3 rps)" "$NGINX_BASE")" ">=" 0.55
    verdict "3 nodes: GET p99 <= 10 ms" "$(awk -v v="$(get get-n3 p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "<=" 10
    verdict "3 nodes: SET p99 <= 10 ms" "$(awk -v v="$(get set-n3 p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')" "<=" 10
  else
    verdict "3 nodes: SET >= 0.45x, GET >= 0.55x, p99 <= 10 ms" "" ">=" 0
  fi
}

main() {
  if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    log "warning: $WORK is on tmpfs, where fsync costs nothing; set BENCH_TMPDIR"
  fi
  install_wrk
  install_pkg nginx nginx-light
  install_pkg gnuplot gnuplot-nox
  # 4,096 connections need as many descriptors in wrk, the node and nginx.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [[ ${NO_BUILD:-0} != 1 ]]; then
    cargo build --release --bins
  fi
  local began=$SECONDS
  describe_machine >"$WORK/machine.txt"
  cat "$WORK/machine.txt" >&2
  start "ceiling" "$PORT" "http://$HOST:$PORT/" POST -- env MOSTDB_SERVER_PORT="$PORT" "$BIN_DIR/mostdb-ceiling"
  CEILING_PID=$SERVER_PID
  start_nginx

  log "ceilings (first)"
  ceilings first
  store_curve
  conns_and_values
  nodes_curve
  log "ceilings (last)"
  ceilings last

  summarize
  write_dat
  plot
  local table
  table=$(report)
  echo "$table"
  {
    cat "$WORK/machine.txt"
    echo "took: $(((SECONDS - began) / 60)) min $(((SECONDS - began) % 60)) s"
    echo "$table"
    echo
    echo "== Raw: one RUN line per wrk run (its MOSTDB_BENCH fields; srv_cpu_s/wrk_cpu_s = CPU seconds of the server and of wrk), STEP/STORE per store step =="
    cat "$RAW"
    echo
    echo "== Summary per figure (what the table reads) =="
    cat "$WORK/summary"
  } >"$OUT/$NAME.txt"
  echo
  echo "took $(((SECONDS - began) / 60)) min $(((SECONDS - began) % 60)) s; files: $OUT/$NAME.txt, $OUT/$NAME-{store,conns,values,nodes}.dat, $OUT/$NAME.svg, $OUT/latest.svg"
}

main "$@"
