#!/usr/bin/env bash
# Benchmark, not a test: the side-by-side run of issue 14, poolkeeper against its controller-runtime peer
# (../shared/peer/bench.sh, the yardstick), on today's test cluster. Prints the peer bench's table.
#
#   bench/peer.sh                   # POOLS=300 (the peer bench's default)
#   POOLS=1000 bench/peer.sh        # issue 14's target size; every other variable of bench.sh applies too
#
# The yardstick runs as it is, from a copy with two substitutions that today's cluster needs (checked below:
# the run stops if either no longer matches):
#   - free ports come from tests/cluster/hoststate.sh's free_ports: bench.sh asked `localkubelet free-ports`,
#     the stand-in kubelet that the upstream kubelet replaced;
#   - poolkeeper runs with `--metrics-auth none` (bench.sh reads /metrics with a plain curl; the default
#     asks for a Kubernetes token) and `--allowed-pooler-images edoburu/pgbouncer:1.18.0` (the image the
#     benchmark's pools name; the default allows only the operator's default image, and every pool would be
#     refused, which is not the work to compare);
#   - the password Secrets carry poolkeeper.io/expose-to-pools=true: poolkeeper reads only Secrets that opt
#     in (docs/security.md) and would block every pool; the peer does not look at the label;
#   - its extra ServiceCIDR (Service IPs for more than ~1,000 pools) is 198.19.64.0/18, a range no slot uses:
#     198.18.0.0/16 holds the host's 198.18.0.1 (where the API servers listen) and every node's 198.18.N.0/24.
# and one addition: after the bulk's figures, each operator is stopped (SIGTERM) and started again with the
# same flags; once it is ready and quiet (every pool reconciled from a fresh list, no request for 5 s) its
# VmRSS is the table's "VmRSS after a restart + resync" row (issue 14 compares it too).
# Builds the operator (scripts/build.sh) and the peer (go build, into the work directory) first.
# Needs root, like tests/cluster/up.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
peer_dir="${PEER_DIR:-$repo/../shared/peer}"
[[ -f "$peer_dir/bench.sh" ]] || { echo "bench/peer.sh: no $peer_dir/bench.sh (set PEER_DIR)" >&2; exit 1; }

work="$(mktemp -d /tmp/pk-peer.XXXXXX)"
trap 'rm -rf "$work"' EXIT

bash "$repo/scripts/build.sh" >&2
(cd "$peer_dir" && nice -n 5 go build -o "$work/peer" .) >&2

ports='"$bin/localkubelet" free-ports 2'
cidr='spec: {cidrs: ["198.18.0.0/16"]}'
flags='--log-format json >"$work/$name.log"'
secret='metadata: {name: app-db, namespace: bench-%d}'
after_bulk='local rss_after=$(rss_kib) hwm=$(hwm_kib)'
hwm_line='echo "hwm_mib $(awk -v k="$hwm"'
hwm_row='field "VmHWM (MiB)" hwm_mib'
for needle in "$ports" "$cidr" "$flags" "$secret" "$after_bulk" "$hwm_line" "$hwm_row"; do
	grep -qF -- "$needle" "$peer_dir/bench.sh" || { echo "bench/peer.sh: bench.sh no longer has: $needle" >&2; exit 1; }
done
{
	echo "source '$repo/tests/cluster/hoststate.sh'"
	# run_one's operator (its locals name, p1, p2, ready_url are visible here), stopped and started again
	# with the flags bench.sh gave it; returns once it is ready and quiet.
	cat <<'RESTART'
restart_op() {
	kill -TERM "$op_pid" 2>/dev/null
	local i
	for i in $(seq 1 300); do kill -0 "$op_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$op_pid" 2>/dev/null
	wait "$op_pid" 2>/dev/null
	case "$name" in
	poolkeeper)
		"$POOLKEEPER_BIN" run --kubeconfig "$C/kubeconfig" --http-address "127.0.0.1:$p1" --workers "$WORKERS" \
			--log-format json --metrics-auth none --allowed-pooler-images edoburu/pgbouncer:1.18.0 \
			>"$work/$name-restarted.log" 2>&1 </dev/null &
		;;
	peer)
		"$PEER_BIN" --kubeconfig "$C/kubeconfig" --metrics-bind-address "127.0.0.1:$p1" \
			--health-probe-bind-address "127.0.0.1:$p2" --workers "$WORKERS" >"$work/$name-restarted.log" 2>&1 </dev/null &
		;;
	esac
	op_pid=$!
	for i in $(seq 1 600); do alive; curl -sf --max-time 5 "$ready_url" >/dev/null && break; sleep 0.05; done
	sleep 1
	quiesce 5
}
RESTART
	sed -e "s|$(printf '%s' "$ports" | sed 's/[$|.]/\\&/g')|free_ports 2|" \
		-e 's|cidrs: \["198\.18\.0\.0/16"\]|cidrs: ["198.19.64.0/18"]|' \
		-e 's|--log-format json >"\$work/\$name\.log"|--log-format json --metrics-auth none --allowed-pooler-images edoburu/pgbouncer:1.18.0 >"$work/$name.log"|' \
		-e 's|metadata: {name: app-db, namespace: bench-%d}|metadata: {name: app-db, namespace: bench-%d, labels: {poolkeeper.io/expose-to-pools: "true"}}|' \
		-e 's|^\(\s*\)local rss_after=\$(rss_kib) hwm=\$(hwm_kib)$|&\n\1log "$name: restarting the operator"; restart_op; local rss_restart=$(rss_kib)|' \
		-e 's|^\(\s*\)echo "hwm_mib .*$|&\n\1echo "rss_restart_mib $(awk -v k="$rss_restart" '"'"'BEGIN { printf "%.1f", k / 1024 }'"'"')"|' \
		-e 's|^field "VmHWM (MiB)" hwm_mib$|&\nfield "VmRSS after a restart + resync (MiB)" rss_restart_mib|' \
		"$peer_dir/bench.sh"
} >"$work/bench.sh"
for applied in 'free_ports 2' '198.19.64.0/18' '--metrics-auth none' 'expose-to-pools: "true"' 'restart_op; local rss_restart' \
	'echo "rss_restart_mib' 'field "VmRSS after a restart + resync (MiB)"'; do
	grep -qF -- "$applied" "$work/bench.sh" || { echo "bench/peer.sh: substitution not applied: $applied" >&2; exit 1; }
done

cd "$repo"
REPO="$repo" bash "$work/bench.sh" "$repo/build/poolkeeper" "$work/peer"
