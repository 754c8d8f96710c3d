"""Investigate again, later: CloudTrail's event history lags (typically 5, up to 15 minutes), so what the
key did in its last minutes before the deny reaches the history after the first investigation. The runs
at +15 and +60 minutes (SQS messages delayed by at most 900 s, queued again until due) read it, contain
it, and announce only what is new; a later run with nothing new says nothing.

The clock is moved forward for both the emulated SQS (its delays) and the investigation function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY
from keyguard.local.cloudtrail import FakeCloudTrail, Recorder
from tests.conftest import inbox, load_event

FOREIGN_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)


class Clock:
    """Moves the emulated account's SQS clock and the investigation function's clock together."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import moto.sqs.models as sqs_models

        from keyguard.investigate.app import InvestigationRuntime

        self.offset = timedelta(0)
        real = sqs_models.unix_time_millis
        monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: real() + self.offset.total_seconds() * 1000)
        monkeypatch.setattr(InvestigationRuntime, "now", lambda _self: datetime.now(UTC) + self.offset, raising=False)

    def advance(self, minutes: float) -> None:
        self.offset += timedelta(minutes=minutes)


def _roles_policies(iam: Any, role: str) -> list[str]:
    return iam.list_role_policies(RoleName=role)["PolicyNames"]


def _investigations(account: Any) -> list[dict]:
    return [d for d in inbox(account) if d.get("kind") == "investigation"]


