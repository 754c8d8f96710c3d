"""Undoing a containment: keyguard contains a leaked key (its GuardDuty finding, through the template's
rules, which writes the ledger), then the key holder undoes part of it with their own boto3 call, then the
CloudTrail event of that call arrives through the template's rules. IAM must show the containment back,
the topic must carry one critical message naming who did it and from where."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, deny_all_policy
from keyguard.ledger import Ledger
from tests.conftest import deliver, inbox, load_event

ATTACKER = "arn:aws:iam::123456789012:user/admin-carol"
ATTACKER_IP = "198.51.100.23"


@pytest.fixture
def held(account: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """alice's leaked key contained by keyguard (GuardDuty finding), and an attacker client (admin-carol)."""
    monkeypatch.setenv("KEYGUARD_STACK_NAME", "keyguard")
    seeded, invocations = deliver(account, load_event("guardduty-iam-user.json"))
    assert invocations[0].error is None and invocations[0].result["responses"][0]["outcome"] == "contained"
    account.key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    account.other_key = next(k for k in seeded.users["alice"] if k != account.key)
    account.seeded = seeded
    inbox(account)  # the containment's own message
    account.attacker = account.clients.iam  # moto does not evaluate the attacker's permissions: an admin
    return account


def event(file: str, **request: Any) -> dict[str, Any]:
    e = copy.deepcopy(load_event(file))
    e["detail"]["requestParameters"].update(request)
    return e


def keys(env: Any, user: str = "alice") -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in env.clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def policy(env: Any, user: str, name: str = QUARANTINE_POLICY) -> dict[str, Any] | None:
    iam = env.clients.iam
    if name not in iam.list_user_policies(UserName=user)["PolicyNames"]:
        return None
    doc = iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
    return doc if isinstance(doc, dict) else json.loads(doc)


def _one_critical(env: Any, outcome: str = "re-contained") -> dict[str, Any]:
    docs = inbox(env)
    assert len(docs) == 1, [d.get("_subject") for d in docs]
    doc = docs[0]
    assert (doc["source"], doc["level"], doc["outcome"]) == ("tamper", "critical", outcome), doc["actions"]
    assert doc["actor"]["arn"] == ATTACKER and doc["actor"]["sourceIPAddress"] == ATTACKER_IP
    assert "admin-carol" in doc["_subject"]
    return doc


def test_a_revived_key_is_deactivated_again_and_only_that_key(held: Any) -> None:
    held.attacker.update_access_key(UserName="alice", AccessKeyId=held.key, Status="Active")
    assert keys(held)[held.key] == "Active"  # the attack works in IAM

    _, invocations = deliver(held, event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice"))
    assert [i.rule.function for i in invocations] == ["TamperWatchFunction"] and invocations[0].error is None
    assert keys(held) == {held.key: "Inactive", held.other_key: "Active"}  # exactly the held key
    doc = _one_critical(held)
    assert [a["action"] for a in doc["actions"]] == ["deactivate-key", "verify", "record"]
    assert doc["actions"][1]["status"] == "done"  # read back from IAM
    history = Ledger(held.ledger_table, held.clients.get("dynamodb")).history(kind="user", name="alice")
    tamper = [e for e in history if e.event == "tamper"]  # (entries of one second have no set order)
    assert len(tamper) == 1 and tamper[0].actor == ATTACKER and tamper[0].detail["keyId"] == held.key


def test_a_redelivered_tamper_event_is_one_message(held: Any) -> None:
    held.attacker.update_access_key(UserName="alice", AccessKeyId=held.key, Status="Active")
    e = event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice")
    for _ in range(3):
        deliver(held, e, seed=False)
    assert keys(held)[held.key] == "Inactive"
    _one_critical(held)


def test_a_deleted_quarantine_policy_is_put_back(held: Any) -> None:
    held.attacker.delete_user_policy(UserName="alice", PolicyName=QUARANTINE_POLICY)
    assert policy(held, "alice") is None
    deliver(held, event("tamper-delete-user-policy.json", userName="alice"), seed=False)
    assert policy(held, "alice")["Statement"][0]["Effect"] == "Deny"
    _one_critical(held)


def test_an_overwritten_quarantine_policy_is_a_deny_again(held: Any) -> None:
    allow = load_event("tamper-put-user-policy.json")["detail"]["requestParameters"]["policyDocument"]
    held.attacker.put_user_policy(UserName="alice", PolicyName=QUARANTINE_POLICY, PolicyDocument=allow)
    assert policy(held, "alice")["Statement"][0]["Effect"] == "Allow"
    deliver(held, event("tamper-put-user-policy.json", userName="alice"), seed=False)
    statement = policy(held, "alice")["Statement"][0]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "*", "*")
    _one_critical(held)


def test_a_removed_deny_all_boundary_is_put_back(held: Any) -> None:
    iam = held.clients.iam
    assert iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == (
        held.deny_all_policy_arn
    )
    held.attacker.delete_user_permissions_boundary(UserName="alice")
    assert "PermissionsBoundary" not in iam.get_user(UserName="alice")["User"]
    deliver(held, event("tamper-delete-user-permissions-boundary.json", userName="alice"), seed=False)
    boundary = iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
    assert boundary == held.deny_all_policy_arn
    _one_critical(held)


