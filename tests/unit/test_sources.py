"""The extractors against the sample events in events/ and against malformed variants of them.

Every malformed variant is a deep copy of a fixture with one change, so the tests show which field the
extractors depend on. Only keyguard.errors.MalformedEvent may escape an extractor.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keyguard.errors import MalformedEvent
from keyguard.incident import ACCOUNT_RE, Evidence, Incident, Kind, PrincipalType, Source, is_key_id
from keyguard.sources import cloudtrail, guardduty, health

EVENTS = Path(__file__).resolve().parents[2] / "events"

Extractor = Callable[[Any], list[Incident]]

ACCOUNT = "123456789012"
ALICE_KEY = "AKIAIOSFODNN7EXAMPLE"
BOB_KEY = "AKIAI44QH8DHBEXAMPLE"
ROLE_KEY = "ASIAIOSFODNN7EXAMPLE"
CT_USER_AGENT = (
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8"
    " md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off"
    " md/command#iam.create-access-key"
)
EXPOSED_DESCRIPTION = (
    "We have become aware that the AWS access key AKIAI44QH8DHBEXAMPLE, belonging to IAM user bob in account"
    " 123456789012, was publicly available online. We have opened a Support Case with more details; please"
    " review it and rotate this key immediately."
)
QUARANTINE_DESCRIPTION = (
    "AWS has detected that access keys in account 123456789012 may be compromised and has applied the"
    " AWSCompromisedKeyQuarantineV3 policy to the affected IAM users to restrict their use. Review the"
    " affected access keys listed with this event, rotate them, and review your account for unauthorized"
    " activity."
)
DELETE = object()  # a mutation value: remove the key


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def mutated(name: str, *changes: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of fixture `name` with each (dotted path, value) applied; DELETE removes the key."""
    return mutated_event(copy.deepcopy(load(name)), *changes)


def mutated_event(event: dict[str, Any], *changes: tuple[str, Any]) -> dict[str, Any]:
    """Apply (dotted path, value) changes in place; list items are addressed by index."""
    for path, value in changes:
        *parents, last = path.split(".")
        node: Any = event
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return event


def extractor_for(name: str) -> Extractor:
    if name.startswith(("cloudtrail-aws-quarantine", "trustedadvisor-")):  # issue 12's triggers
        from tests.conftest import extractor_for as by_prefix

        return by_prefix(name)
    if name.startswith("guardduty-"):
        return guardduty.extract
    if name.startswith("health-"):
        return health.extract
    if name.startswith("cloudtrail-"):
        return cloudtrail.extract
    raise AssertionError(f"no extractor for {name}")


# --------------------------------------------------------------------------------------------------
# The fixtures, field by field
# --------------------------------------------------------------------------------------------------

GD_IAM_USER = Incident(
    source=Source.GUARDDUTY,
    kind=Kind.COMPROMISE,
    key_id=ALICE_KEY,
    principal_type=PrincipalType.IAM_USER,
    principal_name="alice",
    principal_id="AIDACKCEVSQ6C2EXAMPLE",
    account=ACCOUNT,
    region="us-east-1",
    source_id="a4c1e9b27d5f4e0c9b8a7f6e5d4c3b2a",
    source_arn="arn:aws:guardduty:us-east-1:123456789012:detector/b2c7e1f04a9d3c6e8f1a2b3c4d5e6f70/finding/a4c1e9b27d5f4e0c9b8a7f6e5d4c3b2a",
    event_id="6f1d2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b",
    observed_at=datetime(2025, 3, 10, 14, 10, 0, tzinfo=UTC),
    finding_type="UnauthorizedAccess:IAMUser/TorIPCaller",
    severity=5.0,
    sample=False,
    evidence=Evidence(
        source_ip="198.51.100.23",
        asn="64496",
        asn_org="EXAMPLE-TRANSIT-AS",
        country="Netherlands",
        api="ListBuckets",
        service_name="s3.amazonaws.com",
        user_agent=None,
        first_seen="2025-03-10T13:58:41.000Z",
        last_seen="2025-03-10T14:03:07.000Z",
        description="API ListBuckets was invoked from a Tor exit node IP address.",
    ),
)

