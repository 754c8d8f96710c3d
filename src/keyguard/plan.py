"""Pure decisions: what keyguard does about an incident. No AWS calls here; table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from keyguard.actions import (
    TAG_PREFIX,
    Action,
    DeactivateAccessKey,
    QuarantineUser,
    RecordOnRole,
    RecordOnUser,
    RevokeRoleSessions,
    RevokeUserSessions,
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
    if incident.not_evidence:
        return Outcome.NOTIFY_ONLY, incident.not_evidence
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
    if incident.principal_type is PrincipalType.FEDERATED_USER:  # never its caller-chosen name: the issuer
        return Outcome.NOTIFY_ONLY, "Federated session credentials whose issuing IAM user was not named."
    if incident.principal_type is PrincipalType.OTHER:
        return Outcome.NOTIFY_ONLY, "The principal is not an IAM user or role: IAM cannot contain it."
    if incident.principal_type is PrincipalType.UNKNOWN and not is_long_term(incident.key_id):
        return Outcome.NOTIFY_ONLY, "Temporary credentials with no named principal: IAM cannot name an owner."
    if incident.kind is Kind.NEW_KEY and settings.create_access_key_response == CAK_NOTIFY:
        return Outcome.NOTIFY_ONLY, "CreateAccessKeyResponse is 'notify': the new key was left as it is."
    return protection(incident, incident.principal_name, settings)


def protection(incident: Incident, name: str | None, settings: Settings) -> tuple[Outcome, str] | None:
    """Principals keyguard never acts on."""
    if name and settings.is_protected(name):
        return (
            Outcome.PROTECTED,
            f"{name} is a protected principal (ProtectedPrincipals or keyguard's own role).",
        )
    if incident.principal_type is PrincipalType.ASSUMED_ROLE and name and name.startswith(SERVICE_LINKED_PREFIX):
        return Outcome.PROTECTED, f"{name} is a service-linked role: keyguard never changes those."
    return None


def owner_is_verifiable(incident: Incident) -> bool:
    """Long-term keys of IAM users: IAM can say who owns them (UpdateAccessKey / GetAccessKeyLastUsed)."""
    return incident.principal_type in (PrincipalType.IAM_USER, PrincipalType.UNKNOWN) and is_long_term(incident.key_id)


def plan_actions(incident: Incident, owner: str, now: datetime) -> list[Action]:
    """The ordered containment for an incident whose principal is known (verified for long-term keys),
    then the record of it on the principal (tags), which comes after the deny."""
    record = containment_tags(incident, now)
    if incident.principal_type is PrincipalType.ASSUMED_ROLE:
        return [RevokeRoleSessions(owner, role_cutoff(incident, now)), RecordOnRole(owner, record)]
    if not is_long_term(incident.key_id):
        # A user's session credentials (GetSessionToken): the key that minted them is unknown, so deny
        # everything the user can do until a human rotates the user's keys.
        return [QuarantineUser(owner), RecordOnUser(owner, record)]
    if incident.kind is Kind.NEW_KEY:
        key = DeactivateAccessKey(owner, incident.key_id)
        return [key, RevokeUserSessions(owner, now), RecordOnUser(owner, record)]
    leaked = ((f"{TAG_PREFIX}leaked:{incident.key_id}", _stamp(now)),)
    return [DeactivateAccessKey(owner, incident.key_id), QuarantineUser(owner), RecordOnUser(owner, record + leaked)]


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
    if source is Source.GUARDDUTY:
        return (DeactivateAccessKey, QuarantineUser, RevokeRoleSessions, RecordOnUser, RecordOnRole)
    if source is Source.HEALTH:
        return (DeactivateAccessKey, QuarantineUser, RecordOnUser)
    if source is Source.CREATE_ACCESS_KEY:
        return (DeactivateAccessKey, RevokeUserSessions, RecordOnUser)
    if source is Source.INVESTIGATION:  # keys the leaked key created (users and roles: investigate.core)
        return (DeactivateAccessKey, QuarantineUser, RecordOnUser)
    if source is Source.MANUAL:  # a leaked long-term key named by an operator; the owner IAM names
        return (DeactivateAccessKey, QuarantineUser, RecordOnUser)
    if source in (Source.AWS_QUARANTINE, Source.TRUSTED_ADVISOR):  # the user (and the key, when named)
        return (DeactivateAccessKey, QuarantineUser, RecordOnUser)
    raise ValueError(f"no actions declared for source {source}")
