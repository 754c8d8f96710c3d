"""Which account an event is about, read from the event itself (one small function per source).

The envelope's `account` is whose event bus delivered the event: a member forwarding its own events, or
a delegated administrator (GuardDuty, Health organizational view) delivering everyone's. It is never
enough on its own: each source names the account it is about inside its detail, and these functions
read that field and cross-check it. They run after the trigger's extractor accepted the event's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keyguard.incident import ACCOUNT_RE, Source


@dataclass(frozen=True)
class Target:
    account: str  # where the key lives: keyguard acts here, and only here
    region: str | None  # where it happened (None: the extractor's region stands)
    delivered_by: str  # the envelope's account: whose event bus the event came from


class NotProven(Exception):
    """The event does not prove which account it is about: reported, never acted on."""


def guardduty(event: Mapping[str, Any]) -> Target:
    """GuardDuty (delegated administrator or the member itself): `detail.accountId`, `detail.region`."""
    detail = event["detail"]
    return Target(_account(detail, "accountId"), _region(detail, "region"), event["account"])


def health(event: Mapping[str, Any]) -> Target:
    """AWS Health (organizational view or the member itself): `detail.affectedAccount`."""
    return Target(_account(event["detail"], "affectedAccount"), None, event["account"])


def cloudtrail(event: Mapping[str, Any]) -> Target:
    """CloudTrail via EventBridge is delivered only in the account it happened in (an organization trail
    does not change that), so a forwarded record's `account` must equal its `detail.recipientAccountId`."""
    detail = event["detail"]
    recipient = _account(detail, "recipientAccountId")
    if recipient != event["account"]:
        raise NotProven(
            f"the envelope says account {event['account']}, the CloudTrail record says {recipient}: "
            "CloudTrail events are delivered only in their own account"
        )
    return Target(recipient, _region(detail, "awsRegion"), event["account"])


BY_SOURCE: dict[Source, Callable[[Mapping[str, Any]], Target]] = {
    Source.GUARDDUTY: guardduty,
    Source.HEALTH: health,
    Source.CREATE_ACCESS_KEY: cloudtrail,
}


def of(event: Mapping[str, Any], source: Source) -> Target:
    find = BY_SOURCE.get(source)
    if find is None:
        raise NotProven(f"{source.value} events name no account keyguard can act in")
    return find(event)


def _account(detail: Mapping[str, Any], key: str) -> str:
    value = detail.get(key) if isinstance(detail, Mapping) else None
    if not isinstance(value, str) or not ACCOUNT_RE.fullmatch(value):
        raise NotProven(f"detail.{key} must name the 12-digit account the event is about, got {_show(value)}")
    return value


def _region(detail: Mapping[str, Any], key: str) -> str | None:
    value = detail.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= 32 else None


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
