#!/usr/bin/env bash
# Runs `poolkeeper check` on every example and asserts the exit code the docs promise
# (docs/reference-setups.md, docs/budget.md): 0 within budget, 1 over budget.
# Usage: tests/examples_test.sh PATH/TO/poolkeeper
# Prints one line per example and ends with exactly "N passed, M failed"; exits non-zero on failure.
set -u

POOLKEEPER=${1:?usage: $0 PATH/TO/poolkeeper}
EXAMPLES_DIR="$(cd "$(dirname "$0")/../examples" && pwd)"

# file                                   expected exit   verdict in the docs
EXPECTED=(
  "quickstart.yaml                       0  # (2+1) x 5 = 15 <= 15"
  "fastapi-replica-split.yaml            0  # primary and replica: (1+1) x 20 = 40 <= 87"
  "django-transaction-reserve.yaml       0  # (1+1) x (25+5) = 60 <= 87"
  "fastapi-asyncpg-replicas.yaml         0  # primary 90 <= 157; replica 90 > 77, derived cap 38: 76 <= 77"
  "fastapi-session-mode-rls.yaml         0  # (1+1) x 20 = 40 <= 97, SessionModeQueueing warning"
  "railway-psycopg2-20-connections.yaml  1  # (1+1) x 20 = 40 > 15, BudgetExceeded"
  "auth-query.yaml                       0  # authQuery: (1+1) x ((40+10) caps + (10+10) auth user) = 140 <= 177"
  "shared-server.yaml                    0  # PostgresServer orders-db: 75 + 40 (analytics quota 40) = 115 <= 177"
  "tls.yaml                              0  # (2+1) x 10 = 30 <= 87, client TLS and verify-full to the server"
)

passed=0
failed=0

if [ ! -x "$POOLKEEPER" ]; then
  echo "FAIL poolkeeper binary not found or not executable: $POOLKEEPER"
  echo "0 passed, 1 failed"
  exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

declare -A listed=()
for entry in "${EXPECTED[@]}"; do
  read -r file want _ <<<"$entry"
  listed[$file]=1
  path="$EXAMPLES_DIR/$file"
  if [ ! -f "$path" ]; then
    echo "FAIL $file: missing"
    failed=$((failed + 1))
    continue
  fi
  "$POOLKEEPER" check -f "$path" >"$out" 2>&1
  got=$?
  if [ "$got" -eq "$want" ]; then
    echo "ok   $file: exit $got"
    passed=$((passed + 1))
  else
    echo "FAIL $file: exit $got, expected $want"
    sed 's/^/     | /' "$out"
    failed=$((failed + 1))
  fi
done

# Every example must have a verdict here, so a new one cannot go untested.
for path in "$EXAMPLES_DIR"/*.yaml; do
  file=$(basename "$path")
  if [ -z "${listed[$file]:-}" ]; then
    echo "FAIL $file: no expected exit code in tests/examples_test.sh"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
