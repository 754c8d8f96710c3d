"""contain -> status -> release through the `keyguard` command against in-process moto: IAM ends up
exactly as expected (only keyguard's policies and tags come and go; keys stay inactive unless
reactivated; other policies, tags, keys and users are untouched)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from keyguard.actions import deny_all_policy
from keyguard.respond import respond
from keyguard.settings import Settings
from tests.conftest import incident_from
from tests.faults import CallLog, Fault
from tests.operator.conftest import deploy_settings
from tests.operator.inventory import ALLOW_S3, role, snapshot, user_with_keys

LEAKED = "keyguard:leaked:"


@pytest.fixture
def account(aws, monkeypatch):
    """alice (two keys, her own policy and tag) and bystander bob; the commands use these clients."""
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    deploy_settings(aws.get("ssm"))  # a deployed stack (no ledger, topic or boundary): contain/release act
    iam = aws.iam
    keys = user_with_keys(iam, "alice", 2, tags={"team": "payments"})
    iam.put_user_policy(UserName="alice", PolicyName="app", PolicyDocument=ALLOW_S3)
    user_with_keys(iam, "bob")
    iam.put_user_policy(UserName="bob", PolicyName="app", PolicyDocument=ALLOW_S3)
    return aws, keys


def state(aws):
    return snapshot(aws.iam, ["alice", "bob"])


def test_contain_status_release_round_trip(account, cli) -> None:
    aws, (leaked, other) = account
    before = state(aws)

    code, out, err = cli(
        "contain", "--key", leaked, "--reason", "AWS email: key on GitHub", "--yes", "--format", "json"
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["command"] == "contain" and doc["outcome"] == "contained"
    (key,) = doc["keys"]
    assert key["response"]["source"] == "manual" and key["owner"] == "alice"
    assert key["response"]["principal"]["verifiedOwner"] == "alice"
    assert [(a["action"], a["status"]) for a in key["actions"]] == [
        ("deactivate-key", "done"),
        ("quarantine-user", "done"),
        ("verify", "done"),
        ("record", "done"),
    ]
    contained = state(aws)
    tags = contained["user/alice"]["tags"]
    at = tags["keyguard:contained-at"]
    assert contained["user/alice"] == {
        "keys": {leaked: "Inactive", other: "Active"},
        "policies": {"app": json.loads(ALLOW_S3), "keyguard-quarantine": deny_all_policy()},
        "tags": {
            "team": "payments",
            "keyguard:contained-at": at,
            "keyguard:incident": f"manual:{at}:{leaked}",
            "keyguard:reason": f"manual AWS email: key on GitHub - by user/moto {leaked}",
            f"{LEAKED}{leaked}": at,
        },
    }
    assert contained["user/bob"] == before["user/bob"]

    code, out, err = cli("status", "--key", leaked, "--format", "json")
    assert (code, err) == (0, "")
    status = json.loads(out)
    assert status["principal"]["name"] == "alice" and status["held"] is True
    assert status["policies"] == [{"name": "keyguard-quarantine", "effect": "denies every action"}]
    assert status["containment"] == {
        "containedAt": at,
        "incident": f"manual:{at}:{leaked}",
        "reason": f"manual AWS email: key on GitHub - by user/moto {leaked}",
    }
    assert {k["accessKeyId"]: (k["status"], k["leakedAt"]) for k in status["keys"]} == {
        leaked: ("Inactive", at),
        other: ("Active", None),
    }
    assert status["lastRelease"] is None
    assert status["leakedKeys"] == [{"accessKeyId": leaked, "leakedAt": at}]

    code, out, err = cli("status", "--user", "alice")
    assert code == 0
    assert "HELD by keyguard:" in out and "keyguard-quarantine: denies every action" in out
    assert f"contained at : {at}" in out
    assert "leaked (keyguard" in out and "delete it, never reactivate" in out
    assert "other inline policies (not keyguard, left alone): app" in out

    code, out, err = cli("release", "--user", "alice", "--reason", "key rotated, CloudTrail reviewed", "--yes")
    assert (code, err) == (0, "")
    assert "keys stay inactive: " + leaked in out
    released = state(aws)
    rtags = released["user/alice"]["tags"]
    assert released["user/alice"] == {
        "keys": {leaked: "Inactive", other: "Active"},  # the leaked key is not revived
        "policies": {"app": json.loads(ALLOW_S3)},  # only keyguard's policy went
        "tags": {
            "team": "payments",
            f"{LEAKED}{leaked}": at,  # kept while the key exists: it can never be reactivated
            "keyguard:released-at": rtags["keyguard:released-at"],
            "keyguard:released-by": "arn:aws:sts::123456789012:user/moto",
            "keyguard:released-reason": "key rotated_ CloudTrail reviewed",
            "keyguard:released-incident": f"manual:{at}:{leaked}",
        },
    }
    assert released["user/bob"] == before["user/bob"]

    code, out, _ = cli("status", "--user", "alice", "--format", "json")
    status = json.loads(out)
    assert status["held"] is False and status["containment"] is None
    assert status["lastRelease"]["by"] == "arn:aws:sts::123456789012:user/moto"


def test_after_the_leaked_key_is_deleted_release_drops_its_mark(account, cli) -> None:
    aws, (leaked, other) = account
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    aws.iam.delete_access_key(UserName="alice", AccessKeyId=leaked)  # what the notification tells people to do
    assert cli("release", "--user", "alice", "--yes")[0] == 0
    after = state(aws)["user/alice"]
    assert after["keys"] == {other: "Active"}
    assert not [k for k in after["tags"] if k.startswith(LEAKED) or k in ("keyguard:contained-at", "keyguard:reason")]


def test_refuses_to_revive_a_leaked_key_and_changes_nothing(account, cli) -> None:
    aws, (leaked, _) = account
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    contained = state(aws)
    code, _, err = cli(
        "release", "--user", "alice", "--reactivate", leaked, "--confirm-reactivate", leaked, "--yes", answers="y\n"
    )
    assert code == 2
    assert err.startswith(f"keyguard: refusing to reactivate {leaked}: keyguard contained it as leaked")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert state(aws) == contained  # not even the release happened


def _new_key_containment(aws, key: str) -> None:
    """What the stack does to a new long-lived key (CloudTrail CreateAccessKey): deactivate, revoke sessions."""
    incident = replace(incident_from("cloudtrail-create-access-key.json"), key_id=key, principal_name="alice")
    assert respond(incident, Settings(), aws.iam).outcome.value == "contained"


def test_reactivation_needs_the_second_confirmation(account, cli) -> None:
    aws, (new, other) = account
    _new_key_containment(aws, new)
    contained = state(aws)
    assert contained["user/alice"]["keys"][new] == "Inactive"
    assert set(contained["user/alice"]["policies"]) == {"app", "keyguard-revoke-sessions"}

    # --yes answers the first question only; the key id was not typed: nothing happens
    code, _, err = cli("release", "--user", "alice", "--reactivate", new, "--yes", answers="\n")
    assert code == 2 and "reactivation not confirmed: nothing was changed" in err
    assert state(aws) == contained
    # a wrong key id typed: nothing happens
    code, _, err = cli("release", "--user", "alice", "--reactivate", new, answers=f"y\n{other}\n")
    assert code == 2 and state(aws) == contained

    code, out, err = cli("release", "--user", "alice", "--reactivate", new, answers=f"y\n{new}\n")
    assert (code, err.count("Type the key id")) == (0, 1)
    after = state(aws)["user/alice"]
    assert after["keys"] == {new: "Active", other: "Active"}
    assert after["policies"] == {"app": json.loads(ALLOW_S3)}
    assert set(after["tags"]) == {
        "team",
        "keyguard:released-at",
        "keyguard:released-by",
        "keyguard:released-reason",
        "keyguard:released-incident",
    }
    assert "reactivate-key " + new in out


def test_scripts_confirm_reactivation_with_the_key_id(account, cli) -> None:
    aws, (new, other) = account
    _new_key_containment(aws, new)
    code, out, _ = cli(
        "release", "--user", "alice", "--reactivate", new, "--confirm-reactivate", new, "--yes", "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["outcome"] == "released" and doc["reactivated"] == new
    assert state(aws)["user/alice"]["keys"] == {new: "Active", other: "Active"}


def test_release_role_removes_only_the_session_revocation(aws, cli, monkeypatch) -> None:
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    deploy_settings(aws.get("ssm"))  # a deployed stack (no ledger, topic or boundary): contain/release act
    iam = aws.iam
    role(iam, "web-app-role")
    iam.put_role_policy(RoleName="web-app-role", PolicyName="app", PolicyDocument=ALLOW_S3)
    iam.tag_role(RoleName="web-app-role", Tags=[{"Key": "team", "Value": "web"}])
    assert respond(incident_from("guardduty-assumed-role-exfiltration.json"), Settings(), iam).outcome.value == (
        "sessions-revoked"
    )
    held = snapshot(iam, roles=["web-app-role"])["role/web-app-role"]
    assert set(held["policies"]) == {"app", "keyguard-revoke-sessions"}

    code, out, _ = cli("status", "--role", "web-app-role")
    assert code == 0 and "keyguard-revoke-sessions: denies sessions issued before " in out
    code, out, _ = cli("status", "--format", "csv")
    assert out.splitlines()[0] == "PRINCIPAL,HOLD,POLICIES,SINCE,WHY"
    assert out.splitlines()[1].startswith("role/web-app-role,unverified,keyguard-revoke-sessions,")  # no ledger

    code, _, err = cli("release", "--role", "web-app-role", "--yes", "--reason", "instance rebuilt")
    assert (code, err) == (0, "")
    after = snapshot(iam, roles=["web-app-role"])["role/web-app-role"]
    assert after["policies"] == {"app": json.loads(ALLOW_S3)}
    assert set(after["tags"]) == {
        "team",
        "keyguard:released-at",
        "keyguard:released-by",
        "keyguard:released-reason",
        "keyguard:released-incident",
    }
    assert after["tags"]["keyguard:released-reason"] == "instance rebuilt"
    assert json.loads(cli("status", "--format", "json")[1])["held"] == []


def test_dry_runs_change_nothing(account, cli) -> None:
    aws, (leaked, _) = account
    before = state(aws)
    code, out, _ = cli("contain", "--key", leaked, "--dry-run")
    assert code == 0 and "would-contain: Dry-run: nothing was changed." in out
    assert state(aws) == before
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    contained = state(aws)
    code, out, _ = cli("release", "--user", "alice", "--dry-run")
    assert code == 0 and "dry-run: nothing was changed." in out
    assert state(aws) == contained


def test_declining_changes_nothing(account, cli) -> None:
    aws, (leaked, _) = account
    before = state(aws)
    code, _, err = cli("contain", "--key", leaked, answers="n\n")
    assert code == 2 and "declined: nothing was changed" in err
    code, _, err = cli("contain", "--key", leaked, answers="")  # no answer (EOF) is no, with a hint
    assert code == 2 and "pass --yes" in err
    assert state(aws) == before
    assert cli("contain", "--key", leaked, answers="yes\n")[0] == 0
    contained = state(aws)
    assert cli("release", "--user", "alice", answers="\n")[0] == 2
    assert state(aws) == contained


def test_nothing_to_release(account, cli) -> None:
    aws, _ = account
    before = state(aws)
    code, out, _ = cli("release", "--user", "alice", "--yes")
    assert code == 0 and "Nothing to release." in out
    assert state(aws) == before


def test_contain_uses_the_engine_and_verifies_the_owner_with_iam(account, cli) -> None:
    aws, (leaked, _) = account
    log = CallLog(aws.iam)
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    # the command's owner lookup (for the question), then the engine: IAM names the owner, then containment
    assert log.calls == [
        "GetAccessKeyLastUsed",
        "GetAccessKeyLastUsed",
        "UpdateAccessKey",
        "PutUserPolicy",
        *("GetUser", "ListAccessKeys", "GetUserPolicy"),  # IAM read back: contained only when IAM shows it
        "TagUser",
    ]


def test_contain_respects_protected_principals(account, cli, monkeypatch) -> None:
    aws, (leaked, _) = account
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "break-glass,alice")
    before = state(aws)
    code, _, err = cli("contain", "--key", leaked, "--yes")
    assert code == 2 and "alice is a protected principal" in err
    assert state(aws) == before


def test_failed_containment_is_loud(account, cli) -> None:
    aws, (leaked, other) = account
    Fault(aws.iam, "PutUserPolicy", "AccessDenied", status=403)
    code, out, err = cli("contain", "--key", leaked, "--yes")
    assert code == 1
    assert err.startswith(f"keyguard: containment of {leaked} FAILED (quarantine-user") and err.count("\n") == 1
    assert "quarantine-user user alice (policy keyguard-quarantine): failed (AccessDenied" in out
    after = state(aws)["user/alice"]
    assert after["keys"] == {leaked: "Inactive", other: "Active"}  # what worked did happen
    assert set(after["policies"]) == {"app"} and "keyguard:contained-at" not in after["tags"]  # nothing recorded


def test_failed_release_stops_and_keeps_the_record(account, cli) -> None:
    aws, (leaked, _) = account
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    contained = state(aws)
    Fault(aws.iam, "DeleteUserPolicy", "AccessDenied", status=403)
    code, out, err = cli("release", "--user", "alice", "--yes")
    assert code == 2  # the first step failed: nothing was done
    assert err.startswith("keyguard: release FAILED at remove-policy keyguard-quarantine from user alice: failed")
    assert "remove-tags user alice (keyguard:contained-at, keyguard:incident, keyguard:reason): skipped" in out
    assert state(aws) == contained  # still held, still recorded as held


def _inbox(aws):
    """A topic with an SQS subscriber: what keyguard's notifications look like to a SIEM."""
    sns, sqs = aws.get("sns"), aws.get("sqs")
    topic = sns.create_topic(Name="keyguard")["TopicArn"]
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    return topic, read


