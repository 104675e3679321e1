#!/usr/bin/env bash
# tests/cluster/server_test.sh — PostgresServer on a live cluster (issue 10): the operator observes a real
# PostgreSQL with libpq as a pg_monitor role, records observed vs declared figures in the server's status, plans
# pools on what the server reports, follows a restart with a lower max_connections within the interval, freezes
# admissions while the server is down, treats two endpoints of one server as one budget, and lets no tenant
# loosen the server's policy or a conflicting inline declaration block anyone but itself; with enforceRoleLimits,
# PostgreSQL itself refuses a role's connections beyond what the pools were granted, and the limit is restored;
# the operator's admission webhook refuses an overrunning pool at `kubectl apply` with the arithmetic.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=server source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"

cleanup() {
	trap - EXIT INT TERM
	[[ -f "$work/holders.pids" ]] && kill $(cat "$work/holders.pids") 2>/dev/null
	end_host_operator_tier
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 900
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

# The operator serves its admission webhook on $webhook_port with a certificate made here for 127.0.0.1.
start_operator() {
	webhook_port="$(free_ports 1)"
	mkdir -p "$work/webhook"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$work/webhook/tls.key" -out "$work/webhook/tls.crt" >/dev/null 2>&1
	start_host_operator --webhook-cert-dir "$work/webhook" --webhook-address "127.0.0.1:$webhook_port"
}
sjson() { k get postgresserver "$1" -o jsonpath="$2"; }
scond() { sjson "$1" "{.status.conditions[?(@.type==\"$2\")].${3:-status}}"; }
cond() { k -n "${3:-default}" get connectionpool "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].${4:-status}}"; }
degraded_reason() { cond "$1" Degraded "${2:-default}" reason; }

# server NAME HOST [EXTRA-SPEC-YAML]: a PostgresServer observed as the monitoring role, declaring 100 connections
# (the real server has 30: the drift the status must show), overhead 2, observed every 5 s.
server() {
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: PostgresServer
metadata: {name: $1}
spec:
  host: $2
  port: $pgport
  sslMode: disable
  credentialsSecretRef: {namespace: poolkeeper-system, name: observer}
  maxConnections: 100
  overhead: 2
  observeIntervalSeconds: 5
${3:-}
YAML
}
# pool NAME POOL-SIZE [SERVER-YAML] [NAMESPACE] [EXTRA-SPEC-YAML]: one instance + one surge of POOL-SIZE each.
# maxDbConnections is declared, so a pool that does not fit is refused rather than given smaller derived caps.
pool() {
	local where=${3:-'serverRef: {name: main}'}
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: ${4:-default}}
spec:
  $where
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: $2}
  databases: [{name: app, maxDbConnections: $2}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
${5:-}
YAML
}

# Helm installs a chart's new CRDs on install only: an operator upgraded before postgresservers.poolkeeper.io
# exists must still reconcile. Then the CRD arrives and PostgresServers are picked up without a restart.
test_operator_runs_without_the_server_crd() {
	eventually 60 'curl -sf --max-time 5 "http://127.0.0.1:$(cat "$work/op.port")/readyz"' || fail "not ready without the CRD: $(tail -5 "$work/op.log")"
	pool early 1 "server: {host: $host_ip, port: $pgport, maxConnections: 30, overhead: 2}" | k apply -f - >/dev/null
	k wait --for=condition=Ready connectionpool/early --timeout=90s >/dev/null || fail "early not Ready"
	grep -q "PostgresServers are not served" "$work/op.log" || fail "no warning about the missing CRD"
	k delete connectionpool early --wait=true >/dev/null
	k apply -f "$repo/crds/poolkeeper.io_postgresservers.yaml" >/dev/null
	k wait --for=condition=Established crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
}

