# mostdb server image, built without pulling a base image.
#
# There is no `FROM debian`/`FROM rust` stage on purpose: this file must build on a Docker
# engine that has no images and no registry access. The image is FROM scratch and its whole
# root filesystem is one tar that scripts/docker-build.sh prepares from this machine:
# it runs `cargo build --release --bin mostdb`, gathers target/docker-root/rootfs.tar (the
# binary at /usr/local/bin/mostdb, exactly the shared libraries `ldd` lists for it and the
# dynamic loader, /etc/passwd and /etc/group with the non-root user `mostdb` (uid 10001),
# /opt/mostdb owned by that user, /tmp) and then runs `docker build -t mostdb:latest .`.
# Build with:  scripts/docker-build.sh        Smoke-test with:  scripts/docker-smoke.sh
#
# The libraries come from the build machine, so the image carries the glibc the binary was
# linked against; there is nothing else in it (no shell, no package manager).
#
# No HEALTHCHECK: Docker runs a health check inside the container, and this image has no
# shell or curl to probe GET /readyz with. Probe /readyz (ready) or /healthz from outside
# (orchestrator, compose with a sidecar); if the mostdb binary gains a probe subcommand,
# `HEALTHCHECK CMD ["/usr/local/bin/mostdb", "<probe>"]` can use it.
FROM scratch

# ADD, not COPY: ADD unpacks a local tar keeping the owners and modes recorded in it
# (root everywhere, 10001 on /opt/mostdb, 1777 on /tmp); COPY would make everything root's.
ADD target/docker-root/rootfs.tar /

# Listens on 0.0.0.0:5379 by default (MOSTDB_HOST, MOSTDB_SERVER_PORT).
ENV MOSTDB_STORE_ROOT=/opt/mostdb
EXPOSE 5379
# A new volume starts as a copy of the image's /opt/mostdb, so it is owned by 10001 too.
VOLUME /opt/mostdb
WORKDIR /opt/mostdb
USER 10001:10001
# mostdb stops accepting, finishes requests in flight, persists the store and exits 0 on
# SIGTERM; give `docker stop` a timeout (-t) long enough for that on a busy node.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mostdb"]
