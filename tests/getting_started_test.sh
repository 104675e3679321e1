#!/usr/bin/env bash
# Runs docs/getting-started.md: every ```sh block of the page, in order, from the repository root,
# in this one bash session (so the page's `export`s carry over to the next blocks), and checks that
# what they print is what the page shows.
#
#   - The first block runs `scripts/demo.sh` for real (local cluster, PostgreSQL on 198.18.0.1:54320,
#     Helm chart with the operator's image, the quickstart pool); `scripts/demo.sh stop` runs at the end, also
#     when the test fails or is interrupted (trap).
#   - A block followed directly by a plain ``` block must print exactly that block (stdout and
#     stderr, as a terminal shows them). One normalisation, for `kubectl get` tables: the AGE column
#     varies, so its values are masked in both (`1m`, `45s`, `2m3s` -> `<age>`); such read-only
#     blocks are re-run until they match, for up to 60 s, as the status may still be settling.
#   - A block without an output block must succeed: every command in it (an ERR trap records each
#     failing command). A block that prints `echo "exit $?"` shows its failures itself and is judged
#     by its output.
#   - What the page states in prose around the blocks is checked by one hook per section, keyed by
#     the exact heading (a heading that disappears fails): the quickstart YAML equals the example
#     file, the render lists the objects the page names, the demo's PostgreSQL and pool are the ones
#     described, `status` matches the page's YAML (with the agent, the chart's default: status.live,
#     the ConfigMap's config-hash and the pods' restart hash as the page says), section 6's "apply it
#     anyway" consequences hold on the cluster and applying the quickstart again goes back without a
#     rollout.
#
# Two textual changes are made to the page's commands, both listed below: `build/poolkeeper` is the
# binary given as $1, and the one line listed in SKIP is not run.
#
# Concurrency: the demo's PostgreSQL port (54320) is fixed by examples/quickstart.yaml, which the
# page applies as it is, and its directory /tmp/poolkeeper-demo-$(id -u) is fixed by the page's
# `export KUBECONFIG=...`. So two runs of this test on one host (e.g. two CI clones) cannot share
# them; the test holds a host-wide lock (flock on /tmp/poolkeeper-demo.lock) while it runs, and a
# second run waits for the first. The cluster tiers (tests/cluster) use their own mktemp work
# directories and free ports, so they do not collide with the demo.
#
# Usage: tests/getting_started_test.sh PATH/TO/poolkeeper     (scripts/build.sh builds build/poolkeeper)
# Needs root (the local control plane), python3 with PyYAML, jq, flock. GS_TIMEOUT bounds the whole run
# (seconds, default 1800: then the test stops, and stops the demo, once the running command ends; each
# command the page runs has its own timeout), GS_LOCK_TIMEOUT the wait for another run's lock (default 1800).
# Prints one line per block and per assertion, and ends with exactly "N passed, M failed"; exits
# non-zero on failure.
set -u

gs_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gs_page="$gs_repo/docs/getting-started.md"
gs_poolkeeper="${1:?usage: $0 PATH/TO/poolkeeper}"
gs_passed=0
gs_failed=0

gs_pass() { echo "ok   $*"; gs_passed=$((gs_passed + 1)); }
gs_fail() { echo "FAIL $*"; gs_failed=$((gs_failed + 1)); }
gs_indent() { sed 's/^/     | /'; }
gs_summary() { echo "$gs_passed passed, $gs_failed failed"; }

# Lines of the page's ```sh blocks that are not run, by exact text (a line that is not on the page
# any more fails, so the list cannot go stale; any other new line is run).
SKIP=(
  # The whole test suite: scripts/test.sh runs this tier itself (it would recurse), and every other
  # tier, which have their own runs; it is not what this page teaches.
  'scripts/test.sh     # installs what is missing, builds, and runs every test'
)

if [ ! -x "$gs_poolkeeper" ]; then
  gs_fail "poolkeeper binary not found or not executable: $gs_poolkeeper"
  gs_summary
  exit 1
