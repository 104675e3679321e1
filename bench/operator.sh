#!/usr/bin/env bash
# Benchmark, not a test: `poolkeeper run` on a fresh local control plane (tests/cluster/up.sh), driven by the
# pinned kubectl. Prints figures; they compare only with figures from the same machine.
#
#   1. latency   kubectl apply of one pool (instances 1, a real throwaway PostgreSQL behind a real PgBouncer
#                pod) -> status Ready=True with observedGeneration == generation; N pools one after another;
#                min, p50, p99, max
#   2. bulk      POOLS pools (instances 0: no pods) applied at once across NAMESPACES namespaces and SERVERS
#                server host names; time until every pool has its status for its generation and until every
#                pool is Ready; API requests, writes and reconciles per pool from the operator's /metrics
#   3. steady    the operator restarted with --resync-seconds RESYNC: API writes while it reconciles every
#                pool from its fresh caches, and during one further resync period (both must be 0)
#   4. memory    the operator's VmRSS idle (no pools, caches synced) and with the POOLS pools and their
#                owned objects cached
#
#   bench/operator.sh                         # N=20 POOLS=1000
#   N=5 POOLS=200 bench/operator.sh           # smaller
#   KEEP=1 bench/operator.sh                  # keep the work directory (operator logs, watch logs, cluster logs)
#   POOLKEEPER=build-x/poolkeeper ...         # another build of the operator (default build/poolkeeper)
#
# Environment: N (20), POOLS (1000), NAMESPACES (10), SERVERS (10), WORKERS (operator --workers, 4),
# RESYNC (--resync-seconds of the restarted operator, 30), SETTLE_TIMEOUT (seconds for the bulk phase, 900).
# Needs root (PostgreSQL and PgBouncer run as `postgres`), Go for the cluster binaries (built once by
# tests/cluster/build.sh), kubectl from scripts/install-tools.sh. Everything it starts is stopped on exit.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$repo/tests/cluster/hoststate.sh" # host_ip (PostgreSQL for the pods), free_ports

N="${N:-20}"
POOLS="${POOLS:-1000}"
NAMESPACES="${NAMESPACES:-10}"
SERVERS="${SERVERS:-10}"
WORKERS="${WORKERS:-4}"
RESYNC="${RESYNC:-30}"
SETTLE_TIMEOUT="${SETTLE_TIMEOUT:-900}"
POOLKEEPER="${POOLKEEPER:-$repo/build/poolkeeper}"
PGBIN=/usr/lib/postgresql/15/bin

say() { echo "$*"; }                 # figures: stdout
log() { echo "  .. $*" >&2; }        # progress: stderr
die() { echo "bench/operator.sh: $*" >&2; exit 1; }

[[ -x "$POOLKEEPER" ]] || die "no $POOLKEEPER: build it first (scripts/build.sh poolkeeper)"
[[ "$(id -u)" == 0 ]] || die "run as root (PostgreSQL and PgBouncer pods run as the postgres user)"
"$repo/scripts/install-tools.sh" >&2 || die "scripts/install-tools.sh failed"
export PATH="$repo/.tools/bin:$PATH"
bin="$("$repo/tests/cluster/build.sh")" || die "tests/cluster/build.sh failed"

work="$(mktemp -d /tmp/poolkeeper-bench-operator.XXXXXX)"
chmod 0755 "$work"
export HOME="$work/home" KUBECACHEDIR="$work/home/.kube/cache"
mkdir -p "$HOME"
C="$work/c"
pgdir="$work/pg"
pgport=""
op_pid="" op_port=""
bg_pids=() # watchers and other helpers we started

