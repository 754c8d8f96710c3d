"""The second notification: what the key did, what it left behind, and what keyguard did about it."""

from __future__ import annotations

import hashlib
from typing import Any

from keyguard import notify
from keyguard.actions import Status
from keyguard.incident import PrincipalType, is_long_term
from keyguard.investigate.core import Investigation

TOP = 10


def subject(inv: Investigation) -> str:
    """An honest count: the things found (left behind or launched) and how many of them keyguard contained."""
    i, s = inv.incident, inv.summary
    state = "FAILED follow-up" if inv.failures else "INVESTIGATED"
    found = len(_persistence(inv)) + len(s.launches)
    acted = len(_contained(inv))
    done = f"{acted} would be contained" if inv.dry_run else f"{acted} contained"
    return notify.clean_subject(f"keyguard: {state} - {i.key_id}: {s.total} calls, {found} found, {done}")


def _contained(inv: Investigation) -> list[str]:
    """Targets keyguard changed (or would, in dry-run): keys it contained and users, roles and instances."""
    out = [r.incident.key_id for r in inv.keys if r.results and not r.failed]
    out += [r.target for r in inv.results if r.action != "record" and r.status in _CHANGED]
    return out


_CHANGED = (Status.DONE, Status.ALREADY_DONE, Status.DRY_RUN)


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
    lines += ["", "What to do now:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(next_steps(inv), 1)]
    return "\n".join(lines)


def next_steps(inv: Investigation) -> list[str]:
    """One step per thing found, in the order the body lists them, then the leaked key's own steps."""
    s, dry = inv.summary, inv.dry_run
    changed = _contained(inv)

    def held(kind: str, name: str) -> bool:
        return any(t.startswith(f"{kind} {name} ") or t == f"{kind} {name}" for t in changed)

    keyguard_did = "keyguard would hold it (dry-run: it is not held)" if dry else "keyguard holds it"
    steps: list[str] = []
    contained_keys = {r.incident.key_id: r for r in inv.keys}
    for user, key in s.created_keys:
        r = contained_keys.get(key)
        if r is not None and r.results and not r.failed and not dry:
            steps.append(
                f"Access key {key} of user {user}, created by the leaked key: keyguard deactivated it. Delete it:"
                f" aws iam delete-access-key --user-name {user} --access-key-id {key}"
            )
        else:
            steps.append(
                f"Access key {key} of user {user}, created by the leaked key, is STILL ACTIVE. Contain it now:"
                f' keyguard contain --key {key} --reason "created by leaked key {inv.incident.key_id}"'
            )
    for user, calls in sorted(s.changed_users.items()):
        state = keyguard_did if held("user", user) else "keyguard did not hold it"
        steps.append(
            f"User {user} ({', '.join(calls)}): {state}. If nobody expected it, delete its console password, keys"
            " and policies, then the user; if it is legitimate, review what was changed and"
            f' `keyguard release --user {user} --reason "..."`.'
        )
    for role, calls in sorted(s.changed_roles.items()):
        steps.append(
            f"Role {role} ({', '.join(calls)}): read its trust policy (who may assume it) and delete the role if"
            " nobody expected it."
        )
    for role in sorted(s.assumed_roles):
        state = "keyguard would revoke its sessions (dry-run)" if dry else "keyguard revoked its older sessions"
        if not held("role", role):
            state = "its sessions were NOT revoked"
        steps.append(
            f"Role {role} was assumed with the leaked key: {state}. Review what the sessions did, then"
            f' `keyguard release --role {role} --reason "..."`.'
        )
    for arn in s.other_account_roles:
        steps.append(f"The key assumed {arn} in another account: tell that account's owners now.")
    for launch in s.launches:
        steps.append(_launch_step(launch))
    for instance, region, tokens in inv.imds:
        if tokens == "optional":
            steps.append(
                f"Instance {instance} ({region}) allows IMDSv1, which lets its role credentials be stolen: require"
                f" IMDSv2: aws ec2 modify-instance-metadata-options --region {region} --instance-id {instance}"
                " --http-tokens required"
            )
    if inv.failures:
        steps.append("Fix what FAILED above (permissions? throttling?); keyguard retries the investigation.")
    if inv.lookup.errors:
        steps.append("Some regions could not be read: look up the key's CloudTrail history there by hand.")
    if not steps:
        steps.append("Nothing left behind was found in the window.")
    steps.append(
        "Finish the containment notice's steps: delete the leaked key after replacing it, then"
        f' `keyguard release --user {inv.owner or "<user>"} --reason "..."`.'
        if is_long_term(inv.incident.key_id) and inv.incident.principal_type is not PrincipalType.ASSUMED_ROLE
        else "Finish the containment notice's steps (fix where the role's credentials leaked, then release it)."
    )
    return steps


def _launch_step(launch: Any) -> str:
    kinds = f" ({', '.join(launch.kinds)})" if launch.kinds else ""
    ids = " ".join(launch.ids[:10])
    where = f"{launch.count} {launch.what}{kinds} in {launch.region}"
    if launch.service == "ec2" and launch.what == "instances" and ids:
        return (
            f"{where} launched by the leaked key cost money: if nobody expected them, terminate them:"
            f" aws ec2 terminate-instances --region {launch.region} --instance-ids {ids}"
        )
    listed = f": {ids}" if ids else ""
    return f"{where} ({launch.event}) launched by the leaked key: if nobody expected them, delete them{listed}."


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