fi
gs_poolkeeper="$(cd "$(dirname "$gs_poolkeeper")" && pwd)/$(basename "$gs_poolkeeper")"
# demo.sh builds and runs the operator from the same build directory.
export POOLKEEPER_BUILD_DIR="$(dirname "$gs_poolkeeper")"
# A psql that cannot connect fails instead of hanging (the environment, not the page's commands).
export PGCONNECT_TIMEOUT=10

gs_tmp="$(mktemp -d /tmp/poolkeeper-getting-started.XXXXXX)"
gs_started_demo=0
gs_out_existed=0
[ -e "$gs_repo/out" ] && gs_out_existed=1

gs_cleanup_done=0
gs_cleanup() {
  [ "$gs_cleanup_done" = 1 ] && return 0
  gs_cleanup_done=1
  if [ -n "${gs_watchdog:-}" ]; then # the subshell first, then its sleep (as tests/cluster/lib.sh)
    local sleeper
    sleeper=$(pgrep -P "$gs_watchdog")
    kill "$gs_watchdog" 2>/dev/null
    [ -n "$sleeper" ] && kill $sleeper 2>/dev/null
  fi
  if [ "$gs_started_demo" = 1 ]; then
    if (cd "$gs_repo" && scripts/demo.sh stop) >"$gs_tmp/stop.out" 2>&1 9<&-; then
      gs_pass "scripts/demo.sh stop"
    else
      gs_fail "scripts/demo.sh stop"
      gs_indent <"$gs_tmp/stop.out"
    fi
  fi
  # What the page's commands wrote into the repository and /tmp.
  [ "$gs_out_existed" = 1 ] || rm -rf "$gs_repo/out"
  rm -f /tmp/app-overrun.yaml
  rm -rf "$gs_tmp"
}
gs_abort() { # reason: stop everything, clean up, report
  trap - EXIT INT TERM
  gs_fail "$1"
  gs_cleanup
  gs_summary
  exit 1
}
# A signal only sets the reason: its trap can run inside a block, whose output is redirected to a
# file, so the test stops at the next safe point (gs_stop_if_aborted), once the running command ends.
gs_abort_reason=""
trap 'gs_abort_reason="interrupted or timed out (GS_TIMEOUT=${GS_TIMEOUT:-1800}s)"' INT TERM
gs_stop_if_aborted() { [ -z "$gs_abort_reason" ] || gs_abort "$gs_abort_reason"; }
trap 'gs_abort "the test exited early"' EXIT

# The whole run is bounded. The sleeper must not hold stdout (scripts/test.sh pipes it to tee).
( sleep "${GS_TIMEOUT:-1800}" >/dev/null 2>&1 </dev/null; kill -TERM $$ ) >/dev/null 2>&1 </dev/null &
gs_watchdog=$!

gs_lock=/tmp/poolkeeper-demo.lock
[ -e "$gs_lock" ] || (umask 0; : >>"$gs_lock") 2>/dev/null
if ! exec 9<"$gs_lock"; then
  gs_abort "cannot open the lock $gs_lock"
fi
if ! flock -n 9; then
  echo "     another getting-started run holds $gs_lock; waiting for it" >&2
  flock -w "${GS_LOCK_TIMEOUT:-1800}" 9 || gs_abort "the lock $gs_lock was not released in ${GS_LOCK_TIMEOUT:-1800}s"
fi

# --- the page, split into sections and blocks ---------------------------------------------------
# manifest: "section<TAB>heading", "sh<TAB>N" (N.sh, and N.out when a plain block follows it
# directly), "yaml<TAB>N" (N.yaml), "error<TAB>message".
python3 - "$gs_page" "$gs_tmp" <<'PY' >"$gs_tmp/manifest" || gs_abort "cannot parse $gs_page"
import re, sys
page, out = sys.argv[1:3]
lines = open(page, encoding="utf-8").read().split("\n")
items, i = [], 0
while i < len(lines):
    m = re.match(r"^```(\S*)\s*$", lines[i])
    if m:
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            print(f"error\tline {start}: unclosed code block")
            sys.exit(0)
        items.append(("block", m.group(1), "\n".join(body) + "\n", start))
    elif lines[i].startswith("## "):
        items.append(("heading", lines[i]))
    elif lines[i].strip():
        items.append(("text",))
    i += 1
