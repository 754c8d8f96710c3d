"""The safety promises, against moto: exactly the named key, a proven owner, nothing silent, no
duplicate notifications, containment before anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from keyguard.actions import REVOKE_SESSIONS_POLICY
from keyguard.errors import MalformedEvent
from tests import iam_eval
from tests.conftest import deliver, inbox, load_event
from tests.faults import CallLog, Fault

ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


def _signed_iam(key_id: str, secret: str):
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret)


def test_other_key_stays_active_but_is_denied_and_bystander_is_allowed(account) -> None:
    iam = account.clients.iam
    event = load_event("guardduty-iam-user.json")
    seeded, _ = deliver(account, event)
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    other = next(k for k in seeded.users["alice"] if k != named)
    bystander = seeded.users["bystander-dana"][0]
    for user in ("alice", "bystander-dana"):
        iam.put_user_policy(UserName=user, PolicyName="allow-all", PolicyDocument=ALLOW_ALL)

    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert keys == {named: "Inactive", other: "Active"}
    with enable_iam_authentication():
        with pytest.raises(Exception, match="AccessDenied"):
            _signed_iam(other, seeded.secrets[other]).list_users()
        _signed_iam(bystander, seeded.secrets[bystander]).list_users()  # allowed: no exception


def _cut_off(document: dict) -> datetime:
    (statement,) = document["Statement"]
    stamp = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_revocation_denies_the_sessions_issued_before_the_cut_off_and_no_others(account) -> None:
    """Decided by IAM's evaluation logic (tests/iam_eval.py) on the documents keyguard wrote, read back from
    IAM: moto cannot tell (see test_moto_gap_token_issue_time_acts_as_deny_all)."""
    iam, sts = account.clients.iam, account.clients.get("sts")
    deliver(account, load_event("guardduty-assumed-role-exfiltration.json"))
    iam.put_role_policy(RoleName="web-app-role", PolicyName="allow-all", PolicyDocument=ALLOW_ALL)
    role, _ = iam_eval.role_documents(iam, "web-app-role")
    revoke = role.identity[f"inline:{REVOKE_SESSIONS_POLICY}"]
    cut_off = _cut_off(revoke)
    session_arn = f"{role.arn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/i-0123456789abcdef0"

    def request(issued_at: datetime) -> iam_eval.Request:
        return iam_eval.session(session_arn, "iam:ListUsers", issued_at=issued_at, role=role.arn)

    stolen = role.evaluate(request(cut_off - timedelta(seconds=1)))
    assert stolen.denied and stolen.explicit and REVOKE_SESSIONS_POLICY in stolen.reason
    assert role.evaluate(request(cut_off - timedelta(hours=6))).denied
    assert role.evaluate(request(cut_off)).allowed  # DateLessThan: the cut-off itself is not before it
    # a session the workload mints after the revocation (a real one from the emulator) is allowed
    sts.assume_role(RoleArn=role.arn, RoleSessionName="i-0123456789abcdef0")
    minted = datetime.now(UTC)
    assert minted >= cut_off
    decided = role.evaluate(request(minted))
    assert decided.allowed, decided.reason


def test_revocation_does_not_stop_a_revived_long_term_key(account) -> None:
    """keyguard-revoke-sessions denies requests whose aws:TokenIssueTime is before the cut-off. A request
    signed with a long-term key (AKIA...) has no aws:TokenIssueTime, so the deny does not apply: a key that
    is reactivated is NOT stopped by this policy (issue 9: only the quarantine's deny-all layers stop it)."""
    iam = account.clients.iam
    seeded, _ = deliver(account, load_event("cloudtrail-create-access-key.json"))
    user = iam_eval.user_documents(iam, "bob")
    revoke = user.identity[f"inline:{REVOKE_SESSIONS_POLICY}"]
    cut_off = _cut_off(revoke)
    policies = {"allow-all": json.loads(ALLOW_ALL), REVOKE_SESSIONS_POLICY: revoke}
    revived = iam_eval.long_term_key(user.arn, "iam:CreateAccessKey", user.arn, now=cut_off + timedelta(hours=1))
    decided = iam_eval.evaluate(revived, policies)
    assert decided.allowed, decided.reason
    # while bob's own sessions from before the cut-off (GetSessionToken) are denied by it
    old = iam_eval.session(user.arn, "iam:CreateAccessKey", issued_at=cut_off - timedelta(minutes=5))
    assert iam_eval.evaluate(old, policies).explicit
    # and the new key itself stays Inactive: that, not this policy, keeps it from signing anything
    named = seeded.replaced["AKIAI44QH8DHBEXAMPLE"]
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="bob")["AccessKeyMetadata"]}
    assert keys[named] == "Inactive"


