#!/usr/bin/env python3
"""Generates docs/reference.md, the field-by-field reference of the ConnectionPool and PostgresServer
resources, from their CustomResourceDefinitions (crds/), so the two cannot drift:
tests/docs_test.sh regenerates it and fails when the committed file differs.

Usage: scripts/gen-reference.py [--crd FILE] [--output FILE]   (default: print to stdout)

Everything comes from the CRD: names, subresources, printer columns, and for every field its path,
type, whether it is required, default, bounds, enum, pattern, list semantics, description and CEL
rules. The one exception is the status notes below: the CRDs give the status fields no descriptions, so
their meaning is written here, and the generator fails if a note names a field the CRD lacks.
Needs PyYAML (Debian: python3-yaml).
"""

import argparse
import os
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("gen-reference.py: PyYAML is missing (Debian: apt-get install python3-yaml)")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CRDS = [os.path.join(REPO_ROOT, "crds", "poolkeeper.io_connectionpools.yaml"),
                os.path.join(REPO_ROOT, "crds", "poolkeeper.io_postgresservers.yaml")]

# Meaning of the status fields, which the CRD leaves undescribed (source: operator/api/status.cc
# and operator/controller/reconciler.cc). Only used where the CRD has no description.
CONNECTION_POOL_NOTES = {
    "status.observedGeneration": "The metadata.generation of the spec the operator last reconciled.",
    "status.instances": "spec.pooler.instances of the last valid spec (the scale subresource's status replicas).",
    "status.readyInstances": "Ready pods of the pool that run its current configuration (while a spec is refused: ready pods of any configuration).",
    "status.selector": "Label selector of the pool's pods, `key=value,...` (the scale subresource's selector).",
    "status.configHash": "sha256 of the rendered pgbouncer.ini and the password Secrets' resourceVersions; the pods' `poolkeeper.io/config-hash` annotation. Unchanged while a spec is refused.",
    "status.paused": "true once every running pod's pooler agent reports its PgBouncer paused (`spec.paused`); false while any pod runs unpaused, without pods, and without the agent.",
    "status.budget": "The budget arithmetic of the pool's server (see docs/budget.md).",
    "status.budget.server": "The server, `host:port` (host lower-cased): pools with the same one share a budget.",
    "status.budget.usable": "maxConnections - superuserReservedConnections - reservedConnections - overhead.",
    "status.budget.allocated": "What the ledger charges on the server, every pool included.",
    "status.budget.perInstance": "Worst-case server connections of one pgbouncer of this pool.",
    "status.budget.worstCase": "(instances + maxSurge) x perInstance; 0 with 0 instances.",
    "status.budget.headroom": "usable - allocated (negative when the server is overrun, e.g. under policy Warn).",
    "status.budget.held": "What the pool's existing pods (terminating ones included) and its admitted configuration can open now; the ledger charges at least this (docs/budget.md, section 4a).",
    "status.conditions": "Ready, BudgetExceeded, Progressing, Degraded (metav1.Condition); see docs/operating.md.",
    "status.conditions[].type": "Ready, BudgetExceeded, Progressing or Degraded.",
    "status.conditions[].status": "True, False or Unknown.",
    "status.conditions[].observedGeneration": "The generation the condition was computed for.",
    "status.conditions[].lastTransitionTime": "When status last changed (not when the message did).",
    "status.conditions[].reason": "CamelCase reason; see docs/operating.md.",
    "status.conditions[].message": "Human-readable detail, with the budget arithmetic where it applies.",
}

# The same for PostgresServer (source: operator/controller/server_status.cc).
POSTGRES_SERVER_NOTES = {
    "status.observedGeneration": "The metadata.generation of the spec the operator last acted on.",
    "status.endpoint": "host:port the operator observes (and serverRef pools connect to).",
    "status.budgetKey": "The budget the server's pools are planned in: `postgresserver/<name>` of the first server (by name) of its group; pools' `status.budget.server`.",
    "status.sharedWith": "Other PostgresServers in the same budget: the same host:port or alias, or the same observed system identifier.",
    "status.observed": "The last successful observation: maxConnections, superuserReservedConnections, reservedConnections, serverVersion, systemIdentifier, inUseByOthers (client connections not from poolkeeper's pooler pods), roleConnectionLimits, databaseConnectionLimits, time. Kept when the server cannot be reached.",
    "status.budget": "The budget pools are planned against: maxConnections, reserved, overhead, usable, allocated, headroom, heldByOthers, and source (Observed or Declared).",
    "status.drift": "Declared figures that differ from the observed ones, one line each (`maxConnections: declared 200, observed 100`).",
    "status.pools": "Each pool in the budget: namespace, name, allocated, verdict (WithinBudget, BudgetExceeded or Refused).",
    "status.conditions": "Reachable, Ready and (with enforceRoleLimits) RoleLimits (metav1.Condition); see docs/operating.md.",
    "status.conditions[].type": "Reachable, Ready or RoleLimits.",
    "status.conditions[].reason": "CamelCase reason; see docs/operating.md.",
    "status.conditions[].message": "Human-readable detail: the observed figures, or why the server could not be observed.",
    "status.conditions[].observedGeneration": "The generation the condition was computed for.",
}

