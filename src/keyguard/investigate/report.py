"""The second notification: what the key did, what it left behind, and what keyguard did about it."""

from __future__ import annotations

import hashlib
from typing import Any

from keyguard import notify
from keyguard.actions import Status
from keyguard.investigate.core import Investigation

TOP = 10


def subject(inv: Investigation) -> str:
    i, s = inv.incident, inv.summary
    state = "FAILED follow-up" if inv.failures else "INVESTIGATED"
    follow = len(inv.keys) + len([r for r in inv.results if r.action != "record" and r.status is not Status.SKIPPED])
    return notify.clean_subject(f"keyguard: {state} - {i.key_id}: {s.total} calls, {follow} follow-ups")


def body(inv: Investigation) -> str:
    i, s, look = inv.incident, inv.summary, inv.lookup
    lines = [
        f"What access key {i.key_id} ({inv.owner or i.principal_name or 'unknown owner'}) did, "
        f"follow-up to incident {i.incident_id}.",
        "",
        f"Window     : {inv.start:%Y-%m-%d %H:%M} .. {inv.end:%Y-%m-%d %H:%M} UTC (CloudTrail event history)",
        f"Regions    : {len(look.regions)} looked up, {sum(look.calls.values())} LookupEvents calls, "
        f"{look.seconds:.1f} s",
        f"Activity   : {s.total} calls" + (f", {s.first} .. {s.last}" if s.first else ""),
    ]
    if look.errors:
        lines.append("INCOMPLETE : " + "; ".join(f"{r}: {e}" for r, e in sorted(look.errors.items())))
    if s.total == 0:
        lines += ["", "No CloudTrail activity found for this key in the window: nothing to follow up."]
    else:
        lines += ["", "Calls (top):", *_counts(s.by_call)]
        lines += ["", "Regions:", *_counts(s.by_region)]
        if s.writes:
            lines += ["", "Write calls:", *_counts(s.writes)]
        lines += ["", "Source IPs:", *_counts(s.source_ips)]
        lines += ["", "User agents:", *_counts(s.user_agents)]
        if s.errors:
            recon = "  <- a burst of AccessDenied: reconnaissance" if s.looks_like_recon else ""
            lines += ["", f"Errors ({sum(s.errors.values())}){recon}:", *_counts(s.errors)]
    persistence = _persistence(inv)
    if persistence:
        lines += ["", "Left behind (persistence):", *persistence]
    if s.launches:
        lines += ["", "Launched (cost):"]
        for launch in s.launches:
            kinds = f" {', '.join(launch.kinds)}" if launch.kinds else ""
            ids = f": {', '.join(launch.ids[:10])}" if launch.ids else ""
            lines.append(f"  - {launch.region} {launch.event} {launch.count} {launch.what}{kinds}{ids}")
    for instance, region, tokens in inv.imds:
        verdict = "allows IMDSv1 (HttpTokens optional)" if tokens == "optional" else f"HttpTokens {tokens}"
        lines.append(f"Instance {instance} ({region}) metadata service: {verdict}")
    lines += ["", "Follow-up actions:"]
    follow = [f"  - contain key {r.incident.key_id} of {r.owner or '?'}: {r.outcome.value}" for r in inv.keys]
    follow += [f"  - {r.line()}" for r in inv.results]
    lines += follow or ["  - none needed"]
    if inv.dry_run:
        lines += ["", "Dry-run: nothing was changed."]
    if inv.failures:
        lines += ["", "FAILED (keyguard retries; then the dead-letter queue keeps the request):"]
        lines += [f"  - {f}" for f in inv.failures]
    return "\n".join(lines)


def _counts(counter: Any) -> list[str]:
    return [f"  {n:6d}  {name}" for name, n in counter.most_common(TOP)]


def _persistence(inv: Investigation) -> list[str]:
    s = inv.summary
    out = [f"  - access key {key} for user {user}" for user, key in s.created_keys]
    out += [f"  - user {u}: {', '.join(calls)}" for u, calls in sorted(s.changed_users.items())]
    out += [f"  - role {r}: {', '.join(calls)}" for r, calls in sorted(s.changed_roles.items())]
    out += [f"  - assumed role {r} (sessions {', '.join(sorted(set(v)))})" for r, v in sorted(s.assumed_roles.items())]
    out += [f"  - assumed another account's role {arn}" for arn in s.other_account_roles]
    return out


def document(inv: Investigation) -> dict[str, Any]:
    s = inv.summary
    return {
        "keyguard": 1,
        "kind": "investigation",
        "incidentId": inv.incident.incident_id,
        "accessKeyId": inv.incident.key_id,
        "owner": inv.owner,
        "window": [inv.start.isoformat(), inv.end.isoformat()],
        "regions": inv.lookup.regions,
        "lookupCalls": inv.lookup.calls,
        "incompleteRegions": inv.lookup.errors,
        "total": s.total,
        "first": s.first,
        "last": s.last,
        "byCall": dict(s.by_call),
        "byRegion": dict(s.by_region),
        "writes": dict(s.writes),
        "sourceIps": dict(s.source_ips),
        "userAgents": dict(s.user_agents),
        "errors": dict(s.errors),
        "createdKeys": [{"user": u, "accessKeyId": k} for u, k in s.created_keys],
        "changedUsers": s.changed_users,
        "changedRoles": s.changed_roles,
        "assumedRoles": s.assumed_roles,
        "launches": [vars(launch) | {"ids": list(launch.ids), "kinds": list(launch.kinds)} for launch in s.launches],
        "imds": [{"instance": a, "region": b, "httpTokens": c} for a, b, c in inv.imds],
        "keys": [{"accessKeyId": r.incident.key_id, "owner": r.owner, "outcome": r.outcome.value} for r in inv.keys],
        "actions": [
            {"action": a.action, "target": a.target, "status": a.status.value, "detail": a.detail or None}
            for a in inv.results
        ],
        "failures": inv.failures,
        "dryRun": inv.dry_run,
    }


def message(inv: Investigation) -> dict[str, Any]:
    outcome = "investigation-failed" if inv.failures else "investigated"
    level = "critical" if inv.failures else ("high" if inv.summary.writes or inv.summary.launches else "medium")
    return notify.package(subject(inv), body(inv), document(inv), inv.incident.source.value, level, outcome)


def dedup_key(inv: Investigation) -> str:
    raw = f"{inv.incident.incident_id}|investigation|{bool(inv.failures)}|{inv.dry_run}"
    return hashlib.sha256(raw.encode()).hexdigest()