def test_moto_gap_token_issue_time_acts_as_deny_all(account) -> None:
    """moto is not IAM's policy engine: it treats keyguard-revoke-sessions (a Deny with a DateLessThan
    condition on aws:TokenIssueTime) as a deny-all, and so denies a session minted AFTER the cut-off, which
    real IAM allows. Never prove a revocation with moto's authorization; use tests/iam_eval.py. If this test
    fails, moto has changed: re-check what it can be trusted with."""
    iam, sts = account.clients.iam, account.clients.get("sts")
    deliver(account, load_event("guardduty-assumed-role-exfiltration.json"))
    iam.put_role_policy(RoleName="web-app-role", PolicyName="allow-all", PolicyDocument=ALLOW_ALL)
    role_arn = iam.get_role(RoleName="web-app-role")["Role"]["Arn"]
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="i-0123456789abcdef0")["Credentials"]
    issued = datetime.now(UTC)
    session_iam = boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    with enable_iam_authentication(), pytest.raises(Exception, match="AccessDenied"):
        session_iam.list_users()  # moto: denied
    role, _ = iam_eval.role_documents(iam, "web-app-role")
    session_arn = f"arn:aws:sts::{role.arn.split(':')[4]}:assumed-role/web-app-role/i-0123456789abcdef0"
    real_iam = role.evaluate(iam_eval.session(session_arn, "iam:ListUsers", issued_at=issued, role=role.arn))
    assert real_iam.allowed, real_iam.reason  # IAM: allowed, the session is newer than the cut-off


@pytest.mark.parametrize(
    "name",
    [
        "guardduty-iam-user.json",
        "health-iam-quarantine.json",
        "cloudtrail-create-access-key.json",
        "guardduty-assumed-role-exfiltration.json",
    ],
)
def test_dry_run_changes_nothing_and_says_would_do(account, name: str) -> None:
    seeded, _ = deliver(account, load_event(name), mode="dry-run")
    before_like = {p: {**s, "policies": []} for p, s in account.iam_state(seeded).items()}
    state = account.iam_state(seeded)
    assert all(status == "Active" for s in state.values() for status in s.get("keys", {}).values())
    assert state == before_like
    docs = inbox(account)
    assert docs and {d["outcome"] for d in docs} == {"would-contain"}
    assert all(a["status"] == "dry-run" for d in docs for a in d["actions"])
    assert all(d["dryRun"] for d in docs)


def test_same_event_three_times_sends_one_notification(account) -> None:
    from keyguard.local import emulator

    event = load_event("guardduty-iam-user.json")
    seeded = emulator.seed(account.clients.iam, event)
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    results = [emulator.invoke(account, rule, seeded.event) for _ in range(3)]
    assert [r.error for r in results] == [None, None, None]
    notices = [r.result["responses"][0]["notification"] for r in results]
    assert notices == ["sent", "duplicate", "duplicate"]
    assert len(inbox(account)) == 1
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    keys = {
        k["AccessKeyId"]: k["Status"]
        for k in account.clients.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    }
    assert keys[named] == "Inactive"


def test_failed_action_is_notified_then_raised(account) -> None:
    fault = Fault(account.clients.iam, "PutUserPolicy", "AccessDenied", status=403)
    seeded, (inv,) = deliver(account, load_event("guardduty-iam-user.json"))
    assert fault.calls == 1
    assert inv.error and inv.error.startswith("ResponseFailed") and "quarantine-user" in inv.error
    (doc,) = inbox(account)
    assert doc["outcome"] == "failed" and doc["level"] == "critical"
    statuses = {a["action"]: a["status"] for a in doc["actions"]}
    assert statuses == {
        "deactivate-key": "done",
        "quarantine-user": "failed",
        "deny-all-boundary": "done",  # one failed layer leaves the others
        "verify": "failed",  # IAM read back: the inline policy is not there
        "record": "skipped",
        "ledger": "done",  # keyguard's record keeps what holds, failures included
    }
    assert "AccessDenied" in next(a["detail"] for a in doc["actions"] if a["action"] == "quarantine-user")
    assert doc["_subject"].startswith("keyguard: FAILED")
    # the part that worked did happen, and nothing else was touched
    state = account.iam_state(seeded)
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    assert state["user/alice"]["keys"][named] == "Inactive" and state["user/alice"]["policies"] == []
    boundary = account.clients.iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]
    assert boundary["PermissionsBoundaryArn"] == account.deny_all_policy_arn


