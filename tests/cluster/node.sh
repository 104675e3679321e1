#!/usr/bin/env bash
# node.sh start DIR [IMAGE-ARCHIVE...] | stop DIR [SLOT] — the test cluster's node: the upstream kubelet and kube-proxy with containerd
# and runc, run by up.sh (start) and down.sh (stop) for the cluster in DIR.
#
# The node lives in namespaces of its own, so several clusters share a host without touching each
# other or the host: a network namespace pk-node-N (its bridge, pod routes, iptables and kube-proxy's
# rules; a veth to the host) and a mount namespace (the kubelet's volume mounts, containerd's
# snapshots and the pods' network namespaces; tmpfs over /run, /var/lib and /var/log so nothing the
# daemons write by default reaches the host's). Its processes, the containers included, live under
# the cgroup poolkeeper-N in every hierarchy, which is how stop finds every one of them. N is the
# cluster's slot (hoststate.sh, recorded in DIR/slot). start imports the image archives into containerd
# before the kubelet starts; the inside-* stages are the parts that run in the node's namespaces.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/hoststate.sh"
[[ $# -ge 2 ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
stage="$1"
D="$2"
slot="$(cat "$D/slot" 2>/dev/null || true)"
[[ $stage == stop && -n "${3:-}" ]] && slot="$3" # a slot whose DIR is gone (hoststate.sh reclaims it)
[[ -n "$slot" ]] || { echo "node.sh: no slot recorded in $D/slot" >&2; exit 1; }
slot_addresses "$slot"
N="$D/node" # the node's files: configuration, containerd's root and state, kubelet root, pod logs
cgroup_dirs() { # the cgroup of this node in every hierarchy (v1 controllers, name=systemd, unified)
	local h
	for h in /sys/fs/cgroup/*/; do [[ -f "$h/cgroup.procs" ]] && echo "${h%/}/$cgroup_root"; done
}

write_configs() {
	mkdir -p "$N/containerd" "$N/cni/net.d" "$N/cni/ipam" "$N/kubelet" "$N/pod-logs"
	cat >"$N/containerd/config.toml" <<EOF
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$N/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$N/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/poolkeeper-test/pause:3.10"
  # runc cannot write oom_score_adj below the parent's here (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
EOF
	# Pods route everything to the bridge; the node's namespace routes only to its own ranges and
	# the host's address, so nothing a pod sends leaves this machine.
	cat >"$N/cni/net.d/10-poolkeeper.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "poolkeeper", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$N/cni/ipam",
            "ranges": [[{"subnet": "$pod_cidr", "gateway": "$pod_gateway"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}
]}
EOF
	cat >"$N/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The hosts are cgroup v1 hybrids; 1.35 refuses v1 unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_root
failSwapOn: false
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $D/pki/kubelet-serving.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $D/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$N/containerd.sock
clusterDomain: cluster.local
clusterDNS: [$dns_ip]
# Pods get cluster DNS only: nothing resolves, or is sent, outside the cluster.
resolvConf: ""
podLogsDir: $N/pod-logs
# Images are imported, not pulled: never collect them, and never evict for a busy shared disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
# Secret and ConfigMap changes reach mounted volumes within seconds, as tests wait for them.
syncFrequency: 10s
EOF
	cat >"$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $D/pki/kube-proxy.kubeconfig}
hostnameOverride: local
mode: iptables
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Without br_netfilter a reply between two pods of one bridge skips the DNAT; masquerading every
# Service connection sends it back through the node.
iptables: {masqueradeAll: true}
# The conntrack table is the host's: leave its size and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

network_up() {
	ip netns add "$netns"
	ip link add "$host_link" type veth peer name eth0 netns "$netns"
	ip addr add "$host_link_ip/24" dev "$host_link"
	ip link set "$host_link" up
	ip -n "$netns" link set lo up
	ip -n "$netns" addr add "$node_ip/24" dev eth0
	ip -n "$netns" link set eth0 up
	ip -n "$netns" route add "$host_ip/32" via "$host_link_ip"
	ip route add "$pod_cidr" via "$node_ip"
	ip route add "$svc_cidr" via "$node_ip"
	ip netns exec "$netns" sysctl -qw net.ipv4.ip_forward=1
}

cgroups_up() {
	local c
	for c in $(cgroup_dirs); do
		mkdir -p "$c/node"
		if [[ -f "$c/cpuset.cpus" ]]; then # a v1 cpuset takes no task until it has CPUs and memory nodes
			cat "$c/../cpuset.cpus" >"$c/cpuset.cpus"
			cat "$c/../cpuset.mems" >"$c/cpuset.mems"
			cat "$c/cpuset.cpus" >"$c/node/cpuset.cpus"
			cat "$c/cpuset.mems" >"$c/node/cpuset.mems"
		fi
	done
}

spawn() { # name args...: detached, logs in DIR/logs/name.log, pid in DIR/pids/name.pid
	local name="$1"
	shift
	setsid "$@" >"$D/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$D/pids/$name.pid"
}

join_cgroups() { # the calling shell and what it starts from now on belong to the node
	local c
	for c in $(cgroup_dirs); do echo $$ >"$c/node/cgroup.procs"; done
}

# In a fresh mount namespace and the node's network namespace: containerd.
inside_runtime() {
	join_cgroups
	mount -t tmpfs -o mode=0755 tmpfs /run
	mount -t tmpfs -o mode=0755 tmpfs /var/lib
	mount -t tmpfs -o mode=0755 tmpfs /var/log
	spawn containerd containerd --config "$N/containerd/config.toml"
}

# In containerd's namespaces, once the images are in: the kubelet and kube-proxy.
inside_daemons() {
	join_cgroups
	local bin
	bin="$(cat "$D/bin")"
	spawn kubelet "$bin/kubelet" --config "$N/kubelet/config.yaml" --kubeconfig "$D/pki/kubelet.kubeconfig" \
		--root-dir "$N/kubelet" --hostname-override local --node-ip "$node_ip" --v=1
	spawn kube-proxy "$bin/kube-proxy" --config "$N/kube-proxy.yaml" --v=1
}

# The images are imported before the kubelet starts, so no pod ever waits on a pull that cannot happen.
start() { # archive...
	write_configs
	network_up
	cgroups_up
	nsenter --net="/run/netns/$netns" -- unshare --mount --propagation private -- "$0" inside-runtime "$D"
	local sock="$N/containerd.sock" end=$(($(date +%s) + 30)) archive
	until ctr --address "$sock" version >/dev/null 2>&1; do
		kill -0 "$(cat "$D/pids/containerd.pid")" 2>/dev/null || { echo "node.sh: containerd exited" >&2; return 1; }
		(($(date +%s) < end)) || { echo "node.sh: containerd did not answer within 30s" >&2; return 1; }
		sleep 0.1
	done
	for archive in "$@"; do
		ctr --address "$sock" -n k8s.io images import "$archive" >/dev/null ||
			{ echo "node.sh: importing $archive failed" >&2; return 1; }
	done
	nsenter --target "$(cat "$D/pids/containerd.pid")" --mount --net -- "$0" inside-daemons "$D"
}

# Kills every process of the node (daemons, shims, containers) through its cgroups, then removes
# the cgroups, the network namespace (its bridge, veth and rules go with it) and the host's routes.
stop() {
	set +e
	local freezer="/sys/fs/cgroup/freezer/$cgroup_root" pids_root="/sys/fs/cgroup/pids/$cgroup_root" p end
	if [[ -f "$D/pids/kubelet.pid" ]]; then
		p="$(cat "$D/pids/kubelet.pid")"
		kill -TERM "$p" 2>/dev/null && timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
	fi
	if [[ -d "$pids_root" ]]; then
		[[ -d "$freezer" ]] && echo FROZEN >"$freezer/freezer.state" 2>/dev/null
		end=$(($(date +%s) + 20))
		while :; do
			local procs
			procs="$(find "$pids_root" -name cgroup.procs -exec cat {} + 2>/dev/null)"
			[[ -z "$procs" ]] && break
			kill -KILL $procs 2>/dev/null
			[[ -d "$freezer" ]] && echo THAWED >"$freezer/freezer.state" 2>/dev/null
			(($(date +%s) < end)) || { echo "node.sh: processes left in $pids_root: $procs" >&2; break; }
			sleep 0.1
		done
	fi
	local c
	for c in $(cgroup_dirs); do
		[[ -d "$c" ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	ip netns del "$netns" 2>/dev/null
	ip link del "$host_link" 2>/dev/null
	rm -f "$D/pids/containerd.pid" "$D/pids/kubelet.pid" "$D/pids/kube-proxy.pid"
	return 0
}

case "$stage" in
start) start "${@:3}" ;;
inside-runtime) inside_runtime ;;
inside-daemons) inside_daemons ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
