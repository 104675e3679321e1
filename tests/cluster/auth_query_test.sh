#!/usr/bin/env bash
# tests/cluster/auth_query_test.sh — a ConnectionPool in authentication mode authQuery on a live cluster (issue 15):
# the operator sets the auth role and lookup function up on a real PostgreSQL with the PostgresServer's superuser
# credentials, the pool reaches Ready and its PgBouncer pod serves a role created in PostgreSQL after the pod
# started, no application password is in any object the operator writes, a restarted operator rewrites nothing of the
# setup (idempotent across restarts), a membership gate (spec.authQuery.memberOf) admits only members of its role,
# and deleting the last pool removes the role, the function and the Secret (not the gate role). Credentials without
# SUPERUSER are named in the server's condition.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=authquery source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"

cleanup() {
	trap - EXIT INT TERM
	end_host_operator_tier
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 900
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

start_operator() { start_host_operator; }
stop_operator() { kill -TERM "$(cat "$work/op.pid")" 2>/dev/null; poll 30 bash -c "! kill -0 $(cat "$work/op.pid")"; }
metrics() { curl -sf --max-time 5 "http://127.0.0.1:$(cat "$work/op.port")/metrics"; }
scond() { k get postgresserver "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].${3:-status}}"; }
pod_ip() { k get pod "$1-0" -o jsonpath='{.status.podIP}'; }

# server NAME SECRET: a PostgresServer observed every 5 s with the credentials of Secret poolkeeper-system/SECRET.
server() {
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: PostgresServer
metadata: {name: $1}
spec:
  host: $host_ip
  port: $pgport
  sslMode: disable
  credentialsSecretRef: {namespace: poolkeeper-system, name: $2}
  overhead: 2
  observeIntervalSeconds: 5
YAML
}
pool() { # NAME SERVER
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: default}
spec:
  serverRef: {name: $2}
  authentication: {mode: authQuery}
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 2}
  databases: [{name: app, maxDbConnections: 4}]
YAML
}

# ---------------------------------------------------------------------------------------------------------------
test_credentials_without_superuser_are_named_and_nothing_is_written() {
	server lite lite | k apply -f - >/dev/null
	pool lite-pool lite | k apply -f - >/dev/null
	eventually 60 '[[ "$(scond lite AuthQueryReady reason)" == AdminPrivilegeMissing ]]' ||
		fail "lite: $(k get postgresserver lite -o jsonpath='{.status.conditions}')"
	scond lite AuthQueryReady message | has SUPERUSER || fail "the message does not name SUPERUSER"
	[[ "$(psql_super -c "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")" == 0 ]] || fail "a role was created"
	eventually 30 '[[ "$(k get connectionpool lite-pool -o jsonpath="{.status.conditions[?(@.type==\"Degraded\")].reason}")" == AuthQueryNotReady ]]' ||
		fail "lite-pool: $(k get connectionpool lite-pool -o jsonpath='{.status.conditions}')"
	k delete connectionpool lite-pool >/dev/null && k delete postgresserver lite >/dev/null
}

test_pool_becomes_ready_and_serves_a_role_created_later() {
	server main admin | k apply -f - >/dev/null
	pool shop main | k apply -f - >/dev/null
	k wait --for=condition=Ready connectionpool/shop --timeout=120s >/dev/null ||
		fail "shop not Ready: $(k get connectionpool shop -o jsonpath='{.status.conditions}') server: $(k get postgresserver main -o jsonpath='{.status.conditions}')"
	[[ "$(scond main AuthQueryReady)" == True ]] || fail "AuthQueryReady: $(k get postgresserver main -o jsonpath='{.status.conditions}')"
	[[ "$(k get postgresserver main -o jsonpath='{.status.authQuery.databases}')" == '["app"]' ]] || fail "status.authQuery"
	# A role PostgreSQL gets after the pod started, with no Kubernetes change.
	psql_super -c "CREATE ROLE late_app LOGIN PASSWORD 'late-app-pw'; GRANT CONNECT ON DATABASE app TO late_app" >/dev/null
	local out
	out=$(PGPASSWORD=late-app-pw PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip shop) port=6432 user=late_app dbname=app" -qAt -c "SELECT current_user") ||
		fail "late_app cannot log in through the pooler: $(k logs shop-0 | tail -5)"
	[[ "$out" == late_app ]] || fail "current_user $out"
	# A superuser cannot.
	! PGPASSWORD="$(cat "$pgdir/pw")" PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip shop) port=6432 user=postgres dbname=app" -qAt -c "SELECT 1" >/dev/null 2>&1 ||
		fail "a superuser logged in through the pooler"
	# No application password in what the operator wrote (the app-db Secret exists and is exposed).
	lacks app-secret-pw k get secret shop-auth -o go-template='{{index .data "userlist.txt" | base64decode}}' ||
		fail "an application password in the userlist"
	k get secret shop-auth -o go-template='{{index .data "userlist.txt" | base64decode}}' | has poolkeeper_auth || fail "no auth user in the userlist"
	lacks app-secret-pw k get configmap,connectionpool,postgresserver,events -A -o yaml || fail "an application password in an object"
	log "shop Ready; late_app (created after the pod) served; postgres refused"
}

