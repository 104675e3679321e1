#!/usr/bin/env bash
# tests/cluster/agent_test.sh — the pooler agent (`poolkeeper agent`, issue 13) in real pods on a live cluster: the
# operator on the host with --agent-image (the operator image images.sh builds, imported into the node), a pool of two
# pods each running PgBouncer 1.18 as uid 70 beside the agent, sharing the console socket in an emptyDir. The pods
# reach Ready on the real kubelet; /metrics, scraped from a pod's IP while psql clients hold every server connection
# of a pool and one more waits, shows the active and waiting clients and the pod's budget figure (its annotation), and
# the pool's status.live the server connections in use and the waiting client; `spec.paused: true` holds a client's
# query (the agents PAUSE, status.paused and the Paused column turn true, no pod is replaced or restarted) until
# `spec.paused: false` lets it finish. A setting change and a password rotation reach every pod by RELOAD: same pods,
# no container restarted, SHOW CONFIG with the new value, a session opened before still answering, the new password
# working and the old one refused. Scaling 2 -> 3 with derived caps (maxSurge 0) under load: the running pods reload
# the lowered caps, their figures are lowered once their agents report it (and sc-0's /metrics follows), then the third
# pod starts; nothing restarts and the server's peak (pg_stat_activity, sampled) stays within usable.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=agent source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"
agent_image=localhost/poolkeeper:dev
clients=() # pids of the psql clients this script started in the background

stop_clients() {
	local pid
	for pid in "${clients[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${clients[@]}"; do wait "$pid" 2>/dev/null || true; done
	clients=()
}
cleanup() {
	trap - EXIT INT TERM
	stop_clients
	end_host_operator_tier
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 900
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

cond() { k get connectionpool "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].${3:-status}}"; }
pod_ip() { k get pod "$1" -o jsonpath='{.status.podIP}'; }
# The pool's pods that are not terminating, by name.
pods() { k get pod -l "poolkeeper.io/pool=$1" -o json | jq -r '.items[] | select(.metadata.deletionTimestamp == null) | .metadata.name' | sort; }
# POOL N: the pool is Ready with exactly N pods, none terminating, every container of each ready.
all_ready() {
	[[ "$(cond "$1" Ready)" == True ]] &&
		k get pod -l "poolkeeper.io/pool=$1" -o json | jq -e --argjson n "$2" \
			'(.items | length) == $n and all(.items[]; .metadata.deletionTimestamp == null and
			 (.status.containerStatuses | length) == 2 and all(.status.containerStatuses[]; .ready))' >/dev/null
}
agent() { curl -sf --max-time 5 "http://$(pod_ip "$1"):9127$2"; } # POD PATH
# POD METRIC: the sum of a metric's samples for database app on the pod's /metrics.
metric() {
	agent "$1" /metrics | awk -v m="$2" 'index($1, m "{") == 1 && $1 ~ /database="app"/ { s += $2 } END { print s + 0 }'
}
per_pod() { k get pod "$1" -o go-template='{{index .metadata.annotations "poolkeeper.io/connections-per-pod"}}'; }
# POD: the budget figure the pod's /metrics shows (poolkeeper_agent_budget_server_connections, from its downward API
# volume), with its labels: what the pod's annotations and pool label say, or "" when they differ.
budget_metric() {
	local want
	want=$(k get pod "$1" -o json | jq -r '"poolkeeper_agent_budget_server_connections{pool=\"\(.metadata.labels["poolkeeper.io/pool"])\",server=\"\(.metadata.annotations["poolkeeper.io/server"])\"}"')
	agent "$1" /metrics | awk -v w="$want" '$1 == w { print $2 }'
}
app_password=app-secret-pw
# psql through one pod, as app.
client() { # POD SQL [PASSWORD]
	PGPASSWORD=${3:-$app_password} PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip "$1") port=6432 user=app dbname=app" -qAt -c "$2"
}
# A psql client through one pod started in the background, its pid (psql's own, so that kill ends the session) added
# to `clients`.
bg_client() { # POD SQL OUTPUT-FILE
	PGPASSWORD=$app_password PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip "$1") port=6432 user=app dbname=app" -qAt -c "$2" >"$3" 2>&1 &
	clients+=($!)
}
# name uid restartCount... of the pool's pods: equal before and after means nothing was replaced or restarted.
identities() { # [POOL]
	k get pod -l "poolkeeper.io/pool=${1:-ag}" -o json |
		jq -r '.items[] | [.metadata.name, .metadata.uid, (.status.containerStatuses[] | .restartCount)] | @tsv' | sort
}
# Every pod's agent reports the ConfigMap's config hash loaded, and SHOW CONFIG matching the file.
all_loaded() {
	local want pod
	want=$(k get configmap ag-config -o go-template='{{index .data "config-hash"}}')
	for pod in $(pods ag); do
		agent "$pod" /status | jq -e --arg h "$want" '.loadedConfigHash == $h and .configCurrent' >/dev/null || return 1
	done
}
# A psql session opened now and kept open (its input a pipe on fd 7): session_query SQL sends a query on it,
# session_has TEXT polls its output.
open_session() { # POD
	mkfifo "$work/session.in"
	PGPASSWORD=$app_password psql "host=$(pod_ip "$1") port=6432 user=app dbname=app" -qAt <"$work/session.in" >"$work/session.out" 2>&1 &
	session_pid=$!
	exec 7>"$work/session.in"
}
session_query() { echo "$1" >&7; }
session_has() { eventually 30 "grep -qx -- '$1' '$work/session.out'"; }
close_session() { exec 7>&-; wait "$session_pid"; rm -f "$work/session.in"; }
set_paused() { k patch connectionpool ag --type merge -p "{\"spec\":{\"paused\":$1}}" >/dev/null; }
# The pool's status.paused, and its Paused column as `kubectl get connectionpools` prints it.
status_paused() { k get connectionpool ag -o jsonpath='{.status.paused}'; }
paused_column() {
	k get connectionpools ag | awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PAUSED") c = i } NR == 2 && c { print $c }'
}

