#!/usr/bin/env bash
# tests/cluster/chaos_test.sh — the budget holds on a live cluster, at every instant (issue 9).
#
# Three pools share one real PostgreSQL (fixed caps, derived caps, session mode), 300 clients work through their
# pooler pods the whole time (cmd/poolload), and seeded random actions hit them: scaling through the pool, spec
# changes that roll, password rotations, pool delete and re-create, pod deletes, evictions, kill -9 of the
# operator and its restart. A sampler reads pg_stat_activity every 100 ms; the test fails if the poolers' server
# connections ever exceed the usable budget, and prints the peak, the usable figure and the number of actions.
#
#   CHAOS_SEED=N          the random seed (default 1); a failure prints it
#   CHAOS_ACTIONS=N       actions in the bounded run (default 100)
#   CHAOS_SOAK_SECONDS=N  keep acting for this long instead (a soak), e.g. 1800
# The last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=chaos source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"
seed="${CHAOS_SEED:-1}"
actions="${CHAOS_ACTIONS:-100}"
soak="${CHAOS_SOAK_SECONDS:-0}"
RANDOM=$seed

cleanup() {
	trap - EXIT INT TERM
	[[ -f "$work/op.pid" ]] && kill -KILL "$(cat "$work/op.pid")" 2>/dev/null
	[[ -n "${load_pid:-}" ]] && kill -KILL "$load_pid" 2>/dev/null
	"$here/down.sh" "$C" >/dev/null 2>&1
	stop_postgres
	finish_work
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog $(( soak > 0 ? soak + 900 : 900 ))
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

start_operator() {
	local port
	port="$(free_ports 1)"
	setsid "$poolkeeper" run --kubeconfig "$C/kubeconfig" --http-address "127.0.0.1:$port" --workers 4 \
		--log-format json --watch-timeout-seconds 30 --allowed-pooler-images 'localhost/poolkeeper-test/*' >>"$work/op.log" 2>&1 &
	echo $! > "$work/op.pid"
	disown # its kill -9 is an action, not news
}

# MAX_CONNECTIONS 60 - 3 superuser reserved - 2 overhead = 55 usable.
usable=55
# minPoolSize makes every pgbouncer open its connections as soon as a client has used it, so the server sees
# close to what the pods can hold, not only what the clients happen to need.
pool() { # NAME MODE INSTANCES POOL-SIZE MIN-POOL-SIZE [MAX-DB-CONNECTIONS]
	local cap=""
	[[ -n "${6:-}" ]] && cap=", maxDbConnections: $6"
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: default}
spec:
  server: {host: $host_ip, port: $pgport, maxConnections: 60, overhead: 2}
  pooler: {instances: $3, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", poolMode: $2, defaultPoolSize: $4, minPoolSize: $5, maxClientConn: 500}
  databases: [{name: app$cap}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}
# Created in this order, so the ledger is: fixed (2 + 1) x 4 = 12, session (1 + 1) x 3 = 6, derived with what is
# left: 37 / 3 = 12 per pod, 36; 54 of 55.
create_pool() {
	case $1 in
	chaos-fixed) pool chaos-fixed transaction 2 4 4 4 ;;
	chaos-session) pool chaos-session session 1 3 3 3 ;;
	chaos-derived) pool chaos-derived transaction 2 20 10 ;;
	esac | k apply -f - >/dev/null
}
pools=(chaos-fixed chaos-session chaos-derived)
# random_pod N: the N-th (modulo) pooler pod. Random numbers come from the main shell only: $RANDOM in a
# command substitution would not advance the seeded sequence.
# Prints nothing when no pod exists (every pool scaled to 0 or deleted), and still succeeds: the test body
# runs under `set -e`.
random_pod() {
	local names
	mapfile -t names < <(k get pods -l app.kubernetes.io/managed-by=poolkeeper -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
	if (( ${#names[@]} > 0 )); then echo "${names[$1 % ${#names[@]}]}"; fi
}

# One random action, run in the main shell; appends what it did to $work/actions.log. Runs under `set -e`:
# an action that cannot be done (no pod to delete, an eviction the PDB refuses) is skipped, never fatal.
act() {
	local p=${pools[RANDOM % ${#pools[@]}]} n
	if ! k get connectionpool "$p" >/dev/null 2>&1; then
		create_pool "$p" && echo "re-create $p"
		return 0
	fi
	case $(( RANDOM % 8 )) in
	0) n=$(( RANDOM % 4 )); k scale connectionpool "$p" --replicas=$n >/dev/null && echo "scale $p to $n" ;;
	1)
		case $p in
		chaos-fixed) n=$(( 2 + RANDOM % 5 )); k patch connectionpool "$p" --type=merge -p "{\"spec\":{\"pooler\":{\"defaultPoolSize\":$n,\"minPoolSize\":$n},\"databases\":[{\"name\":\"app\",\"maxDbConnections\":$n}]}}" ;;
		chaos-session) n=$(( 2 + RANDOM % 3 )); k patch connectionpool "$p" --type=merge -p "{\"spec\":{\"pooler\":{\"defaultPoolSize\":$n,\"minPoolSize\":$n},\"databases\":[{\"name\":\"app\",\"maxDbConnections\":$n}]}}" ;;
		*) n=$(( 10 + RANDOM % 20 )); k patch connectionpool "$p" --type=merge -p "{\"spec\":{\"pooler\":{\"defaultPoolSize\":$n}}}" ;;
		esac >/dev/null && echo "change $p pool size to $n"
		;;
	2)
		n="pw-$RANDOM"
		psql_super -c "ALTER ROLE app PASSWORD '$n'" &&
			k create secret generic app-db --from-literal=password="$n" --dry-run=client -o yaml | k label --local -f - poolkeeper.io/expose-to-pools=true -o yaml | k apply -f - >/dev/null &&
			echo "rotate the password"
		;;
	3) k delete connectionpool "$p" --wait=false >/dev/null && echo "delete $p" ;;
	4 | 5)
		n=$(random_pod $RANDOM)
		[[ -n "$n" ]] && k delete pod "$n" --wait=false >/dev/null 2>&1 && echo "delete pod $n"
		;;
	6)
		n=$(random_pod $RANDOM)
		[[ -n "$n" ]] && k create --raw "/api/v1/namespaces/default/pods/$n/eviction" -f - >/dev/null 2>&1 <<JSON && echo "evict $n"
{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "$n", "namespace": "default"}}
JSON
		[[ -n "$n" ]] || true
		;;
	7)
		kill -KILL "$(cat "$work/op.pid")" 2>/dev/null || true # it may have exited on its own
		start_operator
		echo "kill -9 the operator, restart it"
		;;
	esac
	return 0
}