EXPECTED: dict[str, list[Incident]] = {
    "guardduty-iam-user.json": [GD_IAM_USER],
    "guardduty-assumed-role-exfiltration.json": [
        Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id=ROLE_KEY,
            principal_type=PrincipalType.ASSUMED_ROLE,
            principal_name="web-app-role",
            principal_id="AROADBQP57FF2AEXAMPLE:i-0123456789abcdef0",
            account=ACCOUNT,
            region="us-east-1",
            source_id="c7f3a1d95e2b4c8a9f0e1d2c3b4a5968",
            source_arn="arn:aws:guardduty:us-east-1:123456789012:detector/b2c7e1f04a9d3c6e8f1a2b3c4d5e6f70/finding/c7f3a1d95e2b4c8a9f0e1d2c3b4a5968",
            event_id="0b9e8d7c-6a5f-4e3d-9c2b-1a0f9e8d7c6b",
            observed_at=datetime(2025, 3, 11, 8, 25, 0, tzinfo=UTC),
            finding_type="UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            severity=8.0,
            sample=False,
            evidence=Evidence(
                source_ip="203.0.113.45",
                asn="64511",
                asn_org="EXAMPLE-HOSTING-AS",
                country="Germany",
                api="ListBuckets",
                service_name="s3.amazonaws.com",
                first_seen="2025-03-11T08:12:30.000Z",
                last_seen="2025-03-11T08:17:44.000Z",
                description="Credentials for instance role web-app-role used from external IP address.",
            ),
        )
    ],
    "guardduty-root.json": [
        Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id=BOB_KEY,
            principal_type=PrincipalType.ROOT,
            principal_name="Root",
            principal_id=ACCOUNT,
            account=ACCOUNT,
            region="us-east-1",
            source_id="e2b8d4f60a1c4e7b8d9c0a1b2c3d4e5f",
            source_arn="arn:aws:guardduty:us-east-1:123456789012:detector/b2c7e1f04a9d3c6e8f1a2b3c4d5e6f70/finding/e2b8d4f60a1c4e7b8d9c0a1b2c3d4e5f",
            event_id="3e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9",
            observed_at=datetime(2025, 3, 12, 21, 40, 0, tzinfo=UTC),
            finding_type="Recon:IAMUser/MaliciousIPCaller.Custom",
            severity=5.0,
            sample=False,
            evidence=Evidence(
                source_ip="198.51.100.77",
                asn="64500",
                asn_org="EXAMPLE-CLOUD-AS",
                country="United States",
                api="ListFunctions20150331",
                service_name="lambda.amazonaws.com",
                first_seen="2025-03-12T21:30:09.000Z",
                last_seen="2025-03-12T21:36:51.000Z",
                description="Reconnaissance API ListFunctions20150331 was invoked from an IP address on a"
                " custom threat list.",
            ),
        )
    ],
    "guardduty-sample.json": [
        Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id="GeneratedFindingAccessKeyId",
            principal_type=PrincipalType.IAM_USER,
            principal_name="GeneratedFindingUserName",
            principal_id="GeneratedFindingPrincipalId",
            account=ACCOUNT,
            region="us-east-1",
            source_id="5d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a",
            source_arn="arn:aws:guardduty:us-east-1:123456789012:detector/b2c7e1f04a9d3c6e8f1a2b3c4d5e6f70/finding/5d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a",
            event_id="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            observed_at=datetime(2025, 3, 13, 10, 5, 0, tzinfo=UTC),
            finding_type="UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            severity=5.0,
            sample=True,
            evidence=Evidence(
                source_ip="198.51.100.0",
                asn="-1",
                asn_org="GeneratedFindingASNOrg",
                country="GeneratedFindingCountryName",
                api="GeneratedFindingAPIName",
                service_name="GeneratedFindingAPIServiceName",
                first_seen="2025-03-13T10:00:03.221Z",
                last_seen="2025-03-13T10:00:03.221Z",
                description="API GeneratedFindingAPIName was invoked from a known malicious IP address.",
            ),
        )
    ],
    "guardduty-low-severity.json": [
        Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id=ALICE_KEY,
            principal_type=PrincipalType.IAM_USER,
            principal_name="alice",
            principal_id="AIDACKCEVSQ6C2EXAMPLE",
            account=ACCOUNT,
            region="us-east-1",
            source_id="f0e1d2c3b4a5968778695a4b3c2d1e0f",
            source_arn="arn:aws:guardduty:us-east-1:123456789012:detector/b2c7e1f04a9d3c6e8f1a2b3c4d5e6f70/finding/f0e1d2c3b4a5968778695a4b3c2d1e0f",
            event_id="7c6b5a49-3827-4165-9f0e-d1c2b3a49586",
            observed_at=datetime(2025, 3, 14, 16, 50, 0, tzinfo=UTC),
            finding_type="Stealth:IAMUser/CloudTrailLoggingDisabled",
            severity=2.0,
            sample=False,
            evidence=Evidence(
                source_ip="203.0.113.10",
                asn="64505",
                asn_org="EXAMPLE-ISP-AS",
                country="United States",
                api="StopLogging",
                service_name="cloudtrail.amazonaws.com",
                first_seen="2025-03-14T16:41:15.000Z",
                last_seen="2025-03-14T16:41:15.000Z",
                description="AWS CloudTrail trail management-events was disabled.",
            ),
        )
    ],
    "health-credentials-exposed.json": [
        Incident(
            source=Source.HEALTH,
            kind=Kind.COMPROMISE,
            key_id=BOB_KEY,
            principal_type=PrincipalType.UNKNOWN,
            principal_name=None,
            principal_id=None,
            account=ACCOUNT,
            region="us-east-1",
            source_id="arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/"
            "AWS_RISK_CREDENTIALS_EXPOSED-Kq7RtW2xLm",
            event_id="d4c3b2a1-0f9e-4d8c-a7b6-c5d4e3f2a1b0",
            observed_at=datetime(2025, 3, 15, 3, 12, 44, tzinfo=UTC),
            finding_type="AWS_RISK_CREDENTIALS_EXPOSED",
            severity=None,
            sample=False,
            evidence=Evidence(
                first_seen="Sat, 15 Mar 2025 03:11:58 GMT",
                description=EXPOSED_DESCRIPTION,
                exposed_at="hxxps://github[.]com/example/example-repo/blob/main/deploy[.]env",  # defanged
                reply_by="2025-03-19",  # AWS's Support case: the start time + 4 days
            ),
        )
    ],
    "health-iam-quarantine.json": [
        Incident(
            source=Source.HEALTH,
            kind=Kind.COMPROMISE,
            key_id=key,
            principal_type=PrincipalType.UNKNOWN,
            principal_name=None,
            principal_id=None,
            account=ACCOUNT,
            region="global",
            source_id="arn:aws:health:global::event/RISK/AWS_RISK_IAM_QUARANTINE/AWS_RISK_IAM_QUARANTINE-Zp4NcY8vQe",
            event_id="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            observed_at=datetime(2025, 3, 16, 11, 47, 20, tzinfo=UTC),
            finding_type="AWS_RISK_IAM_QUARANTINE",
            severity=None,
            sample=False,
            evidence=Evidence(first_seen="Sun, 16 Mar 2025 11:46:31 GMT", description=QUARANTINE_DESCRIPTION),
        )
        for key in (ALICE_KEY, BOB_KEY)
    ],
    "cloudtrail-create-access-key.json": [
        Incident(
            source=Source.CREATE_ACCESS_KEY,
            kind=Kind.NEW_KEY,
            key_id=BOB_KEY,
            principal_type=PrincipalType.IAM_USER,
            principal_name="bob",
            principal_id=None,
            account=ACCOUNT,
            region="us-east-1",
            source_id="1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
            event_id="e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9",
            observed_at=datetime(2025, 3, 17, 9, 41, 27, tzinfo=UTC),
            finding_type="CreateAccessKey",
            severity=None,
            sample=False,
            actor_arn="arn:aws:iam::123456789012:user/admin-carol",
            evidence=Evidence(
                source_ip="203.0.113.25",
                api="CreateAccessKey",
                service_name="iam",
                user_agent=CT_USER_AGENT,
                first_seen="2025-03-17T09:41:27Z",
                description="created by arn:aws:iam::123456789012:user/admin-carol",
            ),
        )
    ],
}

