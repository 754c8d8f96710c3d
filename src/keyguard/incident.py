"""The one incident every trigger is turned into. Only the extractors in keyguard.sources know shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

# Access key ids: 4-letter prefix (AKIA long-term, ASIA temporary) and 16 upper-case letters or digits.
KEY_ID_RE = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")  # always fullmatch: "$" would accept a trailing newline
ACCOUNT_RE = re.compile(r"[0-9]{12}")


class PrincipalType(StrEnum):
    IAM_USER = "IAMUser"
    ASSUMED_ROLE = "AssumedRole"
    ROOT = "Root"
    UNKNOWN = "Unknown"  # the event names no owner (Health): IAM says who owns the key
    FEDERATED_USER = "FederatedUser"  # GetFederationToken sessions: keyguard.sources.federation names the issuer
    OTHER = "Other"  # federated users, AWS services, ...: nothing keyguard can contain


class Source(StrEnum):
    GUARDDUTY = "guardduty"
    HEALTH = "health"
    CREATE_ACCESS_KEY = "create-access-key"
    INVESTIGATION = "investigation"  # found by investigating a leaked key (e.g. a key it created)
    MANUAL = "manual"  # `keyguard contain`: an operator names a leaked key (IAM names its owner)
    AWS_QUARANTINE = "aws-quarantine"  # CloudTrail: AWS attached its compromised-key quarantine to a user
    TRUSTED_ADVISOR = "trusted-advisor"  # Trusted Advisor "Exposed Access Keys" check item (ERROR)


class Kind(StrEnum):
    COMPROMISE = "compromise"  # evidence that the key leaked or is abused
    NEW_KEY = "new-key"  # policy: no new long-lived keys


def is_key_id(value: object) -> bool:
    return isinstance(value, str) and bool(KEY_ID_RE.fullmatch(value))


def is_long_term(key_id: str) -> bool:
    return key_id.startswith("AKIA")


@dataclass(frozen=True)
class Evidence:
    source_ip: str | None = None
    asn: str | None = None
    asn_org: str | None = None
    country: str | None = None
    api: str | None = None
    service_name: str | None = None
    user_agent: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    description: str | None = None
    # Where AWS found the key (Health eventMetadata.exposedUrl, Trusted Advisor Location), defanged
    # (keyguard.defang): printable text, never a link; and AWS's Support case about it, with the date by
    # which to reply to it (YYYY-MM-DD, UTC).
    exposed_at: str | None = None
    support_case: str | None = None
    reply_by: str | None = None

    def lines(self) -> list[tuple[str, str]]:
        """Human-readable (label, value) pairs of what is known."""
        out = []
        if self.source_ip:
            where = ", ".join(x for x in (self.asn_org, f"AS{self.asn}" if self.asn else None, self.country) if x)
            out.append(("Source IP", f"{self.source_ip} ({where})" if where else self.source_ip))
        if self.api:
            out.append(("API called", f"{self.service_name}:{self.api}" if self.service_name else self.api))
        if self.user_agent:
            out.append(("User agent", self.user_agent))
        if self.first_seen or self.last_seen:
            out.append(("Seen", f"{self.first_seen or '?'} .. {self.last_seen or '?'}"))
        if self.exposed_at:
            out.append(("Exposed at", f"{self.exposed_at} (defanged: remove the key there)"))
        if self.support_case or self.reply_by:
            case = self.support_case or "AWS opened one (AWS Support Center)"
            out.append(("Support case", f"{case}; reply by {self.reply_by}" if self.reply_by else case))
        return out


@dataclass(frozen=True)
class Incident:
    """One access key named by one event."""

    source: Source
    kind: Kind
    key_id: str
    principal_type: PrincipalType
    principal_name: str | None  # the owner the event names; IAM has the last word for long-term keys
    account: str
    region: str
    source_id: str  # GuardDuty finding id, Health event ARN, CloudTrail event id
    event_id: str  # the EventBridge envelope id
    finding_type: str
    severity: float | None = None
    sample: bool = False
    evidence: Evidence = field(default_factory=Evidence)
    principal_id: str | None = None
    observed_at: datetime | None = None  # the EventBridge envelope's time: stable across redeliveries
    actor_arn: str | None = None  # who made the call the event records (CloudTrail userIdentity.arn)
    # Set by an extractor when the event is real but is not evidence keyguard may act on (e.g. someone other
    # than AWS attached AWS's quarantine policy): the response is notify-only, with this reason.
    not_evidence: str | None = None
    source_arn: str | None = None  # the source finding's ARN (GuardDuty detail.arn): Security Hub's finding id

    @property
    def incident_id(self) -> str:
        """Stable across redeliveries and GuardDuty's re-emissions of the same finding."""
        return f"{self.source.value}:{self.source_id}:{self.key_id}"


def envelope_time(value: object) -> datetime | None:
    """The envelope's `time` (ISO 8601, UTC), or None when absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
