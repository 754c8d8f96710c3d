"""The member StackSet's forwarding rules and the central bus's rules route the real-shaped events of
events/ (and events/organization/): a member forwards only events about itself, the central bus sends
each to its function, and only what a function handles reaches one."""

from __future__ import annotations

import pytest

from keyguard.local.emulator import route
from tests.conftest import EVENTS, load_event
from tests.organization.world import CENTRAL, central_rules, forwarded, retarget

MEMBER = "111122223333"
ORG_FILES = sorted(f"organization/{p.name}" for p in (EVENTS / "organization").glob("*.json"))
ACCOUNT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))

# file -> (forwarded by the member StackSet in the envelope's account and region, central function)
ROUTES = {
    "organization/guardduty-delegated-admin-iam-user.json": (False, "GuardDutyFunction"),  # the admin's copy
    "organization/guardduty-member-forwarded-iam-user.json": (True, "GuardDutyFunction"),
    "organization/health-organizational-view-credentials-exposed.json": (False, "HealthFunction"),
    "organization/cloudtrail-forwarded-create-access-key.json": (True, "AccessKeyCreatedFunction"),
    # the account-mode files, as member 123456789012's own events
    "guardduty-iam-user.json": (True, "GuardDutyFunction"),
    "guardduty-low-severity.json": (True, "GuardDutyFunction"),
    "guardduty-root.json": (True, "GuardDutyFunction"),
    "guardduty-sample.json": (True, "GuardDutyFunction"),
    "guardduty-assumed-role-exfiltration.json": (True, "GuardDutyFunction"),
    "health-credentials-exposed.json": (True, "HealthFunction"),
    "health-iam-quarantine.json": (True, "HealthFunction"),
    "cloudtrail-create-access-key.json": (True, "AccessKeyCreatedFunction"),
    "cloudtrail-create-access-key-failed.json": (True, None),  # forwarded (tamper watch sees IAM calls), no function
    "guardduty-federated-user.json": (True, "GuardDutyFunction"),
    "guardduty-s3-malicious-ip.json": (True, "GuardDutyFunction"),  # a finding on S3 naming the credential
    "guardduty-s3-policy-anonymous-access.json": (True, "GuardDutyFunction"),  # (notify-only, decided there)
    # forwarded, but organization mode routes no central rule to these functions yet (permissions.CENTRAL_FUNCTIONS)
    **dict.fromkeys(
        [
            "cloudtrail-aws-quarantine-by-admin.json",
            "cloudtrail-aws-quarantine-inline.json",
            "cloudtrail-aws-quarantine-v2.json",
            "tamper-delete-role-policy.json",
            "tamper-delete-user-permissions-boundary.json",
            "tamper-delete-user-policy.json",
            "tamper-disable-rule.json",
            "tamper-put-user-policy.json",
            "tamper-untag-user.json",
            "tamper-update-access-key.json",
            "tamper-update-assume-role-policy.json",
            "tamper-update-user.json",
        ],
        (True, None),
    ),
    # not forwarded by the member StackSet (keyguard's own resources live in the central account there)
    **dict.fromkeys(
        [
            "tamper-create-filter-archive.json",
            "tamper-delete-detector.json",
            "tamper-delete-stack.json",
            "tamper-deployer-update-function.json",
            "tamper-disable-key.json",
            "tamper-put-function-concurrency.json",
            "tamper-schedule-key-deletion.json",
            "tamper-stop-logging.json",
            "tamper-unsubscribe.json",
            "tamper-update-function-configuration.json",
            "trustedadvisor-exposed-access-keys.json",
            # GuardDuty attack sequences: the member forwarders and central rules match findings naming the
            # credential in the resource; organization mode does not route attack sequences yet
            "guardduty-attack-sequence-iam.json",
            "guardduty-attack-sequence-iam-unprovable.json",
        ],
        (False, None),
    ),
}


def test_every_event_file_has_a_route() -> None:
    assert set(ROUTES) == set(ORG_FILES) | set(ACCOUNT_FILES)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_member_forwarders_and_central_rules_route_each_event(name: str) -> None:
    event = load_event(name)
    forwards, function = ROUTES[name]
    assert forwarded(event["account"], event["region"], event) is forwards
    assert [r.function for r in route(event, central_rules("o-a1b2c3d4e5"))] == ([function] if function else [])


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("health-iam-quarantine.json", "affectedAccount"),
        ("organization/guardduty-member-forwarded-iam-user.json", "accountId"),
        ("organization/cloudtrail-forwarded-create-access-key.json", "recipientAccountId"),
    ],
)
def test_an_event_without_the_field_naming_its_account_is_neither_forwarded_nor_routed(name: str, field: str) -> None:
    """In organization mode such an event cannot prove its account (keyguard.org.target would refuse it)."""
    event = load_event(name)
    del event["detail"][field]
    assert not forwarded(event["account"], event["region"], event)
    assert [r.function for r in route(event, central_rules("o-a1b2c3d4e5"))] == []


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_guardduty_findings_are_forwarded_from_every_region_iam_and_health_from_us_east_1(region: str) -> None:
    finding = retarget(load_event("organization/guardduty-member-forwarded-iam-user.json"), MEMBER, region=region)
    assert forwarded(MEMBER, region, finding)
    call = retarget(load_event("organization/cloudtrail-forwarded-create-access-key.json"), MEMBER)
    call["region"] = region
    assert forwarded(MEMBER, region, call) is (region == "us-east-1")
    health = retarget(load_event("organization/health-organizational-view-credentials-exposed.json"), MEMBER)
    health["region"] = region
    assert forwarded(MEMBER, region, health) is (region == "us-east-1")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("organization/guardduty-member-forwarded-iam-user.json", ("detail", "accountId")),
        ("organization/cloudtrail-forwarded-create-access-key.json", ("detail", "recipientAccountId")),
        ("health-credentials-exposed.json", ("detail", "affectedAccount")),
    ],
)
def test_a_member_never_forwards_an_event_about_another_account(name: str, path: tuple[str, str]) -> None:
    event = retarget(load_event(name), MEMBER)
    assert forwarded(MEMBER, event["region"], event)
    event[path[0]][path[1]] = CENTRAL
    assert not forwarded(MEMBER, event["region"], event)
    event["account"] = CENTRAL  # and another account's envelope is not its own either
    assert not forwarded(MEMBER, event["region"], event)


def test_tamper_watch_forwards_changes_to_rules_in_every_region() -> None:
    event = {
        "version": "0",
        "id": "7e3c1b2a-0000-4000-8000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.events",
        "account": MEMBER,
        "time": "2025-03-17T09:41:27Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventSource": "events.amazonaws.com",
            "eventName": "DisableRule",
            "recipientAccountId": MEMBER,
            "awsRegion": "eu-west-1",
        },
    }
    assert forwarded(MEMBER, "eu-west-1", event)
    event["detail"]["eventName"] = "ListRules"
    assert not forwarded(MEMBER, "eu-west-1", event)
