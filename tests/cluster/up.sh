#!/usr/bin/env bash
# up.sh DIR — start a local Kubernetes cluster whose state lives in DIR and return once it is ready.
#
#   On the host: etcd, kube-controller-manager and kube-scheduler on free 127.0.0.1 ports, kube-apiserver on
#   198.18.0.1 (where pods reach it); a fresh CA, serving and client certificates, RBAC, service-account token
#   issuing, and the admin kubeconfig at DIR/kubeconfig. One node, `local` (node.sh): the kubelet, kube-proxy
#   and containerd in namespaces of their own, with the images of images.sh imported; CoreDNS as a pod.
#   Binaries from build.sh. Stop it with down.sh DIR. Several clusters can run at once, each in its own DIR
#   and slot (hoststate.sh); see tests/cluster/README.md.
#
# Environment: POOLKEEPER_BUILD_DIR (binaries), UP_EXTRA_IMAGES (more images.sh names to import, e.g. operator),
#              UP_TIMEOUT (seconds, default 120), APISERVER_EXTRA_ARGS (more kube-apiserver flags, word-split).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
D="$(cd "$1" && pwd)"
timeout_s="${UP_TIMEOUT:-120}"
t0=$(date +%s.%N)

for f in "$D"/pids/*.pid; do
	[[ -f "$f" ]] || continue
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null && grep -qF "$D" < <(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null); then
		echo "up.sh: a cluster is already running in $D (pid $pid); run down.sh $D first" >&2
		exit 1
	fi
done

bin="$("$here/build.sh")"
k8s_version="$(basename "$bin")"

ok=0
cleanup_on_fail() {
	if [[ $ok == 0 ]]; then
		echo "up.sh: start failed; logs in $D/logs" >&2
		for l in "$D"/logs/*.log; do [[ -f "$l" ]] && { echo "--- $l (tail)" >&2; tail -n 15 "$l" >&2; }; done
		"$here/down.sh" "$D" >&2 || true
	fi
}
trap cleanup_on_fail EXIT

mkdir -p "$D/pki" "$D/logs" "$D/pids"
rm -rf "$D/etcd" "$D/node"
chmod 0700 "$D/pki"

# --- a slot: this cluster's addresses, network namespace and cgroup (hoststate.sh) ---
source "$here/hoststate.sh"
slot="$(with_host_lock reserve_slot "$D")" || { echo "up.sh: no free slot for another cluster" >&2; exit 1; }
echo "$slot" > "$D/slot"
echo "$bin" > "$D/bin"
slot_addresses "$slot"
with_host_lock host_shared_acquire

# --- ports (on the host's address; the node's own ports are in its namespace) ---
read -r etcd_port etcd_peer_port api_port kcm_port sched_port <<< "$(free_ports 5 | tr "\n" " ")"

# --- PKI: a CA per cluster, EC P-256 keys ---
pki="$D/pki"
ossl() { openssl "$@" 2>/dev/null; }
key() { ossl ecparam -name prime256v1 -genkey -noout -out "$1"; }
key "$pki/ca.key"
ossl req -x509 -new -key "$pki/ca.key" -sha256 -days 3650 -subj "/CN=poolkeeper-test-ca-$(basename "$D")" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
	-out "$pki/ca.crt"
cert() { # name subject extfile-content
	key "$pki/$1.key"
	ossl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
	printf '%s\n' "$3" > "$pki/$1.ext"
	ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 -sha256 \
		-extfile "$pki/$1.ext" -out "$pki/$1.crt"
	rm -f "$pki/$1.csr" "$pki/$1.ext"
}
client_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
cert apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$host_ip,IP:127.0.0.1,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=poolkeeper-admin" "$client_ext"
cert kcm "/CN=system:kube-controller-manager" "$client_ext"
cert kube-scheduler "/CN=system:kube-scheduler" "$client_ext"
cert kube-proxy "/CN=system:kube-proxy" "$client_ext"
# The kubelet as the Node authorizer and NodeRestriction expect it; the API server's client
# certificate for logs, exec and port-forward; the kubelet's serving certificate for that address.
cert kubelet "/O=system:nodes/CN=system:node:local" "$client_ext"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
cert kubelet-serving "/CN=local" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$node_ip,DNS:local"
# kube-controller-manager and kube-scheduler serve /healthz over TLS; without a certificate from our
# CA they would self-sign (into a directory of the host).
cert kcm-serving "/CN=kube-controller-manager" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
key "$pki/sa.key"
ossl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

kubeconfig() { # file user
	cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$host_ip:$api_port
    certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 < "$pki/$2.crt")
    client-key-data: $(base64 -w0 < "$pki/$2.key")
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
	chmod 0600 "$1"
}
kubeconfig "$D/kubeconfig" admin
kubeconfig "$pki/kcm.kubeconfig" kcm
for user in kube-scheduler kube-proxy kubelet; do kubeconfig "$pki/$user.kubeconfig" "$user"; done

spawn() { # name args... : start detached in its own session, log to DIR/logs/name.log, pid in DIR/pids/name.pid
	local name="$1"; shift
	setsid "$@" > "$D/logs/$name.log" 2>&1 < /dev/null &
	echo $! > "$D/pids/$name.pid"
}
deadline=$(( $(date +%s) + timeout_s ))
wait_for() { # description command...
	local what="$1"; shift
	until "$@" > /dev/null 2>&1; do
		if (( $(date +%s) > deadline )); then echo "up.sh: timed out waiting for $what" >&2; exit 1; fi
		for f in "$D"/pids/*.pid; do
			kill -0 "$(cat "$f")" 2>/dev/null || { echo "up.sh: $(basename "$f" .pid) exited" >&2; exit 1; }
		done
		sleep 0.2
	done
}
api() { curl -sSf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://$host_ip:$api_port$1"; }

spawn etcd "$bin/etcd" --name default --data-dir "$D/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "default=http://127.0.0.1:$etcd_peer_port" --initial-cluster-state new \
	--unsafe-no-fsync --snapshot-count 10000 --log-level warn
wait_for etcd curl -sSf --max-time 2 "http://127.0.0.1:$etcd_port/health"

spawn kube-apiserver "$bin/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address "$host_ip" --advertise-address "$host_ip" --secure-port "$api_port" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" \
	--authorization-mode Node,RBAC \
	--enable-admission-plugins NodeRestriction \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--api-audiences https://kubernetes.default.svc.cluster.local \
	--service-cluster-ip-range "$svc_cidr" \
	--enable-aggregator-routing=true \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
	--profiling=false --v=1 ${APISERVER_EXTRA_ARGS:-}
wait_for "kube-apiserver /readyz" api /readyz

spawn kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig "$pki/kcm.kubeconfig" \
	--authentication-kubeconfig "$pki/kcm.kubeconfig" --authorization-kubeconfig "$pki/kcm.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$kcm_port" \
	--tls-cert-file "$pki/kcm-serving.crt" --tls-private-key-file "$pki/kcm-serving.key" \
	--leader-elect=false --use-service-account-credentials=true \
	--controllers deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller,root-ca-certificate-publisher-controller,disruption-controller,statefulset-controller,daemonset-controller,job-controller,cronjob-controller,ttl-after-finished-controller,pod-garbage-collector-controller,node-lifecycle-controller,taint-eviction-controller,resourcequota-controller,clusterrole-aggregation-controller,service-cidr-controller,validatingadmissionpolicy-status-controller \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--cluster-name "$(basename "$D")" --profiling=false --v=1

spawn kube-scheduler "$bin/kube-scheduler" \
	--kubeconfig "$pki/kube-scheduler.kubeconfig" \
	--authentication-kubeconfig "$pki/kube-scheduler.kubeconfig" --authorization-kubeconfig "$pki/kube-scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$sched_port" \
	--tls-cert-file "$pki/kcm-serving.crt" --tls-private-key-file "$pki/kcm-serving.key" \
	--leader-elect=false --profiling=false --v=1

# The images the node gets (images.sh builds them once and caches them): "REF ARCHIVE" lines.
"$here/images.sh" pause pgbouncer coredns ${UP_EXTRA_IMAGES:-} > "$D/images"
# The node's own wait starts now: building an image (the operator's after a Dockerfile change took
# 132 s) is not the cluster starting, and used to eat the whole budget before the kubelet ran.
deadline=$(( $(date +%s) + timeout_s ))
"$here/node.sh" start "$D" $(awk '{print $2}' "$D/images" | sort -u)
containerd_sock="$D/node/containerd.sock"

wait_for "kube-controller-manager /healthz" curl -sSf --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$kcm_port/healthz"
wait_for "kube-scheduler /healthz" curl -sSf --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$sched_port/healthz"
node_ready() { [[ "$(api /api/v1/nodes/local | jq -r '.status.conditions[] | select(.type == "Ready") | .status')" == True ]]; }
wait_for "node local Ready" node_ready
wait_for "serviceaccount default/default" api /api/v1/namespaces/default/serviceaccounts/default
wait_for "configmap default/kube-root-ca.crt" api /api/v1/namespaces/default/configmaps/kube-root-ca.crt

# Cluster DNS: CoreDNS as a Deployment behind the kube-dns Service, as in a user's cluster.
sed -e "s|@DNS_IP@|$dns_ip|g" -e "s|@COREDNS_IMAGE@|$(awk '$1 ~ "/coredns:" {print $1}' "$D/images")|g" \
	"$here/testdata/coredns.yaml" > "$D/coredns.yaml"
kubectl_() { kubectl --kubeconfig "$D/kubeconfig" "$@"; }
wait_for "the CoreDNS manifest applied" kubectl_ apply -f "$D/coredns.yaml"
wait_for "CoreDNS available" kubectl_ -n kube-system wait --for=condition=Available deployment/coredns --timeout=5s

cat > "$D/env" <<EOF
export KUBECONFIG=$D/kubeconfig
CLUSTER_DIR=$D
API_SERVER=https://$host_ip:$api_port
API_PORT=$api_port
ETCD_PORT=$etcd_port
KCM_PORT=$kcm_port
# The host's address as pods see it: PostgreSQL for the pools listens here.
HOST_IP=$host_ip
NODE_NAME=local
NODE_IP=$node_ip
NODE_NETNS=$netns
POD_CIDR=$pod_cidr
SERVICE_CIDR=$svc_cidr
DNS_IP=$dns_ip
CONTAINERD_SOCK=$containerd_sock
K8S_VERSION=$k8s_version
EOF
ok=1
printf 'up.sh: cluster %s ready in %.1fs: API https://%s:%s, pods on %s, Services on %s, KUBECONFIG=%s/kubeconfig\n' \
	"$D" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$host_ip" "$api_port" "$pod_cidr" "$svc_cidr" "$D" >&2
