"""The investigation's notification: what the key did, what it left behind, what keyguard did about it,
and what is left for a person, with the exact command to revert each.

Counted honestly: the subject's numbers are the number of lines in the body's "Contained by keyguard"
and "Needs you" lists (one line per thing: a role, a user, a key, a policy, a provider), and nothing is
counted that is not listed. Only what no earlier run announced is listed; a part of a long history says
"partial, continuing" until the last part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from keyguard import notify
from keyguard.incident import PrincipalType, is_long_term
from keyguard.investigate.core import Investigation
from keyguard.investigate.followup import Finding

TOP = 10
RUNS = ("at containment", "again, 15 minutes after containment", "again, 60 minutes after containment (last)")


@dataclass
class Group:
    """The findings about one target (a role may have been created, attached to and trusted out)."""

    target: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def section(self) -> str:
        states = {f.status for f in self.findings}
        if any(f.needs_a_human for f in self.findings):
            return "human"
        if states & {"done", "would"}:
            return "contained"
        return "already"

    @property
    def critical(self) -> bool:
        return any(f.critical for f in self.findings)

    def lines(self) -> list[str]:
        results: list[str] = []
        for f in self.findings:
            for r in f.results:
                if r.line() not in results:
                    results.append(r.line())
        head = f"  - {self.target}" + (" [CRITICAL]" if self.critical else "")
        out = [head + (f": {'; '.join(results)}" if results else "")]
        for f in self.findings:
            out.append(f"      {f.line}")
            out += [f"        {d}" for d in f.details]
            out += [f"        revert: {c}" for c in f.revert]
        return out


def groups(inv: Investigation) -> dict[str, list[Group]]:
    by_target: dict[str, Group] = {}
    for f in inv.findings:
        by_target.setdefault(f.target, Group(f.target)).findings.append(f)
    out: dict[str, list[Group]] = {"contained": [], "human": [], "already": []}
    for g in by_target.values():
        out[g.section].append(g)
    return out


def _state(inv: Investigation) -> str:
    if inv.failures:
        return "FAILED follow-up"
    if not inv.finished:
        return f"PARTIAL (part {inv.run.part}, continuing)"
    if inv.run.phase:
        return f"NEW FINDINGS (+{(15, 60)[inv.run.phase - 1]} min)"
    return "INVESTIGATED"


def subject(inv: Investigation) -> str:
    g = groups(inv)
    contained, human = len(g["contained"]), len(g["human"])
    verb = "would be contained" if inv.dry_run else "contained"
    text = f"keyguard: {_state(inv)} - {inv.incident.key_id}: {inv.summary.total} calls, {contained} {verb}, "
    return notify.clean_subject(text + f"{human} need you")


def body(inv: Investigation) -> str:
    i, s, look = inv.incident, inv.summary, inv.lookup
    lines = [
        f"What access key {i.key_id} ({inv.owner or i.principal_name or 'unknown owner'}) did, "
        f"follow-up to incident {i.incident_id}.",
        "",
        f"Run        : {RUNS[inv.run.phase]}"
        + (f", part {inv.run.part}" if inv.run.part > 1 or not inv.finished else ""),
    ]
    if not inv.finished:
        read = sum(look.calls.values())
        lines.append(
            f"PARTIAL, CONTINUING: {s.total} events read so far ({read} pages); the rest of the history is "
            "read by the next part, which reports what it finds."
        )
    lines += [
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
    for instance, region, tokens in inv.imds:
        verdict = "allows IMDSv1 (HttpTokens optional)" if tokens == "optional" else f"HttpTokens {tokens}"
        lines.append(f"Instance {instance} ({region}) metadata service: {verdict}")
    g = groups(inv)
    verb = "Would be contained (dry-run)" if inv.dry_run else "Contained by keyguard"
    if inv.findings:
        lines += ["", f"{verb} ({len(g['contained'])}):"]
        lines += [x for group in g["contained"] for x in group.lines()] or ["  - none"]
        lines += ["", f"Needs you ({len(g['human'])}):"]
        lines += [x for group in g["human"] for x in group.lines()] or ["  - none"]
    else:
        lines += ["", "Follow-up: nothing new left behind" + (" (so far)." if not inv.finished else ".")]
    if g["already"]:
        lines += ["", f"Already contained by the first response ({len(g['already'])}):"]
        lines += [x for group in g["already"] for x in group.lines()]
    if inv.already:
        lines += ["", f"Announced before and not repeated: {inv.already} findings."]
    if inv.run.phase < 2 and inv.finished:
        lines += [
            "",
            "keyguard looks again at about +15 and +60 minutes (CloudTrail's history lags) and reports "
            "only what is new.",
        ]
    if inv.dry_run:
        lines += ["", "Dry-run: nothing was changed."]
    if inv.failures:
        lines += ["", "FAILED (keyguard retries; then the dead-letter queue keeps the request):"]
        lines += [f"  - {f}" for f in inv.failures]
    lines += ["", "What to do now:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(next_steps(inv), 1)]
    return "\n".join(lines)


def next_steps(inv: Investigation) -> list[str]:
    """One step per thing listed, in the order the body lists them, then the leaked key's own steps."""
    g = groups(inv)
    own_steps = ("launch", "other-account")  # they get the exact steps below
    g = {k: [x for x in v if not all(f.kind in own_steps for f in x.findings)] for k, v in g.items()}
    steps: list[str] = []
    for group in g["human"]:
        revert = [c for f in group.findings for c in f.revert]
        what = "; ".join(f.line for f in group.findings)
        steps.append(
            f"{group.target}: {what}. keyguard did not change it (it would deny everyone who uses it): "
            + (f"revert it: {revert[0]}" if revert else "review it and revert it by hand")
        )
    held = "keyguard would hold it (dry-run: it is not held)" if inv.dry_run else "keyguard holds it"
    for group in g["contained"]:
        kind, _, name = group.target.partition(" ")
        if kind in ("user", "role"):
            steps.append(
                f"{group.target}: {held}. If nobody expected it, delete it; if it is legitimate, review what was"
                f' changed, then `keyguard release --{kind} {name} --reason "..."`.'
            )
        else:
            steps.append(f"{group.target}: {held}. Delete it once you have checked nobody needs it.")
    for arn in inv.summary.other_account_roles:
        steps.append(f"The key assumed {arn} in another account: tell that account's owners now.")
    for launch in inv.summary.launches:
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
    if not steps and inv.summary.total:  # (no activity at all is said above)
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


