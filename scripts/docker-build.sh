#!/usr/bin/env bash
# Builds the mostdb image without pulling anything: the image is FROM scratch, and its whole
# root filesystem is gathered here from this machine and handed to Docker as one tar.
#
#   1. cargo build --release --bin mostdb
#   2. stage target/docker-root/rootfs/: the binary at /usr/local/bin/mostdb, exactly the
#      shared libraries `ldd` lists for it plus the dynamic loader (at the paths the binary
#      asks for), /etc/passwd and /etc/group with a non-root `mostdb` user, /opt/mostdb, /tmp
#   3. pack it as target/docker-root/rootfs.tar with fixed owners, modes and times: root owns
#      everything except /opt/mostdb (uid/gid 10001), so ownership does not depend on who
#      runs this script, and an unchanged binary gives an unchanged layer
#   4. docker build -t "$IMAGE" . (the Dockerfile ADDs the tar, which keeps its owners;
#      .dockerignore keeps everything else out of the context)
#
# Environment:
#   IMAGE=mostdb:latest   tag to build
#   CARGO_TARGET_DIR      cargo's target directory (default: ./target)
#   SKIP_CARGO=1          use the existing release binary instead of running cargo
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
IMAGE=${IMAGE:-mostdb:latest}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/mostdb
# The Dockerfile and .dockerignore expect exactly this path inside the build context.
OUT=$REPO/target/docker-root
ROOT=$OUT/rootfs
# The unprivileged user the server runs as (the Dockerfile's USER must match).
APP_UID=10001
# Every file in the tar gets this time, so identical inputs give an identical layer.
TAR_MTIME='2000-01-01 00:00:00Z'

log() { printf 'docker-build: %s\n' "$*" >&2; }

build_binary() {
  if [[ ${SKIP_CARGO:-0} == 1 ]]; then
    log "SKIP_CARGO=1: using $BIN as it is"
  else
    log "cargo build --release --bin mostdb"
    cargo build --release --bin mostdb
  fi
  [[ -x $BIN ]] || { log "no binary at $BIN"; exit 1; }
}

# Every absolute path ldd prints: the libraries ("name => /path (addr)") and the loader
# ("/lib64/ld-linux-x86-64.so.2 (addr)"); linux-vdso has no path and is skipped.
shared_objects() {
  local out
  out=$(ldd "$1") || { log "ldd failed on $1 (a static binary needs no libraries: $out)"; exit 1; }
  if grep -q 'not found' <<<"$out"; then
    log "missing libraries: $out"
    exit 1
  fi
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$out" | sort -u
}

stage_rootfs() {
  rm -rf "$OUT"
  mkdir -p "$ROOT"/{usr/local/bin,etc,opt/mostdb,tmp}
  install -m 0755 "$BIN" "$ROOT/usr/local/bin/mostdb"
  local lib
  for lib in $(shared_objects "$BIN"); do
    mkdir -p "$ROOT$(dirname "$lib")"
    # -L: the file itself, at the path the binary or loader asks for (not the host's symlink).
    cp -L "$lib" "$ROOT$lib"
    chmod 0755 "$ROOT$lib"
    log "library $lib"
  done
  cat >"$ROOT/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
mostdb:x:$APP_UID:$APP_UID:mostdb:/opt/mostdb:/sbin/nologin
PASSWD
  cat >"$ROOT/etc/group" <<GROUP
root:x:0:
mostdb:x:$APP_UID:
GROUP
  chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group"
  chmod 0750 "$ROOT/opt/mostdb"
  chmod 1777 "$ROOT/tmp"
}

# Two passes because GNU tar sets one owner per invocation: everything but the store root
# as root, then the store root as the mostdb user.
pack_rootfs() {
  local tar=$OUT/rootfs.tar
  local common=(--sort=name --numeric-owner --mtime="$TAR_MTIME" --format=gnu -C "$ROOT")
  tar -cf "$tar" "${common[@]}" --owner=0 --group=0 --exclude=./opt/mostdb .
  tar -rf "$tar" "${common[@]}" --owner=$APP_UID --group=$APP_UID ./opt/mostdb
  log "root filesystem: $(du -h "$tar" | cut -f1) in $tar"
  tar -tvf "$tar" >&2
}

build_binary
stage_rootfs
pack_rootfs
log "docker build -t $IMAGE ."
docker build -t "$IMAGE" .
log "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes"
