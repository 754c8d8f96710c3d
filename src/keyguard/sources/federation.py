"""Federated sessions (GetFederationToken): the IAM user that issued them, named by AWS and confirmed by IAM.

A federated user's permissions are the intersection of the issuing IAM user's policies and the session
policy, so a deny-all on the issuing user stops every session it issued. A GuardDuty finding on a
`FederatedUser` names the session (principalId `ACCOUNT:caller-chosen-name`), never the issuer; the
session name is chosen by whoever called GetFederationToken and proves nothing. AWS's own records of
the calls made with the leaked session key do name the issuer: CloudTrail's
`userIdentity.sessionContext.sessionIssuer` (type `IAMUser`, its unique id `AIDA...` and name). IAM then
confirms that the user of that name is still the same user (GetUser: the same unique id), not one
deleted and re-created under that name.

Two calls before the deny (LookupEvents by the session's key id, GetUser), counted by `make bench`. When
CloudTrail has no record yet (its event history lags 5 to 15 minutes) or the check fails, the incident is
reported notify-only with the reason and the command to contain by hand: keyguard never guesses the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keyguard.aws import error_code
from keyguard.incident import Incident, PrincipalType

LOOKUP_PERMISSIONS = ("cloudtrail:LookupEvents",)
VERIFY_PERMISSIONS = ("iam:GetUser",)
MAX_SESSION = timedelta(hours=36)  # GetFederationToken's longest session
MAX_PAGES = 2


def needs_resolving(incidents: list[Incident]) -> bool:
    return any(i.principal_type is PrincipalType.FEDERATED_USER for i in incidents)


def resolve(incident: Incident, clients: Any, now: datetime | None = None, account: str | None = None) -> Incident:
    """The incident with the issuing IAM user as its principal, or (when that cannot be proven) with the
    reason it stays notify-only. Other incidents, and other accounts' (triage reports those), are returned
    as they are, without a call."""
    if incident.principal_type is not PrincipalType.FEDERATED_USER:
        return incident
    if account and incident.account != account:
        return incident
    now = now or datetime.now(UTC)
    session = incident.principal_id or incident.principal_name or "?"
    try:
        issuer = _issuer(incident, clients, now)
    except Exception as e:
        code = error_code(e) or type(e).__name__
        return _unresolved(incident, f"asking CloudTrail who issued the federated session {session} failed ({code})")
    if issuer is None:
        return _unresolved(
            incident,
            f"CloudTrail's event history has no call made with {incident.key_id} yet (it lags up to 15 minutes),"
            f" so the IAM user that issued the federated session {session} is not known",
        )
    name, unique_id = issuer
    try:
        found = clients.iam.get_user(UserName=name)["User"]
    except Exception as e:
        code = error_code(e) or type(e).__name__
        return _unresolved(incident, f"IAM could not confirm the issuing user {name} ({code})")
    if found.get("UserId") != unique_id:
        return _unresolved(
            incident, f"the user named {name} now is not the one that issued the session (unique id changed)"
        )
    note = f"federated session {session} issued by IAM user {name} ({unique_id}): CloudTrail names it, IAM confirms"
    return replace(
        incident,
        principal_type=PrincipalType.IAM_USER,
        principal_name=name,
        principal_id=unique_id,
        evidence=replace(incident.evidence, description=note),
    )


def _issuer(incident: Incident, clients: Any, now: datetime) -> tuple[str, str] | None:
    regions = list(dict.fromkeys(r for r in (incident.region, "us-east-1") if r))
    for region in regions:
        client = clients.get("cloudtrail", region)
        args: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": incident.key_id}],
            "StartTime": now - MAX_SESSION,
            "EndTime": now,
            "MaxResults": 50,
        }
        for _ in range(MAX_PAGES):
            page = client.lookup_events(**args)
            for event in page.get("Events", []):
                found = _issuer_of(event.get("CloudTrailEvent"), incident)
                if found:
                    return found
            if not page.get("NextToken"):
                break
            args["NextToken"] = page["NextToken"]
    return None


def _issuer_of(raw: Any, incident: Incident) -> tuple[str, str] | None:
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    identity = record.get("userIdentity") if isinstance(record, Mapping) else None
    if not isinstance(identity, Mapping) or identity.get("type") != "FederatedUser":
        return None
    if identity.get("accessKeyId") != incident.key_id:
        return None
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    name, unique_id = issuer.get("userName"), issuer.get("principalId")
    if (
        issuer.get("type") == "IAMUser"
        and issuer.get("accountId") == incident.account
        and isinstance(name, str)
        and isinstance(unique_id, str)
        and unique_id  # AIDA... in AWS; IAM's GetUser must return the same id
    ):
        return name, unique_id
    return None


def _unresolved(incident: Incident, why: str) -> Incident:
    return replace(
        incident,
        not_evidence=(
            f"Federated session credentials: {why}. keyguard changed nothing. Find the GetFederationToken call"
            f" (CloudTrail, event name GetFederationToken) and quarantine its caller: keyguard contain --key"
            f" <that user's access key>, or deny all on the user."
        )[:1000],
    )
