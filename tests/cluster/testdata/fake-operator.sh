#!/bin/sh
# Stand-in for the poolkeeper binary, used only by the harness test of localkubelet's image table: it checks
# what an in-cluster operator relies on (projected service-account token, CA and namespace under
# $POOLKEEPER_SERVICEACCOUNT_DIR, KUBERNETES_SERVICE_HOST/PORT) by calling the real API server with them.
set -u
sa="${POOLKEEPER_SERVICEACCOUNT_DIR:?not set}"
api="https://${KUBERNETES_SERVICE_HOST:?}:${KUBERNETES_SERVICE_PORT:?}"
ns="$(cat "$sa/namespace")"
echo "args: $*"
echo "namespace: $ns"
call() { curl -sS --max-time 10 --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" "$@"; }
echo "whoami: $(call -X POST -H 'Content-Type: application/json' "$api/apis/authentication.k8s.io/v1/selfsubjectreviews" \
	-d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' | tr -d ' \n')"
echo "configmaps: $(call -o /dev/null -w '%{http_code}' "$api/api/v1/namespaces/$ns/configmaps")"
echo "secrets: $(call -o /dev/null -w '%{http_code}' "$api/api/v1/namespaces/$ns/secrets")"
trap 'echo "got SIGTERM"; exit 0' TERM
while :; do sleep 1; done