n = 0
print("section\t(before the first section)")
for k, item in enumerate(items):
    if item[0] == "heading":
        print(f"section\t{item[1]}")
    if item[0] != "block":
        continue
    _, lang, text, line = item
    prev = items[k - 1] if k else None
    if lang == "sh":
        n += 1
        open(f"{out}/{n}.sh", "w").write(text)
        nxt = items[k + 1] if k + 1 < len(items) else None
        if nxt and nxt[0] == "block" and nxt[1] == "":
            open(f"{out}/{n}.out", "w").write(nxt[2])
        open(f"{out}/{n}.line", "w").write(str(line))
        print(f"sh\t{n}")
    elif lang == "yaml":
        n += 1
        open(f"{out}/{n}.yaml", "w").write(text)
        print(f"yaml\t{n}")
    elif lang == "":
        if not (prev and prev[0] == "block" and prev[1] == "sh"):
            print(f"error\tline {line}: an output block (plain ```) that does not directly follow a ```sh block")
    else:
        print(f"error\tline {line}: a ```{lang} block: only sh (run), plain (its output) and yaml are understood")
PY

# --- helpers for the hooks ------------------------------------------------------------------------
gs_check() { # description command...: one assertion
  local what=$1; shift
  if "$@" >"$gs_tmp/check.out" 2>&1; then gs_pass "$what"; else gs_fail "$what"; gs_indent <"$gs_tmp/check.out"; fi
}
gs_eventually() { # seconds 'shell condition': re-evaluated every 0.5 s (tests/cluster/lib.sh's eventually)
  local end=$(( $(date +%s) + $1 )); shift
  until eval "$*" >/dev/null 2>&1; do
    (( $(date +%s) < end )) && [ -z "$gs_abort_reason" ] || return 1
    sleep 0.5
  done
}
gs_cond() { # type: "status reason" of a condition of connectionpool app
  kubectl get cpool app -o json | jq -r --arg t "$1" '.status.conditions[] | select(.type == $t) | "\(.status) \(.reason)"'
}
gs_cond_message() { # type
  kubectl get cpool app -o json | jq -r --arg t "$1" '.status.conditions[] | select(.type == $t) | .message'
}
gs_observed() { # the operator has written status for the current spec
  kubectl get cpool app -o json | jq -e '.status.observedGeneration == .metadata.generation' >/dev/null
}
gs_equal() { # want got
  [ "$1" == "$2" ] && return 0
  printf 'want: %s\ngot:  %s\n' "$1" "$2"
  return 1
}
gs_pods() { # name uid config-hash connections-per-pod of the pool's pods, sorted
  kubectl get pods -l poolkeeper.io/pool=app -o json | jq -r '.items[] | [.metadata.name, .metadata.uid,
    .metadata.annotations["poolkeeper.io/config-hash"], .metadata.annotations["poolkeeper.io/connections-per-pod"]] | @tsv' | sort
}
gs_configmap() { # resourceVersion and data of the pool's ConfigMap
  kubectl get configmap app-config -o json | jq -c '[.metadata.resourceVersion, .data]'
}
gs_section_output() { # the output block of the section's first block that has one
  local n
  for n in "${gs_section_blocks[@]}"; do
    [ -f "$gs_tmp/$n.out" ] && { echo "$gs_tmp/$n.out"; return 0; }
  done
  return 1
}

# --- one hook per section: what the page says in prose ---------------------------------------------
declare -A gs_hooks=(
  ["## The two commands"]=hook_two_commands
  ["## 1. The quickstart pool"]=hook_quickstart
  ["## 2. \`poolkeeper check\`: the arithmetic"]=hook_check
  ["## 3. \`poolkeeper render\`: what the operator applies"]=hook_render
  ["## 4. Running it on a cluster"]=hook_cluster
  ["## 5. Reading the status"]=hook_status
  ["## 6. A change that overruns the server"]=hook_overrun
)