test_server_is_observed_with_drift() {
	server main $host_ip | k apply -f - >/dev/null
	# The operator's informer may still be backing off from the time the CRD was missing (30 s at most).
	eventually 60 '[[ "$(scond main Reachable)" == True ]]' || fail "not reachable: $(sjson main '{.status}')"
	[[ "$(sjson main '{.status.observed.maxConnections}')" == 30 ]] || fail "observed $(sjson main '{.status.observed}')"
	[[ "$(sjson main '{.status.observed.superuserReservedConnections}')" == 3 ]] || fail "superuser reserved"
	[[ -n "$(sjson main '{.status.observed.systemIdentifier}')" ]] || fail "no identity"
	[[ "$(sjson main '{.status.drift[0]}')" == "maxConnections: declared 100, observed 30" ]] || fail "drift: $(sjson main '{.status.drift}')"
	[[ "$(sjson main '{.status.budget.usable}')" == 25 && "$(sjson main '{.status.budget.source}')" == Observed ]] ||
		fail "budget $(sjson main '{.status.budget}')"
	k get postgresservers | has "^main  *$host_ip:" || fail "printer columns: $(k get postgresservers)"
	# The same figures as metrics.
	local metrics
	metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$(cat "$work/op.port")/metrics")
	grep -qx 'poolkeeper_server_max_connections{server="main"} 30' <<<"$metrics" || fail "metrics: $(grep poolkeeper_server <<<"$metrics")"
	grep -qx 'poolkeeper_server_usable_connections{server="main"} 25' <<<"$metrics" || fail "usable metric"
	grep -qx 'poolkeeper_server_reachable{server="main"} 1' <<<"$metrics" || fail "reachable metric"
	grep -qE '^poolkeeper_server_observation_age_seconds\{server="main"\} [0-9]+$' <<<"$metrics" || fail "age metric: $(grep age <<<"$metrics")"
}

# Offline, against the same live server: declared 100 would admit (1 + 1) x 15 = 30; observed 25 usable does not.
test_check_observe_plans_on_the_live_server() {
	{ server main $host_ip; echo "---"; pool offline 15; } > "$work/check.yaml"
	local out rc=0
	"$poolkeeper" check -f "$work/check.yaml" >/dev/null || fail "declared figures should admit it"
	out=$(PGUSER=observer PGPASSWORD=observer-pw "$poolkeeper" check --observe -f "$work/check.yaml" 2>&1) || rc=$?
	[[ $rc == 1 ]] || fail "exit $rc: $out"
	[[ "$out" == *"observed PostgresServer main: max_connections 30, superuser_reserved_connections 3"* ]] || fail "$out"
	[[ "$out" == *"= 30 > 25 remaining of 25 usable"* ]] || fail "$out"
	out=$(PGUSER=observer PGPASSWORD=wrong "$poolkeeper" check --observe -f "$work/check.yaml" 2>&1) && fail "a wrong password observed"
	[[ "$out" == *"PostgresServer main: $host_ip:$pgport: "*"password authentication failed"* ]] || fail "$out"
	[[ "$out" != *wrong* ]] || fail "the password was printed"
}

test_pool_is_planned_on_the_observed_figures() {
	pool first 5 | k apply -f - >/dev/null # (1 + 1) x 5 = 10 of 25 usable
	k wait --for=condition=Ready connectionpool/first --timeout=90s >/dev/null || fail "first not Ready: $(k get connectionpool first -o jsonpath='{.status}')"
	[[ "$(k get connectionpool first -o jsonpath='{.status.budget.usable}')" == 25 ]] || fail "usable $(k get connectionpool first -o jsonpath='{.status.budget}')"
	eventually 60 '[[ "$(sjson main "{.status.pools[0].name}/{.status.pools[0].allocated}")" == first/10 ]]' ||
		fail "server's pools: $(sjson main '{.status.pools}')"
}

test_two_endpoints_of_one_server_are_one_budget() {
	server other-name localhost | k apply -f - >/dev/null
	eventually 60 '[[ "$(sjson other-name "{.status.sharedWith[0]}")" == main ]]' || fail "sharedWith: $(sjson other-name '{.status}')"
	pool second 5 "serverRef: {name: other-name}" | k apply -f - >/dev/null
	k wait --for=condition=Ready connectionpool/second --timeout=90s >/dev/null || fail "second not Ready"
	# One budget: both pools are charged on it (10 + 10 of 25), under one key.
	eventually 60 '[[ "$(k get connectionpool second -o jsonpath="{.status.budget.allocated}")" == 20 ]]' ||
		fail "allocated $(k get connectionpool second -o jsonpath='{.status.budget}')"
	[[ "$(k get connectionpool second -o jsonpath='{.status.budget.server}')" == "$(k get connectionpool first -o jsonpath='{.status.budget.server}')" ]] ||
		fail "two budget keys"
	pool third 5 | k apply -f - >/dev/null # 10 more than the 5 left
	eventually 60 '[[ "$(cond third BudgetExceeded)" == True ]]' || fail "third admitted beside first and second"
	k delete connectionpool third --wait=true >/dev/null
}

