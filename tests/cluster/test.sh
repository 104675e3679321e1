#!/usr/bin/env bash
# tests/cluster/test.sh — tests of the local cluster harness itself, against real components: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, the kubelet and kube-proxy (built from the Go
# modules) with containerd and runc, CoreDNS, driven by the pinned kubectl 1.35 and helm 4, with a throwaway
# PostgreSQL behind real PgBouncer pods. Ends by checking that the host is as it was before the first cluster.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
C1="$work/c1" C2="$work/c2"

cleanup() {
	trap - EXIT INT TERM
	"$here/down.sh" "$C2" >/dev/null 2>&1
	"$here/down.sh" "$C1" >/dev/null 2>&1
	stop_postgres
	finish_work
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 1200 # 20 minutes for the whole run
k() { kubectl --kubeconfig "$C1/kubeconfig" "$@"; }
pgb_image=$test_image

# What a cluster may leave on the host, to compare before and after. Lines of other clusters running on this
# host meanwhile (their slots' links, routes, namespaces and cgroups) are left out, and so is what all clusters
# share (the host's address on lo, the kernel settings), which is compared only when no other cluster runs.
host_state() (
	set +e # a section may be empty (grep finds nothing), which is no failure here
	local others="" n owner
	for n in $(ls "$slots_root" 2>/dev/null | grep -E '^[0-9]+$'); do
		owner="$(cat "$slots_root/$n/owner" 2>/dev/null)"
		[[ "$owner" == "$C1" || "$owner" == "$C2" ]] || others+="|pk-node-$n\b|pkh-$n\b|poolkeeper-$n\b"
	done
	{
		echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'
		echo "## addresses"; ip -o addr show | awk '{print $2, $4}' | grep -vxF "lo $host_ip/32"
		echo "## routes"; ip route show
		echo "## namespaces"; ip netns list
		echo "## mounts"; awk '{print $5}' /proc/self/mountinfo
		echo "## cgroups"; find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'poolkeeper-*'
		echo "## iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
	} | { if [[ -n "$others" ]]; then grep -Ev "${others#|}"; else cat; fi; }
	if [[ -z "$others" ]]; then
		echo "## shared"
		ip -o addr show dev lo | awk '{print $2, $4}' | grep -xF "lo $host_ip/32"
		for s in "${host_sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done
	fi
)
without_shared() { sed '/^## shared$/,$d' "$1"; }
host_state > "$work/host-before"

# ---------------------------------------------------------------------------------------------------------------
test_two_clusters_up_down() {
	local t0=$(date +%s.%N)
	"$here/up.sh" "$C1" & local p1=$!
	"$here/up.sh" "$C2" & local p2=$!
	wait $p1 && wait $p2 || fail "up.sh"
	log "two clusters up in parallel in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
	source "$C1/env"; local api1=$API_PORT pods1=$POD_CIDR ns1=$NODE_NETNS
	source "$C2/env"; local api2=$API_PORT pods2=$POD_CIDR ns2=$NODE_NETNS
	[[ $api1 != "$api2" && $pods1 != "$pods2" && $ns1 != "$ns2" ]] || fail "clusters share a port, pod range or node"
	for c in "$C1" "$C2"; do
		kubectl --kubeconfig "$c/kubeconfig" wait --for=condition=Ready node/local --timeout=30s >/dev/null
		[[ "$(kubectl --kubeconfig "$c/kubeconfig" get node local -o jsonpath='{.status.nodeInfo.kubeletVersion}')" == v1.35.* ]] || fail "kubelet version"
		[[ "$(kubectl --kubeconfig "$c/kubeconfig" get node local -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}')" == containerd://1.6.* ]] || fail "runtime"
		[[ -z "$(kubectl --kubeconfig "$c/kubeconfig" get node local -o jsonpath='{.spec.taints}')" ]] || fail "node still tainted"
	done
	# The control plane listens on loopback and the host's address for pods only; the node in its namespace.
	local pids=$(for f in "$C1"/pids/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}.pid; do cat "$f"; done | paste -sd '|')
	local stray=$(ss -Hltnp | grep -E "pid=($pids)," | awk '{print $4}' | grep -vE "^(127\.0\.0\.1|$host_ip):" || true)
	[[ -z "$stray" ]] || fail "listeners on other addresses: $stray"
	# RBAC is on, and the service-account signing works: a token's identity is what the API server reports.
	# (can-i exits 1 when the answer is no)
	[[ "$(kubectl --kubeconfig "$C1/kubeconfig" auth can-i create pods --as=system:serviceaccount:default:default || true)" == no ]] ||
		fail "the default service account may create pods"
	local c2pids=$(cat "$C2"/pids/*.pid) slot2=$(cat "$C2/slot")
	"$here/down.sh" "$C2"
	for p in $c2pids; do ! kill -0 "$p" 2>/dev/null || fail "process $p of cluster 2 still running"; done
	[[ ! -e "$slots_root/$slot2" ]] || fail "slot of cluster 2 not released"
	! ip netns list | has -w "$ns2" || fail "network namespace $ns2 left"
	[[ -z "$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -name "poolkeeper-$slot2")" ]] || fail "cgroups of cluster 2 left"
	! has -F "$C2/" < /proc/self/mountinfo || fail "mounts of cluster 2 left"
	for p in $(cat "$C1"/pids/*.pid); do kill -0 "$p" || fail "cluster 1 process $p died with cluster 2"; done
	k get --raw /readyz | has -x ok
}

pod_ips() { k get pods -l app=pgb -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}'; }
ready_restarted() { # pod: Ready and restarted at least once
	[[ "$(k get pod "$1" -o jsonpath='{.status.containerStatuses[0].restartCount}')" -ge 1 ]] &&
		[[ "$(k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
in_cidr() { # ip cidr
	python3 -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"
}
test_pgbouncer_deployment() {
	source "$C1/env"
	sed -e "s/@PGPORT@/$pgport/" -e "s/@HOST_IP@/$HOST_IP/" -e "s|@IMAGE@|$pgb_image|" "$here/testdata/pgbouncer.yaml" | k apply -f - >/dev/null
	k rollout status deployment/pgb --timeout=90s >/dev/null
	k wait --for=condition=Ready pod -l app=pgb --timeout=60s >/dev/null
	local ips=($(pod_ips))
	[[ ${#ips[@]} == 2 && ${ips[0]} != "${ips[1]}" ]] || fail "want 2 distinct pod IPs, got ${ips[*]}"
	for ip in "${ips[@]}"; do
		in_cidr "$ip" "$POD_CIDR" || fail "pod IP $ip not in $POD_CIDR"
		local got=$(PGPASSWORD=app-secret-pw PGCONNECT_TIMEOUT=5 psql "host=$ip port=6432 user=app dbname=app" -qAt \
			-c "SELECT current_user || ':' || inet_server_port()")
		[[ "$got" == "app:$pgport" ]] || fail "psql through $ip: $got"
		log "psql via pgbouncer at $ip:6432 -> postgres $HOST_IP:$pgport as app"
	done
	# Each pod has its own network namespace: nothing listens on the host's 6432.
	! PGCONNECT_TIMEOUT=2 psql "host=127.0.0.1 port=6432 user=app dbname=app" -c "select 1" >/dev/null 2>&1 || fail "something listens on 127.0.0.1:6432"
	# The pod spec as the kubelet applies it: uid 70, read-only root, the Secret's mode with fsGroup's group.
	local pod=$(k get pods -l app=pgb -o jsonpath='{.items[0].metadata.name}')
	[[ "$(k exec "$pod" -- id -u)" == 70 ]] || fail "not run as uid 70"
	k exec "$pod" -- touch /x 2>/dev/null && fail "root filesystem writable"
	[[ "$(k exec "$pod" -- stat -L -c '%a %g' /etc/pgbouncer-auth/userlist.txt)" == "440 70" ]] ||
		fail "secret file mode: $(k exec "$pod" -- stat -L -c '%a %g' /etc/pgbouncer-auth/userlist.txt)"
	k logs "$pod" | has "listening on" || fail "kubectl logs: $(k logs "$pod" | tail -3)"
	# port-forward through the API server and the kubelet.
	local fwd_port=$(free_ports 1)
	k port-forward "pod/$pod" "$fwd_port:6432" > "$work/port-forward.log" 2>&1 &
	local fwd=$!
	eventually 20 'PGPASSWORD=app-secret-pw PGCONNECT_TIMEOUT=2 psql "host=127.0.0.1 port=$fwd_port user=app dbname=app" -qAt -c "select 1" | has -x 1' ||
		{ kill $fwd; fail "port-forward: $(cat "$work/port-forward.log")"; }
	kill $fwd; wait $fwd 2>/dev/null || true
	# Restart on exit: kill one pgbouncer from the host, the pod comes back Ready with restartCount 1.
	local victim=$(host_pid "$C1/kubeconfig" default "$pod")
	[[ -n "$victim" ]] || fail "no task for $pod"
	kill -KILL "$victim"
	poll 40 ready_restarted "$pod" || fail "pod $pod not restarted"
	[[ "$(k get pod "$pod" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}')" == 137 ]] || fail "lastState"
	log "killed pgbouncer $victim: restarted, Ready again"
	# Delete: the preStop hook sends SIGINT (safe shutdown in 1.18), the GC removes ReplicaSets and Pods.
	local rs=$(k get rs -l app=pgb -o name)
	[[ -n "$rs" ]]
	k logs -f "$pod" > "$work/pgb.log" 2>&1 &
	local follow=$!
	k delete deployment pgb --wait=true --timeout=60s >/dev/null
	k wait --for=delete pod -l app=pgb --timeout=60s >/dev/null
	wait $follow 2>/dev/null || true
	eventually 30 '[[ -z "$(k get rs -l app=pgb -o name)" ]]' || fail "replicasets not garbage-collected"
	[[ -z "$(k get pods -l app=pgb -o name)" ]] || fail "pods left"
	has "got SIGINT" < "$work/pgb.log" || fail "pgbouncer did not get SIGINT from the preStop hook: $(tail -3 "$work/pgb.log")"
	k delete configmap pgb-config >/dev/null && k delete secret pgb-auth >/dev/null && k delete service pgb >/dev/null
}

test_service_by_name() {
	# A client pod reaches PgBouncer by the Service's name: cluster DNS (CoreDNS) and kube-proxy's rules.
	source "$C1/env"
	sed -e "s/@PGPORT@/$pgport/" -e "s/@HOST_IP@/$HOST_IP/" -e "s|@IMAGE@|$pgb_image|" "$here/testdata/pgbouncer.yaml" | k apply -f - >/dev/null
	k rollout status deployment/pgb --timeout=90s >/dev/null
	local ip=$(k get service pgb -o jsonpath='{.spec.clusterIP}')
	in_cidr "$ip" "$SERVICE_CIDR" || fail "Service IP $ip not in $SERVICE_CIDR"
	service_answers "$ip" 5432 app-secret-pw || fail "the Service's address $ip does not reach PgBouncer"
	local out
	out=$(psql_in_pod "$C1/kubeconfig" app-secret-pw "host=pgb.default.svc.cluster.local port=5432 user=app dbname=app" \
		-qAt -c "SELECT inet_server_port()") ||
		fail "psql by Service name: $out"
	[[ "$out" == "$pgport" ]] || fail "psql by Service name: $out"
	log "psql in a pod -> pgb.default.svc.cluster.local:5432 -> pgbouncer -> postgres :$out"
	k delete -f <(sed -e "s|@IMAGE@|$pgb_image|" "$here/testdata/pgbouncer.yaml") --wait=true --timeout=60s >/dev/null
}

test_image_never_pulled() {
	# Images are imported, never pulled: one that is not there stays waiting, with the kubelet's reason.
	k run other --image=ghcr.io/poolkeeper/absent:1.0 --image-pull-policy=Never --restart=Never -- sleep 100 >/dev/null
	eventually 30 '[[ "$(k get pod other -o jsonpath='\''{.status.containerStatuses[0].state.waiting.reason}'\'')" == ErrImageNeverPull ]]' ||
		fail "no ErrImageNeverPull status"
	eventually 30 '[[ -n "$(k get events --field-selector involvedObject.name=other,type=Warning -o name)" ]]' ||
		fail "no Warning event"
	k delete pod other --wait=true --timeout=30s >/dev/null
}

has_widget() { grep -q "widget.harness.poolkeeper.io/$2" "$1"; }
test_crd_watch() {
	k apply -f "$here/testdata/crd.yaml" >/dev/null
	k wait --for=condition=Established crd/widgets.harness.poolkeeper.io --timeout=30s >/dev/null
	printf 'apiVersion: harness.poolkeeper.io/v1alpha1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n' | k apply -f - >/dev/null
	[[ "$(k get widget w1 -o jsonpath='{.spec.maxSize}')" == 10 ]] || fail "schema default not applied"
	local out
	out=$(printf 'apiVersion: harness.poolkeeper.io/v1alpha1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 30}\n' | k apply -f - 2>&1) && fail "CEL rule not enforced"
	grep -q "size must not exceed maxSize" <<<"$out" || fail "unexpected error: $out"
	out=$(printf 'apiVersion: harness.poolkeeper.io/v1alpha1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 0}\n' | k apply -f - 2>&1) && fail "minimum not enforced"
	[[ "$(k get wdg -o name)" == "widget.harness.poolkeeper.io/w1" ]] || fail "list"
	k get widgets -o wide | has '^w1 *3' || fail "printer column"
	# Watch: a bounded watch sees an object created after it started.
	local wout="$work/watch.out"
	timeout 30 kubectl --kubeconfig "$C1/kubeconfig" get widgets --watch -o name > "$wout" 2>&1 &
	local wp=$!
	poll 15 has_widget "$wout" w1 || { kill $wp; fail "watch did not list w1"; }
	printf 'apiVersion: harness.poolkeeper.io/v1alpha1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: 4}\n' | k apply -f - >/dev/null
	poll 15 has_widget "$wout" w2 || { kill $wp; fail "watch did not see w2"; }
	kill $wp 2>/dev/null; wait $wp 2>/dev/null || true
	# Status subresource.
	k patch widget w2 --subresource=status --type=merge -p '{"status":{"phase":"Done"}}' >/dev/null
	[[ "$(k get widget w2 -o jsonpath='{.status.phase}')" == Done ]]
	k delete crd widgets.harness.poolkeeper.io --wait=true --timeout=60s >/dev/null
}

test_helm() {
	local hk=(--kubeconfig "$C1/kubeconfig" -n helm-test)
	helm install h1 "$here/testdata/chart" "${hk[@]}" --create-namespace --wait --timeout 120s >/dev/null
	[[ "$(k -n helm-test get deploy h1 -o jsonpath='{.status.readyReplicas}')" == 1 ]] || fail "install: not ready"
	helm upgrade h1 "$here/testdata/chart" "${hk[@]}" --set replicas=2,poolSize=7 --wait --timeout 120s >/dev/null
	[[ "$(k -n helm-test get deploy h1 -o jsonpath='{.status.readyReplicas}')" == 2 ]] || fail "upgrade: not 2 ready"
	[[ "$(k -n helm-test get deploy h1 -o jsonpath='{.status.updatedReplicas}')" == 2 ]] || fail "upgrade: not rolled"
	[[ "$(helm status h1 "${hk[@]}" -o json | jq -r .version)" == 2 ]] || fail "revision"
	helm uninstall h1 "${hk[@]}" --wait --timeout 120s >/dev/null
	k -n helm-test wait --for=delete pod -l app.kubernetes.io/instance=h1 --timeout=60s >/dev/null
	[[ -z "$(k -n helm-test get deploy,rs,pods,cm,secret -o name 2>/dev/null | grep -v kube-root-ca.crt)" ]] || fail "objects left"
	k delete namespace helm-test --wait=true --timeout=60s >/dev/null
}

test_rbac_narrow_token() {
	k apply -f "$here/testdata/rbac.yaml" >/dev/null
	k -n rbac-narrow create configmap visible --from-literal=a=b >/dev/null
	k -n rbac-narrow create secret generic hidden --from-literal=a=b >/dev/null
	local token=$(k -n rbac-narrow create token narrow --duration=10m)
	source "$C1/env"
	# --kubeconfig /dev/null: with the admin kubeconfig loaded, its client certificate would win over the token.
	local tk=(kubectl --kubeconfig /dev/null --server "$API_SERVER" --certificate-authority "$C1/pki/ca.crt" --token "$token")
	[[ "$("${tk[@]}" auth whoami -o jsonpath='{.status.userInfo.username}')" == system:serviceaccount:rbac-narrow:narrow ]] || fail "whoami"
	[[ "$("${tk[@]}" -n rbac-narrow auth can-i list configmaps)" == yes ]] || fail "can-i list configmaps"
	[[ "$("${tk[@]}" -n rbac-narrow auth can-i list secrets)" == no ]] || fail "can-i list secrets should be no"
	"${tk[@]}" -n rbac-narrow get configmap visible >/dev/null || fail "get allowed configmap"
	local out
	out=$("${tk[@]}" -n rbac-narrow get secret hidden 2>&1) && fail "secret read allowed"
	grep -q Forbidden <<<"$out" || fail "expected Forbidden: $out"
	out=$("${tk[@]}" -n default get configmaps 2>&1) && fail "other namespace allowed"
	grep -q Forbidden <<<"$out" || fail "expected Forbidden: $out"
	out=$("${tk[@]}" -n rbac-narrow delete configmap visible 2>&1) && fail "delete allowed"
	grep -q Forbidden <<<"$out" || fail "expected Forbidden: $out"
	# A garbage token is refused outright.
	out=$(kubectl --kubeconfig /dev/null --server "$API_SERVER" --certificate-authority "$C1/pki/ca.crt" --token "x${token:1}" get --raw /api 2>&1) && fail "bad token accepted"
	grep -qi unauthorized <<<"$out" || fail "expected Unauthorized: $out"
}

test_api_from_a_pod() {
	# What an in-cluster operator relies on: the projected token, the CA and the namespace, and the API
	# server reached by the kubernetes Service's name. The pod calls the API with curl.
	k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: op, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: op, namespace: default}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op, namespace: default}
subjects: [{kind: ServiceAccount, name: op, namespace: default}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: op}
---
apiVersion: v1
kind: Pod
metadata: {name: op, namespace: default}
spec:
  serviceAccountName: op
  restartPolicy: Never
  containers:
  - name: client
    image: $pgb_image
    imagePullPolicy: Never
    command: ["/bin/sh", "-c"]
    args:
    - |
      sa=/var/run/secrets/kubernetes.io/serviceaccount
      call() { curl -sS --max-time 10 --cacert \$sa/ca.crt -H "Authorization: Bearer \$(cat \$sa/token)" "\$@"; }
      api=https://kubernetes.default.svc
      echo "namespace: \$(cat \$sa/namespace)"
      echo "whoami: \$(call -X POST -H 'Content-Type: application/json' \$api/apis/authentication.k8s.io/v1/selfsubjectreviews -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' | tr -d ' \n')"
      echo "configmaps: \$(call -o /dev/null -w '%{http_code}' \$api/api/v1/namespaces/default/configmaps)"
      echo "secrets: \$(call -o /dev/null -w '%{http_code}' \$api/api/v1/namespaces/default/secrets)"
EOF
	eventually 60 '[[ "$(k get pod op -o jsonpath="{.status.phase}")" == Succeeded ]]' || fail "pod op: $(k get pod op -o wide; k logs op)"
	local out=$(k logs op)
	has '^namespace: default$' <<<"$out" || fail "namespace: $out"
	has '"username":"system:serviceaccount:default:op"' <<<"$out" || fail "identity: $out"
	has '^configmaps: 200$' <<<"$out" || fail "configmaps: $out"
	has '^secrets: 403$' <<<"$out" || fail "secrets: $out"
	k delete pod op --wait=true --timeout=30s >/dev/null
}

test_host_restored() {
	# Both clusters down: every link, address, route, namespace, mount, cgroup, iptables rule and kernel
	# setting of the host is as it was before the first one started.
	"$here/down.sh" "$C1"
	host_state > "$work/host-after"
	if grep -qx "## shared" "$work/host-before" && grep -qx "## shared" "$work/host-after"; then
		diff "$work/host-before" "$work/host-after" >&2 || fail "the host changed"
	else
		log "other clusters ran meanwhile: the state all clusters share is not compared"
		diff <(without_shared "$work/host-before") <(without_shared "$work/host-after") >&2 || fail "the host changed"
	fi
}

run test_two_clusters_up_down
if [[ -f "$C1/env" ]]; then
	start_postgres # for the PgBouncer tests; on 198.18.0.1, which exists while a cluster runs
	run test_pgbouncer_deployment
	run test_service_by_name
	run test_image_never_pulled
	run test_crd_watch
	run test_helm
	run test_rbac_narrow_token
	run test_api_from_a_pod
fi
run test_host_restored
echo "$passed passed, $failed failed"
(( failed == 0 ))
