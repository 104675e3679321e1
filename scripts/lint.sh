#!/usr/bin/env bash
# The style and static-analysis gates CI runs (scripts/test.sh, tier "lint"):
#   clang-format   every C++ file formatted as .clang-format says
#   clang-tidy     the checks of .clang-tidy over operator/ and tests/fuzz (needs
#                  build/compile_commands.json: run scripts/build.sh first)
#   gofmt, go vet, go mod tidy   the Go of tests/cluster and its coredns module: formatted,
#                  vetted, and go.mod/go.sum exactly what `go mod tidy` would write
# Prints what each gate found and ends with "N passed, M failed" (one per gate).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

passed=0 failed=0
gate() {
  local name=$1; shift
  log "lint: $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); log "lint: $name FAILED"; fi
}

cpp_files() { git ls-files '*.cc' '*.h'; }

clang_format() { cpp_files | xargs clang-format --dry-run -Werror; }

# A translation unit that passed is remembered by the hash of everything its result depends on
# (its text, every header under operator/, .clang-tidy, the clang-tidy version), so a rerun checks
# only what changed; a change to any header checks everything again.
TIDY_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/poolkeeper/clang-tidy"

clang_tidy() {
  [ -f "$BUILD_DIR/compile_commands.json" ] || { echo "no $BUILD_DIR/compile_commands.json"; return 1; }
  local tidy
  tidy=$(command -v clang-tidy-19 || true)
  [ -n "$tidy" ] || { echo "clang-tidy-19 missing: scripts/setup.sh installs it"; return 1; }
  mkdir -p "$TIDY_CACHE"
  local common file key todo=()
  common=$({ "$tidy" --version; cat .clang-tidy; git ls-files -z 'operator/*.h' | xargs -0 cat; } |
    sha256sum | cut -d' ' -f1)
  # Only translation units: headers are checked through them (HeaderFilterRegex). http/server.cc
  # is left out as it was when it included cpprestsdk (whose headers clang could not parse in
  # C++23); the kube transport, Beast like it, is checked.
  while read -r file; do
    key=$({ echo "$common $file"; cat "$file"; } | sha256sum | cut -d' ' -f1)
    [ -f "$TIDY_CACHE/$key" ] || todo+=("$file:$key")
  done < <(git ls-files 'operator/*.cc' 'tests/fuzz/*.cc' |
    grep -vxE 'operator/http/server\.cc')
  echo "clang-tidy: ${#todo[@]} translation units changed since they last passed"
  [ "${#todo[@]}" -gt 0 ] || return 0
  export tidy TIDY_CACHE BUILD_DIR
  # One unit per process, so each passing one is remembered on its own. libstdc++ 12's
  # stable_sort calls get_temporary_buffer, which clang deprecates in C++23: not ours to fix.
  printf '%s\n' "${todo[@]}" | xargs -P "$(nproc)" -I{} bash -c '
    unit={}; file=${unit%%:*}
    "$tidy" -p "$BUILD_DIR" --quiet --extra-arg=-Wno-deprecated-declarations "$file" \
      2> >(grep -v "warnings generated" >&2) && touch "$TIDY_CACHE/${unit##*:}"'
}

export PATH="$PATH:/usr/local/go/bin"
# The gate itself is checked: a file with a dropped Result and a use after move must fail it, so a
# .clang-tidy that stopped checking anything would not pass silently.
clang_tidy_catches() {
  local probe out
  probe="$(mktemp -d)/probe.cc"
  cat >"$probe" <<'CC'
#include <string>
#include <utility>
#include "common/error.h"
poolkeeper::Result<int> Make();
int Drop() {
  Make();
  std::string a = "x";
  std::string b = std::move(a);
  return static_cast<int>(a.size() + b.size());
}
CC
  out=$(clang-tidy-19 --quiet --config-file="$REPO_ROOT/.clang-tidy" "$probe" -- -std=c++23 \
    -I"$REPO_ROOT/operator" 2>&1)
  rm -rf "$(dirname "$probe")"
  grep -q 'bugprone-unused-return-value' <<<"$out" && grep -q 'bugprone-use-after-move' <<<"$out" ||
    { echo "clang-tidy no longer reports a dropped Result and a use after move: $out"; return 1; }
}

go_modules=(tests/cluster tests/cluster/coredns)
go_fmt() {
  local unformatted
  unformatted=$(gofmt -l tests/cluster)
  [ -z "$unformatted" ] || { echo "not gofmt-formatted: $unformatted"; return 1; }
}
go_vet() { local m; for m in "${go_modules[@]}"; do (cd "$m" && go vet ./...) || return 1; done; }
go_tidy() { local m; for m in "${go_modules[@]}"; do (cd "$m" && go mod tidy -diff) || return 1; done; }

gate clang-format clang_format
gate clang-tidy clang_tidy
gate "clang-tidy catches" clang_tidy_catches
if command -v go >/dev/null; then
  gate gofmt go_fmt
  gate "go vet" go_vet
  gate "go mod tidy" go_tidy
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