test_tenant_cannot_loosen_the_policy() {
	pool greedy 20 "serverRef: {name: main}" default "  budget: {policy: Warn}" | k apply -f - >/dev/null
	eventually 60 '[[ "$(degraded_reason greedy)" == BudgetExceeded ]]' || fail "greedy not refused: $(k get connectionpool greedy -o jsonpath='{.status.conditions}')"
	[[ -z "$(k get pods -l app.kubernetes.io/instance=greedy -o name)" ]] || fail "greedy has pods"
	eventually 60 '[[ -n "$(k get events --field-selector involvedObject.name=greedy,reason=PolicySetByServer -o name)" ]]' || fail "no PolicySetByServer event"
	k delete connectionpool greedy --wait=true >/dev/null
}

test_conflicting_inline_pool_blocks_only_itself() {
	pool liar 1 "server: {host: $host_ip, port: $pgport, maxConnections: 31}" | k apply -f - >/dev/null
	eventually 60 '[[ "$(degraded_reason liar)" == ServerConflict ]]' || fail "liar: $(k get connectionpool liar -o jsonpath='{.status.conditions}')"
	[[ "$(cond first Ready)" == True && "$(cond second Ready)" == True ]] || fail "the others were blocked"
	k delete connectionpool liar --wait=true >/dev/null
}

test_namespace_not_admitted() {
	server main $host_ip "  allowedNamespaces: [default]" | k apply -f - >/dev/null
	k create namespace outsiders >/dev/null
	k -n outsiders create secret generic app-db --from-literal=password=app-secret-pw >/dev/null
	k -n outsiders label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
	pool visitor 1 "serverRef: {name: main}" outsiders | k apply -f - >/dev/null
	eventually 60 '[[ "$(degraded_reason visitor outsiders)" == NamespaceNotAllowed ]]' || fail "visitor admitted"
	k -n outsiders delete connectionpool visitor --wait=true >/dev/null
	server main $host_ip | k apply -f - >/dev/null
}

test_lower_max_connections_is_followed() {
	restart_postgres 22 # 22 - 3 - 2 = 17 usable < first's and second's 20
	eventually 60 '[[ "$(sjson main "{.status.observed.maxConnections}")" == 22 ]]' || fail "not observed: $(sjson main '{.status.observed}')"
	# What runs (first's and second's 10 each) no longer fits: both are over, neither grows, and the server says so.
	eventually 60 '[[ "$(cond second BudgetExceeded)" == True ]]' || fail "second still within budget: $(k get connectionpool second -o jsonpath='{.status.budget}')"
	eventually 60 '[[ "$(sjson main "{.status.budget.usable}/{.status.budget.allocated}")" == 17/20 ]]' || fail "server budget: $(sjson main '{.status.budget}')"
	# Not rolled further: a change to second waits, its pods keep the last good configuration.
	local hash=$(k get connectionpool second -o jsonpath='{.status.configHash}')
	k patch connectionpool second --type=merge -p '{"spec":{"pooler":{"defaultPoolSize":6}}}' >/dev/null
	eventually 60 '[[ "$(k get connectionpool second -o jsonpath="{.status.observedGeneration}")" == "$(k get connectionpool second -o jsonpath="{.metadata.generation}")" ]]'
	[[ "$(degraded_reason second)" == BudgetExceeded ]] || fail "second's change not refused"
	[[ "$(k get connectionpool second -o jsonpath='{.status.configHash}')" == "$hash" ]] || fail "second rolled out over budget"
	restart_postgres 30
	eventually 60 '[[ "$(cond second BudgetExceeded)" == False ]]' || fail "second not admitted again once the server grew back"
}

