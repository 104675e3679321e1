#!/usr/bin/env bash
# tests/cluster/test.sh — tests of the local cluster harness itself, against real components:
# etcd + kube-apiserver + kube-controller-manager (built from the Go modules) + localkubelet, driven by the
# pinned kubectl 1.35 and helm 4, with a throwaway PostgreSQL behind real PgBouncer pods.
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

# ---------------------------------------------------------------------------------------------------------------
test_two_clusters_up_down() {
	local t0=$(date +%s.%N)
	"$here/up.sh" "$C1" & local p1=$!
	"$here/up.sh" "$C2" & local p2=$!
	wait $p1 && wait $p2 || fail "up.sh"
	log "two clusters up in parallel in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
	source "$C1/env"; local api1=$API_PORT net1=$POD_IP_PREFIX
	source "$C2/env"; local api2=$API_PORT net2=$POD_IP_PREFIX
	[[ $api1 != "$api2" && $net1 != "$net2" ]] || fail "clusters share a port or pod range"
	for c in "$C1" "$C2"; do
		kubectl --kubeconfig "$c/kubeconfig" wait --for=condition=Ready node/local --timeout=30s >/dev/null
		[[ "$(kubectl --kubeconfig "$c/kubeconfig" version -o json | jq -r .serverVersion.gitVersion)" == v1.35.* ]] || fail "server version"
	done
	# Only loopback listeners for this cluster's processes.
	local pids=$(cat "$C1"/pids/*.pid | paste -sd, -)
	local nonlocal=$(ss -Hltnp | grep -E "pid=($(echo "$pids" | tr , '|'))," | awk '{print $4}' | grep -v '^127\.0\.0\.1:' || true)
	[[ -z "$nonlocal" ]] || fail "non-loopback listeners: $nonlocal"
	# RBAC is on, and the service-account signing works: a token's identity is what the API server reports.
	# (can-i exits 1 when the answer is no)
	[[ "$(kubectl --kubeconfig "$C1/kubeconfig" auth can-i create pods --as=system:serviceaccount:default:default || true)" == no ]] ||
		fail "the default service account may create pods"
	local c2pids=$(cat "$C2"/pids/*.pid)
	"$here/down.sh" "$C2"
	for p in $c2pids; do ! kill -0 "$p" 2>/dev/null || fail "process $p of cluster 2 still running"; done
	[[ ! -e "/tmp/poolkeeper-cluster-podnets/$net2" ]] || fail "pod range of cluster 2 not released"
	for p in $(cat "$C1"/pids/*.pid); do kill -0 "$p" || fail "cluster 1 process $p died with cluster 2"; done
	k get --raw /readyz | has -x ok
}

pod_ips() { k get pods -l app=pgb -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}'; }
pgb_pids() { # pgbouncer processes of cluster 1
	local p
	for p in $(pgrep -x pgbouncer); do
		grep -qxF "LOCALKUBELET_STATE_DIR=$C1/kubelet" < <(tr '\0' '\n' < /proc/$p/environ 2>/dev/null) && echo "$p"
	done
}
ready_restarted() { # pod: Ready and restarted at least once
	[[ "$(k get pod "$1" -o jsonpath='{.status.containerStatuses[0].restartCount}')" -ge 1 ]] &&
		[[ "$(k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
test_pgbouncer_deployment() {
	start_postgres
	sed "s/@PGPORT@/$pgport/" "$here/testdata/pgbouncer.yaml" | k apply -f - >/dev/null
	k rollout status deployment/pgb --timeout=90s >/dev/null
	k wait --for=condition=Ready pod -l app=pgb --timeout=60s >/dev/null
	source "$C1/env"
	local ips=($(pod_ips))
	[[ ${#ips[@]} == 2 && ${ips[0]} != "${ips[1]}" ]] || fail "want 2 distinct pod IPs, got ${ips[*]}"
	for ip in "${ips[@]}"; do
		[[ $ip == "$POD_IP_PREFIX".* ]] || fail "pod IP $ip not in $POD_IP_PREFIX.x.y"
		local got=$(PGPASSWORD=app-secret-pw PGCONNECT_TIMEOUT=5 psql "host=$ip port=6432 user=app dbname=app" -qAt \
			-c "SELECT current_user || ':' || inet_server_port()")
		[[ "$got" == "app:$pgport" ]] || fail "psql through $ip: $got"
		log "psql via pgbouncer at $ip:6432 -> postgres :$pgport as app"
	done
	# Not through the pods' shared port on another address: each pgbouncer listens on its own IP only.
	! PGCONNECT_TIMEOUT=2 psql "host=127.0.0.1 port=6432 user=app dbname=app" -c "select 1" >/dev/null 2>&1 || fail "something listens on 127.0.0.1:6432"
	local pids=($(pgb_pids))
	[[ ${#pids[@]} == 2 ]] || fail "want 2 pgbouncer processes, got ${pids[*]}"
	for p in "${pids[@]}"; do [[ "$(ps -o user= -p "$p")" == postgres ]] || fail "pgbouncer $p not run as postgres"; done
	# Secret volume honours items and defaultMode; files are where the mount paths map to.
	local pod=$(k get pods -l app=pgb -o jsonpath='{.items[0].metadata.name}')
	local uid=$(k get pod "$pod" -o jsonpath='{.metadata.uid}')
	[[ "$(stat -L -c %a "$C1/kubelet/pods/$uid/volumes/auth/userlist.txt")" == 400 ]] || fail "secret mode"
	grep -q "^listen_addr = $(k get pod "$pod" -o jsonpath='{.status.podIP}')$" "$C1/kubelet/pods/$uid/containers/pgbouncer/pgbouncer.ini" || fail "listen_addr not rewritten"
	grep -q "^auth_file = $C1/kubelet/pods/$uid/volumes/auth/userlist.txt$" "$C1/kubelet/pods/$uid/containers/pgbouncer/pgbouncer.ini" || fail "auth_file not mapped"
	# Restart on exit: kill one pgbouncer, the pod comes back Ready with restartCount 1.
	local victim=$(cat "$C1/kubelet/pods/$uid/containers/pgbouncer/pid")
	kill -KILL "$victim"
	poll 40 ready_restarted "$pod" || fail "pod $pod not restarted"
	[[ "$(k get pod "$pod" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}')" == 137 ]] || fail "lastState"
	log "killed pgbouncer $victim: restarted, Ready again"
	# Delete: preStop sends SIGINT (safe shutdown in 1.18), processes end, the GC removes ReplicaSets and Pods.
	local rs=$(k get rs -l app=pgb -o name)
	[[ -n "$rs" ]]
	local logs=("$C1"/kubelet/logs/default_pgb-*/pgbouncer/*.log)
	k delete deployment pgb --wait=true --timeout=60s >/dev/null
	k wait --for=delete pod -l app=pgb --timeout=60s >/dev/null
	eventually 30 '[[ -z "$(k get rs -l app=pgb -o name)" ]]' || fail "replicasets not garbage-collected"
	[[ -z "$(k get pods -l app=pgb -o name)" ]] || fail "pods left"
	eventually 10 '[[ -z "$(pgb_pids)" ]]' || fail "pgbouncer processes left: $(pgb_pids)"
	grep -qh "got SIGINT" "$C1"/kubelet/logs/default_pgb-*/pgbouncer/*.log || fail "pgbouncer did not get SIGINT from the preStop emulation"
	k delete configmap pgb-config >/dev/null && k delete secret pgb-auth >/dev/null
}

test_unrunnable_image() {
	# Only the image's name counts, not its path: this is no poolkeeper image.
	k run other --image=ghcr.io/poolkeeper/busybox:1.36 --restart=Never -- sleep 100 >/dev/null
	eventually 30 '[[ "$(k get pod other -o jsonpath='\''{.status.containerStatuses[0].state.waiting.reason}'\'')" == ImageNotRunnable ]]' ||
		fail "no ImageNotRunnable status"
	eventually 30 '[[ -n "$(k get events --field-selector involvedObject.name=other,reason=ImageNotRunnable,type=Warning -o name)" ]]' ||
		fail "no Warning event"
	[[ "$(k get pod other -o jsonpath='{.status.phase}')" == Pending ]]
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

test_operator_image_in_cluster() {
	# POOLKEEPER_BIN (the stand-in script) was given to up.sh; it calls the API with the projected token.
	k apply -f - >/dev/null <<'EOF'
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
  terminationGracePeriodSeconds: 10
  containers:
  - name: manager
    image: ghcr.io/example/poolkeeper:dev
    args: ["run", "--leader-elect=false"]
    readinessProbe:
      exec:
        command: ["/bin/sh", "-c", "test -s /var/run/secrets/kubernetes.io/serviceaccount/token"]
      periodSeconds: 1
EOF
	k wait --for=condition=Ready pod/op --timeout=60s >/dev/null
	local uid=$(k get pod op -o jsonpath='{.metadata.uid}')
	local lf="$C1/kubelet/logs/default_op_$uid/manager/0.log"
	poll 20 grep -q '^secrets:' "$lf" || fail "operator stand-in produced no output: $(cat "$lf")"
	grep -q '^args: run --leader-elect=false$' "$lf" || fail "args: $(cat "$lf")"
	grep -q '"username":"system:serviceaccount:default:op"' "$lf" || fail "identity: $(cat "$lf")"
	grep -q '^configmaps: 200$' "$lf" || fail "configmaps: $(cat "$lf")"
	grep -q '^secrets: 403$' "$lf" || fail "secrets: $(cat "$lf")"
	k delete pod op --wait=true --timeout=30s >/dev/null
	grep -q '^got SIGTERM$' "$lf" || fail "no SIGTERM on delete"
}

export POOLKEEPER_BIN="$here/testdata/fake-operator.sh"
run test_two_clusters_up_down
if [[ -f "$C1/env" ]]; then
	run test_pgbouncer_deployment
	run test_unrunnable_image
	run test_crd_watch
	run test_helm
	run test_rbac_narrow_token
	run test_operator_image_in_cluster
fi
echo "$passed passed, $failed failed"
(( failed == 0 ))
