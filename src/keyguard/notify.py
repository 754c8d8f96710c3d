"""One SNS message per response: a subject naming key and outcome, a body a person can act on at
3 a.m., a JSON part for machines, and message attributes for subscription filter policies."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC
from typing import Any

from keyguard.actions import BOUNDARY_LAYER, QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY
from keyguard.defang import printable, printable_lines, visible_strings
from keyguard.incident import PrincipalType, Source, is_long_term
from keyguard.plan import Outcome
from keyguard.respond import Response

NOTIFY_PERMISSIONS = ("sns:Publish",)
SUBJECT_MAX = 99  # SNS: "must be less than 100 characters"

HEADLINE = {  # the outcome in words: subjects, bodies, chat titles
    Outcome.CONTAINED: "CONTAINED",
    Outcome.SESSIONS_REVOKED: "SESSIONS REVOKED",
    Outcome.WOULD_CONTAIN: "DRY-RUN would contain",
    Outcome.FAILED: "FAILED to contain",
    Outcome.NOT_FOUND: "key not found",
    Outcome.BELOW_THRESHOLD: "low severity, notify only",
    Outcome.ROOT: "ROOT credentials, act now",
    Outcome.SAMPLE: "sample finding, wiring OK",
    Outcome.PROTECTED: "protected principal, not touched",
    Outcome.EXEMPT: "exempt user, not touched",
    Outcome.NOTIFY_ONLY: "notify only",
    Outcome.OTHER_ACCOUNT: "other account, not touched",
}

_LEVEL = {
    Outcome.FAILED: "critical",
    Outcome.ROOT: "critical",
    Outcome.CONTAINED: "high",
    Outcome.SESSIONS_REVOKED: "high",
    Outcome.WOULD_CONTAIN: "high",
    Outcome.NOT_FOUND: "medium",
    Outcome.PROTECTED: "high",
    Outcome.EXEMPT: "low",
    Outcome.NOTIFY_ONLY: "medium",
    Outcome.BELOW_THRESHOLD: "low",
    Outcome.OTHER_ACCOUNT: "medium",
    Outcome.SAMPLE: "info",
}


def subject(r: Response) -> str:
    update = "UPDATE, " if r.update_of else ""
    text = f"keyguard: {update}{HEADLINE[r.outcome]} - {r.incident.key_id or 'no key named'}"
    if r.owner or r.incident.principal_name:
        text += f" ({r.owner or r.incident.principal_name})"
    return clean_subject(text)


def level(r: Response) -> str:
    return _LEVEL[r.outcome]


def body(r: Response) -> str:
    i = r.incident
    lines = [f"{HEADLINE[r.outcome]}: {r.reason}", ""]
    if r.update_of:
        lines[1:1] = [f"This updates incident {r.update_of}: keyguard already holds this principal for it.", ""]
    if r.dry_run and r.outcome is Outcome.WOULD_CONTAIN:
        lines += ["keyguard runs in dry-run mode (Mode=dry-run): it changed nothing.", ""]
    facts = [
        ("Access key", i.key_id or _no_key(i)),
        ("Owner", _owner(r)),
        ("Account", i.account),
        ("Region", i.region or "-"),
        ("Source", f"{i.source.value}: {i.finding_type}"),
        ("Severity", f"{i.severity:g}" if i.severity is not None else "-"),
        ("Source id", i.source_id),
        ("Incident", i.incident_id),
    ]
    facts += i.evidence.lines()
    detail = _detail(r)
    if detail:
        facts.append(("Detail", detail))
    width = max(len(k) for k, _ in facts)
    lines += [f"{k.ljust(width)} : {v}" for k, v in facts]
    if r.notes:
        lines += ["", "Note:", *[f"  - {note}" for note in r.notes]]
    lines += ["", "Actions:"]
    lines += [f"  - {res.line()}" for res in r.results] or ["  - none (see above why)"]
    lines += ["", "What to do now:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(_next_steps(r) + exposure_steps(r), 1)]
    return "\n".join(lines)


def exposure_steps(r: Response) -> list[str]:
    """Where AWS found the key (defanged by the extractor) and AWS's Support case: what the owner must scrub,
    and by when to answer AWS (Health, Trusted Advisor)."""
    ev, steps = r.incident.evidence, []
    if ev.exposed_at:
        steps.append(
            f"Remove the key from where AWS found it: {ev.exposed_at} (defanged: replace hxxp with http and [.]"
            " with . to visit it). Rewrite the history too (a deleted file stays in earlier commits, forks and"
            " caches); the key stays leaked whatever you remove."
        )
    if ev.reply_by:
        case = f"AWS Support case {ev.support_case}" if ev.support_case else "AWS's Support case about this key"
        steps.append(
            f"Reply to {case} (AWS Support Center) by {ev.reply_by} saying what you did: AWS may restrict or"
            " suspend the account if nobody answers."
        )
    return steps


def _no_key(i: Any) -> str:
    if i.principal_type is PrincipalType.OTHER:  # e.g. an attack sequence's actors keyguard cannot prove
        return "none acted on (the credentials named are listed above, with why)"
    return "none named (the event names the user only)"


_KEY_IN_TEXT = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_USER_IN_TEXT = re.compile(r"\bIAM user ([\w+=,.@-]+?)(?=[\s,;:)]|\.(?:\s|$)|$)")


def _detail(r: Response) -> str | None:
    """The event's own text, unless it names another key or user than the one this notice is about (AWS
    Health's text can be a template, and the emulator rewrites only the event's entities): a reader must
    never see one key and owner in the facts and another in the detail."""
    text = r.incident.evidence.description
    if not text:
        return None
    keys = set(_KEY_IN_TEXT.findall(text)) - {r.incident.key_id}
    users = {u for u in _USER_IN_TEXT.findall(text) if u != (r.owner or r.incident.principal_name)}
    if keys or users:
        return (
            "left out: the event's text names another key or user than the facts above (IAM named the owner);"
            " read it in the AWS Health Dashboard (Source id)"
        )
    return text


def _owner(r: Response) -> str:
    i = r.incident
    kind = i.principal_type.value
    if r.owner:
        text = f"{r.owner} ({'role' if i.principal_type is PrincipalType.ASSUMED_ROLE else 'IAM user'})"
    elif i.principal_name:
        text = f"{i.principal_name} ({kind}, as the event says; not verified)"
    else:
        text = f"unknown ({kind})"
    return f"{text}; NOTE: {r.owner_note}" if r.owner_note else text


def _next_steps(r: Response) -> list[str]:
    i, o = r.incident, r.outcome
    user = r.owner or i.principal_name or "<user>"
    if o is Outcome.SAMPLE:
        return ["Nothing: this was a GuardDuty sample finding. Real findings will be contained."]
    if o is Outcome.ROOT:
        return [
            "Sign in as root with MFA, delete the root access key (Security credentials page) and change the"
            " root password.",
            "Review CloudTrail for what the root credentials did; contact AWS Support if the account is abused.",
        ]
    if i.principal_type is PrincipalType.ASSUMED_ROLE and o in (
        Outcome.CONTAINED,
        Outcome.SESSIONS_REVOKED,
        Outcome.WOULD_CONTAIN,
        Outcome.FAILED,
    ):
        return _role_steps(r, user)
    if o is Outcome.FAILED and i.source is Source.MANUAL:
        return _manual_failed_steps(r, user)
    if o is Outcome.FAILED:
        steps = ["keyguard retries automatically; if it still fails the event lands in the dead-letter queue."]
        if is_long_term(i.key_id):
            steps.append(
                f'Contain by hand now: keyguard contain --key {i.key_id} --reason "{_case(i)}"'
                f" (fallback: aws iam update-access-key --user-name {user} --access-key-id {i.key_id}"
                " --status Inactive)"
            )
        else:
            steps.append(_session_user_step(user, held=False))
        steps.append("Fix the error above (permissions? throttling?), then check this key again.")
        return steps
    if o in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN) and i.kind.value == "new-key":
        return _new_key_steps(r, user)
    if o in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN) and not is_long_term(i.key_id):
        steps = []
        if o is Outcome.WOULD_CONTAIN:
            steps.append(
                f"Dry-run: keyguard changed nothing, so user {user} and its session credentials {i.key_id} are"
                " STILL ACTIVE."
            )
        return [
            *steps,
            _session_user_step(user, held=o is Outcome.CONTAINED),
            "Review what the session did (CloudTrail, filter by access key id) and undo it.",
            _release_step("user", user, QUARANTINE_POLICY),
        ]
    if o in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN) and not i.key_id:
        return [
            "AWS's support case (and the AWS Health event) names the exposed key: deactivate and delete exactly"
            f" that key after replacing it. Check with: keyguard status --user {user}",
            "Review what the user's keys did (CloudTrail) and undo it, then release the user: keyguard release"
            f" --user {user}",
        ]
    if o in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN):
        steps = []
        if o is Outcome.WOULD_CONTAIN:
            steps.append(
                f"The key is STILL ACTIVE: keyguard runs in dry-run and changed nothing. Contain it now:"
                f' keyguard contain --key {i.key_id} --reason "{_case(i)}"'
            )
        return [
            *steps,
            "Review what the key did (CloudTrail, filter by access key id) and undo it; look for new users, keys,"
            " roles and instances.",
            f"Delete the leaked key after replacing it (never reactivate it): aws iam delete-access-key"
            f" --user-name {user} --access-key-id {i.key_id}",
            _release_step("user", user, QUARANTINE_POLICY),
            "Better: replace long-lived keys with roles (instance profiles, the metadata service, SSO).",
        ]
    if o is Outcome.NOT_FOUND:
        return ["Check whether the key belongs to another of your accounts and contain it there."]
    if is_long_term(i.key_id):
        return [
            "Review the finding (keyguard did not act, see why above). If it is real, contain the key:"
            f' keyguard contain --key {i.key_id} --reason "{_case(i)}"'
        ]
    return ["Review the finding; contain by hand if it is real (keyguard did not act, see why above)."]


def _manual_failed_steps(r: Response, user: str) -> list[str]:
    """A containment run by hand (keyguard contain) that failed: no Lambda retries it and no dead-letter
    queue keeps it, and the command that just failed is no remedy: each failed layer by hand, then a check."""
    i = r.incident
    steps = [
        "Nothing retries this: it was run by hand from the command line, not by the stack's functions. Until"
        " someone acts, only the actions marked done above hold."
    ]
    boundary = next((a.policy_arn for a in r._actions if a.name == BOUNDARY_LAYER), "<the stack's DenyAllPolicy>")
    by_hand = {
        "lookup-owner": f"IAM did not name the key's owner (error above): aws iam get-access-key-last-used"
        f" --access-key-id {i.key_id} names it.",
        "deactivate-key": f"Deactivate the key: aws iam update-access-key --user-name {user} --access-key-id"
        f" {i.key_id} --status Inactive",
        "quarantine-user": f"Quarantine the user: aws iam put-user-policy --user-name {user} --policy-name"
        f" {QUARANTINE_POLICY} --policy-document"
        ' \'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}\'',
        BOUNDARY_LAYER: f"Set the deny-all boundary: aws iam put-user-permissions-boundary --user-name {user}"
        f" --permissions-boundary {boundary}",
        "ledger": "The ledger did not record it: the tamper watch will not put this containment back if it is"
        " undone. Keep watching the user until the cause is fixed.",
    }
    steps.append("Fix the cause named in the error above first (permissions? a quota? the policy ARN?).")
    failed = dict.fromkeys(res.action for res in r.failures)
    steps += [by_hand[a] for a in failed if a in by_hand]
    steps.append(f"Check what holds: keyguard status --user {user} (exit 0 only when every layer holds).")
    return steps


def _case(i: Any) -> str:
    return f"{i.source.value} {i.finding_type}"[:80].replace('"', "'")


def _release_step(kind: str, name: str, policy: str) -> str:
    """`keyguard release` first (it records who and why, and removes every layer); the raw calls after."""
    if kind == "role":
        raw = f"aws iam delete-role-policy --role-name {name} --policy-name {policy}"
    else:
        raw = (
            f"aws iam delete-user-policy --user-name {name} --policy-name {policy}, and if keyguard set a"
            f" permissions boundary: aws iam delete-user-permissions-boundary --user-name {name}"
        )
    return (
        f'Release the {kind} once it is safe: keyguard release --{kind} {name} --reason "..."'
        f" (it records who released and why). Only if the keyguard command is unavailable: {raw}"
    )


def _session_user_step(user: str, *, held: bool = True) -> str:
    text = (
        f"Temporary (ASIA) credentials cannot be deleted and expire on their own: rotate user {user}'s long-term"
        " keys (one of them minted the session)"
    )
    if held:
        return text + "; the quarantine holds until you release the user."
    return text + (
        f", and quarantine the user until then: aws iam put-user-policy --user-name {user} --policy-name"
        f" {QUARANTINE_POLICY} --policy-document"
        ' \'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}\''
    )


def _role_steps(r: Response, role: str) -> list[str]:
    o = r.outcome
    steps = []
    if o in (Outcome.WOULD_CONTAIN, Outcome.FAILED):
        head = "Dry-run: keyguard changed nothing" if o is Outcome.WOULD_CONTAIN else "keyguard could not revoke"
        steps.append(
            f"{head}, so the stolen session credentials of role {role} STILL WORK. Revoke the role's sessions now:"
            f" IAM console, Roles, {role}, Revoke active sessions (or: aws iam put-role-policy --role-name {role}"
            f" --policy-name {REVOKE_SESSIONS_POLICY} --policy-document with a Deny of * on"
            " DateLessThan aws:TokenIssueTime = now)."
        )
    steps += [
        "Find where the role's credentials leaked (instance, container, CI) and fix it; require IMDSv2.",
        "Review what the session did (CloudTrail, filter by access key id) and undo it.",
    ]
    if o is not Outcome.WOULD_CONTAIN:
        steps.append(_release_step("role", role, REVOKE_SESSIONS_POLICY))
    return steps


def _new_key_steps(r: Response, user: str) -> list[str]:
    i = r.incident
    exempt = (
        f"to let {user} keep creating keys, add it to the stack parameter ExemptPrincipals (user names or ARNs;"
        " a keyguard:exempt tag no longer exempts)"
    )
    if r.outcome is Outcome.WOULD_CONTAIN:
        return [
            f"Dry-run: keyguard changed nothing; the new key {i.key_id} is active. If nobody expected it, deactivate"
            f" it now: aws iam update-access-key --user-name {user} --access-key-id {i.key_id} --status Inactive",
            "Long-lived keys are a liability: use an IAM role (instance profile, IAM Roles Anywhere, SSO) instead.",
            f"If the key is truly needed, nothing to undo; {exempt}.",
        ]
    return [
        "Long-lived keys are a liability: use an IAM role (instance profile, IAM Roles Anywhere, SSO) instead.",
        f"If the key is truly needed: release the user and turn the key back on: keyguard release --user {user}"
        f' --reactivate {i.key_id} --reason "..." (fallback: aws iam update-access-key --user-name {user}'
        f" --access-key-id {i.key_id} --status Active, and aws iam delete-user-policy --user-name {user}"
        f" --policy-name {REVOKE_SESSIONS_POLICY}); {exempt}.",
    ]


def document(r: Response) -> dict[str, Any]:
    i = r.incident
    doc = {
        "keyguard": 1,
        "incidentId": i.incident_id,
        "outcome": r.outcome.value,
        "level": level(r),
        "reason": r.reason,
        "dryRun": r.dry_run,
        "at": r.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accessKeyId": i.key_id,
        "principal": {"type": i.principal_type.value, "named": i.principal_name, "verifiedOwner": r.owner},
        "ownerNote": r.owner_note,
        "notes": list(r.notes),
        "account": i.account,
        "region": i.region,
        "source": i.source.value,
        "findingType": i.finding_type,
        "severity": i.severity,
        "sourceId": i.source_id,
        "eventId": i.event_id,
        "evidence": {k: v for k, v in vars(i.evidence).items() if v is not None},
        "actions": [
            {"action": a.action, "target": a.target, "status": a.status.value, "detail": a.detail or None}
            for a in r.results
        ],
    }
    if r.update_of:  # the earlier incident this one updates (keyguard.report.updates)
        doc["updateOf"] = r.update_of
    return doc


def message(r: Response) -> dict[str, Any]:
    """Arguments for sns.publish (TopicArn added by the caller)."""
    return package(subject(r), body(r), document(r), r.incident.source.value, level(r), r.outcome.value)


SNS_MAX_BYTES = 262_144  # one message: body, subject and attributes together (256 KiB)


def package(subject_text: str, text: str, doc: dict[str, Any], source: str, severity: str, outcome: str) -> dict:
    """sns.publish arguments: text for people (default, email), JSON for machines (sqs, lambda, http[s]),
    and message attributes for subscription filter policies.

    Always within SNS's limit, measured on what is sent: the facts appear in 7 protocol copies, JSON-escaped
    twice (a non-ASCII character can take 7 bytes), and event text is attacker-influenced (a user agent, an
    API name). When the whole does not fit, every string in the document is cut (the document stays valid
    JSON and says "truncated": true), and so is the text, more each round, until it fits.

    Every copy gets the filter chat and Security Hub text get (keyguard.defang): a right-to-left override or
    a zero-width character in a user agent or name never reaches a mail client or a SIEM."""
    text, doc = printable_lines(text), visible_strings(doc)
    attributes = {
        "source": {"DataType": "String", "StringValue": source},
        "severity": {"DataType": "String", "StringValue": severity},
        "outcome": {"DataType": "String", "StringValue": outcome},
    }
    subject_text = clean_subject(subject_text)
    limit = None
    while True:
        body, machine_doc = text, doc
        if limit is not None:
            body = text if len(text) <= limit * 16 else text[: limit * 16] + "\n... (cut: too long for SNS)"
            machine_doc = {**_cut_strings(doc, limit), "truncated": True}
        machine = json.dumps(machine_doc, sort_keys=True, default=str)
        msg = {
            "Subject": subject_text,
            "MessageStructure": "json",
            "Message": json.dumps(
                {
                    "default": body,
                    "email": body,
                    "email-json": machine,
                    "sqs": machine,
                    "lambda": machine,
                    "https": machine,
                    "http": machine,
                }
            ),
            "MessageAttributes": attributes,
        }
        if _size(msg) <= SNS_MAX_BYTES or limit == 8:
            return msg
        limit = 1024 if limit is None else max(8, limit // 4)


def _size(msg: dict[str, Any]) -> int:
    attributes = msg["MessageAttributes"].items()
    attrs = sum(len(k) + len(v["DataType"]) + len(v["StringValue"].encode()) for k, v in attributes)
    return len(msg["Message"].encode()) + len(msg["Subject"].encode()) + attrs


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + " [cut]"
    if isinstance(value, dict):
        return {k: _cut_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(v, limit) for v in value]
    return value


def clean_subject(text: str) -> str:
    """SNS subjects: printable, no line breaks, under 100 characters."""
    text = printable(text, len(text) + 1)
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def dedup_key(r: Response) -> str:
    """The same incident with the same outcome is announced once (redelivery, GuardDuty re-emission)."""
    raw = f"{r.incident.incident_id}|{r.outcome.value}|{r.owner}|{r.dry_run}"
    return hashlib.sha256(raw.encode()).hexdigest()
