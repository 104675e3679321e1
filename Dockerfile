# syntax=docker/dockerfile:1
# The poolkeeper operator image: built on Debian bookworm with the distribution's C++ libraries, run on
# bookworm-slim with only the runtime libraries, as a non-root user (65532), read-only root filesystem friendly.
#
#   docker build -t ghcr.io/poolkeeper/poolkeeper:0.1.0 .
#   docker run --rm ghcr.io/poolkeeper/poolkeeper:0.1.0 version
#
# See docs/install.md. The Helm chart runs it as `poolkeeper run ...` with its ServiceAccount.

ARG DEBIAN_RELEASE=bookworm

# ---- build ------------------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev \
      prometheus-cpp-dev libcli11-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads (see .dockerignore): a change to docs or tests does not rebuild the binary.
COPY CMakeLists.txt ./
COPY operator/ operator/
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOOLKEEPER_BUILD_TESTS=OFF \
 && cmake --build /build --target poolkeeper \
 && install -D -m 0755 -s /build/poolkeeper /out/usr/local/bin/poolkeeper \
 && /out/usr/local/bin/poolkeeper version

# ---- runtime ----------------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
# The shared libraries the binary links (ldd build/poolkeeper): cpprestsdk (with its brotli and zlib
# dependencies, pulled by the package), yaml-cpp, spdlog and fmt, OpenSSL, prometheus-cpp's core (the
# metrics registry; not its pull/push parts), libpq (observing PostgresServers); ca-certificates for
# TLS to the API server when its CA is a public one. CLI11 is header-only.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcpprest2.10 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libprometheus-cpp-core1.0 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/log/apt /var/log/dpkg.log
COPY --from=build /out/ /
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="poolkeeper" \
      org.opencontainers.image.description="Kubernetes operator that runs PgBouncer poolers inside PostgreSQL's connection budget" \
      org.opencontainers.image.version="${VERSION}"
# 65532: the conventional "nonroot" uid/gid of distroless images; no home, no shell login, owns nothing.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/poolkeeper"]
CMD ["run"]