cleanup() {
	trap - EXIT INT TERM
	local p
	[[ -n "$op_pid" ]] && kill -KILL "$op_pid" 2>/dev/null
	for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	"$repo/tests/cluster/down.sh" "$C" >/dev/null 2>&1
	if [[ -f "$pgdir/data/postmaster.pid" ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1
	fi
	if [[ "${KEEP:-0}" == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --- the operator -------------------------------------------------------------------------------------------
start_operator() { # NAME extra-flags...
	local name="$1"; shift
	op_port="$(free_ports 1)"
	setsid "$POOLKEEPER" run --kubeconfig "$C/kubeconfig" --http-address "127.0.0.1:$op_port" \
		--workers "$WORKERS" --log-format json --metrics-auth none --allowed-pooler-images 'localhost/poolkeeper-test/*' "$@" >>"$work/$name.log" 2>&1 </dev/null &
	op_pid=$!
	op_started="$(now)"
}
stop_operator() {
	[[ -n "$op_pid" ]] || return 0
	kill -TERM "$op_pid" 2>/dev/null
	local i
	for i in $(seq 1 300); do kill -0 "$op_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$op_pid" 2>/dev/null
	wait "$op_pid" 2>/dev/null
	op_pid=""
}
metrics() { curl -sf --max-time 10 "http://127.0.0.1:$op_port/metrics"; }
op_ready() { curl -sf --max-time 5 "http://127.0.0.1:$op_port/readyz" >/dev/null; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$op_pid/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$op_pid/status"; }
# CPU seconds (user + system) the operator has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$op_pid/stat"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$op_pid/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
alive() { kill -0 "$op_pid" 2>/dev/null || die "the operator exited; see $work/*.log (run with KEEP=1)"; }

# snapshot FILE: the operator's counters we use, one "name value" a line.
snapshot() {
	metrics | awk '
		/^poolkeeper_api_requests_total\{/ {
			match($0, /verb="[a-z]+"/); v = substr($0, RSTART + 6, RLENGTH - 7)
			req[v] += $NF; all += $NF
			if (v ~ /^(create|update|apply|patch|delete)$/) w += $NF
		}
		/^poolkeeper_reconcile_total\{/ {
			match($0, /outcome="[a-z]+"/); o = substr($0, RSTART + 9, RLENGTH - 10)
			rec[o] += $NF; r += $NF
		}
		/^poolkeeper_reconcile_duration_seconds_sum / { dsum = $NF }
		/^poolkeeper_workqueue_depth / { depth = $NF }
		/^poolkeeper_workqueue_retries_total / { retries = $NF }
		/^poolkeeper_events_total / { events = $NF }
		END {
			printf "requests %d\nwrites %d\nreconciles %d\ndepth %d\nretries %d\nevents %d\nreconcile_ms %d\n", all, w, r, depth, retries, events, dsum * 1000
			split("get list watch create update apply patch delete", vs, " ")
			for (i = 1; i <= 8; i++) printf "verb_%s %d\n", vs[i], req[vs[i]]
			split("success requeue error", os, " ")
			for (i = 1; i <= 3; i++) printf "outcome_%s %d\n", os[i], rec[os[i]]
		}' > "$1.tmp" && mv "$1.tmp" "$1"
}
val() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }
delta() { echo $(( $(val "$2" "$3") - $(val "$1" "$3") )); }
per_pool() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# quiesce [SECONDS]: wait until no reconcile and no API request happened for SECONDS. (The work-queue depth
# cannot tell: it counts the keys waiting for their periodic resync too.)
quiesce() {
	local quiet="${1:-5}" last="" same=0 s="$work/q.snap"
	while (( same < quiet * 2 )); do
		alive
		snapshot "$s" || { sleep 0.5; continue; }
		local cur="$(val "$s" reconciles) $(val "$s" requests)"
		if [[ "$cur" == "$last" ]]; then same=$((same + 1)); else same=0; fi
		last="$cur"
		sleep 0.5
	done
}
verbs() { # FROM TO: the non-zero per-verb deltas
	local v out=""
	for v in get list watch create update apply patch delete; do
		local d=$(delta "$1" "$2" "verb_$v")
		(( d )) && out+="$v $d, "
	done
	echo "${out%, }"
}
outcomes() {
	local o out=""
	for o in success requeue error; do
		local d=$(delta "$1" "$2" "outcome_$o")
		(( d )) && out+="$o $d, "
	done
	echo "${out%, }"
}

# A watch of ConnectionPools, one timestamped line per event: "EPOCH ns/name generation observedGeneration ready".
start_watch() { # FILE kubectl-scope-args...
	local file="$1"; shift
	k get connectionpools "$@" -w --output-watch-events=false \
		-o jsonpath='{.metadata.namespace}/{.metadata.name} {.metadata.generation} {.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status}{"\n"}' 2>"$file.err" |
		python3 -u -c '
import sys, time
for line in sys.stdin:
    parts = line.split()
    while len(parts) < 4: parts.append("-")
    sys.stdout.write("%.3f %s\n" % (time.time(), " ".join(parts[:4])))
    sys.stdout.flush()' >"$file" &
	bg_pids+=($!)
	watch_pid=$!
}

# --- the cluster, a PostgreSQL, the CRD ---------------------------------------------------------------------
machine="$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
log "starting the local control plane in $C"
"$repo/tests/cluster/up.sh" "$C" >&2 || die "up.sh failed"

mkdir -p "$pgdir" && chown postgres: "$pgdir"
# Throwaway server, throwaway passwords: made for this run, never written in the repository.
openssl rand -hex 16 >"$pgdir/pw" && chmod 600 "$pgdir/pw" && chown postgres: "$pgdir/pw"
app_password="$(openssl rand -hex 16)"
runuser -u postgres -- "$PGBIN/initdb" -D "$pgdir/data" -U postgres -A scram-sha-256 --pwfile="$pgdir/pw" --no-sync >"$pgdir/initdb.log" 2>&1 ||
	die "initdb failed: $pgdir/initdb.log"
echo "host all all 198.18.0.0/15 scram-sha-256" >>"$pgdir/data/pg_hba.conf" # the pooler pods
pgport="$(free_ports 1)"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
	-o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1,$host_ip -c max_connections=100 -c fsync=off" start >/dev/null ||
	die "PostgreSQL did not start"
psql_super() { PGPASSWORD="$(cat "$pgdir/pw")" psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -qAt "$@"; }
psql_super -c "CREATE ROLE app LOGIN PASSWORD '$app_password'" && psql_super -c "CREATE DATABASE app OWNER app" ||
	die "could not create the app role and database"

k apply -f "$repo/crds/" >/dev/null && k wait --for=condition=Established crd/connectionpools.poolkeeper.io --timeout=60s >/dev/null ||
	die "CRD not established"


# --- 4a. idle memory -----------------------------------------------------------------------------------------
start_operator op1
for i in $(seq 1 300); do alive; op_ready && break; sleep 0.1; done
op_ready || die "operator not ready after 30 s"
log "operator ready $(elapsed "$op_started" "$(now)") s after start; idle 5 s"
sleep 5
rss_idle=$(rss_kib)

# --- 1. latency ----------------------------------------------------------------------------------------------
k create namespace lat >/dev/null
k -n lat create secret generic app-db --from-literal=password="$app_password" >/dev/null
k -n lat label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
lat_pool() { # NAME
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: lat}
spec:
  server: {host: $host_ip, port: $pgport, maxConnections: 100, overhead: 2}
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 2}
  databases: [{name: app, maxDbConnections: 2}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}
start_watch "$work/latency.watch" -n lat
sleep 1
latencies=() applies=() firsts=()
log "latency: $N pools, one after another"
for i in $(seq 1 "$N"); do
	name="lat-$i"
	lat_pool "$name" >"$work/$name.yaml"
	t0="$(now)"
	k apply -f "$work/$name.yaml" >/dev/null || die "kubectl apply of $name failed"
	t_applied="$(now)"
	t_ready=""
	for j in $(seq 1 2400); do # 120 s at 50 ms
		t_ready="$(awk -v p="lat/$name" '$2 == p && $3 == $4 && $5 == "True" { print $1; exit }' "$work/latency.watch")"
		[[ -n "$t_ready" ]] && break
		sleep 0.05
	done
	[[ -n "$t_ready" ]] || die "$name not Ready within 120 s: $(k -n lat get connectionpool "$name" -o jsonpath='{.status.conditions}')"
	k -n lat get "configmap/$name-config" "secret/$name-auth" "service/$name" >/dev/null 2>&1 ||
		die "$name Ready but its objects are missing"
	t_status="$(awk -v p="lat/$name" '$2 == p && $3 == $4 { print $1; exit }' "$work/latency.watch")"
	firsts+=("$(elapsed "$t0" "$t_status")")
	latencies+=("$(elapsed "$t0" "$t_ready")")
	applies+=("$(elapsed "$t0" "$t_applied")")
	log "$name Ready after ${latencies[-1]} s (kubectl apply returned after ${applies[-1]} s, first status after ${firsts[-1]} s)"
done
# A query through the last pool's pod: PgBouncer really reaches PostgreSQL.
ip="$(k -n lat get pods -l "app.kubernetes.io/instance=lat-$N" -o jsonpath='{.items[0].status.podIP}')"
served="no"
[[ -n "$ip" ]] && [[ "$(PGPASSWORD="$app_password" PGCONNECT_TIMEOUT=5 psql "host=$ip port=6432 user=app dbname=app" -qAt -c 'SELECT 1' 2>/dev/null)" == 1 ]] && served="yes"
kill -TERM "$watch_pid" 2>/dev/null
# stats VALUES...: min, nearest-rank p50 and p99, max
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		p50 = int(NR * 0.50 + 0.9999); p99 = int(NR * 0.99 + 0.9999)
		printf "min %.2f s, p50 %.2f s, p99 %.2f s, max %.2f s", v[1], v[p50], v[p99], v[NR] }'
}
lat_stats="$(stats "${latencies[@]}")"
apply_stats="$(stats "${applies[@]}")"
first_stats="$(stats "${firsts[@]}")"
log "deleting the latency pools"
k -n lat delete connectionpools --all --wait=true --timeout=120s >/dev/null 2>&1 || log "latency pools not deleted in 120 s"
for i in $(seq 1 120); do # the garbage collector removes their objects and pods
	[[ -z "$(k -n lat get pods -o name 2>/dev/null)" ]] && break
	sleep 1
done
k delete namespace lat --wait=true --timeout=120s >/dev/null 2>&1 || log "namespace lat still terminating"

# --- 2. bulk -------------------------------------------------------------------------------------------------
log "bulk: generating $POOLS pools in $NAMESPACES namespaces on $SERVERS servers"
per_server=$(( (POOLS + SERVERS - 1) / SERVERS ))
max_conn=$(( per_server * 10 + 1000 )) # each pool: (0 instances + 1 surge) x 10
{
	for n in $(seq 0 $((NAMESPACES - 1))); do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-%d}\n---\n' "$n"
		printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: app-db, namespace: bench-%d, labels: {poolkeeper.io/expose-to-pools: "true"}}\nstringData: {password: %s}\n---\n' "$n" "$app_password"
	done
} >"$work/bulk-base.yaml"
for part in 0 1; do : >"$work/bulk-$part.yaml"; done
for i in $(seq 0 $((POOLS - 1))); do
	printf -- '---\napiVersion: poolkeeper.io/v1alpha1\nkind: ConnectionPool\nmetadata: {name: p-%05d, namespace: bench-%d}\nspec:\n  server: {host: db-%d.bench.invalid, port: 5432, maxConnections: %d, overhead: 2}\n  pooler: {instances: 0, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 10}\n  databases: [{name: app, maxDbConnections: 10}]\n  users: [{name: app, passwordSecretRef: {name: app-db}}]\n' \
		"$i" $((i % NAMESPACES)) $(((i / NAMESPACES) % SERVERS)) "$max_conn" >>"$work/bulk-$((i % 2)).yaml"
done
k apply --server-side -f "$work/bulk-base.yaml" >/dev/null || die "namespaces and Secrets not applied"
quiesce 3
snapshot "$work/bulk-before.snap"
start_watch "$work/bulk.watch" -A
sleep 2
log "bulk: applying $POOLS pools (2 kubectl apply --server-side in parallel)"
cpu_before_bulk=$(cpu_s)
t0="$(now)"
k apply --server-side -f "$work/bulk-0.yaml" >"$work/apply-0.log" 2>&1 & a0=$!
k apply --server-side -f "$work/bulk-1.yaml" >"$work/apply-1.log" 2>&1 & a1=$!
wait "$a0" || die "kubectl apply failed: $(tail -3 "$work/apply-0.log")"
wait "$a1" || die "kubectl apply failed: $(tail -3 "$work/apply-1.log")"
t_applied="$(now)"
log "applied in $(elapsed "$t0" "$t_applied") s; waiting until every pool is Ready"
# From the watch log: per pool the first time its status matched its generation, and the first time it was Ready.
settled_figures() {
	awk -v want="$POOLS" -v t0="$t0" '
		$2 !~ /^bench-/ { next }
		$3 == $4 && !($2 in s) { s[$2] = $1; ns++; if ($1 > ls) ls = $1 }
		$3 == $4 && $5 == "True" && !($2 in r) { r[$2] = $1; nr++; if ($1 > lr) lr = $1 }
		END { printf "%d %d %.2f %.2f\n", ns, nr, (ns ? ls - t0 : -1), (nr ? lr - t0 : -1) }' "$work/bulk.watch"
}
deadline=$(( $(date +%s) + SETTLE_TIMEOUT ))
rss_peak_bulk=0
while :; do
	alive
	r=$(rss_kib); (( r > rss_peak_bulk )) && rss_peak_bulk=$r
	read -r n_status n_ready t_status t_ready <<<"$(settled_figures)"
	(( n_ready >= POOLS )) && break
	if (( $(date +%s) > deadline )); then
		log "not every pool Ready within ${SETTLE_TIMEOUT}s: $n_status with status, $n_ready Ready"
		break
	fi
	sleep 1
done
quiesce 5
snapshot "$work/bulk-after.snap"
cpu_bulk=$(awk -v a="$cpu_before_bulk" -v b="$(cpu_s)" 'BEGIN { printf "%.1f", b - a }')
threads_bulk=$(threads)
read -r n_status n_ready t_status t_ready <<<"$(settled_figures)"
# Check with a fresh list, not only the watch.
listed_ready=$(k get connectionpools -A -o jsonpath='{range .items[*]}{.metadata.generation} {.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
	awk '$1 == $2 && $3 == "True"' | wc -l)
owned=$(k get configmaps,secrets,services,poddisruptionbudgets,pods -A -l app.kubernetes.io/managed-by=poolkeeper -o name | wc -l)
event_reasons=$(k get events -A -o jsonpath='{range .items[?(@.reportingComponent=="poolkeeper.io/operator")]}{.type}/{.reason}{"\n"}{end}' |
	sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }')
k get events -A -o json >"$work/bulk-events.json" 2>/dev/null
rss_bulk=$(rss_kib)
hwm_bulk=$(hwm_kib)
b_req=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" requests)
b_wr=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" writes)
b_rec=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" reconciles)
b_ev=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" events)
b_retries=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" retries)
b_verbs="$(verbs "$work/bulk-before.snap" "$work/bulk-after.snap")"
b_outcomes="$(outcomes "$work/bulk-before.snap" "$work/bulk-after.snap")"
b_ms=$(delta "$work/bulk-before.snap" "$work/bulk-after.snap" reconcile_ms)
kill -TERM "$watch_pid" 2>/dev/null

# --- 3. steady state -----------------------------------------------------------------------------------------
log "steady state: restarting the operator with --resync-seconds $RESYNC"
stop_operator
start_operator op2 --resync-seconds "$RESYNC"
for i in $(seq 1 600); do alive; op_ready && break; sleep 0.1; done
op_ready || die "restarted operator not ready after 60 s"
t_synced="$(now)"
n_pools=$(k get connectionpools -A -o name | wc -l)
snapshot "$work/restart-0.snap"
while :; do # until it has reconciled every pool once
	alive
	snapshot "$work/restart-1.snap"
	(( $(val "$work/restart-1.snap" outcome_success) >= n_pools )) && break
	(( $(date +%s) - ${op_started%.*} > 600 )) && { log "the restarted operator did not reconcile every pool in 600 s"; break; }
	sleep 0.2
done
t_all="$(now)"
quiesce 3
snapshot "$work/restart-1.snap"
s_req=$(val "$work/restart-1.snap" requests)
s_wr=$(val "$work/restart-1.snap" writes)
s_rec=$(val "$work/restart-1.snap" reconciles)
sed 's/ .*/ 0/' "$work/restart-1.snap" >"$work/zero.snap"
s_verbs="$(verbs "$work/zero.snap" "$work/restart-1.snap")"
s_outcomes="$(outcomes "$work/zero.snap" "$work/restart-1.snap")"
rss_restart=$(rss_kib)
window=$(( RESYNC + 15 ))
log "steady state: one resync period ($window s)"
sleep "$window"
snapshot "$work/restart-2.snap"
r_wr=$(delta "$work/restart-1.snap" "$work/restart-2.snap" writes)
r_req=$(delta "$work/restart-1.snap" "$work/restart-2.snap" requests)
r_rec=$(delta "$work/restart-1.snap" "$work/restart-2.snap" reconciles)
r_verbs="$(verbs "$work/restart-1.snap" "$work/restart-2.snap")"
r_outcomes="$(outcomes "$work/restart-1.snap" "$work/restart-2.snap")"
rss_resync=$(rss_kib)
stop_operator

# --- figures -------------------------------------------------------------------------------------------------
load="$(cut -d' ' -f1-3 /proc/loadavg)"
say ""
say "poolkeeper run on a local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet $(basename "$bin"), containerd)"
say "machine: $machine, shared with other work (load average now $load); operator --workers $WORKERS"
say ""
say "1. kubectl apply of one pool -> Ready=True for its generation (instances 1, real PgBouncer pod, real PostgreSQL)"
say "   $N pools one after another; a kubectl watch timestamps every status change (ms resolution, checked every 50 ms)"
say "   latency: $lat_stats"
say "   of which kubectl apply itself: $apply_stats"
say "   to the first status for the generation (the operator's first reconcile; Ready=False until the pod is ready): $first_stats"
say "   objects present (ConfigMap, Secret, Service) for every pool; a query through the last pool's PgBouncer: $served"
say ""
say "2. $POOLS pools applied at once (instances 0: no pods), $NAMESPACES namespaces, $SERVERS servers (~$per_server pools each, maxConnections $max_conn), one Secret per namespace"
say "   kubectl apply --server-side, 2 in parallel: $(elapsed "$t0" "$t_applied") s"
say "   status for its generation (observedGeneration == generation): $n_status/$POOLS pools, last at $t_status s after the first apply"
say "   Ready=True for its generation (0 instances: no pod to wait for): $n_ready/$POOLS pools, last at $t_ready s (re-listed: $listed_ready Ready)"
say "   owned objects: $owned (ConfigMap, Secret, Service per pool; no pod or PodDisruptionBudget at 0 instances)"
say "   API requests: $b_req ($(per_pool "$b_req" "$POOLS") per pool): $b_verbs"
say "   writes (create/update/apply/patch/delete): $b_wr ($(per_pool "$b_wr" "$POOLS") per pool), of which Events $b_ev${event_reasons:+ ($event_reasons)}"
say "   operator CPU from the first apply to quiet: $cpu_bulk s; threads after the bulk: $threads_bulk"
say "   reconciles: $b_rec ($(per_pool "$b_rec" "$POOLS") per pool): $b_outcomes; work-queue retries $b_retries; mean reconcile $(per_pool "$b_ms" "$b_rec") ms"
say ""
say "3. steady state: the operator restarted (--resync-seconds $RESYNC) with nothing changed"
say "   ready $(elapsed "$op_started" "$t_synced") s after start (caches listed); every pool reconciled $(elapsed "$op_started" "$t_all") s after start"
say "   from start until settled: $s_rec reconciles ($s_outcomes), $s_req API requests ($s_verbs), writes: $s_wr"
say "   one further resync period ($window s): $r_rec reconciles${r_outcomes:+ ($r_outcomes)}, $r_req API requests${r_verbs:+ ($r_verbs)}, writes: $r_wr"
say ""
say "4. operator resident memory (VmRSS)"
say "   idle (no pools, caches synced):                       $(mib "$rss_idle")"
say "   $POOLS pools + $owned owned objects cached, after the bulk: $(mib "$rss_bulk") (VmHWM $(mib "$hwm_bulk"))"
say "   the same, restarted process after its first reconcile of every pool: $(mib "$rss_restart"); after a resync: $(mib "$rss_resync")"
if (( s_wr != 0 || r_wr != 0 )); then say ""; say "   STEADY STATE WROTE: $s_wr writes after the restart, $r_wr during the resync (want 0)"; fi
