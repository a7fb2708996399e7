#!/usr/bin/env bash
# Checks docker-compose.yml as a user runs it: builds the image through it, brings the three
# nodes up, waits for every node's health check and readiness, writes through node 1 and reads
# through node 3 over the ports published on loopback (the original API's exact bodies), stops
# node 2 and keeps writing, starts node 2 and waits until its own copy (POST /mostdb/api/get,
# no quorum) holds every write it missed, then removes the containers, the network and the
# volumes, also when a check fails. Each phase is timed.
#
# It runs under a project name of its own (-p) with an env file of its own (a fresh cluster
# secret, free loopback ports), so a cluster the user runs from the same directory and the
# user's .env are left alone. It needs the base images (scripts/docker-bases.sh without a
# registry) and curl.
#
# Environment:
#   IMAGE=mostdb:latest        tag the compose file builds and runs (MOSTDB_IMAGE)
#   COMPOSE="docker compose"   the compose command (default: `docker compose` when the v2
#                              plugin is there, else docker-compose v1)
#   SKIP_BUILD=1               run the existing image instead of building it
#   OVERRIDE=file.yml          an extra compose file merged over the real one (-f), to check
#                              that this test fails when the cluster is misconfigured
set -eEuo pipefail

cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-mostdb:latest}
PROJECT=mostdb-compose-test-$$
HOST=127.0.0.1
NODES=(node1 node2 node3)
# Longest time the image build may take (cold: every dependency is compiled, ~4 min on 2 cores).
BUILD_TIMEOUT_S=1800
# Longest time one other compose command (up, stop, start, down) may take.
COMPOSE_TIMEOUT_S=120
# Longest wait for a node's health check to pass: the image probes every 5 s, and a cold
# start is ready in ~2 s (a new store waits 2 s for its peers before it votes).
HEALTHY_TIMEOUT_S=60
# Longest wait for a node's /readyz after it is healthy (it needs a majority of the nodes).
READY_TIMEOUT_S=30
# Longest wait for node 2 to hold every write it missed: hints are replayed when its links
# are back, and anti-entropy compares replicas every 5 s.
CONVERGE_TIMEOUT_S=30
# Longest time one API request may take.
REQUEST_TIMEOUT_S=5
# Writes made while node 2 is stopped; every one must succeed (2 of 3 is a majority).
WRITES_WHILE_DOWN=20
# Lines of each node's log shown when a check fails.
LOG_LINES=40
OK='{"code":200,"success":true}'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-compose-test.XXXXXX")
UP=0
PHASES=()

log() { printf 'compose-test: %s\n' "$*" >&2; }

compose_command() {
  if [[ -n ${COMPOSE:-} ]]; then
    read -r -a COMPOSE_CMD <<<"$COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  else
    COMPOSE_CMD=(docker-compose)
  fi
  FILES=(-f docker-compose.yml)
  [[ -z ${OVERRIDE:-} ]] || FILES+=(-f "$OVERRIDE")
}

# compose TIMEOUT_S ARGS...: the compose command on this test's project.
compose() {
  local timeout_s=$1
  shift
  timeout "$timeout_s" "${COMPOSE_CMD[@]}" -p "$PROJECT" --env-file "$WORK/env" "${FILES[@]}" "$@"
}