# What the setup wrote, as PostgreSQL and the API server hold it: a rewrite would change one of these.
setup_state() {
	psql_super -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'poolkeeper_auth'"
	PGPASSWORD="$(cat "$pgdir/pw")" psql -h 127.0.0.1 -p "$pgport" -U postgres -d app -qAt \
		-c "SELECT 'poolkeeper.lookup(text)'::regprocedure::oid, proacl FROM pg_proc WHERE oid = 'poolkeeper.lookup(text)'::regprocedure"
	k -n poolkeeper-system get secret poolkeeper-auth-main -o jsonpath='{.metadata.resourceVersion}'; echo
	k get postgresserver main -o jsonpath='{.status.authQuery}{.status.conditions[?(@.type=="AuthQueryReady")].lastTransitionTime}'; echo
	k get pod shop-0 -o jsonpath='{.metadata.uid}'; echo
}
observed_at() { k get postgresserver main -o jsonpath='{.status.observed.time}'; }

test_a_restarted_operator_rewrites_nothing() {
	local before
	before=$(setup_state)
	stop_operator || fail "operator did not stop"
	start_operator
	poll 60 metrics || fail "operator not serving metrics"
	# Two observations of the server by the new operator, each running the setup again.
	local t
	for _ in 1 2; do
		t=$(observed_at)
		eventually 60 '[[ "$(observed_at)" != "$t" ]]' || fail "main not observed again"
	done
	[[ "$(setup_state)" == "$before" ]] || fail "the setup was rewritten: before [$before] after [$(setup_state)]"
	local out
	out=$(PGPASSWORD=late-app-pw PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip shop) port=6432 user=late_app dbname=app" -qAt -c "SELECT 1") ||
		fail "late_app no longer served"
}

# The membership gate (spec.authQuery.memberOf): once set on the PostgresServer only members of the role log in
# through the pooler, a GRANT admits a role at once with no Kubernetes change, and a non-member stays refused.
login() { # ROLE PASSWORD
	PGPASSWORD="$2" PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip shop) port=6432 user=$1 dbname=app" -qAt -c "SELECT current_user" 2>&1
}
test_a_membership_gate_admits_only_members() {
	psql_super -c "CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw'" >/dev/null
	login outsider outsider-pw | has -x outsider || fail "outsider refused before the gate"
	k patch postgresserver main --type merge -p '{"spec":{"authQuery":{"memberOf":"pooler_users"}}}' >/dev/null ||
		fail "the gate was not accepted"
	eventually 60 '[[ "$(psql_super -c "SELECT rolcanlogin FROM pg_roles WHERE rolname = '"'"'pooler_users'"'"'")" == f ]]' ||
		fail "no NOLOGIN role pooler_users: $(k get postgresserver main -o jsonpath='{.status.conditions}')"
	eventually 60 '! login late_app late-app-pw | has -x late_app' || fail "a non-member still logs in once the gate is set"
	scond main AuthQueryReady message | has "members of role pooler_users" || fail "the condition does not name the gate"
	psql_super -c "GRANT pooler_users TO late_app" >/dev/null
	login late_app late-app-pw | has -x late_app || fail "a member granted after the gate cannot log in: $(k logs shop-0 | tail -3)"
	! login outsider outsider-pw | has -x outsider || fail "a non-member logged in"
	# The CRD refuses a reserved name, naming the field.
	local out
	out=$(k patch postgresserver main --type merge -p '{"spec":{"authQuery":{"memberOf":"pg_monitor"}}}' 2>&1) &&
		fail "the API server took memberOf pg_monitor"
	has "memberOf" <<<"$out" || fail "refused for another reason: $out"
	log "gate pooler_users: member late_app served, outsider refused"
}

test_deleting_the_last_pool_removes_the_setup() {
	k delete connectionpool shop --wait=false >/dev/null
	eventually 120 '[[ "$(psql_super -c "SELECT count(*) FROM pg_roles WHERE rolname = '"'"'poolkeeper_auth'"'"'")" == 0 ]]' ||
		fail "the auth role is still there: $(k get postgresserver main -o jsonpath='{.status.conditions}')"
	eventually 30 '! k -n poolkeeper-system get secret poolkeeper-auth-main' || fail "the auth Secret is still there"
	[[ "$(PGPASSWORD="$(cat "$pgdir/pw")" psql -h 127.0.0.1 -p "$pgport" -U postgres -d app -qAt -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'poolkeeper'")" == 0 ]] ||
		fail "the schema is still in app"
	# The gate role holds the DBA's grants: never dropped by the operator.
	[[ "$(psql_super -c "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = 'pooler_users'")" == 1 ]] ||
		fail "the gate role or its member is gone"
}

# ---------------------------------------------------------------------------------------------------------------
"$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 30
psql_super -c "CREATE ROLE lite LOGIN CREATEROLE PASSWORD 'lite-pw' IN ROLE pg_monitor"
k apply -f "$repo/crds/" >/dev/null &&
	k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
k create namespace poolkeeper-system >/dev/null
k -n poolkeeper-system create secret generic admin --from-literal=username=postgres --from-literal=password="$(cat "$pgdir/pw")" >/dev/null
k -n poolkeeper-system create secret generic lite --from-literal=username=lite --from-literal=password=lite-pw >/dev/null
# An application Secret that authQuery must never copy.
k create secret generic app-db --from-literal=password=app-secret-pw >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
start_operator
run test_credentials_without_superuser_are_named_and_nothing_is_written
run test_pool_becomes_ready_and_serves_a_role_created_later
run test_a_restarted_operator_rewrites_nothing
run test_a_membership_gate_admits_only_members
run test_deleting_the_last_pool_removes_the_setup
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
