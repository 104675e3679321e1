#!/usr/bin/env bash
# Checks that the documentation matches the code it describes:
#   - docs/reference.md is exactly what scripts/gen-reference.py generates from the CRD;
#   - docs/operating.md names every flag of `poolkeeper run`, every metric the operator registers,
#     and every condition and event reason the reconciler writes;
#   - relative links in the docs index and the guides point at files that exist.
# Needs python3 with PyYAML (Debian: python3-yaml); builds nothing.
# Prints one line per check and ends with exactly "N passed, M failed"; exits non-zero on failure.
set -u

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DOCS="$REPO_ROOT/docs"
passed=0
failed=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

pass() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# 1. The reference is generated from the CRD and committed as generated.
if python3 "$REPO_ROOT/scripts/gen-reference.py" --output "$tmp/reference.md" 2>"$tmp/gen.err"; then
  sed 's/^/     | /' "$tmp/gen.err"
  if diff -u "$DOCS/reference.md" "$tmp/reference.md" >"$tmp/reference.diff" 2>&1; then
    pass "docs/reference.md matches crds/poolkeeper.io_connectionpools.yaml"
  else
    fail "docs/reference.md differs from the CRD: run python3 scripts/gen-reference.py --output docs/reference.md"
    head -n 60 "$tmp/reference.diff" | sed 's/^/     | /'
  fi
else
  fail "scripts/gen-reference.py failed"
  sed 's/^/     | /' "$tmp/gen.err"
fi

# Each name must appear in the file, as `name` (a code span), so a new one cannot go undocumented.
documented() { # what file names...
  local what=$1 file=$2 missing=()
  shift 2
  for name in "$@"; do
    grep -qF -- "\`$name" "$file" || missing+=("$name")
  done
  if [ "$#" -eq 0 ]; then
    fail "$what: none found in the source (did it move?)"
  elif [ "${#missing[@]}" -eq 0 ]; then
    pass "$what: all $# documented in ${file#"$REPO_ROOT"/}"
  else
    fail "$what: not in ${file#"$REPO_ROOT"/}: ${missing[*]}"
  fi
}

operating="$DOCS/operating.md"
if [ ! -f "$operating" ]; then
  fail "docs/operating.md is missing"
else
  # 2. Flags of `poolkeeper run`, as declared on CLI11 in run_flags.cc and policy_flags.cc (add_option/add_flag; its
  #    help is generated from the same declarations).
  mapfile -t flags < <(cat "$REPO_ROOT/operator/main/run_flags.cc" "$REPO_ROOT/operator/main/policy_flags.cc" | tr -s ' \n' ' ' |
    grep -oE 'add_(option|flag)\( ?"--[a-z-]+"' | grep -oE -- '--[a-z-]+' | sort -u)
  documented "flags of poolkeeper run" "$operating" "${flags[@]}"

  # 3. Metric families the operator registers.
  mapfile -t metrics < <(grep -ohE '"poolkeeper_[a-z_]+"' "$REPO_ROOT/operator/main/metrics_wiring.cc" |
    tr -d '"' | sort -u)
  documented "metrics" "$operating" "${metrics[@]}"

  # 4. Condition and event reasons the reconciler writes (CamelCase string literals, less kinds
  #    and event types), its own and those of spec.paused (pause.h).
  mapfile -t reasons < <(grep -ohE '"[A-Z][a-z]+([A-Z][a-z]+)*"' "$REPO_ROOT/operator/controller/reconciler.cc" \
    "$REPO_ROOT/operator/controller/pause.h" |
    tr -d '"' | grep -vxE 'ConfigMap|Secret|Service|PodDisruptionBudget|Pod|Normal|Warning|True|False' |
    sort -u)
  documented "condition and event reasons" "$operating" "${reasons[@]}"
fi

# 5. Relative links (outside code spans) of the docs written alongside this test resolve to files.
for doc in README.md reference.md operating.md architecture.md getting-started.md; do
  file="$DOCS/$doc"
  if [ ! -f "$file" ]; then
    fail "docs/$doc is missing"
    continue
  fi
  broken=()
  while IFS= read -r target; do
    target="${target%%#*}"
    [ -z "$target" ] && continue
    [ -e "$(dirname "$file")/$target" ] || broken+=("$target")
  done < <(sed -E 's/``[^`]*``//g; s/`[^`]*`//g' "$file" | grep -oE '\]\([^)[:space:]]+\)' |
    sed -E 's/^\]\((.*)\)$/\1/' | grep -vE '^[a-z]+:')
  if [ "${#broken[@]}" -eq 0 ]; then
    pass "docs/$doc: relative links resolve"
  else
    fail "docs/$doc: broken links: ${broken[*]}"
  fi
done

# 6. The top-level README points at the docs index.
if grep -qF '](docs/README.md)' "$REPO_ROOT/README.md"; then
  pass "README.md links docs/README.md"
else
  fail "README.md does not link docs/README.md"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
