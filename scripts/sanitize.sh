#!/usr/bin/env bash
# Builds and runs tests under the sanitizers, each in its own build directory (ccache keeps reruns
# warm):
#   scripts/sanitize.sh address   AddressSanitizer + UndefinedBehaviorSanitizer over the unit and
#                                 postgres tiers (build-asan/)
#   scripts/sanitize.sh thread    ThreadSanitizer over the unit tests of the threaded modules, kube,
#                                 controller and http: informers, work queue, workers, leader
#                                 election, the HTTP server's I/O and handler threads (build-tsan/)
# Any report fails the test that triggered it (-fno-sanitize-recover, halt_on_error).
source "$(dirname "$0")/lib.sh"

mode="${1:-}"
case "$mode" in
  address)
    dir="$REPO_ROOT/build-asan" sanitize="address,undefined" labels='^(unit_.*|postgres)$'
    targets=()  # everything: the unit and postgres tiers cover every module
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    ;;
  thread)
    dir="$REPO_ROOT/build-tsan" sanitize="thread" labels='^unit_(kube|controller|http)$'
    targets=(unit_kube unit_controller unit_http)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$REPO_ROOT/scripts/sanitizers/tsan.supp"
    ;;
  *) die "usage: scripts/sanitize.sh address|thread" ;;
esac

POOLKEEPER_BUILD_DIR="$dir" POOLKEEPER_CMAKE_ARGS="-DPOOLKEEPER_SANITIZE=$sanitize" \
  bash "$REPO_ROOT/scripts/build.sh" "${targets[@]}"
ctest --test-dir "$dir" -L "$labels" --output-on-failure --no-tests=error -j2
