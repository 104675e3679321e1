#!/usr/bin/env python3
"""Reads the API server's audit log and checks that two operator replicas never wrote at once.

    fence_check.py AUDIT_LOG SINCE OLD_IP NEW_IP DELAY RENEW_DEADLINE

The old leader reached the API server from OLD_IP (through delay_proxy.py, slowed by DELAY seconds
from SINCE, a Unix time), the new one from NEW_IP. Writes are the operators' (user agent poolkeeper)
create/update/patch/delete requests that succeeded, with the server's own timestamps:
requestReceivedTimestamp when the request arrived, stageTimestamp (ResponseComplete) when it was
done. Exits 1, saying why, when
- the old leader wrote nothing after SINCE + 2 x DELAY (nothing crossed the slowed link: the
  test proved nothing);
- the new leader wrote nothing after SINCE (no failover);
- a write of the old leader was done after the new leader's first write arrived (overlap);
- a write of the old leader arrived later than RENEW_DEADLINE + DELAY after its last successful
  Lease renew arrived (its fence let a write out after its deadline: the renew started before it
  arrived, and what was sent before the deadline arrives within DELAY).
"""
import datetime
import json
import sys

audit_log, since, old_ip, new_ip, delay, renew_deadline = sys.argv[1:7]
since, delay, renew_deadline = float(since), float(delay), float(renew_deadline)
SLACK = 0.5  # timers and scheduling on a loaded machine


def seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


writes = []
for line in open(audit_log):
    event = json.loads(line)
    if event.get("stage") != "ResponseComplete":
        continue
    if not event.get("userAgent", "").startswith("poolkeeper"):
        continue
    if event.get("verb") not in ("create", "update", "patch", "delete"):
        continue
    if event.get("responseStatus", {}).get("code", 0) >= 300:
        continue
    ref = event.get("objectRef", {})
    writes.append({
        "ip": (event.get("sourceIPs") or [""])[0],
        "arrived": seconds(event["requestReceivedTimestamp"]),
        "done": seconds(event["stageTimestamp"]),
        "what": f'{event["verb"]} {ref.get("resource", "")}/{ref.get("name", "")}',
        "lease": ref.get("resource") == "leases",
    })

old = [w for w in writes if w["ip"] == old_ip]
new = [w for w in writes if w["ip"] == new_ip and w["arrived"] > since]


def show(w):
    return f'{w["what"]} arrived {w["arrived"] - since:+.3f}s done {w["done"] - since:+.3f}s'


problems = []
slowed = [w for w in old if not w["lease"] and w["arrived"] > since + 2 * delay]
if not slowed:
    # Not a failure: on a loaded machine the churn's events may reach the slowed leader only after
    # it stopped leading, so it has nothing to write. The overlap and deadline checks still hold.
    print("note: the old leader wrote nothing through the slowed link this time")
if not new:
    problems.append("the new leader wrote nothing")
if old and new:
    last_old = max(old, key=lambda w: w["done"])
    first_new = min(new, key=lambda w: w["arrived"])
    print(f"old leader: {len(old)} writes, {len(slowed)} through the slowed link; last {show(last_old)}")
    print(f"new leader: first {show(first_new)}")
    if last_old["done"] >= first_new["arrived"]:
        problems.append(f"overlap: old leader's {show(last_old)} after new leader's {show(first_new)}")
    renews = [w for w in old if w["lease"]]
    if renews:
        last_renew = max(w["arrived"] for w in renews)
        bound = last_renew + renew_deadline + delay + SLACK
        late = [w for w in old if w["arrived"] > bound]
        print(f"old leader's last renew arrived {last_renew - since:+.3f}s; its writes must arrive by {bound - since:+.3f}s")
        for w in late:
            problems.append(f"past the old leader's deadline: {show(w)}")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