# Per kind: the status notes and the operator's own validation of the spec.
KINDS = {
    "ConnectionPool": (CONNECTION_POOL_NOTES, "operator/api/parse.cc",
                       "the PgBouncer version of each setting in `spec.pooler.parameters`, and that "
                       "pools on one server declare the same limits"),
    "PostgresServer": (POSTGRES_SERVER_NOTES, "operator/api/postgres_server.cc",
                       "that aliases and namespace quotas are not repeated"),
}


def cell(text):
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text):
    """A code span for a table cell (backticks inside are unlikely; pipes escaped)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    if isinstance(value, str):
        return '"' + value + '"'
    return str(value)


def type_of(schema):
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("items", {})
        return "array of " + (type_of(items) or "any")
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return "map of string to " + type_of(extra)
        if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
            return "object (free-form)"
        return "object"
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    return kind


def constraints(schema):
    parts = []
    if "minimum" in schema and "maximum" in schema:
        parts.append(f"{schema['minimum']} to {schema['maximum']}")
    elif "minimum" in schema:
        parts.append(f">= {schema['minimum']}")
    elif "maximum" in schema:
        parts.append(f"<= {schema['maximum']}")
    for key, label in (("minLength", "min length"), ("maxLength", "max length"),
                       ("minItems", "min items"), ("maxItems", "max items"),
                       ("maxProperties", "max entries")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(code(v) for v in schema["enum"]))
    if "pattern" in schema:
        parts.append("pattern " + code(schema["pattern"]))
    if schema.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(schema.get("x-kubernetes-list-map-keys", []))
        parts.append(f"list map keyed by `{keys}` (unique)")
    elif "x-kubernetes-list-type" in schema:
        parts.append(f"list type {schema['x-kubernetes-list-type']}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        sub = constraints(extra)
        if sub:
            parts.append("values: " + sub)
    if schema.get("x-kubernetes-preserve-unknown-fields") and schema.get("properties"):
        parts.append("unknown fields kept")
    if schema.get("x-kubernetes-validations"):
        parts.append("CEL rules below")
    return "; ".join(parts)


# The structural-schema keywords this generator renders. Anything else in a schema is reported on
# standard error: in a YAML flow mapping an unquoted comma ends a value, so a description with a
# comma silently becomes a stray key (and loses its end), which this catches.
KNOWN_KEYWORDS = {
    "type", "format", "description", "default", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "enum", "minItems", "maxItems", "maxProperties", "properties", "items", "required",
    "additionalProperties", "x-kubernetes-validations", "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}


def walk(schema, path, required, rows, rules):
    """Depth-first over properties, in the CRD's order; arrays descend into items as path[]."""
    for key in schema:
        if key not in KNOWN_KEYWORDS:
            print(f"gen-reference.py: warning: {path}: unknown schema key {key!r} "
                  "(an unquoted comma in a flow-style description?)", file=sys.stderr)
    rows.append((path, schema, required))
    for rule in schema.get("x-kubernetes-validations", []) or []:
        rules.append((path, rule))
    target = schema
    item_path = path
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        target = schema["items"]
        item_path = path + "[]"
        for key in target:
            if key not in KNOWN_KEYWORDS:
                print(f"gen-reference.py: warning: {item_path}: unknown schema key {key!r}",
                      file=sys.stderr)
        for rule in target.get("x-kubernetes-validations", []) or []:
            rules.append((item_path, rule))
    extra = target.get("additionalProperties")
    if isinstance(extra, dict):
        for rule in extra.get("x-kubernetes-validations", []) or []:
            rules.append((item_path + ".*", rule))
    required_here = set(target.get("required", []) or [])
    for name, child in (target.get("properties") or {}).items():
        walk(child, f"{item_path}.{name}", name in required_here, rows, rules)


def description(path, schema, notes):
    text = schema.get("description")
    if text:
        return cell(text)
    if path in notes:
        return cell(notes[path]) + " †"
    return "—"


def field_table(rows, notes):
    out = ["| Field | Type | Required | Default | Validation | Description |",
           "|---|---|---|---|---|---|"]
    for path, schema, required in rows:
        default = code(scalar(schema["default"])) if "default" in schema else ""
        out.append("| {} | {} | {} | {} | {} | {} |".format(
            code(path), cell(type_of(schema)), "yes" if required else "", default,
            constraints(schema), description(path, schema, notes)))
    return out


def rules_section(rules):
    out = []
    for path, rule in rules:
        out.append(f"- on `{path}`" + (f" (reported at `{rule['fieldPath']}`)" if rule.get("fieldPath") else "")
                   + ": " + rule.get("message", "(no message)"))
        out.append("")
        out.append("  ```cel")
        out.append("  " + rule["rule"])
        out.append("  ```")
        out.append("")
    return out