MALFORMED_FIXTURES = {"cloudtrail-create-access-key-failed.json"}
# issue 12's fixtures, extracted field by field in tests/unit/test_sources_more.py
COVERED_ELSEWHERE = {
    "cloudtrail-aws-quarantine-v2.json",
    "cloudtrail-aws-quarantine-inline.json",
    "cloudtrail-aws-quarantine-by-admin.json",
    "trustedadvisor-exposed-access-keys.json",
    "guardduty-s3-malicious-ip.json",
    "guardduty-s3-policy-anonymous-access.json",
    "guardduty-federated-user.json",
    "guardduty-attack-sequence-iam.json",  # tests/behaviour/test_attack_sequence.py
    "guardduty-attack-sequence-iam-unprovable.json",
}


def test_every_fixture_is_covered() -> None:
    on_disk = {p.name for p in EVENTS.glob("*.json") if not p.name.startswith("tamper-")}  # no incident source
    assert on_disk == set(EXPECTED) | MALFORMED_FIXTURES | COVERED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_extracts_exactly(name: str) -> None:
    incidents = extractor_for(name)(load(name))
    assert incidents == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_types_are_exact(name: str) -> None:
    """Enum members and floats, not look-alike strings and ints (== would hide that)."""
    for incident in extractor_for(name)(load(name)):
        assert type(incident.source) is Source
        assert type(incident.kind) is Kind
        assert type(incident.principal_type) is PrincipalType
        assert incident.severity is None or type(incident.severity) is float
        assert type(incident.sample) is bool


@pytest.mark.parametrize(
    ("name", "incident_ids"),
    [
        ("guardduty-iam-user.json", ["guardduty:a4c1e9b27d5f4e0c9b8a7f6e5d4c3b2a:AKIAIOSFODNN7EXAMPLE"]),
        (
            "health-iam-quarantine.json",
            [
                "health:arn:aws:health:global::event/RISK/AWS_RISK_IAM_QUARANTINE/"
                "AWS_RISK_IAM_QUARANTINE-Zp4NcY8vQe:AKIAIOSFODNN7EXAMPLE",
                "health:arn:aws:health:global::event/RISK/AWS_RISK_IAM_QUARANTINE/"
                "AWS_RISK_IAM_QUARANTINE-Zp4NcY8vQe:AKIAI44QH8DHBEXAMPLE",
            ],
        ),
        (
            "cloudtrail-create-access-key.json",
            ["create-access-key:1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b:AKIAI44QH8DHBEXAMPLE"],
        ),
    ],
)
def test_incident_ids(name: str, incident_ids: list[str]) -> None:
    assert [i.incident_id for i in extractor_for(name)(load(name))] == incident_ids


def test_guardduty_reemission_keeps_the_incident_id() -> None:
    """GuardDuty re-sends an updated finding with a new envelope id: the incident stays the same."""
    first = guardduty.extract(load("guardduty-iam-user.json"))[0]
    again = guardduty.extract(mutated("guardduty-iam-user.json", ("id", "other-envelope"), ("detail.service.count", 9)))
    assert again[0].event_id == "other-envelope"
    assert again[0].incident_id == first.incident_id


def test_failed_create_access_key_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="AccessDenied"):
        cloudtrail.extract(load("cloudtrail-create-access-key-failed.json"))


# --------------------------------------------------------------------------------------------------
# Accepted variants: what the extractors make of legitimate shapes the fixtures do not show
# --------------------------------------------------------------------------------------------------