def _queued(account: Any) -> int:
    sqs = account.clients.get("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=account.investigation_url, AttributeNames=["All"])["Attributes"]
    return sum(int(attributes[a]) for a in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"))


def test_what_the_lag_hid_is_contained_at_15_minutes_and_only_it_is_announced(account, monkeypatch) -> None:
    from keyguard.local import emulator

    clock = Clock(monkeypatch)
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    history: list[dict] = []
    account.cloudtrail = FakeCloudTrail(history).install(account.clients.session)
    attacker = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=seeded.secrets[key], region_name="us-east-1"
    )
    made: list[dict] = []
    Recorder(attacker, made, key_id=key, user="alice")
    iam = attacker.client("iam")
    iam.create_role(RoleName="early-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
    iam.create_role(RoleName="late-role", AssumeRolePolicyDocument=FOREIGN_TRUST)  # its record lags
    history.append(made[0])

    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    assert emulator.invoke(account, rule, seeded.event).error is None
    (first,) = emulator.investigate_queued(account)
    assert first.error is None
    (report,) = _investigations(account)
    assert report["contained"] == ["role early-role"]
    assert _roles_policies(account.clients.iam, "late-role") == []  # not in the history yet
    assert _queued(account) == 1  # the +15 run, delayed

    history.append(made[1])  # the lagging record reaches the history
    clock.advance(15.1)
    (again,) = emulator.investigate_queued(account)
    assert again.error is None
    (late,) = _investigations(account)
    assert late["run"]["phase"] == 1 and "NEW FINDINGS (+15 min)" in late["_subject"]
    assert late["contained"] == ["role late-role"] and late["alreadyAnnounced"] == 1  # early-role not repeated
    assert _roles_policies(account.clients.iam, "late-role") == [QUARANTINE_POLICY]

    # the +60 run: queued again every 15 minutes (SQS's maximum delay) until due; nothing new: silent
    for _ in range(3):
        clock.advance(15.1)
        emulator.investigate_queued(account)
    assert _investigations(account) == []
    assert _queued(account) == 0  # and nothing after the last run


def test_a_redelivered_later_run_announces_nothing_twice(account, monkeypatch) -> None:
    from keyguard.investigate import handoff
    from keyguard.local import emulator

    clock = Clock(monkeypatch)
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    history: list[dict] = []
    account.cloudtrail = FakeCloudTrail(history).install(account.clients.session)
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    emulator.invoke(account, rule, seeded.event)
    emulator.investigate_queued(account)
    inbox(account)
    attacker = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=seeded.secrets[key], region_name="us-east-1"
    )
    Recorder(attacker, history, key_id=key, user="alice")
    attacker.client("iam").create_role(RoleName="late-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
    clock.advance(15.1)
    sqs = account.clients.get("sqs")
    (message,) = sqs.receive_message(QueueUrl=account.investigation_url, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=account.investigation_url, ReceiptHandle=message["ReceiptHandle"])
    body = json.loads(message["Body"])
    for _ in range(2):  # SQS is at-least-once: the same +15 message twice
        sqs.send_message(QueueUrl=account.investigation_url, MessageBody=json.dumps(body))
    runs = emulator.investigate_queued(account)
    assert [r.error for r in runs] == [None, None]
    (late,) = _investigations(account)
    assert late["contained"] == ["role late-role"]
    assert handoff.Run.from_dict(body["run"]).phase == 1
    # the +60 run was queued once, not once per delivery
    assert _queued(account) == 1


def test_a_new_key_is_investigated_later_for_the_role_sessions_it_opened(account, monkeypatch) -> None:
    """CreateAccessKey: the new key is deactivated within seconds, but a role session it opened in those
    seconds outlives it (long-term-key and user policies do not reach role sessions). Its AssumeRole
    reaches the history later; the +15 run revokes the role's sessions."""
    from keyguard.local import emulator

    clock = Clock(monkeypatch)
    seeded = emulator.seed(account.clients.iam, load_event("cloudtrail-create-access-key.json"))
    key = seeded.replaced["AKIAI44QH8DHBEXAMPLE"]
    account.clients.iam.create_role(RoleName="deploy-admin", AssumeRolePolicyDocument=FOREIGN_TRUST)
    history: list[dict] = []
    account.cloudtrail = FakeCloudTrail(history).install(account.clients.session)
    holder = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=seeded.secrets[key], region_name="us-east-1"
    )
    made: list[dict] = []
    Recorder(holder, made, key_id=key, user="bob")
    holder.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/deploy-admin", RoleSessionName="quick")

    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    contained = emulator.invoke(account, rule, seeded.event)
    assert contained.error is None and contained.result["responses"][0]["investigation"] == "queued"
    (first,) = emulator.investigate_queued(account)
    assert first.error is None
    assert _roles_policies(account.clients.iam, "deploy-admin") == []  # the AssumeRole is not in the history yet
    (nothing_yet,) = _investigations(account)
    assert nothing_yet["total"] == 0

    history.extend(made)
    clock.advance(15.1)
    (again,) = emulator.investigate_queued(account)
    assert again.error is None
    (late,) = _investigations(account)
    assert late["assumedRoles"] == {"deploy-admin": ["quick"]}
    assert _roles_policies(account.clients.iam, "deploy-admin") == [REVOKE_SESSIONS_POLICY]
    assert late["contained"] == ["role deploy-admin"]


def test_writing_into_keyguards_memory_silences_a_repeat_never_a_containment(account) -> None:
    """The key holder can write keyguard's DynamoDB table too: marking a finding as announced keeps it
    out of the message, but the role is contained all the same (each run contains what it reads)."""
    from keyguard.local import emulator

    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    history: list[dict] = []
    account.cloudtrail = FakeCloudTrail(history).install(account.clients.session)
    attacker = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=seeded.secrets[key], region_name="us-east-1"
    )
    Recorder(attacker, history, key_id=key, user="alice")
    attacker.client("iam").create_role(RoleName="hidden-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
    incident = f"guardduty:{seeded.event['detail']['id']}:{key}"
    attacker.client("dynamodb").put_item(
        TableName=account.table,
        Item={"id": {"S": f"keyguard-investigation#{incident}"}, "announced": {"SS": [history[0]["eventID"]]}},
    )
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    emulator.invoke(account, rule, seeded.event)
    (run,) = emulator.investigate_queued(account)
    assert run.error is None
    assert _roles_policies(account.clients.iam, "hidden-role") == [QUARANTINE_POLICY]
    (report,) = _investigations(account)
    assert report["contained"] == [] and report["alreadyAnnounced"] == 1
