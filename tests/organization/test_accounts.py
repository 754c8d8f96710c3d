"""The organization seam piece by piece: which account each source's event names, the settings, the
account directory, member credentials (one AssumeRole per account per session lifetime, the regional STS
endpoint, the incident in the session name, one retry on an expired session) and what comes before the
first deny in a member account."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from keyguard.errors import ConfigError
from keyguard.incident import Source
from keyguard.local import emulator
from keyguard.local.patterns import matches
from keyguard.org import accounts, target
from keyguard.org.credentials import MemberCredentials, session_name
from keyguard.org.directory import Directory, DirectoryUnavailable
from keyguard.org.settings import OrgSettings
from tests.conftest import inbox, load_event
from tests.faults import Fault
from tests.organization.world import CENTRAL, Organization, central_rules, retarget

M = "111122223333"


# ---------------------------------------------------------------- the account each source's event names
def test_guardduty_names_the_member_in_its_detail_and_the_region_it_happened_in() -> None:
    event = load_event("organization/guardduty-delegated-admin-iam-user.json")
    assert target.of(event, Source.GUARDDUTY) == target.Target(M, "eu-west-1", CENTRAL)


def test_health_organizational_view_names_the_affected_account() -> None:
    event = load_event("organization/health-organizational-view-credentials-exposed.json")
    assert target.of(event, Source.HEALTH) == target.Target(M, None, CENTRAL)


def test_forwarded_cloudtrail_is_about_the_account_that_forwarded_it() -> None:
    event = load_event("organization/cloudtrail-forwarded-create-access-key.json")
    assert target.of(event, Source.CREATE_ACCESS_KEY) == target.Target(M, "us-east-1", M)


def test_cloudtrail_whose_record_names_another_account_is_not_proven() -> None:
    event = load_event("organization/cloudtrail-forwarded-create-access-key.json")
    event["detail"]["recipientAccountId"] = CENTRAL
    with pytest.raises(target.NotProven, match="delivered only in their own account"):
        target.of(event, Source.CREATE_ACCESS_KEY)


@pytest.mark.parametrize(
    ("name", "source", "field"),
    [
        ("organization/guardduty-delegated-admin-iam-user.json", Source.GUARDDUTY, "accountId"),
        ("organization/health-organizational-view-credentials-exposed.json", Source.HEALTH, "affectedAccount"),
        ("organization/cloudtrail-forwarded-create-access-key.json", Source.CREATE_ACCESS_KEY, "recipientAccountId"),
    ],
)
@pytest.mark.parametrize("value", [None, "", "12345678901", "1234567890123", "11112222333a", 111122223333, ["x"]])
def test_a_missing_or_malformed_account_field_is_not_proven(name: str, source: Source, field: str, value: Any) -> None:
    event = load_event(name)
    if value is None:
        del event["detail"][field]
    else:
        event["detail"][field] = value
    with pytest.raises(target.NotProven, match=field):
        target.of(event, source)


@pytest.mark.parametrize("source", [Source.MANUAL, Source.INVESTIGATION])
def test_sources_without_an_event_name_no_account(source: Source) -> None:
    with pytest.raises(target.NotProven):
        target.of(load_event("guardduty-iam-user.json"), source)


# ---------------------------------------------------------------- settings
def test_settings_default_to_account_mode() -> None:
    settings = OrgSettings.from_env({})
    assert not settings.organization and settings.member_role_name == "keyguard-member"
    assert settings.allowed("999988887777") and settings.external_id is None


def test_settings_read_the_organization_parameters() -> None:
    settings = OrgSettings.from_env(
        {
            "KEYGUARD_DEPLOYMENT_MODE": "Organization ",
            "KEYGUARD_MEMBER_ROLE_NAME": "kg-member",
            "KEYGUARD_MEMBER_EXTERNAL_ID": "abc-123",
            "KEYGUARD_MEMBER_ACCOUNTS": f" {M}, 444455556666 ",
            "KEYGUARD_DELEGATED_ADMIN_ACCOUNTS": CENTRAL,
        }
    )
    assert settings.organization and settings.role_arn(M) == f"arn:aws:iam::{M}:role/kg-member"
    assert settings.allowed(M) and not settings.allowed(CENTRAL)
    assert settings.delegated_admins == {CENTRAL} and settings.external_id == "abc-123"
    assert settings.role_arn(M, "aws-cn") == f"arn:aws-cn:iam::{M}:role/kg-member"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KEYGUARD_DEPLOYMENT_MODE", "everything"),
        ("KEYGUARD_MEMBER_ROLE_NAME", "bad/name"),
        ("KEYGUARD_MEMBER_EXTERNAL_ID", "x"),
        ("KEYGUARD_MEMBER_ACCOUNTS", "1234"),
        ("KEYGUARD_DELEGATED_ADMIN_ACCOUNTS", f"{M},all"),
    ],
)
def test_bad_settings_are_refused_at_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        OrgSettings.from_env({name: value})


# ---------------------------------------------------------------- session names
STS_NAME = re.compile(r"[\w+=,.@-]{2,64}")


@pytest.mark.parametrize(
    "incident",
    [
        "guardduty:a4c1e9b27d5f4e0c9b8a7f6e5d4c3b2a:AKIAIOSFODNN7EXAMPLE",
        "health:arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED-Kq7R:AKIA",
        "create-access-key:4f1c2b3a-9d8e-4f7a-b6c5-d4e3f2a1b0c9:AKIAI44QH8DHBEXAMPLE",
        "x" * 500,
        "spaces and / slashes & ünïcode",
        None,
    ],
)
def test_session_names_carry_the_incident_in_stss_charset_and_length(incident: str | None) -> None:
    name = session_name(incident)
    assert STS_NAME.fullmatch(name), name
    assert name.startswith("keyguard-")
    if incident and len(incident) < 50:
        assert re.sub(r"[^\w+=,.@-]", "-", incident) in name


def test_long_incident_ids_never_share_a_session_name() -> None:
    a = session_name("health:" + "a" * 80 + ":AKIAIOSFODNN7EXAMPLE")
    b = session_name("health:" + "a" * 80 + ":AKIAI44QH8DHBEXAMPLE")
    assert a != b and len(a) == len(b) == 64


# ---------------------------------------------------------------- member credentials
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_credentials_are_reused_until_shortly_before_they_expire() -> None:
    clock, fetched = Clock(), []

    def fetch() -> tuple[ReadOnlyCredentials, float]:
        fetched.append(clock.now)
        return ReadOnlyCredentials(f"ASIA{len(fetched)}", "s", "t"), clock.now + 3600

    creds = MemberCredentials(fetch, margin=600, clock=clock)
    assert creds.access_key == "ASIA1" and creds.token == "t"
    clock.now += 2999  # 601 s left: still good
    assert creds.get_frozen_credentials().access_key == "ASIA1" and len(fetched) == 1
    clock.now += 2  # 599 s left: refreshed before anything can expire mid-call
    assert creds.get_frozen_credentials().access_key == "ASIA2" and len(fetched) == 2
    creds.expire()
    assert creds.secret_key == "s" and len(fetched) == 3


def test_concurrent_first_use_assumes_once() -> None:
    fetched = []
    gate = threading.Event()

    def fetch() -> tuple[ReadOnlyCredentials, float]:
        gate.wait(1)
        fetched.append(1)
        return ReadOnlyCredentials("ASIA", "s", "t"), 10**12

    creds = MemberCredentials(fetch)
    threads = [threading.Thread(target=creds.get_frozen_credentials) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert fetched == [1]


# ---------------------------------------------------------------- the directory
class FakeOrganizations:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.calls = answers, []

    def describe_account(self, AccountId: str) -> dict[str, Any]:
        self.calls.append(AccountId)
        answer = self.answers[AccountId]
        if isinstance(answer, Exception):
            raise answer
        return {"Account": {"Id": AccountId, **answer}}


class Coded(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def test_directory_answers_from_its_cache_and_refuses_without_asking_outside_the_allow_list() -> None:
    clock = Clock()
    orgs = FakeOrganizations({M: {"State": "ACTIVE", "Status": "ACTIVE"}, CENTRAL: Coded("AccountNotFoundException")})
    directory = Directory(lambda: orgs, lambda a: a != "444455556666", clock=clock)
    assert directory.standing(M).ok and directory.standing(M).ok and orgs.calls == [M]
    assert not directory.standing("444455556666").ok and orgs.calls == [M]
    refused = directory.standing(CENTRAL)
    assert not refused.ok and "not in the organization" in refused.reason
    clock.now += 61  # a refusal is asked again after a minute (an account that joined is found)
    directory.standing(CENTRAL)
    assert orgs.calls == [M, CENTRAL, CENTRAL]
    clock.now += 900  # an active member after 15 minutes (it may have been suspended since)
    directory.standing(M)
    assert orgs.calls[-1] == M


@pytest.mark.parametrize("state", ["SUSPENDED", "PENDING_CLOSURE", "CLOSED", ""])
def test_directory_refuses_accounts_that_are_not_active(state: str) -> None:
    orgs = FakeOrganizations({M: {"State": state}})
    standing = Directory(lambda: orgs, lambda a: True).standing(M)
    assert not standing.ok and standing.reason.startswith(f"account {M} is ")


@pytest.mark.parametrize("code", ["AccessDeniedException", "TooManyRequestsException", "ServiceException"])
def test_directory_that_cannot_answer_is_retried_not_refused(code: str) -> None:
    orgs = FakeOrganizations({M: Coded(code)})
    directory = Directory(lambda: orgs, lambda a: True)
    with pytest.raises(DirectoryUnavailable, match=code):
        directory.standing(M)
    with pytest.raises(DirectoryUnavailable):
        directory.standing(M)  # not cached: the next attempt asks again
    assert orgs.calls == [M, M]


# ---------------------------------------------------------------- member clients, against the emulated organization
class Calls:
    """Every AWS call made by the central session and by each member session, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def hook(self, session: Any, where: str) -> None:
        def record(model: Any, **_: Any) -> None:
            self.log.append((where, model.name))

        session.register("before-call", record, unique_id=f"calls-{where}")

    def before_first_deny(self) -> list[str]:
        ops = [op for _, op in self.log]
        first = next(i for i, op in enumerate(ops) if op in ("UpdateAccessKey", "PutUserPolicy", "PutRolePolicy"))
        return ops[:first]


