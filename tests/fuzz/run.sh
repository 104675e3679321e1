#!/usr/bin/env bash
# The fuzz tier (scripts/test.sh, tier "fuzz"; tests/fuzz/README.md): builds the targets with
# clang-19 and -fsanitize=fuzzer,address,undefined into build-fuzz/ (ccache), then runs each for a
# bounded time from its checked-in corpus. A finding (crash, sanitizer report, broken invariant,
# timeout, memory over the limit) fails the target and its input is saved under the artifacts
# directory, to be fixed and then added to tests/fuzz/corpus/<target>/.
#   tests/fuzz/run.sh [target...]       default: every target
#   POOLKEEPER_FUZZ_RUNS=20000          inputs per target: with the fixed seed the same inputs on every
#                                       machine, so a run that passed here passes in CI
#   POOLKEEPER_FUZZ_SECONDS=120         the most time per target (a slow machine runs a prefix)
#   POOLKEEPER_FUZZ_SEED=1              libFuzzer's seed: fixed, so a failing run replays the same way;
#                                       0 picks a new one each run (exploring beyond CI)
#   POOLKEEPER_FUZZ_BUILD_DIR=build-fuzz
#   POOLKEEPER_ARTIFACTS_DIR=build-fuzz/artifacts   crashers go to <dir>/<target>/
# Ends with "N passed, M failed" (one per target).
source "$(dirname "$0")/../../scripts/lib.sh"

dir="${POOLKEEPER_FUZZ_BUILD_DIR:-$REPO_ROOT/build-fuzz}"
runs="${POOLKEEPER_FUZZ_RUNS:-20000}"
seconds="${POOLKEEPER_FUZZ_SECONDS:-120}"
seed="${POOLKEEPER_FUZZ_SEED:-1}"
artifacts="${POOLKEEPER_ARTIFACTS_DIR:-$dir/artifacts}"
fuzz_dir="$REPO_ROOT/tests/fuzz"
targets=(manifests render json_stream)
[ "$#" -eq 0 ] || targets=("$@")

command -v clang++-19 >/dev/null || die "clang++-19 missing: scripts/setup.sh installs it"
# Only the fuzz targets are built: they link the pure modules, never the transport (pk_kube).
POOLKEEPER_BUILD_DIR="$dir" POOLKEEPER_CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++-19 \
-DPOOLKEEPER_BUILD_TESTS=OFF -DPOOLKEEPER_FUZZ=ON -DPOOLKEEPER_SANITIZE=address,undefined" \
  bash "$REPO_ROOT/scripts/build.sh" "${targets[@]/#/fuzz_}"

# A smaller quarantine than ASan's 256 MiB keeps the RSS limit about the target, not the tool.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:quarantine_size_mb=64"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$REPO_ROOT/scripts/sanitizers/lsan.supp:print_suppressions=0"

passed=0 failed=0
for target in "${targets[@]}"; do
  case "$target" in
    json_stream) max_len=8192 dict="$fuzz_dir/dict/json.dict" ;;
    *) max_len=16384 dict="$fuzz_dir/dict/yaml.dict" ;;
  esac
  if [ ! -x "$dir/fuzz_$target" ]; then
    failed=$((failed + 1))
    log "fuzz: $target FAILED: $dir/fuzz_$target was not built"
    continue
  fi
  mkdir -p "$artifacts/$target"
  # New inputs go to a scratch directory (the first one libFuzzer is given); the checked-in corpus
  # is only read, so it stays the small, minimised set it is.
  scratch="$(mktemp -d)"
  log "fuzz: $target, $runs inputs (seed $seed, at most ${seconds}s)"
  if "$dir/fuzz_$target" -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=1024 \
    -timeout=5 -seed="$seed" -max_len="$max_len" -dict="$dict" -print_final_stats=1 \
    -artifact_prefix="$artifacts/$target/" "$scratch" "$fuzz_dir/corpus/$target"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    log "fuzz: $target FAILED; the input is under $artifacts/$target/ (reproduce:" \
      "$dir/fuzz_$target <file>); once fixed, add it to tests/fuzz/corpus/$target/"
  fi
  rm -rf "$scratch"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
