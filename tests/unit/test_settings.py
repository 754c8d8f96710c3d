"""Settings.from_env: SAM parameters arrive as environment variables; bad ones fail at the first event."""

from __future__ import annotations

import pytest

from keyguard.errors import ConfigError
from keyguard.settings import CAK_NOTIFY, CAK_QUARANTINE, DRY_RUN, ENFORCE, Settings

ALL = {
    "KEYGUARD_MODE": "dry-run",
    "KEYGUARD_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:keyguard-alerts",
    "KEYGUARD_IDEMPOTENCY_TABLE": "keyguard-idempotency",
    "KEYGUARD_GUARDDUTY_MIN_SEVERITY": "7.5",
    "KEYGUARD_CREATE_ACCESS_KEY_RESPONSE": "notify",
    "KEYGUARD_EXEMPT_TAG_KEY": "security:exempt",
    "KEYGUARD_PROTECTED_PRINCIPALS": "break-glass,arn:aws:iam::123456789012:role/OrganizationAccountAccessRole",
    "KEYGUARD_OWN_ROLES": "keyguard-GuardDutyFunctionRole-ABC,keyguard-HealthFunctionRole-DEF",
    "KEYGUARD_DEDUP_TTL_SECONDS": "3600",
    "KEYGUARD_EXEMPT_PRINCIPALS": "user/ci-bot",
    "KEYGUARD_LEDGER_TABLE": "keyguard-ledger",
    "KEYGUARD_DENY_ALL_POLICY_ARN": "arn:aws:iam::123456789012:policy/keyguard-deny-all",
}


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.mode == ENFORCE
    assert s.dry_run is False
    assert s.topic_arn is None
    assert s.idempotency_table is None
    assert s.guardduty_min_severity == 4.0
    assert s.create_access_key_response == CAK_QUARANTINE
    assert s.exempt_tag_key == ""  # no tag exempts anyone unless the stack opts in
    assert s.exempt_principals == frozenset()
    assert s.ledger_table is None and s.deny_all_policy_arn is None
    assert s.protected_principals == frozenset()
    assert s.own_roles == frozenset()
    assert s.dedup_ttl_seconds == 7 * 24 * 3600
    assert type(s.dedup_ttl_seconds) is int
    assert type(s.guardduty_min_severity) is float


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/usr/bin", "AWS_REGION": "us-east-1", "KEYGUARD_UNKNOWN": "x"}) == Settings()


