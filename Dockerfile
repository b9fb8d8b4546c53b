# debias container image: a Debian 12 build stage and a slim Debian 12 runtime
# stage with only the runtime libraries and the two binaries (debiasd, debiasctl).
#
# Build (Docker):  docker build -t debias:dev .
# Build (podman on machines without a Docker engine, as `make container-smoke` does):
#   podman build --runtime runc --pull=never --format docker -t localhost/debias:dev .
# `--format docker` keeps the HEALTHCHECK (the OCI image format has no health check).
# See docs/OPERATIONS.md, "Containers and Kubernetes".

# ---------------------------------------------------------------------------
# Build stage: the same toolchain and CMake flags as `make test` (Ninja,
# Release), but only the two shipped targets, no tests and no benchmarks.
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The dependency layer depends only on the package list, so source changes
# reuse it. DEBIAS_WITH_PYTHON=0: the Python client's packages are not needed.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN DEBIAS_WITH_PYTHON=0 bash scripts/install-deps.sh && apt-get clean && rm -rf /var/lib/apt/lists/*
# Only what the two targets need: a change under docs/, tests/, bench/ or
# deploy/ does not invalidate the compile.
COPY CMakeLists.txt ./
COPY proto proto
COPY core core
COPY wire wire
COPY server server
COPY client client
# ccache (found by CMakeLists.txt) keeps its cache in a build cache mount, so a
# rebuild after a source change recompiles only what changed.
ENV CCACHE_DIR=/root/.cache/ccache
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDEBIAS_BUILD_TESTS=OFF -DDEBIAS_BUILD_BENCH=OFF >/dev/null \
 && cmake --build /build --target debiasd debiasctl \
 && strip /build/server/debiasd /build/client/debiasctl \
 && /build/server/debiasd --version

# ---------------------------------------------------------------------------
# Runtime stage: shared libraries of gRPC, protobuf, RocksDB, Abseil, spdlog
# cpp-httplib (the metrics endpoint), and OpenMP, BLAS and LAPACK (faiss is
# linked statically from libfaiss-dev; they are its shared dependencies); tini as PID 1 (forwards SIGTERM, reaps zombies of `exec`ed probes).
FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libabsl20220623 \
      libspdlog1.10 libfmt9 libcpp-httplib0.11 libgomp1 libblas3 liblapack3 \
      ca-certificates tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/debias \
      --shell /usr/sbin/nologin debias \
 && mkdir -p /var/lib/debias && chown debias:debias /var/lib/debias
COPY --from=build /build/server/debiasd /build/client/debiasctl /usr/local/bin/
# Fails the build if a runtime library is missing.
RUN debiasd --version && debiasctl --version
USER 10001:10001
# The RocksDB store lives in /var/lib/debias/store; mount a volume on
# /var/lib/debias to keep it across containers.
VOLUME /var/lib/debias
WORKDIR /var/lib/debias
ENV DEBIAS_SERVER=127.0.0.1:50051
# 50051: gRPC; 9464: Prometheus /metrics (plain HTTP, no payloads or tokens).
EXPOSE 50051 9464
# The gRPC health service through the client (`debiasctl health` exits 0 only
# on SERVING).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["debiasctl", "health", "--server", "127.0.0.1:50051", "--timeout", "3"]
# debiasd handles SIGTERM itself (in-flight calls finish, the store is closed,
# exit code 0); tini forwards the signal and returns debiasd's exit code.
ENTRYPOINT ["/usr/bin/tini", "--", "debiasd", "--data_dir", "/var/lib/debias/store"]
# Arguments after the image name replace these (keep --listen 0.0.0.0:50051).
# --allow_insecure: plaintext on the container's own network namespace; publish
# the port on 127.0.0.1 or put TLS in front (or pass --tls_cert/--tls_key and
# drop it; docs/SECURITY.md).
# Checkpoints of the Backup RPC go to /var/lib/debias/backups (same volume:
# copy them elsewhere for off-machine backups; docs/OPERATIONS.md).
CMD ["--listen", "0.0.0.0:50051", "--allow_insecure", "--metrics_listen", "0.0.0.0:9464", \
     "--backup_dir", "/var/lib/debias/backups"]