server_yaml() {
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: PostgresServer
metadata: {name: agentdb}
spec:
  host: $host_ip
  port: $pgport
  maxConnections: 30
  overhead: 2
YAML
}
pool_yaml() { # INSTANCES [MAX-CLIENT-CONN]
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: ag, namespace: default}
spec:
  serverRef: {name: agentdb}
  pooler: {instances: $1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 2, maxClientConn: ${2:-100}}
  databases: [{name: app}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}

# ---------------------------------------------------------------------------------------------------------------
test_pods_with_the_agent_become_ready() {
	pool_yaml 2 | k apply -f - >/dev/null
	eventually 120 all_ready ag 2 ||
		fail "ag not Ready: $(k get connectionpool ag -o jsonpath='{.status.conditions}') $(k get pods -o wide) $(k logs ag-0 -c agent --tail 5 2>&1) $(k logs ag-0 -c pgbouncer --tail 5 2>&1)"
	local pod want
	want=$(k get configmap ag-config -o go-template='{{index .data "config-hash"}}')
	[[ -n "$want" ]] || fail "no config-hash in ag-config"
	for pod in $(pods ag); do
		agent "$pod" /readyz >/dev/null || fail "$pod: /readyz"
		agent "$pod" /status | jq -e --arg h "$want" '.loadedConfigHash == $h and .configCurrent and .consoleUp' >/dev/null ||
			fail "$pod: /status $(agent "$pod" /status)"
		[[ "$(client "$pod" 'SELECT 1')" == 1 ]] || fail "$pod: no query through PgBouncer"
	done
	# The agent's password stays in the pod's Secret: not in the ini, the pod spec or the agent's log.
	local password
	password=$(k get secret ag-auth -o go-template='{{index .data "agent-password"}}' | base64 -d)
	[[ -n "$password" ]] || fail "no agent password in ag-auth"
	lacks "$password" k get configmap,pods,connectionpool,events -o yaml || fail "the agent's password in an object"
	lacks "$password" k logs ag-0 -c agent || fail "the agent's password in its log"
	log "2 pods Ready with the agent; loaded config hash ${want:0:12}"
}

