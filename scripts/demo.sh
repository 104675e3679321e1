#!/usr/bin/env bash
# The main job on a local default, end to end: installs what is missing and builds; shows the plan
# with `poolkeeper check` and part of what `poolkeeper render` produces; starts a local Kubernetes
# cluster (tests/cluster/up.sh: the control plane, the kubelet and kube-proxy built from the
# Kubernetes Go modules, containerd and runc, CoreDNS; the operator's image built from the
# Dockerfile) and a local PostgreSQL on the host's address as pods see it (max_connections 20, the
# server examples/quickstart.yaml names); installs the Helm chart, so the operator runs in-cluster
# under its own ServiceAccount; applies examples/quickstart.yaml, waits for Ready, queries PostgreSQL
# through a pooler pod, and from a client pod through the pool's Service name, and shows
# `kubectl get connectionpools` with the budget. Leaves everything running; `scripts/demo.sh stop`
# stops it.
source "$(dirname "$0")/lib.sh"

DEMO_DIR="${POOLKEEPER_DEMO_DIR:-/tmp/poolkeeper-demo-$(id -u)}"
CLUSTER="$DEMO_DIR/cluster"
EXAMPLE="$REPO_ROOT/examples/quickstart.yaml"
PG_HOST=198.18.0.1 PG_PORT=54320 MAX_CONN=20 # as examples/quickstart.yaml declares its server
PGBOUNCER_IMAGE=localhost/poolkeeper-test/pgbouncer:1.18.0 # as it names its image; up.sh imports it
APP_PASSWORD=quickstart-password            # the quickstart's demo Secret

stop() {
  if [ -f "$DEMO_DIR/pgdata/postmaster.pid" ]; then
    as_service_user "$PG_BIN/pg_ctl" -D "$DEMO_DIR/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -d "$CLUSTER" ] && bash "$REPO_ROOT/tests/cluster/down.sh" "$CLUSTER"
  rm -rf "$DEMO_DIR"
}

if [ "${1:-}" = "stop" ]; then
  stop
  log "demo stopped"
  exit 0
fi

bash "$REPO_ROOT/scripts/setup.sh" --all
bash "$REPO_ROOT/scripts/build.sh" poolkeeper
POOLKEEPER="$BUILD_DIR/poolkeeper"
export PATH="$REPO_ROOT/.tools/bin:$PATH" KUBECONFIG="$CLUSTER/kubeconfig"

stop # a previous demo's leftovers
mkdir -p "$DEMO_DIR"
chmod 0755 "$DEMO_DIR"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$DEMO_DIR"

log "the plan: poolkeeper check -f examples/quickstart.yaml"
"$POOLKEEPER" check -f "$EXAMPLE"
log "what the operator will apply: poolkeeper render -f examples/quickstart.yaml --output-dir $DEMO_DIR/render"
"$POOLKEEPER" render -f "$EXAMPLE" --output-dir "$DEMO_DIR/render"
sed -n '/^\[pgbouncer\]/,$p' "$DEMO_DIR/render/default/app/pgbouncer.ini" | grep -E '^(pool_mode|max_client_conn|default_pool_size|max_db_connections) ' || true

log "starting a local Kubernetes cluster in $CLUSTER (the operator's image built from the Dockerfile)"
UP_EXTRA_IMAGES=operator bash "$REPO_ROOT/tests/cluster/up.sh" "$CLUSTER"

log "starting PostgreSQL on $PG_HOST:$PG_PORT with max_connections=$MAX_CONN"
SUPERUSER_PASSWORD="demo-superuser-$RANDOM$RANDOM"
printf '%s\n' "$SUPERUSER_PASSWORD" > "$DEMO_DIR/superuser-password"
chmod 600 "$DEMO_DIR/superuser-password"
[ "$(id -u)" -ne 0 ] || chown "$(service_user)" "$DEMO_DIR/superuser-password"
as_service_user "$PG_BIN/initdb" -D "$DEMO_DIR/pgdata" -U postgres -A scram-sha-256 \
  --pwfile="$DEMO_DIR/superuser-password" >/dev/null
echo "host all all 198.18.0.0/15 scram-sha-256" >>"$DEMO_DIR/pgdata/pg_hba.conf" # the pooler pods
as_service_user "$PG_BIN/pg_ctl" -D "$DEMO_DIR/pgdata" -l "$DEMO_DIR/postgres.log" -w \
  -o "-p $PG_PORT -k $DEMO_DIR -c listen_addresses=$PG_HOST -c max_connections=$MAX_CONN" start >/dev/null
