#!/usr/bin/env bash
# Installs what poolkeeper needs and is missing (idempotent): the C++ toolchain and libraries,
# PostgreSQL and PgBouncer from Debian's packages, the test cluster's container runtime; with --all
# also the test tools (kubectl, helm) and the local Kubernetes components built from their Go modules.
source "$(dirname "$0")/lib.sh"

PACKAGES=(
  build-essential cmake ninja-build pkg-config python3 ccache clang-format clang-tidy-19
  clang-19 libclang-rt-19-dev  # the fuzz tier: clang's libFuzzer and sanitizer runtimes
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libssl-dev libpq-dev
  prometheus-cpp-dev libcli11-dev libboost-dev
  googletest libgtest-dev libgmock-dev
  postgresql postgresql-contrib postgresql-client pgbouncer
  unzip openssl ca-certificates python3-yaml curl jq  # curl, jq: the cluster tests
  # The test cluster's node (tests/cluster/README.md): container runtime, pod network, kube-proxy's
  # iptables, and the image builders (a Debian root filesystem; the operator's Dockerfile).
  containerd runc containernetworking-plugins iptables mmdebstrap podman uidmap
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  # The Debian packages would start their own PostgreSQL/PgBouncer services; we start ours.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--all" ]; then
  [ -x "$REPO_ROOT/scripts/install-tools.sh" ] && bash "$REPO_ROOT/scripts/install-tools.sh"
  [ -x "$REPO_ROOT/tests/cluster/build.sh" ] && bash "$REPO_ROOT/tests/cluster/build.sh"
fi
exit 0