def test_contain_and_release_notify_the_topic(account, cli, monkeypatch) -> None:
    aws, (leaked, _) = account
    topic, read = _inbox(aws)
    monkeypatch.setenv("KEYGUARD_TOPIC_ARN", topic)
    code, out, _ = cli("contain", "--key", leaked, "--yes")
    assert code == 0 and f"notification: sent to {topic}" in out
    (msg,) = read()
    doc = json.loads(msg["Message"])
    assert msg["Subject"] == f"keyguard: CONTAINED - {leaked} (alice)"
    assert (doc["outcome"], doc["source"], doc["accessKeyId"]) == ("contained", "manual", leaked)
    assert msg["MessageAttributes"]["source"]["Value"] == "manual"

    code, out, _ = cli("release", "--user", "alice", "--yes", "--reason", "rotated")
    assert code == 0
    (msg,) = read()
    doc = json.loads(msg["Message"])
    assert msg["Subject"] == "keyguard: RELEASED user/alice"
    assert (doc["outcome"], doc["releasedBy"], doc["reason"]) == (
        "released",
        "arn:aws:sts::123456789012:user/moto",
        "rotated",
    )
    assert doc["removedPolicies"] == ["keyguard-quarantine"] and doc["reactivated"] is None
    assert msg["MessageAttributes"]["outcome"]["Value"] == "released"


def test_dry_run_does_not_notify(account, cli, monkeypatch) -> None:
    aws, (leaked, _) = account
    topic, read = _inbox(aws)
    code, out, _ = cli("contain", "--key", leaked, "--dry-run", "--topic-arn", topic)
    assert code == 0 and f"would notify {topic}" in out and "notification: not sent (dry-run)" in out
    assert read() == []