test_the_budget_holds_under_chaos() {
	PGPASSWORD="$(cat "$pgdir/pw")" "$bin/poolload" --kubeconfig "$C/kubeconfig" --pools "$(IFS=,; echo "${pools[*]}")" --clients-per-pool 100 \
		--sampler-dsn "host=127.0.0.1 port=$pgport user=postgres dbname=postgres sslmode=disable" \
		--usable $usable --stop-file "$work/stop" >"$work/load.out" 2>"$work/load.log" &
	load_pid=$!
	local done=0 t0=$(date +%s)
	: >"$work/actions.log"
	while :; do
		if (( soak > 0 )); then (( $(date +%s) - t0 < soak )) || break; else (( done < actions )) || break; fi
		act >>"$work/actions.log" || true # an action that fails is one that did not happen, not a test failure
		done=$(wc -l <"$work/actions.log")
		sleep "$(( RANDOM % 2 )).$(( 2 + RANDOM % 8 ))" # the pace of the actions, not a wait for anything
		kill -0 "$load_pid" 2>/dev/null || break
	done
	log "$done actions in $(( $(date +%s) - t0 ))s (seed $seed); letting every pool settle"
	local p
	for p in "${pools[@]}"; do
		# A pool the last actions deleted may still be draining: it must be gone before it is created
		# again (applied while it is being deleted, it would only be deleted after all).
		eventually 180 '[[ -z "$(k get connectionpool '"$p"' -o jsonpath="{.metadata.deletionTimestamp}" 2>/dev/null)" ]]' ||
			fail "$p still being deleted"
		k get connectionpool "$p" >/dev/null 2>&1 || create_pool "$p" || fail "$p could not be created again"
	done
	for p in "${pools[@]}"; do
		eventually 180 '[[ "$(k get connectionpool '"$p"' -o jsonpath="{.status.conditions[?(@.type==\"Ready\")].status}")" == True || "$(k get connectionpool '"$p"' -o jsonpath="{.status.conditions[?(@.type==\"BudgetExceeded\")].status}")" == True ]]' ||
			fail "$p did not settle: $(k get connectionpool "$p" -o jsonpath='{.status.conditions}')"
	done
	touch "$work/stop"
	wait "$load_pid"
	local status=$?
	load_pid=""
	local result=$(tail -1 "$work/load.out")
	log "$result actions=$done seed=$seed"
	[[ $status == 0 && "$result" == *" over=0 "* ]] || fail "the poolers exceeded the budget (seed $seed): $result; $(grep -m3 'over budget' "$work/load.log")"
	local samples=$(sed -E 's/.* samples=([0-9]+).*/\1/' <<<"$result") queries=$(sed -E 's/.* queries=([0-9]+).*/\1/' <<<"$result")
	local peak=$(sed -E 's/^peak=([0-9]+).*/\1/' <<<"$result")
	(( samples >= 100 )) || fail "the sampler took only $samples samples"
	(( queries >= 1000 )) || fail "the clients ran only $queries queries"
	(( peak >= 20 )) || fail "a peak of $peak: the clients did not load the pools"
	(( done >= actions || soak > 0 )) || fail "only $done of $actions actions"
}

# ---------------------------------------------------------------------------------------------------------------
"$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 60
k apply -f "$repo/crds/" >/dev/null && k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
k create secret generic app-db --from-literal=password=app-secret-pw --save-config >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
start_operator
# One after the other: creationTimestamp has a resolution of a second, and within one second the ledger
# orders pools by name.
for p in chaos-fixed chaos-session chaos-derived; do
	create_pool "$p"
	k wait --for=condition=Ready "connectionpool/$p" --timeout=120s >/dev/null || echo "$p not Ready: $(k get connectionpool "$p" -o jsonpath='{.status.conditions}')" >&2
	sleep 1 # a later creationTimestamp for the next pool (a second's resolution), not a wait for a condition
done
run test_the_budget_holds_under_chaos
echo "$passed passed, $failed failed"
