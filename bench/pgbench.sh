#!/usr/bin/env bash
# Benchmark, not a test: pgbench throughput and errors through a PgBouncer running the files
# `poolkeeper render` produced, against the same clients connecting straight to PostgreSQL, at
# several client counts. Prints a table; the figures are only comparable on one machine.
#
#   bench/pgbench.sh                      # clients 10 50 100 200, 10 s each, max_connections 100
#   CLIENTS="10 100" DURATION=5 bench/pgbench.sh
#   KEEP=1 bench/pgbench.sh               # keep the work directory (logs, rendered files)
#   POOLKEEPER=build-x/poolkeeper ...     # another build of the CLI (default $BUILD_DIR/poolkeeper)
#
# Everything runs on loopback in a temporary directory, as the `postgres` user when run as root
# (PostgreSQL and PgBouncer refuse root), and is stopped and removed on exit, failure included.
source "$(dirname "$0")/../scripts/lib.sh"

CLIENTS="${CLIENTS:-10 50 100 200}"
DURATION="${DURATION:-15}"               # seconds per pgbench run (logins count in it)
MAX_CONNECTIONS="${MAX_CONNECTIONS:-100}"
POOL_SIZE="${POOL_SIZE:-20}"             # defaultPoolSize of the rendered pool
SCALE="${SCALE:-10}"                     # pgbench -i -s
THREADS="${THREADS:-2}"                  # pgbench -j
POOLKEEPER="${POOLKEEPER:-$BUILD_DIR/poolkeeper}"
PGBOUNCER=/usr/sbin/pgbouncer

[ -x "$POOLKEEPER" ] || die "no $POOLKEEPER: build it first (scripts/build.sh poolkeeper)"
[ -x "$PGBOUNCER" ] && [ -x "$PG_BIN/pgbench" ] || die "PostgreSQL or PgBouncer missing: scripts/setup.sh"

WORK="$(mktemp -d /tmp/pk-bench-XXXXXX)"
PGDATA_DIR="$WORK/pgdata"
cleanup() {
  if [ -f "$WORK/pgbouncer.pid" ]; then kill -TERM "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null || true; fi
  if [ -d "$PGDATA_DIR" ]; then
    as_service_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${KEEP:-}" ]; then log "kept $WORK (logs, rendered files)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$WORK"

# --- PostgreSQL -----------------------------------------------------------------------------------
PG_PORT=$(free_port)
SUPERUSER_PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
BENCH_PASSWORD="bench-user-$RANDOM$RANDOM"
printf '%s\n' "$SUPERUSER_PASSWORD" > "$WORK/superuser-password"
chmod 600 "$WORK/superuser-password"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$WORK/superuser-password"
log "PostgreSQL on 127.0.0.1:$PG_PORT, max_connections=$MAX_CONNECTIONS"
as_service_user "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -A scram-sha-256 \
  --pwfile="$WORK/superuser-password" --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; die "initdb failed"; }
# fsync off: the data is thrown away, and -S (select only) does not write anyway.
as_service_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/postgres.log" -w \
  -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=$MAX_CONNECTIONS -c fsync=off" \
  start >/dev/null

psql_admin() {
  PGPASSWORD="$SUPERUSER_PASSWORD" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -qAt "$@"
}
psql_admin -c "CREATE ROLE bench LOGIN PASSWORD '$BENCH_PASSWORD'"
psql_admin -c "CREATE DATABASE bench OWNER bench"  # its own -c: not inside a transaction block
export PGPASSWORD="$BENCH_PASSWORD"
log "pgbench -i -s $SCALE"
"$PG_BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U bench bench >"$WORK/init.log" 2>&1 ||
  { cat "$WORK/init.log"; die "pgbench -i failed"; }

# --- pgbench -S ------------------------------------------------------------------------------------
# Prints "tps errors": tps as pgbench computes it (without the initial connection time); errors as
# failed transactions plus clients that could not connect. pgbench 15 aborts the whole run when a
# client cannot connect, so a refused connection also zeroes that run's tps: "N+abort".
run_pgbench() {
  local port=$1 clients=$2 out="$WORK/pgbench-$1-$2.log" status=0
  local threads=$THREADS
  [ "$clients" -ge "$threads" ] || threads=$clients
  "$PG_BIN/pgbench" -n -S -T "$DURATION" -c "$clients" -j "$threads" \
    -h 127.0.0.1 -p "$port" -U bench bench >"$out" 2>&1 || status=$?
  local tps failed refused errors
  tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$out" | head -n 1)
  failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out" | head -n 1)
  refused=$(grep -cE 'could not create connection|client [0-9]+ aborted' "$out" || true)
  errors=$(( ${failed:-0} + refused ))
  [ "$status" -eq 0 ] || errors="$errors+abort"
  echo "${tps:-0} $errors"
}

# Direct runs first, while no pooler holds server connections, then the same runs through it.
log "pgbench -S -T $DURATION per run, -j $THREADS, $(nproc) CPUs: direct"
declare -A direct_tps direct_errors pooled_tps pooled_errors
for clients in $CLIENTS; do
  read -r "direct_tps[$clients]" "direct_errors[$clients]" < <(run_pgbench "$PG_PORT" "$clients")
done

# --- The pool, planned and rendered by poolkeeper ---------------------------------------------------
cat >"$WORK/pool.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: {name: bench-db, namespace: bench, labels: {poolkeeper.io/expose-to-pools: "true"}}
stringData: {password: "$BENCH_PASSWORD"}
---
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: bench, namespace: bench}
spec:
  server: {host: 127.0.0.1, port: $PG_PORT, maxConnections: $MAX_CONNECTIONS}
  pooler:
    instances: 1
    maxSurge: 0
    pgbouncerVersion: "1.18"
    image: edoburu/pgbouncer:1.18.0   # the benchmark runs the Debian 1.18 package locally
    poolMode: transaction
    maxClientConn: 1000
    defaultPoolSize: $POOL_SIZE
  databases: [{name: bench}]
  users: [{name: bench, passwordSecretRef: {name: bench-db}}]
