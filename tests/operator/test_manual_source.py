"""Source.MANUAL: the incident `keyguard contain` hands to the engine, and what the engine decides for it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from keyguard.actions import BoundUser, DeactivateAccessKey, QuarantineUser, RecordOnUser, VerifyUser
from keyguard.incident import Kind, PrincipalType, Source
from keyguard.notify import message
from keyguard.operator.contain import manual_incident, settings_for
from keyguard.plan import Outcome, plan_actions, possible_actions, triage
from keyguard.respond import respond
from keyguard.settings import Settings
from tests.operator.inventory import snapshot, user_with_keys

ACCOUNT = "123456789012"
KEY = "AKIAIOSFODNN7EXAMPLE"
NOW = datetime(2025, 3, 17, 9, 41, 27, tzinfo=UTC)
ACTOR = "arn:aws:sts::123456789012:assumed-role/SecurityAdmin/jane@example.com"
INCIDENT = manual_incident(KEY, ACCOUNT, "eu-west-1", "AWS Support case 1234", ACTOR, NOW)


def test_the_manual_incident() -> None:
    assert (INCIDENT.source, INCIDENT.kind, INCIDENT.principal_type) == (
        Source.MANUAL,
        Kind.COMPROMISE,
        PrincipalType.UNKNOWN,  # IAM names the owner, never the operator
    )
    assert INCIDENT.principal_name is None
    assert INCIDENT.incident_id == f"manual:2025-03-17T09:41:27Z:{KEY}"
    assert INCIDENT.finding_type == "AWS Support case 1234 - by assumed-role/SecurityAdmin/jane@example.com"
    assert INCIDENT.region == "eu-west-1" and INCIDENT.account == ACCOUNT


def test_triage_lets_it_through_and_no_severity_threshold_applies() -> None:
    assert triage(INCIDENT, Settings(guardduty_min_severity=10.0), ACCOUNT) is None
    assert triage(INCIDENT, Settings(), "210987654321")[0] is Outcome.OTHER_ACCOUNT
    assert triage(replace(INCIDENT, key_id="ASIAIOSFODNN7EXAMPLE"), Settings(), ACCOUNT)[0] is Outcome.NOTIFY_ONLY


def test_plan_is_the_leaked_key_plan() -> None:
    deactivate, quarantine, verify, record = plan_actions(INCIDENT, "alice", NOW)
    assert isinstance(verify, VerifyUser) and verify.key_id == KEY
    assert (deactivate, quarantine) == (DeactivateAccessKey("alice", KEY), QuarantineUser("alice"))
    assert isinstance(record, RecordOnUser) and dict(record.tags) == {
        "keyguard:contained-at": "2025-03-17T09:41:27Z",
        "keyguard:incident": f"manual:2025-03-17T09:41:27Z:{KEY}",
        "keyguard:reason": f"manual AWS Support case 1234 - by assumed-role/SecurityAdmin/jane@example.com {KEY}",
        f"keyguard:leaked:{KEY}": "2025-03-17T09:41:27Z",
    }
    assert set(possible_actions(Source.MANUAL)) == {
        DeactivateAccessKey,
        QuarantineUser,
        BoundUser,
        VerifyUser,
        RecordOnUser,
    }


def test_settings_come_from_the_command_not_the_environment() -> None:
    base = Settings(mode="dry-run", topic_arn="arn:env", idempotency_table="t", protected_principals=frozenset({"bg"}))
    chosen = settings_for(base, dry_run=False, topic_arn=None)
    assert (chosen.mode, chosen.topic_arn, chosen.idempotency_table) == ("enforce", "arn:env", None)
    assert chosen.protected_principals == frozenset({"bg"})
    assert settings_for(base, dry_run=True, topic_arn="arn:flag").topic_arn == "arn:flag"


def test_the_engine_protects_a_protected_owner(aws) -> None:
    """The command refuses protected principals up front; the engine refuses them on its own too."""
    iam = aws.iam
    (key, *_) = user_with_keys(iam, "break-glass")
    before = snapshot(iam, ["break-glass"])
    incident = replace(INCIDENT, key_id=key)
    response = respond(incident, Settings(protected_principals=frozenset({"break-glass"})), iam, account=ACCOUNT)
    assert response.outcome is Outcome.PROTECTED and response.owner == "break-glass"
    assert snapshot(iam, ["break-glass"]) == before


def test_the_notification_says_manual(aws) -> None:
    iam = aws.iam
    (key, other) = user_with_keys(iam, "alice", 2)
    response = respond(replace(INCIDENT, key_id=key), Settings(), iam, account=ACCOUNT, now=NOW)
    assert response.outcome is Outcome.CONTAINED and response.owner == "alice"
    assert snapshot(iam, ["alice"])["user/alice"]["keys"] == {key: "Inactive", other: "Active"}
    msg = message(response)
    assert msg["MessageAttributes"]["source"]["StringValue"] == "manual"
    assert msg["Subject"] == f"keyguard: CONTAINED - {key} (alice)"
    assert "Contained by hand (keyguard contain) by " + ACTOR in msg["Message"]