def test_every_variable() -> None:
    assert Settings.from_env(ALL) == Settings(
        mode=DRY_RUN,
        topic_arn="arn:aws:sns:us-east-1:123456789012:keyguard-alerts",
        idempotency_table="keyguard-idempotency",
        guardduty_min_severity=7.5,
        create_access_key_response=CAK_NOTIFY,
        exempt_tag_key="security:exempt",
        protected_principals=frozenset({"break-glass", "role:organizationaccountaccessrole"}),
        own_roles=frozenset({"keyguard-guarddutyfunctionrole-abc", "keyguard-healthfunctionrole-def"}),
        dedup_ttl_seconds=3600,
        exempt_principals=frozenset({"user:ci-bot"}),
        ledger_table="keyguard-ledger",
        deny_all_policy_arn="arn:aws:iam::123456789012:policy/keyguard-deny-all",
    )
    assert Settings.from_env(ALL).dry_run is True


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYGUARD_MODE", "dry-run")
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "alice")
    s = Settings.from_env()
    assert (s.mode, s.protected_principals) == (DRY_RUN, frozenset({"alice"}))


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("KEYGUARD_MODE", "enforce", "mode", ENFORCE),
        ("KEYGUARD_MODE", "DRY-RUN", "mode", DRY_RUN),
        ("KEYGUARD_MODE", "  Dry-Run \n", "mode", DRY_RUN),
        ("KEYGUARD_MODE", " ENFORCE", "mode", ENFORCE),
        ("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", "Quarantine", "create_access_key_response", CAK_QUARANTINE),
        ("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", " NOTIFY ", "create_access_key_response", CAK_NOTIFY),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "0", "guardduty_min_severity", 0.0),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "10", "guardduty_min_severity", 10.0),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "7", "guardduty_min_severity", 7.0),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", " 8.9 ", "guardduty_min_severity", 8.9),
        ("KEYGUARD_DEDUP_TTL_SECONDS", "1", "dedup_ttl_seconds", 1),
        ("KEYGUARD_DEDUP_TTL_SECONDS", " 86400 ", "dedup_ttl_seconds", 86400),
        ("KEYGUARD_EXEMPT_TAG_KEY", "  exempt  ", "exempt_tag_key", "exempt"),
        ("KEYGUARD_TOPIC_ARN", "", "topic_arn", None),
        ("KEYGUARD_IDEMPOTENCY_TABLE", "", "idempotency_table", None),
    ],
)
def test_accepted_values(variable: str, raw: str, field: str, expected: object) -> None:
    assert getattr(Settings.from_env({variable: raw}), field) == expected


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("KEYGUARD_MODE", "audit"),
        ("KEYGUARD_MODE", "dryrun"),
        ("KEYGUARD_MODE", "dry_run"),
        ("KEYGUARD_MODE", ""),
        ("KEYGUARD_MODE", "   "),
        ("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", "deactivate"),
        ("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", "delete"),
        ("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", ""),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "high"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "MEDIUM"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", ""),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "4,5"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "-0.1"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "-1"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "10.01"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "11"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "nan"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "inf"),
        ("KEYGUARD_GUARDDUTY_MIN_SEVERITY", "-inf"),
        ("KEYGUARD_DEDUP_TTL_SECONDS", "0"),
        ("KEYGUARD_DEDUP_TTL_SECONDS", "-60"),
        ("KEYGUARD_DEDUP_TTL_SECONDS", "1.5"),
        ("KEYGUARD_DEDUP_TTL_SECONDS", "one week"),
        ("KEYGUARD_DEDUP_TTL_SECONDS", ""),
    ],
)
def test_invalid_values_raise_config_error(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", set()),
        ("   ", set()),
        (",", set()),
        (" , ,, ", set()),
        ("alice", {"alice"}),  # a bare name: a user or a role of that name
        ("alice,bob", {"alice", "bob"}),
        (" alice , bob ,", {"alice", "bob"}),
        ("alice,,bob,alice", {"alice", "bob"}),
        ("Alice", {"alice"}),  # IAM names are unique regardless of case
        ("user/alice", {"user:alice"}),
        ("role/CiDeploy", {"role:cideploy"}),
        ("arn:aws:iam::123456789012:user/alice", {"user:alice"}),
        ("arn:aws:iam::123456789012:user/division/team/alice", {"user:alice"}),
        ("arn:aws:iam::123456789012:role/OrganizationAccountAccessRole", {"role:organizationaccountaccessrole"}),
        (
            "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
            {"role:awsservicerolefor" + "ecs"},
        ),
        (
            "break-glass, arn:aws:iam::123456789012:role/Admin ,,arn:aws:iam::123456789012:user/ops/carol",
            {"break-glass", "role:admin", "user:carol"},
        ),
        ("arn:aws:sts::123456789012:assumed-role/CiDeployRole/session-1", {"role:cideployrole"}),
        ("AIDAJQABLZS4A3QDU576Q", {"id:AIDAJQABLZS4A3QDU576Q"}),  # a unique id: any later name
        ("AROAJQABLZS4A3QDU576Q", {"id:AROAJQABLZS4A3QDU576Q"}),
    ],
)
def test_principal_lists(raw: str, expected: set[str]) -> None:
    s = Settings.from_env({"KEYGUARD_PROTECTED_PRINCIPALS": raw, "KEYGUARD_EXEMPT_PRINCIPALS": raw})
    assert s.protected_principals == frozenset(expected)
    assert s.exempt_principals == frozenset(expected)