GD = "guardduty-iam-user.json"
GD_ROLE = "guardduty-assumed-role-exfiltration.json"
GD_SAMPLE = "guardduty-sample.json"
HE = "health-credentials-exposed.json"
HQ = "health-iam-quarantine.json"
CT = "cloudtrail-create-access-key.json"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(0, 0.0), (10, 10.0), (7.5, 7.5), (8.9, 8.9), (4.0, 4.0)],
)
def test_guardduty_severity_bounds_accepted(severity: float, expected: float) -> None:
    [incident] = guardduty.extract(mutated(GD, ("detail.severity", severity)))
    assert incident.severity == expected
    assert type(incident.severity) is float


@pytest.mark.parametrize(
    ("user_type", "principal_type"),
    [
        ("IAMUser", PrincipalType.IAM_USER),
        ("AssumedRole", PrincipalType.ASSUMED_ROLE),
        ("Root", PrincipalType.ROOT),
        ("FederatedUser", PrincipalType.FEDERATED_USER),  # issue 12: its issuer is looked up
        ("AWSService", PrincipalType.OTHER),
        (DELETE, PrincipalType.OTHER),
        (None, PrincipalType.OTHER),
    ],
)
def test_guardduty_user_types(user_type: Any, principal_type: PrincipalType) -> None:
    event = mutated(GD, ("detail.resource.accessKeyDetails.userType", user_type))
    [incident] = guardduty.extract(event)
    assert incident.principal_type is principal_type


@pytest.mark.parametrize("user_type", ["Root", "FederatedUser", DELETE])
def test_guardduty_user_name_optional_for_root_and_other(user_type: Any) -> None:
    event = mutated(
        GD,
        ("detail.resource.accessKeyDetails.userType", user_type),
        ("detail.resource.accessKeyDetails.userName", DELETE),
    )
    [incident] = guardduty.extract(event)
    assert incident.principal_name is None


@pytest.mark.parametrize("flag", [True, "true", "TRUE", "True"])
def test_guardduty_sample_flag_forms(flag: Any) -> None:
    [incident] = guardduty.extract(mutated(GD, ("detail.service.additionalInfo.sample", flag)))
    assert incident.sample is True


@pytest.mark.parametrize("flag", [False, "false", None, 1, "yes", DELETE])
def test_guardduty_not_a_sample(flag: Any) -> None:
    event = mutated(GD_SAMPLE, ("detail.service.additionalInfo.sample", flag))
    # A non-sample finding must carry a real key id and user name.
    event = mutated_event(
        event,
        ("detail.resource.accessKeyDetails.accessKeyId", ALICE_KEY),
        ("detail.resource.accessKeyDetails.userName", "alice"),
    )
    [incident] = guardduty.extract(event)
    assert incident.sample is False


def test_guardduty_sample_without_key_or_user_shape_is_accepted() -> None:
    event = mutated(GD_SAMPLE, ("detail.resource.accessKeyDetails.userName", DELETE))
    [incident] = guardduty.extract(event)
    assert incident.sample is True
    assert incident.principal_name is None


def test_guardduty_account_and_region_from_the_finding() -> None:
    """Under a GuardDuty administrator account the finding names the member account and its region."""
    event = mutated(GD, ("detail.accountId", "210987654321"), ("detail.region", "eu-west-1"))
    [incident] = guardduty.extract(event)
    assert (incident.account, incident.region) == ("210987654321", "eu-west-1")


def test_guardduty_account_and_region_fall_back_to_the_envelope() -> None:
    event = mutated(GD, ("detail.accountId", DELETE), ("detail.region", DELETE), ("region", "eu-central-1"))
    [incident] = guardduty.extract(event)
    assert (incident.account, incident.region) == (ACCOUNT, "eu-central-1")


def test_guardduty_evidence_ipv6_org_and_country_code_fallbacks() -> None:
    remote = "detail.service.action.awsApiCallAction.remoteIpDetails"
    event = mutated(
        GD,
        (f"{remote}.ipAddressV4", DELETE),
        (f"{remote}.ipAddressV6", "2001:db8::1"),
        (f"{remote}.organization.asnOrg", DELETE),
        (f"{remote}.country", {"countryCode": "NL"}),
        ("detail.service.action.awsApiCallAction.userAgent", "curl/8.5.0"),
        ("detail.title", DELETE),
    )
    [incident] = guardduty.extract(event)
    assert incident.evidence == replace(
        GD_IAM_USER.evidence,
        source_ip="2001:db8::1",
        asn_org="Example Transit Networks",
        country="NL",
        user_agent="curl/8.5.0",
        description="API ListBuckets was invoked by IAM user alice using access key AKIAIOSFODNN7EXAMPLE"
        " from Tor exit node IP address 198.51.100.23.",
    )


def test_guardduty_finding_without_api_call_action_has_empty_evidence() -> None:
    event = mutated(GD, ("detail.service", DELETE), ("detail.title", DELETE), ("detail.description", DELETE))
    [incident] = guardduty.extract(event)
    assert incident.evidence == Evidence()


def test_health_abuse_detail_type_is_accepted() -> None:
    [incident] = health.extract(mutated(HE, ("detail-type", "AWS Health Abuse Event")))
    assert incident.key_id == BOB_KEY


