#!/usr/bin/env bash
# Builds local stand-ins for the two base images the Dockerfile names, for a Docker engine that
# cannot pull them (no registry access). Afterwards `docker build -t mostdb .` builds the very
# same Dockerfile as on any other machine. With registry access this script is not needed.
#
#   runtime base (RUNTIME_IMAGE, debian:bookworm-slim): a Debian bookworm root filesystem made
#     by `debootstrap --variant=minbase` from Debian's mirror, trimmed as the slim image is
#     (no manuals, docs or translations), imported with `docker import`
#   builder base (RUST_IMAGE, rust:1.95-slim-bookworm): the same plus gcc, libc6-dev and
#     ca-certificates (what the official slim Rust image adds), and this machine's active Rust
#     toolchain copied in at the official image's layout (RUSTUP_HOME=/usr/local/rustup,
#     CARGO_HOME=/usr/local/cargo, both cargo and rustc on PATH); only cargo, rustc and what
#     they load (their libraries, the standard library, the linker wrapper)
#
# The names come from the Dockerfile's `ARG RUNTIME_IMAGE=` and `ARG RUST_IMAGE=` lines, so the
# two cannot disagree. An image that already exists is kept (FORCE=1 rebuilds both). Needs
# root (debootstrap, chroot); installs debootstrap from Debian's packages when it is missing.
#
# The builder base also trusts every CA certificate this machine trusts beyond Debian's
# bundle: where the way to crates.io passes a TLS-inspecting proxy, cargo inside `docker
# build` must trust its CA as the host's tools do, and the Dockerfile must not know about it.
#
# Environment:
#   FORCE=1                                rebuild the images even if they exist
#   DEBIAN_MIRROR=http://deb.debian.org/debian
set -euo pipefail

cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The Debian release of both bases; the binary built on the one runs on the other.
SUITE=bookworm
BUILDER_PACKAGES=gcc,libc6-dev,ca-certificates
# Longest time one debootstrap may take (downloads and unpacks 90 to 130 packages).
DEBOOTSTRAP_TIMEOUT_S=900
# Longest time installing debootstrap itself may take.
APT_TIMEOUT_S=300
# Longest time `docker import` of one root filesystem may take (the builder's is ~900 MB).
IMPORT_TIMEOUT_S=900
# Longest time the check of a built image (compile and run a program) may take.
CHECK_TIMEOUT_S=120
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'docker-bases: %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