def test_own_roles_are_role_names() -> None:
    s = Settings.from_env({"KEYGUARD_OWN_ROLES": "keyguard-GuardDutyFunctionRole-ABC, keyguard-Health-DEF"})
    assert s.own_roles == frozenset({"keyguard-guarddutyfunctionrole-abc", "keyguard-health-def"})


PROTECTED = "break-glass,arn:aws:iam::123456789012:role/Admin,user/ops-alice,AIDAJQABLZS4A3QDU576Q"


@pytest.mark.parametrize(
    ("kind", "name", "unique_id", "expected"),
    [
        ("user", "break-glass", None, True),  # bare: either kind
        ("role", "break-glass", None, True),
        ("role", "Admin", None, True),
        ("role", "ADMIN", None, True),
        ("user", "Admin", None, False),  # a user is never protected by a role's name (issue 9, attack 3)
        ("user", "ops-alice", None, True),
        ("role", "ops-alice", None, False),
        ("role", "keyguard-GuardDutyFunctionRole-ABC", None, True),  # keyguard's own role...
        ("user", "keyguard-GuardDutyFunctionRole-ABC", None, False),  # ...is a role: a renamed user borrows nothing
        ("user", "renamed-anything", "AIDAJQABLZS4A3QDU576Q", True),  # the unique id survives a rename
        ("user", "renamed-anything", "AIDAOTHERUSERID000000", False),
        ("user", "alice", None, False),
        ("user", "", None, False),
        ("user", None, None, False),
    ],
)
def test_is_protected(kind: str, name: str | None, unique_id: str | None, expected: bool) -> None:
    s = Settings.from_env(
        {"KEYGUARD_PROTECTED_PRINCIPALS": PROTECTED, "KEYGUARD_OWN_ROLES": "keyguard-GuardDutyFunctionRole-ABC"}
    )
    assert s.is_protected(kind, name, unique_id=unique_id) is expected


def test_protected_by_arn_of_the_principal() -> None:
    s = Settings.from_env({"KEYGUARD_PROTECTED_PRINCIPALS": "role/Admin"})
    assert s.is_protected("role", None, arn="arn:aws:iam::123456789012:role/Admin")
    assert not s.is_protected("user", None, arn="arn:aws:iam::123456789012:user/Admin")


def test_exemption_is_configuration_only() -> None:
    s = Settings.from_env({"KEYGUARD_EXEMPT_PRINCIPALS": "user/ci-bot"})
    assert s.is_exempt("user", "CI-BOT") and not s.is_exempt("role", "ci-bot") and not s.is_exempt("user", "bob")
    assert not Settings().is_exempt("user", "ci-bot")


def test_nothing_is_protected_by_default() -> None:
    assert not Settings().is_protected("user", "alice")
    assert not Settings().is_protected("role", None)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.mode = DRY_RUN  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("KEYGUARD_INVESTIGATION_LOOKBACK_DAYS", "0"),
        ("KEYGUARD_INVESTIGATION_LOOKBACK_DAYS", "91"),
        ("KEYGUARD_INVESTIGATION_LOOKBACK_DAYS", "ninety"),
        ("KEYGUARD_STOP_LAUNCHED_INSTANCES", "yes"),
        ("KEYGUARD_ENFORCE_IMDSV2", "1"),
    ],
)
def test_investigation_settings_are_validated(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


def test_investigation_settings() -> None:
    s = Settings.from_env(
        {
            "KEYGUARD_INVESTIGATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "KEYGUARD_INVESTIGATION_LOOKBACK_DAYS": "7",
            "KEYGUARD_STOP_LAUNCHED_INSTANCES": "TRUE",
            "KEYGUARD_ENFORCE_IMDSV2": "false",
        }
    )
    assert s.investigation_queue_url.endswith("/q") and s.investigation_lookback_days == 7
    assert s.stop_launched_instances is True and s.enforce_imdsv2 is False
    assert Settings.from_env({}).investigation_lookback_days == 90
