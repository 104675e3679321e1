#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier: unit, postgres (real PostgreSQL and
# PgBouncer), lint (format, clang-tidy, Go vet), fuzz (libFuzzer targets, bounded time), the
# examples' verdicts, the docs checks, docs/getting-started.md run command by command
# (scripts/demo.sh included), the cluster tiers (a real local control plane), and the unit/postgres
# tiers again under the sanitizers.
# Ends with one line "N passed, M failed" over all tiers; exits non-zero on any failure.
source "$(dirname "$0")/lib.sh"

bash "$REPO_ROOT/scripts/setup.sh" --all
bash "$REPO_ROOT/scripts/build.sh"

passed=0
failed=0
failed_tiers=()
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

# Adds the counts a tier printed ("N passed, M failed" or ctest's summary) to the totals.
count() {
  local tier=$1 status=$2 output=$3 p f
  if line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$output" | tail -n 1) && [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  elif line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$output" | tail -n 1) && [ -n "$line" ]; then
    f=$(echo "$line" | sed -E 's/.*tests passed, ([0-9]+) tests failed out of.*/\1/')
    p=$(( $(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/') - f ))
  else
    p=0; f=1
  fi
  [ "$status" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_tiers+=("$tier")
  [ "$f" -eq 0 ] || failure_lines "$tier" "$output" >>"$results/failures"
  log "$tier: $p passed, $f failed"
}

# A failed tier's failing tests and their messages, for the summary at the end: a CI log is often read
# from its tail only. Shell tiers print "FAIL ..." (a cluster test's reason as "    FAIL: ..."), ctest
# "N - Name (Failed)"; each line is cut to 300 characters.
failure_lines() {
  local tier=$1 output=$2
  grep -E '^(FAIL|    FAIL:)|^[[:space:]]*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception)\)' "$output" |
    head -n 40 | cut -c1-300 | sed "s/^/  $tier: /"
}

run_tier() {
  local tier=$1; shift
  log "tier: $tier"
  local status=0
  "$@" 2>&1 | tee "$results/$tier.log" || status=$?
  count "$tier" "$status" "$results/$tier.log"
}

run_tier unit ctest --test-dir "$BUILD_DIR" -L unit --no-tests=error --output-on-failure -j2
if ctest --test-dir "$BUILD_DIR" -N -L postgres | grep -q "Total Tests: [1-9]"; then
  run_tier postgres ctest --test-dir "$BUILD_DIR" -L postgres --output-on-failure
fi
run_tier lint bash "$REPO_ROOT/scripts/lint.sh"
# libFuzzer targets (clang-19, ASan+UBSan, build-fuzz/) for a bounded time each: tests/fuzz/README.md.
run_tier fuzz bash "$REPO_ROOT/tests/fuzz/run.sh"
if [ -f "$REPO_ROOT/tests/examples_test.sh" ]; then
  run_tier examples bash "$REPO_ROOT/tests/examples_test.sh" "$BUILD_DIR/poolkeeper"
fi
if [ -f "$REPO_ROOT/tests/docs_test.sh" ]; then run_tier docs bash "$REPO_ROOT/tests/docs_test.sh"; fi
if [ -f "$REPO_ROOT/tests/getting_started_test.sh" ]; then
  run_tier getting-started bash "$REPO_ROOT/tests/getting_started_test.sh" "$BUILD_DIR/poolkeeper"
fi
if [ -f "$REPO_ROOT/tests/cluster/test.sh" ]; then
  run_tier cluster bash "$REPO_ROOT/tests/cluster/test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/install_test.sh" ]; then
  run_tier install bash "$REPO_ROOT/tests/cluster/install_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/operator_test.sh" ]; then
  run_tier operator bash "$REPO_ROOT/tests/cluster/operator_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/server_test.sh" ]; then
  run_tier server bash "$REPO_ROOT/tests/cluster/server_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/auth_query_test.sh" ]; then
  run_tier authquery bash "$REPO_ROOT/tests/cluster/auth_query_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/tls_test.sh" ]; then
  run_tier tls bash "$REPO_ROOT/tests/cluster/tls_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/agent_test.sh" ]; then
  run_tier agent bash "$REPO_ROOT/tests/cluster/agent_test.sh"
fi
if [ -f "$REPO_ROOT/tests/cluster/chaos_test.sh" ]; then
  run_tier chaos bash "$REPO_ROOT/tests/cluster/chaos_test.sh"
fi
# The sanitizers, each on its own build (build-asan/, build-tsan/).
run_tier asan bash "$REPO_ROOT/scripts/sanitize.sh" address
run_tier tsan bash "$REPO_ROOT/scripts/sanitize.sh" thread

if [ "${#failed_tiers[@]}" -gt 0 ]; then
  log "failed tiers: ${failed_tiers[*]}"
  cat "$results/failures" 2>/dev/null
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
