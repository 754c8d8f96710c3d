"""keyguard.plan: the pure decisions, table by table. Incidents are variations of one base incident."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from keyguard.actions import (
    ALL_ACTIONS,
    Action,
    BoundUser,
    DeactivateAccessKey,
    QuarantineUser,
    RecordOnRole,
    RecordOnUser,
    RevokeRoleSessions,
    RevokeUserSessions,
    VerifyRole,
    VerifyUser,
)
from keyguard.incident import Incident, Kind, PrincipalType, Source
from keyguard.plan import (
    NO_ACTION,
    SERVICE_LINKED_PREFIX,
    Outcome,
    owner_is_verifiable,
    plan_actions,
    possible_actions,
    protection,
    triage,
)
from keyguard.settings import CAK_NOTIFY, CAK_QUARANTINE, Settings
from keyguard.sources import cloudtrail, guardduty, health
from tests.conftest import incident_from

EVENTS = Path(__file__).resolve().parents[2] / "events"

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
AKIA = "AKIAIOSFODNN7EXAMPLE"
ASIA = "ASIAIOSFODNN7EXAMPLE"
NOW = datetime(2025, 3, 17, 9, 41, 27, tzinfo=UTC)

BASE = replace(incident_from("guardduty-iam-user.json"), principal_id=None)
ROLE = replace(
    BASE,
    key_id=ASIA,
    principal_type=PrincipalType.ASSUMED_ROLE,
    principal_name="web-app-role",
    severity=8.0,
)
HEALTH = replace(
    BASE,
    source=Source.HEALTH,
    principal_type=PrincipalType.UNKNOWN,
    principal_name=None,
    severity=None,
    finding_type="AWS_RISK_CREDENTIALS_EXPOSED",
)
NEW_KEY = replace(
    BASE,
    source=Source.CREATE_ACCESS_KEY,
    kind=Kind.NEW_KEY,
    principal_name="bob",
    severity=None,
    finding_type="CreateAccessKey",
)
DEFAULTS = Settings()


def settings(**kwargs: Any) -> Settings:
    return replace(DEFAULTS, **kwargs)


# (id, incident, settings, account passed to triage, expected outcome or None = contain)
TRIAGE = [
    ("user-contains", BASE, DEFAULTS, ACCOUNT, None),
    ("user-no-account-known", BASE, DEFAULTS, None, None),
    ("role-contains", ROLE, DEFAULTS, ACCOUNT, None),
    ("health-akia-contains", HEALTH, DEFAULTS, ACCOUNT, None),
    ("new-key-contains", NEW_KEY, DEFAULTS, ACCOUNT, None),
    (
        "new-key-quarantine-setting",
        NEW_KEY,
        settings(create_access_key_response=CAK_QUARANTINE),
        ACCOUNT,
        None,
    ),
    ("user-asia-contains", replace(BASE, key_id=ASIA), DEFAULTS, ACCOUNT, None),
    # sample
    ("sample", replace(BASE, sample=True), DEFAULTS, ACCOUNT, Outcome.SAMPLE),
    (
        "sample-wins-over-everything",
        replace(
            BASE,
            sample=True,
            account=OTHER_ACCOUNT,
            severity=1.0,
            principal_type=PrincipalType.ROOT,
            key_id="GeneratedFindingAccessKeyId",
        ),
        DEFAULTS,
        ACCOUNT,
        Outcome.SAMPLE,
    ),
    # other account
    ("other-account", replace(BASE, account=OTHER_ACCOUNT), DEFAULTS, ACCOUNT, Outcome.OTHER_ACCOUNT),
    (
        "other-account-health",
        replace(HEALTH, account=OTHER_ACCOUNT),
        DEFAULTS,
        ACCOUNT,
        Outcome.OTHER_ACCOUNT,
    ),
    (
        "other-account-new-key",
        replace(NEW_KEY, account=OTHER_ACCOUNT),
        DEFAULTS,
        ACCOUNT,
        Outcome.OTHER_ACCOUNT,
    ),
    (
        "other-account-before-severity",
        replace(BASE, account=OTHER_ACCOUNT, severity=1.0),
        DEFAULTS,
        ACCOUNT,
        Outcome.OTHER_ACCOUNT,
    ),
    ("other-account-unknown-runtime-account", replace(BASE, account=OTHER_ACCOUNT), DEFAULTS, None, None),
    # severity threshold (GuardDuty only)
    ("severity-below", replace(BASE, severity=3.9), DEFAULTS, ACCOUNT, Outcome.BELOW_THRESHOLD),
    ("severity-zero", replace(BASE, severity=0.0), DEFAULTS, ACCOUNT, Outcome.BELOW_THRESHOLD),
    ("severity-at-threshold", replace(BASE, severity=4.0), DEFAULTS, ACCOUNT, None),
    ("severity-max", replace(BASE, severity=10.0), DEFAULTS, ACCOUNT, None),
    ("severity-below-custom", BASE, settings(guardduty_min_severity=7.0), ACCOUNT, Outcome.BELOW_THRESHOLD),
    ("severity-at-custom", replace(BASE, severity=7.0), settings(guardduty_min_severity=7.0), ACCOUNT, None),
    (
        "severity-fractional-below",
        replace(BASE, severity=6.99),
        settings(guardduty_min_severity=7.0),
        ACCOUNT,
        Outcome.BELOW_THRESHOLD,
    ),
    (
        "severity-zero-threshold-zero",
        replace(BASE, severity=0.0),
        settings(guardduty_min_severity=0.0),
        ACCOUNT,
        None,
    ),
    (
        "severity-role-below",
        replace(ROLE, severity=2.0),
        DEFAULTS,
        ACCOUNT,
        Outcome.BELOW_THRESHOLD,
    ),
    ("health-has-no-threshold", HEALTH, settings(guardduty_min_severity=10.0), ACCOUNT, None),
    ("new-key-has-no-threshold", NEW_KEY, settings(guardduty_min_severity=10.0), ACCOUNT, None),
    # root
    (
        "root",
        replace(BASE, principal_type=PrincipalType.ROOT, principal_name="Root"),
        DEFAULTS,
        ACCOUNT,
        Outcome.ROOT,
    ),
    (
        "root-asia",
        replace(BASE, principal_type=PrincipalType.ROOT, principal_name=None, key_id=ASIA),
        DEFAULTS,
        ACCOUNT,
        Outcome.ROOT,
    ),
    (
        "root-new-key",
        replace(NEW_KEY, principal_type=PrincipalType.ROOT, principal_name=None),
        DEFAULTS,
        ACCOUNT,
        Outcome.ROOT,
    ),
    (
        "root-before-protected",
        replace(BASE, principal_type=PrincipalType.ROOT, principal_name="Root"),
        settings(protected_principals=frozenset({"Root"})),
        ACCOUNT,
        Outcome.ROOT,
    ),
    # principals IAM cannot contain
    (
        "other-principal",
        replace(BASE, principal_type=PrincipalType.OTHER),
        DEFAULTS,
        ACCOUNT,
        Outcome.NOTIFY_ONLY,
    ),
    (
        "other-principal-no-name",
        replace(BASE, principal_type=PrincipalType.OTHER, principal_name=None, key_id=ASIA),
        DEFAULTS,
        ACCOUNT,
        Outcome.NOTIFY_ONLY,
    ),
    ("health-asia", replace(HEALTH, key_id=ASIA), DEFAULTS, ACCOUNT, Outcome.NOTIFY_ONLY),
    # CreateAccessKeyResponse=notify
    (
        "new-key-notify",
        NEW_KEY,
        settings(create_access_key_response=CAK_NOTIFY),
        ACCOUNT,
        Outcome.NOTIFY_ONLY,
    ),
    (
        "notify-setting-ignores-compromise",
        BASE,
        settings(create_access_key_response=CAK_NOTIFY),
        ACCOUNT,
        None,
    ),
    (
        "notify-setting-ignores-health",
        HEALTH,
        settings(create_access_key_response=CAK_NOTIFY),
        ACCOUNT,
        None,
    ),
    # protected principals
    (
        "protected-user",
        BASE,
        settings(protected_principals=frozenset({"alice"})),
        ACCOUNT,
        Outcome.PROTECTED,
    ),
    (  # someone else (admin-carol) made the key for the protected user: respond deactivates the key only
        "protected-new-key-user",
        NEW_KEY,
        settings(protected_principals=frozenset({"bob"})),
        ACCOUNT,
        None,
    ),
    (
        "protected-new-key-user-made-by-itself",
        replace(NEW_KEY, actor_arn="arn:aws:iam::123456789012:user/bob"),
        settings(protected_principals=frozenset({"bob"})),
        ACCOUNT,
        Outcome.PROTECTED,
    ),
    (
        "protected-role",
        ROLE,
        settings(protected_principals=frozenset({"web-app-role"})),
        ACCOUNT,
        Outcome.PROTECTED,
    ),
    ("own-role", ROLE, settings(own_roles=frozenset({"web-app-role"})), ACCOUNT, Outcome.PROTECTED),
    # a user renamed after keyguard's own role (or a protected role) borrows nothing (issue 9, attack 3)
    ("own-role-name-as-user", BASE, settings(own_roles=frozenset({"alice"})), ACCOUNT, None),
    ("role-ref-name-as-user", BASE, settings(protected_principals=frozenset({"role:alice"})), ACCOUNT, None),
    ("user-ref", BASE, settings(protected_principals=frozenset({"user:alice"})), ACCOUNT, Outcome.PROTECTED),
    ("user-ref-on-role", ROLE, settings(protected_principals=frozenset({"user:web-app-role"})), ACCOUNT, None),
    ("someone-else-protected", BASE, settings(protected_principals=frozenset({"bob"})), ACCOUNT, None),
    (
        "health-unnamed-not-protected-yet",  # the owner is checked again once IAM names it (respond)
        HEALTH,
        settings(protected_principals=frozenset({"alice"})),
        ACCOUNT,
        None,
    ),
    (
        "service-linked-role",
        replace(ROLE, principal_name="AWSServiceRoleForAmazonGuardDuty"),
        DEFAULTS,
        ACCOUNT,
        Outcome.PROTECTED,
    ),
    (
        "service-linked-prefix-only",
        replace(ROLE, principal_name=SERVICE_LINKED_PREFIX),
        DEFAULTS,
        ACCOUNT,
        Outcome.PROTECTED,
    ),
    (
        "user-named-like-service-linked-role",
        replace(BASE, principal_name="AWSServiceRoleForFun"),
        DEFAULTS,
        ACCOUNT,
        None,
    ),
    (
        "role-name-containing-prefix-later",
        replace(ROLE, principal_name="MyAWSServiceRoleCopy"),
        DEFAULTS,
        ACCOUNT,
        None,
    ),
]


@pytest.mark.parametrize(
    ("incident", "config", "account", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in TRIAGE],
)
def test_triage(incident: Incident, config: Settings, account: str | None, expected: Outcome | None) -> None:
    decision = triage(incident, config, account)
    if expected is None:
        assert decision is None
    else:
        assert decision is not None
        outcome, reason = decision
        assert outcome is expected
        assert isinstance(reason, str)
        assert reason.strip()
        assert outcome in NO_ACTION


def test_triage_below_threshold_reason_names_both_numbers() -> None:
    decision = triage(replace(BASE, severity=2.5), settings(guardduty_min_severity=7.0), ACCOUNT)
    assert decision is not None
    assert "2.5" in decision[1]
    assert "7" in decision[1]


def test_triage_other_account_reason_names_both_accounts() -> None:
    decision = triage(replace(BASE, account=OTHER_ACCOUNT), DEFAULTS, ACCOUNT)
    assert decision is not None
    assert OTHER_ACCOUNT in decision[1]
    assert ACCOUNT in decision[1]


@pytest.mark.parametrize(
    ("incident", "name", "config", "expected"),
    [
        pytest.param(BASE, None, settings(protected_principals=frozenset({"alice"})), None, id="no-name"),
        pytest.param(BASE, "", settings(protected_principals=frozenset({""})), None, id="empty-name"),
        pytest.param(BASE, "alice", DEFAULTS, None, id="not-listed"),
        pytest.param(
            BASE, "alice", settings(protected_principals=frozenset({"alice"})), Outcome.PROTECTED, id="listed"
        ),
        pytest.param(
            # The owner IAM names, not the one the event names, is what counts.
            BASE,
            "break-glass",
            settings(protected_principals=frozenset({"break-glass"})),
            Outcome.PROTECTED,
            id="verified-owner-listed",
        ),
        pytest.param(
            HEALTH, "bob", settings(protected_principals=frozenset({"user:bob"})), Outcome.PROTECTED, id="health-owner"
        ),
        pytest.param(
            HEALTH, "bob", settings(own_roles=frozenset({"bob"})), None, id="health-owner-named-like-own-role"
        ),
        pytest.param(ROLE, "AWSServiceRoleForECS", DEFAULTS, Outcome.PROTECTED, id="service-linked"),
        pytest.param(BASE, "AWSServiceRoleForECS", DEFAULTS, None, id="service-linked-name-on-user"),
    ],
)
def test_protection(incident: Incident, name: str | None, config: Settings, expected: Outcome | None) -> None:
    decision = protection(incident, name, config)
    assert (decision[0] if decision else None) is expected
    if decision:
        assert name in decision[1]


@pytest.mark.parametrize(
    ("principal_type", "key_id", "expected"),
    [
        (PrincipalType.IAM_USER, AKIA, True),
        (PrincipalType.UNKNOWN, AKIA, True),
        (PrincipalType.IAM_USER, ASIA, False),
        (PrincipalType.UNKNOWN, ASIA, False),
        (PrincipalType.ASSUMED_ROLE, ASIA, False),
        (PrincipalType.ASSUMED_ROLE, AKIA, False),
        (PrincipalType.ROOT, AKIA, False),
        (PrincipalType.OTHER, AKIA, False),
    ],
)
def test_owner_is_verifiable(principal_type: PrincipalType, key_id: str, expected: bool) -> None:
    assert owner_is_verifiable(replace(BASE, principal_type=principal_type, key_id=key_id)) is expected


@pytest.mark.parametrize(
    ("incident", "owner", "expected"),
    [
        pytest.param(BASE, "alice", [DeactivateAccessKey("alice", AKIA), QuarantineUser("alice")], id="user-akia"),
        pytest.param(replace(BASE, key_id=ASIA), "alice", [QuarantineUser("alice")], id="user-asia"),
        pytest.param(ROLE, "web-app-role", [RevokeRoleSessions("web-app-role", NOW)], id="role"),
        pytest.param(
            replace(ROLE, key_id=AKIA),
            "web-app-role",
            [RevokeRoleSessions("web-app-role", NOW)],
            id="role-akia",
        ),
        pytest.param(NEW_KEY, "bob", [DeactivateAccessKey("bob", AKIA), RevokeUserSessions("bob", NOW)], id="new-key"),
        pytest.param(HEALTH, "bob", [DeactivateAccessKey("bob", AKIA), QuarantineUser("bob")], id="health-akia"),
        pytest.param(replace(HEALTH, key_id=ASIA), "bob", [QuarantineUser("bob")], id="health-asia"),
        pytest.param(
            # The verified owner is acted on, not the user the event named.
            BASE,
            "mallory",
            [DeactivateAccessKey("mallory", AKIA), QuarantineUser("mallory")],
            id="owner-not-named-user",
        ),
    ],
)
def test_plan_actions(incident: Incident, owner: str, expected: list[Action]) -> None:
    *containment, verify, record = plan_actions(incident, owner, NOW)
    assert containment == expected
    # IAM is read back after the layers, before anything is written down
    assert isinstance(verify, (VerifyUser, VerifyRole)) and owner in verify.target
    # the record (tags) comes last, on the same principal, after the deny
    if incident.principal_type is PrincipalType.ASSUMED_ROLE:
        assert isinstance(record, RecordOnRole) and record.role == owner
    else:
        assert isinstance(record, RecordOnUser) and record.user == owner
    tags = dict(record.tags)
    assert tags["keyguard:contained-at"] == "2025-03-17T09:41:27Z"
    assert tags["keyguard:incident"] == incident.incident_id
    leaked = {k for k in tags if k.startswith("keyguard:leaked:")}
    compromised_long_term_key = incident.kind is Kind.COMPROMISE and any(
        isinstance(a, DeactivateAccessKey) for a in containment
    )
    assert leaked == ({f"keyguard:leaked:{incident.key_id}"} if compromised_long_term_key else set())


BOUNDARY = "arn:aws:iam::123456789012:policy/keyguard-deny-all"


@pytest.mark.parametrize(
    ("incident", "expected"),
    [
        pytest.param(BASE, [DeactivateAccessKey, QuarantineUser, BoundUser, VerifyUser, RecordOnUser], id="leaked"),
        pytest.param(HEALTH, [DeactivateAccessKey, QuarantineUser, BoundUser, VerifyUser, RecordOnUser], id="health"),
        pytest.param(replace(BASE, key_id=ASIA), [QuarantineUser, BoundUser, VerifyUser, RecordOnUser], id="asia"),
        pytest.param(NEW_KEY, [DeactivateAccessKey, RevokeUserSessions, VerifyUser, RecordOnUser], id="new-key"),
        pytest.param(ROLE, [RevokeRoleSessions, VerifyRole, RecordOnRole], id="role"),
    ],
)
def test_the_boundary_layer_follows_the_first_deny(incident: Incident, expected: list[type]) -> None:
    """The deactivation and the first deny come first; the boundary (which a key holder cannot pre-fill) is
    the next layer; verification reads all of them back."""
    actions = plan_actions(incident, "alice", NOW, boundary_arn=BOUNDARY)
    assert [type(a) for a in actions] == expected
    for action in actions:
        if isinstance(action, BoundUser):
            assert action.policy_arn == BOUNDARY
        if isinstance(action, VerifyUser) and incident.kind is Kind.COMPROMISE:
            assert action.boundary_arn == BOUNDARY and action.policy == "keyguard-quarantine"


def test_a_new_key_for_a_protected_principal_is_deactivated_and_the_principal_left_alone() -> None:
    actions = plan_actions(NEW_KEY, "break-glass", NOW, boundary_arn=BOUNDARY, protected_owner=True)
    assert actions == [DeactivateAccessKey("break-glass", AKIA), VerifyUser("break-glass", AKIA)]


def test_record_tag_values_are_what_iam_accepts() -> None:
    hostile = replace(BASE, finding_type="Weird\nType<script>&'\"" + "x" * 400)
    *_, record = plan_actions(hostile, "alice", NOW)
    for key, value in record.tags:
        assert len(key) <= 128 and len(value) <= 256
        assert all(ch.isalnum() or ch in " _.:/=+-@" for ch in value), value


def test_plan_actions_carry_the_time_given() -> None:
    later = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    [action, _verify, _] = plan_actions(ROLE, "web-app-role", later)
    assert isinstance(action, RevokeRoleSessions)
    assert action.before == later
    _, revoke, _verify, _ = plan_actions(NEW_KEY, "bob", later)
    assert isinstance(revoke, RevokeUserSessions)
    assert revoke.before == later


# What each extractor can produce: source -> (kinds, principal types, key prefixes).
REACHABLE = {
    Source.GUARDDUTY: (
        [Kind.COMPROMISE],
        [PrincipalType.IAM_USER, PrincipalType.ASSUMED_ROLE, PrincipalType.ROOT, PrincipalType.OTHER],
        [AKIA, ASIA],
    ),
    Source.HEALTH: ([Kind.COMPROMISE], [PrincipalType.UNKNOWN], [AKIA, ASIA]),
    Source.CREATE_ACCESS_KEY: ([Kind.NEW_KEY], [PrincipalType.IAM_USER, PrincipalType.ROOT], [AKIA]),
    Source.INVESTIGATION: ([Kind.COMPROMISE], [PrincipalType.IAM_USER], [AKIA]),  # keys a leaked key created
    Source.MANUAL: ([Kind.COMPROMISE], [PrincipalType.UNKNOWN], [AKIA]),  # keyguard contain --key AKIA...
}


def reachable(source: Source) -> list[Incident]:
    kinds, principals, keys = REACHABLE[source]
    return [
        replace(BASE, source=source, kind=kind, principal_type=principal, key_id=key)
        for kind, principal, key in product(kinds, principals, keys)
    ]


@pytest.mark.parametrize("source", list(Source))
def test_plan_actions_within_possible_actions(source: Source) -> None:
    allowed = set(possible_actions(source))
    for incident in reachable(source):
        chosen = {type(a) for a in plan_actions(incident, "owner", NOW, boundary_arn=BOUNDARY)}
        assert chosen <= allowed, (incident.principal_type, incident.key_id)


@pytest.mark.parametrize("source", list(Source))
def test_possible_actions_are_all_needed(source: Source) -> None:
    """Least privilege: every action a role is granted is one plan_actions chooses for an incident that
    triage lets through."""
    chosen: set[type[Action]] = set()
    for incident in reachable(source):
        if triage(incident, DEFAULTS, ACCOUNT) is None:
            chosen |= {type(a) for a in plan_actions(incident, "owner", NOW, boundary_arn=BOUNDARY)}
    assert chosen == set(possible_actions(source))


@pytest.mark.parametrize("source", list(Source))
def test_possible_actions_are_known_and_unique(source: Source) -> None:
    actions = possible_actions(source)
    assert len(set(actions)) == len(actions)
    assert set(actions) <= set(ALL_ACTIONS)


@pytest.mark.parametrize(
    ("name", "extract"),
    [
        ("guardduty-iam-user.json", guardduty.extract),
        ("guardduty-assumed-role-exfiltration.json", guardduty.extract),
        ("guardduty-root.json", guardduty.extract),
        ("guardduty-low-severity.json", guardduty.extract),
        ("health-credentials-exposed.json", health.extract),
        ("health-iam-quarantine.json", health.extract),
        ("cloudtrail-create-access-key.json", cloudtrail.extract),
    ],
)
def test_fixture_plans_within_possible_actions(name: str, extract: Any) -> None:
    for incident in extract(json.loads((EVENTS / name).read_text())):
        chosen = {type(a) for a in plan_actions(incident, incident.principal_name or "owner", NOW)}
        assert chosen <= set(possible_actions(incident.source))


@pytest.mark.parametrize(
    ("name", "extract", "expected"),
    [
        ("guardduty-iam-user.json", guardduty.extract, [None]),
        ("guardduty-assumed-role-exfiltration.json", guardduty.extract, [None]),
        ("guardduty-root.json", guardduty.extract, [Outcome.ROOT]),
        ("guardduty-sample.json", guardduty.extract, [Outcome.SAMPLE]),
        ("guardduty-low-severity.json", guardduty.extract, [Outcome.BELOW_THRESHOLD]),
        ("health-credentials-exposed.json", health.extract, [None]),
        ("health-iam-quarantine.json", health.extract, [None, None]),
        ("cloudtrail-create-access-key.json", cloudtrail.extract, [None]),
    ],
)
def test_fixture_triage(name: str, extract: Any, expected: list[Outcome | None]) -> None:
    incidents = extract(json.loads((EVENTS / name).read_text()))
    decisions = [triage(i, DEFAULTS, ACCOUNT) for i in incidents]
    assert [d[0] if d else None for d in decisions] == expected


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (NOW - timedelta(minutes=2), NOW - timedelta(minutes=2)),  # fresh: redeliveries write the same policy
        (NOW - timedelta(hours=3), NOW),  # replayed late (e.g. from the DLQ): never leave later sessions alive
        (NOW + timedelta(minutes=5), NOW),  # a clock that is ahead is not trusted
        (None, NOW),
    ],
)
def test_role_revocation_cutoff(observed, expected) -> None:
    from keyguard.plan import role_cutoff

    assert role_cutoff(replace(ROLE, observed_at=observed), NOW) == expected
    revoke, _verify, _ = plan_actions(replace(ROLE, observed_at=observed), "web-app-role", NOW)
    assert revoke.before == expected