test_metrics_show_active_and_waiting_clients_under_load() {
	local pod=ag-0 i
	agent "$pod" /metrics | has -x 'pgbouncer_up 1' || fail "pgbouncer_up is not 1"
	# The budget the operator stamps on the pod, beside PgBouncer's figures (issue 13).
	local budget
	budget=$(budget_metric "$pod")
	[[ -n "$budget" && "$budget" == "$(per_pod "$pod")" ]] ||
		fail "budget metric '$budget', annotation $(per_pod "$pod"): $(agent "$pod" /metrics | grep -E '^poolkeeper_agent_(budget|pool)')"
	agent "$pod" /metrics | has -x 'poolkeeper_agent_pool_info{pool="ag",server=".*:[0-9]*"} 1' || fail "no poolkeeper_agent_pool_info"
	# defaultPoolSize 2: two clients hold the pool's server connections, the third waits.
	for i in 1 2 3; do bg_client "$pod" 'SELECT pg_sleep(90)' /dev/null; done
	eventually 30 '(( $(metric $pod pgbouncer_pools_client_active_connections) >= 2 && $(metric $pod pgbouncer_pools_client_waiting_connections) >= 1 ))' ||
		fail "metrics: $(agent "$pod" /metrics | grep -E '^pgbouncer_pools_(client|server)_' )"
	local active waiting servers
	active=$(metric "$pod" pgbouncer_pools_client_active_connections)
	waiting=$(metric "$pod" pgbouncer_pools_client_waiting_connections)
	servers=$(metric "$pod" pgbouncer_pools_server_active_connections)
	(( servers == 2 )) || fail "server_active_connections $servers, the pool holds 2"
	agent "$pod" /status | jq -e '.clientsWaiting >= 1 and .serverConnections == 2' >/dev/null || fail "/status: $(agent "$pod" /status)"
	# The operator's poll (--agent-poll-seconds 2) reaches the pool's status within its 30 s limit for live figures.
	eventually 60 "k get connectionpool ag -o json | jq -e '.status.live | .serverConnections >= 2 and .clientsWaiting >= 1 and .podsReporting == 2' >/dev/null" ||
		fail "status.live: $(k get connectionpool ag -o jsonpath='{.status.live}')"
	local live
	live=$(k get connectionpool ag -o jsonpath='{.status.live}')
	k get connectionpool ag -o wide | has -E '^NAME .* INUSE' || fail "no InUse column: $(k get connectionpool ag -o wide)"
	stop_clients
	# PgBouncer keeps a server connection until its query ends: end the sleeps so the next test starts idle.
	psql_super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(90)'" >/dev/null
	log "under load: $active active, $waiting waiting, $servers server connections of $budget budgeted; status.live $live"
}

test_pause_holds_a_query_until_resume() {
	local pod=ag-1 out="$work/paused-client.out" pid before t0 paused_after
	eventually 30 '(( $(metric ag-0 pgbouncer_pools_client_active_connections) == 0 ))' || fail "clients left on ag-0"
	[[ "$(paused_column)" == false ]] || fail "Paused column before: $(k get connectionpools ag)"
	before=$(identities)
	t0=$(date +%s)
	set_paused true
	# The operator renders it into the ConfigMap; the kubelet refreshes the volume, the agents PAUSE and report it.
	eventually 30 '[[ "$(k get configmap ag-config -o go-template="{{.data.paused}}")" == true ]]' ||
		fail "ag-config paused: $(k get configmap ag-config -o go-template='{{.data.paused}}')"
	eventually 120 '[[ "$(status_paused)" == true ]]' ||
		fail "status.paused not true: $(k get connectionpool ag -o jsonpath='{.status}') $(agent ag-0 /status) $(agent ag-1 /status)"
	paused_after=$(( $(date +%s) - t0 ))
	agent ag-0 /status | jq -e '.paused' >/dev/null && agent ag-1 /status | jq -e '.paused' >/dev/null ||
		fail "status.paused true while an agent is not: $(agent ag-0 /status) $(agent ag-1 /status)"
	[[ "$(paused_column)" == true ]] || fail "Paused column: $(k get connectionpools ag)"
	[[ "$(cond ag Progressing reason)" == RolloutComplete ]] || fail "Progressing once paused: $(cond ag Progressing message)"
	bg_client "$pod" "SELECT 'through'" "$out"
	pid=${clients[-1]}
	# Held: PgBouncer has the client waiting for a server connection, and psql has printed nothing.
	eventually 30 '(( $(metric $pod pgbouncer_pools_client_waiting_connections) >= 1 ))' || fail "the client is not waiting"
	kill -0 "$pid" 2>/dev/null && [[ ! -s "$out" ]] || fail "the query was not held: $(cat "$out")"
	[[ "$(identities)" == "$before" ]] || fail "pods replaced or restarted by the pause: $before -> $(identities)"
	set_paused false
	eventually 120 '! kill -0 $pid 2>/dev/null' || fail "the query still waits after resume"
	wait "$pid" || fail "the held query failed: $(cat "$out")"
	[[ "$(cat "$out")" == through ]] || fail "the held query answered $(cat "$out")"
	clients=()
	eventually 60 '[[ "$(status_paused)" == false ]]' || fail "status.paused still $(status_paused)"
	[[ "$(paused_column)" == false ]] || fail "Paused column after resume: $(k get connectionpools ag)"
	# status.paused is false as soon as one pod runs again (docs/operating.md): the pool is no longer
	# wholly paused. Every agent resumed shows as Progressing no longer Resuming.
	eventually 60 'agent ag-0 /status | jq -e ".paused == false" && agent ag-1 /status | jq -e ".paused == false"' ||
		fail "still paused: $(agent ag-0 /status) $(agent ag-1 /status)"
	eventually 30 '[[ "$(cond ag Progressing reason)" == RolloutComplete ]]' ||
		fail "Progressing after resume: $(cond ag Progressing reason): $(cond ag Progressing message)"
	[[ "$(identities)" == "$before" ]] || fail "pods replaced or restarted by the resume: $before -> $(identities)"
	log "spec.paused: status.paused true after ${paused_after}s; a query held while paused, answered after resume; no pod replaced"
}

