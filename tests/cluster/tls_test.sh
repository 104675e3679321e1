#!/usr/bin/env bash
# tests/cluster/tls_test.sh — a ConnectionPool with TLS on both sides on a live cluster (issue 15): a test CA and
# certificates made here with openssl; the pool's certificate from a labelled Secret, PgBouncer verifying a
# TLS-only PostgreSQL (hostssl) with verify-full against the CA of its PostgresServer (spec.caSecretRef, in
# another namespace: the operator copies the certificate, never the key, into the pool's ConfigMap). A client
# with sslmode=verify-full and the pool's CA gets in, one with another CA and a plaintext one do not; a renewed
# certificate rolls the pods and clients see it; the PostgresServer's CA Secret is watched, a renewed CA reaches the
# pool's ConfigMap at once and rolls it; a CA in a labelled ConfigMap is watched, its change rolls them.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=tls source "$here/lib.sh"
C="$work/c"
poolkeeper="${POOLKEEPER_BIN:-$repo/build/poolkeeper}"
certs="$work/certs"

cleanup() {
	trap - EXIT INT TERM
	end_host_operator_tier
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 900
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }

start_operator() { start_host_operator; }
# The pool's newest pod that is not terminating (a roll moves it to the next free slot: pool-1, pool-0, ...).
pod_name() {
	k get pod -l "poolkeeper.io/pool=$1" -o json |
		jq -r '[.items[] | select(.metadata.deletionTimestamp == null)] | sort_by(.metadata.creationTimestamp) | last | .metadata.name // empty'
}
pod_ip() { k get pod "$(pod_name "$1")" -o jsonpath='{.status.podIP}'; }
pod_uid() { k get pod "$(pod_name "$1")" -o jsonpath='{.metadata.uid}'; }
cond() { k get connectionpool "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].${3:-status}}"; }
# Ready, and the one pod left is the ready one (the old one of a roll gone).
ready() {
	[[ "$(cond "$1" Ready)" == True && "$(k get pod -l "poolkeeper.io/pool=$1" -o name | wc -l)" == 1 &&
		"$(k get pod "$(pod_name "$1")" -o jsonpath='{.status.containerStatuses[0].ready}')" == true ]]
}

# ca NAME: a self-signed CA (NAME.crt, NAME.key). cert CA STEM SANS: a certificate STEM.crt/.key signed by CA.
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$certs/$1.key" -out "$certs/$1.crt" 2>/dev/null
}
cert() {
	echo "subjectAltName=$3" > "$certs/$2.ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
		-keyout "$certs/$2.key" -out "$certs/$2.csr" 2>/dev/null &&
		openssl x509 -req -in "$certs/$2.csr" -CA "$certs/$1.crt" -CAkey "$certs/$1.key" -CAcreateserial \
			-days 2 -extfile "$certs/$2.ext" -out "$certs/$2.crt" 2>/dev/null
}
# The serial of the certificate a pooler presents (PostgreSQL's SSLRequest, then the TLS handshake).
served_serial() { openssl s_client -starttls postgres -connect "$(pod_ip "$1"):6432" </dev/null 2>/dev/null | openssl x509 -noout -serial; }
# The pool's certificate Secret, labelled for pools (as cert-manager's secretTemplate would).
apply_pool_secret() { # STEM
	k create secret generic tls-pool-cert --from-file=tls.crt="$certs/$1.crt" --from-file=tls.key="$certs/$1.key" \
		--dry-run=client -o yaml | k label --local -f - poolkeeper.io/expose-to-pools=true -o yaml | k apply -f - >/dev/null
}
# psql through the pod, verifying the pooler by the name in its certificate.
verify_full() { # POOL ROOT-CERT [SQL]
	PGPASSWORD=app-secret-pw PGCONNECT_TIMEOUT=5 psql \
		"host=$1.default.svc hostaddr=$(pod_ip "$1") port=6432 user=app dbname=app sslmode=verify-full sslrootcert=$2" \
		-qAt -c "${3:-SELECT 1}"
}