hook_two_commands() {
  gs_check "demo: prints how to explore it and how to stop it" \
    grep -qF 'Stop: scripts/demo.sh stop' "$gs_tmp/demo.out"
}

hook_quickstart() { # the page's YAML is examples/quickstart.yaml in flow style, plus the Secret
  gs_check "section 1: the YAML equals the ConnectionPool of examples/quickstart.yaml, which adds only the Secret app-credentials, labelled for pools to read" \
    python3 - "$gs_tmp/${gs_section_yaml[0]:-none}.yaml" "$gs_repo/examples/quickstart.yaml" <<'PY'
import sys, yaml
page = yaml.safe_load(open(sys.argv[1]))
docs = list(yaml.safe_load_all(open(sys.argv[2])))
pools = [d for d in docs if d.get("kind") == "ConnectionPool"]
others = [(d.get("kind"), d["metadata"]["name"]) for d in docs if d.get("kind") != "ConnectionPool"]
secrets = [d for d in docs if d.get("kind") == "Secret"]
labelled = all(d["metadata"].get("labels", {}).get("poolkeeper.io/expose-to-pools") == "true" for d in secrets)
ok = pools == [page] and others == [("Secret", "app-credentials")] and labelled
if not ok:
    print("page:", page); print("file:", pools, others)
sys.exit(0 if ok else 1)
PY
}

hook_check() { # the demo printed the same plan (step 1 of the demo's list)
  local expected
  expected="$(gs_section_output)" || { gs_fail "section 2: no output block"; return; }
  gs_check "demo: prints the plan of section 2" \
    python3 -c 'import sys; sys.exit(0 if open(sys.argv[1]).read() in open(sys.argv[2]).read() else 1)' \
    "$expected" "$gs_tmp/demo.out"
}

