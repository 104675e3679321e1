# Shared by the cluster-tier test scripts (test.sh, operator_test.sh, install_test.sh): tools on PATH, a
# work directory with its own HOME for kubectl/helm caches, a result counter, polling, a throwaway PostgreSQL.
# The sourcing script sets `here` (tests/cluster) first; the last line it prints is "N passed, M failed".
repo="$(cd "$here/../.." && pwd)"
"$repo/scripts/install-tools.sh" >&2 || { echo "install-tools failed"; echo "0 passed, 1 failed"; exit 1; }
export PATH="$repo/.tools/bin:$PATH"
bin="$("$here/build.sh")" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
PGBIN=/usr/lib/postgresql/15/bin
source "$here/hoststate.sh" # host_ip (the host as pods see it), free_ports

work="$(mktemp -d "/tmp/poolkeeper-${TEST_NAME:-cluster}-test.XXXXXX")"
chmod 0755 "$work"
export HOME="$work/home" KUBECACHEDIR="$work/home/.kube/cache"
export HELM_CACHE_HOME="$work/home/.cache/helm" HELM_CONFIG_HOME="$work/home/.config/helm" HELM_DATA_HOME="$work/home/.local/share/helm"
mkdir -p "$HOME"
pgdir="$work/pg"
pgport=""
passed=0 failed=0

log() { echo "    $*" >&2; }
fail() { echo "    FAIL: $*" >&2; return 1; }
# producer | has GREP-ARGS...: whether the producer's output has a matching line. It reads all of its
# input before matching: `producer | grep -q` under pipefail fails whenever grep exits at the first
# match while the producer is still writing (SIGPIPE), and a negated check then passes vacuously.
has() { local text; text=$(cat); grep -q "$@" <<<"$text"; }
# lacks PATTERN command...: the command succeeds and no line of its output matches PATTERN (a check
# that something is absent must not pass because the command printed nothing).
lacks() { local pattern="$1" out; shift; out=$("$@") || return 1; ! grep -q -- "$pattern" <<<"$out"; }
# poll DEADLINE-SECONDS command...: retry the command until it succeeds or the deadline passes.
poll() {
	local secs="$1"; shift
	local end=$(( $(date +%s) + secs ))
	until "$@" >/dev/null 2>&1; do
		(( $(date +%s) < end )) || return 1
		sleep 0.5
	done
}
# eventually DEADLINE-SECONDS 'shell condition': like poll, but the condition is evaluated afresh each time.
eventually() {
	local secs="$1"; shift
	local end=$(( $(date +%s) + secs ))
	until eval "$*" >/dev/null 2>&1; do
		(( $(date +%s) < end )) || return 1
		sleep 0.5
	done
}
# CLUSTER_ONLY=REGEX runs only the tests whose names match (while working on one; CI runs them all).
run() {
	local name="$1"
	[[ -z "${CLUSTER_ONLY:-}" || "$name" =~ $CLUSTER_ONLY ]] || return 0
	echo "--- $name" >&2
	local t=$(date +%s)
	( set -e; "$name" )
	if [[ $? == 0 ]]; then
		passed=$((passed + 1)); echo "ok   $name ($(( $(date +%s) - t ))s)"
	else
		failed=$((failed + 1)); echo "FAIL $name ($(( $(date +%s) - t ))s)"
	fi
}
# Bounds the whole script; the cleanup trap still runs. The sleep must not hold the script's stdout: a caller
# piping it (scripts/test.sh | tee) would otherwise wait for the sleep to end.
watchdog() {
	( sleep "$1" >/dev/null 2>&1 </dev/null; echo "$0: global timeout" >&2; kill -TERM $$ ) &
	watchdog_pid=$!
}

