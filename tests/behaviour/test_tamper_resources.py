"""Blinding keyguard: the attacker's own boto3 call on keyguard's resources in the emulated account, then
the CloudTrail event it causes, delivered through template.yaml's rules. Each must end in a critical
message naming who did it and from where; keyguard's own deploys must not."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from tests.conftest import deliver, inbox, load_event

STACK = "keyguard"
ATTACKER = "arn:aws:iam::123456789012:user/admin-carol"
ATTACKER_IP = "198.51.100.23"
DEPLOYER = "arn:aws:iam::123456789012:role/keyguard-deployer"


@pytest.fixture
def watched(account: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulated account with what the template gives the tamper watch: the stack's name, its KMS key,
    the alarm topic (own key; a queue reads it) and the deployer role."""
    kms = account.clients.get("kms")
    key = kms.create_key(Description="keyguard")["KeyMetadata"]["Arn"]
    sns, sqs = account.clients.get("sns"), account.clients.get("sqs")
    alarm_topic = sns.create_topic(Name=f"{STACK}-AlarmTopic-{uuid.uuid4().hex[:8]}")["TopicArn"]
    alarm_inbox = sqs.create_queue(QueueName=f"alarm-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=alarm_inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=alarm_topic, Protocol="sqs", Endpoint=arn)
    for name, value in {
        "KEYGUARD_STACK_NAME": STACK,
        "KEYGUARD_KEY_ARNS": key,
        "KEYGUARD_ALARM_TOPIC_ARN": alarm_topic,
        "KEYGUARD_DEPLOYER_ARNS": DEPLOYER,
        "KEYGUARD_OWN_ROLES": "keyguard-TamperWatchFunctionRole-1A2B",
    }.items():
        monkeypatch.setenv(name, value)
    account.key_arn, account.alarm_topic, account.alarm_inbox = key, alarm_topic, alarm_inbox
    return account


def tamper_event(file: str, **request: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(file))
    event["detail"]["requestParameters"].update(request)
    return event


def _critical(docs: list[dict], call: str) -> dict:
    assert len(docs) == 1, [d.get("_subject") for d in docs]
    doc = docs[0]
    assert doc["level"] == "critical" and doc["_attributes"]["severity"]["Value"] == "critical"
    assert doc["eventName"].startswith(call)
    assert doc["actor"]["arn"] == ATTACKER and doc["actor"]["sourceIPAddress"] == ATTACKER_IP
    assert doc["actor"]["accessKeyId"] == "AKIAIOSFODNN7EXAMPLE"
    assert "admin-carol" in doc["_subject"] and len(doc["_subject"]) < 100
    return doc


def _function(account: Any, name: str) -> str:
    iam, lam = account.clients.iam, account.clients.get("lambda")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(e, c):\n    return e\n")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": buf.getvalue()},
        Environment={"Variables": {"KEYGUARD_MODE": "enforce"}},
    )
    return name


def test_disabling_keyguard_s_rule_is_announced_critical_with_who_and_where(watched: Any) -> None:
    events = watched.clients.get("events")
    rule = f"{STACK}-GuardDutyFunctionFinding-1A2B3C4D5E6F"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.guardduty"]}), State="ENABLED")
    events.disable_rule(Name=rule)  # the attacker's call
    assert events.describe_rule(Name=rule)["State"] == "DISABLED"

    _, invocations = deliver(watched, tamper_event("tamper-disable-rule.json", name=rule), seed=False)
    assert [i.rule.function for i in invocations] == ["TamperWatchFunction"] and invocations[0].error is None
    doc = _critical(inbox(watched), "DisableRule")
    assert doc["target"] == {"kind": "rule", "name": rule, "newName": None}
    assert doc["outcome"] == "alert"


def test_a_redelivered_event_is_one_message(watched: Any) -> None:
    event = tamper_event("tamper-disable-rule.json")
    for _ in range(3):
        deliver(watched, event, seed=False)
    _critical(inbox(watched), "DisableRule")


def test_dry_run_set_on_a_keyguard_function_is_announced(watched: Any) -> None:
    lam = watched.clients.get("lambda")
    name = _function(watched, f"{STACK}-GuardDutyFunction-1A2B3C4D5E6F")
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"KEYGUARD_MODE": "dry-run"}})
    deliver(watched, tamper_event("tamper-update-function-configuration.json", functionName=name), seed=False)
    _critical(inbox(watched), "UpdateFunctionConfiguration")


def test_concurrency_zero_on_a_keyguard_function_is_announced(watched: Any) -> None:
    lam = watched.clients.get("lambda")
    name = _function(watched, f"{STACK}-AccessKeyCreatedFunction-7G8H9I0J1K2L")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    deliver(watched, tamper_event("tamper-put-function-concurrency.json", functionName=name), seed=False)
    doc = _critical(inbox(watched), "PutFunctionConcurrency")
    assert doc["target"]["name"] == name