def test_health_entities_skip_non_keys_non_dicts_and_duplicates() -> None:
    entities = [
        None,
        "AKIAIOSFODNN7EXAMPLE",
        ["AKIAIOSFODNN7EXAMPLE"],
        {"entityValue": "arn:aws:iam::123456789012:user/bob"},
        {"entityValue": "IAM_USER/bob/AKIAI44QH8DHBEXAMPLE"},
        {"entityValue": BOB_KEY},
        {"entityValue": None},
        {"noValue": ALICE_KEY},
        {"entityValue": BOB_KEY, "statusCode": "IMPAIRED"},
        {"entityValue": ROLE_KEY},
        {"entityValue": ALICE_KEY},
        {"entityValue": ROLE_KEY},
    ]
    incidents = health.extract(mutated(HQ, ("detail.affectedEntities", entities)))
    assert [i.key_id for i in incidents] == [BOB_KEY, ROLE_KEY, ALICE_KEY]
    assert {i.source_id for i in incidents} == {EXPECTED[HQ][0].source_id}


def test_health_max_entities_is_accepted() -> None:
    entities = [{"entityValue": BOB_KEY}] * health.MAX_ENTITIES
    assert [i.key_id for i in health.extract(mutated(HE, ("detail.affectedEntities", entities)))] == [BOB_KEY]


def test_health_asia_key_is_extracted() -> None:
    [incident] = health.extract(mutated(HE, ("detail.affectedEntities", [{"entityValue": ROLE_KEY}])))
    assert (incident.key_id, incident.principal_type) == (ROLE_KEY, PrincipalType.UNKNOWN)


def test_health_fallbacks_region_arn_description() -> None:
    event = mutated(
        HE,
        ("detail.eventRegion", DELETE),
        ("detail.eventArn", DELETE),
        ("detail.eventDescription", "not a list"),
        ("detail.startTime", DELETE),
        ("region", "us-west-2"),
    )
    [incident] = health.extract(event)
    assert incident.region == "us-west-2"
    assert incident.source_id == "d4c3b2a1-0f9e-4d8c-a7b6-c5d4e3f2a1b0"
    # no start time: the reply-by date counts from the envelope's time (2025-03-15T03:12:44Z)
    place = "hxxps://github[.]com/example/example-repo/blob/main/deploy[.]env"
    assert incident.evidence == Evidence(exposed_at=place, reply_by="2025-03-19")


def test_health_description_is_capped() -> None:
    event = mutated(HE, ("detail.eventDescription", [{"latestDescription": "x" * 1500}]))
    [incident] = health.extract(event)
    assert incident.evidence.description == "x" * 500


def test_cloudtrail_root_creating_its_own_key() -> None:
    event = mutated(
        CT,
        (
            "detail.userIdentity",
            {
                "type": "Root",
                "principalId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:root",
                "accountId": ACCOUNT,
                "accessKeyId": ROLE_KEY,
            },
        ),
        ("detail.requestParameters", None),
        ("detail.responseElements.accessKey.userName", DELETE),
    )
    [incident] = cloudtrail.extract(event)
    assert incident == replace(
        EXPECTED[CT][0],
        principal_type=PrincipalType.ROOT,
        principal_name=None,
        actor_arn=f"arn:aws:iam::{ACCOUNT}:root",
        evidence=replace(EXPECTED[CT][0].evidence, description=f"created by arn:aws:iam::{ACCOUNT}:root"),
    )