# Pods, below the API: the host pid of a pod's first container (from the node's containerd; source the
# cluster's env first), and a psql run in a client pod (the PgBouncer test image has psql) with PGPASSWORD.
host_pid() { # kubeconfig namespace pod
	local id
	id=$(kubectl --kubeconfig "$1" -n "$2" get pod "$3" -o jsonpath='{.status.containerStatuses[0].containerID}') || return 1
	ctr --address "$CONTAINERD_SOCK" -n k8s.io task ls | awk -v id="${id#containerd://}" '$1 == id {print $2}'
}
test_image=localhost/poolkeeper-test/pgbouncer:1.18.0
# kube-proxy programs a Service once its endpoints are ready: waits until its address answers a query from
# the host (user app), so a client pod that follows does not race the rules.
service_answers() { # ip port password
	local ip=$1 port=$2 password=$3
	eventually 30 'PGPASSWORD="$password" PGCONNECT_TIMEOUT=2 psql "host=$ip port=$port user=app dbname=app" -qAt -c "select 1" | has -x 1'
}
# Not `kubectl run -i`: attaching races a client that is done within a second (empty output, exit 1 under load);
# the pod runs to completion and its log is its output.
psql_in_pod() { # kubeconfig password psql-args...: psql's output (stdout and stderr); fails when psql fails
	local kc=(kubectl --kubeconfig "$1") password=$2 name="psql-$RANDOM$RANDOM" phase=""
	shift 2
	"${kc[@]}" run "$name" --image "$test_image" --image-pull-policy Never --restart Never \
		--env PGPASSWORD="$password" --env PGCONNECT_TIMEOUT=5 --command -- psql "$@" >/dev/null || return 1
	local end=$(($(date +%s) + 60))
	until [[ $phase == Succeeded || $phase == Failed ]] || (($(date +%s) > end)); do
		sleep 0.5
		phase=$("${kc[@]}" get pod "$name" -o jsonpath='{.status.phase}')
	done
	"${kc[@]}" logs "$name"
	"${kc[@]}" delete pod "$name" --wait=false >/dev/null
	[[ $phase == Succeeded ]]
}

# A PostgreSQL owned by the test, as the postgres user, on a free port of 127.0.0.1 and of $host_ip (where
# pods reach it: start a cluster first); role app/app-secret-pw owns db app.
start_postgres() { # max_connections
	mkdir -p "$pgdir" && chown postgres: "$pgdir"
	openssl rand -hex 16 > "$pgdir/pw" && chmod 600 "$pgdir/pw" && chown postgres: "$pgdir/pw" # made per run
	runuser -u postgres -- "$PGBIN/initdb" -D "$pgdir/data" -U postgres -A scram-sha-256 --pwfile="$pgdir/pw" >"$pgdir/initdb.log" 2>&1
	echo "host all all 198.18.0.0/15 scram-sha-256" >> "$pgdir/data/pg_hba.conf" # the pods
	pgport="$(free_ports 1)"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
		-o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1,$host_ip -c max_connections=${1:-30}" start >/dev/null
	psql_super -c "CREATE ROLE app LOGIN PASSWORD 'app-secret-pw'"
	psql_super -c "CREATE DATABASE app OWNER app"
}
# Restarts the test's PostgreSQL with another max_connections (same data, port and identity); with "down",
# leaves it stopped.
restart_postgres() { # max_connections | down
	if [[ -f "$pgdir/data/postmaster.pid" ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null
	fi
	[[ "$1" == down ]] && return 0
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
		-o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1,$host_ip -c max_connections=$1" start >/dev/null
}
psql_super() { PGPASSWORD="$(cat "$pgdir/pw")" psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -qAt "$@"; }
stop_postgres() {
	if [[ -f "$pgdir/data/postmaster.pid" ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1
	fi
}
# `poolkeeper run` on the host against the cluster in $C, as the single-operator tiers run it: POD_NAME op in
# poolkeeper-system, plain-HTTP metrics on a free port ($work/op.port), the test images allowed; pid in
# $work/op.pid, log $work/op.log. Extra arguments are added to the command line.
start_host_operator() {
	free_ports 1 > "$work/op.port"
	POD_NAME=op POD_NAMESPACE=poolkeeper-system setsid "$poolkeeper" run --kubeconfig "$C/kubeconfig" \
		--http-address "127.0.0.1:$(cat "$work/op.port")" --metrics-auth none --workers 2 --log-format json \
		--watch-timeout-seconds 5 --allowed-pooler-images 'localhost/poolkeeper-test/*' "$@" >>"$work/op.log" 2>&1 &
	echo $! > "$work/op.pid"
}
# The single-operator tiers' exit: that operator killed, the cluster in $C and the test's PostgreSQL stopped,
# the work directory removed (or kept).
end_host_operator_tier() {
	[[ -f "$work/op.pid" ]] && kill -KILL "$(cat "$work/op.pid")" 2>/dev/null
	"$here/down.sh" "$C" >/dev/null 2>&1
	stop_postgres
	finish_work
}
# Removes the work directory unless KEEP=1 or something failed.
finish_work() {
	if [[ -n "${watchdog_pid:-}" ]]; then
		# The subshell first: killing its sleep first would let it wake and time the script out mid-cleanup.
		local sleeper
		sleeper=$(pgrep -P "$watchdog_pid")
		kill "$watchdog_pid" 2>/dev/null
		[[ -n "$sleeper" ]] && kill $sleeper 2>/dev/null
	fi
	if [[ "${KEEP:-0}" == 1 || $failed -gt 0 ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
