# syntax=docker/dockerfile:1
# The poolkeeper operator image: built on Debian bookworm with the distribution's C++ libraries, run on
# bookworm-slim with only the runtime libraries, as a non-root user (65532), read-only root filesystem friendly.
#
#   docker build -t ghcr.io/poolkeeper/poolkeeper:0.1.0 .
#   docker run --rm ghcr.io/poolkeeper/poolkeeper:0.1.0 version
#
# The compiler runs through ccache with its cache in a build cache mount (RUN --mount=type=cache): a rebuild
# after a small change to operator/ recompiles only the files that changed. That needs BuildKit (docker's
# default builder) or podman/buildah; the legacy builder (DOCKER_BUILDKIT=0) does not know --mount.
# tests/cluster/images.sh builds it with podman for the test cluster.
#
# See docs/install.md. The Helm chart runs it as `poolkeeper run ...` with its ServiceAccount.

ARG DEBIAN_RELEASE=bookworm

# ---- build ------------------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ccache \
      libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev \
      prometheus-cpp-dev libcli11-dev libpq-dev libboost-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads (see .dockerignore): a change to docs or tests does not rebuild the binary.
COPY CMakeLists.txt ./
COPY operator/ operator/
# The cache mount outlives the build (the source paths and compiler are the same each time, so ccache hits);
# the build directory does not: only /out stays in the layer.
ENV CCACHE_DIR=/root/.ccache
RUN --mount=type=cache,target=/root/.ccache \
    cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOOLKEEPER_BUILD_TESTS=OFF \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && ccache --zero-stats >/dev/null \
 && cmake --build /tmp/build --target poolkeeper \
 && ccache --show-stats \
 && install -D -m 0755 -s /tmp/build/poolkeeper /out/usr/local/bin/poolkeeper \
 && rm -rf /tmp/build \
 && /out/usr/local/bin/poolkeeper version

# ---- runtime ----------------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
# The shared libraries the binary links (ldd build/poolkeeper): yaml-cpp, spdlog and fmt, OpenSSL, prometheus-cpp's core (the
# metrics registry; not its pull/push parts), libpq (observing PostgresServers); ca-certificates for
# TLS to the API server when its CA is a public one. CLI11 and Boost (Beast, Asio) are header-only.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libprometheus-cpp-core1.0 libpq5 ca-certificates \
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
