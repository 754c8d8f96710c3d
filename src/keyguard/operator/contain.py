"""`keyguard contain --key AKIA...`: containment by hand, through the same engine as the automatic path.

The command builds an Incident (source `manual`, owner unknown) and hands it to keyguard.respond: IAM
names the owner (GetAccessKeyLastUsed), protected principals are left alone, exactly that key is
deactivated, the owner gets keyguard-quarantine and the record tags (keyguard:leaked:<key> included)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from keyguard.actions import Status
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, is_long_term
from keyguard.respond import Response, respond
from keyguard.settings import DRY_RUN, ENFORCE, Settings

DEFAULT_REASON = "contained by hand"
REASON_MAX = 200


def caller(clients: Any) -> tuple[str, str]:
    """(account id, caller ARN) of the credentials in use: who is acting, in which account."""
    me = clients.get("sts").get_caller_identity()
    return me["Account"], me["Arn"]


def actor_name(arn: str) -> str:
    """user/jane, assumed-role/Admin/jane@example.com: the part of the caller ARN a person recognises."""
    return arn.split(":", 5)[-1] if arn.count(":") >= 5 else arn


def manual_incident(key_id: str, account: str, region: str, reason: str, actor: str, now: datetime) -> Incident:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Incident(
        source=Source.MANUAL,
        kind=Kind.COMPROMISE,
        key_id=key_id,
        principal_type=PrincipalType.UNKNOWN,  # IAM names the owner, as for AWS Health events
        principal_name=None,
        account=account,
        region=region,
        source_id=stamp,
        event_id=f"keyguard-cli-{uuid.uuid4()}",
        finding_type=f"{reason} - by {actor_name(actor)}",
        evidence=Evidence(description=f"Contained by hand (keyguard contain) by {actor}: {reason}"),
    )


def as_named(response: Response) -> Response:
    """The incident as IAM named its owner: a long-term key's owner is an IAM user, so the notice says so
    (not the "Unknown" the engine started from, which only meant "ask IAM")."""
    i = response.incident
    if response.owner and i.principal_type is PrincipalType.UNKNOWN and is_long_term(i.key_id):
        response.incident = replace(i, principal_type=PrincipalType.IAM_USER)
    return response


def failed_reason(response: Response) -> str:
    """The headline of a failed containment by hand. The engine's own words promise the stack's retries
    (Lambda's, then the dead-letter queue); a command run by hand has none."""
    names = ", ".join(dict.fromkeys(r.action for r in response.failures)) or "the owner lookup"
    text = f"Containment by hand failed: {names}. Nothing retries it: it ran from the command line, not the stack."
    holding = [
        r.action
        for r in response.results
        if r.status in (Status.DONE, Status.ALREADY_DONE) and r.action not in ("verify", "record", "ledger")
    ]
    if holding:
        text += f" Holding meanwhile: {', '.join(dict.fromkeys(holding))}."
    return text


def settings_for(base: Settings, *, dry_run: bool, topic_arn: str | None) -> Settings:
    """The engine's settings for one command: protected principals and own roles as configured in the
    environment; the mode from --dry-run; no de-duplication (a person asked for this once)."""
    return replace(
        base, mode=DRY_RUN if dry_run else ENFORCE, topic_arn=topic_arn or base.topic_arn, idempotency_table=None
    )


def contain(iam: Any, incident: Incident, settings: Settings, *, account: str, now: datetime) -> Response:
    return respond(incident, settings, iam, account=account, now=now)
