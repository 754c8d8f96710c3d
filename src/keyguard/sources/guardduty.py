"""GuardDuty findings that name an access key: on the key itself (resourceType "AccessKey"), and on other
resources (e.g. "S3Bucket", from S3 data events) where `resource.accessKeyDetails` is the credential that
made the calls. Attack sequences (`AttackSequence:IAM/...`) name theirs elsewhere: keyguard.sources.attack_sequence.

On other resources, only findings whose purpose says the credential was misused (UnauthorizedAccess,
Discovery, Exfiltration, Impact, PenTest, ...) are evidence about the key; the rest (Policy:S3/..., bucket
state such as public access granted; Stealth:S3/...; malware in objects) are reported, never acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id
from keyguard.sources._fields import envelope, obj, opt_account, opt_obj, opt_text, text

SOURCE = "aws.guardduty"
DETAIL_TYPES = ("GuardDuty Finding",)

ACCESS_KEY = "AccessKey"
# Finding purposes (the part of the type before ":") that say the named credential itself was misused.
CREDENTIAL_MISUSE = frozenset(
    {
        "UnauthorizedAccess",
        "Discovery",
        "Exfiltration",
        "Impact",
        "PenTest",
        "CredentialAccess",
        "Persistence",
        "PrivilegeEscalation",
        "DefenseEvasion",
        "InitialAccess",
        "Recon",
        "Execution",
    }
)

_USER_TYPES = {
    "IAMUser": PrincipalType.IAM_USER,
    "AssumedRole": PrincipalType.ASSUMED_ROLE,
    "Root": PrincipalType.ROOT,
    "FederatedUser": PrincipalType.FEDERATED_USER,
}


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    from keyguard.sources import attack_sequence  # its credentials are in the sequence's actors, not the resource

    if attack_sequence.is_attack_sequence(detail):
        return attack_sequence.extract(event)
    resource = obj(detail, "resource", "detail")
    resource_type = text(resource, "resourceType", "detail.resource")
    details = obj(resource, "accessKeyDetails", "detail.resource")
    service = opt_obj(detail, "service")
    sample = _is_sample(opt_obj(service, "additionalInfo"))
    severity = detail.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, int | float) or not 0 <= severity <= 10:
        raise MalformedEvent(f"detail.severity must be a number within 0..10, got {severity!r}")
    finding_id = text(detail, "id", "detail")
    finding_type = text(detail, "type", "detail")
    key_id = text(details, "accessKeyId", "detail.resource.accessKeyDetails")
    user_type = opt_text(details, "userType") or ""
    principal_type = _USER_TYPES.get(user_type, PrincipalType.OTHER)
    if not sample and not is_key_id(key_id):
        raise MalformedEvent(f"detail.resource.accessKeyDetails.accessKeyId is not an access key id: {key_id[:40]!r}")
    name = opt_text(details, "userName")
    purpose = finding_type.split(":", 1)[0]
    not_evidence = None
    if resource_type != ACCESS_KEY and purpose not in CREDENTIAL_MISUSE:
        not_evidence = (
            f"GuardDuty {finding_type} is about the {resource_type[:40]} itself, not about misuse of the credential"
            " that made the call: keyguard reports it and changes nothing."
        )
    if principal_type in (PrincipalType.IAM_USER, PrincipalType.ASSUMED_ROLE) and not sample and not name:
        raise MalformedEvent("detail.resource.accessKeyDetails.userName is missing for a user or role finding")
    return [
        Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id=key_id,
            principal_type=principal_type,
            principal_name=name,
            principal_id=opt_text(details, "principalId"),
            account=opt_account(detail, "accountId", "detail", event["account"]),
            region=opt_text(detail, "region") or opt_text(event, "region") or "",
            source_id=finding_id,
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type=finding_type,
            severity=float(severity),
            sample=sample,
            evidence=_evidence(detail, service),
            not_evidence=not_evidence,
            source_arn=opt_text(detail, "arn"),
        )
    ]


def _is_sample(additional: Mapping[str, Any]) -> bool:
    value = additional.get("sample")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _evidence(detail: Mapping[str, Any], service: Mapping[str, Any]) -> Evidence:
    action = opt_obj(service, "action")
    call = opt_obj(action, "awsApiCallAction")
    remote = opt_obj(call, "remoteIpDetails")
    org = opt_obj(remote, "organization")
    country = opt_obj(remote, "country")
    return Evidence(
        source_ip=opt_text(remote, "ipAddressV4") or opt_text(remote, "ipAddressV6"),
        asn=opt_text(org, "asn"),
        asn_org=opt_text(org, "asnOrg") or opt_text(org, "org"),
        country=opt_text(country, "countryName") or opt_text(country, "countryCode"),
        api=opt_text(call, "api"),
        service_name=opt_text(call, "serviceName"),
        user_agent=opt_text(call, "userAgent") if "userAgent" in call else None,
        first_seen=opt_text(service, "eventFirstSeen"),
        last_seen=opt_text(service, "eventLastSeen"),
        description=opt_text(detail, "title") or opt_text(detail, "description"),
    )
