"""Investigation after containment, against moto (IAM, EC2, SQS, SNS) and the LookupEvents stand-in:
a scripted attack is traced and everything it left behind is contained."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.conftest import deliver, deliver_and_investigate, inbox, load_event
from tests.faults import Fault


def _docs(account) -> tuple[dict, dict]:
    docs = inbox(account)
    (containment,) = [d for d in docs if d.get("kind") != "investigation"]
    (investigation,) = [d for d in docs if d.get("kind") == "investigation"]
    return containment, investigation


def _instances(account, region: str) -> dict[str, dict]:
    found = account.clients.get("ec2", region).describe_instances()["Reservations"]
    return {i["InstanceId"]: i for r in found for i in r["Instances"]}


def test_scripted_attack_is_traced_and_contained(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_STOP_LAUNCHED_INSTANCES", "true")
    iam = account.clients.iam
    seeded, invocations = deliver_and_investigate(account, load_event("guardduty-iam-user.json"))
    assert [i.rule.function for i in invocations] == ["GuardDutyFunction", "InvestigationFunction"]
    assert [i.error for i in invocations] == [None, None]
    leaked = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    attacker_key = seeded.replaced["AKIAEXAMPLENEWKEY001"]

    # every credential the attacker made is contained; the owner's other key is left as it was
    keys = {
        k["AccessKeyId"]: k["Status"]
        for u in ("alice", "ci-deployer")
        for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]
    }
    other = next(k for k in seeded.users["alice"] if k != leaked)
    assert keys == {leaked: "Inactive", other: "Active", attacker_key: "Inactive"}
    for user in ("alice", "ci-deployer", "backdoor-admin"):
        assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["keyguard-quarantine"], user
    assert iam.list_role_policies(RoleName="deploy-admin")["PolicyNames"] == ["keyguard-revoke-sessions"]
    assert iam.list_user_policies(UserName="bystander-dana")["PolicyNames"] == []

    # the instances it launched in two regions are stopped (never terminated) and tagged
    launched = {"us-east-1": 2, "eu-west-1": 1}
    for region, count in launched.items():
        instances = _instances(account, region)
        assert len(instances) == count
        for instance in instances.values():
            assert instance["State"]["Name"] == "stopped"
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            assert tags["keyguard:incident"].endswith(leaked)

    containment, report = _docs(account)
    assert containment["outcome"] == "contained"
    assert report["incidentId"] == containment["incidentId"]
    assert report["total"] == 22 and report["errors"] == {"AccessDenied": 9}
    assert report["createdKeys"] == [{"user": "ci-deployer", "accessKeyId": attacker_key}]
    assert set(report["changedUsers"]) == {"backdoor-admin"}
    assert report["assumedRoles"] == {"deploy-admin": ["maint"]}
    assert {(x["region"], x["count"]) for x in report["launches"]} == set(launched.items())
    assert report["keys"] == [{"accessKeyId": attacker_key, "owner": "ci-deployer", "outcome": "contained"}]
    statuses = {(a["action"], a["target"].split(" (")[0]): a["status"] for a in report["actions"]}
    assert statuses[("quarantine-user", "user backdoor-admin")] == "done"
    assert statuses[("revoke-role-sessions", "role deploy-admin")] == "done"
    assert [s for (name, _), s in statuses.items() if name == "stop-instance"] == ["done"] * 3
    assert report["failures"] == []
    assert report["_attributes"]["outcome"]["Value"] == "investigated"


def test_launched_instances_are_listed_not_stopped_by_default(account) -> None:
    deliver_and_investigate(account, load_event("guardduty-iam-user.json"))
    assert {i["State"]["Name"] for i in _instances(account, "us-east-1").values()} == {"running"}
    _, report = _docs(account)
    assert sum(x["count"] for x in report["launches"]) == 3
    assert not [a for a in report["actions"] if a["action"] == "stop-instance"]


def test_throttled_lookups_are_retried_and_containment_is_unchanged(account, monkeypatch) -> None:
    from keyguard.local import emulator

    event = load_event("guardduty-iam-user.json")
    seeded = emulator.seed(account.clients.iam, event)
    emulator.seed_activity(account, seeded)
    busy = ("us-east-1", "eu-west-1")
    account.cloudtrail.throttle = lambda region, n: region in busy and n <= 2  # two throttles in each
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    first = emulator.invoke(account, rule, seeded.event)
    (investigation,) = emulator.investigate_queued(account)
    assert first.error is None and investigation.error is None
    assert dict(account.cloudtrail.throttled) == {"us-east-1": 2, "eu-west-1": 2}
    assert account.cloudtrail.calls["us-east-1"] == 3  # two throttled, then the page
    containment, report = _docs(account)
    assert containment["outcome"] == "contained" and report["total"] == 22 and report["failures"] == []


def test_failing_investigation_never_changes_containment(account) -> None:
    Fault(account.clients.get("ec2"), "DescribeRegions", "UnauthorizedOperation", status=403)
    seeded, (contain, investigation) = deliver_and_investigate(account, load_event("guardduty-iam-user.json"))
    assert contain.error is None
    assert investigation.error and "redelivers" in investigation.error  # batch item failure: SQS retries
    leaked = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    keys = {
        k["AccessKeyId"]: k["Status"]
        for k in account.clients.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    }
    assert keys[leaked] == "Inactive"
    containment, report = _docs(account)
    assert containment["outcome"] == "contained"
    assert report["_attributes"]["outcome"]["Value"] == "investigation-failed"
    assert any("DescribeRegions" in f for f in report["failures"])


def _text(invocation) -> str:
    (message,) = invocation.published
    return json.loads(message["Message"])["default"]


def test_key_with_no_activity_gets_a_short_report(account) -> None:
    _, invocations = deliver_and_investigate(account, load_event("health-credentials-exposed.json"))
    assert [i.error for i in invocations] == [None, None]
    _, report = _docs(account)
    assert report["total"] == 0 and report["actions"] == [] and report["keys"] == []
    text = _text(invocations[-1])
    assert "No CloudTrail activity" in text and len(text.splitlines()) <= 16  # the facts, the later runs, one step


def test_dry_run_investigates_but_changes_nothing(account, monkeypatch) -> None:
    monkeypatch.setenv("KEYGUARD_STOP_LAUNCHED_INSTANCES", "true")
    _seeded, _ = deliver_and_investigate(account, load_event("guardduty-iam-user.json"), mode="dry-run")
    iam = account.clients.iam
    for user in ("alice", "ci-deployer", "backdoor-admin"):
        assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
        assert {k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]} <= {"Active"}
    assert iam.list_role_policies(RoleName="deploy-admin")["PolicyNames"] == []
    assert {i["State"]["Name"] for i in _instances(account, "us-east-1").values()} == {"running"}
    _, report = _docs(account)
    assert report["dryRun"] and {a["status"] for a in report["actions"]} == {"dry-run"}
    assert report["keys"][0]["outcome"] == "would-contain"


@pytest.mark.parametrize(("enforce", "after"), [("false", "optional"), ("true", "required")])
def test_leaked_instance_role_reports_imds_and_can_require_v2(account, monkeypatch, enforce, after) -> None:
    monkeypatch.setenv("KEYGUARD_ENFORCE_IMDSV2", enforce)
    seeded, invocations = deliver_and_investigate(account, load_event("guardduty-assumed-role-exfiltration.json"))
    assert [i.error for i in invocations] == [None, None]
    instance = seeded.event["detail"]["resource"]["accessKeyDetails"]["principalId"].rsplit(":", 1)[1]
    state = _instances(account, "us-east-1")[instance]
    assert state["MetadataOptions"]["HttpTokens"] == after
    _, report = _docs(account)
    assert report["imds"] == [{"instance": instance, "region": "us-east-1", "httpTokens": "optional"}]
    assert "allows IMDSv1" in _text(invocations[-1])


def test_investigation_hand_off_failure_is_loud_after_containment(account) -> None:
    Fault(account.clients.get("sqs"), "SendMessage", "AccessDenied", status=403)
    seeded, (inv,) = deliver(account, load_event("guardduty-iam-user.json"))
    assert inv.error and "investigation failed" in inv.error
    named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    assert account.iam_state(seeded)["user/alice"]["keys"][named] == "Inactive"
    assert [d["outcome"] for d in inbox(account)] == ["contained"]  # announced before the hand-off


def test_redelivered_hand_off_reports_once(account) -> None:
    from keyguard.investigate import handoff
    from keyguard.local import emulator
    from keyguard.plan import Outcome
    from keyguard.respond import Response
    from tests.conftest import incident_from

    seeded, _ = deliver_and_investigate(account, load_event("guardduty-iam-user.json"))
    assert len(inbox(account)) == 2
    # SQS is at-least-once: the same hand-off again gives the same report, which is not announced twice
    incident = replace(incident_from("guardduty-iam-user.json"), key_id=seeded.replaced["AKIAIOSFODNN7EXAMPLE"])
    handoff.send(
        account.clients.get("sqs"), account.investigation_url, Response(incident, Outcome.CONTAINED, owner="alice")
    )
    (again,) = emulator.investigate_queued(account)
    assert again.error is None and again.result == {"batchItemFailures": []}
    assert inbox(account) == []