# The default value of `ARG NAME=value` in the Dockerfile.
dockerfile_default() {
  local value
  value=$(sed -n "s/^ARG $1=//p" Dockerfile | head -n 1)
  [[ -n $value ]] || fail "the Dockerfile has no 'ARG $1=' line"
  printf '%s\n' "$value"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Whether to build image $1: not when it exists, unless FORCE=1.
wanted() {
  if image_exists "$1" && [[ ${FORCE:-0} != 1 ]]; then
    log "$1: exists, kept (FORCE=1 rebuilds it)"
    return 1
  fi
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap"
  timeout "$APT_TIMEOUT_S" apt-get install -y debootstrap >/dev/null ||
    { timeout "$APT_TIMEOUT_S" apt-get update >/dev/null &&
      timeout "$APT_TIMEOUT_S" apt-get install -y debootstrap >/dev/null; } ||
    fail "could not install debootstrap"
}

# debootstrap DIR [PACKAGES]: a minimal bookworm root filesystem in DIR. The packages both
# images share are downloaded once ($WORK/cache).
bootstrap() {
  local dir=$1 started=$SECONDS options=(--variant=minbase)
  [[ -z ${2:-} ]] || options+=(--include="$2")
  log "debootstrap ${options[*]} $SUITE $dir"
  if ! timeout "$DEBOOTSTRAP_TIMEOUT_S" debootstrap "${options[@]}" \
    --cache-dir="$WORK/cache" "$SUITE" "$dir" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 20 "$WORK/debootstrap.log" >&2
    fail "debootstrap failed or took over ${DEBOOTSTRAP_TIMEOUT_S}s (log above)"
  fi
  log "  $(du -sh "$dir" | cut -f1) in $((SECONDS - started))s"
}

# What the official slim image does: later package installs leave out manuals, docs and
# translations too (dpkg path-exclude), the ones already there are removed, and the apt
# sources name the updates and security suites beside the release.
slim() {
  local dir=$1
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
  find "$dir/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,groff,info,lintian}/* "$dir/var/lib/apt/lists/"*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -f "$dir/var/cache/apt/"*.bin "$dir/var/cache/apt/archives/"*.deb
  # The build host's resolver and name: Docker provides a container's own.
  rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
}

# import DIR IMAGE [--change ...]: the root filesystem DIR as the image IMAGE.
import() {
  local dir=$1 image=$2 started=$SECONDS
  shift 2
  log "docker import $image"
  tar --numeric-owner -C "$dir" -c . |
    timeout "$IMPORT_TIMEOUT_S" docker import --change "ENV PATH=$IMAGE_PATH" \
      --change 'CMD ["bash"]' "$@" - "$image" >/dev/null ||
    fail "docker import of $image failed or took over ${IMPORT_TIMEOUT_S}s"
  log "  $image: $(($(docker image inspect -f '{{.Size}}' "$image") / 1024 / 1024)) MiB in $((SECONDS - started))s"
}

# The certificates of this machine's bundle that the image's bundle lacks become local CAs of
# the image (update-ca-certificates keeps them through later runs).
trust_local_cas() {
  local dir=$1 host_bundle=/etc/ssl/certs/ca-certificates.crt
  [[ -r $host_bundle ]] || return 0
  python3 - "$host_bundle" "$dir/etc/ssl/certs/ca-certificates.crt" \
    "$dir/usr/local/share/ca-certificates" <<'PY'
import re, sys
host, image, out = sys.argv[1:]
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
known = set(pem.findall(open(image).read()))
extra = [c for c in pem.findall(open(host).read()) if c not in known]
for i, cert in enumerate(extra):
    open(f"{out}/local-ca-{i}.crt", "w").write(cert + "\n")
print(len(extra))
PY
}

# The active toolchain's files that cargo and rustc use, at the official image's paths.
install_toolchain() {
  local dir=$1 name sysroot release host dest
  name=$(rustup show active-toolchain | awk '{ print $1; exit }')
  sysroot=$(rustup run "$name" rustc --print sysroot)
  release=$(rustup run "$name" rustc -vV | sed -n 's/^release: //p')
  host=$(rustup run "$name" rustc -vV | sed -n 's/^host: //p')
  [[ $release == "$RUST_RELEASE" || $release == "$RUST_RELEASE".* ]] ||
    fail "$RUST_IMAGE needs Rust $RUST_RELEASE, the active toolchain ($name) is $release"
  RUST_VERSION=$release
  dest=$dir/usr/local/rustup/toolchains/$release-$host
  log "toolchain $name ($release, $sysroot) -> /usr/local/rustup/toolchains/$release-$host"
  mkdir -p "$dest/bin" "$dest/lib/rustlib" "$dir/usr/local/cargo/bin"
  cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$dest/bin/"
  # rustc's driver and LLVM, then the standard library and the linker (rust-lld, gcc-ld).
  cp -a "$sysroot"/lib/*.so* "$dest/lib/"
  cp -a "$sysroot/lib/rustlib/$host" "$dest/lib/rustlib/"
  ln -s "../../rustup/toolchains/$release-$host/bin/cargo" "$dir/usr/local/cargo/bin/cargo"
  ln -s "../../rustup/toolchains/$release-$host/bin/rustc" "$dir/usr/local/cargo/bin/rustc"
  # As in the official image: any user may fill the registry cache.
  chmod -R a+w "$dir/usr/local/cargo" "$dir/usr/local/rustup"
  log "  toolchain: $(du -sh "$dest" | cut -f1)"
}

build_runtime() {
  wanted "$RUNTIME_IMAGE" || return 0
  bootstrap "$WORK/runtime"
  slim "$WORK/runtime"
  import "$WORK/runtime" "$RUNTIME_IMAGE"
  timeout "$CHECK_TIMEOUT_S" docker run --rm "$RUNTIME_IMAGE" sh -c 'command -v useradd >/dev/null' ||
    fail "$RUNTIME_IMAGE: no useradd (the Dockerfile's runtime stage needs it)"
  rm -rf "$WORK/runtime"
}

build_rust() {
  wanted "$RUST_IMAGE" || return 0
  bootstrap "$WORK/rust" "$BUILDER_PACKAGES"
  slim "$WORK/rust"
  local cas
  cas=$(trust_local_cas "$WORK/rust")
  if ((cas > 0)); then
    chroot "$WORK/rust" update-ca-certificates >/dev/null
    log "  trusts $cas CA certificate(s) of this machine beyond Debian's bundle"
  fi
  install_toolchain "$WORK/rust"
  import "$WORK/rust" "$RUST_IMAGE" \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change "ENV PATH=/usr/local/cargo/bin:$IMAGE_PATH" --change "ENV RUST_VERSION=$RUST_VERSION"
  # cargo and rustc run, and rustc links a program (gcc as the driver, rust-lld) that runs.
  timeout "$CHECK_TIMEOUT_S" docker run --rm "$RUST_IMAGE" sh -c \
    'cargo --version && echo "fn main() {}" | rustc -o /tmp/check - && /tmp/check' >&2 ||
    fail "$RUST_IMAGE: cargo or rustc does not work in the image"
  rm -rf "$WORK/rust"
}

[[ $(id -u) == 0 ]] || fail "needs root (debootstrap and chroot)"
RUNTIME_IMAGE=$(dockerfile_default RUNTIME_IMAGE)
RUST_IMAGE=$(dockerfile_default RUST_IMAGE)
# rust:1.95-slim-bookworm -> 1.95
RUST_RELEASE=$(sed -n 's/^[^:]*:\([0-9][0-9.]*\)-.*/\1/p' <<<"$RUST_IMAGE")
[[ -n $RUST_RELEASE ]] || fail "no Rust release in '$RUST_IMAGE' (expected e.g. rust:1.95-slim-bookworm)"
[[ $RUNTIME_IMAGE == *$SUITE* && $RUST_IMAGE == *$SUITE* ]] ||
  fail "both base images must be Debian $SUITE: $RUNTIME_IMAGE, $RUST_IMAGE"

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/mostdb-bases.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Interrupted or terminated: exit, so that the EXIT trap cleans up.
trap 'exit 130' INT TERM
mkdir -p "$WORK/cache"
started=$SECONDS
if ! image_exists "$RUNTIME_IMAGE" || ! image_exists "$RUST_IMAGE" || [[ ${FORCE:-0} == 1 ]]; then
  ensure_debootstrap
fi
build_runtime
build_rust
log "done in $((SECONDS - started))s: $RUNTIME_IMAGE, $RUST_IMAGE"
