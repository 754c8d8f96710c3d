"""Issue 13 items 15 and 17 and `--dry-run`'s permission check: `invoke --endpoint-url` leaves the emulator
as it found it (or says what it left), a notify-only event seeds no attack history, and `--dry-run` asks
IAM's policy simulator, saying so when it cannot tell."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.operator.conftest import deploy_settings
from tests.operator.inventory import snapshot, user_with_keys

EVENT = "events/guardduty-iam-user.json"


def _inventory(url: str, account: str | None = None) -> dict:
    def client(service, region="us-east-1"):
        if account is None:
            return boto3.client(service, endpoint_url=url, region_name=region)
        return boto3.client(
            service, endpoint_url=url, region_name=region, aws_access_key_id=account, aws_secret_access_key="x"
        )

    running = {}
    for region in ("us-east-1", "eu-west-1", "ap-southeast-1"):
        pages = client("ec2", region).describe_instances()["Reservations"]
        running[region] = sorted(
            i["InstanceId"] for r in pages for i in r["Instances"] if i["State"]["Name"] not in ("terminated",)
        )
    return {
        "users": sorted(u["UserName"] for u in client("iam").list_users()["Users"]),
        "roles": sorted(r["RoleName"] for r in client("iam").list_roles()["Roles"]),
        "topics": client("sns").list_topics()["Topics"],
        "queues": client("sqs").list_queues().get("QueueUrls", []),
        "tables": client("dynamodb").list_tables()["TableNames"],
        "instances": running,
    }


def test_invoke_against_an_emulator_removes_what_it_seeded(moto_endpoint, cli) -> None:
    before = _inventory(moto_endpoint)
    code, out, _ = cli("invoke", EVENT, "--endpoint-url", moto_endpoint, "--format", "json")
    assert code == 0
    (event,) = json.loads(out)["events"]
    assert event["notRemoved"] == [] and "user/alice" in event["removed"] and "user/backdoor-admin" in event["removed"]
    assert _inventory(moto_endpoint) == before  # the caller's own account: never touched
    after = _inventory(moto_endpoint, event["account"])  # the run's own account: emptied again
    assert after["users"] == [] and after["roles"] == [] and after["topics"] == [] and after["queues"] == []
    assert after["tables"] == [] and all(not ids for ids in after["instances"].values())


def test_invoke_keep_leaves_it_and_says_so(moto_endpoint, cli) -> None:
    code, out, _ = cli("invoke", EVENT, "--endpoint-url", moto_endpoint, "--keep", "--format", "json")
    (event,) = json.loads(out)["events"]
    assert code == 0 and "user/alice" in event["leftInPlace"]
    assert "alice" in _inventory(moto_endpoint, event["account"])["users"]
    assert "alice" not in _inventory(moto_endpoint)["users"]  # in the run's own account, not the caller's


def test_a_notify_only_event_changes_nothing_the_key_left_behind(cli) -> None:
    """Every event's account holds the key's recorded history (no guessing which events need it); a
    notify-only event contains nothing, not even what the history shows the key made."""
    code, out, _ = cli("invoke", "events/guardduty-low-severity.json", "--format", "json")
    (event,) = json.loads(out)["events"]
    assert code == 0 and event["outcomes"] == {"GuardDutyFunction": ["below-threshold"]}
    assert "ci-deployer" in event["seeded"]["users"]
    after = event["iam"]["after"]
    assert all(not state["policies"] for state in after.values()), after
    assert all(status == "Active" for state in after.values() for status in state.get("keys", {}).values())


# ------------------------------------------------------------------------------------------ --dry-run


@pytest.fixture
def alice(aws, monkeypatch):
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    deploy_settings(aws.get("ssm"))  # a deployed stack (no ledger, topic or boundary): contain/release act
    return aws, user_with_keys(aws.iam, "alice", 2)


def test_dry_run_says_when_it_cannot_tell(alice, cli) -> None:
    aws, (leaked, _) = alice
    before = snapshot(aws.iam, ["alice"])
    code, out, _ = cli("contain", "--key", leaked, "--dry-run", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["permissions"]["checked"] is False and doc["permissions"]["allowed"] is None
    assert "does not implement IAM's policy simulator" in doc["permissions"]["summary"]
    assert snapshot(aws.iam, ["alice"]) == before


def _simulator_answers(iam, decision: str) -> None:
    """IAM's SimulatePrincipalPolicy answer (the documented XML), at botocore's before-send seam."""
    from urllib.parse import parse_qs

    from botocore.awsrequest import AWSResponse

    from keyguard.local.cloudtrail import RawBody

    def answer(request, **_):
        url, request.url = request.url, "https://simulator-stand-in.invalid/"  # moto's handler runs too
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        params = {k: v[0] for k, v in parse_qs(raw).items()}
        actions = [v for k, v in sorted(params.items()) if k.startswith("ActionNames.member.")]
        resource = params.get("ResourceArns.member.1", "*")
        members = "".join(
            f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{resource}</EvalResourceName>"
            f"<EvalDecision>{decision if a == 'iam:PutUserPolicy' else 'allowed'}</EvalDecision>"
            "<MatchedStatements/><MissingContextValues/></member>"
            for a in actions
        )
        body = (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}"
            "</EvaluationResults></SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        )
        return AWSResponse(url, 200, {"Content-Type": "text/xml"}, RawBody(body.encode()))

    iam.meta.events.register_first("before-send.iam.SimulatePrincipalPolicy", answer)


def test_dry_run_names_what_the_simulator_denies(alice, cli) -> None:
    aws, (leaked, _) = alice
    _simulator_answers(aws.iam, "implicitDeny")
    code, out, _ = cli("contain", "--key", leaked, "--dry-run")
    assert code == 0
    assert "your permissions: DENIED by IAM's policy simulator: iam:PutUserPolicy on " in out
    assert "arn:aws:iam::123456789012:user/alice (implicitDeny)" in out


def test_dry_run_allowed(alice, cli) -> None:
    aws, (leaked, _) = alice
    _simulator_answers(aws.iam, "allowed")
    code, out, _ = cli("contain", "--key", leaked, "--dry-run", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["permissions"]["allowed"] is True and doc["permissions"]["checked"] is True
    asked = {r["action"] for r in doc["permissions"]["results"]}
    assert {"iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:TagUser"} <= asked