@pytest.fixture
def calls(org: Organization, monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorder = Calls()
    recorder.hook(org.env.clients.session, "central")
    for service in ("sts", "organizations", "iam"):  # clients made before the hook was registered
        recorder.hook(org.env.clients.get(service).meta.events, "central")
    real = accounts.for_runtime

    def with_recorder(clients: Any, environ: Any = None) -> Any:
        made = real(clients, environ)
        if isinstance(made, accounts.Organization):
            made._prepare = lambda session: recorder.hook(session, "member")
        return made

    monkeypatch.setattr(accounts, "for_runtime", with_recorder)
    return recorder


def _handler(rule: emulator.Rule) -> Any:
    import importlib

    module, name = rule.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _warm_invoke(world: Organization, rule: emulator.Rule, event: dict[str, Any]) -> Any:
    """Invoke the handler again in the same container (no reset): cached accounts stay cached."""
    context = emulator.FakeContext(rule.function, f"arn:aws:lambda:us-east-1:{CENTRAL}:function:kg-{rule.function}")
    return _handler(rule)(event, context)


def _event(world: Organization, name: str, about: str, by: str | None = None) -> tuple[emulator.Rule, dict]:
    """The event about `about`, naming a new key of a new user there (so any number can be made)."""
    event = retarget(load_event(name), about, by)
    iam = world.admin(about)
    user = f"user-{len(iam.list_users()['Users'])}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    detail = event["detail"]
    detail["id"] = detail.get("id", "") + user
    if event["source"] == "aws.guardduty":
        detail["resource"]["accessKeyDetails"].update(accessKeyId=key, userName=user)
    elif event["source"] == "aws.health":
        detail["affectedEntities"] = [{"entityValue": key}]
        detail["eventArn"] += user
    else:
        detail["responseElements"]["accessKey"].update(accessKeyId=key, userName=user)
        detail["requestParameters"]["userName"] = user
        detail["eventID"] += user
    (rule,) = [r for r in central_rules(world.org_id) if matches(r.pattern, event)]
    return rule, event


LOOKUPS = {"GetAccessKeyLastUsed", "ListUserTags"}  # what account mode may do before the deny


@pytest.mark.parametrize(
    ("name", "by_admin", "target"),
    [
        ("organization/guardduty-delegated-admin-iam-user.json", True, 0),
        ("organization/health-organizational-view-credentials-exposed.json", True, 1),
        ("organization/cloudtrail-forwarded-create-access-key.json", False, 1),
    ],
)
def test_calls_before_containment_cold_and_cached_account(
    org: Organization, calls: Calls, name: str, by_admin: bool, target: int
) -> None:
    """A cached account: what account mode does (0 / 1 / 1 at most); a cold one: DescribeAccount and one
    AssumeRole more, and nothing else."""
    b = org.members["B"]
    rule, first = _event(org, name, b, CENTRAL if by_admin else None)
    _, second = _event(org, name, b, CENTRAL if by_admin else None)
    calls.log.clear()
    inv = emulator.invoke(org.env, rule, first)  # a cold container: the account is not cached yet
    assert inv.error is None
    cold = calls.before_first_deny()
    calls.log.clear()
    _warm_invoke(org, rule, second)  # the same container, the same account: nothing more before the deny
    cached = calls.before_first_deny()
    assert len(cached) <= target and set(cached) <= LOOKUPS
    assert cold == ["DescribeAccount", "AssumeRole", *cached]
    assert len(org.assumed) == 1  # one AssumeRole per account per session lifetime


def test_one_assume_role_per_account_however_many_incidents(org: Organization) -> None:
    for n, member in enumerate(("A", "B", "C", "A", "B", "C")):
        rule, event = _event(org, "organization/guardduty-delegated-admin-iam-user.json", org.members[member], CENTRAL)
        if n == 0:
            emulator.invoke(org.env, rule, event)  # a new container
        else:
            _warm_invoke(org, rule, event)
    assert sorted(a.split(":")[4] for a, _ in org.assumed) == sorted(org.members.values())
    assert all(name.startswith("keyguard-guardduty-") for _, name in org.assumed)
    assert [d["outcome"] for d in inbox(org.env)] == ["contained"] * 6


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_assume_role_goes_to_the_regional_sts_endpoint(
    org: Organization, monkeypatch: pytest.MonkeyPatch, region: str
) -> None:
    monkeypatch.setenv("AWS_REGION", region)
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # would send us-east-1 and others to sts.amazonaws.com
    from keyguard.aws import Clients

    central = Clients()
    accounts.Organization(central, OrgSettings.from_env())
    assert central.get("sts").meta.endpoint_url == f"https://sts.{region}.amazonaws.com"


def test_an_expired_session_mid_response_is_retried_once_with_fresh_credentials(
    org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults: list[Fault] = []
    real = accounts.for_runtime

    def expiring(clients: Any, environ: Any = None) -> Any:
        made = real(clients, environ)

        def prepare(session: Any) -> None:
            fault = Fault(
                session.create_client("iam", region_name="us-east-1"), "UpdateAccessKey", "ExpiredToken", times=1
            )
            session.get_component("event_emitter").register_first(fault.event, fault._answer, unique_id="expired")
            faults.append(fault)

        made._prepare = prepare
        return made

    monkeypatch.setattr(accounts, "for_runtime", expiring)
    b = org.members["B"]
    rule, event = _event(org, "organization/guardduty-delegated-admin-iam-user.json", b, CENTRAL)
    inv = emulator.invoke(org.env, rule, event)
    assert inv.error is None
    assert [d["outcome"] for d in inbox(org.env)] == ["contained"]
    assert [f.calls for f in faults] == [1]
    assert len(org.assumed) == 2  # the session, and the fresh one the retry was signed with
    assert org.key_states(b)["user-0"][event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]] == "Inactive"
