"""One CloudTrail API call, read from its EventBridge event: who made it, from where, on what.

Everything here except the event's shape is attacker-controlled text (the user agent, names, policy
documents): it is kept as data, made printable and cut to a bounded length, and never decides anything
on its own. Who owns a key and whether a principal is held is decided from IAM and the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.tamper.watch import DETAIL_TYPE

TEXT_MAX = 256  # per attacker-controlled string in a notification
DOCUMENT_MAX = 2048  # a policy document quoted in a notification


def text(value: Any, limit: int = TEXT_MAX) -> str | None:
    """Printable, single-line, at most `limit` characters; None stays None."""
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass(frozen=True)
class Actor:
    """The caller, as CloudTrail recorded it."""

    type: str | None
    arn: str | None
    account: str | None
    access_key_id: str | None
    principal_id: str | None
    user_name: str | None  # an IAM user's own name (IAMUser callers)
    issuer_arn: str | None  # the role (or user) behind a session
    source_ip: str | None
    user_agent: str | None
    invoked_by: str | None

    @property
    def identity(self) -> str:
        """The principal to name: the role behind a session, else the ARN."""
        return self.issuer_arn or self.arn or self.principal_id or "unknown caller"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Who", self.arn or "-"),
            ("Principal type", self.type or "-"),
            ("Role or user behind it", self.issuer_arn or "-"),
            ("Access key used", self.access_key_id or "-"),
            ("Source IP", self.source_ip or "-"),
            ("User agent", self.user_agent or "-"),
            ("Invoked by", self.invoked_by or "-"),
        ]

    def document(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "arn": self.arn,
            "account": self.account,
            "accessKeyId": self.access_key_id,
            "principalId": self.principal_id,
            "issuerArn": self.issuer_arn,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "invokedBy": self.invoked_by,
        }


@dataclass(frozen=True)
class Call:
    event_id: str
    name: str
    event_source: str
    time: str | None
    region: str | None
    account: str | None  # the account the call was made in (recipientAccountId)
    actor: Actor
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)
    resources: tuple[str, ...] = ()  # ARNs CloudTrail lists under `resources`
    error_code: str | None = None

    def param(self, *names: str) -> str | None:
        """The first of these request parameters that is a non-empty string."""
        for n in names:
            v = self.request.get(n)
            if isinstance(v, str) and v:
                return v
        return None


def read(event: Any) -> Call:
    """The call an "AWS API Call via CloudTrail" event records; MalformedEvent if it is not one."""
    if not isinstance(event, Mapping) or event.get("detail-type") != DETAIL_TYPE:
        raise MalformedEvent("not an 'AWS API Call via CloudTrail' event")
    d = event.get("detail")
    if not isinstance(d, Mapping):
        raise MalformedEvent("event has no CloudTrail record in detail")
    event_id, name, source = d.get("eventID"), d.get("eventName"), d.get("eventSource")
    if not all(isinstance(v, str) and v for v in (event_id, name, source)):
        raise MalformedEvent("CloudTrail record lacks eventID, eventName or eventSource")
    who = d.get("userIdentity") if isinstance(d.get("userIdentity"), Mapping) else {}
    session = who.get("sessionContext") if isinstance(who.get("sessionContext"), Mapping) else {}
    issuer = session.get("sessionIssuer") if isinstance(session.get("sessionIssuer"), Mapping) else {}
    actor = Actor(
        type=text(who.get("type"), 64),
        arn=text(who.get("arn")),
        account=text(who.get("accountId"), 32),
        access_key_id=text(who.get("accessKeyId"), 32),
        principal_id=text(who.get("principalId")),
        user_name=text(who.get("userName")) if who.get("type") == "IAMUser" else None,
        issuer_arn=text(issuer.get("arn")) if who.get("type") == "AssumedRole" else None,
        source_ip=text(d.get("sourceIPAddress"), 64),
        user_agent=text(d.get("userAgent")),
        invoked_by=text(who.get("invokedBy"), 64),
    )
    request = d.get("requestParameters") if isinstance(d.get("requestParameters"), Mapping) else {}
    response = d.get("responseElements") if isinstance(d.get("responseElements"), Mapping) else {}
    resources = tuple(
        r["ARN"] for r in d.get("resources") or [] if isinstance(r, Mapping) and isinstance(r.get("ARN"), str)
    )
    return Call(
        event_id=event_id,
        name=name,
        event_source=source,
        time=text(d.get("eventTime"), 40),
        region=text(d.get("awsRegion"), 32),
        account=text(d.get("recipientAccountId") or event.get("account"), 32),
        actor=actor,
        request=request,
        response=response,
        resources=resources,
        error_code=text(d.get("errorCode"), 64),
    )