test_a_setting_change_is_reloaded_without_a_restart() {
	local before pod
	before=$(identities)
	open_session ag-0
	session_query "SELECT 'before';"
	session_has before || fail "the session did not answer: $(cat "$work/session.out")"
	for pod in $(pods ag); do
		agent "$pod" /metrics | has -x 'pgbouncer_config_max_client_connections 100' || fail "$pod: max_client_conn is not 100"
	done
	pool_yaml 2 60 | k apply -f - >/dev/null
	eventually 90 all_loaded || fail "not reloaded: $(for p in $(pods ag); do agent "$p" /status; done)"
	for pod in $(pods ag); do
		# The exporter's gauge comes from SHOW CONFIG of the running PgBouncer.
		agent "$pod" /metrics | has -x 'pgbouncer_config_max_client_connections 60' ||
			fail "$pod: SHOW CONFIG: $(agent "$pod" /metrics | grep max_client)"
		agent "$pod" /metrics | has -x 'poolkeeper_agent_reloads_total [1-9][0-9]*' || fail "$pod: no RELOAD counted"
	done
	[[ "$(identities)" == "$before" ]] || fail "pods replaced or restarted: $before -> $(identities)"
	session_query "SELECT 'after';"
	session_has after || fail "the session opened before the change is gone: $(cat "$work/session.out")"
	close_session || fail "the session ended badly: $(cat "$work/session.out")"
	eventually 30 all_ready ag 2 || fail "ag not Ready after the reload"
	log "max_client_conn 100 -> 60 by RELOAD on $(pods ag | wc -l) pods, none restarted; a session survived"
}

test_a_password_rotation_is_reloaded_without_a_restart() {
	local before pod
	before=$(identities)
	open_session ag-1
	session_query "SELECT 'before';"
	session_has before || fail "the session did not answer: $(cat "$work/session.out")"
	psql_super -c "ALTER ROLE app PASSWORD 'app-rotated-pw'" >/dev/null
	k create secret generic app-db --from-literal=password=app-rotated-pw --dry-run=client -o yaml |
		k label --local -f - poolkeeper.io/expose-to-pools=true -o yaml | k apply -f - >/dev/null
	eventually 90 all_loaded || fail "not reloaded: $(for p in $(pods ag); do agent "$p" /status; done)"
	for pod in $(pods ag); do
		eventually 30 "[[ \"\$(client $pod 'SELECT 1' app-rotated-pw)\" == 1 ]]" ||
			fail "$pod: the new password: $(client "$pod" 'SELECT 1' app-rotated-pw 2>&1)"
		! client "$pod" 'SELECT 1' app-secret-pw >/dev/null 2>&1 || fail "$pod: the old password still works"
	done
	[[ "$(identities)" == "$before" ]] || fail "pods replaced or restarted: $before -> $(identities)"
	session_query "SELECT 'after';"
	session_has after || fail "the session opened before the rotation is gone: $(cat "$work/session.out")"
	close_session || fail "the session ended badly: $(cat "$work/session.out")"
	app_password=app-rotated-pw
	log "password rotated by RELOAD on every pod, none restarted; a session survived"
}

sc_yaml() { # INSTANCES
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: sc, namespace: default}
spec:
  serverRef: {name: agentdb}
  pooler: {instances: $1, maxSurge: 0, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 20, serverIdleTimeoutSeconds: 5}
  databases: [{name: app}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}

