"""CloudTrail CreateAccessKey calls (via EventBridge, us-east-1): a new long-lived key was made."""

from __future__ import annotations

from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id, is_long_term
from keyguard.sources._fields import envelope, obj, opt_account, opt_obj, opt_text, text

SOURCE = "aws.iam"
DETAIL_TYPES = ("AWS API Call via CloudTrail",)


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    if detail.get("eventName") != "CreateAccessKey":
        raise MalformedEvent(f"detail.eventName must be 'CreateAccessKey', got {detail.get('eventName')!r}")
    if detail.get("errorCode"):
        raise MalformedEvent(f"CreateAccessKey failed ({detail.get('errorCode')!r}): no key was created")
    response = obj(detail, "responseElements", "detail")
    key = obj(response, "accessKey", "detail.responseElements")
    key_id = text(key, "accessKeyId", "detail.responseElements.accessKey")
    if not is_key_id(key_id) or not is_long_term(key_id):
        raise MalformedEvent(
            f"detail.responseElements.accessKey.accessKeyId is not a long-term key id: {key_id[:40]!r}"
        )
    identity = opt_obj(detail, "userIdentity")
    request = opt_obj(detail, "requestParameters")
    # The key's user: the response says; without userName in the request the caller made it for itself.
    user = opt_text(key, "userName") or opt_text(request, "userName")
    if user is None and identity.get("type") == "IAMUser":
        user = opt_text(identity, "userName")
    principal_type = PrincipalType.IAM_USER
    if user is None and identity.get("type") == "Root":
        principal_type = PrincipalType.ROOT  # the root user made a root access key: a human must act
    elif user is None:
        raise MalformedEvent("CreateAccessKey event names no user for the new key")
    caller = opt_text(identity, "arn") or opt_text(identity, "principalId") or "unknown caller"
    return [
        Incident(
            source=Source.CREATE_ACCESS_KEY,
            kind=Kind.NEW_KEY,
            key_id=key_id,
            principal_type=principal_type,
            principal_name=user,
            account=opt_account(detail, "recipientAccountId", "detail", event["account"]),
            region=opt_text(detail, "awsRegion") or opt_text(event, "region") or "",
            source_id=text(detail, "eventID", "detail"),
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type="CreateAccessKey",
            actor_arn=opt_text(identity, "arn"),
            evidence=Evidence(
                source_ip=opt_text(detail, "sourceIPAddress"),
                api="CreateAccessKey",
                service_name="iam",
                user_agent=opt_text(detail, "userAgent"),
                first_seen=opt_text(detail, "eventTime"),
                description=f"created by {caller}",
            ),
        )
    ]