test_unreachable_server_admits_nothing_new() {
	restart_postgres down
	eventually 60 '[[ "$(scond main Reachable)" == False ]]' || fail "still reachable"
	[[ "$(sjson main '{.status.observed.maxConnections}')" == 30 ]] || fail "the last observation was not kept"
	pool newcomer 1 | k apply -f - >/dev/null # fits the figures, but nothing new is admitted blind
	eventually 60 '[[ "$(cond newcomer BudgetExceeded)" == True ]]' || fail "newcomer admitted: $(k get connectionpool newcomer -o jsonpath='{.status.conditions}')"
	[[ "$(cond newcomer BudgetExceeded "" message)" == *"cannot be observed"* ]] || fail "message: $(cond newcomer BudgetExceeded "" message)"
	[[ "$(cond first Ready)" == True ]] || fail "a running pool was disturbed"
	restart_postgres 30
	eventually 60 '[[ "$(scond main Reachable)" == True ]]' || fail "not reachable again"
	k wait --for=condition=Ready connectionpool/newcomer --timeout=90s >/dev/null || fail "newcomer not admitted once observed"
}

rolconnlimit() { psql_super -c "SELECT rolconnlimit FROM pg_roles WHERE rolname = '$1'"; }
test_role_limit_is_enforced_by_postgresql() {
	psql_super -c "CREATE ROLE capped LOGIN PASSWORD 'capped-pw'"
	k create secret generic capped-db --from-literal=password=capped-pw >/dev/null
	k label secret capped-db poolkeeper.io/expose-to-pools=true >/dev/null
	server main $host_ip "  enforceRoleLimits: true" | k apply -f - >/dev/null
	k apply -f - >/dev/null <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: capper, namespace: default}
spec:
  serverRef: {name: main}
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 1}
  databases: [{name: app, maxDbConnections: 1}]
  users: [{name: capped, passwordSecretRef: {name: capped-db}}]
YAML
	k wait --for=condition=Ready connectionpool/capper --timeout=90s >/dev/null || fail "capper not Ready: $(k get connectionpool capper -o jsonpath='{.status.conditions}')"
	# (1 + 1) pods x 1 + 1 per pod = 4.
	eventually 60 '[[ "$(rolconnlimit capped)" == 4 ]]' || fail "rolconnlimit $(rolconnlimit capped): $(sjson main '{.status.conditions}')"
	[[ "$(sjson main '{.status.roleLimits[?(@.role=="capped")].previous}')" == -1 ]] || fail "roleLimits: $(sjson main '{.status.roleLimits}')"
	[[ "$(sjson main '{.metadata.finalizers}')" == *role-limits-restored* ]] || fail "no finalizer"
	# PostgreSQL itself refuses the fifth connection as capped, whoever opens it.
	local i
	for i in 1 2 3 4; do
		PGPASSWORD=capped-pw setsid psql -h 127.0.0.1 -p "$pgport" -U capped -d app -qAt -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
		echo $! >> "$work/holders.pids"
	done
	eventually 60 '[[ "$(psql_super -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '"'"'capped'"'"'")" == 4 ]]' || fail "four holders did not connect"
	local out
	out=$(PGPASSWORD=capped-pw psql -h 127.0.0.1 -p "$pgport" -U capped -d app -qAt -c "SELECT 1" 2>&1) && fail "a fifth connection was accepted"
	[[ "$out" == *"too many connections for role"* ]] || fail "refused for another reason: $out"
	kill $(cat "$work/holders.pids") 2>/dev/null; rm -f "$work/holders.pids"
	psql_super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'capped'" >/dev/null
	# No longer pooled: the role's own limit (none) comes back.
	k delete connectionpool capper --wait=true >/dev/null
	eventually 60 '[[ "$(rolconnlimit capped)" == -1 ]]' || fail "capped not restored: $(rolconnlimit capped)"
	# Enforcement off: every role the operator limited is restored, and the finalizer goes.
	[[ "$(rolconnlimit app)" != -1 ]] || fail "app was never limited"
	server main $host_ip | k apply -f - >/dev/null
	eventually 60 '[[ "$(rolconnlimit app)" == -1 ]]' || fail "app not restored"
	eventually 60 '[[ "$(sjson main "{.metadata.finalizers}")" != *role-limits-restored* ]]' || fail "finalizer left"
}

test_webhook_refuses_overruns_at_apply() {
	k apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: poolkeeper-test}
