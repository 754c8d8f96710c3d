"""Issue 9: the attacker holds an admin-level key in the same account and acts first.

Each attack is the attacker's own boto3 calls in the emulated account (signed with a key of the account),
then the real-shaped event keyguard gets, delivered through template.yaml's rules. What real IAM would
deny is decided by tests/iam_eval.py on the documents read back from IAM (moto evaluates none of it);
IAM's quotas are emulated by keyguard.local.quotas (moto enforces none). Each of these tests fails on the
engine before issue 9 (tags as state, names as identity, the inline policy as the only deny).
"""

from __future__ import annotations

import copy
import io
import json
import sys
from typing import Any

import boto3
import pytest

# The handlers' Powertools loggers bind to sys.stdout when first imported: import them at collection (pytest's
# session capture), never first inside a test's capsys, whose stream is closed after that test.
import handlers.access_key_created
import handlers.guardduty
import handlers.health  # noqa: F401
from keyguard.ledger import Ledger
from keyguard.local import emulator, quotas
from keyguard.local.quotas import filler_policy
from tests import iam_eval
from tests.conftest import deliver, inbox, load_event

EXAMPLE = "AKIAIOSFODNN7EXAMPLE"
OWN_ROLE = "keyguard-GuardDutyFunctionRole-1A2B3C4D5E6F"


def attacker(key_id: str, secret: str) -> Any:
    """The key holder's own IAM client: signed with a key of the emulated account."""
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret)


def ledger_of(account: Any) -> Ledger:
    return Ledger(account.ledger_table, account.clients.get("dynamodb"))


def other_key(account: Any, user: str, leaked: str) -> str:
    keys = account.clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    (other,) = [k["AccessKeyId"] for k in keys if k["AccessKeyId"] != leaked]
    return other


def statuses(account: Any, user: str) -> dict[str, str]:
    keys = account.clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def new_key_event(user: str, key_id: str, creator: str, event_id: str = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b") -> Any:
    """The CloudTrail record (via EventBridge) of `creator` making `key_id` for `user`."""
    event = load_event("cloudtrail-create-access-key.json")
    detail = event["detail"]
    detail["userIdentity"].update(arn=f"arn:aws:iam::123456789012:user/{creator}", userName=creator)
    detail["requestParameters"] = {"userName": user}
    detail["responseElements"]["accessKey"].update(userName=user, accessKeyId=key_id)
    detail["eventID"] = event_id
    return event


# ------------------------------------------------------------------------------------ 1. inline budget


@pytest.mark.parametrize("name", ["guardduty-iam-user.json", "health-credentials-exposed.json"])
def test_attack1_a_prefilled_inline_budget_cannot_keep_the_other_key_working(account, iam_quotas, name) -> None:
    seeded = emulator.seed(account.clients.iam, load_event(name))
    leaked = next(iter(seeded.replaced.values()))
    user = next(u for u, keys in seeded.users.items() if leaked in keys)
    # the key holder fills the user's 2,048-character inline budget before the event arrives
    mallory = attacker(leaked, seeded.secrets[leaked])
    on_attacker = quotas.install(mallory)
    mallory.put_user_policy(UserName=user, PolicyName="notes", PolicyDocument=filler_policy(2_000))
    on_attacker.uninstall()

    _, (inv,) = deliver(account, seeded.event, seed=False)

    assert [r.operation for r in iam_quotas.refused] == ["PutUserPolicy"]  # keyguard-quarantine did not fit
    assert statuses(account, user)[leaked] == "Inactive"
    # real IAM: the user's other key is explicitly denied by the deny-all permissions boundary
    docs = iam_eval.user_documents(account.clients.iam, user)
    other = other_key(account, user, leaked)
    decision = docs.evaluate(iam_eval.long_term_key(docs.arn, "s3:GetObject", "arn:aws:s3:::payroll/*"))
    assert decision.denied and decision.explicit and "boundary" in decision.reason, (other, decision.reason)
    # ...and the failed layer is reported, then raised so that Lambda retries and the DLQ keeps the event
    (doc,) = inbox(account)
    actions = {a["action"]: a for a in doc["actions"]}
    assert actions["quarantine-user"]["status"] == "failed" and "LimitExceeded" in actions["quarantine-user"]["detail"]
    assert actions["deny-all-boundary"]["status"] == "done"
    assert doc["outcome"] == "failed" and inv.error and "quarantine-user" in inv.error


# ------------------------------------------------------------------------------------ 2. self-exemption


@pytest.mark.parametrize("backdoor", [False, True], ids=["itself", "backdoor-user"])
def test_attack2_a_tag_the_key_holder_writes_exempts_nobody(account, backdoor: bool) -> None:
    iam = account.clients.iam
    iam.create_user(UserName="mallory")
    made = iam.create_access_key(UserName="mallory")["AccessKey"]
    mallory = attacker(made["AccessKeyId"], made["SecretAccessKey"])
    target = "svc-backup" if backdoor else "mallory"
    if backdoor:
        mallory.create_user(UserName=target)
    mallory.tag_user(UserName=target, Tags=[{"Key": "keyguard:exempt", "Value": "true"}])
    new = mallory.create_access_key(UserName=target)["AccessKey"]["AccessKeyId"]

    _, (inv,) = deliver(account, new_key_event(target, new, "mallory"), seed=False)

    assert inv.error is None
    assert statuses(account, target)[new] == "Inactive"
    assert [d["outcome"] for d in inbox(account)] == ["contained"]


# ------------------------------------------------------------------------------------ 3. renaming


def test_attack3_renaming_a_user_after_keyguards_own_role_borrows_no_protection(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_OWN_ROLES", OWN_ROLE)
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "role/ci-deploy")
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    leaked = seeded.replaced[EXAMPLE]
    mallory = attacker(leaked, seeded.secrets[leaked])
    mallory.update_user(UserName="alice", NewUserName=OWN_ROLE)  # before the finding
    event = copy.deepcopy(seeded.event)
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = OWN_ROLE  # GuardDuty names the user as it is now

    _, (inv,) = deliver(account, event, seed=False)

    assert inv.error is None
    (doc,) = inbox(account)
    assert doc["outcome"] == "contained", doc["reason"]
    assert statuses(account, OWN_ROLE)[leaked] == "Inactive"


@pytest.mark.parametrize("name", ["ci-deploy", "CI-Deploy"])
def test_attack3_a_user_named_like_a_protected_role_is_not_protected(account, monkeypatch, name: str) -> None:
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "role/ci-deploy, arn:aws:iam::123456789012:role/Admin")
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    leaked = seeded.replaced[EXAMPLE]
    attacker(leaked, seeded.secrets[leaked]).update_user(UserName="alice", NewUserName=name)
    event = copy.deepcopy(seeded.event)
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = name

    deliver(account, event, seed=False)

    assert [d["outcome"] for d in inbox(account)] == ["contained"]
    assert statuses(account, name)[leaked] == "Inactive"


