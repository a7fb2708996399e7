#!/usr/bin/env bash
# Smoke test of the Docker image: build it (`docker build`; without a registry run
# scripts/docker-bases.sh first), run one container with its port published on loopback, wait
# for /readyz and for the image's health check, set/get/del with the exact bodies of the
# original API, check which I/O driver each core got, stop it (exit status must be 0), start
# the same container again and check the data survived, then remove it.
#
# I/O driver: Docker's default seccomp profile blocks io_uring since Docker 25 (moby#47532),
# and mostdb must fall back to epoll there. Older engines (20.10 included) allow io_uring, so
# by default the container runs under a profile that blocks exactly the three io_uring
# syscalls with EPERM, as Docker >= 25 does, and every core must report "epoll". Note that
# this profile allows every other syscall: it tests the fallback, not Docker's sandbox.
#
# Environment:
#   SECCOMP=uring-blocked   or "engine-default": run under the engine's own default profile
#                           and accept whichever driver each core reports (it is logged)
#   IMAGE=mostdb:latest     image to build and test
#   SKIP_BUILD=1            test the existing image instead of building it
set -eEuo pipefail

cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-mostdb:latest}
SECCOMP=${SECCOMP:-uring-blocked}
NAME=mostdb-smoke-$$
HOST=127.0.0.1
# Longest wait for the container to answer /readyz after it is started.
READY_TIMEOUT_S=30
# Longest wait for the image's health check to pass (it probes every 5 s).
HEALTHY_TIMEOUT_S=30
# Time `docker stop` gives mostdb after SIGTERM before it sends SIGKILL (exit status 137).
STOP_TIMEOUT_S=10
# Longest time one API request may take.
REQUEST_TIMEOUT_S=5
# The uid the image runs as (Dockerfile USER).
APP_UID=10001
OK='{"code":200,"success":true}'
PONG='{"code":200,"success":true,"result":{"key":"ping","value":"pong"}}'
NOT_FOUND='{"code":500,"message":"NotFound","success":false}'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mostdb-docker-smoke.XXXXXX")
CREATED=0

cleanup() {
  if [[ $CREATED == 1 ]]; then
    # -v: also the anonymous volume behind VOLUME /opt/mostdb.
    docker rm -f -v "$NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# Names the command when set -e stops the script outside fail().
trap 'log "FAIL: line $LINENO: $BASH_COMMAND exited with status $?"' ERR

log() { printf 'docker-smoke: %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  if [[ $CREATED == 1 ]]; then
    log "container log:"
    docker logs "$NAME" >&2 2>&1 || true
  fi
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sets SECCOMP_OPTS. Docker >= 25's default profile has no rule for the io_uring syscalls
# and answers EPERM, which this profile reproduces.
seccomp_options() {
  SECCOMP_OPTS=()
  case $SECCOMP in
    uring-blocked)
      cat >"$WORK/seccomp.json" <<'JSON'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {
      "names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
      "action": "SCMP_ACT_ERRNO",
      "errnoRet": 1
    }
  ]
}
JSON
      SECCOMP_OPTS=(--security-opt "seccomp=$WORK/seccomp.json")
      ;;
    engine-default) ;;
    *) fail "SECCOMP must be uring-blocked or engine-default, not '$SECCOMP'" ;;
  esac
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S)) code
  while ((SECONDS < deadline)); do
    [[ $(docker inspect -f '{{.State.Running}}' "$NAME") == true ]] ||
      fail "container exited with status $(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$HOST:$PORT/readyz" || true)
    [[ $code == 200 ]] && return
    sleep 0.2
  done
  fail "no 200 from /readyz within ${READY_TIMEOUT_S}s"
}

