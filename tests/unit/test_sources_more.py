"""Issue 12's extractors (AWS's quarantine record, Trusted Advisor) and the widened GuardDuty one, against
the events/ fixtures and their malformed and hostile variants."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keyguard.errors import MalformedEvent
from keyguard.incident import PrincipalType, Source
from keyguard.plan import Outcome, triage
from keyguard.settings import Settings
from keyguard.sources import aws_quarantine, guardduty, trusted_advisor
from tests.conftest import load_event

V2 = "cloudtrail-aws-quarantine-v2.json"
INLINE = "cloudtrail-aws-quarantine-inline.json"
BY_ADMIN = "cloudtrail-aws-quarantine-by-admin.json"
TA = "trustedadvisor-exposed-access-keys.json"
S3 = "guardduty-s3-malicious-ip.json"
S3_POLICY = "guardduty-s3-policy-anonymous-access.json"


def changed(name: str, path: str, value: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    *parents, last = path.split(".")
    node = event
    for p in parents:
        node = node[p]
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return event


DELETE = object()


# ------------------------------------------------------------------ AWS's quarantine


def test_aws_attaching_its_quarantine_names_the_user_and_no_key() -> None:
    (i,) = aws_quarantine.extract(load_event(V2))
    assert (i.source, i.key_id, i.principal_type, i.principal_name) == (
        Source.AWS_QUARANTINE,
        "",
        PrincipalType.IAM_USER,
        "alice",
    )
    assert i.not_evidence is None and i.finding_type == "AttachUserPolicy AWSCompromisedKeyQuarantineV2"
    assert i.source_id == "7d2c4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e8f" and i.region == "us-east-1"
    assert triage(i, Settings()) is None  # evidence: go on and contain the user


@pytest.mark.parametrize("version", ["", "V2", "V3"])
def test_every_version_of_the_managed_policy_is_aws_s_quarantine(version: str) -> None:
    arn = f"arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine{version}"
    (i,) = aws_quarantine.extract(changed(V2, "detail.requestParameters.policyArn", arn))
    assert i.finding_type.endswith(f"AWSCompromisedKeyQuarantine{version}") and i.not_evidence is None


def test_the_old_inline_form_names_the_key_that_signed_it() -> None:
    (i,) = aws_quarantine.extract(load_event(INLINE))
    assert (i.key_id, i.principal_name, i.not_evidence) == ("AKIAIOSFODNN7EXAMPLE", "alice", None)


def test_anyone_else_attaching_it_is_reported_not_proof() -> None:
    (i,) = aws_quarantine.extract(load_event(BY_ADMIN))
    assert i.key_id == "" and i.principal_name == "alice"
    assert "admin-carol" in i.not_evidence and "not by AWS" in i.not_evidence
    assert triage(i, Settings())[0] is Outcome.NOTIFY_ONLY


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        # the caller can choose its user agent, not CloudTrail's sourceIPAddress
        ("detail.userAgent", "AWS Internal", "a forged user agent from the admin's own address"),
        # a principal of this account acting through AWS: a service names itself in invokedBy
        ("detail.userIdentity.invokedBy", "cloudformation.amazonaws.com", "a stack of this account"),
    ],
)
def test_what_a_caller_can_forge_does_not_make_it_aws(path: str, value: str, why: str) -> None:
    event = changed(BY_ADMIN, path, value)
    (i,) = aws_quarantine.extract(event)
    assert i.not_evidence, why


def test_an_account_principal_reaching_iam_from_inside_aws_is_not_aws() -> None:
    event = changed(BY_ADMIN, "detail.sourceIPAddress", "AWS Internal")
    (i,) = aws_quarantine.extract(event)
    assert i.not_evidence  # admin-carol of this account made the call


def test_the_old_form_signed_by_another_users_key_is_not_proof_about_the_target() -> None:
    event = changed(INLINE, "detail.requestParameters.userName", "bob")
    (i,) = aws_quarantine.extract(event)
    assert i.key_id == "" and i.principal_name == "bob" and i.not_evidence  # alice's key wrote it on bob


def test_the_old_form_without_aws_s_internal_agent_is_not_proof() -> None:
    (i,) = aws_quarantine.extract(changed(INLINE, "detail.userAgent", "aws-cli/2.15.30"))
    assert i.key_id == "" and i.not_evidence


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("detail.eventName", "DetachUserPolicy"),
        ("detail.errorCode", "AccessDenied"),
        ("detail.requestParameters", None),
        ("detail.requestParameters.userName", DELETE),
        ("detail.requestParameters.userName", "alice<!channel>"),
        ("detail.requestParameters.userName", "a" * 65),
        ("detail.requestParameters.userName", ["alice"]),
        ("detail.requestParameters.policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ("detail.requestParameters.policyArn", "arn:aws:iam::123456789012:policy/AWSCompromisedKeyQuarantineV2"),
        ("detail.requestParameters.policyArn", "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2\n"),
        ("detail.eventID", DELETE),
        ("detail.recipientAccountId", "12345"),
        ("source", "aws.s3"),
        ("account", None),
    ],
)
def test_malformed_quarantine_records_raise(path: str, value: Any) -> None:
    with pytest.raises(MalformedEvent):
        aws_quarantine.extract(changed(V2, path, value))


@pytest.mark.parametrize("name", ["AWSCompromisedKeyQuarantine", "AWSExposedCredentialPolicy_DO_NOT_REMOVE"])
def test_inline_policy_names_of_aws(name: str) -> None:
    (i,) = aws_quarantine.extract(changed(INLINE, "detail.requestParameters.policyName", name))
    assert i.key_id == "AKIAIOSFODNN7EXAMPLE"


def test_an_inline_policy_of_another_name_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        aws_quarantine.extract(changed(INLINE, "detail.requestParameters.policyName", "keyguard-quarantine"))


# ------------------------------------------------------------------ Trusted Advisor


def test_trusted_advisor_names_the_key_and_where_it_was_found() -> None:
    (i,) = trusted_advisor.extract(load_event(TA))
    assert (i.source, i.key_id, i.principal_type, i.principal_name) == (
        Source.TRUSTED_ADVISOR,
        "AKIAI44QH8DHBEXAMPLE",
        PrincipalType.UNKNOWN,  # the user it names is a hint: IAM says who owns the key
        "bob",
    )
    assert "github[.]com/example-org" in i.evidence.description and i.source_id.startswith("02648f3b")  # defanged
    assert triage(i, Settings()) is None


def test_a_root_key_found_exposed_is_for_a_human() -> None:
    (i,) = trusted_advisor.extract(changed(TA, "detail.check-item-detail.User Name (IAM or Root)", "<root_account>"))
    assert triage(i, Settings())[0] is Outcome.ROOT


def test_a_hostile_user_name_is_dropped_not_trusted() -> None:
    (i,) = trusted_advisor.extract(changed(TA, "detail.check-item-detail.User Name (IAM or Root)", "<@U0ADMIN> x"))
    assert i.principal_name is None  # IAM names the owner


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("detail.status", "WARN"),
        ("detail.status", "OK"),
        ("detail.check-name", "IAM Access Key Rotation"),
        ("detail.check-item-detail", None),
        ("detail.check-item-detail.Access Key ID", DELETE),
        ("detail.check-item-detail.Access Key ID", "ASIAIOSFODNN7EXAMPLE"),
        ("detail.check-item-detail.Access Key ID", "AKIAIOSFODNN7EXAMPLE "),
        ("detail-type", "Trusted Advisor Check Status Notification"),
    ],
)
def test_malformed_trusted_advisor_events_raise(path: str, value: Any) -> None:
    with pytest.raises(MalformedEvent):
        trusted_advisor.extract(changed(TA, path, value))


# ------------------------------------------------------------------ GuardDuty on other resources


def test_an_s3_finding_about_the_credential_is_evidence_about_the_key() -> None:
    (i,) = guardduty.extract(load_event(S3))
    assert (i.key_id, i.principal_name, i.severity, i.not_evidence) == ("AKIAIOSFODNN7EXAMPLE", "alice", 8.0, None)
    assert i.source_arn.endswith("/finding/c6e2b8a47f1d4e9a8b7c6d5e4f3a2b1c")
    assert triage(i, Settings()) is None


def test_an_s3_finding_below_the_threshold_stays_notify_only() -> None:
    (i,) = guardduty.extract(changed(S3, "detail.severity", 2))
    assert triage(i, Settings())[0] is Outcome.BELOW_THRESHOLD


@pytest.mark.parametrize(
    "finding_type",
    [
        "Policy:S3/BucketAnonymousAccessGranted",
        "Policy:S3/BucketBlockPublicAccessDisabled",
        "Policy:S3/AccountBlockPublicAccessDisabled",
        "Stealth:S3/ServerAccessLoggingDisabled",
        "Object:S3/MaliciousFile",
    ],
)
def test_findings_where_the_key_is_not_shown_misused_are_notify_only(finding_type: str) -> None:
    (i,) = guardduty.extract(changed(S3_POLICY, "detail.type", finding_type))
    assert i.not_evidence and triage(i, Settings())[0] is Outcome.NOTIFY_ONLY


@pytest.mark.parametrize(
    "finding_type",
    [
        "Discovery:S3/MaliciousIPCaller",
        "Exfiltration:S3/AnomalousBehavior",
        "Impact:S3/AnomalousBehavior.Delete",
        "PenTest:S3/KaliLinux",
        "UnauthorizedAccess:S3/TorIPCaller",
    ],
)
def test_findings_about_the_credential_s_own_calls_contain(finding_type: str) -> None:
    (i,) = guardduty.extract(changed(S3, "detail.type", finding_type))
    assert i.not_evidence is None


def test_the_same_purpose_on_the_key_itself_is_unchanged() -> None:
    """AccessKey findings are evidence whatever their purpose (the threshold decides), as before."""
    (i,) = guardduty.extract(changed("guardduty-iam-user.json", "detail.type", "Policy:IAMUser/RootCredentialUsage"))
    assert i.not_evidence is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("detail.resource.accessKeyDetails", DELETE),
        ("detail.resource.resourceType", DELETE),
        ("detail.resource.resourceType", "x" * 3000),
        ("detail.resource.accessKeyDetails.accessKeyId", "<!here>"),
        ("detail.resource.accessKeyDetails.userName", DELETE),
    ],
)
def test_malformed_s3_findings_raise(path: str, value: Any) -> None:
    with pytest.raises(MalformedEvent):
        guardduty.extract(changed(S3, path, value))
