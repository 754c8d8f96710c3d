"""Organization mode end to end, against moto's multi-account support: an event about member B, from
whichever bus delivers it, contains the key in B and nothing in A or C; an event that does not prove its
account, or names one keyguard must not act in, is reported and never assumed into."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyguard.local import emulator
from keyguard.local.patterns import matches
from tests.conftest import inbox, load_event
from tests.organization.world import CENTRAL, OUTSIDER, REGIONS, Organization, central_rules, retarget

ORG_EVENTS = "organization/"


def deliver(
    world: Organization, event: dict[str, Any], about: str
) -> tuple[emulator.Seeded, list[emulator.Invocation]]:
    """Seed `about` (the member the event names) for the event, then route it through the central bus's
    rules to the functions, as the central stack runs them."""
    seeded = emulator.seed(world.admin(about), event)
    rules = [r for r in central_rules(world.org_id) if matches(r.pattern, seeded.event)]
    return seeded, [emulator.invoke(world.env, rule, seeded.event) for rule in rules]


def seed_lookalikes(world: Organization, event: dict[str, Any], but: str) -> dict[str, dict[str, str]]:
    """The same users, with keys, in every other member: what must stay as it is."""
    for account in world.members.values():
        if account != but:
            emulator.seed(world.admin(account), event)
    return {a: world.key_states(a) for a in world.members.values() if a != but}


def assert_untouched(world: Organization, before: dict[str, dict[str, dict[str, str]]]) -> None:
    for account, states in before.items():
        assert world.key_states(account) == states, account
        assert all(p == [] for p in world.policies(account).values()), account


def named_key_status(world: Organization, seeded: emulator.Seeded, account: str) -> set[str]:
    states = world.key_states(account)
    named = set(seeded.replaced.values())
    return {status for keys in states.values() for key, status in keys.items() if key in named}


# ---------------------------------------------------------------- contained in the right account
MATRIX = [(m, r, "delegated-admin") for m in ("A", "B", "C") for r in REGIONS] + [("B", r, "member") for r in REGIONS]


@pytest.mark.parametrize(("member", "region", "delivered_by"), MATRIX)
def test_guardduty_finding_contains_the_key_in_its_account_only(
    org: Organization, member: str, region: str, delivered_by: str
) -> None:
    """3 members x 3 regions from the GuardDuty delegated administrator's bus, and the member's own."""
    about = org.members[member]
    by = CENTRAL if delivered_by == "delegated-admin" else about
    event = retarget(load_event(ORG_EVENTS + "guardduty-delegated-admin-iam-user.json"), about, by, region)
    before = seed_lookalikes(org, event, but=about)
    seeded, invocations = deliver(org, event, about)
    assert [i.rule.function for i in invocations] == ["GuardDutyFunction"]
    assert invocations[0].error is None, invocations[0].error
    assert named_key_status(org, seeded, about) == {"Inactive"}
    assert org.policies(about)["alice"] == ["keyguard-quarantine"]
    boundary = org.admin(about).get_user(UserName="alice")["User"].get("PermissionsBoundary", {})
    assert boundary.get("PermissionsBoundaryArn") == "arn:aws:iam::aws:policy/AWSDenyAll"  # the member's own layer
    assert_untouched(org, before)
    (doc,) = inbox(org.env)
    assert doc["outcome"] == "contained" and doc["account"] == about
    assert [arn.split(":")[4] for arn, _ in org.assumed] == [about]


@pytest.mark.parametrize("admins", ["configured", "default: the security account"])
def test_health_organizational_view_contains_the_affected_accounts_key(
    org: Organization, monkeypatch: pytest.MonkeyPatch, admins: str
) -> None:
    if admins != "configured":
        monkeypatch.setenv("KEYGUARD_DELEGATED_ADMIN_ACCOUNTS", "")  # the account the functions run in
    about = org.members["B"]
    event = retarget(load_event(ORG_EVENTS + "health-organizational-view-credentials-exposed.json"), about, CENTRAL)
    assert event["account"] == CENTRAL and event["detail"]["affectedAccount"] == about
    before = seed_lookalikes(org, event, but=about)
    seeded, invocations = deliver(org, event, about)
    assert [i.rule.function for i in invocations] == ["HealthFunction"] and invocations[0].error is None
    assert named_key_status(org, seeded, about) == {"Inactive"}
    assert_untouched(org, before)
    assert [d["outcome"] for d in inbox(org.env)] == ["contained"]


def test_forwarded_create_access_key_deactivates_the_new_key_in_its_account_only(org: Organization) -> None:
    about = org.members["C"]
    event = retarget(load_event(ORG_EVENTS + "cloudtrail-forwarded-create-access-key.json"), about)
    before = seed_lookalikes(org, event, but=about)
    seeded, invocations = deliver(org, event, about)
    assert [i.rule.function for i in invocations] == ["AccessKeyCreatedFunction"] and invocations[0].error is None
    states = org.key_states(about)["bob"]
    new = seeded.replaced["AKIAI44QH8DHBEXAMPLE"]
    assert states[new] == "Inactive" and [s for k, s in states.items() if k != new] == ["Active"]
    assert org.policies(about)["bob"] == ["keyguard-revoke-sessions"]
    assert_untouched(org, before)


# ---------------------------------------------------------------- a member's own events never reach another
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("guardduty-member-forwarded-iam-user.json", ("detail", "accountId")),
        ("health-organizational-view-credentials-exposed.json", ("detail", "affectedAccount")),
        ("cloudtrail-forwarded-create-access-key.json", ("detail", "recipientAccountId")),
    ],
)
def test_a_members_event_naming_another_member_is_refused(org: Organization, name: str, field: tuple[str, str]) -> None:
    """B (say, an attacker holding B's admin) forwards an event whose detail names C: nothing is done in
    either account, no role is assumed, and the notification says why."""
    b, c = org.members["B"], org.members["C"]
    event = retarget(load_event(ORG_EVENTS + name), c, delivered_by=b)
    assert event[field[0]][field[1]] == c and event["account"] == b
    before = seed_lookalikes(org, event, but=c)
    seeded, invocations = deliver(org, event, c)
    assert invocations and all(i.error is None for i in invocations)
    assert org.assumed == [] and org.refused == []
    assert_untouched(org, before)
    assert named_key_status(org, seeded, c) == {"Active"}
    assert all(p == [] for p in org.policies(c).values())
    docs = inbox(org.env)
    assert docs and {d["outcome"] for d in docs} == {"other-account"}


# ---------------------------------------------------------------- accounts keyguard must not act in
def _guardduty_about(org: Organization, account: str) -> dict[str, Any]:
    return retarget(load_event(ORG_EVENTS + "guardduty-delegated-admin-iam-user.json"), account, CENTRAL, "eu-west-1")


@pytest.mark.parametrize("which", ["outsider", "suspended", "not-allowed"])
def test_accounts_outside_suspended_or_not_allowed_are_reported_and_never_assumed_into(
    org: Organization, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    account = {"outsider": OUTSIDER, "suspended": org.suspended, "not-allowed": org.members["B"]}[which]
    if which == "not-allowed":
        monkeypatch.setenv("KEYGUARD_MEMBER_ACCOUNTS", org.members["A"])
    event = _guardduty_about(org, account)
    seeded = emulator.seed(org.admin(account), event)
    rules = [r for r in central_rules(org.org_id) if matches(r.pattern, seeded.event)]
    (invocation,) = [emulator.invoke(org.env, rule, seeded.event) for rule in rules]
    assert invocation.error is None
    assert org.assumed == [] and org.refused == []  # never assumed into
    assert named_key_status(org, seeded, account) == {"Active"}
    (doc,) = inbox(org.env)
    assert doc["outcome"] == "other-account"
    reason = {"outsider": "not in the organization", "suspended": "is suspended", "not-allowed": "MemberAccounts"}
    assert reason[which] in json.dumps(doc)


@pytest.mark.parametrize("why", ["missing member role", "wrong external id"])
def test_refused_assume_role_is_reported_raised_and_changes_nothing(
    org: Organization, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    b = org.members["B"]
    if why == "missing member role":
        org.remove_member_role(b)
    else:
        monkeypatch.setenv("KEYGUARD_MEMBER_EXTERNAL_ID", "not-the-configured-one")
    seeded, (invocation,) = deliver(org, _guardduty_about(org, b), b)
    assert invocation.error is not None and "ResponseFailed" in invocation.error  # Lambda retries, then the DLQ
    assert org.refused == [f"arn:aws:iam::{b}:role/keyguard-member"] * len(org.refused) and org.refused
    assert named_key_status(org, seeded, b) == {"Active"}
    (doc,) = inbox(org.env)
    assert doc["outcome"] == "failed" and "AssumeRole" in json.dumps(doc)


def test_an_event_that_names_no_account_is_refused(org: Organization) -> None:
    b = org.members["B"]
    event = _guardduty_about(org, b)
    del event["detail"]["accountId"]
    seeded = emulator.seed(org.admin(b), event)
    rule = next(r for r in emulator.load_rules() if r.function == "GuardDutyFunction")  # the default bus's rule
    invocation = emulator.invoke(org.env, rule, seeded.event)
    assert invocation.error is None and org.assumed == []
    assert named_key_status(org, seeded, b) == {"Active"}
    assert [d["outcome"] for d in inbox(org.env)] == ["other-account"]


# ---------------------------------------------------------------- investigation in the member account
def test_investigation_runs_in_the_member_account_through_the_member_role(
    org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leaked key in B made a key for B's user eve: investigation, acting in B through the member role,
    reads B's CloudTrail and deactivates that key; A's and C's eve keep theirs."""
    from datetime import UTC, datetime, timedelta

    from keyguard.local.cloudtrail import FakeCloudTrail
    from keyguard.org import accounts

    b = org.members["B"]
    event = retarget(load_event(ORG_EVENTS + "guardduty-delegated-admin-iam-user.json"), b, CENTRAL, "eu-west-1")
    before = {}
    for account in org.members.values():
        org.admin(account).create_user(UserName="eve")
        made = org.admin(account).create_access_key(UserName="eve")["AccessKey"]["AccessKeyId"]
        before[account] = made
    seeded = emulator.seed(org.admin(b), event)
    leaked = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    when = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{b}:user/alice",
            "accountId": b,
            "accessKeyId": leaked,
            "userName": "alice",
        },
        "eventTime": when,
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "requestParameters": {"userName": "eve"},
        "responseElements": {"accessKey": {"userName": "eve", "accessKeyId": before[b], "status": "Active"}},
        "eventID": "5c1e0b7a-0000-4000-8000-0000000000e1",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": b,
    }
    trail = FakeCloudTrail([record])
    real = accounts.for_runtime

    def with_trail(clients: Any, environ: Any = None) -> Any:
        made = real(clients, environ)
        made._prepare = trail.install  # member sessions only: the central account's trail is not B's
        return made

    monkeypatch.setattr(accounts, "for_runtime", with_trail)
    rules = [r for r in central_rules(org.org_id) if matches(r.pattern, seeded.event)]
    (contained,) = [emulator.invoke(org.env, rule, seeded.event) for rule in rules]
    assert contained.error is None
    (investigation,) = emulator.investigate_queued(org.env)
    assert investigation.error is None, investigation.error
    assert sum(trail.calls.values()) > 0
    assert org.key_states(b)["eve"][before[b]] == "Inactive"
    for account in org.members.values():
        if account != b:
            assert org.key_states(account)["eve"][before[account]] == "Active"
