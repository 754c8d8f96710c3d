"""Trusted Advisor "Exposed Access Keys" (EventBridge, us-east-1): AWS found an access key in public.

The check item names the key (`Access Key ID`), the user (`User Name (IAM or Root)`) and where the key was
found (`Location`); status ERROR means the item is flagged. Handled like Health: the event's user name is
only a hint, IAM has the last word on who owns the key. The notice shows the place defanged (never a link),
AWS's Support case (`Case ID`) and the item's `Deadline` (epoch milliseconds) as the date to reply by.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyguard.defang import defang_url
from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id, is_long_term
from keyguard.sources._fields import envelope, obj, opt_text, text
from keyguard.sources.aws_quarantine import USER_NAME_RE

SOURCE = "aws.trustedadvisor"
DETAIL_TYPES = ("Trusted Advisor Check Item Refresh Notification",)
CHECK_NAME = "Exposed Access Keys"
FLAGGED = "ERROR"
ROOT_NAMES = frozenset({"root", "<root_account>", "root account"})


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    if detail.get("check-name") != CHECK_NAME:
        raise MalformedEvent(f"detail.check-name must be {CHECK_NAME!r}, got {_short(detail.get('check-name'))}")
    if detail.get("status") != FLAGGED:
        raise MalformedEvent(f"detail.status must be {FLAGGED!r} (a flagged item), got {_short(detail.get('status'))}")
    item = obj(detail, "check-item-detail", "detail")
    key_id = text(item, "Access Key ID", "detail.check-item-detail")
    if not is_key_id(key_id) or not is_long_term(key_id):
        raise MalformedEvent(f"detail.check-item-detail.'Access Key ID' is not a long-term key id: {_short(key_id)}")
    named = opt_text(item, "User Name (IAM or Root)")
    principal_type, name = PrincipalType.UNKNOWN, None
    if named and named.strip().lower() in ROOT_NAMES:
        principal_type = PrincipalType.ROOT
    elif named and USER_NAME_RE.fullmatch(named):
        name = named  # a hint: deactivating with it proves it, else IAM names the owner
    case = opt_text(item, "Case ID")
    source_id = case or text(detail, "uuid", "detail")
    location = opt_text(item, "Location")
    place = defang_url(location) if location else None
    fraud = opt_text(item, "Fraud Type")
    description = f"{fraud or 'Exposed'} access key found at {place or 'an unnamed place'}"
    if case:
        description += f" (AWS Support case {case})"
    deadline = _date(opt_text(item, "Deadline"))
    return [
        Incident(
            source=Source.TRUSTED_ADVISOR,
            kind=Kind.COMPROMISE,
            key_id=key_id,
            principal_type=principal_type,
            principal_name=name,
            account=text(event, "account", "event"),
            region=opt_text(event, "region") or "",
            source_id=source_id,
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type=f"{CHECK_NAME} ({fraud})" if fraud else CHECK_NAME,
            evidence=Evidence(
                first_seen=opt_text(event, "time"),
                description=description[:500],
                exposed_at=place,
                support_case=case[:100] if case else None,
                reply_by=deadline,
            ),
        )
    ]


def _date(millis: str | None) -> str | None:
    """The check item's times are epoch milliseconds, as strings ("1742310000000")."""
    if not millis or not millis.isdigit() or len(millis) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):  # beyond the calendar: no date to give
        return None


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
