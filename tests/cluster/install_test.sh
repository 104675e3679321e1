#!/usr/bin/env bash
# tests/cluster/install_test.sh — the install surfaces on a real local cluster (up.sh: control plane, kubelet,
# containerd, see tests/cluster/README.md), driven by the pinned kubectl 1.35 and helm 4:
#   - the CRD is accepted by the API server, and it and the operator's validator (`poolkeeper check`) both refuse
#     every entry of the shared table tests/unit/api/testdata/invalid_pools.yaml; every example is accepted, and
#     applying it again changes nothing (kubectl diff empty);
#   - helm lint; the chart's CRD equals crds/ and manifests/ equals the chart (scripts/gen-manifests.sh --check);
#   - helm install / upgrade (changed values) / uninstall with --wait, cluster-wide and namespaced: the operator
#     runs in-cluster (the chart's image ghcr.io/poolkeeper/poolkeeper:<appVersion>, built from the repository's
#     Dockerfile by images.sh on this run and imported into the node), holds its Lease, reconciles a pool to Ready
#     with only the chart's RBAC (its pods running the pooler agent, on by default, which the operator reaches on
#     the pod IPs: status.live), its admission webhook refuses an overrun that kubectl applies, and its
#     ServiceAccount is allowed exactly what it needs and refused the rest (kubectl auth can-i --as);
#   - /metrics answers only tokens that RBAC allows (TokenReview + SubjectAccessReview against this API server): none
#     401, a ServiceAccount's token without the poolkeeper-metrics-reader binding 403, with it 200; the chart's
#     NetworkPolicy as rendered (its enforcement is not tested: the test node's bridge CNI enforces no policy);
#   - kubectl apply -k manifests/ and delete -k.
# Exits non-zero on failure; the last line is "N passed, M failed". KEEP=1 keeps the work directory.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=install source "$here/lib.sh"
POOLKEEPER="$repo/build/poolkeeper" # the CLI whose validator the CRD must agree with, and the in-cluster operator
[[ -x "$POOLKEEPER" ]] || { echo "$POOLKEEPER is not built (scripts/build.sh)"; echo "0 passed, 1 failed"; exit 1; }
C="$work/c"
chart="$repo/helm/poolkeeper"
operator_image="ghcr.io/poolkeeper/poolkeeper:$(sed -n 's/^appVersion: *"\(.*\)"/\1/p' "$chart/Chart.yaml")"
crd="$repo/crds/poolkeeper.io_connectionpools.yaml"
REL=poolkeeper                 # release name: objects are named "poolkeeper"
NS=poolkeeper-system           # release namespace
SA="system:serviceaccount:$NS:poolkeeper"

