# debias container image: a Debian 12 build stage and a slim runtime stage
# with only the runtime libraries and the two binaries.
# Build and run with podman on machines without a Docker engine: see
# docs/OPERATIONS.md.

FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDEBIAS_BUILD_TESTS=OFF -DDEBIAS_BUILD_BENCH=OFF \
 && cmake --build /build --target debiasd debiasctl \
 && strip /build/server/debiasd /build/client/debiasctl

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libabsl20220623 libspdlog1.10 libfmt9 \
      ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/debias --shell /usr/sbin/nologin debias \
 && mkdir -p /var/lib/debias && chown debias:debias /var/lib/debias
COPY --from=build /build/server/debiasd /build/client/debiasctl /usr/local/bin/
USER debias
VOLUME /var/lib/debias
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["debiasctl", "health", "--server", "127.0.0.1:50051", "--timeout", "3"]
ENTRYPOINT ["/usr/bin/tini", "--", "debiasd", "--data_dir", "/var/lib/debias"]
CMD ["--listen", "0.0.0.0:50051"]
