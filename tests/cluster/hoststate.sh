# Sourced by up.sh and down.sh: what several test clusters on one host share, and how the host is
# put back as it was once the last of them is gone.
#
# Each cluster holds a slot N (1..32) while it runs: /tmp/poolkeeper-cluster-slots/N, whose `owner`
# names the cluster's DIR. The slot fixes the cluster's addresses (see slot_addresses), so two
# clusters never share a bridge, a route or a network namespace. Besides its slots the host gets:
#   - 198.18.0.1/32 on lo: the host's address as every pod sees it (PostgreSQL and the API servers
#     listen there; routable from each node's namespace, unlike 127.0.0.1);
#   - the kernel settings the kubelet sets at start (vm.overcommit_memory, kernel.panic, ...).
# The first cluster to start records the host's values; the last one to stop restores them. Every
# change to that shared state happens under one flock.
slots_root=/tmp/poolkeeper-cluster-slots
host_ip=198.18.0.1
# What the kubelet changes (pkg/kubelet/cm: setupKernelTunables).
host_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# with_host_lock command...: runs the command while holding the host-wide lock.
with_host_lock() {
	mkdir -p "$slots_root"
	(
		flock 9
		"$@"
	) 9>"$slots_root/.lock"
}

# slot_addresses N: sets the variables naming slot N's addresses, all in 198.18.0.0/15 (RFC 2544: never
# routed beyond this machine, and no private range):
#   198.18.N.0/24       the link between the host (.1, on veth pkh-N) and the node's namespace (.2)
#   198.19.N.0/24       the pod range, on the bridge inside the node's namespace (.1 its gateway)
#   198.19.(124+4N).0/22 the Service range, 1022 addresses (.1 the kubernetes Service, .10 cluster DNS)
slot_addresses() {
	local n="$1" svc="198.19.$((124 + 4 * $1))"
	netns="pk-node-$n"
	host_link="pkh-$n"
	host_link_ip="198.18.$n.1"
	node_ip="198.18.$n.2"
	pod_cidr="198.19.$n.0/24"
	pod_gateway="198.19.$n.1"
	svc_cidr="$svc.0/22"
	svc_ip="$svc.1"
	dns_ip="$svc.10"
	cgroup_root="poolkeeper-$n"
}

# slot_alive N: does the cluster holding slot N still run a process?
slot_alive() {
	local owner f
	owner="$(cat "$slots_root/$1/owner" 2>/dev/null)" || return 1
	for f in "$owner"/pids/*.pid; do [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && return 0; done
	return 1
}

# reserve_slot DIR: prints a free slot number, now held by DIR. A slot left by a cluster that died
# without down.sh (no process, older than 10 minutes) is cleaned (node.sh stop) and reused.
reserve_slot() {
	local dir="$1" n lock
	for n in $(shuf -i 1-32); do
		lock="$slots_root/$n"
		if [[ -d "$lock" && -n "$(find "$lock" -maxdepth 0 -mmin +10)" ]] && ! slot_alive "$n"; then
			"$(dirname "${BASH_SOURCE[0]}")/node.sh" stop "$(cat "$lock/owner" 2>/dev/null)" "$n" >&2 || true
			rm -rf "$lock"
		fi
		if mkdir "$lock" 2>/dev/null; then
			echo "$dir" >"$lock/owner"
			echo "$n"
			return 0
		fi
	done
	return 1
}

# lo_has_host_ip: is the host's address on lo? (Output read whole: `ip | grep -q` under pipefail fails
# when grep stops at the match before ip has written everything.)
lo_has_host_ip() {
	local addresses
	addresses="$(ip -o addr show dev lo)"
	grep -qF " $host_ip/32 " <<<"$addresses"
}

# host_shared_acquire: with the lock held, records the host's values when no cluster holds them yet,
# and adds what every cluster needs.
host_shared_acquire() {
	local saved="$slots_root/host-saved" s
	if [[ ! -f "$saved" ]]; then
		for s in "${host_sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$saved.tmp"
		if lo_has_host_ip; then echo "lo-address=kept" >>"$saved.tmp"; fi
		mv "$saved.tmp" "$saved"
	fi
	lo_has_host_ip || ip addr add "$host_ip/32" dev lo
}

# host_shared_release SLOT: with the lock held, after SLOT is released: restores the host when no
# other cluster holds a slot.
host_shared_release() {
	local saved="$slots_root/host-saved" line
	compgen -G "$slots_root/[0-9]*" >/dev/null && return 0
	[[ -f "$saved" ]] || return 0
	while IFS= read -r line; do
		case "$line" in
		lo-address=kept) ;;
		*=*) sysctl -qw "$line" >/dev/null ;;
		esac
	done <"$saved"
	grep -qx "lo-address=kept" "$saved" || ip addr del "$host_ip/32" dev lo 2>/dev/null
	rm -f "$saved"
}

# free_ports N: prints N TCP ports free on every address of the host (bound at once, then released).
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}
