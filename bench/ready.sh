#!/usr/bin/env bash
# Benchmark, not a test: how long after `kubectl apply` a pool with one pod is Ready, and how much of that
# is the pod's own start. On a fresh local cluster with a real kubelet (tests/cluster/up.sh), a throwaway
# PostgreSQL and `poolkeeper run`, N pools (instances 1) are applied one after another. Per pool:
#
#   listening  pgbouncer accepts TCP on the pod's IP (this script connects every 20 ms from the host)
#   pod Ready  the pod's Ready condition is True (the kubelet's probes)
#   pool Ready the ConnectionPool's Ready=True for its generation (the operator's status)
#
# all from timestamped kubectl watches (ms). It prints p50 and p90 of apply -> each, and of the gaps
# listening -> pod Ready (what the probe timings cost) and pod Ready -> pool Ready (what the operator costs).
#
#   bench/ready.sh                                   # N=10
#   N=5 POOLKEEPER=build-x/poolkeeper bench/ready.sh # another build of the operator
#   KEEP=1 bench/ready.sh                            # keep the work directory (watch and operator logs)
#
# Needs root (PostgreSQL runs as `postgres`), Go for the cluster binaries (tests/cluster/build.sh), kubectl
# from scripts/install-tools.sh. Everything it starts is stopped on exit.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$repo/tests/cluster/hoststate.sh" # host_ip, free_ports

N="${N:-10}"
POOLKEEPER="${POOLKEEPER:-$repo/build/poolkeeper}"
PGBIN=/usr/lib/postgresql/15/bin

log() { echo "  .. $*" >&2; }
die() { echo "bench/ready.sh: $*" >&2; exit 1; }

[[ -x "$POOLKEEPER" ]] || die "no $POOLKEEPER: build it first (scripts/build.sh poolkeeper)"
[[ "$(id -u)" == 0 ]] || die "run as root (PostgreSQL runs as the postgres user)"
"$repo/scripts/install-tools.sh" >&2 || die "scripts/install-tools.sh failed"
export PATH="$repo/.tools/bin:$PATH"
"$repo/tests/cluster/build.sh" >/dev/null || die "tests/cluster/build.sh failed"

work="$(mktemp -d /tmp/poolkeeper-bench-ready.XXXXXX)"
chmod 0755 "$work"
export HOME="$work/home" KUBECACHEDIR="$work/home/.kube/cache"
mkdir -p "$HOME"
C="$work/c"
pgdir="$work/pg"
op_pid=""
bg_pids=()
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

log "starting the local cluster in $C"
"$repo/tests/cluster/up.sh" "$C" >&2 || die "up.sh failed"
mkdir -p "$pgdir" && chown postgres: "$pgdir"
openssl rand -hex 16 >"$pgdir/pw" && chmod 600 "$pgdir/pw" && chown postgres: "$pgdir/pw"
app_password="$(openssl rand -hex 16)"
runuser -u postgres -- "$PGBIN/initdb" -D "$pgdir/data" -U postgres -A scram-sha-256 --pwfile="$pgdir/pw" --no-sync >"$pgdir/initdb.log" 2>&1 ||
	die "initdb failed: $pgdir/initdb.log"
echo "host all all 198.18.0.0/15 scram-sha-256" >>"$pgdir/data/pg_hba.conf"
pgport="$(free_ports 1)"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
	-o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1,$host_ip -c max_connections=100 -c fsync=off" start >/dev/null ||
	die "PostgreSQL did not start"
PGPASSWORD="$(cat "$pgdir/pw")" psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -qAt \
	-c "CREATE ROLE app LOGIN PASSWORD '$app_password'" || die "could not create the app role"
k apply -f "$repo/crds/" >/dev/null && k wait --for=condition=Established crd/connectionpools.poolkeeper.io --timeout=60s >/dev/null ||
	die "CRD not established"

op_port="$(free_ports 1)"
setsid "$POOLKEEPER" run --kubeconfig "$C/kubeconfig" --http-address "127.0.0.1:$op_port" --log-format json \
	--metrics-auth none --allowed-pooler-images 'localhost/poolkeeper-test/*' >>"$work/operator.log" 2>&1 </dev/null &
op_pid=$!
for i in $(seq 1 300); do curl -sf --max-time 5 "http://127.0.0.1:$op_port/readyz" >/dev/null && break; sleep 0.1; done

k create namespace rdy >/dev/null
k -n rdy create secret generic app-db --from-literal=password="$app_password" >/dev/null
k -n rdy label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null