def test_a_protected_principal_is_still_protected_under_its_kind(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "user/alice")
    seeded, _ = deliver(account, load_event("guardduty-iam-user.json"))
    assert [d["outcome"] for d in inbox(account)] == ["protected-principal"]
    assert set(statuses(account, "alice").values()) == {"Active"}
    assert seeded.replaced[EXAMPLE] in statuses(account, "alice")


# ------------------------------------------------------------------------------------ protected principals


def test_a_key_made_for_a_protected_principal_by_someone_else_is_deactivated(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "user/break-glass")
    iam = account.clients.iam
    for name in ("break-glass", "mallory"):
        iam.create_user(UserName=name)
    made = iam.create_access_key(UserName="mallory")["AccessKey"]
    backdoor = attacker(made["AccessKeyId"], made["SecretAccessKey"]).create_access_key(UserName="break-glass")

    _, (inv,) = deliver(
        account, new_key_event("break-glass", backdoor["AccessKey"]["AccessKeyId"], "mallory"), seed=False
    )

    assert inv.error is None
    assert statuses(account, "break-glass") == {backdoor["AccessKey"]["AccessKeyId"]: "Inactive"}
    assert iam.list_user_policies(UserName="break-glass")["PolicyNames"] == []  # the principal is left alone
    assert iam.list_user_tags(UserName="break-glass")["Tags"] == []
    (doc,) = inbox(account)
    assert doc["outcome"] == "contained"
    assert "arn:aws:iam::123456789012:user/mallory" in json.dumps(doc)  # a human is told who made it


def test_a_protected_principal_making_its_own_key_is_left_alone(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "user/break-glass")
    iam = account.clients.iam
    iam.create_user(UserName="break-glass")
    key = iam.create_access_key(UserName="break-glass")["AccessKey"]["AccessKeyId"]
    deliver(account, new_key_event("break-glass", key, "break-glass"), seed=False)
    assert statuses(account, "break-glass") == {key: "Active"}
    assert [d["outcome"] for d in inbox(account)] == ["protected-principal"]


# ------------------------------------------------------------------------------------ 4. state in tags