def document(inv: Investigation) -> dict[str, Any]:
    s = inv.summary
    g = groups(inv)
    return {
        "keyguard": 1,
        "kind": "investigation",
        "incidentId": inv.incident.incident_id,
        "accessKeyId": inv.incident.key_id,
        "owner": inv.owner,
        "run": {"phase": inv.run.phase, "part": inv.run.part, "finished": inv.finished},
        "partial": not inv.finished,
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
            for a in inv.results + [r for k in inv.keys for r in k.results]
        ],
        "findings": [f.document() for f in inv.findings],
        "contained": [x.target for x in g["contained"]],
        "needsYou": [x.target for x in g["human"]],
        "alreadyAnnounced": inv.already,
        "failures": inv.failures,
        "dryRun": inv.dry_run,
    }


def message(inv: Investigation) -> dict[str, Any]:
    outcome = "investigation-failed" if inv.failures else ("investigating" if not inv.finished else "investigated")
    critical = inv.failures or any(f.critical for f in inv.findings)
    level = "critical" if critical else ("high" if inv.findings or inv.summary.writes else "medium")
    doc = {**document(inv), "level": level, "outcome": outcome}
    return notify.package(subject(inv), body(inv), doc, inv.incident.source.value, level, outcome)


def dedup_key(inv: Investigation) -> str:
    """One message per run and part (and failed or not): an SQS redelivery of the same part announces
    nothing twice."""
    i, run = inv.incident, inv.run
    raw = f"{i.incident_id}|investigation|{run.phase}|{run.part}|{bool(inv.failures)}|{inv.dry_run}"
    return hashlib.sha256(raw.encode()).hexdigest()
