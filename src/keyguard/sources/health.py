"""AWS Health RISK events (AWS_RISK_*): AWS found an access key exposed or quarantined it.

The event names keys only (detail.affectedEntities[].entityValue); IAM says who owns each.
"""

from __future__ import annotations

from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id
from keyguard.sources._fields import envelope, opt_text, text

SOURCE = "aws.health"
DETAIL_TYPES = ("AWS Health Event", "AWS Health Abuse Event")
MAX_ENTITIES = 500


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
    evidence = Evidence(first_seen=opt_text(detail, "startTime"), description=_description(detail))
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
            evidence=evidence,
        )
        for key in keys
    ]


def _description(detail: dict) -> str | None:
    items = detail.get("eventDescription")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                value = opt_text(item, "latestDescription")
                if value:
                    return value[:500]
    return None
