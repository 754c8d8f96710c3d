"""Pure decisions: what keyguard does about an incident. No AWS calls here; table-tested."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from keyguard.actions import (
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    TAG_PREFIX,
    Action,
    BoundUser,
    DeactivateAccessKey,
    QuarantineUser,
    RecordOnRole,
    RecordOnUser,
    RevokeRoleSessions,
    RevokeUserSessions,
    VerifyRole,
    VerifyUser,
    deny_all_policy,
    revoke_sessions_policy,
    tag_value,
)
from keyguard.incident import Incident, Kind, PrincipalType, Source, is_long_term
from keyguard.settings import CAK_NOTIFY, Settings


class Outcome(StrEnum):
    CONTAINED = "contained"
    SESSIONS_REVOKED = "sessions-revoked"
    WOULD_CONTAIN = "would-contain"  # dry-run
    FAILED = "failed"
    NOT_FOUND = "not-found"
    BELOW_THRESHOLD = "below-threshold"
    ROOT = "root-credentials"
    SAMPLE = "sample-finding"
    PROTECTED = "protected-principal"
    EXEMPT = "exempt"
    NOTIFY_ONLY = "notify-only"
    OTHER_ACCOUNT = "other-account"


# Outcomes where keyguard changed nothing on purpose; the notification says why.
NO_ACTION = frozenset(
    {
        Outcome.NOT_FOUND,
        Outcome.BELOW_THRESHOLD,
        Outcome.ROOT,
        Outcome.SAMPLE,
        Outcome.PROTECTED,
        Outcome.EXEMPT,
        Outcome.NOTIFY_ONLY,
        Outcome.OTHER_ACCOUNT,
    }
)

SERVICE_LINKED_PREFIX = "AWSServiceRole"


def triage(incident: Incident, settings: Settings, account: str | None = None) -> tuple[Outcome, str] | None:
    """The reason not to act at all, decided from the event alone; None means: go on and contain."""
    if incident.sample:
        return Outcome.SAMPLE, "GuardDuty sample finding: the wiring works; nothing was changed."
    if account and incident.account != account:
        return (
            Outcome.OTHER_ACCOUNT,
            f"The event is for account {incident.account}; keyguard runs in {account}.",
        )
    if incident.source is Source.GUARDDUTY and (incident.severity or 0) < settings.guardduty_min_severity:
        return (
            Outcome.BELOW_THRESHOLD,
            f"Severity {incident.severity:g} is below GuardDutyMinSeverity {settings.guardduty_min_severity:g}: "
            "notify only.",
        )
    if incident.principal_type is PrincipalType.ROOT:
        return Outcome.ROOT, "Root credentials: IAM cannot restrict the root user. A human must act now."
    if incident.principal_type is PrincipalType.OTHER:
        return Outcome.NOTIFY_ONLY, "The principal is not an IAM user or role: IAM cannot contain it."
    if incident.principal_type is PrincipalType.UNKNOWN and not is_long_term(incident.key_id):
        return Outcome.NOTIFY_ONLY, "Temporary credentials with no named principal: IAM cannot name an owner."
    if incident.kind is Kind.NEW_KEY and settings.create_access_key_response == CAK_NOTIFY:
        return Outcome.NOTIFY_ONLY, "CreateAccessKeyResponse is 'notify': the new key was left as it is."
    stop = protection(incident, incident.principal_name, settings)
    if stop and incident.principal_name and created_by_someone_else(incident, incident.principal_name):
        return None  # a new key someone else made for a protected principal: respond deactivates the key
    return stop


def principal_kind(incident: Incident) -> str:
    """ "role" for role sessions; "user" for users' keys (also when the event names no owner: IAM's owner of
    a long-term key is always a user)."""
    return "role" if incident.principal_type is PrincipalType.ASSUMED_ROLE else "user"


def protection(
    incident: Incident, name: str | None, settings: Settings, unique_id: str | None = None
) -> tuple[Outcome, str] | None:
    """Principals keyguard never acts on, matched by kind and name, ARN or unique id (a user is never
    protected by a role's name)."""
    kind = principal_kind(incident)
    uid = unique_id or _unique_id(incident, name)
    if name and settings.is_protected(kind, name, unique_id=uid):
        return (
            Outcome.PROTECTED,
            f"{kind} {name} is a protected principal (ProtectedPrincipals or keyguard's own role).",
        )
    if incident.principal_type is PrincipalType.ASSUMED_ROLE and name and name.startswith(SERVICE_LINKED_PREFIX):
        return Outcome.PROTECTED, f"{name} is a service-linked role: keyguard never changes those."
    return None


def _unique_id(incident: Incident, name: str | None) -> str | None:
    """IAM's unique id from the event (GuardDuty principalId: AIDA... for a user, AROA...:session for a
    role), when it is the principal's and the event names this principal."""
    pid = (incident.principal_id or "").split(":", 1)[0]
    if not pid or name != incident.principal_name:
        return None
    return pid if pid.startswith(("AIDA", "AROA")) else None


def created_by_someone_else(incident: Incident, owner: str) -> bool:
    """A new key made for `owner` by another principal (CloudTrail's userIdentity is not the owner)."""
    if incident.kind is not Kind.NEW_KEY:
        return False
    actor = incident.actor_arn or ""
    return not (":user/" in actor and actor.rsplit("/", 1)[-1].lower() == owner.lower())


def owner_is_verifiable(incident: Incident) -> bool:
    """Long-term keys of IAM users: IAM can say who owns them (UpdateAccessKey / GetAccessKeyLastUsed)."""
    return incident.principal_type in (PrincipalType.IAM_USER, PrincipalType.UNKNOWN) and is_long_term(incident.key_id)


def plan_actions(
    incident: Incident,
    owner: str,
    now: datetime,
    *,
    boundary_arn: str | None = None,
    protected_owner: bool = False,
) -> list[Action]:
    """The ordered containment for an incident whose principal is known (verified for long-term keys):
    the layers (the key's deactivation and the first deny first), then IAM read back, then the record of it
    on the principal (tags, a mirror of the ledger for humans), which comes after the deny.

    `boundary_arn`: the stack's deny-all policy, put as the user's permissions boundary (a layer the key
    holder cannot pre-fill). `protected_owner`: a new key made for a protected principal by someone else:
    the key is deactivated and the principal itself is left untouched (no policy, no tags)."""
    record = containment_tags(incident, now)
    if incident.principal_type is PrincipalType.ASSUMED_ROLE:
        revoke = RevokeRoleSessions(owner, role_cutoff(incident, now))
        verify = VerifyRole(owner, REVOKE_SESSIONS_POLICY, json.dumps(revoke_sessions_policy(revoke.before)))
        return [revoke, verify, RecordOnRole(owner, record)]
    deny = json.dumps(deny_all_policy())
    bound = [BoundUser(owner, boundary_arn)] if boundary_arn else []
    if not is_long_term(incident.key_id):
        # A user's session credentials (GetSessionToken): the key that minted them is unknown, so deny
        # everything the user can do until a human rotates the user's keys.
        verify = VerifyUser(owner, None, QUARANTINE_POLICY, deny, boundary_arn)
        return [QuarantineUser(owner), *bound, verify, RecordOnUser(owner, record)]
    if incident.kind is Kind.NEW_KEY:
        key = DeactivateAccessKey(owner, incident.key_id)
        if protected_owner:
            return [key, VerifyUser(owner, incident.key_id)]
        revoke = RevokeUserSessions(owner, now)
        verify = VerifyUser(owner, incident.key_id, REVOKE_SESSIONS_POLICY, json.dumps(revoke_sessions_policy(now)))
        return [key, revoke, verify, RecordOnUser(owner, record)]
    leaked = ((f"{TAG_PREFIX}leaked:{incident.key_id}", _stamp(now)),)
    verify = VerifyUser(owner, incident.key_id, QUARANTINE_POLICY, deny, boundary_arn)
    return [
        DeactivateAccessKey(owner, incident.key_id),
        QuarantineUser(owner),
        *bound,
        verify,
        RecordOnUser(owner, record + leaked),
    ]


FRESH = timedelta(minutes=15)


def role_cutoff(incident: Incident, now: datetime) -> datetime:
    """Role sessions issued before this are denied. The event's own time when it is fresh, so that a
    redelivery (Lambda's retries, EventBridge's at-least-once) writes the same policy; otherwise now, so
    that an event replayed late (from the dead-letter queue) never leaves later sessions alive. Stolen
    instance-role credentials are the metadata service's current ones, issued before the finding."""
    seen = incident.observed_at
    if seen is not None and now - FRESH <= seen <= now:
        return seen
    return now


def containment_tags(incident: Incident, now: datetime) -> tuple[tuple[str, str], ...]:
    """When and why keyguard acted: read back by `keyguard status`."""
    return (
        (f"{TAG_PREFIX}contained-at", _stamp(now)),
        (f"{TAG_PREFIX}incident", tag_value(incident.incident_id)),
        (f"{TAG_PREFIX}reason", tag_value(f"{incident.source.value} {incident.finding_type} {incident.key_id}")),
    )


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def possible_actions(source: Source) -> tuple[type[Action], ...]:
    """Every action plan_actions can choose for a trigger: what its function's role must be allowed."""
    user = (DeactivateAccessKey, QuarantineUser, BoundUser, VerifyUser, RecordOnUser)
    if source is Source.GUARDDUTY:
        return (*user, RevokeRoleSessions, VerifyRole, RecordOnRole)
    if source is Source.HEALTH:
        return user
    if source is Source.CREATE_ACCESS_KEY:
        return (DeactivateAccessKey, RevokeUserSessions, VerifyUser, RecordOnUser)
    if source is Source.INVESTIGATION:  # keys the leaked key created (users and roles: investigate.core)
        return user
    if source is Source.MANUAL:  # a leaked long-term key named by an operator; the owner IAM names
        return user
    raise ValueError(f"no actions declared for source {source}")