EOF
log "poolkeeper check"
"$POOLKEEPER" check -f "$WORK/pool.yaml"
"$POOLKEEPER" render -f "$WORK/pool.yaml" --output-dir "$WORK/render" >/dev/null
RENDERED="$WORK/render/bench/bench"
[ -f "$RENDERED/pgbouncer.ini" ] && [ -f "$RENDERED/userlist.txt" ] || die "render wrote no pgbouncer.ini/userlist.txt"

# The rendered file listens on * at the pod's port and reads the userlist where the pod mounts it;
# in a pod the network namespace separates instances. Here: loopback, a free port, files in $WORK,
# and a pidfile so the script can stop the daemon. The pool settings run as rendered.
PGB_PORT=$(free_port)
cp "$RENDERED/userlist.txt" "$WORK/userlist.txt"
awk -v port="$PGB_PORT" -v dir="$WORK" '
  /^\[/ { if (in_pgb) emit(); in_pgb = ($0 == "[pgbouncer]") }
  in_pgb && /^(listen_addr|listen_port|auth_file|unix_socket_dir|pidfile|logfile)[ \t]*=/ { next }
  { print }
  END { if (in_pgb) emit() }
  function emit() {
    print "listen_addr = 127.0.0.1"; print "listen_port = " port
    print "auth_file = " dir "/userlist.txt"; print "unix_socket_dir = " dir
    print "pidfile = " dir "/pgbouncer.pid"; print "logfile = " dir "/pgbouncer.log"
    in_pgb = 0
  }' "$RENDERED/pgbouncer.ini" >"$WORK/pgbouncer.ini"
chmod 600 "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
as_service_user "$PGBOUNCER" -d "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.start.log" 2>&1 ||
  { cat "$WORK/pgbouncer.start.log" "$WORK/pgbouncer.log" 2>/dev/null; die "pgbouncer did not start"; }
wait_until 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PGB_PORT" || die "pgbouncer does not accept connections"
log "PgBouncer $("$PGBOUNCER" --version | head -n 1 | awk '{print $2}') on 127.0.0.1:$PGB_PORT, default_pool_size $POOL_SIZE"

log "pgbench -S -T $DURATION per run: through PgBouncer"
for clients in $CLIENTS; do
  read -r "pooled_tps[$clients]" "pooled_errors[$clients]" < <(run_pgbench "$PGB_PORT" "$clients")
done

printf '\n%8s | %12s %12s | %12s %12s\n' clients "pooled tps" errors "direct tps" errors
printf '%s\n' "---------+---------------------------+---------------------------"
for clients in $CLIENTS; do
  printf '%8s | %12.0f %12s | %12.0f %12s\n' "$clients" "${pooled_tps[$clients]}" \
    "${pooled_errors[$clients]}" "${direct_tps[$clients]}" "${direct_errors[$clients]}"
done
echo
first_error=$(grep -h -m1 -E 'too many clients|remaining connection slots' "$WORK"/pgbench-"$PG_PORT"-*.log 2>/dev/null | head -n 1 || true)
[ -z "$first_error" ] || echo "direct errors are the server's refusals: ${first_error#*FATAL:  }"
