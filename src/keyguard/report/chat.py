"""Chat notifications: the custom-notification format of Amazon Q Developer in chat applications (formerly
AWS Chatbot), for Slack and Microsoft Teams channels.

Published to a topic of their own (ChatNotifications=true creates it; the chat configuration subscribes to
it), not to the main topic: Chatbot forwards only messages in its custom format and drops the rest, and the
main topic's JSON document and email text must stay what their subscribers parse. A second topic needs no
filter policy on the existing subscriptions and cannot send chat JSON to the email inbox.

The message gives the key, the owner, what was done and the one command to run next. Strings an attacker
can choose (user agents, API names, user and role names, free text from the event) are flattened to one
line, cut, and stripped of what chat clients turn into links, mentions or formatting: `<...>` control
sequences (`<!channel>`, `<@U123>`, `<https://x|y>`), `@here`/`@channel`/`@everyone`, markdown links and
emphasis, code fences and bare URLs. Commands are ours, built from names IAM validated, in code spans.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keyguard import notify
from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY
from keyguard.incident import Kind, PrincipalType, is_key_id
from keyguard.plan import Outcome
from keyguard.respond import Response

CHAT_PERMISSIONS = ("sns:Publish",)
MAX_TEXT = 160  # any one attacker-influenced value
MAX_DESCRIPTION = 3500
IAM_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")

# Characters chat clients interpret, each replaced by a look-alike that they do not (":" too, so that no
# "scheme://" link or ":emoji:" survives).
_LOOKALIKE = str.maketrans(
    {
        "<": "\u2039",
        ">": "\u203a",
        "&": "\uff06",
        "@": "\uff20",
        "[": "\uff3b",
        "]": "\uff3d",
        "(": "\uff08",
        ")": "\uff09",
        "*": "\u2217",
        "_": "\uff3f",
        "~": "\u223c",
        "`": "\u02cb",
        "|": "\u2223",
        "#": "\uff03",
        ":": "\ua789",
    }
)
_SPACES = re.compile(r"\s+")


def safe(value: object, limit: int = MAX_TEXT) -> str:
    """An attacker-influenced string as inert text: one line, no markup, no mention, no link, cut."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    text = re.sub(r"(?i)\bwww\.", "www\u2024", text)  # "www.x.com" auto-links: one dot leader breaks it
    return text.translate(_LOOKALIKE)


def code(value: str) -> str:
    """A command of ours in a code span. Only IAM-valid names and key ids reach here (no backtick, no <>)."""
    return f"`{value}`"


def _name(value: str | None) -> str | None:
    """A principal name usable in a command: IAM's character set only, else None (shown as text only)."""
    return value if value and IAM_NAME_RE.fullmatch(value) else None


_TITLE = notify.HEADLINE  # the same words as the topic's subject
_EMOJI = {"critical": ":rotating_light:", "high": ":lock:", "medium": ":warning:", "low": ":information_source:"}


def next_command(r: Response) -> str | None:
    """The one command to run next, or None when there is none to give."""
    i, o = r.incident, r.outcome
    role = i.principal_type is PrincipalType.ASSUMED_ROLE
    # the owner IAM confirmed; a name only the event gives is never put in a command
    owner = _name(r.owner)
    key = i.key_id if is_key_id(i.key_id) else None
    if o is Outcome.FAILED and key and owner and not role:
        return f"aws iam update-access-key --user-name {owner} --access-key-id {key} --status Inactive"
    if o in (Outcome.CONTAINED, Outcome.SESSIONS_REVOKED, Outcome.WOULD_CONTAIN) and owner:
        return f"keyguard status --{'role' if role else 'user'} {owner}"
    if o is Outcome.NOT_FOUND and key:
        return f"keyguard status --key {key}"
    return None


def message(r: Response, *, level: str, headline: str | None = None) -> dict[str, Any]:
    """The Chatbot custom notification for one response."""
    i = r.incident
    owner = r.owner or i.principal_name
    who = safe(owner) if owner else "unknown"
    subject = i.key_id if is_key_id(i.key_id) else f"user {who}"
    update = "UPDATE, " if r.update_of else ""
    title = f"{_EMOJI.get(level, '')} keyguard: {update}{headline or _TITLE[r.outcome]} - {subject}".strip()
    lines = [
        f"*Access key:* {code(i.key_id) if is_key_id(i.key_id) else 'none named'}",
        f"*Owner:* {who}" + ("" if r.owner else " (as the event says; not verified)"),
        f"*Account / region:* {safe(i.account)} / {safe(i.region or '-')}",
        f"*Signal:* {safe(i.source.value)}: {safe(i.finding_type)}",
        f"*Why:* {safe(r.reason, 400)}",
    ]
    ev = i.evidence
    if ev.source_ip:
        lines.append(f"*Source IP (as the event says):* {safe(ev.source_ip)}")
    if ev.api:
        lines.append(f"*API called (as the event says):* {safe(ev.api)}")
    if ev.user_agent:
        lines.append(f"*User agent (as the event says):* {safe(ev.user_agent)}")
    if ev.exposed_at:  # defanged by the extractor; safe() also breaks what a chat client would link
        lines.append(f"*Exposed at (defanged, remove the key there):* {safe(ev.exposed_at, 300)}")
    if ev.support_case or ev.reply_by:
        case = safe(ev.support_case) if ev.support_case else "AWS opened one"
        lines.append(f"*AWS Support case:* {case}" + (f"; reply by {safe(ev.reply_by)}" if ev.reply_by else ""))
    if r.owner_note:
        lines.append(f"*Note:* {safe(r.owner_note, 300)}")
    if r.update_of:
        lines.append(f"*Updates incident:* {safe(r.update_of, 300)}")
    lines.append("*What keyguard did:*")
    lines += [f"\u2022 {safe(res.action)}: {safe(res.status.value)}" for res in r.results] or ["\u2022 nothing"]
    description = "\n".join(lines)[:MAX_DESCRIPTION]
    command = next_command(r)
    steps = [f"Run next: {code(command)}"] if command else [_advice(r)]
    return {
        "version": "1.0",
        "source": "custom",
        "id": _thread(r.update_of or i.incident_id),
        "content": {
            "textType": "client-markdown",
            "title": title[:250],
            "description": description,
            "nextSteps": steps,
            "keywords": [r.outcome.value, i.source.value, level],
        },
        "metadata": {
            "threadId": _thread(r.update_of or i.incident_id),  # an update goes to the first incident's thread
            "summary": f"keyguard {r.outcome.value} {subject}"[:200],
            "eventType": f"keyguard-{r.outcome.value}",
            "additionalContext": {"incidentId": _thread(i.incident_id), "outcome": r.outcome.value},
        },
    }


def _advice(r: Response) -> str:
    o = r.outcome
    if o is Outcome.ROOT:
        return "Sign in as root with MFA now and delete the root access key."
    if o is Outcome.SAMPLE:
        return "Nothing: the wiring works."
    if r.incident.kind is Kind.NEW_KEY:
        return f"Review the new key; the user policy {REVOKE_SESSIONS_POLICY} explains what was revoked."
    if o is Outcome.CONTAINED:
        return f"Review the user; keyguard's policy {QUARANTINE_POLICY} stays until release."
    return "Review the event; keyguard did not act (see Why)."


def _thread(incident_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9:_.-]", "_", incident_id)[:200]


def publish_args(r: Response, *, topic_arn: str, level: str) -> dict[str, Any]:
    return {"TopicArn": topic_arn, "Message": json.dumps(message(r, level=level), ensure_ascii=False)}
