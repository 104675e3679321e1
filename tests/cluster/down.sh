#!/usr/bin/env bash
# down.sh DIR — stop the cluster started by up.sh DIR, and only that one: the processes recorded in DIR/pids
# (checked to belong to DIR before they are signalled) and the pod processes localkubelet started for it
# (their environment carries LOCALKUBELET_STATE_DIR=DIR/kubelet). State stays in DIR (logs for post-mortems);
# remove DIR yourself when done. Safe to run twice.
set -uo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d "$1" ]] || exit 0
D="$(cd "$1" && pwd)"

ours() { # pid: is it a process of this cluster? (its command line or environment names DIR)
	local pid="$1"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	grep -qF "$D/" < <(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null) && return 0
	grep -qxF "LOCALKUBELET_STATE_DIR=$D/kubelet" < <(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null) && return 0
	return 1
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

# localkubelet first: on SIGTERM it kills its pod processes. Then the control plane, etcd last.
stop 10 "$(pidof_ localkubelet)"
# Pod processes that outlived localkubelet (their pid files, plus a scan for the environment marker).
pod_pids=()
for f in "$D"/kubelet/pods/*/containers/*/pid; do [[ -f "$f" ]] && pod_pids+=("$(cat "$f")"); done
for e in /proc/[0-9]*/environ; do
	p="${e#/proc/}"; p="${p%/environ}"
	grep -qxF "LOCALKUBELET_STATE_DIR=$D/kubelet" < <(tr '\0' '\n' < "$e" 2>/dev/null) && pod_pids+=("$p")
done
(( ${#pod_pids[@]} )) && stop 5 "${pod_pids[@]}"
stop 10 "$(pidof_ kube-controller-manager)"
stop 15 "$(pidof_ kube-apiserver)"
stop 10 "$(pidof_ etcd)"
rm -f "$D"/pids/*.pid

# Release this cluster's pod address range (and socket directories kept outside DIR for long paths).
if [[ -f "$D/podnet" ]]; then
	net="$(cat "$D/podnet")"
	rm -rf /tmp/localkubelet-"$net".* 2>/dev/null
	lock="/tmp/poolkeeper-cluster-podnets/$net"
	[[ "$(cat "$lock/owner" 2>/dev/null)" == "$D" ]] && rm -rf "$lock"
	rm -f "$D/podnet"
fi
exit 0