def test_keyguard_s_own_deploy_is_not_alerted(watched: Any) -> None:
    _function(watched, f"{STACK}-GuardDutyFunction-1A2B3C4D5E6F")
    _, invocations = deliver(watched, load_event("tamper-deployer-update-function.json"), seed=False)
    assert invocations[0].error is None and invocations[0].result["tamper"]["outcome"] == "ignored"
    assert inbox(watched) == []


def test_the_same_change_by_anyone_else_is_alerted(watched: Any) -> None:
    """The deployer exemption is the configured role, not the event's invokedBy or user agent."""
    event = load_event("tamper-deployer-update-function.json")
    event["detail"]["userIdentity"] = load_event("tamper-disable-rule.json")["detail"]["userIdentity"]
    event["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    event["detail"]["sourceIPAddress"] = ATTACKER_IP
    deliver(watched, event, seed=False)
    _critical(inbox(watched), "UpdateFunctionConfiguration")


def test_another_stack_s_resources_are_not_keyguard_s(watched: Any) -> None:
    for e in (
        tamper_event("tamper-disable-rule.json", name="keyguardian-Finding-1"),
        tamper_event("tamper-put-function-concurrency.json", functionName="payments-api"),
    ):
        _, invocations = deliver(watched, e, seed=False)
        assert invocations[0].result["tamper"]["outcome"] == "ignored"  # seen, and not keyguard's
    assert inbox(watched) == []


def test_unsubscribing_keyguard_s_subscriber_is_announced(watched: Any) -> None:
    sns = watched.clients.get("sns")
    (sub,) = sns.list_subscriptions_by_topic(TopicArn=watched.topic_arn)["Subscriptions"]
    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])  # the attacker's call
    _, invocations = deliver(
        watched, tamper_event("tamper-unsubscribe.json", subscriptionArn=sub["SubscriptionArn"]), seed=False
    )
    # published to the topic (which has nobody left to deliver to: the self-check's alarm covers that)
    assert invocations[0].error is None and invocations[0].result["tamper"]["notification"] == "sent"
    (published,) = invocations[0].published
    assert "Unsubscribe" in published["Subject"] and "admin-carol" in published["Subject"]


@pytest.mark.parametrize("name", ["tamper-disable-key.json", "tamper-schedule-key-deletion.json"])
def test_disabling_or_deleting_keyguard_s_key_is_announced(watched: Any, name: str) -> None:
    kms = watched.clients.get("kms")
    if "disable" in name:
        kms.disable_key(KeyId=watched.key_arn.rsplit("/", 1)[-1])  # moto takes the id here
    else:
        kms.schedule_key_deletion(KeyId=watched.key_arn.rsplit("/", 1)[-1], PendingWindowInDays=7)
    event = tamper_event(name, keyId=watched.key_arn)
    event["detail"]["resources"] = [{"accountId": "123456789012", "type": "AWS::KMS::Key", "ARN": watched.key_arn}]
    deliver(watched, event, seed=False)
    _critical(inbox(watched), event["detail"]["eventName"])


def test_with_the_main_topic_failing_the_alert_goes_to_the_alarm_topic_and_the_event_is_kept(watched: Any) -> None:
    """The main key disabled means the main topic cannot publish; the alarm topic has its own key."""
    sns = watched.clients.sns(watched.topic_arn)

    def main_topic_down(params: dict, **_: Any) -> None:
        if (params.get("body") or {}).get("TopicArn") == watched.topic_arn:  # the serialized query request
            raise RuntimeError("KMSDisabledException: the topic's key is disabled")

    sns.meta.events.register("before-call.sns.Publish", main_topic_down, unique_id="main-topic-down")
    try:
        event = tamper_event("tamper-disable-key.json", keyId=watched.key_arn)
        event["detail"]["resources"] = [{"ARN": watched.key_arn}]
        _, invocations = deliver(watched, event, seed=False)
    finally:
        sns.meta.events.unregister("before-call.sns.Publish", unique_id="main-topic-down")
    assert invocations[0].error and invocations[0].error.startswith("ResponseFailed")  # Lambda retries; DLQ keeps it
    assert "alarm topic: sent" in invocations[0].error
    got = watched.clients.get("sqs").receive_message(QueueUrl=watched.alarm_inbox, MaxNumberOfMessages=10)
    (msg,) = got["Messages"]
    doc = json.loads(json.loads(msg["Body"])["Message"])
    assert doc["eventName"] == "DisableKey" and doc["actor"]["sourceIPAddress"] == ATTACKER_IP


@pytest.mark.parametrize(
    "name", ["tamper-stop-logging.json", "tamper-delete-detector.json", "tamper-create-filter-archive.json"]
)
def test_blinding_cloudtrail_or_guardduty_is_announced(watched: Any, name: str) -> None:
    deliver(watched, load_event(name), seed=False)
    _critical(inbox(watched), load_event(name)["detail"]["eventName"])


def test_deleting_keyguard_s_stack_is_announced(watched: Any) -> None:
    deliver(watched, load_event("tamper-delete-stack.json"), seed=False)
    doc = _critical(inbox(watched), "DeleteStack")
    assert doc["target"]["name"] == STACK
    deliver(watched, tamper_event("tamper-delete-stack.json", stackName="payments"), seed=False)
    assert inbox(watched) == []