# Timestamped watches: "EPOCH pool generation observedGeneration ready" and "EPOCH pod pool ip ready".
stamp() { python3 -u -c '
import sys, time
for line in sys.stdin:
    parts = [p if p else "-" for p in line.rstrip("\n").split("|")]
    sys.stdout.write("%.3f %s\n" % (time.time(), " ".join(parts)))
    sys.stdout.flush()'; }
k -n rdy get connectionpools -w --output-watch-events=false -o jsonpath='{.metadata.name}|{.metadata.generation}|{.status.observedGeneration}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}' 2>"$work/pools.err" |
	stamp >"$work/pools.watch" &
bg_pids+=($!)
k -n rdy get pods -w --output-watch-events=false -o jsonpath='{.metadata.name}|{.metadata.labels.app\.kubernetes\.io/instance}|{.status.podIP}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}' 2>"$work/pods.err" |
	stamp >"$work/pods.watch" &
bg_pids+=($!)
# From the host, connect to every pod IP the pod watch shows, every 20 ms, until pgbouncer accepts.
python3 -u - "$work/pods.watch" >"$work/listen.log" 2>&1 <<'PY' &
import socket, sys, threading, time
seen = set()
def probe(pool, ip):
    while True:
        try:
            socket.create_connection((ip, 6432), timeout=0.2).close()
            print("%.3f %s" % (time.time(), pool), flush=True)
            return
        except OSError:
            time.sleep(0.02)
with open(sys.argv[1]) as f:
    while True:
        line = f.readline()
        if not line:
            time.sleep(0.01)
            continue
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "-" and parts[3] not in seen:
            seen.add(parts[3])
            threading.Thread(target=probe, args=(parts[2], parts[3]), daemon=True).start()
PY
bg_pids+=($!)
sleep 1

pool_yaml() {
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: rdy}
spec:
  server: {host: $host_ip, port: $pgport, maxConnections: 100, overhead: 2}
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 2}
  databases: [{name: app, maxDbConnections: 2}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
YAML
}
first() { awk -v want="$2" "$1"' { print $1; exit }' "$3"; }
: >"$work/figures"
for i in $(seq 1 "$N"); do
	name="r-$i"
	pool_yaml "$name" >"$work/$name.yaml"
	t0="$EPOCHREALTIME"
	k apply -f "$work/$name.yaml" >/dev/null || die "kubectl apply of $name failed"
	t_pool="" t_pod="" t_listen=""
	for j in $(seq 1 1200); do # 60 s at 50 ms; the three logs arrive in any order
		t_pool="$(first '$2 == want && $3 == $4 && $5 == "True"' "$name" "$work/pools.watch")"
		t_pod="$(first '$3 == want && $5 == "True"' "$name" "$work/pods.watch")"
		t_listen="$(first '$2 == want' "$name" "$work/listen.log")"
		[[ -n "$t_pool" && -n "$t_pod" && -n "$t_listen" ]] && break
		sleep 0.05
	done
	[[ -n "$t_pool" && -n "$t_pod" && -n "$t_listen" ]] ||
		die "$name within 60 s: pool Ready at '$t_pool', pod Ready at '$t_pod', listening at '$t_listen' (KEEP=1 keeps $work)"
	echo "$t0 $t_listen $t_pod $t_pool" >>"$work/figures"
	log "$name: listening +$(awk -v a="$t0" -v b="$t_listen" 'BEGIN { printf "%.2f", b - a }') s, pod Ready +$(awk -v a="$t0" -v b="$t_pod" 'BEGIN { printf "%.2f", b - a }') s, pool Ready +$(awk -v a="$t0" -v b="$t_pool" 'BEGIN { printf "%.2f", b - a }') s"
done

# column FROM TO: the N differences, then nearest-rank p50 and p90.
pct() {
	awk -v a="$1" -v b="$2" '{ print $b - $a }' "$work/figures" | sort -g | awk '{ v[NR] = $1 } END {
		p50 = int(NR * 0.50 + 0.9999); p90 = int(NR * 0.90 + 0.9999)
		printf "p50 %.2f s, p90 %.2f s (min %.2f, max %.2f)", v[p50], v[p90], v[1], v[NR] }'
}
echo ""
echo "apply of one pool with one pod -> Ready, $N pools one after another ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "   apply -> pgbouncer listening:  $(pct 1 2)"
echo "   apply -> pod Ready:            $(pct 1 3)"
echo "   apply -> pool Ready:           $(pct 1 4)"
echo "   listening -> pod Ready:        $(pct 2 3)   (the probes)"
echo "   pod Ready -> pool Ready:       $(pct 3 4)   (the operator)"
