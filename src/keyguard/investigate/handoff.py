"""The hand-off from containment to investigation: one SQS message per contained leaked-key incident."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time
from keyguard.plan import Outcome
from keyguard.respond import Response

HANDOFF_PERMISSIONS = ("sqs:SendMessage",)
INVESTIGATED = frozenset({Outcome.CONTAINED, Outcome.SESSIONS_REVOKED, Outcome.WOULD_CONTAIN})


def wanted(response: Response) -> bool:
    """Leaked keys and credentials that were contained (or would be, in dry-run) are investigated; so are
    new long-lived keys that were deactivated: what the key (and the roles it assumed) did in the seconds
    it was active reaches CloudTrail's history minutes later, which the runs at +15 and +60 minutes read."""
    i = response.incident
    kinds = (Kind.COMPROMISE, Kind.NEW_KEY)
    return i.kind in kinds and i.source is not Source.INVESTIGATION and response.outcome in INVESTIGATED


def send(sqs: Any, queue_url: str, response: Response) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(payload(response)))


# The runs after the first one: CloudTrail's event history lags (typically about 5, at most 15 minutes),
# so what the key did in its last minutes before the deny is only readable later.
PHASES = (timedelta(0), timedelta(minutes=15), timedelta(minutes=60))
LAG = timedelta(minutes=20)  # the later runs read from (containment - LAG): the 15 minutes' lag and a margin
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds' maximum: a later run waits in hops of at most 15 minutes


@dataclass
class Run:
    """Which run of an incident's investigation a message asks for, and where its lookup stands:
    phase 0 (at containment), 1 (+15 min) or 2 (+60 min); its part (a long history continues in a new
    invocation from a checkpoint: window, regions, each region's next token, the partial summary)."""

    phase: int = 0
    part: int = 1
    due: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    regions: list[str] | None = None
    cursors: dict[str, Any] | None = None  # region -> trail.Cursor.to_dict()
    summary: dict[str, Any] | None = None  # summary.Summary.to_dict()

    def to_dict(self) -> dict[str, Any]:
        def stamp(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "phase": self.phase,
            "part": self.part,
            "due": stamp(self.due),
            "start": stamp(self.start),
            "end": stamp(self.end),
            "regions": self.regions,
            "cursors": self.cursors,
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Run:
        if not isinstance(d, dict):
            return cls()

        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(d[key]) if isinstance(d.get(key), str) else None

        phase = int(d.get("phase") or 0)
        if not 0 <= phase < len(PHASES):
            raise ValueError(f"unknown investigation phase {phase}")
        return cls(
            phase=phase,
            part=max(1, int(d.get("part") or 1)),
            due=when("due"),
            start=when("start"),
            end=when("end"),
            regions=[str(r) for r in d["regions"]] if isinstance(d.get("regions"), list) else None,
            cursors=d.get("cursors") if isinstance(d.get("cursors"), dict) else None,
            summary=d.get("summary") if isinstance(d.get("summary"), dict) else None,
        )


def resend(sqs: Any, queue_url: str, body: dict[str, Any], run: Run, now: datetime) -> int:
    """Queue `body` again for `run` (a continuation now, or a later run with the delay SQS allows until it
    is due). Returns the delay in seconds."""
    delay = 0
    if run.due is not None:
        delay = max(0, min(MAX_DELAY_SECONDS, int((run.due - now).total_seconds())))
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({**body, "run": run.to_dict()}), DelaySeconds=delay)
    return delay


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


def run_of(body: dict[str, Any]) -> Run:
    """The run a hand-off asks for (the first one when it says none). Raises MalformedEvent."""
    try:
        return Run.from_dict(body.get("run"))
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedEvent(f"not a keyguard investigation request: {e}") from e


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
