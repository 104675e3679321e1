#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and
# poolload (the chaos test's clients and sampler) from the Go modules pinned in go.mod, and coredns (cluster DNS,
# coredns/: a module of its own, so CoreDNS's newer dependencies do not change what the Kubernetes components are
# built with; static, alone in its image), into ${POOLKEEPER_BUILD_DIR:-<repo>/build}/cluster-bin/<k8s-version>/
# and prints that directory on stdout.
# Skips the build when the binaries there were built from the same sources (stamp = hash of go.mod, go.sum,
# the Go sources and the Go version); otherwise `go build` runs and the Go build cache keeps rebuilds cheap.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build.sh: go not found (need Go >= 1.25)" >&2; exit 1; }

k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
[[ -n "$k8s_version" ]] || { echo "build.sh: k8s.io/kubernetes not found in go.mod" >&2; exit 1; }
out="${POOLKEEPER_BUILD_DIR:-$repo/build}/cluster-bin/$k8s_version"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy poolload coredns)

stamp="$(cd "$here" && { go version; cat go.mod go.sum coredns/go.mod coredns/go.sum; find cmd coredns -name '*.go' -print0 | sort -z | xargs -0 cat; } | sha256sum | cut -d' ' -f1)"
uptodate=1
for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || uptodate=0; done
[[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]] || uptodate=0
if [[ $uptodate == 1 && "${1:-}" != "--force" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$out"
rm -f "$out/.stamp"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
start=$(date +%s)
(cd "$here" && go mod download && go build -buildvcs=false -ldflags "$ldflags" -o "$out/" \
	./cmd/etcd ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet \
	./cmd/kube-proxy ./cmd/poolload) >&2
(cd "$here/coredns" && go mod download && CGO_ENABLED=0 go build -buildvcs=false -ldflags "-s -w" -o "$out/" .) >&2
echo "$stamp" > "$out/.stamp"
echo "build.sh: built ${bins[*]} in $(( $(date +%s) - start ))s into $out" >&2
echo "$out"