def _keyguard(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    from keyguard.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_attack4_untagging_does_not_lift_the_refusal_to_revive_a_leaked_key(account, monkeypatch, capsys) -> None:
    seeded, _ = deliver(account, load_event("guardduty-iam-user.json"))
    leaked = seeded.replaced[EXAMPLE]
    mallory = attacker(other_key(account, "alice", leaked), seeded.secrets[other_key(account, "alice", leaked)])
    tags = [t["Key"] for t in account.clients.iam.list_user_tags(UserName="alice")["Tags"]]
    mallory.untag_user(UserName="alice", TagKeys=tags)  # every keyguard:* tag gone
    assert account.clients.iam.list_user_tags(UserName="alice")["Tags"] == []

    monkeypatch.setenv("KEYGUARD_LEDGER_TABLE", account.ledger_table)
    code, out = _keyguard(
        capsys,
        monkeypatch,
        "release",
        "--user",
        "alice",
        "--reactivate",
        leaked,
        "--confirm-reactivate",
        leaked,
        "--yes",
        "--no-stack",  # the emulated account has the ledger (environment), not the stack's settings parameter
    )

    assert code == 2 and f"refusing to reactivate {leaked}" in out, out
    assert statuses(account, "alice")[leaked] == "Inactive"


def test_attack4_forged_tags_do_not_move_the_revocation_cutoff(account) -> None:
    seeded, _ = deliver(account, load_event("cloudtrail-create-access-key.json"))
    iam = account.clients.iam
    first = iam.get_user_policy(UserName="bob", PolicyName="keyguard-revoke-sessions")["PolicyDocument"]
    incident = next(t["Value"] for t in iam.list_user_tags(UserName="bob")["Tags"] if t["Key"] == "keyguard:incident")
    bob_key = next(k for k in seeded.users["bob"] if k not in seeded.replaced.values())
    attacker(bob_key, seeded.secrets[bob_key]).tag_user(
        UserName="bob",
        Tags=[
            {"Key": "keyguard:incident", "Value": incident},
            {"Key": "keyguard:contained-at", "Value": "2000-01-01T00:00:00Z"},  # revoke nothing, if believed
        ],
    )

    emulator.invoke(account, emulator.route(seeded.event, emulator.load_rules())[0], seeded.event)  # redelivery

    again = iam.get_user_policy(UserName="bob", PolicyName="keyguard-revoke-sessions")["PolicyDocument"]
    assert again == first, "the cut-off moved"
    assert "2000-01-01" not in json.dumps(again)


def test_attack4_fifty_tags_do_not_make_the_containment_fail(account) -> None:
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    leaked = seeded.replaced[EXAMPLE]

    with quotas.install(account.clients) as limits:
        mallory = attacker(leaked, seeded.secrets[leaked])
        with quotas.install(mallory):
            mallory.tag_user(UserName="alice", Tags=[{"Key": f"t{n}", "Value": "x"} for n in range(50)])
        _, (inv,) = deliver(account, seeded.event, seed=False)
    assert [r.operation for r in limits.refused] == ["TagUser"]
    assert inv.error is None
    (doc,) = inbox(account)
    assert doc["outcome"] == "contained"
    record = ledger_of(account).key(leaked)
    assert record is not None and record.leaked and record.held and record.user == "alice"


def test_attack4_a_second_contain_adds_history_instead_of_overwriting(account, monkeypatch, capsys) -> None:
    seeded, _ = deliver(account, load_event("guardduty-iam-user.json"))
    leaked = seeded.replaced[EXAMPLE]
    monkeypatch.setenv("KEYGUARD_LEDGER_TABLE", account.ledger_table)
    code, out = _keyguard(
        capsys, monkeypatch, "contain", "--key", leaked, "--reason", "rotated, case 1234", "--yes", "--no-stack"
    )
    assert code == 0, out
    history = ledger_of(account).history(kind="user", name="alice")
    reasons = [e.reason for e in history]
    assert len(history) == 2 and "rotated, case 1234" in reasons  # the operator's words, verbatim
    assert any("UnauthorizedAccess:IAMUser/TorIPCaller" in r for r in reasons)  # the first record stays


def test_release_restores_the_boundary_keyguard_replaced(account, monkeypatch, capsys) -> None:
    iam = account.clients.iam
    team = iam.create_policy(
        PolicyName="team-boundary",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    seeded = emulator.seed(iam, load_event("guardduty-iam-user.json"))
    iam.put_user_permissions_boundary(UserName="alice", PermissionsBoundary=team)
    deliver(account, seeded.event, seed=False)
    assert iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == (
        account.deny_all_policy_arn
    )
    assert ledger_of(account).principal("user", "alice").replaced_boundary == team  # type: ignore[union-attr]

    monkeypatch.setenv("KEYGUARD_LEDGER_TABLE", account.ledger_table)
    monkeypatch.setenv("KEYGUARD_DENY_ALL_POLICY_ARN", account.deny_all_policy_arn)
    code, out = _keyguard(
        capsys, monkeypatch, "release", "--user", "alice", "--reason", "rotated", "--yes", "--no-stack"
    )

    assert code == 0, out
    assert iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == team
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == []
    record = ledger_of(account).principal("user", "alice")
    assert record is not None and not record.held and record.released_at is not None
    assert [e.event for e in ledger_of(account).history(kind="user", name="alice")] == ["contained", "released"]


def test_the_notice_says_when_the_events_principal_id_is_not_iams(account) -> None:
    """A user deleted and re-created (or renamed) under the finding's name is not the principal GuardDuty saw:
    IAM's answer wins, and the notice says so."""
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    event = copy.deepcopy(seeded.event)
    event["detail"]["resource"]["accessKeyDetails"]["principalId"] = "AIDAOTHERPRINCIPAL0000"
    deliver(account, event, seed=False)
    (doc,) = inbox(account)
    user_id = account.clients.iam.get_user(UserName="alice")["User"]["UserId"]
    assert doc["notes"] == [f"the event's principal id is AIDAOTHERPRINCIPAL0000, but IAM says alice is {user_id}"]
    assert doc["outcome"] == "contained"
