"""AWS Health RISK events (AWS_RISK_*): AWS found an access key exposed or quarantined it.

The event names keys only (detail.affectedEntities[].entityValue); IAM says who owns each. Its
`eventMetadata` can say where the key was found (`exposedUrl`, next to `publicKey` and `userName`): the
notice shows it defanged, for the owner to scrub. AWS also opens a Support case, and the customer has a few
days to answer it before AWS may suspend the account: the notice gives that date, counted from the
event's start time.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from keyguard.defang import defang_url
from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id
from keyguard.sources._fields import envelope, opt_obj, opt_text, text

SOURCE = "aws.health"
DETAIL_TYPES = ("AWS Health Event", "AWS Health Abuse Event")
MAX_ENTITIES = 500
# AWS's Support case about an exposed key: "If you do not stop the unauthorized usage and contact AWS within
# five (5) days, your account will be suspended" (the case's text as customers have published it); owners
# report 4 to 5 days. keyguard gives the earlier date, counted from the event's start time.
REPLY_WITHIN = timedelta(days=4)
_URL_IN_TEXT = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[^\s<>\"']+")
CASE_CODES = "AWS_RISK_CREDENTIALS_"  # EXPOSED, EXPOSURE_SUSPECTED, COMPROMISED, ...: the key was found in public


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    if detail.get("service") != "RISK":
        raise MalformedEvent(f"detail.service must be 'RISK', got {detail.get('service')!r}")
    code = text(detail, "eventTypeCode", "detail")
    if not code.startswith("AWS_RISK_"):
        raise MalformedEvent(f"detail.eventTypeCode must start with 'AWS_RISK_', got {code[:60]!r}")
    entities = detail.get("affectedEntities")
    if not isinstance(entities, list):
        raise MalformedEvent("detail.affectedEntities must be a list")
    if len(entities) > MAX_ENTITIES:
        raise MalformedEvent(f"detail.affectedEntities has {len(entities)} entries, more than {MAX_ENTITIES}")
    event_arn = opt_text(detail, "eventArn") or text(event, "id", "event")
    keys: list[str] = []
    for entity in entities:
        value = entity.get("entityValue") if isinstance(entity, dict) else None
        if is_key_id(value) and value not in keys:
            keys.append(value)
    if not keys:
        raise MalformedEvent(f"{code} event names no access key id in detail.affectedEntities")
    metadata = opt_obj(detail, "eventMetadata")
    exposed = opt_text(metadata, "exposedUrl")
    named = opt_text(metadata, "publicKey")
    started = _time(opt_text(detail, "startTime")) or envelope_time(event.get("time"))
    case = code.startswith(CASE_CODES)  # AWS opens a Support case when it finds the key in public
    base = Evidence(
        first_seen=opt_text(detail, "startTime"),
        description=_description(detail),
        reply_by=_reply_by(started) if case else None,
    )

    def evidence(key: str) -> Evidence:
        # the place belongs to the key the metadata names (or to the event's only key): never shown for another
        if exposed and (named == key or (named is None and len(keys) == 1)):
            return replace(base, exposed_at=defang_url(exposed))
        return base

    region = opt_text(detail, "eventRegion") or opt_text(event, "region") or ""
    return [
        Incident(
            source=Source.HEALTH,
            kind=Kind.COMPROMISE,
            key_id=key,
            principal_type=PrincipalType.UNKNOWN,
            principal_name=None,
            account=text(event, "account", "event"),
            region=region,
            source_id=event_arn,
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type=code,
            evidence=evidence(key),
        )
        for key in keys
    ]


def _time(value: str | None) -> datetime | None:
    """Health's times: RFC 1123 ("Sat, 15 Mar 2025 03:11:58 GMT") in events, ISO 8601 in the API."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return envelope_time(value)


def _reply_by(started: datetime | None) -> str | None:
    try:
        return (started + REPLY_WITHIN).strftime("%Y-%m-%d") if started else None
    except OverflowError:  # a start time at the end of the calendar: no date to give
        return None


def _description(detail: dict) -> str | None:
    items = detail.get("eventDescription")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                value = opt_text(item, "latestDescription")
                if value:  # AWS's text may name the place too: never a link in the notice
                    return _URL_IN_TEXT.sub(lambda m: defang_url(m.group(0)), value)[:500]
    return None