cleanup() {
  if [[ $UP == 1 ]]; then
    log "removing the containers, network and volumes of $PROJECT"
    compose "$COMPOSE_TIMEOUT_S" down -v --remove-orphans >/dev/null 2>&1 ||
      log "WARNING: 'down -v' failed; remove project $PROJECT by hand"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# Interrupted or terminated: exit, so that the EXIT trap cleans up.
trap 'exit 130' INT TERM
# Names the command when set -e stops the script outside fail().
trap 'log "FAIL: line $LINENO: $BASH_COMMAND exited with status $?"' ERR

fail() {
  log "FAIL: $*"
  if [[ $UP == 1 ]]; then
    compose "$COMPOSE_TIMEOUT_S" ps >&2 || true
    compose "$COMPOSE_TIMEOUT_S" logs --no-color --tail="$LOG_LINES" >&2 || true
  fi
  exit 1
}

# Ends the current phase: logs and keeps its duration.
PHASE_START_MS=$(date +%s%3N)
phase_done() {
  local now_ms elapsed
  now_ms=$(date +%s%3N)
  elapsed=$(printf '%d.%01d' $(((now_ms - PHASE_START_MS) / 1000)) $(((now_ms - PHASE_START_MS) % 1000 / 100)))
  PHASES+=("$(printf '%-28s %6ss' "$1" "$elapsed")")
  log "ok  $1 (${elapsed}s)"
  PHASE_START_MS=$now_ms
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_env() {
  local commit
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
  RESP_PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
  cat >"$WORK/env" <<ENV
MOSTDB_CLUSTER_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
MOSTDB_PUBLISH_ADDRESS=$HOST
MOSTDB_NODE1_PORT=${PORTS[0]}
MOSTDB_NODE2_PORT=${PORTS[1]}
MOSTDB_NODE3_PORT=${PORTS[2]}
MOSTDB_NODE1_RESP_PORT=${RESP_PORTS[0]}
MOSTDB_NODE2_RESP_PORT=${RESP_PORTS[1]}
MOSTDB_NODE3_RESP_PORT=${RESP_PORTS[2]}
MOSTDB_IMAGE=$IMAGE
MOSTDB_COMMIT=$commit
ENV
  log "project $PROJECT (${COMPOSE_CMD[*]}), image $IMAGE, ports ${PORTS[*]}"
}

# The image's labels agree with its binary, and its health check is the binary's probe.
check_image() {
  local version labelled health
  version=$(docker run --rm --entrypoint /usr/local/bin/mostdb "$IMAGE" version)
  labelled=$(docker image inspect -f \
    'mostdb {{index .Config.Labels "org.opencontainers.image.version"}} (commit {{index .Config.Labels "org.opencontainers.image.revision"}},' "$IMAGE")
  [[ $version == "$labelled"* ]] ||
    fail "the image's labels say '$labelled ...', its binary says '$version' (Dockerfile MOSTDB_VERSION vs Cargo.toml?)"
  health=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE")
  [[ $health == '["CMD","/usr/local/bin/mostdb","probe"]' ]] || fail "unexpected health check $health"
  log "ok  $version; labels agree; health check $health"
}

container() { compose "$COMPOSE_TIMEOUT_S" ps -a -q "$1"; }

# wait_healthy SERVICE: the image's health check passes.
wait_healthy() {
  local id status deadline=$((SECONDS + HEALTHY_TIMEOUT_S))
  id=$(container "$1")
  [[ -n $id ]] || fail "$1 has no container"
  while ((SECONDS < deadline)); do
    [[ $(docker inspect -f '{{.State.Running}}' "$id") == true ]] ||
      fail "$1 exited with status $(docker inspect -f '{{.State.ExitCode}}' "$id")"
    status=$(docker inspect -f '{{.State.Health.Status}}' "$id")
    [[ $status == healthy ]] && return
    sleep 0.5
  done
  fail "$1 not healthy within ${HEALTHY_TIMEOUT_S}s (status: $status)"
}

# wait_ready PORT NAME: /readyz answers 200 (the node votes and reaches a majority).
wait_ready() {
  local code deadline=$((SECONDS + READY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$HOST:$1/readyz" || true)
    [[ $code == 200 ]] && return
    sleep 0.2
  done
  fail "$2: no 200 from /readyz within ${READY_TIMEOUT_S}s (last: $code)"
}

# post PORT PATH JSON: the answer's body.
post() {
  curl -sS --max-time "$REQUEST_TIMEOUT_S" -X POST --data-binary "$3" "http://$HOST:$1/mostdb/$2" ||
    echo "(request failed)"
}

# call PORT PATH JSON EXPECTED: the whole body must be EXPECTED.
call() {
  local body
  body=$(post "$1" "$2" "$3")
  [[ $body == "$4" ]] || fail "POST :$1/mostdb/$2 $3: expected $4, got $body"
}

found() { printf '{"code":200,"success":true,"result":{"key":"%s","value":"%s"}}' "$1" "$2"; }

# converged PORT: the node's own copy of every key holds its value; prints the first that
# does not.
converged() {
  local key
  for key in "${!WRITTEN[@]}"; do
    if [[ $(post "$1" api/get "{\"key\":\"$key\"}") != "$(found "$key" "${WRITTEN[$key]}")" ]]; then
      echo "$key"
      return 1
    fi
  done
}

wait_converged() {
  local lagging deadline=$((SECONDS + CONVERGE_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    lagging=$(converged "$1") && return
    sleep 0.5
  done
  fail "node2 still lacks '$lagging' (of ${#WRITTEN[@]} keys) after ${CONVERGE_TIMEOUT_S}s"
}

compose_command
write_env
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  compose "$BUILD_TIMEOUT_S" build >"$WORK/build.log" 2>&1 ||
    { tail -n 30 "$WORK/build.log" >&2; fail "the image build failed (log above)"; }
fi
check_image
phase_done "build image"

UP=1
compose "$COMPOSE_TIMEOUT_S" up -d --no-build
for node in "${NODES[@]}"; do wait_healthy "$node"; done
phase_done "up, every node healthy"
for i in 0 1 2; do wait_ready "${PORTS[$i]}" "${NODES[$i]}"; done
phase_done "every node ready"

declare -A WRITTEN=()
call "${PORTS[0]}" set '{"key":"ping","value":"pong"}' "$OK"
call "${PORTS[2]}" get '{"key":"ping"}' "$(found ping pong)"
WRITTEN[ping]=pong
phase_done "write node1, read node3"

# The Redis port, published by the compose file: read what HTTP wrote, write what HTTP reads.
got=$(redis-cli -h "$HOST" -p "${RESP_PORTS[1]}" GET ping) || fail "redis-cli could not reach node2"
[[ $got == pong ]] || fail "redis-cli GET ping on node2: '$got'"
got=$(redis-cli -h "$HOST" -p "${RESP_PORTS[2]}" SET resp-key via-redis) || fail "redis-cli SET on node3"
[[ $got == OK ]] || fail "redis-cli SET on node3: '$got'"
call "${PORTS[0]}" get '{"key":"resp-key"}' "$(found resp-key via-redis)"
WRITTEN[resp-key]=via-redis
phase_done "redis-cli: read node2, write node3, read node1 over HTTP"

compose "$COMPOSE_TIMEOUT_S" stop node2
status=$(docker inspect -f '{{.State.ExitCode}}' "$(container node2)")
[[ $status == 0 ]] || fail "node2 exited with status $status after SIGTERM (137: killed)"
phase_done "stop node2 (exit status 0)"

for ((i = 1; i <= WRITES_WHILE_DOWN; i++)); do
  port=${PORTS[$((i % 2 * 2))]} # node1 and node3 in turn
  call "$port" set "{\"key\":\"missed-$i\",\"value\":\"v$i\"}" "$OK"
  WRITTEN[missed-$i]=v$i
done
call "${PORTS[0]}" get "{\"key\":\"missed-$WRITES_WHILE_DOWN\"}" "$(found "missed-$WRITES_WHILE_DOWN" "v$WRITES_WHILE_DOWN")"
phase_done "$WRITES_WHILE_DOWN writes with node2 down"

compose "$COMPOSE_TIMEOUT_S" start node2
wait_healthy node2
wait_ready "${PORTS[1]}" node2
phase_done "start node2, ready"
wait_converged "${PORTS[1]}"
phase_done "node2 holds all ${#WRITTEN[@]} keys"

compose "$COMPOSE_TIMEOUT_S" down -v --remove-orphans
UP=0
phase_done "down -v"
log "phases:"
printf '  %s\n' "${PHASES[@]}" >&2
log "PASS"