webhooks:
  - name: connectionpools.poolkeeper.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 5
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate-connectionpool
      caBundle: $(base64 -w0 "$work/webhook/tls.crt")
    rules:
      - {apiGroups: [poolkeeper.io], apiVersions: [v1alpha1], operations: [CREATE, UPDATE], resources: [connectionpools]}
YAML
	local allocated=$(sjson main '{.status.budget.allocated}') usable=$(sjson main '{.status.budget.usable}') out
	(( usable - allocated < 20 )) || fail "the test needs less than 20 left: $allocated of $usable allocated"
	# The configuration takes effect asynchronously in the API server: wait until a refusal is seen.
	eventually 60 '! pool huge 10 | k apply --dry-run=server -f - >/dev/null 2>&1' || fail "huge was never refused"
	out=$(pool huge 10 | k apply -f - 2>&1) && fail "huge was stored"
	[[ "$out" == *'denied the request: ConnectionPool default/huge does not fit its server'*'(1 instance + 1 surge) x 10 per instance = 20 >'*'remaining of 25 usable'* ]] ||
		fail "message: $out"
	! k get connectionpool huge >/dev/null 2>&1 || fail "huge exists"
	out=$(pool huge 10 | k apply --dry-run=server -f - 2>&1) && fail "dry-run accepted huge"
	[[ "$out" == *"does not fit its server"* ]] || fail "dry-run message: $out"
	out=$(pool greedy 20 "serverRef: {name: main}" default "  budget: {policy: Warn}" | k apply -f - 2>&1) && fail "Warn let greedy in"
	pool tiny 1 | k apply --dry-run=server -f - >/dev/null || fail "a pool that fits was refused"
	k delete validatingwebhookconfiguration poolkeeper-test >/dev/null
}

# measureOverhead: what other clients hold is kept aside, at least the declared overhead.
test_measured_overhead_follows_other_clients() {
	server main $host_ip "  measureOverhead: true" | k apply -f - >/dev/null
	local i
	for i in 1 2 3 4 5 6; do
		PGPASSWORD=app-secret-pw setsid psql -h 127.0.0.1 -p "$pgport" -U app -d app -qAt -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
		echo $! >> "$work/holders.pids"
	done
	eventually 60 '(( $(sjson main "{.status.observed.inUseByOthers}") >= 6 ))' || fail "others: $(sjson main '{.status.observed}')"
	eventually 60 '[[ "$(sjson main "{.status.budget.overhead}")" == "$(sjson main "{.status.observed.inUseByOthers}")" ]]' ||
		fail "overhead $(sjson main '{.status.budget.overhead}') is not what others use: $(sjson main '{.status.observed.inUseByOthers}')"
	kill $(cat "$work/holders.pids") 2>/dev/null; rm -f "$work/holders.pids"
	psql_super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE '%pg_sleep%'" >/dev/null
	server main $host_ip | k apply -f - >/dev/null
}

# ---------------------------------------------------------------------------------------------------------------
"$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 30
psql_super -c "CREATE ROLE observer LOGIN CREATEROLE PASSWORD 'observer-pw' IN ROLE pg_monitor"
k apply -f "$repo/crds/poolkeeper.io_connectionpools.yaml" >/dev/null && k wait --for=condition=Established crd/connectionpools.poolkeeper.io --timeout=30s >/dev/null
k create namespace poolkeeper-system >/dev/null
k -n poolkeeper-system create secret generic observer --from-literal=username=observer --from-literal=password=observer-pw >/dev/null
k create secret generic app-db --from-literal=password=app-secret-pw >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
start_operator
run test_operator_runs_without_the_server_crd
run test_server_is_observed_with_drift
run test_check_observe_plans_on_the_live_server
run test_pool_is_planned_on_the_observed_figures
run test_two_endpoints_of_one_server_are_one_budget
run test_tenant_cannot_loosen_the_policy
run test_conflicting_inline_pool_blocks_only_itself
run test_namespace_not_admitted
run test_lower_max_connections_is_followed
run test_unreachable_server_admits_nothing_new
run test_role_limit_is_enforced_by_postgresql
run test_webhook_refuses_overruns_at_apply
run test_measured_overhead_follows_other_clients
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