wait_healthy() {
  local status deadline=$((SECONDS + HEALTHY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$NAME")
    [[ $status == healthy ]] && return
    sleep 0.5
  done
  fail "health check not passing within ${HEALTHY_TIMEOUT_S}s (status: $status)"
}

# call OP JSON EXPECTED: POST /mostdb/OP and compare the whole body.
call() {
  local body
  body=$(curl -sS --max-time "$REQUEST_TIMEOUT_S" -X POST -H 'Content-Type: application/json' \
    --data-binary "$2" "http://$HOST:$PORT/mostdb/$1") || fail "$1 $2: request failed"
  [[ $body == "$3" ]] || fail "$1 $2: expected $3, got $body"
  log "ok  $1 $2 -> $body"
}

# The log lines of the container's current run only: from its last "mostdb starting" line.
# (Not `docker logs --since StartedAt`: the first lines can carry an earlier timestamp.)
run_log() {
  docker logs "$NAME" 2>&1 | awk '/mostdb starting/ { run = "" } { run = run $0 "\n" } END { printf "%s", run }'
}

# Every core of this run logged its driver once, and (with io_uring blocked) it is epoll.
check_drivers() {
  local lines threads cores
  lines=$(run_log)
  threads=$(grep -m1 'mostdb starting' <<<"$lines" | grep -o 'threads=[0-9]*' | cut -d= -f2 || true)
  [[ -n $threads ]] || fail "no 'mostdb starting ... threads=N' line in the log"
  cores=$(grep 'core event loop up' <<<"$lines" || true)
  log "driver per core:"$'\n'"$cores"
  [[ $(grep -c . <<<"$cores") == "$threads" ]] || fail "expected $threads 'core event loop up' lines"
  for ((core = 0; core < threads; core++)); do
    grep -q "core=$core driver=\"\(io_uring\|epoll\)\"" <<<"$cores" || fail "core $core logged no driver"
  done
  if [[ $SECCOMP == uring-blocked ]] && grep -q 'driver="io_uring"' <<<"$cores"; then
    fail "io_uring is blocked by the seccomp profile, yet a core reports io_uring"
  fi
}

check_user() {
  local uids
  uids=$(docker top "$NAME" -o uid,pid,comm | awk 'NR > 1 { print $1 }' | sort -u)
  [[ $uids == "$APP_UID" ]] || fail "the server runs as uid '$uids', expected $APP_UID"
  log "ok  runs as uid $APP_UID"
}

stop_container() {
  local status
  docker stop -t "$STOP_TIMEOUT_S" "$NAME" >/dev/null
  status=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
  [[ $status == 0 ]] || fail "exit status after docker stop: $status (137 = killed after ${STOP_TIMEOUT_S}s)"
  log "ok  docker stop -> exit status 0"
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  docker build -t "$IMAGE" \
    --build-arg MOSTDB_COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" .
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "image $IMAGE: $size bytes ($((size / 1024 / 1024)) MiB)"

seccomp_options
PORT=$(free_port)
log "seccomp: $SECCOMP; publishing $HOST:$PORT -> 5379"
CREATED=1
docker run -d --name "$NAME" -p "$HOST:$PORT:5379" "${SECCOMP_OPTS[@]}" "$IMAGE" >/dev/null
wait_ready
log "ok  /readyz 200"
wait_healthy
log "ok  health check passes"
check_user
call set '{"key":"ping","value":"pong"}' "$OK"
call get '{"key":"ping"}' "$PONG"
call set '{"key":"gone","value":"soon"}' "$OK"
call del '{"key":"gone"}' "$OK"
call get '{"key":"gone"}' "$NOT_FOUND"
check_drivers
stop_container
grep -q 'stopped cleanly' <<<"$(run_log)" || fail "no 'stopped cleanly' in the log"

log "restarting the same container"
docker start "$NAME" >/dev/null
wait_ready
log "ok  /readyz 200 after restart"
store_line=$(run_log | grep -m1 'store open' || true)
log "store after restart: ${store_line#* INFO }"
[[ $store_line == *created=false* ]] || fail "the restarted server created a new store"
[[ $store_line == *last_shutdown_clean=true* ]] || fail "the store does not record a clean shutdown"
call get '{"key":"ping"}' "$PONG"
call get '{"key":"gone"}' "$NOT_FOUND"
check_drivers
stop_container
log "PASS"
