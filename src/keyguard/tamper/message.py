"""The tamper watch's notification: who did what to which of keyguard's holds or resources, from where,
and what keyguard did about it. Attacker-controlled strings appear as quoted data, cut to a bound."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from keyguard.actions import ActionResult, Status
from keyguard.notify import package
from keyguard.tamper.call import DOCUMENT_MAX, Call, text
from keyguard.tamper.decide import Decision, Verdict

SOURCE = "tamper"


def outcome(decision: Decision, results: list[ActionResult], dry_run: bool) -> str:
    if decision.verdict is not Verdict.RECONTAIN:
        return decision.verdict.value
    if any(r.status is Status.FAILED for r in results):
        return "failed"
    if dry_run:
        return "would re-contain"
    return "re-contained" if results else "held, nothing to put back"


_HEADLINE = {
    "re-contained": "CRITICAL containment undone, re-applied",
    "would re-contain": "CRITICAL containment undone (DRY-RUN: not re-applied)",
    "failed": "CRITICAL containment undone, re-apply FAILED",
    "held, nothing to put back": "CRITICAL change on a held principal",
    "alert": "CRITICAL keyguard tampered with",
    "suspicious": "keyguard record tags changed",
}


_SHORT = {
    "re-contained": "CRITICAL undone, re-applied",
    "would re-contain": "CRITICAL undone (DRY-RUN)",
    "failed": "CRITICAL undone, re-apply FAILED",
    "held, nothing to put back": "CRITICAL held principal changed",
    "alert": "CRITICAL tampering",
    "suspicious": "record tags changed",
}


def dedup_key(call: Call) -> str:
    """One message per CloudTrail event, however often EventBridge delivers it."""
    return hashlib.sha256(f"tamper|{call.event_id}".encode()).hexdigest()


def message(call: Call, decision: Decision, results: list[ActionResult], dry_run: bool) -> dict[str, Any]:
    result = outcome(decision, results, dry_run)
    headline = _HEADLINE[result]
    target = f"{decision.kind} {decision.name}" if decision.name else decision.kind
    who = call.actor.identity.rsplit("/", 1)[-1] if call.actor.identity else "unknown"
    subject = f"keyguard: {_SHORT[result]} by {who}: {call.name} on {target}"
    facts = [
        ("Call", f"{call.event_source} {call.name}"),
        ("On", target),
        ("When", call.time or "-"),
        ("Account", call.account or "-"),
        ("Region", call.region or "-"),
        ("CloudTrail event id", text(call.event_id, 64) or "-"),
        *call.actor.facts(),
    ]
    if decision.new_name:
        facts.append(("New name", text(decision.new_name) or "-"))
    quoted = _quoted(call)
    width = max(len(k) for k, _ in facts)
    lines = [f"{headline}: {decision.reason}", ""]
    lines += [f"{k.ljust(width)} : {v}" for k, v in facts]
    if quoted:
        lines += ["", "What the call asked for (attacker-controlled text, quoted as data):", f"  {quoted}"]
    lines += ["", "What keyguard did:"]
    lines += [f"  - {r.line()}" for r in results] or ["  - nothing to re-apply (alert only)"]
    lines += ["", "What to do now:", *[f"  {n}. {s}" for n, s in enumerate(_steps(call, decision, result), 1)]]
    doc = {
        "keyguard": 1,
        "kind": "tamper",  # docs/message.schema.json: a message kind of its own
        "source": SOURCE,
        "outcome": result,
        "level": decision.level,
        "reason": decision.reason,
        "dryRun": dry_run,
        "eventId": call.event_id,
        "eventName": call.name,
        "eventSource": call.event_source,
        "eventTime": call.time,
        "account": call.account,
        "region": call.region,
        "target": {"kind": decision.kind, "name": decision.name, "newName": decision.new_name},
        "actor": call.actor.document(),
        "request": quoted,
        "actions": [
            {"action": r.action, "target": r.target, "status": r.status.value, "detail": r.detail or None}
            for r in results
        ],
    }
    return package(subject, "\n".join(lines), doc, SOURCE, decision.level, result)


def _quoted(call: Call) -> str | None:
    import json

    if not call.request:
        return None
    return text(json.dumps(call.request, sort_keys=True, default=str), DOCUMENT_MAX)


def _steps(call: Call, decision: Decision, result: str) -> list[str]:
    who = call.actor.identity
    steps = [
        f"Treat {who} (key {call.actor.access_key_id or '-'}, from {call.actor.source_ip or '-'}) as compromised:"
        " contain it (keyguard contain --key ...) and review what else it did in CloudTrail."
    ]
    if result == "failed":
        steps.insert(0, "keyguard retries the re-apply; put the containment back by hand now (see the failed step).")
    if decision.kind == "role" and call.name == "UpdateAssumeRolePolicy":
        steps.append("Restore the role's trust policy: compare it with the change quoted above (aws iam get-role).")
    steps += _undo_steps(call)
    if decision.verdict is Verdict.ALERT and decision.kind not in ("user", "role"):
        steps.append(
            "Check keyguard's stack for drift and redeploy it (sam deploy); until then keyguard may be blind here."
        )
    return steps


_ARG = re.compile(r"[A-Za-z0-9._:/@+=,-]{1,256}")


def _arg(value: object, placeholder: str) -> str:
    """A value AWS accepted (an id, a name, an ARN) as a shell argument; anything else stays a placeholder."""
    return value if isinstance(value, str) and _ARG.fullmatch(value) else placeholder


def _undo_steps(call: Call) -> list[str]:
    """How to take back what the call did, when a redeploy of keyguard's stack would not."""
    name = call.name
    if name == "Subscribe":
        sub = _arg(call.response.get("subscriptionArn"), "<its subscription ARN>")
        return [
            "Someone new receives every incident: remove the subscription unless you made it:"
            f" aws sns unsubscribe --subscription-arn {sub} (the endpoint is quoted above)."
        ]
    if name == "PutDataProtectionPolicy":
        topic = _arg(call.param("resourceArn"), "<topic ARN>")
        return [
            f"Read the policy (aws sns get-data-protection-policy --resource-arn {topic}) and remove what denies"
            " keyguard's messages; until then keyguard's notices may be refused."
        ]
    if name in ("CreateIPSet", "UpdateIPSet"):
        detector = _arg(call.param("detectorId"), "<detector id>")
        ipset = _arg(call.param("ipSetId") or call.response.get("ipSetId"), "<ip set id>")
        return [
            "GuardDuty now trusts the addresses in that list and reports nothing they do: turn it off"
            f" (aws guardduty update-ip-set --detector-id {detector} --ip-set-id {ipset} --no-activate) unless"
            " you made it, and read the list it points to (quoted above)."
        ]
    if name in ("CreateFilter", "UpdateFilter"):
        detector = _arg(call.param("detectorId"), "<detector id>")
        filt = _arg(call.param("name", "filterName"), "<filter name>")
        return [
            f"Read the filter (aws guardduty get-filter --detector-id {detector} --filter-name {filt}); delete it"
            " unless you made it, then look for access-key findings among GuardDuty's archived findings."
        ]
    return []