cleanup() {
	trap - EXIT INT TERM
	"$here/down.sh" "$C" >/dev/null 2>&1
	stop_postgres
	finish_work
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
watchdog 900
k() { kubectl --kubeconfig "$C/kubeconfig" "$@"; }
h() { helm --kubeconfig "$C/kubeconfig" "$@"; }

# YAML to JSON without a YAML library on the host: helm's fromYaml/fromYamlArray (sigs.k8s.io/yaml) and toJson.
y2j_chart="$work/yaml2json"
mkdir -p "$y2j_chart/templates"
printf 'apiVersion: v2\nname: yaml2json\nversion: 0.1.0\n' > "$y2j_chart/Chart.yaml"
cat > "$y2j_chart/templates/out.yaml" <<'EOF'
apiVersion: v1
kind: YamlToJson
json: {{ if .Values.array }}{{ .Values.doc | fromYamlArray | toJson }}{{ else }}{{ .Values.doc | fromYaml | toJson }}{{ end }}
EOF
y2j() { # FILE [helm flags]: the YAML document (or, with --set array=true, the YAML list) in FILE as one JSON line
	helm template y2j "$y2j_chart" --set-file doc="$1" "${@:2}" | sed -n 's/^json: //p'
}
# RFC 7386 JSON merge patch (null deletes a key), as the unit test applies each case to valid_pool.yaml.
MERGE_PATCH='def mp($p): if ($p|type) == "object" then (if type == "object" then . else {} end) as $t
  | reduce ($p|to_entries[]) as $e ($t; if $e.value == null then del(.[$e.key]) else .[$e.key] = (.[$e.key] | mp($e.value)) end)
  else $p end; mp($p)'

# ---------------------------------------------------------------------------------------------------------------
test_cluster_up() {
	UP_EXTRA_IMAGES=operator "$here/up.sh" "$C" >&2
	k wait --for=condition=Ready node/local --timeout=30s >/dev/null
}

test_crd_accepted() {
	k apply --server-side --field-manager=install-test -f "$repo/crds/" >/dev/null
	k wait --for=condition=Established crd/connectionpools.poolkeeper.io crd/postgresservers.poolkeeper.io --timeout=30s >/dev/null
	# The API server found nothing to refuse in the schemas (CEL compiled within its cost budget, structural).
	local bad
	bad=$(k get crd connectionpools.poolkeeper.io postgresservers.poolkeeper.io -o json |
		jq -r '.items[].status.conditions[] | select(.type == "NonStructuralSchema" or ((.type == "NamesAccepted" or .type == "Established") and .status != "True")) | .type + ": " + .message')
	[[ -z "$bad" ]] || fail "CRD conditions: $bad"
	# Short name, category, printer columns and the scale subresource, on a real pool.
	k create namespace default-pools >/dev/null
	sed 's/namespace: default/namespace: default-pools/' "$repo/examples/quickstart.yaml" | k apply -f - >/dev/null
	k -n default-pools get cpool app >/dev/null
	k -n default-pools get poolkeeper -o name | has -x connectionpool.poolkeeper.io/app || fail "category poolkeeper"
	local header=$(k -n default-pools get connectionpools | head -1)
	for col in NAME READY INSTANCES MODE ALLOCATED USABLE BUDGET AGE; do
		[[ $header == *"$col"* ]] || fail "printer column $col missing: $header"
	done
	k -n default-pools scale connectionpool app --replicas=3 >/dev/null
	[[ "$(k -n default-pools get cpool app -o jsonpath='{.spec.pooler.instances}')" == 3 ]] || fail "kubectl scale did not set spec.pooler.instances"
	# Server fields are immutable (the pool's budget is booked on that server).
	local out
	out=$(k -n default-pools patch cpool app --type=merge -p '{"spec":{"server":{"host":"other.example"}}}' 2>&1) && fail "host changed"
	grep -q "immutable" <<<"$out" || fail "unexpected error: $out"
	# Defaults from the schema.
	[[ "$(k -n default-pools get cpool app -o jsonpath='{.spec.budget.policy}/{.spec.server.reservedConnections}')" == "Enforce/0" ]] || fail "schema defaults"
	k delete namespace default-pools --wait=true --timeout=60s >/dev/null
}

# Entries of the shared table the API server cannot refuse, with the reason (none today). Format: "case name".
declare -A SCHEMA_EXCEPTIONS=(
	# A typo'd field ("unknown pooler field") is refused because kubectl, Helm 4 and Argo CD/Flux send
	# fieldValidation=Strict; a client that sends Ignore gets it pruned silently instead (structural schemas prune).
	# The test uses --validate=strict, so it is not an exception.
)
test_crd_and_validator_refuse_the_same_inputs() {
	local base cases n i c name patch out krc prc refused_both=0 exceptions=0
	base=$(y2j "$repo/tests/unit/api/testdata/valid_pool.yaml")
	cases=$(y2j "$repo/tests/unit/api/testdata/invalid_pools.yaml" --set array=true)
	n=$(jq length <<<"$cases")
	(( n > 40 )) || fail "only $n cases in invalid_pools.yaml"
	local ns=$(jq -r .metadata.namespace <<<"$base")
	k create namespace "$ns" >/dev/null
	# The base itself is valid for both: otherwise every refusal below would prove nothing.
	echo "$base" > "$work/base.json"
	k apply --dry-run=server --validate=strict -f "$work/base.json" >/dev/null || fail "API server refuses valid_pool.yaml"
	"$POOLKEEPER" check -f "$work/base.json" >/dev/null || fail "poolkeeper check refuses valid_pool.yaml"
	for ((i = 0; i < n; i++)); do
		c=$(jq -c ".[$i]" <<<"$cases")
		name=$(jq -r .case <<<"$c")
		patch=$(jq -c .patch <<<"$c")
		jq --argjson p "$patch" "$MERGE_PATCH" "$work/base.json" > "$work/case.json"
		out=$(k apply --dry-run=server --validate=strict -f "$work/case.json" 2>&1) && krc=0 || krc=$?
		"$POOLKEEPER" check -f "$work/case.json" >/dev/null 2>&1 && prc=0 || prc=$?
		if [[ $prc != 2 ]]; then
			fail "poolkeeper check exit $prc (want 2, invalid input) for: $name"
		fi
		if [[ $krc == 0 ]]; then
			if [[ -n "${SCHEMA_EXCEPTIONS[$name]+x}" ]]; then
				exceptions=$((exceptions + 1)); log "exception (schema accepts): $name"
				continue
			fi
			fail "API server accepts: $name ($patch)"
		fi
		# A refusal by the server, not a client-side error (an unserved apiVersion is the one the client sees first).
		grep -qE 'is invalid|BadRequest|strict decoding error|no matches for kind' <<<"$out" || fail "$name: unexpected error: $out"
		refused_both=$((refused_both + 1))
	done
	[[ ${#SCHEMA_EXCEPTIONS[@]} == "$exceptions" ]] || fail "an exception listed in SCHEMA_EXCEPTIONS is now refused: remove it"
	log "$refused_both of $n bad inputs refused by both the API server and poolkeeper check ($exceptions exceptions)"
	k delete namespace "$ns" --wait=true --timeout=60s >/dev/null
}

test_examples_accepted_and_reapplied_unchanged() {
	local f n=0 ns
	for ns in $(cat "$repo"/examples/*.yaml | sed -n 's/^  namespace: *//p' | sort -u); do
		k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
	done
	for f in "$repo"/examples/*.yaml; do
		k apply --dry-run=server --validate=strict -f "$f" >/dev/null || fail "API server refuses $f"
		n=$((n + 1))
	done
	log "$n examples accepted (server dry-run)"
	# GitOps: applied twice, the second apply changes no ConnectionPool, and kubectl diff is empty. (A Secret written
	# with stringData is always reported "configured" by client-side apply, a kubectl quirk: Secrets are left out.)
	for f in "$repo"/examples/*.yaml; do
		k apply -f "$f" >/dev/null || fail "apply $f"
		local again=$(k apply -f "$f" | grep '^connectionpool')
		[[ -z "$(grep -v ' unchanged$' <<<"$again")" ]] || fail "second apply of $f: $again"
		k diff -f "$f" >/dev/null || fail "kubectl diff $f after apply: $(k diff -f "$f")"
		k apply --server-side --field-manager=gitops -f "$f" >/dev/null || fail "server-side apply $f"
		local gen=$(k get -f "$f" -o jsonpath='{range .items[*]}{.metadata.generation} {end}')
		k apply --server-side --field-manager=gitops -f "$f" >/dev/null
		[[ "$(k get -f "$f" -o jsonpath='{range .items[*]}{.metadata.generation} {end}')" == "$gen" ]] || fail "server-side re-apply of $f bumped a generation"
		k delete -f "$f" --wait=true --timeout=60s >/dev/null
	done
	# Clean for the install tests: helm must create the CRD itself.
	k delete crd connectionpools.poolkeeper.io --wait=true --timeout=60s >/dev/null
}

test_helm_lint() {
	helm lint --strict "$chart" >/dev/null || { helm lint --strict "$chart"; fail "helm lint (defaults)"; }
	helm lint --strict "$chart" --set 'watchNamespaces={team-a,team-b}' --set replicas=2 >/dev/null || fail "helm lint (namespaced, 2 replicas)"
	# The values schema refuses what the operator would refuse.
	! helm template x "$chart" --set logFormat=xml >/dev/null 2>&1 || fail "values.schema.json accepts logFormat=xml"
	! helm template x "$chart" --set replicas=2 --set leaderElection.enabled=false >/dev/null 2>&1 || fail "2 replicas without leader election rendered"
	! helm template x "$chart" --set no.such=value >/dev/null 2>&1 || fail "values.schema.json accepts an unknown key"
	! helm template x "$chart" --set defaultPgbouncerImage=registry.example/pgbouncer:1.18.0 >/dev/null 2>&1 || fail "default image without its version rendered"
	helm template x "$chart" --set defaultPgbouncerImage=registry.example/pgbouncer:1.18.0 --set defaultPgbouncerVersion=1.18 |
		has -- '--default-pgbouncer-version=1.18' || fail "--default-pgbouncer-version not passed"
	lacks '--default-pgbouncer' helm template x "$chart" || fail "default-pgbouncer flags passed while unset"
	# The pod policy: lists joined into one flag each, defaults (nothing passed) refuse.
	helm template x "$chart" --set 'allowedPoolerImages={localhost/poolkeeper-test/*,ghcr.io/team/pgbouncer}' \
		--set 'allowedPriorityClasses={system-cluster-critical}' --set allowBlanketTolerations=true >"$work/policy.yaml"
	has -x -- ' *- --allowed-pooler-images=localhost/poolkeeper-test/\*,ghcr.io/team/pgbouncer' <"$work/policy.yaml" || fail "--allowed-pooler-images not passed"
	has -x -- ' *- --allowed-priority-classes=system-cluster-critical' <"$work/policy.yaml" || fail "--allowed-priority-classes not passed"
	has -x -- ' *- --allow-blanket-tolerations' <"$work/policy.yaml" || fail "--allow-blanket-tolerations not passed"
	lacks '--allow' helm template x "$chart" || fail "pod policy flags passed while unset"
	! helm template x "$chart" --set 'allowedPriorityClasses={high-priority}' >/dev/null 2>&1 || fail "a non-system priority class accepted"
	! helm template x "$chart" --set 'allowedPoolerImages={a b}' >/dev/null 2>&1 || fail "an image rule with a space accepted"
	# The pooler agent: on by default, from the operator's image unless agent.image names another; off passes nothing.
	helm template x "$chart" | has -x -- " *- --agent-image=$operator_image" || fail "--agent-image=$operator_image not passed by default"
	helm template x "$chart" --set agent.image=registry.example/agent:1 | has -x -- ' *- --agent-image=registry.example/agent:1' ||
		fail "--agent-image not agent.image"
	lacks '--agent-image' helm template x "$chart" --set agent.enabled=false || fail "--agent-image passed with agent.enabled=false"
	chart_renders_network_policy_and_metrics_auth
}

# The chart's NetworkPolicy and /metrics protection as rendered (the bridge CNI of the test node enforces no
# NetworkPolicy, so what it admits is checked here, on the object, and by the API server accepting it at install).
chart_renders_network_policy_and_metrics_auth() {
	local np want
	helm template x "$chart" -s templates/networkpolicy.yaml > "$work/np.yaml" || fail "NetworkPolicy not rendered by default"
	np=$(y2j "$work/np.yaml")
	want='{"podSelector":{"matchLabels":{"app.kubernetes.io/component":"operator","app.kubernetes.io/instance":"x","app.kubernetes.io/name":"poolkeeper"}},"policyTypes":["Ingress"],"ingress":[{"ports":[{"port":8080,"protocol":"TCP"}],"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]},{"ports":[{"port":9443,"protocol":"TCP"}]}]}'
	[[ "$(jq -cS .spec <<<"$np")" == "$(jq -cS . <<<"$want")" ]] || fail "NetworkPolicy spec: $(jq -c .spec <<<"$np")"
	[[ "$(jq -r .spec.egress <<<"$np")" == null ]] || fail "NetworkPolicy restricts egress"
	# metricsFrom as given; webhook off: only the HTTP port; neither: no ingress at all (not every source).
	helm template x "$chart" -s templates/networkpolicy.yaml --set webhook.enabled=false \
		--set 'networkPolicy.metricsFrom[0].podSelector.matchLabels.app=prometheus' > "$work/np.yaml"
	[[ "$(y2j "$work/np.yaml" | jq -c .spec.ingress)" == '[{"from":[{"podSelector":{"matchLabels":{"app":"prometheus"}}}],"ports":[{"port":8080,"protocol":"TCP"}]}]' ]] ||
		fail "NetworkPolicy with metricsFrom podSelector: $(y2j "$work/np.yaml" | jq -c .spec.ingress)"
	helm template x "$chart" -s templates/networkpolicy.yaml --set webhook.enabled=false --set 'networkPolicy.metricsFrom=null' > "$work/np.yaml"
	[[ "$(y2j "$work/np.yaml" | jq -c .spec.ingress)" == '[]' ]] || fail "NetworkPolicy with no peers: $(y2j "$work/np.yaml" | jq -c .spec.ingress)"
	lacks 'kind: NetworkPolicy' helm template x "$chart" --set networkPolicy.enabled=false || fail "NetworkPolicy rendered while disabled"
	! helm template x "$chart" --set 'networkPolicy.metricsFrom[0].nodeName=n' >/dev/null 2>&1 || fail "values.schema.json accepts a peer that is not one"
	# metrics.auth: kubernetes by default (the flag, the review rights, the reader role), none on request.
	helm template x "$chart" | has -- '--metrics-auth=kubernetes' || fail "--metrics-auth=kubernetes not passed"
	helm template x "$chart" | has 'name: x-poolkeeper-metrics-auth$' || fail "no metrics-auth ClusterRole"
	helm template x "$chart" | has 'name: x-poolkeeper-metrics-reader$' || fail "no metrics-reader ClusterRole"
	helm template x "$chart" --set metrics.auth=none | has -- '--metrics-auth=none' || fail "--metrics-auth=none not passed"
	lacks 'metrics-auth$' helm template x "$chart" --set metrics.auth=none || fail "review rights granted with metrics.auth=none"
	! helm template x "$chart" --set metrics.auth=open >/dev/null 2>&1 || fail "values.schema.json accepts metrics.auth=open"
}

test_manifests_and_chart_crd_in_sync() {
	"$repo/scripts/gen-manifests.sh" --check >&2 || fail "run scripts/gen-manifests.sh"
	cmp -s "$crd" "$chart/crds/$(basename "$crd")" || fail "helm/poolkeeper/crds differs from crds/"
}

# can-i VERB RESOURCE [flags]: the operator's ServiceAccount's answer (yes/no).
can_i() { k auth can-i --as="$SA" "$@" 2>/dev/null || true; }
expect_yes() { local ans=$(can_i "$@"); [[ $ans == yes ]] || fail "operator may not: $* ($ans)"; }
expect_no() { local ans=$(can_i "$@"); [[ $ans == no ]] || fail "operator may: $* ($ans)"; }
# What the operator needs, verb by verb, in a namespace it watches ($@: -n NS or --all-namespaces).
expect_operator_rights() {
	local v r
	for v in get list watch patch; do expect_yes "$v" connectionpools.poolkeeper.io "$@"; done
	for v in get list watch create delete; do expect_yes "$v" pods "$@"; done
	for v in get update patch; do expect_yes "$v" connectionpools.poolkeeper.io --subresource=status "$@"; done
	expect_yes update connectionpools.poolkeeper.io --subresource=finalizers "$@"
	for r in configmaps secrets services poddisruptionbudgets.policy; do
		for v in get list watch create update patch delete; do expect_yes "$v" "$r" "$@"; done
	done
	for r in events events.events.k8s.io; do
		for v in create patch; do expect_yes "$v" "$r" "$@"; done
	done
}
# What it must not do there.
expect_operator_refusals() {
	local v r
	for v in create update delete deletecollection; do expect_no "$v" connectionpools.poolkeeper.io "$@"; done
	for v in get list delete; do expect_no "$v" events "$@"; done
	expect_no deletecollection configmaps "$@"
	expect_no deletecollection secrets "$@"
	for v in update patch deletecollection; do expect_no "$v" pods "$@"; done
	for r in deployments.apps replicasets.apps statefulsets.apps serviceaccounts roles.rbac.authorization.k8s.io rolebindings.rbac.authorization.k8s.io \
		persistentvolumeclaims endpoints jobs.batch networkpolicies.networking.k8s.io; do
		expect_no list "$r" "$@"
		expect_no create "$r" "$@"
	done
	expect_no get pods --subresource=exec "$@"
	expect_no create pods --subresource=exec "$@"
	expect_no get pods --subresource=log "$@"
	expect_no get leases.coordination.k8s.io "$@"
}
expect_cluster_refusals() {
	local r
	for r in nodes namespaces customresourcedefinitions.apiextensions.k8s.io clusterroles.rbac.authorization.k8s.io \
		clusterrolebindings.rbac.authorization.k8s.io persistentvolumes validatingwebhookconfigurations.admissionregistration.k8s.io; do
		expect_no list "$r"
		expect_no create "$r"
	done
	# --metrics-auth=kubernetes asks the API server who a scraper is and what it may do; nothing more.
	expect_yes create tokenreviews.authentication.k8s.io
	expect_yes create subjectaccessreviews.authorization.k8s.io
	expect_no create certificatesigningrequests.certificates.k8s.io
	expect_no impersonate serviceaccounts
	expect_no '*' '*' --all-namespaces
}
# Leader election: create a Lease in the release namespace, get/update only the named one, nothing else.
expect_lease_rights() {
	expect_yes create leases.coordination.k8s.io -n "$NS"
	expect_yes get leases.coordination.k8s.io/poolkeeper-leader -n "$NS"
	expect_yes update leases.coordination.k8s.io/poolkeeper-leader -n "$NS"
	expect_no update leases.coordination.k8s.io/someone-else -n "$NS"
	expect_no delete leases.coordination.k8s.io/poolkeeper-leader -n "$NS"
	expect_no list leases.coordination.k8s.io -n "$NS"
	expect_no create leases.coordination.k8s.io -n kube-system
}

# The operator pods of the release: running the chart's image, Ready through the chart's HTTP probes on the pod IP,
# one of them holding the Lease, none refused anything by the API server.
operator_log() { k -n "$NS" logs "$1" -c operator; } # POD: its container's log
operator_pods() { k -n "$NS" get pods -l app.kubernetes.io/instance=$REL,app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}'; }
lease_holder() { k -n "$NS" get lease poolkeeper-leader -o jsonpath='{.spec.holderIdentity}'; }
lease_held_by_a_pod() { local h=$(lease_holder); [[ -n $h && " $(operator_pods) " == *" $h "* ]]; }
check_operator_pods() {
	local pod ip lg n=0
	for pod in $(operator_pods); do
		n=$((n + 1))
		[[ "$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].image}')" == "$operator_image" ]] ||
			fail "$pod: image $(k -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].image}'), not $operator_image"
		[[ "$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].ready}')" == true ]] || fail "$pod: not ready"
		ip=$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.podIP}')
		lg=$(operator_log "$pod")
		grep -q "$pod" <<<"$lg" || fail "$pod: identity (POD_NAME) not in its log: $lg"
		grep -q "$ip:8080" <<<"$lg" || fail "$pod: --http-address not the pod IP: $lg"
		! grep -qiE 'forbidden|"code":"?403| 403 ' <<<"$lg" || fail "$pod: refused by the API server: $(grep -iE 'forbidden|403' <<<"$lg" | head -3)"
		metrics_need_an_allowed_token "$pod" "$ip"
		curl -sf --max-time 5 "http://$ip:8080/healthz" >/dev/null || fail "$pod: /healthz"
	done
	(( n > 0 )) || fail "no operator pod"
	poll 30 lease_held_by_a_pod || fail "Lease $NS/poolkeeper-leader held by '$(lease_holder)', not by one of: $(operator_pods)"
}
# Scrapers: ServiceAccounts in namespace scrapers, prom bound to the chart's poolkeeper-metrics-reader, nobody not.
scrapers_set_up() {
	k get namespace scrapers >/dev/null 2>&1 && return
	k create namespace scrapers >/dev/null
	k -n scrapers create serviceaccount prom >/dev/null
	k -n scrapers create serviceaccount nobody >/dev/null
	k create clusterrolebinding prom-reads-poolkeeper-metrics --clusterrole=poolkeeper-metrics-reader --serviceaccount=scrapers:prom >/dev/null
	k -n scrapers create token prom --duration=1h > "$work/prom.token"
	k -n scrapers create token nobody --duration=1h > "$work/nobody.token"
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
# POD IP: /metrics of the operator pod answers as the real API server's TokenReview and SubjectAccessReview say;
# the probes need no token and say nothing but ok.
metrics_need_an_allowed_token() {
	local pod=$1 url="http://$2:8080/metrics" got
	scrapers_set_up
	[[ $(http_code "$url") == 401 ]] || fail "$pod: /metrics without a token: $(http_code "$url")"
	[[ $(http_code -H "Authorization: Bearer not-a-token" "$url") == 401 ]] || fail "$pod: /metrics with a bad token"
	got=$(http_code -H "Authorization: Bearer $(cat "$work/nobody.token")" "$url")
	[[ $got == 403 ]] || fail "$pod: /metrics with a token of a ServiceAccount not bound to poolkeeper-metrics-reader: $got"
	curl -sf --max-time 10 -H "Authorization: Bearer $(cat "$work/prom.token")" "$url" | has '^poolkeeper_' ||
		fail "$pod: /metrics with the bound ServiceAccount's token: $(http_code -H "Authorization: Bearer $(cat "$work/prom.token")" "$url")"
	[[ "$(curl -sf --max-time 5 "http://$2:8080/healthz")" == ok ]] || fail "$pod: /healthz without a token"
}
# pool_ready NS: the quickstart pool, applied in NS, reconciled by the operator to Ready (Deployment, Service,
# ConfigMap, Secret, PDB written with the chart's RBAC); after that kubectl diff of the user's manifest is empty.
quickstart_in() { sed "s/namespace: default\$/namespace: $1/" "$repo/examples/quickstart.yaml"; }
# A second pool on the quickstart's server, which app fills: (1 + 1) x 5 more with caps declared (none to derive).
overrun_in() {
	quickstart_in "$1" | sed -e 's/^  name: app$/  name: overrun/' -e 's/^      dbname: app$/      dbname: app\n      maxDbConnections: 5/' |
		awk '/^---/{exit} {print}'
}
# The operator pod's admission webhook refuses a pool that cannot fit beside app with the arithmetic: asked directly
# over TLS with the chart's certificate (its Service's DNS name, checked against the chart's CA), and on the real
# path, kubectl apply through the API server, which calls it through its Service.
webhook_refuses_overrun() {
	local ns=$1 ip review out
	ip=$(k -n "$NS" get pods -l app.kubernetes.io/name=poolkeeper -o jsonpath='{.items[0].status.podIP}')
	k -n "$NS" get secret poolkeeper-webhook-tls -o jsonpath='{.data.ca\.crt}' | base64 -d > "$work/webhook-ca.crt"
	k get validatingwebhookconfiguration poolkeeper -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d | cmp -s - "$work/webhook-ca.crt" ||
		fail "the webhook configuration's caBundle is not the certificate's CA"
	overrun_in "$ns" > "$work/overrun.yaml"
	review=$(y2j "$work/overrun.yaml" | jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {uid: "u-1", operation: "CREATE", object: .}}')
	out=$(curl -sS --max-time 10 --cacert "$work/webhook-ca.crt" --resolve "poolkeeper-webhook.$NS.svc:9443:$ip" \
		-H 'Content-Type: application/json' -d "$review" "https://poolkeeper-webhook.$NS.svc:9443/validate-connectionpool") || fail "webhook call failed"
	[[ "$(jq -r .response.uid <<<"$out")/$(jq -r .response.allowed <<<"$out")" == u-1/false ]] || fail "webhook answer: $out"
	[[ "$(jq -r .response.status.message <<<"$out")" == "ConnectionPool $ns/overrun does not fit its server (198.18.0.1:54320): "*" remaining of 15 usable"* ]] ||
		fail "webhook message: $(jq -r .response.status.message <<<"$out")"
	out=$(k apply -f "$work/overrun.yaml" 2>&1) && fail "kubectl apply of an overrun accepted: $out"
	[[ "$out" == *'admission webhook "'*'" denied the request: ConnectionPool '"$ns"'/overrun does not fit its server'* ]] ||
		fail "kubectl apply of an overrun: $out"
}
pool_reconciled() {
	local ns=$1
	quickstart_in "$ns" | k apply -f - >/dev/null
	k -n "$ns" wait --for=condition=Ready connectionpool/app --timeout=90s >/dev/null || fail "pool in $ns not Ready: $(k -n "$ns" get cpool app -o jsonpath='{.status.conditions}')"
	[[ "$(k -n "$ns" get cpool app -o jsonpath='{.status.observedGeneration}')" == "$(k -n "$ns" get cpool app -o jsonpath='{.metadata.generation}')" ]] || fail "observedGeneration"
	k -n "$ns" get pod/app-0 pod/app-1 service/app configmap/app-config secret/app-auth pdb/app >/dev/null || fail "owned objects in $ns"
	quickstart_in "$ns" | k diff -f - >/dev/null || fail "kubectl diff after reconcile: $(quickstart_in "$ns" | k diff -f - 2>&1 | head -20)"
	pool_runs_the_agent "$ns"
}
# The chart's default (agent.enabled): every pooler pod runs the agent beside PgBouncer, from the operator's image,
# both containers ready; and the operator, in-cluster, reaches every agent on its pod IP (status.live.podsReporting).
pool_runs_the_agent() {
	local ns=$1 pods
	pods=$(k -n "$ns" get pods -l poolkeeper.io/pool=app -o json)
	jq -e --arg img "$operator_image" '(.items | length) == 2 and all(.items[];
		[.spec.containers[].name] == ["pgbouncer", "agent"] and (.spec.containers[1].image == $img) and
		(.status.containerStatuses | length) == 2 and all(.status.containerStatuses[]; .ready))' <<<"$pods" >/dev/null ||
		fail "pods in $ns: not pgbouncer and agent ($operator_image), both ready: $(jq -c '[.items[] | {name: .metadata.name,
			containers: [.spec.containers[] | {name, image}], ready: [.status.containerStatuses[]? | {name, ready}]}]' <<<"$pods")"
	eventually 60 '[[ "$(k -n "$ns" get cpool app -o jsonpath="{.status.live.podsReporting}")" == 2 ]]' ||
		fail "status.live in $ns: $(k -n "$ns" get cpool app -o jsonpath='{.status.live}') (want podsReporting 2)"
}
pool_removed() {
	local ns=$1
	quickstart_in "$ns" | k delete -f - --wait=true --timeout=60s >/dev/null
	eventually 60 '[[ -z "$(k -n "$ns" get pods,svc,cm,pdb -o name | grep -v -e kube-root-ca.crt -e service/kubernetes)" ]]' || fail "owned objects left in $ns: $(k -n "$ns" get pods,svc,cm,pdb -o name)"
}

# The pools of this test run the locally built PgBouncer: the operator must allow its repository.
allow_test_images=(--set 'allowedPoolerImages={localhost/poolkeeper-test/*}')
# Issue 12's reproduction on the real path: kubectl apply of a pool that would mount its users' passwords into an
# image of its author's choosing is denied by the chart's webhook, naming spec.pooler.image and what is allowed; so
# is one tolerating every taint. Nothing is stored.
webhook_refuses_foreign_image() {
	local ns=$1 out
	quickstart_in "$ns" | awk '/^---/{exit} {print}' | sed -e 's/^  name: app$/  name: thief/' \
		-e 's#localhost/poolkeeper-test/pgbouncer:1.18.0#attacker.example/anything:1.18#' > "$work/thief.yaml"
	has -F 'attacker.example/anything:1.18' <"$work/thief.yaml" || fail "the test's pool names no foreign image"
	out=$(k apply -f "$work/thief.yaml" 2>&1) && fail "kubectl apply of a foreign image accepted: $out"
	[[ "$out" == *'admission webhook "'*'" denied the request: ConnectionPool '"$ns"'/thief refused by the operator'"'"'s pod policy: spec.pooler.image: "attacker.example/anything:1.18" is not an allowed image (the operator allows: localhost/poolkeeper-test/*, ghcr.io/cloudnative-pg/pgbouncer:1.24.1; --allowed-pooler-images)'* ]] ||
		fail "kubectl apply of a foreign image: $out"
	! k -n "$ns" get cpool thief >/dev/null 2>&1 || fail "the refused pool was stored"
	sed -e 's#attacker.example/anything:1.18#localhost/poolkeeper-test/pgbouncer:1.18.0#' \
		-e 's/^  pooler:$/  pooler:\n    tolerations: [{operator: Exists}]/' "$work/thief.yaml" > "$work/squatter.yaml"
	out=$(k apply -f "$work/squatter.yaml" 2>&1) && fail "kubectl apply of a blanket toleration accepted: $out"
	[[ "$out" == *"denied the request: ConnectionPool $ns/thief refused by the operator's pod policy: spec.pooler.tolerations[0]: tolerates every taint"* ]] ||
		fail "kubectl apply of a blanket toleration: $out"
}

test_helm_install_cluster_wide() {
	h install "$REL" "$chart" -n "$NS" --create-namespace "${allow_test_images[@]}" --wait --timeout 120s >/dev/null
	k wait --for=condition=Established crd/connectionpools.poolkeeper.io --timeout=10s >/dev/null
	k -n "$NS" get serviceaccount/poolkeeper deployment/poolkeeper service/poolkeeper-metrics role/poolkeeper-leader-election rolebinding/poolkeeper-leader-election >/dev/null
	k get clusterrole/poolkeeper clusterrolebinding/poolkeeper >/dev/null
	[[ -z "$(k -n "$NS" get pdb -o name)" ]] || fail "PDB with 1 replica"
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath='{.status.readyReplicas}')" == 1 ]] || fail "not ready"
	local c='.spec.template.spec.containers[0]'
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath="{$c.image}")" == "$operator_image" ]] || fail "image"
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath="{$c.securityContext.readOnlyRootFilesystem}/{$c.securityContext.capabilities.drop[0]}/{.spec.template.spec.securityContext.runAsUser}")" == "true/ALL/65532" ]] || fail "securityContext"
	[[ "$(k -n "$NS" get svc poolkeeper-metrics -o jsonpath='{.spec.ports[0].port}')" == 8080 ]] || fail "metrics service"
	check_operator_pods
	# RBAC: what it needs, in any namespace, and nothing else; with it the operator brings a pool to Ready.
	k create namespace team-x >/dev/null
	pool_reconciled team-x
	webhook_refuses_overrun team-x
	webhook_refuses_foreign_image team-x
	pool_removed team-x
	expect_operator_rights -n team-x
	expect_operator_rights --all-namespaces
	expect_operator_refusals -n team-x
	expect_cluster_refusals
	expect_lease_rights
	k delete namespace team-x --wait=false >/dev/null
}

test_helm_upgrade_changed_values() {
	h upgrade "$REL" "$chart" -n "$NS" --reuse-values --set logFormat=text --set workers=2 --set replicas=2 --wait --timeout 120s >/dev/null
	[[ "$(h status "$REL" -n "$NS" -o json | jq -r .version)" == 2 ]] || fail "revision"
	local args=$(k -n "$NS" get deploy poolkeeper -o jsonpath='{.spec.template.spec.containers[0].args}')
	[[ $args == *'"--log-format=text"'* && $args == *'"--workers=2"'* ]] || fail "args not changed: $args"
	k -n "$NS" rollout status deploy/poolkeeper --timeout=60s >/dev/null
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath='{.status.readyReplicas}/{.status.updatedReplicas}')" == 2/2 ]] || fail "not 2 updated and ready"
	[[ "$(k -n "$NS" get pdb poolkeeper -o jsonpath='{.spec.minAvailable}')" == 1 ]] || fail "no PDB with 2 replicas"
	eventually 30 '[[ "$(k -n "$NS" get pods -l app.kubernetes.io/instance=$REL -o name | wc -l)" == 2 ]]' || fail "old pods left"
	check_operator_pods
	local pod=$(k -n "$NS" get pods -l app.kubernetes.io/instance=$REL -o jsonpath='{.items[0].metadata.name}')
	operator_log "$pod" | has '^ts=' || fail "new pod does not log in text (logfmt): $(operator_log "$pod" | head -3)"
}

test_helm_uninstall() {
	h uninstall "$REL" -n "$NS" --wait --timeout 120s >/dev/null
	k -n "$NS" wait --for=delete pod -l app.kubernetes.io/instance=$REL --timeout=60s >/dev/null
	[[ -z "$(k -n "$NS" get deploy,rs,pods,svc,pdb,sa,role,rolebinding -o name 2>/dev/null | grep -v serviceaccount/default)" ]] || fail "objects left in $NS"
	! k get clusterrole/poolkeeper >/dev/null 2>&1 || fail "ClusterRole left"
	! k get clusterrolebinding/poolkeeper >/dev/null 2>&1 || fail "ClusterRoleBinding left"
	# Helm never deletes CRDs (they would take every ConnectionPool with them): documented in docs/install.md.
	k get crd connectionpools.poolkeeper.io >/dev/null || fail "CRD removed by uninstall"
	expect_no list connectionpools.poolkeeper.io --all-namespaces
	k delete namespace "$NS" --wait=true --timeout=60s >/dev/null
}

test_helm_namespaced_mode() {
	k create namespace team-a >/dev/null && k create namespace team-b >/dev/null && k create namespace team-c >/dev/null
	h install "$REL" "$chart" -n "$NS" --create-namespace --set 'watchNamespaces={team-a,team-b}' "${allow_test_images[@]}" --wait --timeout 120s >/dev/null
	! k get clusterrole/poolkeeper >/dev/null 2>&1 || fail "ClusterRole in namespaced mode"
	! k get clusterrolebinding/poolkeeper >/dev/null 2>&1 || fail "ClusterRoleBinding in namespaced mode"
	k -n team-a get role/poolkeeper rolebinding/poolkeeper >/dev/null
	k -n team-b get role/poolkeeper rolebinding/poolkeeper >/dev/null
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath='{.spec.template.spec.containers[0].args}')" == *'"--namespaces=team-a,team-b"'* ]] || fail "--namespaces"
	check_operator_pods
	# It reconciles in its namespaces, and does not see (nor could touch) a pool outside them.
	pool_reconciled team-a
	quickstart_in team-c | k apply -f - >/dev/null
	sleep 3 # a negative: give the operator the time it took in team-a to act, then check it did nothing
	[[ -z "$(k -n team-c get cpool app -o jsonpath='{.status.observedGeneration}')" ]] || fail "operator reconciled a pool in team-c"
	[[ -z "$(k -n team-c get pods,configmaps -l app.kubernetes.io/managed-by=poolkeeper -o name)" ]] || fail "operator wrote into team-c"
	pool_removed team-a
	expect_operator_rights -n team-a
	expect_operator_rights -n team-b
	expect_operator_refusals -n team-a
	# Outside its namespaces: nothing at all.
	local v
	for v in get list watch; do expect_no "$v" connectionpools.poolkeeper.io -n team-c; done
	for v in get list create update delete; do
		expect_no "$v" secrets -n team-c
		expect_no "$v" configmaps -n team-c
		expect_no "$v" pods -n team-c
	done
	expect_no create events -n team-c
	expect_no list connectionpools.poolkeeper.io --all-namespaces
	expect_no list secrets --all-namespaces
	expect_no list secrets -n "$NS"
	expect_cluster_refusals
	expect_lease_rights
	h uninstall "$REL" -n "$NS" --wait --timeout 120s >/dev/null
	[[ -z "$(k -n team-a get role,rolebinding -o name)" ]] || fail "Role left in team-a"
	k delete namespace team-a team-b team-c "$NS" --wait=true --timeout=60s >/dev/null
	# The CRD Helm left behind (and still owns fields of): the plain install below brings its own.
	k delete crd connectionpools.poolkeeper.io --wait=true --timeout=60s >/dev/null
}

test_manifests_apply_k() {
	# The plain install, as GitOps users apply it: server-side, then removed again.
	k apply --server-side --field-manager=install-test -k "$repo/manifests" >/dev/null
	k -n "$NS" rollout status deploy/poolkeeper --timeout=90s >/dev/null
	check_operator_pods
	expect_operator_rights -n default
	expect_cluster_refusals
	# Applying again changes nothing.
	local out=$(k apply --server-side --field-manager=install-test -k "$repo/manifests")
	[[ -z "$(grep -v 'serverside-applied$' <<<"$out")" ]] || fail "second apply: $out"
	[[ "$(k -n "$NS" get deploy poolkeeper -o jsonpath='{.metadata.generation}')" == 1 ]] || fail "second apply changed the Deployment"
	k delete -k "$repo/manifests" --wait=true --timeout=90s >/dev/null
	! k get namespace "$NS" >/dev/null 2>&1 || fail "namespace left"
}

t0=$(date +%s)
run test_cluster_up
if [[ -f "$C/env" ]]; then
	run test_crd_accepted
	run test_crd_and_validator_refuse_the_same_inputs
	run test_examples_accepted_and_reapplied_unchanged
fi
run test_helm_lint
run test_manifests_and_chart_crd_in_sync
if [[ -f "$C/env" ]]; then
	run test_helm_install_cluster_wide
	run test_helm_upgrade_changed_values
	run test_helm_uninstall
	run test_helm_namespaced_mode
	run test_manifests_apply_k
fi
log "install_test.sh took $(( $(date +%s) - t0 ))s"
echo "$passed passed, $failed failed"
(( failed == 0 ))