PGPASSWORD="$SUPERUSER_PASSWORD" psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
  -c "CREATE ROLE app LOGIN PASSWORD '$APP_PASSWORD'" -c "CREATE DATABASE app OWNER app"

log "helm install poolkeeper helm/poolkeeper (the operator runs in-cluster with its ServiceAccount)"
# The pooler pods run the locally built PgBouncer: the operator allows its repository (allowedPoolerImages).
helm install poolkeeper "$REPO_ROOT/helm/poolkeeper" --namespace poolkeeper-system --create-namespace \
  --set 'allowedPoolerImages={localhost/poolkeeper-test/*}' --wait --timeout 180s >/dev/null
kubectl -n poolkeeper-system get deployment,pods -o wide

log "kubectl apply -f examples/quickstart.yaml"
kubectl apply -f "$EXAMPLE"
kubectl wait --for=condition=Ready connectionpool/app --timeout=180s >/dev/null ||
  die "the pool did not become Ready: kubectl describe connectionpool app"
kubectl get pods -l app.kubernetes.io/instance=app -o wide

POD_IP=$(kubectl get pods -l app.kubernetes.io/instance=app --field-selector=status.phase=Running \
  -o jsonpath='{.items[0].status.podIP}')
log "a client querying through the pooler pod at $POD_IP:6432 (SCRAM-SHA-256 to PgBouncer, then to PostgreSQL)"
PGPASSWORD="$APP_PASSWORD" psql -h "$POD_IP" -p 6432 -U app -d app -c \
  "SELECT current_user, current_database(), inet_server_port() AS server_port, version()"

log "a client pod querying through the pool's Service, app.default.svc.cluster.local:6432"
# kube-proxy programs a Service once its endpoints are ready: wait until its address answers from here.
SERVICE_IP=$(kubectl get service app -o jsonpath='{.spec.clusterIP}')
for _ in $(seq 60); do
  PGPASSWORD="$APP_PASSWORD" PGCONNECT_TIMEOUT=2 psql -h "$SERVICE_IP" -p 6432 -U app -d app -qAt -c "SELECT 1" \
    >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl run psql-demo --restart=Never --image="$PGBOUNCER_IMAGE" --image-pull-policy=Never \
  --env=PGPASSWORD="$APP_PASSWORD" --command -- \
  psql "host=app.default.svc.cluster.local port=6432 user=app dbname=app" -c "SELECT current_user, inet_server_port() AS server_port" \
  >/dev/null
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/psql-demo --timeout=60s >/dev/null ||
  die "the client pod failed: kubectl logs psql-demo"
kubectl logs psql-demo
kubectl delete pod psql-demo >/dev/null

log "kubectl get connectionpools"
kubectl get connectionpools
OPERATOR_IP=$(kubectl -n poolkeeper-system get pods -l app.kubernetes.io/name=poolkeeper \
  -o jsonpath='{.items[0].status.podIP}')
cat <<MSG

The demo is running:
  PostgreSQL      $PG_HOST:$PG_PORT (max_connections $MAX_CONN; data in $DEMO_DIR/pgdata)
  Kubernetes      $(grep '^API_SERVER=' "$CLUSTER/env" | cut -d= -f2)   (state and logs in $CLUSTER)
  operator        pod in poolkeeper-system, metrics at http://$OPERATOR_IP:8080/metrics (with a bearer token
                  of a ServiceAccount bound to the ClusterRole poolkeeper-metrics-reader: docs/operating.md)
  PgBouncer       pods of ConnectionPool default/app, e.g. $POD_IP:6432

Explore:
  export KUBECONFIG=$CLUSTER/kubeconfig PATH=$REPO_ROOT/.tools/bin:\$PATH
  kubectl describe connectionpool app
  kubectl get pods,configmap,secret,service -l app.kubernetes.io/instance=app
  PGPASSWORD=$APP_PASSWORD psql -h $POD_IP -p 6432 -U app app
  kubectl run psql --rm -it --restart=Never --image=$PGBOUNCER_IMAGE --env=PGPASSWORD=$APP_PASSWORD --command -- psql -h app.default.svc -p 6432 -U app app
  kubectl scale connectionpool app --replicas 3   # caps re-derived to fit: (3 + 1) x 3 = 12 of 15
  kubectl patch connectionpool app --type merge -p '{"spec":{"pooler":{"defaultPoolSize":8},"databases":[{"name":"app","maxDbConnections":8}]}}'   # (instances + 1) x 8 > 15: refused, the pods keep running
Stop: scripts/demo.sh stop
MSG