def generate(crd_path, output_name):
    with open(crd_path, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    spec = crd["spec"]
    names = spec["names"]
    if len(spec["versions"]) != 1:
        raise SystemExit("gen-reference.py: expected one version in the CRD")
    version = spec["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    rel_crd = os.path.relpath(os.path.abspath(crd_path), REPO_ROOT)
    kind = names["kind"]
    if kind not in KINDS:
        raise SystemExit(f"gen-reference.py: no notes for kind {kind}")
    notes, validator, also = KINDS[kind]

    out = [
        f"# {kind} reference",
        "",
        f"<!-- Generated by scripts/gen-reference.py from {rel_crd}. Do not edit: change the CRD and",
        f"     run `python3 scripts/gen-reference.py --output {output_name}`. tests/docs_test.sh fails",
        "     when this file and the CRD disagree. -->",
        "",
        cell(root.get("description", "")),
        "",
        "| | |",
        "|---|---|",
        f"| API version | `{spec['group']}/{version['name']}` |",
        f"| Kind | `{names['kind']}` (list: `{names.get('listKind', '')}`) |",
        f"| Scope | {spec['scope']} |",
        f"| Plural, singular | `{names['plural']}`, `{names.get('singular', '')}` |",
        "| Short names | " + ", ".join(f"`{n}`" for n in names.get("shortNames", [])) + " |",
        "| Categories | " + ", ".join(f"`{n}`" for n in names.get("categories", [])) + " |",
    ]
    subresources = version.get("subresources", {}) or {}
    if "status" in subresources:
        out.append("| Status subresource | yes: the operator writes `status`, never `spec` |")
    if "scale" in subresources:
        scale = subresources["scale"]
        out.append(f"| Scale subresource | replicas `{scale['specReplicasPath']}`, status replicas "
                   f"`{scale['statusReplicasPath']}`, selector `{scale.get('labelSelectorPath', '')}` "
                   "(`kubectl scale cpool NAME --replicas N`) |")
    out += ["", "Defaults marked in the tables are applied by the API server. Where a field has no",
            "schema default but its description names one, the operator applies it (as `poolkeeper",
            "check` and `render` do). The operator validates every spec again with the same rules",
            f"({validator}), and also checks what a schema cannot: {also}.",
            ""]

    columns = version.get("additionalPrinterColumns", []) or []
    if columns:
        out += [f"## Columns of `kubectl get {names['plural']}`", "",
                "| Column | Type | JSONPath |", "|---|---|---|"]
        for c in columns:
            out.append(f"| {cell(c['name'])} | {cell(c['type'])} | {code(c['jsonPath'])} |")
        out.append("")

    rows, rules = [], []
    props = root.get("properties", {})
    for rule in root.get("x-kubernetes-validations", []) or []:
        rules.append((kind, rule))
    walk(props["spec"], "spec", "spec" in (root.get("required") or []), rows, rules)
    spec_rows = rows
    status_rows, status_rules = [], []
    if "status" in props:
        walk(props["status"], "status", False, status_rows, status_rules)

    # One table per object under spec, so each stays readable.
    out += ["## spec", ""]
    groups = []
    for row in spec_rows:
        path = row[0]
        top = ".".join(path.replace("[]", "").split(".")[:2]) if path != "spec" else "spec"
        if not groups or groups[-1][0] != top:
            groups.append((top, []))
        groups[-1][1].append(row)
    for top, group in groups:
        if top != "spec":
            out += [f"### {top}", ""]
        out += field_table(group, notes)
        out.append("")

    out += ["## status", "",
            "Written by the operator through the status subresource; do not set it. "
            "Descriptions marked † are not in the CRD (it describes no status field); they are "
            "kept in scripts/gen-reference.py.", ""]
    out += field_table(status_rows, notes)
    out.append("")

    out += ["## Validation rules (CEL)", "",
            "Checked by the API server on create and update (`oldSelf` rules on update only), in "
            "addition to the types and bounds above.", ""]
    out += rules_section(rules + status_rules)

    unknown = sorted(set(notes) - {r[0] for r in status_rows})
    if unknown:
        raise SystemExit(f"gen-reference.py: the {kind} notes name fields the CRD lacks: " + ", ".join(unknown))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crd", action="append",
                        help="a CRD (repeatable; default: ConnectionPool, then PostgresServer)")
    parser.add_argument("--output", "-o", help="write here instead of standard output")
    args = parser.parse_args()
    output_name = os.path.relpath(os.path.abspath(args.output), REPO_ROOT) if args.output else "FILE"
    if output_name.startswith(".."):
        output_name = "docs/reference.md"
    text = "\n".join(generate(crd, output_name) for crd in (args.crd or DEFAULT_CRDS))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
