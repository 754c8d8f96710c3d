"""The scheduled audit: handlers.audit runs keyguard.operator.audit, counts it, and publishes the summary
to the topic; and template.yaml's audit function grants exactly what the audit reads."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from keyguard.errors import ConfigError, KeyguardError
from keyguard.local.emulator import FakeContext, load_template
from keyguard.operator import audit
from tests.faults import Fault
from tests.operator.inventory import ALLOW_S3, backdate_key, root_has_access_keys, user_with_keys

REPO = Path(__file__).resolve().parents[2]
ARN = "arn:aws:lambda:us-east-1:123456789012:function:keyguard-AuditFunction"


@pytest.fixture
def handler(aws, monkeypatch):
    """The handler on a small account: one old key, one clean user; a topic read by an SQS queue."""
    from handlers.audit import lambda_handler
    from keyguard.aws import Clients

    iam = aws.iam
    user_with_keys(iam, "old-ivan")
    backdate_key("old-ivan", 1, created_days_ago=200, used_days_ago=1)
    user_with_keys(iam, "fresh")
    iam.put_user_policy(UserName="fresh", PolicyName="app", PolicyDocument=ALLOW_S3)
    sns, sqs = aws.get("sns"), aws.get("sqs")
    topic = sns.create_topic(Name="keyguard")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    monkeypatch.setenv("KEYGUARD_TOPIC_ARN", topic)
    monkeypatch.setattr(audit, "enabled_regions", lambda ec2: ["us-east-1"])  # moto: 24 regions take seconds
    lambda_handler.clients = Clients()

    def inbox():
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    lambda_handler.inbox = inbox
    yield lambda_handler
    lambda_handler.clients = None


def _invoke(handler):
    return handler({"source": "aws.scheduler", "detail-type": "Scheduled Event"}, FakeContext("audit", ARN))


def test_publishes_the_summary(handler) -> None:
    result = _invoke(handler)
    expected = (
        "2 long-lived access keys (2 active) on 2 of 2 IAM users; 1 older than 90 days; 2 users with keys but no "
        "MFA. 0 of 0 EC2 instances allow IMDSv1 (1 region checked). keyguard holds no one in quarantine."
    )
    assert result == {"summary": expected, "findings": 3, "incomplete": [], "notification": "sent"}
    (msg,) = handler.inbox()
    assert msg["Subject"] == "keyguard audit: 2 active keys, 1 old, 0 IMDSv1 hosts, 0 held"
    attributes = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
    assert attributes == {"source": "operator", "severity": "medium", "outcome": "audit"}
    doc = json.loads(msg["Message"])
    assert doc["keyguard"] == 1 and doc["summary"] == expected
    assert [(f["check"], f["subject"]) for f in doc["findings"]] == [
        ("old-key", "user/old-ivan key 1"),
        ("key-without-mfa", "user/fresh"),
        ("key-without-mfa", "user/old-ivan"),
    ]
    assert "accessKeys" not in doc  # the inventory is for `keyguard audit`; SNS messages stay small


def test_root_keys_make_it_critical(handler) -> None:
    root_has_access_keys()
    _invoke(handler)
    (msg,) = handler.inbox()
    assert msg["MessageAttributes"]["severity"]["Value"] == "critical"
    assert json.loads(msg["Message"])["findings"][0]["check"] == "root-access-keys"


def test_incomplete_audit_says_so(handler) -> None:
    Fault(handler.clients.get("ec2", "us-east-1"), "DescribeInstances", "UnauthorizedOperation", status=403)
    result = _invoke(handler)
    assert len(result["incomplete"]) == 1 and result["incomplete"][0].startswith("EC2 instances in us-east-1")
    (msg,) = handler.inbox()
    assert msg["Subject"].startswith("keyguard audit INCOMPLETE: ")
    assert msg["MessageAttributes"]["outcome"]["Value"] == "audit-incomplete"
    assert msg["MessageAttributes"]["severity"]["Value"] == "high"


def test_metrics(handler, monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    logs = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", logs)
    capsys.readouterr()
    _invoke(handler)
    lines = [json.loads(x) for x in (capsys.readouterr().out + logs.getvalue()).splitlines() if x.startswith("{")]
    (emf,) = [x for x in lines if "_aws" in x]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "keyguard"
    assert (emf["AuditActiveKeys"], emf["AuditOldKeys"], emf["AuditImdsV1Instances"]) == ([2.0], [1.0], [0.0])
    (log,) = [x for x in lines if x.get("message") == "audit"]
    assert log["counts"]["oldKeys"] == 1


def test_a_summary_that_cannot_be_published_fails_the_invocation(handler, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    with pytest.raises(KeyguardError, match="sns:Publish to arn:aws:sns:us-east-1:123456789012:no-such-topic failed"):
        _invoke(handler)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_bad_settings_fail_the_invocation(handler, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_AUDIT_MAX_KEY_AGE_DAYS", "ninety")
    with pytest.raises(ConfigError, match="KEYGUARD_AUDIT_MAX_KEY_AGE_DAYS must be a whole number of days"):
        _invoke(handler)


# ---------------------------------------------------------------------------------- template snippet


def _templates(tmp_path: Path) -> list[dict]:
    return [load_template(REPO / "template.yaml")]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_template_snippet_grants_exactly_what_the_audit_reads(tmp_path) -> None:
    for template in _templates(tmp_path):
        resources = template["Resources"]
        function = resources["AuditFunction"]
        assert function["Properties"]["Handler"] == "handlers.audit.lambda_handler"
        role_id = function["Properties"]["Role"].split(".")[0]
        role = resources[role_id]["Properties"]
        assert "ManagedPolicyArns" not in role
        statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert all(s["Effect"] == "Allow" for s in statements)
        by_resource: dict[str, set[str]] = {}
        for s in statements:
            for resource in _as_list(s["Resource"]):
                by_resource.setdefault(resource, set()).update(_as_list(s["Action"]))
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert by_resource == {
            "*": set(audit.AUDIT_PERMISSIONS),  # none of these supports resource-level permissions
            "Topic": {"sns:Publish"},
            "DeadLetterQueue.Arn": {"sqs:SendMessage"},
            "Key.Arn": {"kms:GenerateDataKey", "kms:Decrypt"},
            f"{log_group}.Arn": {"logs:CreateLogStream", "logs:PutLogEvents"},
        }
        assert not [a for actions in by_resource.values() for a in actions if "*" in a]


def test_template_snippet_runs_weekly_by_default_and_can_be_switched_off(tmp_path) -> None:
    for template in _templates(tmp_path):
        parameter = template["Parameters"]["AuditSchedule"]
        assert parameter["Default"] == "rate(7 days)"
        (event,) = template["Resources"]["AuditFunction"]["Properties"]["Events"].values()
        assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == "AuditSchedule"
        assert event["Properties"]["DeadLetterConfig"] == {"Arn": "DeadLetterQueue.Arn"}
        assert template["Conditions"]["AuditScheduled"] == [["AuditSchedule", "off"]]
        for resource in ("AuditFunction", "AuditFunctionRole", "AuditLogGroup"):
            assert template["Resources"][resource]["Condition"] == "AuditScheduled"


def test_the_handler_imports_without_touching_aws(monkeypatch) -> None:
    import importlib

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    module = importlib.reload(importlib.import_module("handlers.audit"))
    assert callable(module.lambda_handler) and module.lambda_handler.clients is None


def test_the_operator_policy_in_the_docs_is_what_the_commands_use() -> None:
    from keyguard.actions import ALL_ACTIONS
    from keyguard.incident import Source
    from keyguard.ledger import WRITE_PERMISSIONS as LEDGER_PERMISSIONS
    from keyguard.operator.commands import TOPIC_CHECK_PERMISSIONS as TOPIC_CHECK
    from keyguard.operator.principal import READ_ROLE_PERMISSIONS, READ_USER_PERMISSIONS
    from keyguard.operator.release import RELEASE_ACTIONS
    from keyguard.operator.simulate import SIMULATE_PERMISSIONS as SIMULATE
    from keyguard.operator.stack import READ_PERMISSIONS as STACK_READ
    from keyguard.plan import possible_actions
    from keyguard.report.securityhub import RELEASE_PERMISSIONS as SECURITY_HUB_RELEASE
    from keyguard.respond import LOOKUP_OWNER_PERMISSIONS

    text = (REPO / "docs" / "operator.md").read_text()
    (block,) = [b for b in re.findall(r"```json\n(.*?)```", text, flags=re.S) if '"Statement"' in b]
    documented = {a for s in json.loads(block)["Statement"] for a in _as_list(s["Action"])}
    contain = {p for a in possible_actions(Source.MANUAL) for p in a.permissions} | set(LOOKUP_OWNER_PERMISSIONS)
    release = {p for a in RELEASE_ACTIONS for p in a.permissions}
    used = (
        set(READ_USER_PERMISSIONS)
        | set(READ_ROLE_PERMISSIONS)
        | contain
        | release
        | set(audit.AUDIT_PERMISSIONS)
        | {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
        | set(STACK_READ)
        | set(SIMULATE)
        | set(TOPIC_CHECK)
        | set(LEDGER_PERMISSIONS)
        | set(SECURITY_HUB_RELEASE)
    )
    assert documented == used
    assert set(possible_actions(Source.MANUAL)) <= set(ALL_ACTIONS)
