#!/usr/bin/env bash
# The main job on a local default: installs what is missing, builds, starts a local PostgreSQL,
# runs `poolkeeper check` and `poolkeeper render` on examples/quickstart.yaml, starts one PgBouncer
# per planned instance with the rendered files, and shows a client querying through the pooler.
# Leaves everything running; `scripts/demo.sh stop` stops it.
source "$(dirname "$0")/lib.sh"

DEMO_DIR="${POOLKEEPER_DEMO_DIR:-/tmp/poolkeeper-demo-$(id -u)}"
EXAMPLE="$REPO_ROOT/examples/quickstart.yaml"

stop() {
  for pidfile in "$DEMO_DIR"/pgbouncer-*.pid; do
    [ -f "$pidfile" ] && kill -INT "$(cat "$pidfile")" 2>/dev/null || true
  done
  if [ -d "$DEMO_DIR/pgdata" ]; then
    as_service_user "$PG_BIN/pg_ctl" -D "$DEMO_DIR/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DEMO_DIR"
}

if [ "${1:-}" = "stop" ]; then
  stop
  log "demo stopped"
  exit 0
fi

bash "$REPO_ROOT/scripts/setup.sh"
bash "$REPO_ROOT/scripts/build.sh" poolkeeper
POOLKEEPER="$BUILD_DIR/poolkeeper"

stop  # a previous demo's leftovers
mkdir -p "$DEMO_DIR"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$DEMO_DIR"

# The quickstart names its server; the demo is that server.
read -r PG_HOST PG_PORT MAX_CONN < <(python3 - "$EXAMPLE" <<'PY'
import sys, re
text = open(sys.argv[1]).read()
server = text[text.index("server:"):]
get = lambda k: re.search(r"\b%s:\s*\"?([^\s\"]+)" % k, server).group(1)
print(get("host"), get("port"), get("maxConnections"))
PY
)

log "poolkeeper check -f examples/quickstart.yaml"
"$POOLKEEPER" check -f "$EXAMPLE"

log "poolkeeper render -f examples/quickstart.yaml --output-dir $DEMO_DIR/render"
"$POOLKEEPER" render -f "$EXAMPLE" --output-dir "$DEMO_DIR/render"
POOL_DIR=$(dirname "$(find "$DEMO_DIR/render" -name pgbouncer.ini | head -n 1)")
[ "$(id -u)" -ne 0 ] || chown -R "$(service_user)" "$DEMO_DIR/render"

# The user and password the pool serves, as the userlist the renderer produced carries them.
read -r APP_USER APP_PASSWORD < <(python3 - "$POOL_DIR/userlist.txt" <<'PY'
import sys, shlex
line = open(sys.argv[1]).readline()
user, password = [w.replace('""', '"') for w in __import__("re").findall(r'"((?:[^"]|"")*)"', line)]
print(user, password)
PY
)
DATABASE=$(sed -n '/^\[databases\]/,/^\[/p' "$POOL_DIR/pgbouncer.ini" | grep -m1 '=' | sed -E 's/^"?([^" =]+)"? *=.*dbname=([^ ]+).*/\2/')

log "starting PostgreSQL on $PG_HOST:$PG_PORT with max_connections=$MAX_CONN"
SUPERUSER_PASSWORD="demo-superuser-$RANDOM$RANDOM"
printf '%s\n' "$SUPERUSER_PASSWORD" > "$DEMO_DIR/superuser-password"
chmod 600 "$DEMO_DIR/superuser-password"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$DEMO_DIR/superuser-password"
as_service_user "$PG_BIN/initdb" -D "$DEMO_DIR/pgdata" -U postgres -A scram-sha-256 \
  --pwfile="$DEMO_DIR/superuser-password" >/dev/null
as_service_user "$PG_BIN/pg_ctl" -D "$DEMO_DIR/pgdata" -l "$DEMO_DIR/postgres.log" -w \
  -o "-p $PG_PORT -k $DEMO_DIR -c listen_addresses=$PG_HOST -c max_connections=$MAX_CONN" start >/dev/null
export PGPASSWORD="$SUPERUSER_PASSWORD"
psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_admin -d postgres -c "CREATE ROLE \"$APP_USER\" LOGIN PASSWORD '${APP_PASSWORD//\'/\'\'}'"
psql_admin -d postgres -c "CREATE DATABASE \"$DATABASE\" OWNER \"$APP_USER\""

# In a cluster each pgbouncer pod has its own network namespace and the files mounted at
# /etc/pgbouncer*; here each instance gets its own port and the files where render wrote them.
INSTANCES=$("$POOLKEEPER" check -f "$EXAMPLE" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pools"][0]["instances"])')
for i in $(seq 1 "$INSTANCES"); do
  port=$((6431 + i))
  ini="$DEMO_DIR/pgbouncer-$i.ini"
  sed -e "s|^listen_addr = .*|listen_addr = 127.0.0.1|" -e "s|^listen_port = .*|listen_port = $port|" \
      -e "s|/etc/pgbouncer-auth/|$POOL_DIR/|" "$POOL_DIR/pgbouncer.ini" > "$ini"
  printf 'pidfile = %s\nlogfile = %s\n' "$DEMO_DIR/pgbouncer-$i.pid" "$DEMO_DIR/pgbouncer-$i.log" >> "$ini"
  [ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$ini"
  as_service_user /usr/sbin/pgbouncer -d "$ini"
  wait_until 10 pg_isready -h 127.0.0.1 -p "$port" || die "pgbouncer $i did not start: see $DEMO_DIR/pgbouncer-$i.log"
  log "pgbouncer instance $i listening on 127.0.0.1:$port"
done

log "a client querying through the pooler (SCRAM-SHA-256 to PgBouncer, then to PostgreSQL)"
PGPASSWORD="$APP_PASSWORD" psql -h 127.0.0.1 -p 6432 -U "$APP_USER" -d "$DATABASE" -c \
  "SELECT current_user, current_database(), inet_server_port() AS server_port, version()"

log "the budget"
"$POOLKEEPER" check -f "$EXAMPLE" | sed -n '1,3p'
cat <<MSG

The demo is running:
  PostgreSQL   $PG_HOST:$PG_PORT   (max_connections $MAX_CONN; data in $DEMO_DIR/pgdata)
  PgBouncer    127.0.0.1:6432..$((6431 + INSTANCES))   (rendered files in $POOL_DIR)
Try:  PGPASSWORD=$APP_PASSWORD psql -h 127.0.0.1 -p 6432 -U $APP_USER $DATABASE
Stop: scripts/demo.sh stop
MSG