# Derived caps, maxSurge 0: 2 pods of usable / 2, then 3 of usable / 3. The running pods reload the lowered caps, their
# agents report it (and no more server connections held), their figures are lowered, and only then is the third pod
# created: nothing restarts, and the server never sees more than usable from the pool, sampled under load.
test_scaling_up_with_derived_caps_reloads_then_adds_a_pod_within_the_budget() {
	k delete connectionpool ag --wait=true >/dev/null
	eventually 120 '[[ -z "$(k get pod -l poolkeeper.io/pool=ag -o name)" ]]' || fail "ag's pods still exist"
	sc_yaml 2 | k apply -f - >/dev/null
	eventually 120 all_ready sc 2 || fail "sc not Ready: $(k get connectionpool sc -o jsonpath='{.status.conditions}')"
	local usable before i pid peak lowered=""
	app_password=$(k get secret app-db -o go-template='{{.data.password | base64decode}}') # rotated by the test before
	usable=$(k get connectionpool sc -o jsonpath='{.status.budget.usable}')
	[[ "$(per_pod sc-0)" == $((usable / 2)) ]] || fail "sc-0 is charged $(per_pod sc-0), not $usable / 2"
	before=$(identities sc)
	# Load: 6 clients per pod, each 150 one-statement transactions of 0.2 s (about 30 s).
	for i in $(seq 150); do echo "SELECT pg_sleep(0.2);"; done > "$work/load.sql"
	for i in 1 2 3 4 5 6; do
		for pod in sc-0 sc-1; do
			PGPASSWORD=$app_password psql "host=$(pod_ip $pod) port=6432 user=app dbname=app" -qAt -f "$work/load.sql" >/dev/null 2>"$work/load-$pod-$i.err" &
			clients+=($!)
		done
	done
	# The server's backends of the pool's user, every 0.2 s.
	(while :; do psql_super -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"; sleep 0.2; done) >"$work/samples" 2>/dev/null &
	local sampler=$!
	eventually 30 '(( $(metric sc-0 pgbouncer_pools_client_active_connections) >= 5 ))' || fail "no load on sc-0"
	sc_yaml 3 | k apply -f - >/dev/null
	# When the third pod exists, the two running ones are already charged the lowered figure.
	eventually 180 'k get pod sc-2 >/dev/null 2>&1' || fail "no third pod: $(k get connectionpool sc -o jsonpath='{.status.conditions}')"
	lowered="$(per_pod sc-0) $(per_pod sc-1)"
	[[ "$lowered" == "$((usable / 3)) $((usable / 3))" ]] || fail "sc-2 created while sc-0, sc-1 are charged $lowered"
	# The lowered figure reaches sc-0's /metrics once the kubelet rewrites its downward API volume.
	local t0=$(date +%s)
	eventually 90 '[[ "$(budget_metric sc-0)" == $((usable / 3)) ]]' || fail "sc-0's budget metric is $(budget_metric sc-0), not $((usable / 3))"
	local metric_lag=$(( $(date +%s) - t0 ))
	eventually 120 all_ready sc 3 || fail "sc not Ready with 3: $(k get connectionpool sc -o jsonpath='{.status.conditions}')"
	for pid in "${clients[@]}"; do wait "$pid" || fail "a load client failed: $(cat "$work"/load-*.err)"; done
	clients=()
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	peak=$(sort -n "$work/samples" | tail -1)
	(( peak >= 8 )) || fail "the load reached only $peak backends"
	(( peak <= usable )) || fail "the server saw $peak backends of the pool, over usable $usable"
	[[ "$(identities sc | grep -v sc-2)" == "$before" ]] || fail "pods replaced or restarted: $before -> $(identities sc)"
	log "2 -> 3: figures $((usable / 2)) -> $lowered before sc-2 was created (sc-0's metric within ${metric_lag}s); peak $peak of $usable usable over $(wc -l <"$work/samples") samples; nothing restarted"
}

# ---------------------------------------------------------------------------------------------------------------
UP_EXTRA_IMAGES=operator "$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 30
k apply -f "$repo/crds/" >/dev/null &&
	k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
k create namespace poolkeeper-system >/dev/null
server_yaml | k apply -f - >/dev/null
k create secret generic app-db --save-config --from-literal=password=app-secret-pw >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
start_host_operator --agent-image "$agent_image" --agent-poll-seconds 2
run test_pods_with_the_agent_become_ready
run test_metrics_show_active_and_waiting_clients_under_load
run test_pause_holds_a_query_until_resume
run test_a_setting_change_is_reloaded_without_a_restart
run test_a_password_rotation_is_reloaded_without_a_restart
run test_scaling_up_with_derived_caps_reloads_then_adds_a_pod_within_the_budget
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
