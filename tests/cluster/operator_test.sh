#!/usr/bin/env bash
# tests/cluster/operator_test.sh — `poolkeeper run` against the real local control plane (up.sh), with a real
# PostgreSQL behind the PgBouncer pods the node runs (kubelet, containerd), driven by the pinned kubectl. The operator runs as
# local processes with the admin kubeconfig here (install_test.sh runs it in-cluster under its own RBAC).
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=operator source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"

cleanup() {
	trap - EXIT INT TERM
	local f # operators started inside a test's subshell are known only by their pid files
	for f in "$work"/*.pid; do [[ -f "$f" ]] && kill -KILL "$(cat "$f")" 2>/dev/null; done
	"$here/down.sh" "$C" >/dev/null 2>&1
	stop_postgres
	finish_work
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 1500
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

# start_operator NAME [KUBECONFIG [WATCH-TIMEOUT]]: runs `poolkeeper run` as replica NAME; its HTTP port is in
# $work/NAME.port, log in $work/NAME.log.
start_operator() {
	local name="$1" kubeconfig="${2:-$C/kubeconfig}" watch_timeout="${3:-5}" port
	port="$(free_ports 1)"
	echo "$port" > "$work/$name.port"
	POD_NAME="$name" POD_NAMESPACE=poolkeeper-system setsid "$poolkeeper" run --kubeconfig "$kubeconfig" \
		--http-address "127.0.0.1:$port" --metrics-auth none --leader-elect --leader-election-namespace poolkeeper-system \
		--workers 2 --log-format json --watch-timeout-seconds "$watch_timeout" \
		--allowed-pooler-images 'localhost/poolkeeper-test/*' >>"$work/$name.log" 2>&1 &
	echo $! > "$work/$name.pid"
}
op_pid() { cat "$work/$1.pid"; }
metrics() { curl -sf --max-time 5 "http://127.0.0.1:$(cat "$work/$1.port")/metrics"; }
ready() { curl -sf --max-time 5 "http://127.0.0.1:$(cat "$work/$1.port")/readyz" >/dev/null; }
is_leader() { metrics "$1" | has -x 'poolkeeper_leader 1'; }
# metric NAME SERIES-REGEX: the sum of the samples of the operator's series matching the regex.
metric_sum() { metrics "$1" | awk -v re="$2" '$0 ~ re { s += $NF } END { print s + 0 }'; }
writes() { metric_sum "$1" '^poolkeeper_api_requests_total\\{.*verb="(apply|create|update|patch|delete)"'; }

cond() { k get connectionpool "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"; }
reason() { k get connectionpool "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].reason}"; }
pool_ready() { # pool: Ready=True for the current generation
	[[ "$(cond "$1" Ready)" == True ]] &&
		[[ "$(k get connectionpool "$1" -o jsonpath='{.status.observedGeneration}')" == "$(k get connectionpool "$1" -o jsonpath='{.metadata.generation}')" ]]
}
template_hash() { k get connectionpool "$1" -o jsonpath='{.status.configHash}'; }
# pods_run_hash POOL: every live pod of the pool runs the pool's current configuration.
pods_run_hash() {
	local want=$(template_hash "$1") got
	got=$(k get pods -l "app.kubernetes.io/instance=$1" --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.annotations.poolkeeper\.io/config-hash}{"\n"}{end}' | sort -u)
	[[ -n "$want" && "$got" == "$want" ]]
}
live_pods() { k get pods -l "app.kubernetes.io/instance=$1" --field-selector=status.phase!=Succeeded,status.phase!=Failed -o name; }
# Pod uids, not names: the operator reuses a slot's name once its pod is gone.
pod_uids() { k get pods -l "app.kubernetes.io/instance=$1" -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}' | sort; }
pod_ips() { k get pods -l "app.kubernetes.io/instance=$1" --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}'; }
# query POOL PASSWORD: a query through every Running pod of the pool; prints the server port seen.
query_all() {
	local ip out
	for ip in $(pod_ips "$1"); do
		out=$(PGPASSWORD="$2" PGCONNECT_TIMEOUT=5 psql "host=$ip port=6432 user=app dbname=app" -qAt -c "SELECT inet_server_port()") || return 1
		[[ "$out" == "$pgport" ]] || return 1
	done
	[[ -n "$(pod_ips "$1")" ]]
}

# pool NAME POOL-SIZE [MAX-DB-CONNECTIONS] [INSTANCES]: a ConnectionPool for the test's server (max_connections 30:
# 30 - 3 superuser reserved - 2 overhead = 25 usable).
pool() {
	local name="$1" size="$2" maxdb="${3:-$2}" instances="${4:-1}"
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $name, namespace: default}
spec:
  server: {host: $host_ip, port: $pgport, maxConnections: 30, overhead: 2}
  pooler: {instances: $instances, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: $size}
  databases: [{name: app, maxDbConnections: $maxdb}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}

# ---------------------------------------------------------------------------------------------------------------
test_pool_becomes_ready_and_serves() {
	pool first 5 5 2 | k apply -f - >/dev/null
	k wait --for=condition=Ready connectionpool/first --timeout=90s >/dev/null || fail "first not Ready: $(k get connectionpool first -o jsonpath='{.status.conditions}')"
	for o in configmap/first-config secret/first-auth service/first poddisruptionbudget/first pod/first-0 pod/first-1; do
		[[ "$(k get "$o" -o jsonpath='{.metadata.ownerReferences[0].name}')" == first ]] || fail "$o not owned by first"
	done
	[[ "$(k get connectionpool first -o jsonpath='{.status.budget.usable}')" == 25 ]] || fail "usable"
	[[ "$(k get connectionpool first -o jsonpath='{.status.budget.worstCase}')" == 15 ]] || fail "worst case (2 + 1) x 5"
	[[ "$(k get connectionpool first -o jsonpath='{.status.readyInstances}')" == 2 ]] || fail "readyInstances"
	poll 30 query_all first app-secret-pw || fail "no query through the pods of first"
	# No password in the ConfigMap, the status or the events.
	lacks app-secret-pw k get configmap first-config -o yaml || fail "password in the ConfigMap"
	lacks app-secret-pw k get connectionpool first -o yaml || fail "password in the status"
	lacks app-secret-pw k get events -o yaml || fail "password in an event"
	! grep -q app-secret-pw "$work"/op1.log || fail "password in the operator log"
	log "first Ready, 2 pods serve through PgBouncer to PostgreSQL :$pgport"
}

# The pod spec the operator renders, as the kubelet runs it; and the pool reached by its Service's name.
test_rendered_pod_runs_as_specified() {
	source "$C/env"
	local pod=first-0
	[[ "$(k exec "$pod" -- id -u):$(k exec "$pod" -- id -g)" == 70:70 ]] || fail "not uid:gid 70:70"
	# No capability left (effective, permitted, bounding), no privilege escalation, the runtime's seccomp filter.
	local status=$(k exec "$pod" -- awk '/^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):/ {print $1 $2}' /proc/1/status | sort | paste -sd ' ')
	[[ "$status" == "CapBnd:0000000000000000 CapEff:0000000000000000 CapPrm:0000000000000000 NoNewPrivs:1 Seccomp:2" ]] ||
		fail "process status: $status"
	local out
	out=$(k exec "$pod" -- touch /tmp/x 2>&1) && fail "the root filesystem is writable"
	has "Read-only file system" <<<"$out" || fail "touch: $out"
	# The passwords: the owner (root) and fsGroup 70 read them, nobody else; the config is readable, never writable.
	[[ "$(k exec "$pod" -- stat -L -c '%a %g' /etc/pgbouncer-auth/userlist.txt)" == "440 70" ]] ||
		fail "userlist mode: $(k exec "$pod" -- stat -L -c '%a %g' /etc/pgbouncer-auth/userlist.txt)"
	[[ "$(k exec "$pod" -- stat -L -c '%a' /etc/pgbouncer/pgbouncer.ini)" == 444 ]] || fail "pgbouncer.ini mode"
	# A client in the cluster reaches PostgreSQL through the pool's Service name (CoreDNS, kube-proxy).
	local ip=$(k get service first -o jsonpath='{.spec.clusterIP}')
	service_answers "$ip" 6432 app-secret-pw || fail "the Service's address $ip does not reach the pool"
	out=$(psql_in_pod "$C/kubeconfig" app-secret-pw "host=first.default.svc.cluster.local port=6432 user=app dbname=app" \
		-qAt -c "SELECT inet_server_port()") || fail "psql by the Service's name: $out"
	[[ "$out" == "$pgport" ]] || fail "psql by the Service's name: $out"
	# PgBouncer killed: the kubelet restarts the container in the same pod, which serves again.
	local victim=$(host_pid "$C/kubeconfig" default "$pod")
	[[ -n "$victim" ]] || fail "no task for $pod"
	kill -KILL "$victim"
	eventually 60 '[[ "$(k get pod "$pod" -o jsonpath="{.status.containerStatuses[0].restartCount}")" -ge 1 && "$(k get pod "$pod" -o jsonpath="{.status.containerStatuses[0].ready}")" == true ]]' ||
		fail "$pod not restarted: $(k get pod "$pod" -o jsonpath='{.status.containerStatuses[0]}')"
	[[ "$(k get pod "$pod" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}')" == 137 ]] || fail "lastState"
	poll 60 pool_ready first || fail "first not Ready after the restart"
	poll 30 query_all first app-secret-pw || fail "no query after the restart"
	log "pod spec as rendered: 70:70, no capabilities, read-only root, userlist 0440; by Service name; restarted after a kill"
}

test_spec_change_rolls_the_pods() {
	local hash_before=$(template_hash first) pods_before=$(pod_uids first)
	k patch connectionpool first --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":4},"databases":[{"name":"app","maxDbConnections":4}]}}' >/dev/null
	poll 60 pool_ready first || fail "first not Ready after the change"
	[[ "$(template_hash first)" != "$hash_before" ]] || fail "config hash unchanged"
	poll 60 pods_run_hash first || fail "pods do not all run the new configuration"
	eventually 60 '[[ "$(pod_uids first | grep -vxF "$pods_before" | wc -l)" -eq 2 ]]' || fail "pods not replaced"
	k get configmap first-config -o jsonpath='{.data.pgbouncer\.ini}' | has '^default_pool_size = 4$' || fail "ini not updated"
	poll 30 query_all first app-secret-pw || fail "no query after the rollout"
}

test_overrun_is_refused_and_old_pods_keep_running() {
	local hash_before=$(template_hash first) pods_before=$(pod_uids first)
	# (2 + 1) x 10 = 30 > 25 usable
	k patch connectionpool first --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":10},"databases":[{"name":"app","maxDbConnections":10}]}}' >/dev/null
	eventually 30 '[[ "$(cond first BudgetExceeded)" == True ]]' || fail "no BudgetExceeded"
	local msg=$(k get connectionpool first -o jsonpath='{.status.conditions[?(@.type=="BudgetExceeded")].message}')
	grep -q 30 <<<"$msg" && grep -q 25 <<<"$msg" || fail "message without the arithmetic: $msg"
	[[ "$(cond first Ready)" == False ]] || fail "Ready should be False"
	eventually 30 '[[ -n "$(k get events --field-selector involvedObject.name=first,type=Warning,reason=BudgetExceeded -o name)" ]]' || fail "no Warning event"
	[[ "$(template_hash first)" == "$hash_before" ]] || fail "the overrunning configuration was rolled out"
	[[ "$(pod_uids first)" == "$pods_before" ]] || fail "pods changed"
	query_all first app-secret-pw || fail "old pods stopped serving"
	# Back within budget: admitted again.
	k patch connectionpool first --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":4},"databases":[{"name":"app","maxDbConnections":4}]}}' >/dev/null
	poll 60 pool_ready first || fail "not Ready after shrinking back"
	[[ "$(cond first BudgetExceeded)" == False ]] || fail "BudgetExceeded stayed"
}

test_second_pool_waits_for_budget() {
	# first holds (2 + 1) x 4 = 12 of 25; second wants (1 + 1) x 7 = 14 > 13 left.
	pool second 7 7 1 | k apply -f - >/dev/null
	eventually 30 '[[ "$(cond second BudgetExceeded)" == True ]]' || fail "second admitted over budget"
	[[ -z "$(k get pods -l app.kubernetes.io/instance=second -o name)" ]] || fail "second got pods"
	k delete connectionpool first --wait=true --timeout=60s >/dev/null
	k wait --for=condition=Ready connectionpool/second --timeout=90s >/dev/null || fail "second not admitted after first was deleted"
	[[ -z "$(k get pods -l app.kubernetes.io/instance=first -o name)" ]] || fail "first removed while its pods existed"
	eventually 60 '[[ -z "$(k get configmap,secret,service -l app.kubernetes.io/instance=first -o name)" ]]' || fail "first's objects not collected"
	poll 30 query_all second app-secret-pw || fail "no query through second"
}

test_password_rotation_reaches_the_pods() {
	local hash_before=$(template_hash second)
	psql_super -c "ALTER ROLE app PASSWORD 'rotated-pw-2'"
	k create secret generic app-db --from-literal=password=rotated-pw-2 --dry-run=client -o yaml | k label --local -f - poolkeeper.io/expose-to-pools=true -o yaml | k apply -f - >/dev/null
	eventually 60 '[[ "$(template_hash second)" != "$hash_before" ]]' || fail "rotation did not change the pods' config hash"
	poll 60 pods_run_hash second || fail "pods do not all run the new configuration"
	poll 60 pool_ready second || fail "second not Ready after rotation"
	poll 60 query_all second rotated-pw-2 || fail "the new password does not work through the pooler"
	local userlist
	userlist=$(k get secret second-auth -o jsonpath='{.data.userlist\.txt}' | base64 -d) && [[ -n "$userlist" ]] || fail "no userlist"
	! grep -q app-secret-pw <<<"$userlist" || fail "old password kept"
}

test_missing_secret_is_a_condition() {
	pool third 1 1 1 | sed 's/name: app-db/name: nowhere/' | k apply -f - >/dev/null
	eventually 30 '[[ "$(reason third Degraded)" == SecretNotFound ]]' || fail "no SecretNotFound: $(k get connectionpool third -o jsonpath='{.status.conditions}')"
	kill -0 "$(op_pid op1)" 2>/dev/null || kill -0 "$(op_pid op2)" 2>/dev/null || fail "operator died"
	k delete connectionpool third --wait=true >/dev/null
}

# Issue 12: a pool author could name any Secret of the namespace and have its value in the userlist. A Secret without
# the label poolkeeper.io/expose-to-pools=true is refused with its own reason, nothing of the pool is written and the
# value is nowhere; once the label is added the pool rolls out without anything else changing.
test_unlabelled_secret_is_refused_until_labelled() {
	local value=unlabelled-api-key-4711 encoded
	encoded=$(printf %s "$value" | base64)
	k create secret generic api-key --from-literal=password="$value" >/dev/null
	pool fourth 1 1 1 | sed 's/name: app-db/name: api-key/' | k apply -f - >/dev/null
	eventually 30 '[[ "$(reason fourth Degraded)" == SecretNotExposed ]]' || fail "no SecretNotExposed: $(k get connectionpool fourth -o jsonpath='{.status.conditions}')"
	local message=$(k get connectionpool fourth -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}')
	has -F "Secret default/api-key is not labelled poolkeeper.io/expose-to-pools=true" <<<"$message" || fail "message: $message"
	eventually 30 'k get events --field-selector involvedObject.name=fourth,reason=SecretNotExposed -o name | has event' || fail "no SecretNotExposed event"
	[[ "$(cond fourth Ready)" == False ]] || fail "fourth Ready with an unlabelled Secret"
	! k get secret fourth-auth >/dev/null 2>&1 || fail "a userlist Secret was written for fourth"
	[[ -z "$(k get configmap,pods -l app.kubernetes.io/instance=fourth -o name)" ]] || fail "objects of fourth written"
	lacks "$encoded" k get secrets -l app.kubernetes.io/managed-by=poolkeeper -o yaml || fail "the value is in a userlist"
	lacks "$value" k get connectionpool fourth -o yaml || fail "the value in the status"
	lacks "$value" k get events -o yaml || fail "the value in an event"
	! grep -q -e "$value" -e "$encoded" "$work"/op*.log || fail "the value in an operator log"
	k label secret api-key poolkeeper.io/expose-to-pools=true >/dev/null
	poll 90 pool_ready fourth || fail "fourth not Ready after the label was added: $(k get connectionpool fourth -o jsonpath='{.status.conditions}')"
	k get secret fourth-auth >/dev/null || fail "no userlist after the label was added"
	k delete connectionpool fourth --wait=true --timeout=60s >/dev/null
	k delete secret api-key >/dev/null
}

# Issue 12's reproduction: a pool that names another application's Secret and an image of its author's choosing
# gets no pod and no userlist, so the key never reaches that image; nor do pods that would tolerate every taint or
# take a system priority class. The condition and an Event say which field and what the operator allows.
test_pod_policy_refuses_foreign_images_and_system_scheduling() {
	k create secret generic payments-api-key --from-literal=password=payments-key-value >/dev/null
	pool thief 1 1 1 | sed -e 's#localhost/poolkeeper-test/pgbouncer:1.18.0#attacker.example/anything:1.18#' \
		-e 's/name: app-db/name: payments-api-key/' | k apply -f - >/dev/null
	pool squatter 1 1 1 | sed 's/defaultPoolSize: 1}/defaultPoolSize: 1, priorityClassName: system-node-critical, tolerations: [{operator: Exists}]}/' |
		k apply -f - >/dev/null
	eventually 30 '[[ "$(reason thief Degraded)" == PolicyViolation && "$(reason squatter Degraded)" == PolicyViolation ]]' ||
		fail "not refused: $(k get connectionpool thief squatter -o jsonpath='{.items[*].status.conditions}')"
	local message=$(k get connectionpool thief -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}')
	[[ "$message" == "refused by the operator's pod policy, nothing rendered: spec.pooler.image: \"attacker.example/anything:1.18\" is not an allowed image (the operator allows: localhost/poolkeeper-test/*, ghcr.io/cloudnative-pg/pgbouncer:1.24.1; --allowed-pooler-images)" ]] ||
		fail "thief's condition: $message"
	message=$(k get connectionpool squatter -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}')
	has 'spec.pooler.tolerations\[0\]: tolerates every taint' <<<"$message" || fail "squatter's condition: $message"
	has 'spec.pooler.priorityClassName: "system-node-critical" is a system priority class' <<<"$message" || fail "squatter's condition: $message"
	[[ "$(cond thief Ready)" == False ]] || fail "thief Ready"
	k get events --field-selector involvedObject.name=thief,reason=PolicyViolation -o name | has . || fail "no PolicyViolation event"
	[[ -z "$(k get pods -l 'app.kubernetes.io/instance in (thief,squatter)' -o name)" ]] || fail "a pod of a refused pool"
	local o
	for o in secret/thief-auth configmap/thief-config service/thief secret/squatter-auth; do
		! k get "$o" >/dev/null 2>&1 || fail "$o written"
	done
	lacks payments-key-value k get secrets,configmaps,pods,events -o yaml || fail "the key's value outside its Secret"
	lacks payments-key-value k get connectionpool thief -o yaml || fail "the key's value in the status"
	! grep -q payments-key-value "$work"/op1.log "$work"/op2.log || fail "the key's value in the operator log"
	k delete connectionpool thief squatter --wait=true >/dev/null
	k delete secret payments-api-key >/dev/null
	log "attacker.example/anything, blanket toleration and system-node-critical refused: no pod, no userlist"
}

other_replica() { [[ $1 == op1 ]] && echo op2 || echo op1; }
test_steady_state_writes_nothing() {
	# A new leader reconciles every pool from its caches: with nothing changed it must not write.
	[[ "$(k get connectionpools -o name)" == connectionpool.poolkeeper.io/second ]] || fail "want exactly one pool"
	local leader=op1; is_leader op1 || leader=op2
	local follower=$(other_replica $leader)
	kill -TERM "$(op_pid "$leader")"
	poll 20 bash -c "! kill -0 $(op_pid "$leader")" || fail "$leader did not exit on SIGTERM"
	poll 20 is_leader "$follower" || fail "$follower did not lead after $leader released the Lease"
	eventually 60 '[[ "$(metric_sum "$follower" "^poolkeeper_reconcile_total")" -ge 1 ]]' || fail "nothing reconciled"
	local w=$(writes "$follower")
	[[ "$w" == 0 ]] || fail "$w writes in a steady-state resync"
	start_operator op3 # the follower for the next test
	poll 30 ready op3 || fail "op3 not ready"
}

test_leader_fails_over_within_the_lease() {
	local leader="" follower=""
	for r in op1 op2 op3; do
		kill -0 "$(op_pid $r)" 2>/dev/null || continue
		if is_leader $r; then leader=$r; else follower=$r; fi
	done
	[[ -n "$leader" && -n "$follower" ]] || fail "want a leader and a follower: leader=$leader follower=$follower"
	local holder=$(k -n poolkeeper-system get lease poolkeeper-leader -o jsonpath='{.spec.holderIdentity}')
	[[ "$holder" == "$leader" ]] || fail "lease held by $holder, leader is $leader"
	local t0=$(date +%s)
	kill -KILL "$(op_pid "$leader")"
	poll 40 is_leader "$follower" || fail "$follower did not take over"
	log "$follower took over $(( $(date +%s) - t0 ))s after the leader was killed"
	k patch connectionpool second --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":6},"databases":[{"name":"app","maxDbConnections":6}]}}' >/dev/null
	poll 60 pool_ready second || fail "the new leader does not reconcile"
	[[ "$(live_pods second | wc -l)" -le 2 ]] || fail "more pods than slots: $(live_pods second)"
	[[ -z "$(k get pods -l app.kubernetes.io/managed-by=poolkeeper -o name | grep -v '^pod/second-')" ]] || fail "pods of no pool"
}

current_leader() { local r; for r in op1 op2 op3; do is_leader $r && { echo $r; return; }; done; return 1; }
test_expired_watch_relists() {
	# ConfigMaps are watched straight from etcd here (no watch cache, see up.sh below) and the operators'
	# watches end every 5-10 s: advance etcd past the operator's ConfigMap watch and compact, and resuming
	# that watch is 410 Gone, which must lead to a fresh LIST, after which the caches still work.
	local leader; leader=$(current_leader) || fail "no leader"
	local before=$(metric_sum "$leader" '^poolkeeper_informer_relists_total')
	for i in 1 2 3; do k create configmap "churn-$i" >/dev/null; k delete configmap "churn-$i" >/dev/null; done
	source "$C/env"
	local rev=$(curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/range" -d '{"key":"AA=="}' | jq -r .header.revision)
	curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null ||
		fail "etcd compaction at $rev"
	eventually 60 '[[ "$(metric_sum "$leader" "^poolkeeper_informer_relists_total")" -gt $before ]]' || fail "no relist after compaction"
	log "compacted etcd at revision $rev; $leader relisted"
	k patch connectionpool second --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":5},"databases":[{"name":"app","maxDbConnections":5}]}}' >/dev/null
	poll 60 pool_ready second || fail "not reconciled after the relist"
	k get configmap second-config -o jsonpath='{.data.pgbouncer\.ini}' | has '^default_pool_size = 5$' || fail "ini not updated"
}

# Issue 9, case 1: pods are the operator's to start: scaling goes through the pool's scale subresource, and a pod
# deleted by hand is replaced (within the budget).
test_scaling_and_pod_deletes_go_through_the_pool() {
	k scale connectionpool second --replicas=2 >/dev/null
	poll 60 pool_ready second || fail "second not Ready at 2 instances"
	[[ "$(live_pods second | wc -l)" == 2 ]] || fail "want 2 pods: $(live_pods second)"
	local victim=$(live_pods second | head -1)
	k delete "$victim" --wait=false >/dev/null
	eventually 60 '[[ "$(cond second Ready)" == True && "$(k get connectionpool second -o jsonpath="{.status.readyInstances}")" == 2 ]]' ||
		fail "the deleted pod was not replaced: $(live_pods second)"
	k scale connectionpool second --replicas=1 >/dev/null
	poll 60 pool_ready second || fail "second not Ready at 1 instance"
	eventually 60 '[[ "$(live_pods second | wc -l)" == 1 ]]' || fail "want 1 pod: $(live_pods second)"
}

# Issue 9, case 7: an object that already has one of the pool's names is left alone, and survives the pool.
test_name_taken_is_left_alone() {
	k create service clusterip taken --tcp=6432:6432 >/dev/null
	pool taken 1 1 1 | k apply -f - >/dev/null
	eventually 30 '[[ "$(reason taken Degraded)" == NameConflict ]]' || fail "no NameConflict: $(k get connectionpool taken -o jsonpath='{.status.conditions}')"
	k get connectionpool taken -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}' | has 'Service default/taken' || fail "message does not name the Service"
	[[ -z "$(k get service taken -o jsonpath='{.metadata.ownerReferences}')" ]] || fail "the Service was taken over"
	[[ -z "$(k get pods,configmap,secret -l app.kubernetes.io/instance=taken -o name)" ]] || fail "objects written beside a conflict"
	k delete connectionpool taken --wait=true --timeout=60s >/dev/null || fail "pool not deleted"
	k get service taken >/dev/null || fail "the user's Service went with the pool"
	k delete service taken >/dev/null
}

# Issue 9, case 5: a deleted pool stays (and stays charged) until its pods are gone.
test_deleted_pool_is_charged_until_its_pods_are_gone() {
	pool fourth 2 2 1 | k apply -f - >/dev/null
	k wait --for=condition=Ready connectionpool/fourth --timeout=90s >/dev/null || fail "fourth not Ready"
	[[ "$(k get connectionpool fourth -o jsonpath='{.metadata.finalizers}')" == *poolkeeper.io/pods-drained* ]] || fail "no finalizer"
	k delete connectionpool fourth --wait=false >/dev/null
	local end=$(( $(date +%s) + 90 )) exists pods
	while :; do
		# The pool first, then its pods: once the pool is gone, no pod of it may be left.
		exists=$(k get connectionpool fourth -o name 2>/dev/null || true)
		pods=$(live_pods fourth | wc -l)
		[[ -n "$exists" || "$pods" == 0 ]] || fail "fourth was removed while $pods of its pods still existed"
		[[ -n "$exists" ]] || break
		(( $(date +%s) < end )) || fail "fourth not deleted: $(k get connectionpool fourth -o jsonpath='{.metadata}')"
		sleep 0.2
	done
}

# Issue 9, case 5: `kubectl delete --cascade=orphan` leaves pods that stay charged to their server.
test_orphaned_pods_stay_charged() {
	pool fifth 2 2 1 | k apply -f - >/dev/null  # (1 + 1) x 2 = 4
	k wait --for=condition=Ready connectionpool/fifth --timeout=90s >/dev/null || fail "fifth not Ready"
	k delete connectionpool fifth --cascade=orphan --wait=true --timeout=60s >/dev/null || fail "fifth not deleted"
	[[ "$(k get pods -l app.kubernetes.io/instance=fifth -o name | wc -l)" -ge 1 ]] || fail "no orphaned pods"
	local per_pod=$(k get pods -l app.kubernetes.io/instance=fifth -o jsonpath='{.items[0].metadata.annotations.poolkeeper\.io/connections-per-pod}')
	local pods=$(live_pods fifth | wc -l)
	local orphans=$(( pods * per_pod ))
	[[ -z "$(k get pods -l app.kubernetes.io/instance=fifth -o jsonpath='{.items[*].metadata.ownerReferences}')" ]] || fail "pods still owned"
	# After a change of second (planned after the orphaning), its server's ledger holds (1 + 1) x 4 for second,
	# and what the orphaned pods can open.
	k patch connectionpool second --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":4},"databases":[{"name":"app","maxDbConnections":4}]}}' >/dev/null
	poll 60 pool_ready second || fail "second not Ready"
	eventually 30 '[[ "$(k get connectionpool second -o jsonpath="{.status.budget.allocated}")" == $(( 8 + orphans )) ]]' ||
		fail "allocated $(k get connectionpool second -o jsonpath='{.status.budget.allocated}'), want 8 + $pods pods x $per_pod = $(( 8 + orphans ))"
	k delete pods -l app.kubernetes.io/instance=fifth --wait=true >/dev/null
	eventually 60 '[[ "$(k get connectionpool second -o jsonpath="{.status.budget.allocated}")" == 8 ]]' ||
		fail "the orphans' connections were not released once their pods were gone"
}

# The version of the operator's default image (PgBouncer 1.24, Debian trixie's build): the config rendered for
# it loads, and a pod stopping drains on SIGTERM (from 1.23; no preStop hook): a query running when the pod is
# deleted completes.
test_pgbouncer_1_24_serves_and_drains() {
	local pw=$(k get secret app-db -o jsonpath='{.data.password}' | base64 -d) # as the rotation test left it
	k delete connectionpools --all --wait=true --timeout=120s >/dev/null
	eventually 60 '[[ -z "$(k get pods -l app.kubernetes.io/managed-by=poolkeeper -o name)" ]]' || fail "pods left"
	k apply -f - >/dev/null <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: v124, namespace: default}
spec:
  server: {host: $host_ip, port: $pgport, maxConnections: 30, overhead: 2}
  pooler: {instances: 1, maxSurge: 1, image: "localhost/poolkeeper-test/pgbouncer:1.24.1", defaultPoolSize: 2}
  databases: [{name: app, maxDbConnections: 2}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
	poll 90 pool_ready v124 || fail "v124 not Ready: $(k get connectionpool v124 -o jsonpath='{.status.conditions}')"
	k exec v124-0 -- pgbouncer -V | has '^PgBouncer 1\.24\.1' || fail "not PgBouncer 1.24.1"
	[[ -z "$(k get pod v124-0 -o jsonpath='{.spec.containers[0].lifecycle}')" ]] || fail "a preStop hook rendered for 1.24"
	poll 30 query_all v124 "$pw" || fail "no query through v124"
	local ip=$(k get pod v124-0 -o jsonpath='{.status.podIP}')
	PGPASSWORD="$pw" psql "host=$ip port=6432 user=app dbname=app" -qAt -c "SELECT 42 AS drain_probe FROM pg_sleep(4)" > "$work/drain.out" 2>&1 &
	local client=$!
	eventually 20 '[[ "$(psql_super -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '\''%drain_probe%'\'' AND pid <> pg_backend_pid()")" == 1 ]]' ||
		{ kill $client; fail "the query did not reach the server"; }
	k delete pod v124-0 --wait=false >/dev/null
	wait $client || fail "the query was cut by the pod's stop: $(cat "$work/drain.out")"
	[[ "$(cat "$work/drain.out")" == 42 ]] || fail "query output: $(cat "$work/drain.out")"
	k delete connectionpool v124 --wait=true --timeout=60s >/dev/null
}

# Issue 12, item 2, against the real API server. A kubeconfig user that is an exec credential plugin
# (client.authentication.k8s.io/v1, a script printing a ServiceAccount token) works; a plugin that fails is an
# error naming the user and the plugin's words, not an anonymous client; and a kubeconfig whose CA is not the
# server's is refused even when the system store (SSL_CERT_FILE here) trusts the server's CA.
exec_kubeconfig() { # file user plugin ca-file
	cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
    certificate-authority: $4
users:
- name: $2
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: $3
      interactiveMode: Never
      installHint: the test writes this plugin
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
}
stop_operator() { kill -KILL "$(op_pid "$1")" 2>/dev/null; rm -f "$work/$1.pid"; }
test_exec_plugin_and_only_the_configured_ca() {
	k -n poolkeeper-system create serviceaccount exec-user >/dev/null
	k create clusterrolebinding exec-user --clusterrole=cluster-admin --serviceaccount=poolkeeper-system:exec-user >/dev/null
	local token; token=$(k -n poolkeeper-system create token exec-user --duration=1h)
	cat > "$work/plugin.sh" <<EOF
#!/bin/sh
echo ran >> "$work/plugin.runs"
case "\$KUBERNETES_EXEC_INFO" in *'"kind":"ExecCredential"'*) ;; *) echo "no KUBERNETES_EXEC_INFO" >&2; exit 1;; esac
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\n' "$token"
EOF
	printf '#!/bin/sh\necho "login expired, run the login again" >&2\nexit 1\n' > "$work/broken.sh"
	chmod +x "$work/plugin.sh" "$work/broken.sh"

	exec_kubeconfig "$work/exec.kubeconfig" exec-user "$work/plugin.sh" "$C/pki/ca.crt"
	start_operator opexec "$work/exec.kubeconfig"
	poll 60 ready opexec || { tail -5 "$work/opexec.log" >&2; fail "the operator with an exec plugin user is not ready"; }
	[[ -s "$work/plugin.runs" ]] || fail "the plugin never ran"
	lacks "$token" cat "$work/opexec.log" || fail "the token is in the log"
	stop_operator opexec

	exec_kubeconfig "$work/broken.kubeconfig" broken-user "$work/broken.sh" "$C/pki/ca.crt"
	start_operator opbroken "$work/broken.kubeconfig"
	eventually 30 'has -F "login expired, run the login again" < "$work/opbroken.log"' || fail "no error from the failing plugin"
	has -F 'user \"broken-user\": exec plugin' < "$work/opbroken.log" || fail "the error does not name the user and plugin"
	! ready opbroken || fail "ready without credentials"
	stop_operator opbroken

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
		-keyout "$work/other-ca.key" -out "$work/other-ca.crt" 2>/dev/null
	exec_kubeconfig "$work/other-ca.kubeconfig" exec-user "$work/plugin.sh" "$work/other-ca.crt"
	SSL_CERT_FILE="$C/pki/ca.crt" start_operator opotherca "$work/other-ca.kubeconfig"
	eventually 30 'has -F "TLS handshake: certificate verify failed" < "$work/opotherca.log"' || { tail -5 "$work/opotherca.log" >&2; fail "no TLS refusal with another CA"; }
	! ready opotherca || fail "ready against a server its CA does not vouch for"
	stop_operator opotherca
	k delete clusterrolebinding exec-user >/dev/null
}

# stop_replicas NAME...: SIGTERM to each running replica, then waits until each has exited.
stop_replicas() {
	local r
	for r in "$@"; do
		if [[ -f "$work/$r.pid" ]]; then kill -TERM "$(op_pid $r)" 2>/dev/null || true; fi
	done
	for r in "$@"; do
		if [[ -f "$work/$r.pid" ]]; then poll 30 bash -c "! kill -0 $(op_pid $r) 2>/dev/null" || fail "$r did not stop"; fi
	done
}
# start_proxy LOG KUBECONFIG: delay_proxy.py in front of the API server, passing requests through
# ($work/proxy.mode says how), logging to $work/LOG; $work/KUBECONFIG reaches the API server through
# it, from 127.0.0.1 in the audit log. Sets proxy_pid (also in $work/proxy.pid for the cleanup).
start_proxy() {
	local port
	source "$C/env"
	port=$(free_ports 1)
	echo pass > "$work/proxy.mode"
	python3 "$here/delay_proxy.py" "$port" "$HOST_IP" "$API_PORT" 127.0.0.1 "$work/proxy.mode" "$work/$1" &
	proxy_pid=$!
	echo "$proxy_pid" > "$work/proxy.pid"
	sed "s|server: https://.*|server: https://127.0.0.1:$port|" "$C/kubeconfig" > "$work/$2"
}

# Issue 12, item 3: with the API server slowed, the old leader kept writing 3.4 s after the new one started. Here the
# leader reaches the API server through delay_proxy.py, from its own source address; the proxy then forwards its
# bytes 1.5 s late each way (a request on a fresh TLS connection takes four crossings, 6 s: a renewal, GET then PUT,
# no longer fits in the renew deadline), while a pool's spec keeps changing so that a leader always has a status to
# write, and its watches stay open (events arrive late, not never). The API
# server's audit log must show that the old leader's last write was done before the new leader's first arrived,
# and that nothing of the old leader arrived later than its renew deadline plus the link's delay. Note: the operator
# before the fence passes this too (checked once): its slow renewal still lands, which restarts the standby's 15 s.
# What the fence alone stops (a write sent after the deadline, a timeout past it) is shown by
# tests/unit/kube/leader_fence_test.cc.
test_a_slowed_leader_stops_writing_before_the_next_one_starts() {
	local delay=1.5 churn_pid
	stop_replicas op1 op2 op3
	start_proxy proxy.log slow.kubeconfig
	start_operator slow "$work/slow.kubeconfig" 300
	poll 40 is_leader slow || fail "slow did not lead: $(tail -5 "$work/slow.log")"
	start_operator standby
	poll 30 ready standby || fail "standby not ready"
	pool churn 2 2 1 | sed 's/name: app-db/name: nowhere/' | k apply -f - >/dev/null
	eventually 30 '[[ "$(reason churn Degraded)" == SecretNotFound ]]' || fail "slow does not reconcile through the proxy"
	# A new generation every 0.3 s: each one is a status write for the leader.
	( n=0; while :; do n=$((n + 1))
		k patch connectionpool churn --type=merge -p "{\"spec\":{\"pooler\":{\"defaultPoolSize\":$(( n % 2 + 1 ))}}}" >/dev/null 2>&1
		sleep 0.3; done ) &
	churn_pid=$!
	echo "$churn_pid" > "$work/churn.pid"
	sleep 3 # a few writes at full speed first
	local since=$(date +%s.%N)
	echo "delay $delay" > "$work/proxy.mode"
	poll 40 is_leader standby || { kill $churn_pid; fail "standby did not take over"; }
	poll 20 bash -c "! kill -0 $(op_pid slow) 2>/dev/null" || { kill $churn_pid; fail "slow still runs after losing the lease"; }
	has 'lost leadership\|the renew deadline passed' <"$work/slow.log" || { kill $churn_pid; fail "slow exited without losing the lease"; }
	sleep 5 # the new leader writes too
	kill $churn_pid
	echo pass > "$work/proxy.mode"
	sleep 4 # anything still on the link arrives
	kill "$proxy_pid"
	python3 "$here/fence_check.py" "$work/audit.log" "$since" 127.0.0.1 "$HOST_IP" "$delay" 10 >&2 || fail "two leaders wrote at once"
	k delete connectionpool churn --wait=true >/dev/null
}

# Issue 12, item 3, the other way a leader falls behind: frozen (SIGSTOP stands for a long pause, a stalled VM, a
# node thrashing) in the middle of its work, and woken after another replica took the Lease. Without a fence its
# workers carry on where they stopped and write at once, before its renew loop learns the Lease is gone. The fence
# compares the renew deadline with the replica's own monotonic clock, which ran on while it was stopped, so its
# first write after waking is refused. The proxy (passing requests through) only gives the frozen replica a
# source address of its own in the audit log.
test_a_frozen_leader_writes_nothing_after_it_wakes() {
	local churn_pid since new_writes
	stop_replicas op1 op2 op3 slow standby
	start_proxy frozen-proxy.log frozen.kubeconfig
	start_operator frozen "$work/frozen.kubeconfig"
	poll 40 is_leader frozen || fail "frozen did not lead: $(tail -5 "$work/frozen.log")"
	start_operator waker
	poll 30 ready waker || fail "waker not ready"
	pool frozen-churn 2 2 1 | sed 's/name: app-db/name: nowhere/' | k apply -f - >/dev/null
	eventually 30 '[[ "$(reason frozen-churn Degraded)" == SecretNotFound ]]' || fail "frozen does not reconcile"
	( n=0; while :; do n=$((n + 1))
		k patch connectionpool frozen-churn --type=merge -p "{\"spec\":{\"pooler\":{\"defaultPoolSize\":$(( n % 2 + 1 ))}}}" >/dev/null 2>&1
		sleep 0.3; done ) &
	churn_pid=$!
	echo "$churn_pid" > "$work/churn.pid"
	local before=$(writes frozen)
	eventually 30 '(( $(writes frozen) >= '"$before"' + 5 ))' || { kill $churn_pid; fail "frozen is not writing the churn's status"; }
	since=$(date +%s.%N)
	kill -STOP "$(op_pid frozen)"
	poll 60 is_leader waker || { kill -CONT "$(op_pid frozen)"; kill $churn_pid; fail "waker did not take over"; }
	new_writes=$(writes waker)
	eventually 30 '(( $(writes waker) >= '"$new_writes"' + 3 ))' || { kill -CONT "$(op_pid frozen)"; kill $churn_pid; fail "waker does not write"; }
	kill -CONT "$(op_pid frozen)"
	poll 20 bash -c "! kill -0 $(op_pid frozen) 2>/dev/null" || { kill $churn_pid; fail "frozen still runs after waking without the lease"; }
	has 'lost leadership\|the renew deadline passed' <"$work/frozen.log" || { kill $churn_pid; fail "frozen exited without losing the lease"; }
	kill $churn_pid
	kill "$proxy_pid"
	python3 "$here/fence_check.py" "$work/audit.log" "$since" 127.0.0.1 "$HOST_IP" 0 10 >&2 || fail "two leaders wrote at once"
	k delete connectionpool frozen-churn --wait=true >/dev/null
}

# Issue 12: one watch and one thread per referenced Secret (1,100 pools: 1,152 threads, file descriptors exhausted,
# an abort under a pids limit). Sixty pools, each with a Secret of its own, leave every replica's threads and open
# files where they were: the Secrets are one label-selected watch. (The constant is ~15 threads since the Beast
# transport runs requests on their callers' threads; ~54 with cpprestsdk's I/O pool; 60 pools once meant 60 more.)
# Issue 14: a watch that must exist per object, that of each PostgresServer's CA Secret, costs no thread either:
# every watch runs on the transport's one event loop (twenty servers once meant twenty more threads). Each holds
# an HTTP/1.1 connection, so the open files may grow by one per server, and by the idle connections kept.
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
fds_of() { ls "/proc/$1/fd" | wc -l; }
live_operators() { local f; for f in "$work"/op*.pid; do kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; done; }
test_threads_do_not_grow_with_secrets() {
	local n=60 servers=20 i pid
	declare -A threads_before fds_before
	local f name
	for f in "$work"/op*.pid; do # started, caches synced: every thread a replica keeps is there
		name=$(basename "$f" .pid)
		kill -0 "$(cat "$f")" 2>/dev/null || continue
		eventually 60 "ready $name" || fail "$name never became ready"
	done
	for pid in $(live_operators); do threads_before[$pid]=$(threads_of "$pid"); fds_before[$pid]=$(fds_of "$pid"); done
	[[ ${#threads_before[@]} -ge 1 ]] || fail "no operator running"
	k create namespace many >/dev/null
	for i in $(seq 1 $servers); do
		printf -- '---\napiVersion: poolkeeper.io/v1alpha1\nkind: PostgresServer\nmetadata: {name: many-ca-%d}\nspec:\n  host: ca-%d.threads.invalid\n  port: 5432\n  maxConnections: 100\n  overhead: 2\n  sslMode: verify-full\n  caSecretRef: {namespace: many, name: ca-%d}\n' "$i" "$i" "$i"
	done >"$work/many-servers.yaml"
	k apply -f "$work/many-servers.yaml" >/dev/null || fail "apply of $servers PostgresServers"
	for i in $(seq 1 $n); do
		printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: s-%d, namespace: many, labels: {poolkeeper.io/expose-to-pools: "true"}}\nstringData: {password: pw-%d}\n' "$i" "$i"
		# instances 0: nothing runs and nothing is charged, on a server of its own.
		printf -- '---\napiVersion: poolkeeper.io/v1alpha1\nkind: ConnectionPool\nmetadata: {name: p-%d, namespace: many}\nspec:\n  server: {host: threads.invalid, port: 5432, maxConnections: 1000, overhead: 2}\n  pooler: {instances: 0, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 1}\n  databases: [{name: app, maxDbConnections: 1}]\n  users: [{name: app, passwordSecretRef: {name: s-%d}}]\n' "$i" "$i"
	done >"$work/many.yaml"
	k apply -f "$work/many.yaml" >/dev/null || fail "apply of $n pools and Secrets"
	# Every pool rendered from its own Secret (its userlist Secret exists).
	eventually 300 '[[ "$(k -n many get secrets -l app.kubernetes.io/managed-by=poolkeeper -o name | wc -l)" -eq '$n' ]]' ||
		fail "not every pool rendered: $(k -n many get secrets -l app.kubernetes.io/managed-by=poolkeeper -o name | wc -l) of $n"
	for pid in "${!threads_before[@]}"; do
		local t=$(threads_of "$pid") f=$(fds_of "$pid")
		log "operator $pid: threads ${threads_before[$pid]} -> $t, open files ${fds_before[$pid]} -> $f with $n more pools and Secrets, $servers servers with a CA Secret each"
		(( t <= threads_before[$pid] + 2 )) || fail "threads grew with the pools or the servers: ${threads_before[$pid]} -> $t"
		(( t < 80 )) || fail "$t threads"
		# At most 16 idle kept-alive connections (TransportOptions), and one per CA watch.
		(( f <= fds_before[$pid] + 16 + servers )) || fail "open files grew with the pools: ${fds_before[$pid]} -> $f"
	done
	k delete -f "$work/many-servers.yaml" --wait=true >/dev/null
	k delete namespace many --wait=true --timeout=120s >/dev/null
}

# ---------------------------------------------------------------------------------------------------------------
# Writes of the operators and kubectl (the admin certificate is in system:masters) go to the audit log, with the
# source address and the server's timestamps (test_a_slowed_leader_stops_writing_before_the_next_one_starts).
cat > "$work/audit-policy.yaml" <<YAML
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:masters"]
  verbs: [create, update, patch, delete]
- level: None
YAML
APISERVER_EXTRA_ARGS="--watch-cache-sizes=configmaps#0 --audit-policy-file=$work/audit-policy.yaml --audit-log-path=$work/audit.log" \
	UP_EXTRA_IMAGES=pgbouncer-1.24 "$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 30
k apply -f "$repo/crds/" >/dev/null && k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
k create namespace poolkeeper-system >/dev/null
# The garbage collector learns new kinds from discovery every 30 s; until then it cannot resolve an owner that
# is a ConnectionPool and backs off. Wait until it collects a probe, so deletions in the tests are timely.
pool gc-probe 1 | k apply -f - >/dev/null
probe_uid=$(k get connectionpool gc-probe -o jsonpath='{.metadata.uid}')
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: gc-probe
  ownerReferences: [{apiVersion: poolkeeper.io/v1alpha1, kind: ConnectionPool, name: gc-probe, uid: $probe_uid}]
YAML
k delete connectionpool gc-probe >/dev/null
poll 120 bash -c "! kubectl --kubeconfig $C/kubeconfig get configmap gc-probe" || echo "garbage collector slow to learn ConnectionPools" >&2
k create secret generic app-db --from-literal=password=app-secret-pw >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
start_operator op1
poll 30 is_leader op1 || { echo "operator op1 did not lead"; tail -20 "$work/op1.log"; }
start_operator op2
run test_pool_becomes_ready_and_serves
run test_rendered_pod_runs_as_specified
run test_spec_change_rolls_the_pods
run test_overrun_is_refused_and_old_pods_keep_running
run test_second_pool_waits_for_budget
run test_password_rotation_reaches_the_pods
run test_missing_secret_is_a_condition
run test_unlabelled_secret_is_refused_until_labelled
run test_pod_policy_refuses_foreign_images_and_system_scheduling
run test_steady_state_writes_nothing
run test_leader_fails_over_within_the_lease
run test_expired_watch_relists
run test_scaling_and_pod_deletes_go_through_the_pool
run test_name_taken_is_left_alone
run test_deleted_pool_is_charged_until_its_pods_are_gone
run test_orphaned_pods_stay_charged
run test_pgbouncer_1_24_serves_and_drains
run test_threads_do_not_grow_with_secrets
run test_exec_plugin_and_only_the_configured_ca
run test_a_slowed_leader_stops_writing_before_the_next_one_starts
run test_a_frozen_leader_writes_nothing_after_it_wakes
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
