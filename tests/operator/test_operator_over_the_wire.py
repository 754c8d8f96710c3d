"""The operator commands against moto_server over HTTP (--endpoint-url), with the credentials the
environment gives, as an operator would run them."""

from __future__ import annotations

import json

import boto3

from keyguard.actions import deny_all_policy
from tests.operator.conftest import deploy_settings
from tests.operator.inventory import (
    ALLOW_S3,
    EXPECTED_SUMMARY,
    expected_findings,
    seed_account,
    snapshot,
    user_with_keys,
)


def _client(url: str, service: str, region: str = "us-east-1"):
    return boto3.client(service, endpoint_url=url, region_name=region)


def test_contain_status_release_over_the_wire(moto_endpoint, cli) -> None:
    url = moto_endpoint
    deploy_settings(_client(url, "ssm"))  # the stack (here without ledger, topic or boundary) in us-east-1
    iam = _client(url, "iam")
    leaked, other = user_with_keys(iam, "alice", 2, tags={"team": "payments"})
    iam.put_user_policy(UserName="alice", PolicyName="app", PolicyDocument=ALLOW_S3)
    user_with_keys(iam, "bob")
    before = snapshot(iam, ["alice", "bob"])

    code, out, err = cli("--endpoint-url", url, "contain", "--key", leaked, "--reason", "AWS email", "--yes")
    assert (code, err) == (0, ""), err
    assert "contained: Leaked access key: deactivated; the user is quarantined" in out
    held = snapshot(iam, ["alice", "bob"])
    assert held["user/alice"]["keys"] == {leaked: "Inactive", other: "Active"}
    assert held["user/alice"]["policies"] == {"app": json.loads(ALLOW_S3), "keyguard-quarantine": deny_all_policy()}
    assert held["user/bob"] == before["user/bob"]

    code, out, _ = cli("--endpoint-url", url, "status", "--format", "json")
    assert code == 0 and [h["principal"]["name"] for h in json.loads(out)["held"]] == ["alice"]
    code, out, _ = cli("status", "--key", leaked, "--endpoint-url", url)  # global options after the command too
    assert code == 0 and "HELD by keyguard:" in out

    code, _, err = cli("--endpoint-url", url, "release", "--user", "alice", "--reactivate", leaked, "--yes")
    assert code == 2 and "refusing to reactivate" in err
    assert snapshot(iam, ["alice", "bob"]) == held

    code, _, err = cli("--endpoint-url", url, "release", "--user", "alice", "--reason", "rotated", "--yes")
    assert (code, err) == (0, "")
    after = snapshot(iam, ["alice", "bob"])
    assert after["user/alice"]["keys"] == {leaked: "Inactive", other: "Active"}
    assert after["user/alice"]["policies"] == {"app": json.loads(ALLOW_S3)}
    assert {k for k in after["user/alice"]["tags"] if k.startswith("keyguard:")} == {
        f"keyguard:leaked:{leaked}",
        "keyguard:released-at",
        "keyguard:released-by",
        "keyguard:released-reason",
        "keyguard:released-incident",
    }
    assert after["user/alice"]["tags"]["team"] == "payments"
    assert after["user/bob"] == before["user/bob"]


def test_audit_over_the_wire(moto_endpoint, cli) -> None:
    url = moto_endpoint
    made = seed_account(_client(url, "iam"), lambda region: _client(url, "ec2", region))
    code, out, err = cli("--endpoint-url", url, "--format", "json", "audit", "--regions", "us-east-1,eu-west-1")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert [(f["check"], f["subject"], f["region"]) for f in doc["findings"]] == expected_findings(made)
    assert doc["summary"] == EXPECTED_SUMMARY
