"""The hand-off from containment to investigation: one SQS message per contained leaked-key incident."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time
from keyguard.plan import Outcome
from keyguard.respond import Response

HANDOFF_PERMISSIONS = ("sqs:SendMessage",)
INVESTIGATED = frozenset({Outcome.CONTAINED, Outcome.SESSIONS_REVOKED, Outcome.WOULD_CONTAIN})


def wanted(response: Response) -> bool:
    """Leaked keys and credentials that were contained (or would be, in dry-run) are investigated."""
    i = response.incident
    return i.kind is Kind.COMPROMISE and i.source is not Source.INVESTIGATION and response.outcome in INVESTIGATED


def send(sqs: Any, queue_url: str, response: Response) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(payload(response)))


def payload(response: Response) -> dict[str, Any]:
    """What containment hands to investigation (the SQS message body)."""
    incident = asdict(response.incident)
    incident["observed_at"] = response.incident.observed_at.isoformat() if response.incident.observed_at else None
    return {
        "keyguard": 1,
        "incident": incident,
        "owner": response.owner,
        "outcome": response.outcome.value,
        "at": response.at.isoformat(),
    }


def from_payload(body: dict[str, Any]) -> tuple[Incident, str | None, datetime]:
    """The incident a containment function handed over. Raises MalformedEvent for anything else."""
    try:
        raw = dict(body["incident"])
        evidence = Evidence(**raw.pop("evidence"))
        incident = Incident(
            **{
                **raw,
                "source": Source(raw["source"]),
                "kind": Kind(raw["kind"]),
                "principal_type": PrincipalType(raw["principal_type"]),
                "evidence": evidence,
                "observed_at": envelope_time(raw.get("observed_at")),
            }
        )
        at = datetime.fromisoformat(body["at"])
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedEvent(f"not a keyguard investigation request: {e}") from e
    owner = body.get("owner")
    return incident, owner if isinstance(owner, str) else None, at
