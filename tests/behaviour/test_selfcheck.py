"""The dead-man's switch: the self-check against keyguard's deployed shape in the emulated account, then
each way an attacker blinds it (their own boto3 call), and the heartbeat and message that follow."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyguard.local.emulator import FakeContext
from keyguard.selfcheck.check import EXPECTED_RULES
from tests.conftest import inbox

STACK = "keyguard"
ROLES = ("guardduty", "health", "access-key-created", "tamper", "investigation")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(e, c):\n    return e\n")
    return buf.getvalue()


@pytest.fixture
def deployed(account: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """keyguard as template.yaml deploys it: functions in enforce mode, their rules, the investigation
    queue's trigger, both topics subscribed, both keys enabled, a logging trail."""
    c = account.clients
    iam, lam, events = c.iam, c.get("lambda"), c.get("events")
    kms, sns, sqs = c.get("kms"), c.get("sns"), c.get("sqs")
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    names, arns = {}, {}
    for r in ROLES:
        name = f"{STACK}-{r.title().replace('-', '')}Function-1A2B"
        out = lam.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {"KEYGUARD_MODE": "enforce"}},
        )
        names[r], arns[r] = name, out["FunctionArn"]
    rules: dict[str, list[str]] = {}
    for r, count in EXPECTED_RULES.items():
        for n in range(count):
            rule = f"{STACK}-{r}-rule{n}"
            events.put_rule(Name=rule, EventPattern=json.dumps({"source": [f"aws.{r}{n}"]}), State="ENABLED")
            events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": arns[r]}])
            rules.setdefault(r, []).append(rule)
    queue = sqs.get_queue_attributes(QueueUrl=account.investigation_url, AttributeNames=["QueueArn"])
    lam.create_event_source_mapping(EventSourceArn=queue["Attributes"]["QueueArn"], FunctionName=names["investigation"])
    keys = [kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2)]
    alarm_topic = sns.create_topic(Name=f"{STACK}-AlarmTopic-1A2B")["TopicArn"]
    sns.subscribe(TopicArn=alarm_topic, Protocol="sqs", Endpoint=_queue_arn(sqs, account.inbox_url))
    s3 = c.get("s3")
    s3.create_bucket(Bucket="trail-bucket")
    trail = c.get("cloudtrail").create_trail(Name="management-events", S3BucketName="trail-bucket")["Name"]
    c.get("cloudtrail").start_logging(Name=trail)  # moto takes the name here (AWS takes the ARN too)
    env = {
        "KEYGUARD_STACK_NAME": STACK,
        "KEYGUARD_EXPECTED_MODE": "enforce",
        "KEYGUARD_TOPIC_ARN": account.topic_arn,
        "KEYGUARD_IDEMPOTENCY_TABLE": account.table,
        "KEYGUARD_ALARM_TOPIC_ARN": alarm_topic,
        "KEYGUARD_KEY_ARNS": ",".join(keys),
        "KEYGUARD_WATCHED_FUNCTIONS": ",".join(f"{r}={n}" for r, n in names.items()),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    account.names, account.rules, account.keys, account.trail = names, rules, keys, trail
    return account


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def run_check(env: Any) -> dict[str, Any]:
    from handlers import selfcheck

    selfcheck.lambda_handler.clients = env.clients
    return selfcheck.lambda_handler({}, FakeContext("SelfCheckFunction", "arn:aws:lambda:us-east-1:1:function:x"))


def heartbeats(env: Any) -> list[float]:
    cw = env.clients.get("cloudwatch")
    now = datetime.now(UTC)
    got = cw.get_metric_statistics(
        Namespace="keyguard",
        MetricName="SelfCheckHealthy",
        Dimensions=[{"Name": "Stack", "Value": STACK}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Minimum"],
    )
    return [p["Minimum"] for p in got["Datapoints"]]


def test_as_deployed_the_check_passes_and_the_heartbeat_is_1(deployed: Any) -> None:
    out = run_check(deployed)
    assert out["healthy"], out["checks"]
    assert heartbeats(deployed) == [1.0]
    assert inbox(deployed) == []


def _disable_a_rule(env: Any) -> None:
    env.clients.get("events").disable_rule(Name=env.rules["guardduty"][0])


def _remove_a_target(env: Any) -> None:
    env.clients.get("events").remove_targets(Rule=env.rules["tamper"][3], Ids=["fn"])


def _dry_run(env: Any) -> None:
    env.clients.get("lambda").update_function_configuration(
        FunctionName=env.names["access-key-created"], Environment={"Variables": {"KEYGUARD_MODE": "dry-run"}}
    )


def _concurrency_zero(env: Any) -> None:
    env.clients.get("lambda").put_function_concurrency(FunctionName=env.names["health"], ReservedConcurrentExecutions=0)


def _delete_the_tamper_watch(env: Any) -> None:
    env.clients.get("lambda").delete_function(FunctionName=env.names["tamper"])


def _disable_the_queue_trigger(env: Any) -> None:
    lam = env.clients.get("lambda")
    (mapping,) = lam.list_event_source_mappings(FunctionName=env.names["investigation"])["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)


def _disable_the_key(env: Any) -> None:
    env.clients.get("kms").disable_key(KeyId=env.keys[0].rsplit("/", 1)[-1])


def _unsubscribe_the_alarm_topic(env: Any) -> None:
    sns = env.clients.get("sns")
    alarm_topic = os.environ["KEYGUARD_ALARM_TOPIC_ARN"]  # the stack's, as the fixture configured it
    for sub in sns.list_subscriptions_by_topic(TopicArn=alarm_topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def _stop_logging(env: Any) -> None:
    env.clients.get("cloudtrail").stop_logging(Name=env.trail)


@pytest.mark.parametrize(
    ("attack", "failed"),
    [
        (_disable_a_rule, "function guardduty"),
        (_remove_a_target, "function tamper"),
        (_dry_run, "function access-key-created"),
        (_concurrency_zero, "function health"),
        (_delete_the_tamper_watch, "function tamper"),
        (_disable_the_queue_trigger, "function investigation"),
        (_disable_the_key, "key "),
        (_unsubscribe_the_alarm_topic, "topic "),
        (_stop_logging, "a CloudTrail trail is logging"),
    ],
)
def test_each_way_of_blinding_keyguard_fails_the_check_and_drops_the_heartbeat(
    deployed: Any, attack: Any, failed: str
) -> None:
    attack(deployed)
    out = run_check(deployed)
    assert not out["healthy"]
    bad = [line for line in out["checks"] if line.startswith("FAILED")]
    assert bad and all(failed in line for line in bad), out["checks"]
    assert heartbeats(deployed) == [0.0]  # the alarm (Minimum < 1) fires on its own topic
    docs = inbox(deployed)
    assert [d["source"] for d in docs] == ["selfcheck"] and docs[0]["level"] == "critical"
    assert failed in docs[0]["_subject"]


def test_a_lasting_failure_is_mailed_once_a_day_while_the_heartbeat_stays_0(deployed: Any) -> None:
    _disable_a_rule(deployed)
    for _ in range(3):
        run_check(deployed)
    assert len(inbox(deployed)) == 1
    assert set(heartbeats(deployed)) == {0.0}