server_yaml() {
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: PostgresServer
metadata: {name: tlsdb}
spec:
  host: $host_ip
  port: $pgport
  maxConnections: 30
  overhead: 2
  sslMode: verify-full
  caSecretRef: {namespace: db-ops, name: db-ca}
YAML
}
pool_yaml() { # NAME [CA-REF-YAML]
	cat <<YAML
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: $1, namespace: default}
spec:
  serverRef: {name: tlsdb}
  pooler: {instances: 1, maxSurge: 1, pgbouncerVersion: "1.18", image: "localhost/poolkeeper-test/pgbouncer:1.18.0", defaultPoolSize: 2}
  databases: [{name: app}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
  tls:
    client: {sslMode: require, certificateSecretRef: {name: tls-pool-cert}}
    server: {sslMode: verify-full${2:+, caRef: $2}}
YAML
}

# ---------------------------------------------------------------------------------------------------------------
test_pool_verifies_the_server_with_its_postgresservers_ca() {
	pool_yaml tls-pool | k apply -f - >/dev/null
	eventually 120 ready tls-pool ||
		fail "tls-pool not Ready: $(k get connectionpool tls-pool -o jsonpath='{.status.conditions}') $(k logs "$(pod_name tls-pool)" 2>&1 | tail -5)"
	# The server's CA, copied from db-ops into the pool's namespace; the issuer's key left behind.
	[[ "$(k get configmap tls-pool-config -o go-template='{{index .data "server-ca.crt"}}')" == "$(cat "$certs/server-ca.crt")" ]] ||
		fail "server-ca.crt of tls-pool-config is not the PostgresServer's CA"
	lacks "PRIVATE KEY" k get configmap,connectionpool,events -A -o yaml || fail "a private key in an object the operator writes"
	local out
	out=$(verify_full tls-pool "$certs/pool-ca.crt" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
		fail "verify-full with the pool's CA refused: $(k logs "$(pod_name tls-pool)" | tail -5)"
	[[ "$out" == t ]] || fail "the pooler's backend is not on TLS: [$out]"
	k exec "$(pod_name tls-pool)" -- cat /etc/pgbouncer/pgbouncer.ini | has -x 'server_tls_ca_file = /etc/pgbouncer-tls/server-ca/ca.crt' ||
		fail "no server CA file in the ini"
	log "tls-pool Ready; verify-full both sides; backend over TLS (hostssl only)"
}

test_another_ca_and_plaintext_are_refused() {
	! verify_full tls-pool "$certs/other-ca.crt" >/dev/null 2>&1 || fail "a client trusting another CA got in"
	verify_full tls-pool "$certs/pool-ca.crt" >/dev/null || fail "the pool's CA no longer works"
	local err
	err=$(PGPASSWORD=app-secret-pw PGCONNECT_TIMEOUT=5 psql "host=$(pod_ip tls-pool) port=6432 user=app dbname=app sslmode=disable" \
		-qAt -c "SELECT 1" 2>&1) && fail "a plaintext client got in under require"
	has -i "ssl required" <<<"$err" || fail "plaintext refused for another reason: $err"
}

test_a_renewed_certificate_reaches_the_pods() {
	local before_uid before_serial
	before_uid=$(pod_uid tls-pool)
	before_serial=$(served_serial tls-pool) || fail "no certificate served"
	[[ "$before_serial" == "$(openssl x509 -noout -serial -in "$certs/pool.crt")" ]] || fail "served $before_serial"
	cert pool-ca pool-renewed "DNS:tls-pool,DNS:tls-pool.default,DNS:tls-pool.default.svc"
	apply_pool_secret pool-renewed
	eventually 120 '[[ "$(pod_uid tls-pool)" != "$before_uid" ]] && ready tls-pool' || fail "tls-pool's pod not rolled"
	local want
	want=$(openssl x509 -noout -serial -in "$certs/pool-renewed.crt")
	eventually 30 '[[ "$(served_serial tls-pool)" == "$want" ]]' || fail "clients see $(served_serial tls-pool), not $want"
	verify_full tls-pool "$certs/pool-ca.crt" >/dev/null || fail "verify-full after the renewal"
	log "renewed: $before_serial -> $want"
}

# The PostgresServer's CA Secret (caSecretRef, unlabelled, in db-ops) is watched: a renewed CA (the bundle gains a
# second CA, a rotation's first step) reaches the pool's ConfigMap and rolls its pod long before the resync (600 s).
server_ca_in_pool() { k get configmap tls-pool-config -o go-template='{{index .data "server-ca.crt"}}'; }
test_a_renewed_server_ca_secret_reaches_the_pools() {
	local before_uid started=$SECONDS
	before_uid=$(pod_uid tls-pool)
	cat "$certs/server-ca.crt" "$certs/other-ca.crt" > "$certs/server-bundle.crt"
	k -n db-ops create secret generic db-ca --from-file=ca.crt="$certs/server-bundle.crt" \
		--from-file=tls.key="$certs/server-ca.key" --dry-run=client -o yaml | k apply -f - >/dev/null 2>&1
	eventually 60 '[[ "$(server_ca_in_pool)" == "$(cat "$certs/server-bundle.crt")" ]]' ||
		fail "the renewed CA did not reach tls-pool-config within 60 s (the resync is 600 s)"
	log "the PostgresServer's renewed CA reached tls-pool-config after $((SECONDS - started)) s"
	eventually 120 '[[ "$(pod_uid tls-pool)" != "$before_uid" ]] && ready tls-pool' || fail "tls-pool's pod not rolled onto the renewed CA"
	verify_full tls-pool "$certs/pool-ca.crt" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" | has -x t ||
		fail "no TLS backend after the roll"
	lacks "PRIVATE KEY" k get configmap,connectionpool,events -A -o yaml || fail "a private key in an object the operator writes"
}

# Item 2: a CA in a ConfigMap (labelled) is watched: a changed bundle rolls the pods.
test_a_ca_configmap_change_rolls_the_pods() {
	k create configmap db-ca-bundle --save-config --from-file=ca.crt="$certs/server-ca.crt" >/dev/null &&
		k label configmap db-ca-bundle poolkeeper.io/expose-to-pools=true >/dev/null
	local before_uid before_hash
	before_uid=$(pod_uid tls-pool)
	pool_yaml tls-pool "{configMapName: db-ca-bundle}" | k apply -f - >/dev/null
	eventually 120 '[[ "$(pod_uid tls-pool)" != "$before_uid" ]] && ready tls-pool' || fail "not rolled onto the ConfigMap CA"
	lacks server-ca.crt k get configmap tls-pool-config -o jsonpath='{.data}' || fail "the server's CA is still copied"
	before_uid=$(pod_uid tls-pool)
	before_hash=$(k get connectionpool tls-pool -o jsonpath='{.status.configHash}')
	# The bundle gains a second CA (a CA rotation's first step): nothing in the pool changed.
	cat "$certs/server-ca.crt" "$certs/other-ca.crt" > "$certs/bundle.crt"
	k create configmap db-ca-bundle --from-file=ca.crt="$certs/bundle.crt" --dry-run=client -o yaml |
		k label --local -f - poolkeeper.io/expose-to-pools=true -o yaml | k apply -f - >/dev/null
	eventually 60 '[[ "$(k get connectionpool tls-pool -o jsonpath="{.status.configHash}")" != "$before_hash" ]]' ||
		fail "the config hash did not follow the ConfigMap"
	eventually 120 '[[ "$(pod_uid tls-pool)" != "$before_uid" ]] && ready tls-pool' || fail "not rolled onto the new bundle"
	verify_full tls-pool "$certs/pool-ca.crt" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" | has -x t ||
		fail "no TLS backend after the roll"
}

# A pool on a server without a CA of its own, and none of its server's: refused, naming the field.
test_no_ca_anywhere_is_named() {
	sed 's/serverRef: {name: tlsdb}/serverRef: {name: noca}/' <(pool_yaml noca-pool) | k apply -f - >/dev/null
	eventually 60 '[[ "$(cond noca-pool Degraded reason)" == ServerCaMissing ]]' ||
		fail "noca-pool: $(k get connectionpool noca-pool -o jsonpath='{.status.conditions}')"
	cond noca-pool Degraded message | has spec.tls.server.caRef || fail "the message does not name the field"
	! k get configmap noca-pool-config >/dev/null 2>&1 || fail "noca-pool's ConfigMap was written"
	# An inline server has no PostgresServer to take a CA from: the CRD refuses it at once.
	local out
	out=$(pool_yaml inline-pool | sed "s/serverRef: {name: tlsdb}/server: {host: $host_ip, port: $pgport, maxConnections: 30}/" |
		k apply --dry-run=server -f - 2>&1) && fail "the API server took an inline verify-full pool without a CA"
	has "tls.server.caRef is required" <<<"$out" || fail "refused for another reason: $out"
}

# ---------------------------------------------------------------------------------------------------------------
mkdir -p "$certs"
ca pool-ca && ca server-ca && ca other-ca
cert pool-ca pool "DNS:tls-pool,DNS:tls-pool.default,DNS:tls-pool.default.svc"
cert server-ca server "IP:$host_ip,IP:127.0.0.1"
"$here/up.sh" "$C" || { echo "up.sh failed"; echo "0 passed, 1 failed"; exit 1; }
start_postgres 30
# TCP only over TLS, with the test CA's certificate for the host's address.
install -o postgres -m 0600 "$certs/server.key" "$pgdir/server.key"
install -o postgres -m 0644 "$certs/server.crt" "$pgdir/server.crt"
sed -i 's/^host /hostssl /' "$pgdir/data/pg_hba.conf"
psql_super -c "ALTER SYSTEM SET ssl_cert_file = '$pgdir/server.crt'" -c "ALTER SYSTEM SET ssl_key_file = '$pgdir/server.key'" \
	-c "ALTER SYSTEM SET ssl = on" >/dev/null
restart_postgres 30
PGPASSWORD="$(cat "$pgdir/pw")" psql "host=$host_ip port=$pgport user=postgres dbname=postgres sslmode=disable" -qAt -c "SELECT 1" >/dev/null 2>&1 &&
	{ echo "PostgreSQL takes plaintext TCP"; echo "0 passed, 1 failed"; exit 1; }
k apply -f "$repo/crds/" >/dev/null &&
	k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
k create namespace poolkeeper-system >/dev/null
k create namespace db-ops >/dev/null
# The server's CA Secret as a CA issuer keeps it: certificate and private key. Only ca.crt may leave it.
k -n db-ops create secret generic db-ca --from-file=ca.crt="$certs/server-ca.crt" --from-file=tls.key="$certs/server-ca.key" >/dev/null
server_yaml | k apply -f - >/dev/null
server_yaml | sed -e 's/name: tlsdb/name: noca/' -e '/caSecretRef/d' -e 's/sslMode: verify-full/sslMode: disable/' -e "s/host: $host_ip/host: noca.example.invalid/" |
	k apply -f - >/dev/null
k create secret generic app-db --from-literal=password=app-secret-pw >/dev/null
k label secret app-db poolkeeper.io/expose-to-pools=true >/dev/null
apply_pool_secret pool
start_operator
run test_pool_verifies_the_server_with_its_postgresservers_ca
run test_another_ca_and_plaintext_are_refused
run test_a_renewed_certificate_reaches_the_pods
run test_a_renewed_server_ca_secret_reaches_the_pools
run test_a_ca_configmap_change_rolls_the_pods
run test_no_ca_anywhere_is_named
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
