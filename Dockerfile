# mostdb server image: a Rust builder stage, then a small Debian runtime stage.
#
#   docker build -t mostdb .
#   docker build -t mostdb --build-arg MOSTDB_COMMIT=$(git rev-parse --short=12 HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --build-arg MOSTDB_CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
# Written for the classic builder as well as BuildKit (docker-compose v1 uses the classic
# one): no `RUN --mount`, no heredocs. The base images are build arguments; on a machine
# without registry access, scripts/docker-bases.sh builds local stand-ins under exactly
# these default names, and this same file is then built as it is.

# The builder: Debian bookworm with gcc (ring builds C and assembly), the pinned Rust release
# and CA certificates for fetching crates. The runtime base must be the same Debian release,
# because the binary links against the builder's glibc.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src

# Dependencies first, in a layer of their own that only a change of Cargo.toml, Cargo.lock,
# build.rs or a bench file invalidates: the manifest and stubs of every target it names
# (cargo refuses a manifest whose [[bin]] or [[bench]] file is missing; only the stub
# main.rs and the empty library are compiled).
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches benches
RUN mkdir -p src/bin \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/mostdb-ceiling.rs \
 && : > src/lib.rs \
 && cargo build --release --locked --bin mostdb \
 && rm -rf src

# After the dependency layer, so that a new commit or date does not rebuild the dependencies.
# build.rs reads both: the commit for `mostdb version` (there is no .git in the build
# context), the date for reproducible builds (unset: the day of the build).
ARG MOSTDB_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
COPY src src
# touch: COPY keeps the files' own times, which can be older than the stub build above, and
# cargo would then keep the stub binary. The stub prints nothing, so the version line proves
# that the real binary was built.
RUN touch src/main.rs src/lib.rs \
 && MOSTDB_COMMIT="$MOSTDB_COMMIT" cargo build --release --locked --bin mostdb \
 && install -m 0755 target/release/mostdb /usr/local/bin/mostdb \
 && /usr/local/bin/mostdb version | grep '^mostdb '

FROM ${RUNTIME_IMAGE}
# The labels' values: the release in Cargo.toml (keep them equal: scripts/compose-test.sh
# checks the label against `mostdb version`), the commit, the build time (RFC 3339) and the
# repository's URL (Cargo.toml names none yet).
ARG MOSTDB_VERSION=0.3.0
ARG MOSTDB_COMMIT=unknown
ARG MOSTDB_CREATED=unknown
ARG MOSTDB_SOURCE=unknown
LABEL org.opencontainers.image.title="mostdb" \
      org.opencontainers.image.description="A leaderless, replicated key-value database: an operation succeeds when most nodes agree" \
      org.opencontainers.image.version="${MOSTDB_VERSION}" \
      org.opencontainers.image.revision="${MOSTDB_COMMIT}" \
      org.opencontainers.image.created="${MOSTDB_CREATED}" \
      org.opencontainers.image.source="${MOSTDB_SOURCE}" \
      org.opencontainers.image.licenses="MIT"

# The server runs as an unprivileged user with a fixed uid (10001), so that a volume's owner
# means the same on every host. A new volume starts as a copy of the image's /opt/mostdb,
# so it is owned by that user too.
RUN groupadd --gid 10001 mostdb \
 && useradd --uid 10001 --gid 10001 --home-dir /opt/mostdb --no-create-home \
      --shell /usr/sbin/nologin mostdb \
 && install -d -o 10001 -g 10001 -m 0750 /opt/mostdb
COPY --from=build /usr/local/bin/mostdb /usr/local/bin/mostdb

# Listens on 0.0.0.0:5379 by default (MOSTDB_HOST, MOSTDB_SERVER_PORT); Redis clients on
# 6379 when MOSTDB_RESP_PORT=6379 (the compose file sets it).
ENV MOSTDB_STORE_ROOT=/opt/mostdb
EXPOSE 5379 6379
VOLUME /opt/mostdb
WORKDIR /opt/mostdb
USER 10001:10001

# Liveness (/healthz), not readiness (/readyz): readiness is 503 while the node reaches no
# majority, which is a fact about its peers, not about this container. As the health check
# it would make every node of a cold cluster "unhealthy" until a majority is up, so a compose
# file whose nodes wait for each other's health (depends_on: service_healthy) would never
# start, and a supervisor that restarts unhealthy containers would restart healthy nodes
# during a partition. Probe /readyz (`mostdb probe --ready`) where traffic is routed.
# The probe bounds each step by 2 s; --timeout is a backstop above that.
HEALTHCHECK --interval=5s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/mostdb", "probe"]

# On SIGTERM mostdb stops accepting, finishes the requests in flight, persists the store and
# exits 0; give `docker stop` a timeout (-t) long enough for that on a busy node.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mostdb"]