def test_cloudtrail_root_creating_a_key_for_a_user() -> None:
    event = mutated(
        CT,
        (
            "detail.userIdentity",
            {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root"},
        ),
    )
    [incident] = cloudtrail.extract(event)
    assert (incident.principal_type, incident.principal_name) == (PrincipalType.IAM_USER, "bob")


@pytest.mark.parametrize(
    "request_parameters",
    [None, {"userName": None}, {}, DELETE],
    ids=["request-null", "userName-null", "request-empty", "request-missing"],
)
def test_cloudtrail_caller_creating_a_key_for_itself(request_parameters: Any) -> None:
    event = mutated(
        CT,
        ("detail.requestParameters", request_parameters),
        ("detail.responseElements.accessKey.userName", DELETE),
    )
    [incident] = cloudtrail.extract(event)
    assert incident == replace(EXPECTED[CT][0], principal_name="admin-carol")


def test_cloudtrail_response_user_wins_over_request() -> None:
    event = mutated(CT, ("detail.requestParameters.userName", None))
    [incident] = cloudtrail.extract(event)
    assert incident.principal_name == "bob"


def test_cloudtrail_account_region_and_caller_fallbacks() -> None:
    event = mutated(
        CT,
        ("detail.recipientAccountId", DELETE),
        ("detail.awsRegion", DELETE),
        ("detail.userIdentity.arn", DELETE),
        ("region", "eu-west-1"),
    )
    [incident] = cloudtrail.extract(event)
    assert (incident.account, incident.region) == (ACCOUNT, "eu-west-1")
    assert incident.evidence.description == "created by AIDAJ45Q7YFFAREXAMPLE"


# --------------------------------------------------------------------------------------------------
# Malformed variants: each raises MalformedEvent, before anything is done
# --------------------------------------------------------------------------------------------------


NOT_EVENTS = [None, [], "event", 42, 4.2, True, b"{}", ()]


@pytest.mark.parametrize("extract", [guardduty.extract, health.extract, cloudtrail.extract])
@pytest.mark.parametrize("event", NOT_EVENTS, ids=repr)
def test_not_a_dict(extract: Extractor, event: Any) -> None:
    with pytest.raises(MalformedEvent):
        extract(event)


def envelope_cases(name: str, other_source: str) -> list[Any]:
    """The envelope checks every extractor shares."""
    return [
        pytest.param(name, ("source", other_source), id=f"{name}:wrong-source"),
        pytest.param(name, ("source", DELETE), id=f"{name}:no-source"),
        pytest.param(name, ("detail-type", "Some Other Event"), id=f"{name}:wrong-detail-type"),
        pytest.param(name, ("detail-type", DELETE), id=f"{name}:no-detail-type"),
        pytest.param(name, ("detail-type", ["GuardDuty Finding"]), id=f"{name}:detail-type-list"),
        pytest.param(name, ("detail", DELETE), id=f"{name}:no-detail"),
        pytest.param(name, ("detail", None), id=f"{name}:detail-null"),
        pytest.param(name, ("detail", []), id=f"{name}:detail-list"),
        pytest.param(name, ("detail", "{}"), id=f"{name}:detail-string"),
        pytest.param(name, ("id", DELETE), id=f"{name}:no-id"),
        pytest.param(name, ("id", ""), id=f"{name}:empty-id"),
        pytest.param(name, ("id", 7), id=f"{name}:numeric-id"),
        pytest.param(name, ("account", DELETE), id=f"{name}:no-account"),
        pytest.param(name, ("account", "12345678901"), id=f"{name}:short-account"),
        pytest.param(name, ("account", "12345678901a"), id=f"{name}:non-digit-account"),
        pytest.param(name, ("account", 123456789012), id=f"{name}:numeric-account"),
    ]


GD_KEY = "detail.resource.accessKeyDetails.accessKeyId"
GD_USER = "detail.resource.accessKeyDetails.userName"

MALFORMED = [
    *envelope_cases(GD, "aws.health"),
    *envelope_cases(GD_ROLE, "aws.iam"),
    *envelope_cases(HE, "aws.guardduty"),
    *envelope_cases(HQ, "aws.iam"),
    *envelope_cases(CT, "aws.cloudtrail"),
    # GuardDuty
    # other resource types are findings about the credential only when they name it (issue 12)
    pytest.param(GD, ("detail.resource", {"resourceType": "Instance"}), id="gd:resourceType-Instance-no-key"),
    pytest.param(GD, ("detail.resource", {"resourceType": "S3Bucket"}), id="gd:resourceType-S3Bucket-no-key"),
    pytest.param(GD, ("detail.resource.resourceType", DELETE), id="gd:no-resourceType"),
    pytest.param(GD, ("detail.resource", DELETE), id="gd:no-resource"),
    pytest.param(GD, ("detail.resource", "AccessKey"), id="gd:resource-string"),
    pytest.param(GD, ("detail.resource.accessKeyDetails", DELETE), id="gd:no-accessKeyDetails"),
    pytest.param(GD, ("detail.resource.accessKeyDetails", []), id="gd:accessKeyDetails-list"),
    pytest.param(GD, ("detail.severity", DELETE), id="gd:severity-missing"),
    pytest.param(GD, ("detail.severity", None), id="gd:severity-null"),
    pytest.param(GD, ("detail.severity", "5"), id="gd:severity-string"),
    pytest.param(GD, ("detail.severity", "HIGH"), id="gd:severity-word"),
    pytest.param(GD, ("detail.severity", True), id="gd:severity-true"),
    pytest.param(GD, ("detail.severity", False), id="gd:severity-false"),
    pytest.param(GD, ("detail.severity", 11), id="gd:severity-11"),
    pytest.param(GD, ("detail.severity", 10.01), id="gd:severity-10.01"),
    pytest.param(GD, ("detail.severity", -1), id="gd:severity-negative"),
    pytest.param(GD, ("detail.severity", math.nan), id="gd:severity-nan"),
    pytest.param(GD, ("detail.severity", math.inf), id="gd:severity-inf"),
    pytest.param(GD, ("detail.severity", [5]), id="gd:severity-list"),
    pytest.param(GD, (GD_KEY, "akiaiosfodnn7example"), id="gd:key-lowercase"),
    pytest.param(GD, (GD_KEY, "AKIA" + "A" * 15), id="gd:key-AKIA+15"),
    pytest.param(GD, (GD_KEY, "AKIA" + "A" * 17), id="gd:key-AKIA+17"),
    pytest.param(GD, (GD_KEY, "AIDACKCEVSQ6C2EXAMPLE"), id="gd:key-AIDA-prefix"),
    pytest.param(GD, (GD_KEY, "ABIAIOSFODNN7EXAMPLE"), id="gd:key-ABIA-prefix"),
    pytest.param(GD, (GD_KEY, "AKIAIOSFODNN7EXAMPL-"), id="gd:key-punctuation"),
    pytest.param(GD, (GD_KEY, " AKIAIOSFODNN7EXAMPLE"), id="gd:key-leading-space"),
    pytest.param(GD, (GD_KEY, "AKIAIOSFODNN7EXAMPLE\n"), id="gd:key-trailing-newline"),
    pytest.param(GD, (GD_KEY, "GeneratedFindingAccessKeyId"), id="gd:placeholder-key-not-sample"),
    pytest.param(GD, (GD_KEY, DELETE), id="gd:key-missing"),
    pytest.param(GD, (GD_KEY, ""), id="gd:key-empty"),
    pytest.param(GD, (GD_KEY, 12345), id="gd:key-number"),
    pytest.param(GD, (GD_USER, DELETE), id="gd:iam-user-without-userName"),
    pytest.param(GD, (GD_USER, ""), id="gd:iam-user-empty-userName"),
    pytest.param(GD, (GD_USER, None), id="gd:iam-user-null-userName"),
    pytest.param(GD_ROLE, (GD_USER, DELETE), id="gd:role-without-userName"),
    pytest.param(GD, ("detail.id", DELETE), id="gd:no-finding-id"),
    pytest.param(GD, ("detail.id", "x" * 3000), id="gd:finding-id-too-long"),
    pytest.param(GD, ("detail.type", DELETE), id="gd:no-finding-type"),
    pytest.param(GD, ("detail.type", {"name": "x"}), id="gd:finding-type-object"),
    pytest.param(GD_SAMPLE, ("detail.severity", "5"), id="gd:sample-severity-string"),
    pytest.param(GD_SAMPLE, ("detail.resource", {"resourceType": "Instance"}), id="gd:sample-not-access-key"),
    # Health
    pytest.param(HE, ("detail.affectedEntities", []), id="health:no-entities"),
    pytest.param(
        HE,
        ("detail.affectedEntities", [{"entityValue": "arn:aws:iam::123456789012:user/bob"}]),
        id="health:no-key-entity",
    ),
    pytest.param(HE, ("detail.affectedEntities.0.entityValue", "akiai44qh8dhbexample"), id="health:lowercase-key"),
    pytest.param(HE, ("detail.affectedEntities.0.entityValue", "AKIA" + "B" * 15), id="health:short-key"),
    pytest.param(HE, ("detail.affectedEntities", [None, BOB_KEY, 7, [BOB_KEY]]), id="health:only-non-dicts"),
    pytest.param(HE, ("detail.affectedEntities", DELETE), id="health:entities-missing"),
    pytest.param(HE, ("detail.affectedEntities", None), id="health:entities-null"),
    pytest.param(HE, ("detail.affectedEntities", {"entityValue": BOB_KEY}), id="health:entities-object"),
    pytest.param(HE, ("detail.affectedEntities", BOB_KEY), id="health:entities-string"),
    pytest.param(
        HE,
        ("detail.affectedEntities", [{"entityValue": BOB_KEY}] * (health.MAX_ENTITIES + 1)),
        id="health:too-many-entities",
    ),
    pytest.param(HE, ("detail.eventTypeCode", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"), id="health:not-risk-code"),
    pytest.param(HE, ("detail.eventTypeCode", "RISK_CREDENTIALS_EXPOSED"), id="health:code-without-prefix"),
    pytest.param(HE, ("detail.eventTypeCode", "aws_risk_credentials_exposed"), id="health:code-lowercase"),
    pytest.param(HE, ("detail.eventTypeCode", DELETE), id="health:no-code"),
    pytest.param(HE, ("detail.eventTypeCode", ""), id="health:empty-code"),
    pytest.param(HE, ("detail.eventTypeCode", ["AWS_RISK_CREDENTIALS_EXPOSED"]), id="health:code-list"),
    pytest.param(HE, ("detail.service", "EC2"), id="health:service-EC2"),
    pytest.param(HE, ("detail.service", "ABUSE"), id="health:service-ABUSE"),
    pytest.param(HE, ("detail.service", "risk"), id="health:service-lowercase"),
    pytest.param(HE, ("detail.service", DELETE), id="health:no-service"),
    # CloudTrail CreateAccessKey
    pytest.param(CT, ("detail.eventName", "DeleteAccessKey"), id="ct:other-event"),
    pytest.param(CT, ("detail.eventName", DELETE), id="ct:no-eventName"),
    pytest.param(CT, ("detail.errorCode", "AccessDenied"), id="ct:errorCode"),
    pytest.param(CT, ("detail.errorCode", "LimitExceeded"), id="ct:errorCode-limit"),
    pytest.param(CT, ("detail.responseElements", DELETE), id="ct:no-responseElements"),
    pytest.param(CT, ("detail.responseElements", None), id="ct:responseElements-null"),
    pytest.param(CT, ("detail.responseElements.accessKey", DELETE), id="ct:no-accessKey"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", DELETE), id="ct:no-key-id"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", ROLE_KEY), id="ct:ASIA-key"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", "akiai44qh8dhbexample"), id="ct:lowercase-key"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", "AKIA" + "C" * 15), id="ct:short-key"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", "AIDAI44QH8DHBEXAMPLE"), id="ct:AIDA-key"),
    pytest.param(CT, ("detail.eventID", DELETE), id="ct:no-eventID"),
    # Key ids and account ids must match their pattern exactly: no trailing newline ($ matches before one).
    pytest.param(HE, ("detail.affectedEntities.0.entityValue", BOB_KEY + "\n"), id="health:key-trailing-newline"),
    pytest.param(CT, ("detail.responseElements.accessKey.accessKeyId", BOB_KEY + "\n"), id="ct:key-trailing-newline"),
    pytest.param(GD, ("account", ACCOUNT + "\n"), id="gd:envelope-account-trailing-newline"),
    # The account an incident is for must be an account id wherever the extractor reads it from.
    pytest.param(GD, ("detail.accountId", "not-an-account"), id="gd:detail-accountId-not-an-account"),
    pytest.param(GD, ("detail.accountId", "2109876543210"), id="gd:detail-accountId-13-digits"),
    pytest.param(CT, ("detail.recipientAccountId", "not-an-account"), id="ct:recipientAccountId-not-an-account"),
]


@pytest.mark.parametrize(("name", "change"), MALFORMED)
def test_malformed_variant(name: str, change: tuple[str, Any]) -> None:
    event = mutated(name, change)
    with pytest.raises(MalformedEvent):
        extractor_for(name)(event)


NO_USER = [("detail.responseElements.accessKey.userName", DELETE), ("detail.requestParameters", None)]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param([*NO_USER, ("detail.userIdentity.userName", DELETE)], id="iam-user-caller-without-userName"),
        pytest.param(
            [*NO_USER, ("detail.userIdentity.type", "AssumedRole"), ("detail.userIdentity.userName", DELETE)],
            id="role-caller",
        ),
        pytest.param(
            [*NO_USER, ("detail.userIdentity.type", "AssumedRole")],
            id="role-caller-with-userName",  # only an IAM user caller makes a key for itself
        ),
        pytest.param([*NO_USER, ("detail.userIdentity", DELETE)], id="no-identity"),
        pytest.param([*NO_USER, ("detail.userIdentity", "Root")], id="identity-string"),
    ],
)
def test_cloudtrail_names_no_user(changes: list[tuple[str, Any]]) -> None:
    with pytest.raises(MalformedEvent, match="names no user"):
        cloudtrail.extract(mutated(CT, *changes))


