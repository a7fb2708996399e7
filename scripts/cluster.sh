#!/usr/bin/env bash
# Starts a 3-node mostdb cluster on this machine, configured exactly as the original's README
# deploys one (MOSTDB_SERVER_URL + MOSTDB_CLUSTER_URLS), and stops it again.
#
#   scripts/cluster.sh start   # nodes on 127.0.0.1:5381, :5382, :5383; data and logs in ./cluster
#   scripts/cluster.sh status  # /readyz of every node
#   scripts/cluster.sh stop    # SIGTERM to every node (each finishes its requests and exits 0)
#
# Settings: BASE_PORT (5381), DIR (./cluster), BIN (target/release/mostdb, built if missing),
# and any MOSTDB_* variable (e.g. MOSTDB_SYNC=always), passed to every node.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PORT="${BASE_PORT:-5381}"
DIR="${DIR:-$PWD/cluster}"
BIN="${BIN:-target/release/mostdb}"
NODES=3
READY_WAIT_SECS=20

urls() {
  local list=() i
  for ((i = 0; i < NODES; i++)); do list+=("http://127.0.0.1:$((BASE_PORT + i))"); done
  (IFS=';'; echo "${list[*]}")
}

start() {
  [ -x "$BIN" ] || cargo build --release --bin mostdb
  mkdir -p "$DIR"
  local i port
  for ((i = 0; i < NODES; i++)); do
    port=$((BASE_PORT + i))
    # Running means serving: a pid file can name a dead process, a zombie or a reused pid.
    if curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      echo "node $i already serves on port $port"
      continue
    fi
    if port_taken "$port"; then
      echo "port $port is taken by something that is not a mostdb node" >&2
      exit 1
    fi
    MOSTDB_STORE_ROOT="$DIR/node$i" MOSTDB_HOST=127.0.0.1 MOSTDB_SERVER_PORT="$port" \
      MOSTDB_SERVER_URL="http://127.0.0.1:$port" MOSTDB_CLUSTER_URLS="$(urls)" \
      "$BIN" >>"$DIR/node$i.log" 2>&1 &
    echo $! >"$DIR/node$i.pid"
    echo "node $i: http://127.0.0.1:$port (pid $!, log $DIR/node$i.log)"
  done
  for ((i = 0; i < NODES; i++)); do wait_ready $((BASE_PORT + i)); done
  echo "cluster ready: MOSTDB_CLUSTER_URLS='$(urls)'"
}

# Whether anything listens on 127.0.0.1:$1 (bash's /dev/tcp: no extra tool needed).
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_ready() {
  local port=$1 deadline=$((SECONDS + READY_WAIT_SECS))
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      echo "node on port $port not ready after ${READY_WAIT_SECS}s; see $DIR" >&2
      exit 1
    fi
    sleep 0.1
  done
}

status() {
  local i port
  for ((i = 0; i < NODES; i++)); do
    port=$((BASE_PORT + i))
    printf 'node %d (:%d): %s\n' "$i" "$port" \
      "$(curl -sS --max-time 2 "http://127.0.0.1:$port/readyz" 2>&1 || true)"
  done
}

stop() {
  local i pid
  for ((i = 0; i < NODES; i++)); do
    [ -f "$DIR/node$i.pid" ] || continue
    pid=$(cat "$DIR/node$i.pid")
    # Only a pid that is still this node's mostdb process gets the signal.
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$BIN")" ] &&
      kill -TERM "$pid" 2>/dev/null; then
      while [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
        sleep 0.1
      done
      echo "node $i stopped"
    fi
    rm -f "$DIR/node$i.pid"
  done
}

case "${1:-}" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