def test_throttled_call_is_retried_and_containment_completes(account) -> None:
    fault = Fault(account.clients.iam, "UpdateAccessKey", "Throttling", times=2)
    seeded, (inv,) = deliver(account, load_event("guardduty-iam-user.json"))
    assert fault.calls == 2 and inv.error is None
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    assert account.iam_state(seeded)["user/alice"]["keys"][named] == "Inactive"
    assert [d["outcome"] for d in inbox(account)] == ["contained"]


def test_event_naming_the_wrong_owner_acts_on_the_owner_iam_names(account) -> None:
    iam = account.clients.iam
    iam.create_user(UserName="mallory")
    made = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    iam.create_user(UserName="alice")
    alice_key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    event = load_event("guardduty-iam-user.json")
    event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = made  # event says alice; IAM says mallory
    _, (inv,) = deliver(account, event, seed=False)
    assert inv.error is None
    assert iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert iam.list_user_policies(UserName="mallory")["PolicyNames"] == ["keyguard-quarantine"]
    (alice,) = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert (alice["AccessKeyId"], alice["Status"]) == (alice_key, "Active")
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == []
    (doc,) = inbox(account)
    assert doc["principal"]["verifiedOwner"] == "mallory" and "mallory" in doc["ownerNote"]


@pytest.mark.parametrize("name", ["guardduty-iam-user.json", "health-credentials-exposed.json"])
def test_unknown_key_notifies_not_found_and_changes_nothing(account, name: str) -> None:
    iam = account.clients.iam
    iam.create_user(UserName="alice")
    kept = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    _, (inv,) = deliver(account, load_event(name), seed=False)  # AKIA...EXAMPLE exists nowhere
    assert inv.error is None
    (doc,) = inbox(account)
    assert doc["outcome"] == "not-found" and doc["actions"] == []
    assert "not found" in doc["reason"].lower()
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["AccessKeyId"] == kept
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["Status"] == "Active"
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == []


