"""CloudTrail: AWS put its compromised-key quarantine on an IAM user (via EventBridge, us-east-1).

When AWS finds a user's access key in public, it attaches the AWS managed policy
`AWSCompromisedKeyQuarantine` (`...V2`, `...V3`) to the user, often before (or instead of) the Health event.
Older quarantines were an inline policy written by AWS with the user's own key (PutUserPolicy). The
record names the user; only the old form names a key (the one that signed the call).

Who attached it decides what it proves. AWS's own call carries `sourceIPAddress` "AWS Internal", which
CloudTrail writes and no caller can set, and its caller is no principal of this account. The old inline form
is signed by the quarantined user's own key with AWS's internal SDK user agent. Anything else (an
administrator attaching the policy by hand, a script, an attacker) is reported and proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id, is_long_term
from keyguard.sources._fields import envelope, obj, opt_account, opt_obj, opt_text, text

SOURCE = "aws.iam"
DETAIL_TYPES = ("AWS API Call via CloudTrail",)
EVENT_NAMES = ("AttachUserPolicy", "PutUserPolicy")

MANAGED_POLICY_RE = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(AWSCompromisedKeyQuarantine(?:V[0-9]{1,2})?)")
INLINE_POLICY_RE = re.compile(r"AWSCompromisedKeyQuarantine[A-Za-z0-9_]{0,40}|AWSExposedCredentialPolicy_DO_NOT_REMOVE")
USER_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")  # IAM user names

AWS_INTERNAL = "AWS Internal"  # CloudTrail's sourceIPAddress for calls AWS makes itself
AWS_INTERNAL_AGENT = "aws-internal/"  # the SDK user agent of AWS's own (old-form) quarantine call
ACCOUNT_PRINCIPALS = ("IAMUser", "AssumedRole", "Root", "FederatedUser", "IdentityCenterUser")


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    name = detail.get("eventName")
    if name not in EVENT_NAMES:
        raise MalformedEvent(f"detail.eventName must be one of {EVENT_NAMES}, got {_short(name)}")
    if detail.get("errorCode"):
        raise MalformedEvent(f"{name} failed ({_short(detail.get('errorCode'))}): no policy was attached")
    request = obj(detail, "requestParameters", "detail")
    user = text(request, "userName", "detail.requestParameters")
    if not USER_NAME_RE.fullmatch(user):
        raise MalformedEvent(f"detail.requestParameters.userName is not an IAM user name: {_short(user)}")
    policy = _policy(name, request)
    account = opt_account(detail, "recipientAccountId", "detail", event["account"])
    identity = opt_obj(detail, "userIdentity")
    caller = opt_text(identity, "arn") or opt_text(identity, "invokedBy") or opt_text(identity, "type") or "unknown"
    source_ip = opt_text(detail, "sourceIPAddress")
    key_id, by_aws = "", _by_aws(detail, identity, account)
    if not by_aws and name == "PutUserPolicy":
        key_id = _own_key(detail, identity, user, account)
        by_aws = bool(key_id)
    not_evidence = None
    if not by_aws:
        not_evidence = (
            f"{policy} was put on user {user} by {caller} (from {source_ip or 'an unknown address'}), not by AWS:"
            " this is not proof that the user's credentials leaked, so keyguard changed nothing."
            " Find out who did it and why."
        )
    how = "the user's own key signed the call: AWS's old inline form" if key_id else "no key is named"
    return [
        Incident(
            source=Source.AWS_QUARANTINE,
            kind=Kind.COMPROMISE,
            key_id=key_id,
            principal_type=PrincipalType.IAM_USER,
            principal_name=user,
            account=account,
            region=opt_text(detail, "awsRegion") or opt_text(event, "region") or "",
            source_id=text(detail, "eventID", "detail"),
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type=f"{name} {policy}",
            not_evidence=not_evidence,
            evidence=Evidence(
                source_ip=source_ip,
                api=name,
                service_name="iam",
                user_agent=opt_text(detail, "userAgent"),
                first_seen=opt_text(detail, "eventTime"),
                description=(
                    f"AWS put {policy} on user {user}: AWS found this user's credentials exposed ({how})"
                    if by_aws
                    else f"{policy} put on user {user} by {caller}"
                ),
            ),
        )
    ]


def _policy(name: str, request: Mapping[str, Any]) -> str:
    if name == "AttachUserPolicy":
        arn = text(request, "policyArn", "detail.requestParameters")
        found = MANAGED_POLICY_RE.fullmatch(arn)
        if not found:
            raise MalformedEvent(f"detail.requestParameters.policyArn is not AWS's quarantine policy: {_short(arn)}")
        return found.group(1)
    policy = text(request, "policyName", "detail.requestParameters")
    if not INLINE_POLICY_RE.fullmatch(policy):
        raise MalformedEvent(f"detail.requestParameters.policyName is not AWS's quarantine policy: {_short(policy)}")
    return policy


def _by_aws(detail: Mapping[str, Any], identity: Mapping[str, Any], account: str) -> bool:
    """AWS's own call: CloudTrail says the request came from inside AWS, and no principal of this account
    made it (a service acting for one of them names itself in invokedBy)."""
    if detail.get("sourceIPAddress") != AWS_INTERNAL:
        return False
    invoked_by = identity.get("invokedBy")
    if invoked_by is not None and invoked_by != AWS_INTERNAL:
        return False
    return not (identity.get("type") in ACCOUNT_PRINCIPALS and identity.get("accountId") in (account, None))


def _own_key(detail: Mapping[str, Any], identity: Mapping[str, Any], user: str, account: str) -> str:
    """AWS's old inline quarantine: signed with the quarantined user's own long-term key, with AWS's internal
    SDK user agent. Returns that key (which is then proven leaked), or "" when the record is not that form."""
    key = identity.get("accessKeyId")
    agent = detail.get("userAgent")
    if (
        identity.get("type") == "IAMUser"
        and identity.get("userName") == user
        and identity.get("accountId") in (account, None)
        and is_key_id(key)
        and is_long_term(key)
        and isinstance(agent, str)
        and agent.startswith(AWS_INTERNAL_AGENT)
    ):
        return key
    return ""


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
