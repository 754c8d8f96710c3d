"""A leaked federated session (GetFederationToken): the issuing IAM user, named by CloudTrail's record of the
session's own calls and confirmed by IAM, gets keyguard's quarantine; never a user the session's name
merely matches. CloudTrail's LookupEvents is answered by the emulator's stand-in (moto has none)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from keyguard.local.cloudtrail import FakeCloudTrail
from tests.conftest import deliver, inbox, load_event

SESSION_KEY = "ASIAI44QH8DHBEXAMPLE"
EVENT = "guardduty-federated-user.json"


def _call_made_with_the_session(issuer: str, unique_id: str, minutes_ago: int = 20) -> dict[str, Any]:
    """CloudTrail's record of a call signed with the federated session's key (AWS writes sessionIssuer)."""
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "FederatedUser",
            "principalId": "123456789012:ci-deploy",
            "arn": "arn:aws:sts::123456789012:federated-user/ci-deploy",
            "accountId": "123456789012",
            "accessKeyId": SESSION_KEY,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "IAMUser",
                    "principalId": unique_id,
                    "arn": f"arn:aws:iam::123456789012:user/{issuer}",
                    "accountId": "123456789012",
                    "userName": issuer,
                },
                "attributes": {"creationDate": at, "mfaAuthenticated": "false"},
            },
        },
        "eventTime": at,
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": None,
        "responseElements": None,
        "eventID": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }


def _users(account: Any, *names: str) -> dict[str, tuple[str, str]]:
    iam = account.clients.iam
    out = {}
    for name in names:
        uid = iam.create_user(UserName=name)["User"]["UserId"]
        out[name] = (uid, iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"])
    return out


def test_the_issuing_user_is_quarantined_not_a_user_the_session_name_matches(account) -> None:
    users = _users(account, "broker", "ci-deploy")  # the session is *named* like another user
    FakeCloudTrail([_call_made_with_the_session("broker", users["broker"][0])]).install(account.clients.session)
    _, (inv,) = deliver(account, load_event(EVENT), seed=False)
    assert inv.error is None and inv.result["responses"][0]["outcome"] == "contained"
    iam = account.clients.iam
    assert iam.list_user_policies(UserName="broker")["PolicyNames"] == ["keyguard-quarantine"]
    assert iam.list_user_policies(UserName="ci-deploy")["PolicyNames"] == []
    for name, (_, key) in users.items():  # no key deactivated: the issuer's key is not proven leaked
        assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Active", key
    (msg,) = inbox(account)
    assert msg["principal"]["verifiedOwner"] == "broker" and msg["accessKeyId"] == SESSION_KEY
    assert "issued by IAM user broker" in msg["evidence"]["description"]


def test_a_recreated_user_of_the_same_name_is_not_the_issuer(account) -> None:
    _users(account, "broker")
    FakeCloudTrail([_call_made_with_the_session("broker", "AIDAOLDBROKEREXAMPLE")]).install(account.clients.session)
    _, (inv,) = deliver(account, load_event(EVENT), seed=False)
    assert inv.result["responses"][0]["outcome"] == "notify-only"
    assert account.clients.iam.list_user_policies(UserName="broker")["PolicyNames"] == []
    assert "unique id changed" in inbox(account)[0]["reason"]


def test_no_record_yet_is_reported_with_what_to_do(account) -> None:
    _users(account, "broker")
    FakeCloudTrail([]).install(account.clients.session)
    _, (inv,) = deliver(account, load_event(EVENT), seed=False)
    assert inv.result["responses"][0]["outcome"] == "notify-only"
    (msg,) = inbox(account)
    assert "lags up to 15 minutes" in msg["reason"] and "GetFederationToken" in msg["reason"]


def test_a_record_naming_another_account_s_user_is_ignored(account) -> None:
    users = _users(account, "broker")
    record = _call_made_with_the_session("broker", users["broker"][0])
    record["userIdentity"]["sessionContext"]["sessionIssuer"]["accountId"] = "210987654321"
    FakeCloudTrail([record]).install(account.clients.session)
    _, (inv,) = deliver(account, load_event(EVENT), seed=False)
    assert inv.result["responses"][0]["outcome"] == "notify-only"


def test_calls_before_the_deny_are_the_lookup_and_the_check(account) -> None:
    """Nothing but the issuer's lookup (CloudTrail) and its confirmation (IAM) comes before the deny."""
    users = _users(account, "broker")
    FakeCloudTrail([_call_made_with_the_session("broker", users["broker"][0])]).install(account.clients.session)
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    account.clients.events.register("before-call.*.*", record)  # clients made from now on (CloudTrail)
    account.clients.iam.meta.events.register("before-call.*.*", record)  # the IAM client made already
    deliver(account, copy.deepcopy(load_event(EVENT)), seed=False)
    first = calls.index("PutUserPolicy")
    assert calls[:first] == ["LookupEvents", "GetUser"]