def test_exempt_user_new_key_is_notified_not_touched(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_EXEMPT_PRINCIPALS", "user/bob")  # stack configuration
    seeded, (inv,) = deliver(account, load_event("cloudtrail-create-access-key.json"))
    assert inv.error is None
    state = account.iam_state(seeded)["user/bob"]
    assert set(state["keys"].values()) == {"Active"} and state["policies"] == []
    assert [d["outcome"] for d in inbox(account)] == ["exempt"]


def test_an_exemption_tag_exempts_only_where_the_stack_opts_in(account, monkeypatch) -> None:
    iam = account.clients.iam
    iam.create_user(UserName="bob", Tags=[{"Key": "security:exempt", "Value": "true"}])
    monkeypatch.setenv("KEYGUARD_EXEMPT_TAG_KEY", "security:exempt")
    seeded, (inv,) = deliver(account, load_event("cloudtrail-create-access-key.json"))
    assert inv.error is None
    assert set(account.iam_state(seeded)["user/bob"]["keys"].values()) == {"Active"}
    assert [d["outcome"] for d in inbox(account)] == ["exempt"]


def test_protected_principal_is_notified_not_touched(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_PROTECTED_PRINCIPALS", "break-glass, alice")
    seeded, (inv,) = deliver(account, load_event("guardduty-iam-user.json"))
    assert inv.error is None
    state = account.iam_state(seeded)["user/alice"]
    assert set(state["keys"].values()) == {"Active"} and state["policies"] == []
    assert [d["outcome"] for d in inbox(account)] == ["protected-principal"]


def test_create_access_key_notify_mode_leaves_the_key(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", "notify")
    seeded, _ = deliver(account, load_event("cloudtrail-create-access-key.json"))
    assert set(account.iam_state(seeded)["user/bob"]["keys"].values()) == {"Active"}
    assert [d["outcome"] for d in inbox(account)] == ["notify-only"]


def test_event_for_another_account_changes_nothing(account) -> None:
    event = load_event("guardduty-iam-user.json")
    event["detail"]["accountId"] = "210987654321"
    seeded, _ = deliver(account, event)
    assert set(account.iam_state(seeded)["user/alice"]["keys"].values()) == {"Active"}
    assert [d["outcome"] for d in inbox(account)] == ["other-account"]


def test_malformed_event_raises_a_domain_error_and_does_nothing(account) -> None:
    from handlers.guardduty import lambda_handler
    from keyguard.local.emulator import FakeContext

    event = load_event("guardduty-iam-user.json")
    del event["detail"]["severity"]
    lambda_handler.runtime.reset(clients=account.clients)
    with pytest.raises(MalformedEvent, match="severity"):
        lambda_handler(event, FakeContext("f", "arn:aws:lambda:us-east-1:123456789012:function:f"))
    assert inbox(account) == []
    assert account.clients.iam.list_users()["Users"] == []


LAYERS = ["UpdateAccessKey", "PutUserPolicy", "GetUser", "PutUserPermissionsBoundary"]  # deny first
VERIFY = ["GetUser", "ListAccessKeys", "GetUserPolicy"]  # IAM read back (after every key is denied)
LEDGER = ["TransactWriteItems"]  # keyguard's own record (one transaction), then the tag mirror


@pytest.mark.parametrize(
    ("name", "first", "calls"),
    [
        ("guardduty-iam-user.json", 1, [*LAYERS, *VERIFY, *LEDGER, "TagUser"]),
        ("health-credentials-exposed.json", 2, ["GetAccessKeyLastUsed", *LAYERS, *VERIFY, *LEDGER, "TagUser"]),
        (  # 0 calls before the deactivation; the ledger's first cut-off is read after it
            "cloudtrail-create-access-key.json",
            1,
            ["UpdateAccessKey", "GetItem", "PutUserPolicy", *VERIFY, *LEDGER, "TagUser"],
        ),
        ("guardduty-assumed-role-exfiltration.json", 1, ["PutRolePolicy", "GetRolePolicy", *LEDGER, "TagRole"]),
        (  # every key of the event is deactivated and denied, then every boundary, then read back and recorded
            "health-iam-quarantine.json",
            2,
            ["GetAccessKeyLastUsed", *LAYERS[:2]] * 2 + LAYERS[2:] * 2 + [*VERIFY, *LEDGER, "TagUser"] * 2,
        ),
        ("guardduty-root.json", 0, []),
        ("guardduty-sample.json", 0, []),
    ],
)
def test_containment_comes_first(account, name: str, first: int, calls: list[str]) -> None:
    """The first containment call is call number `first` (0, 1, 1 before it for GuardDuty, Health and
    CreateAccessKey); nothing, not even the notification, comes before the deny."""
    from keyguard.local import emulator

    seeded = emulator.seed(account.clients.iam, load_event(name))
    log = CallLog(account.clients.iam, account.clients.sns(), account.clients.get("dynamodb"))
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    emulator.invoke(account, rule, seeded.event)
    dedup = ("Publish", "PutItem", "UpdateItem", "DeleteItem")  # the notification and its de-duplication
    response_calls = [c for c in log.calls if c not in dedup]
    assert response_calls == calls
    assert log.calls[: len(calls)] == calls  # nothing (not even the notification) before containment is done
    if calls:
        assert calls[first - 1] in ("UpdateAccessKey", "PutRolePolicy")  # the first containment call
    assert "Publish" in log.calls


def test_role_that_does_not_exist_is_not_found_not_failed(account) -> None:
    _, (inv,) = deliver(account, load_event("guardduty-assumed-role-exfiltration.json"), seed=False)
    assert inv.error is None
    (doc,) = inbox(account)
    assert doc["outcome"] == "not-found"
    assert [(a["action"], a["status"]) for a in doc["actions"]] == [("revoke-role-sessions", "skipped")]


def test_containment_is_recorded_on_the_user(account) -> None:
    seeded, _ = deliver(account, load_event("guardduty-iam-user.json"))
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    tags = {t["Key"]: t["Value"] for t in account.clients.iam.list_user_tags(UserName="alice")["Tags"]}
    assert set(tags) == {"keyguard:contained-at", "keyguard:incident", "keyguard:reason", f"keyguard:leaked:{named}"}
    assert tags["keyguard:incident"] == f"guardduty:a4c1e9b27d5f4e0c9b8a7f6e5d4c3b2a:{named}"
    assert "UnauthorizedAccess:IAMUser/TorIPCaller" in tags["keyguard:reason"]


def test_a_warm_container_keeps_only_the_current_invocations_messages(account, monkeypatch) -> None:
    from handlers.guardduty import lambda_handler
    from keyguard.local import emulator

    monkeypatch.setenv("KEYGUARD_TOPIC_ARN", account.topic_arn)
    monkeypatch.setenv("KEYGUARD_IDEMPOTENCY_TABLE", account.table)
    monkeypatch.setenv("KEYGUARD_INVESTIGATION_QUEUE_URL", account.investigation_url)
    monkeypatch.setenv("KEYGUARD_LEDGER_TABLE", account.ledger_table)
    monkeypatch.setenv("KEYGUARD_DENY_ALL_POLICY_ARN", account.deny_all_policy_arn)
    context = emulator.FakeContext("f", "arn:aws:lambda:us-east-1:123456789012:function:f")
    lambda_handler.runtime.reset(clients=account.clients)
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    for event in (seeded.event, load_event("guardduty-sample.json"), load_event("guardduty-root.json")):
        lambda_handler(event, context)
        assert len(lambda_handler.runtime.notifier.sent) == 1  # not one more per event: no leak