def test_mutating_a_copy_leaves_the_fixture_alone() -> None:
    before = load(GD)
    mutated(GD, ("detail.severity", "5"), ("detail.resource", DELETE))
    assert load(GD) == before


# --------------------------------------------------------------------------------------------------
# Hostile values everywhere: only MalformedEvent escapes, and whatever is accepted is well-formed
# --------------------------------------------------------------------------------------------------

HOSTILE = [None, True, 0, -1.5, "", "   ", "x" * 3000, [], {}, ["AKIAIOSFODNN7EXAMPLE"], {"a": 1}, DELETE]
ALL_FIXTURES = sorted(set(EXPECTED) | MALFORMED_FIXTURES)


def paths(node: Any, prefix: str = "") -> Iterator[str]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        path = f"{prefix}{key}"
        yield path
        yield from paths(child, path + ".")


def hostile_variants(name: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Every fixture path set to every hostile value, one at a time."""
    for path in paths(load(name)):
        for value in HOSTILE:
            yield path, value, mutated(name, (path, value))


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_hostile_values_raise_only_malformed_event(name: str) -> None:
    extract = extractor_for(name)
    problems = []
    for path, value, event in hostile_variants(name):
        try:
            incidents = extract(event)
        except MalformedEvent:
            continue
        except Exception as e:
            problems.append(f"{path}={value!r:.30}: {type(e).__name__}: {e}")
            continue
        if not isinstance(incidents, list) or not incidents:
            problems.append(f"{path}={value!r:.30}: returned {incidents!r:.100}")
    assert not problems, "\n".join(problems)


def problems_of(incident: Incident) -> list[str]:
    """What is wrong with an accepted incident (empty: well-formed)."""
    out = []
    if not isinstance(incident, Incident):
        return [f"not an Incident: {type(incident).__name__}"]
    if not incident.sample and not is_key_id(incident.key_id):
        out.append(f"key_id {incident.key_id!r:.40}")
    if not isinstance(incident.account, str) or not ACCOUNT_RE.fullmatch(incident.account):
        out.append(f"account {incident.account!r:.40}")
    for field_name in ("source_id", "event_id", "finding_type"):
        value = getattr(incident, field_name)
        if not isinstance(value, str) or not value.strip():
            out.append(f"{field_name} {value!r:.40}")
    if not isinstance(incident.region, str):
        out.append(f"region {incident.region!r:.40}")
    named = incident.principal_type in (PrincipalType.IAM_USER, PrincipalType.ASSUMED_ROLE)
    if named and not incident.sample and not (isinstance(incident.principal_name, str) and incident.principal_name):
        out.append(f"principal_name {incident.principal_name!r:.40}")
    if incident.severity is not None and not 0 <= incident.severity <= 10:
        out.append(f"severity {incident.severity!r}")
    for key, value in vars(incident.evidence).items():
        # Evidence is free text from the event, capped (plus a short prefix such as "created by ").
        if value is not None and not (isinstance(value, str) and len(value) <= 2100):
            out.append(f"evidence.{key} {value!r:.40}")
    return out


def test_hostile_values_accepted_are_well_formed() -> None:
    problems = []
    for name in ALL_FIXTURES:
        for path, value, event in hostile_variants(name):
            try:
                incidents = extractor_for(name)(event)
            except Exception:  # noqa: S112 - the test above covers what is raised
                continue
            problems += [f"{name} {path}={value!r:.30}: {p}" for i in incidents for p in problems_of(i)]
    assert not problems, "\n".join(problems)