def test_a_renamed_user_stays_held_under_its_new_name(held: Any) -> None:
    held.attacker.update_user(UserName="alice", NewUserName="alice-renamed")
    deliver(held, event("tamper-update-user.json", userName="alice", newUserName="alice-renamed"), seed=False)
    doc = _one_critical(held)
    assert doc["target"]["newName"] == "alice-renamed"
    # ... and undoing the containment under the new name is caught too (decided by IAM's unique id)
    held.attacker.delete_user_policy(UserName="alice-renamed", PolicyName=QUARANTINE_POLICY)
    deliver(held, event("tamper-delete-user-policy.json", userName="alice-renamed"), seed=False)
    assert policy(held, "alice-renamed")["Statement"][0]["Effect"] == "Deny"
    _one_critical(held)
    # moto keeps a key's old user name after UpdateUser; the owner is still found by ListAccessKeys
    held.attacker.update_access_key(UserName="alice-renamed", AccessKeyId=held.key, Status="Active")
    deliver(held, event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice-renamed"), seed=False)
    assert keys(held, "alice-renamed")[held.key] == "Inactive"
    _one_critical(held)


def test_nothing_is_done_after_a_release_through_the_ledger(held: Any) -> None:
    """`keyguard release` records the release in the ledger, then removes keyguard's policies: that removal
    is no undoing."""
    Ledger(held.ledger_table, held.clients.get("dynamodb")).released(
        kind="user",
        name="alice",
        at=datetime.now(UTC),
        actor="arn:aws:iam::123456789012:role/keyguard-operator",
        reason="key rotated",
    )
    held.attacker.delete_user_policy(UserName="alice", PolicyName=QUARANTINE_POLICY)
    _, invocations = deliver(held, event("tamper-delete-user-policy.json", userName="alice"), seed=False)
    assert invocations[0].error is None and invocations[0].result["tamper"]["outcome"] == "ignored"
    assert policy(held, "alice") is None and inbox(held) == []


def test_a_user_keyguard_never_held_is_left_alone(held: Any) -> None:
    iam = held.clients.iam
    iam.create_user(UserName="dave")
    iam.put_user_policy(
        UserName="dave",
        PolicyName=QUARANTINE_POLICY,
        PolicyDocument=json.dumps(deny_all_policy()),  # someone's own copy: keyguard never held dave
    )
    iam.delete_user_policy(UserName="dave", PolicyName=QUARANTINE_POLICY)
    _, invocations = deliver(held, event("tamper-delete-user-policy.json", userName="dave"), seed=False)
    assert invocations[0].result["tamper"]["outcome"] == "ignored"  # seen, decided from the ledger: not held
    assert policy(held, "dave") is None and inbox(held) == []


def test_in_dry_run_nothing_is_put_back_and_it_says_so(held: Any) -> None:
    held.attacker.update_access_key(UserName="alice", AccessKeyId=held.key, Status="Active")
    deliver(held, event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice"), "dry-run", seed=False)
    assert keys(held)[held.key] == "Active"
    assert "DRY-RUN" in _one_critical(held, "would re-contain")["_subject"]


def test_a_failed_re_apply_is_announced_then_raised(held: Any) -> None:
    from tests.faults import Fault

    held.attacker.update_access_key(UserName="alice", AccessKeyId=held.key, Status="Active")
    fault = Fault(held.clients.iam, "UpdateAccessKey", "AccessDenied", 403)
    try:
        _, invocations = deliver(
            held, event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice"), seed=False
        )
    finally:
        fault.remove()
    assert invocations[0].error.startswith("ResponseFailed")  # Lambda retries; the DLQ keeps the event
    assert "FAILED" in _one_critical(held, "failed")["_subject"]
    deliver(held, event("tamper-update-access-key.json", accessKeyId=held.key, userName="alice"), seed=False)
    assert keys(held)[held.key] == "Inactive"  # the retry completes it, and says so
    _one_critical(held)


# ---------------------------------------------------------------- roles


@pytest.fixture
def held_role(account: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KEYGUARD_STACK_NAME", "keyguard")
    _, invocations = deliver(account, load_event("guardduty-assumed-role-exfiltration.json"))
    assert invocations[0].error is None
    inbox(account)
    return account


def _role_policy(env: Any) -> dict[str, Any] | None:
    iam = env.clients.iam
    if REVOKE_SESSIONS_POLICY not in iam.list_role_policies(RoleName="web-app-role")["PolicyNames"]:
        return None
    doc = iam.get_role_policy(RoleName="web-app-role", PolicyName=REVOKE_SESSIONS_POLICY)["PolicyDocument"]
    return doc if isinstance(doc, dict) else json.loads(doc)


def _role_event(file: str) -> dict[str, Any]:
    e = event(file)
    e["detail"]["userIdentity"] = load_event("tamper-delete-user-policy.json")["detail"]["userIdentity"]
    return e


def test_a_held_role_s_deleted_revocation_is_put_back(held_role: Any) -> None:
    held_role.clients.iam.delete_role_policy(RoleName="web-app-role", PolicyName=REVOKE_SESSIONS_POLICY)
    deliver(held_role, _role_event("tamper-delete-role-policy.json"), seed=False)
    assert "aws:TokenIssueTime" in json.dumps(_role_policy(held_role))
    _one_critical(held_role)


def test_a_held_role_s_opened_trust_revokes_its_sessions_again_and_quotes_the_change(held_role: Any) -> None:
    before = _role_policy(held_role)["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    trust = load_event("tamper-update-assume-role-policy.json")["detail"]["requestParameters"]["policyDocument"]
    held_role.clients.iam.update_assume_role_policy(RoleName="web-app-role", PolicyDocument=trust)
    deliver(held_role, _role_event("tamper-update-assume-role-policy.json"), seed=False)
    after = _role_policy(held_role)["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert after >= before  # sessions issued up to now (the new trust's included) are denied
    doc = _one_critical(held_role)
    assert "444455556666" in doc["request"]  # the trust change, quoted as data
