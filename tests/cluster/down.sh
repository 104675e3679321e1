#!/usr/bin/env bash
# down.sh DIR — stop the cluster started by up.sh DIR, and only that one: its node (node.sh stop: every
# process in the node's cgroups, containers included, then its namespaces, cgroups and routes), then the
# control-plane processes recorded in DIR/pids (checked to belong to DIR before they are signalled).
# Releases the cluster's slot; the last cluster on the host puts back what they shared (hoststate.sh).
# State stays in DIR (logs for post-mortems); remove DIR yourself when done. Safe to run twice.
set -uo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d "$1" ]] || exit 0
D="$(cd "$1" && pwd)"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/hoststate.sh"

ours() { # pid: is it a process of this cluster? (its command line names DIR)
	local pid="$1"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	grep -qF "$D/" < <(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null)
}
stop() { # grace-seconds pid...: SIGTERM, wait, then SIGKILL
	local grace="$1"; shift
	local pids=() p
	for p in "$@"; do ours "$p" && pids+=("$p"); done
	(( ${#pids[@]} )) || return 0
	kill -TERM "${pids[@]}" 2>/dev/null
	local end=$(( $(date +%s) + grace ))
	while (( $(date +%s) < end )); do
		local left=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
		(( left )) || return 0
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
	return 0
}
pidof_() { cat "$D/pids/$1.pid" 2>/dev/null; }

# The node first, while the API server still answers the kubelet. Then the control plane, etcd last.
[[ -f "$D/slot" ]] && "$here/node.sh" stop "$D"
stop 10 "$(pidof_ kube-scheduler)"
stop 10 "$(pidof_ kube-controller-manager)"
stop 15 "$(pidof_ kube-apiserver)"
stop 10 "$(pidof_ etcd)"
rm -f "$D"/pids/*.pid

release() {
	local n
	n="$(cat "$D/slot")"
	[[ "$(cat "$slots_root/$n/owner" 2>/dev/null)" == "$D" ]] && rm -rf "${slots_root:?}/$n"
	host_shared_release
}
if [[ -f "$D/slot" ]]; then
	with_host_lock release
	rm -f "$D/slot"
fi
exit 0