hook_render() { # the objects listed, the files the comment names, no owner references offline
  gs_check "section 3: render --output-dir wrote out/default/app/{pgbouncer.ini,userlist.txt,objects.yaml}" \
    test -s out/default/app/pgbouncer.ini -a -s out/default/app/userlist.txt -a -s out/default/app/objects.yaml
  gs_check "section 3: the objects are ConfigMap app-config, Secret app-auth, Service app, PodDisruptionBudget app, Pods app-0 and app-1, with the three annotations and no owner reference" \
    python3 - out/default/app/objects.yaml <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
got = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
want = sorted([("ConfigMap", "app-config"), ("Secret", "app-auth"), ("Service", "app"),
               ("PodDisruptionBudget", "app"), ("Pod", "app-0"), ("Pod", "app-1")])
bad = [] if got == want else [f"objects {got}, want {want}"]
for d in docs:
    if d["metadata"].get("ownerReferences"):
        bad.append(f"{d['kind']} {d['metadata']['name']} has owner references")
    if d["kind"] == "Pod":
        missing = {"poolkeeper.io/config-hash", "poolkeeper.io/server", "poolkeeper.io/connections-per-pod"} - set(d["metadata"].get("annotations", {}))
        if missing:
            bad.append(f"pod {d['metadata']['name']} lacks {sorted(missing)}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
  gs_check "section 3 / demo step 5: clients log in to PgBouncer with SCRAM-SHA-256 (auth_type)" \
    grep -qx 'auth_type = scram-sha-256' out/default/app/pgbouncer.ini
}

hook_cluster() { # the demo's PostgreSQL (198.18.0.1:54320, max_connections 20) behind the pool
  local ip
  ip=$(kubectl get pods -l poolkeeper.io/pool=app -o jsonpath='{.items[0].status.podIP}' 2>/dev/null)
  gs_check "section 4: through a pooler pod, the server is the demo's PostgreSQL on port 54320 with max_connections 20" \
    gs_equal "54320|20" "$(PGPASSWORD=quickstart-password PGCONNECT_TIMEOUT=10 psql "host=$ip port=6432 user=app dbname=app" \
      -qAt -c 'SELECT inet_server_port()' -c 'SHOW max_connections' 2>&1 | paste -sd'|')"
  gs_check "demo step 4: the operator runs in-cluster (Deployment poolkeeper in poolkeeper-system, from the Helm chart)" \
    kubectl -n poolkeeper-system rollout status deployment/poolkeeper --timeout=10s
}

hook_status() { # the page's `status` YAML against the live one
  local yaml="$gs_tmp/${gs_section_yaml[0]:-none}.yaml"
  gs_status_diff() {
    kubectl get cpool app -o json >"$gs_tmp/pool.json" || return 1
    kubectl get pods -l poolkeeper.io/pool=app -o json >"$gs_tmp/pods.json" || return 1
    kubectl get configmap app-config -o json >"$gs_tmp/configmap.json" || return 1
    python3 - "$yaml" "$gs_tmp/pool.json" "$gs_tmp/pods.json" "$gs_tmp/configmap.json" <<'PY'
import json, re, sys, yaml
page = yaml.safe_load(open(sys.argv[1]))["status"]
live = json.load(open(sys.argv[2]))["status"]
pods = json.load(open(sys.argv[3]))["items"]
configmap = json.load(open(sys.argv[4]))
# Left out on the page, as it says: lastTransitionTime and the conditions' observedGeneration.
for c in live.get("conditions", []):
    c.pop("lastTransitionTime", None)
    c.pop("observedGeneration", None)
live["conditions"] = sorted(live.get("conditions", []), key=lambda c: c["type"])
page["conditions"] = sorted(page.get("conditions", []), key=lambda c: c["type"])
bad = []
if not pods:
    bad.append("no pods")
sha256 = lambda h: re.fullmatch(r"[0-9a-f]{64}", h or "") is not None
# The hash varies; the page shows its start ("3f9a..."): it must be a sha256.
h = live.get("configHash", "")
if not sha256(h):
    bad.append(f"configHash {h!r} is not a sha256")
page["configHash"] = h
data = configmap.get("data", {})
pod_hash = configmap["metadata"].get("annotations", {}).get("poolkeeper.io/pod-config-hash")
agent = [p["metadata"]["name"] for p in pods if any(c["name"] == "agent" for c in p["spec"]["containers"])]
if agent:
    # With the agent (the chart's default): the ConfigMap's config-hash is status.configHash (what the agents
    # report loaded), and its poolkeeper.io/pod-config-hash, the restart hash, is every pod's config-hash.
    if len(agent) != len(pods):
        bad.append(f"only {agent} of the pods run the agent")
    if data.get("config-hash") != h:
        bad.append(f"ConfigMap app-config's config-hash {data.get('config-hash')!r} is not status.configHash")
    if not sha256(pod_hash) or pod_hash == h:
        bad.append(f"ConfigMap app-config's poolkeeper.io/pod-config-hash {pod_hash!r} is not a restart hash apart from configHash")
    # The live figures: the keys the page shows; podsReporting is every pod; serverConnections (what an idle
    # pool keeps open after the demo's queries) varies, within what the pods can open.
    figures = live.get("live", {})
    if sorted(figures) != sorted(page.get("live", {})):
        bad.append(f"status.live keys {sorted(figures)}, the page's {sorted(page.get('live', {}))}")
    if figures.get("podsReporting") != len(pods):
        bad.append(f"status.live.podsReporting {figures.get('podsReporting')!r}, {len(pods)} pods")
    held = live.get("budget", {}).get("held", 0)
    if not isinstance(figures.get("serverConnections"), int) or not 0 <= figures["serverConnections"] <= held:
        bad.append(f"status.live.serverConnections {figures.get('serverConnections')!r} is not 0-{held} (budget.held)")
    elif "serverConnections" in page.get("live", {}):
        page["live"]["serverConnections"] = figures["serverConnections"]
else:
    # Without it: the pods carry status.configHash itself, and the ConfigMap has no config-hash; nor is there
    # a status.live, which the page shows for the agent.
    pod_hash = h
    if "config-hash" in data:
        bad.append("ConfigMap app-config has a config-hash, but no pod runs the agent")
    page.pop("live", None)
for p in pods:
    if p["metadata"].get("annotations", {}).get("poolkeeper.io/config-hash") != pod_hash:
        bad.append(f"pod {p['metadata']['name']}: poolkeeper.io/config-hash is not {pod_hash!r}")
if page != live:
    bad.append("page:\n" + yaml.safe_dump(page, sort_keys=True) + "live:\n" + yaml.safe_dump(live, sort_keys=True))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
  }
  if gs_eventually 60 gs_status_diff; then
    gs_pass "section 5: kubectl get cpool app -o yaml: status is the page's (hash and status.live.serverConnections masked, the left-out fields left out); the ConfigMap's config-hash is status.configHash and every pod carries the pod hash"
  else
    gs_fail "section 5: kubectl get cpool app -o yaml: status differs from the page"
    gs_status_diff | gs_indent
  fi
}

hook_overrun() { # section 6's prose: apply it anyway, what happens, and going back
  local text apply back pods_before cm_before expected arithmetic
  text=$(<"$gs_page")
  # The commands the prose names, taken from the page.
  apply=$(grep -oE 'Apply it anyway \(`[^`]+`\)' <<<"$text" | sed -E 's/^Apply it anyway \(`(.*)`\)$/\1/')
  back=$(grep -oE 'Apply `[^`]+` again to go back' <<<"$text" | sed -E 's/^Apply `(.*)` again to go back$/\1/')
  gs_check "section 6: the prose names the command that applies the overrun" gs_equal "kubectl apply -f /tmp/app-overrun.yaml" "$apply"
  gs_check "section 6: the prose names the file that goes back" gs_equal "examples/quickstart.yaml" "$back"
  expected="$(gs_section_output)" || { gs_fail "section 6: no output block"; return; }
  arithmetic=$(sed -n 's/^    Error BudgetExceeded: //p' "$expected")
  gs_check "section 6: the output block states the arithmetic (Error BudgetExceeded: ...)" test -n "$arithmetic"

  pods_before=$(gs_pods)
  cm_before=$(gs_configmap)
  gs_check "section 6: before: 2 pods at 5 connections each" \
    gs_equal "5 5" "$(awk '{print $4}' <<<"$pods_before" | paste -sd' ')"

  gs_check "section 6: $apply" $apply
  if gs_eventually 90 'gs_observed && [ "$(gs_cond Ready)" = "False Blocked" ]'; then
    gs_pass "section 6: Ready becomes False, reason Blocked"
  else
    gs_fail "section 6: Ready did not become False/Blocked in 90 s"
    kubectl get cpool app -o yaml 2>&1 | gs_indent
  fi
  gs_check "section 6: BudgetExceeded True, reason Exceeded" gs_equal "True Exceeded" "$(gs_cond BudgetExceeded)"
  gs_check "section 6: BudgetExceeded's message is the arithmetic of the output block" \
    gs_equal "$arithmetic" "$(gs_cond_message BudgetExceeded)"
  gs_check "section 6: Degraded True, reason BudgetExceeded" gs_equal "True BudgetExceeded" "$(gs_cond Degraded)"
  gs_check "section 6: Degraded's message: not rolled out, the last good configuration keeps running: ..." \
    gs_equal "not rolled out, the last good configuration keeps running: $arithmetic" "$(gs_cond_message Degraded)"
  gs_check "section 6: kubectl get cpool shows READY False and BUDGET Exceeded" \
    gs_equal "app False Exceeded" "$(kubectl get cpool app --no-headers | awk '{print $1, $2, $7}')"
  if gs_eventually 60 'kubectl describe cpool app | grep -qE "^ +Warning +BudgetExceeded "'; then
    gs_pass "section 6: a Warning Event BudgetExceeded appears in kubectl describe cpool app"
  else
    gs_fail "section 6: no Warning Event BudgetExceeded in kubectl describe cpool app"
    kubectl describe cpool app 2>&1 | gs_indent
  fi
  gs_check "section 6: status.budget.allocated stays 15" \
    gs_equal 15 "$(kubectl get cpool app -o jsonpath='{.status.budget.allocated}')"
  gs_check "section 6: the pods stay as they were (same pods, 5 connections each)" gs_equal "$pods_before" "$(gs_pods)"
  gs_check "section 6: the ConfigMap stays as it was" gs_equal "$cm_before" "$(gs_configmap)"

  gs_check "section 6: kubectl apply -f $back" kubectl apply -f "$back"
  if gs_eventually 90 'gs_observed && [ "$(gs_cond Ready)" = "True Available" ]'; then
    gs_pass "section 6: back: the pool becomes Ready"
  else
    gs_fail "section 6: back: the pool did not become Ready in 90 s"
    kubectl get cpool app -o yaml 2>&1 | gs_indent
  fi
  gs_check "section 6: back: BudgetExceeded False WithinBudget, Degraded False, Progressing False" \
    gs_equal "False WithinBudget|False AsPlanned|False RolloutComplete" \
    "$(gs_cond BudgetExceeded)|$(gs_cond Degraded)|$(gs_cond Progressing)"
  gs_check "section 6: back: nothing rolled out (same pods, same ConfigMap)" \
    gs_equal "$pods_before|$cm_before" "$(gs_pods)|$(gs_configmap)"
}

# --- running a block ---------------------------------------------------------------------------------
gs_kubectl_get_only() { # N: every command of the block is a read-only `kubectl get`
  ! grep -vE '^[[:space:]]*(#|$)' "$gs_tmp/$1.sh" | grep -qvE '^kubectl get '
}
gs_normalise() { # FILE [kubectl]: mask the AGE column of a kubectl table
  if [ "${2:-}" = kubectl ] && head -n 1 "$1" | grep -qE ' AGE$'; then
    sed -E '2,$ s/[0-9]+[smhd]([0-9]+[smhd])?$/<age>/' "$1"
  else
    cat "$1"
  fi
}
gs_errors=()
gs_eval() { # N: run the block in this shell, as a user's shell would (no -e, no pipefail)
  local gs_text
  gs_text=$(<"$gs_tmp/$1.run")
  set +u
  gs_errors=()
  trap 'gs_errors+=("$BASH_COMMAND")' ERR
  # fd 9 is the lock: closed for the blocks, so the demo's daemons do not hold it after the test.
  eval "$gs_text" >"$gs_tmp/$1.got" 2>&1 </dev/null 9<&-
  gs_status=$?
  trap - ERR
  # The eval itself fails when its last command does: not a command of the page.
  if [ "${#gs_errors[@]}" -gt 0 ] && [[ "${gs_errors[-1]}" == 'eval "$gs_text"'* ]]; then unset 'gs_errors[-1]'; fi
  set -u
}
declare -A gs_skipped=()
gs_run_block() { # N (locals are prefixed: the page's blocks run inside this function)
  local gs_n=$1 gs_line gs_skip gs_kind_=plain gs_label gs_end
  gs_label="block $gs_n (line $(<"$gs_tmp/$gs_n.line")): $(grep -vE '^[[:space:]]*(#|$)' "$gs_tmp/$gs_n.sh" | head -n 1 | sed -E 's/ +#.*//')"
  : >"$gs_tmp/$gs_n.run"
  while IFS= read -r gs_line; do
    for gs_skip in "${SKIP[@]}"; do
      if [ "$gs_line" == "$gs_skip" ]; then
        gs_skipped[$gs_skip]=1
        echo "skip $gs_label: not run: $gs_line"
        gs_line=": skipped by tests/getting_started_test.sh"
      fi
    done
    # A line that runs the suite but is not the exact line in SKIP (its text changed) must not run:
    # this tier would run itself. It fails instead of being skipped silently.
    if [[ "$gs_line" =~ (^|[[:space:]\;\&\|\(])(\./)?scripts/test\.sh([[:space:]]|$) ]]; then
      gs_fail "$gs_label: runs scripts/test.sh, which runs this tier: not run; put the page's exact line in SKIP"
      gs_line=": refused by tests/getting_started_test.sh"
    fi
    # The binary under test, wherever the page runs build/poolkeeper.
    gs_line=$(sed -E 's#(^|[[:space:];&|(])build/poolkeeper([[:space:]]|$)#\1"$gs_poolkeeper"\2#g' <<<"$gs_line")
    printf '%s\n' "$gs_line" >>"$gs_tmp/$gs_n.run"
  done <"$gs_tmp/$gs_n.sh"
  grep -q 'scripts/demo.sh' "$gs_tmp/$gs_n.run" && gs_started_demo=1

  if [ ! -f "$gs_tmp/$gs_n.out" ]; then
    gs_eval "$gs_n"
    # The demo's output is long: kept for the hooks, shown (its end) on failure.
    grep -q 'scripts/demo.sh' "$gs_tmp/$gs_n.run" && cp "$gs_tmp/$gs_n.got" "$gs_tmp/demo.out"
    if [ "$gs_status" -eq 0 ] && [ "${#gs_errors[@]}" -eq 0 ]; then
      gs_pass "$gs_label"
    else
      gs_fail "$gs_label: exit $gs_status; failed: ${gs_errors[*]:-(the block)}"
      tail -n 40 "$gs_tmp/$gs_n.got" | gs_indent
    fi
    return
  fi
  gs_kubectl_get_only "$gs_n" && gs_kind_=kubectl
  gs_end=$(( $(date +%s) + 60 ))
  while :; do
    gs_eval "$gs_n"
    gs_normalise "$gs_tmp/$gs_n.out" "$gs_kind_" >"$gs_tmp/$gs_n.want.norm"
    gs_normalise "$gs_tmp/$gs_n.got" "$gs_kind_" >"$gs_tmp/$gs_n.got.norm"
    if [ "$gs_status" -eq 0 ] && diff -u "$gs_tmp/$gs_n.want.norm" "$gs_tmp/$gs_n.got.norm" >"$gs_tmp/$gs_n.diff"; then
      if [ "$gs_kind_" = kubectl ]; then gs_pass "$gs_label: prints the page's output (AGE masked)"
      else gs_pass "$gs_label: prints the page's output"; fi
      return
    fi
    [ "$gs_kind_" = kubectl ] && [ "$(date +%s)" -lt "$gs_end" ] && [ -z "$gs_abort_reason" ] || break
    sleep 0.5
  done
  gs_fail "$gs_label: exit $gs_status, output differs from the page (--- page, +++ printed)"
  gs_indent <"$gs_tmp/$gs_n.diff"
}

# --- the run -------------------------------------------------------------------------------------------
cd "$gs_repo" || gs_abort "cannot cd to $gs_repo"
gs_t0=$(date +%s)
declare -A gs_hook_ran=()
gs_section=""
gs_section_blocks=()
gs_section_yaml=()
gs_end_section() {
  local hook=""
  [ -n "$gs_section" ] && hook=${gs_hooks[$gs_section]:-}
  if [ -n "$hook" ]; then
    gs_hook_ran[$gs_section]=1
    "$hook"
    gs_stop_if_aborted
  fi
}
while IFS=$'\t' read -r gs_kind gs_value; do
  case $gs_kind in
    section)
      gs_end_section
      gs_section=$gs_value gs_section_blocks=() gs_section_yaml=()
      ;;
    sh)
      gs_section_blocks+=("$gs_value")
      gs_run_block "$gs_value"
      gs_stop_if_aborted
      ;;
    yaml) gs_section_yaml+=("$gs_value") ;;
    error) gs_fail "docs/getting-started.md: $gs_value" ;;
  esac
done <"$gs_tmp/manifest"
gs_end_section

for gs_h in "${!gs_hooks[@]}"; do
  [ -n "${gs_hook_ran[$gs_h]:-}" ] || gs_fail "no section \"$gs_h\" on the page: its checks did not run (update tests/getting_started_test.sh)"
done
for gs_s in "${SKIP[@]}"; do
  [ -n "${gs_skipped[$gs_s]:-}" ] || gs_fail "SKIP lists a line that is not on the page: $gs_s"
done
[ "$gs_started_demo" = 1 ] || gs_fail "no block ran scripts/demo.sh"

trap - EXIT INT TERM
gs_cleanup
echo "     ($(( $(date +%s) - gs_t0 ))s)" >&2
gs_summary
[ "$gs_failed" -eq 0 ]
