"""What the operator commands say at 3 a.m. is true, against moto_server over the wire (--endpoint-url):

- the stack is found where it is deployed (us-east-1, as the README deploys it) whatever region the clients
  use, or contain/release change nothing and say where they looked; read-only commands say they show IAM only;
- a hold is `contained` only when its last containment verified every layer: a failed boundary shows as a
  partial hold in status, history and release, and `status --user` exits 1;
- a failed manual containment's notice says nothing retries it (no dead-letter queue, no "run the same
  command"), and names the owner's real type;
- status and release show the ledger's reason and actor verbatim; the tag mirror only as a named fallback.

The server is moto's ThreadedMotoServer in this process, with keyguard.local.boundary's user permissions
boundaries (moto has none), reached only through HTTP by the commands."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from keyguard.ledger import TABLE_SCHEMA, Ledger
from tests.operator.inventory import ACCOUNT, snapshot, user_with_keys

STACK_REGION = "us-east-1"
REASON = "AWS email, case 1234: key on GitHub"  # a comma and a colon: the tag mirror rewrites both


def _client(url: str, service: str, region: str = STACK_REGION) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=region)


def deploy_stack(url: str, *, deny_all: str | None = None, name: str = "keyguard") -> dict[str, str]:
    """What the template deploys that the commands read, in us-east-1: the settings parameter, the ledger
    table, the topic and the deny-all policy. `deny_all` replaces the policy's ARN (one that does not exist
    makes the boundary layer fail)."""
    iam = _client(url, "iam")
    policy = iam.create_policy(
        PolicyName=f"{name}-deny-all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    table = f"{name}-ledger"
    _client(url, "dynamodb").create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **TABLE_SCHEMA)
    topic = _client(url, "sns").create_topic(Name=f"{name}-topic")["TopicArn"]
    settings = {
        "keyguard": 1,
        "stack": name,
        "mode": "enforce",
        "protectedPrincipals": "break-glass",
        "topicArn": topic,
        "ledgerTable": table,
        "denyAllPolicyArn": deny_all or policy,
    }
    _client(url, "ssm").put_parameter(Name=f"/keyguard/{name}/settings", Type="String", Value=json.dumps(settings))
    return {"topic": topic, "table": table, "denyAll": deny_all or policy}


def published(topic: str) -> list[dict[str, Any]]:
    """What reached the topic: (subject, the text for people, the JSON document). The server runs in this
    process, so moto's own record of each publish can be read."""
    from moto.sns import sns_backends

    sent = sns_backends[ACCOUNT][topic.split(":")[3]].topics[topic].sent_notifications
    out = []
    for _id, message, subject, _attributes, _group in sent:
        parts = json.loads(message)
        out.append({"subject": subject, "text": parts["default"], "doc": json.loads(parts["sqs"])})
    return out


@pytest.fixture
def server(moto_endpoint: str) -> str:
    from keyguard.local import boundary

    boundary.install()  # IAM's user permissions boundaries, which moto lacks, on this in-process server
    return moto_endpoint


@pytest.fixture
def people(server: str) -> dict[str, list[str]]:
    iam = _client(server, "iam")
    return {"alice": user_with_keys(iam, "alice", 2), "break-glass": user_with_keys(iam, "break-glass")}


def _boundary(url: str, user: str) -> str | None:
    found = _client(url, "iam").get_user(UserName=user)["User"]
    return (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")


# ------------------------------------------------------------------------------------------ 1. the stack


@pytest.mark.parametrize("how", ["--region", "profile's region"])
def test_the_stack_in_us_east_1_is_found_from_another_region(server, people, cli, monkeypatch, how) -> None:
    stack = deploy_stack(server)
    if how == "--region":
        where = ["--endpoint-url", server, "--region", "eu-west-1"]
    else:  # the profile's (here: the environment's) default region
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        where = ["--endpoint-url", server]
    iam = _client(server, "iam")
    before = snapshot(iam, ["alice", "break-glass"])

    (guarded,) = people["break-glass"]
    code, _, err = cli(*where, "contain", "--key", guarded, "--yes")
    assert code == 2 and "break-glass is a protected principal" in err
    assert "in us-east-1" in err  # the stack that said so
    assert snapshot(iam, ["alice", "break-glass"]) == before  # nothing changed

    leaked = people["alice"][0]
    code, out, err = cli(*where, "contain", "--key", leaked, "--reason", REASON, "--yes")
    assert (code, err) == (0, ""), err
    assert "stack keyguard in us-east-1" in out
    assert snapshot(iam, ["alice"])["user/alice"]["keys"][leaked] == "Inactive"
    assert _boundary(server, "alice") == stack["denyAll"]  # the stack's boundary layer
    (entry,) = Ledger(stack["table"], _client(server, "dynamodb")).history(kind="user", name="alice")
    assert entry.event == "contained" and entry.reason == REASON  # the stack's ledger, in us-east-1
    assert [m["doc"]["accessKeyId"] for m in published(stack["topic"])] == [leaked]  # the stack's topic

    code, out, err = cli(*where, "history", "--user", "alice", "--format", "json")
    assert code == 0 and [e["event"] for e in json.loads(out)["entries"]] == ["contained"]


def test_without_a_stack_contain_and_release_refuse_and_status_says_iam_only(server, people, cli) -> None:
    where = ["--endpoint-url", server, "--region", "eu-west-1"]
    iam = _client(server, "iam")
    leaked = people["alice"][0]
    before = snapshot(iam, ["alice"])

    code, _, err = cli(*where, "contain", "--key", leaked, "--yes")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "/keyguard/keyguard/settings in eu-west-1 and us-east-1" in err and "--no-stack" in err
    assert snapshot(iam, ["alice"]) == before

    code, _, err = cli(*where, "release", "--user", "alice", "--yes")
    assert code == 2 and "--no-stack" in err and "eu-west-1 and us-east-1" in err

    code, out, err = cli(*where, "contain", "--key", leaked, "--yes", "--no-stack")
    assert code == 0, err
    assert "no ledger record" in out and "the tamper watch" in out and "nobody is notified" in out
    assert snapshot(iam, ["alice"])["user/alice"]["keys"][leaked] == "Inactive"

    code, out, _ = cli(*where, "status", "--user", "alice")
    assert code == 0 and "IAM only" in out
    code, out, _ = cli(*where, "status")
    assert code == 0 and "IAM only" in out
    code, out, _ = cli(*where, "status", "--format", "json")
    assert json.loads(out)["stack"] is None and "IAM only" in json.loads(out)["note"]
    code, _, err = cli(*where, "history")
    assert code == 2 and "eu-west-1 and us-east-1" in err and "deploy the stack" not in err
    code, out, _ = cli(*where, "audit", "--regions", "eu-west-1")
    assert code == 0 and "read from IAM only" in out


def test_a_stack_named_with_dash_dash_stack_that_does_not_exist_changes_nothing(server, people, cli) -> None:
    deploy_stack(server)
    code, _, err = cli("--endpoint-url", server, "contain", "--key", people["alice"][0], "--stack", "nope", "--yes")
    assert code == 2 and "no keyguard stack named 'nope'" in err and "us-east-1" in err
    assert snapshot(_client(server, "iam"), ["alice"])["user/alice"]["keys"][people["alice"][0]] == "Active"


# ------------------------------------------------------------------------------------------ 2. the truth of a hold


@pytest.fixture
def failed_boundary(server, people, cli) -> dict[str, str]:
    """A contain whose boundary layer failed: the stack names a deny-all policy that does not exist."""
    stack = deploy_stack(server, deny_all=f"arn:aws:iam::{ACCOUNT}:policy/keyguard-deny-all-deleted")
    code, _, err = cli("--endpoint-url", server, "contain", "--key", people["alice"][0], "--reason", REASON, "--yes")
    assert code == 1 and "deny-all-boundary" in err
    return stack


def test_a_hold_whose_boundary_failed_is_not_shown_as_held(server, failed_boundary, cli) -> None:
    url = ["--endpoint-url", server]
    code, out, _ = cli(*url, "status", "--user", "alice")
    assert code == 1, out
    assert "HELD by keyguard" not in out
    assert "PARTIAL" in out and "deny-all-boundary" in out and "FAILED" in out

    code, out, _ = cli(*url, "status", "--user", "alice", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ledger"]["state"] == "partial" and doc["ledger"]["missing"] == ["deny-all-boundary"]
    assert doc["hold"] == "partial"

    code, out, _ = cli(*url, "status")
    assert code == 1 and "partial" in out and "deny-all-boundary" in out
    code, out, _ = cli(*url, "status", "--format", "json")
    assert code == 1 and [h["hold"] for h in json.loads(out)["held"]] == ["partial"]

    code, out, _ = cli(*url, "history")
    assert code == 0
    (row,) = [line for line in out.splitlines() if "user/alice" in line]
    assert "partial" in row and "deny-all-boundary" in row
    code, out, _ = cli(*url, "history", "--format", "json")
    (entry,) = json.loads(out)["entries"]
    assert entry["state"] == "partial" and entry["missing"] == ["deny-all-boundary"]

    code, out, _ = cli(*url, "release", "--user", "alice", "--dry-run")
    assert code == 0 and "partial" in out and "deny-all-boundary" in out


def test_a_hold_by_its_boundary_alone_is_listed_as_partial(server, people, cli, monkeypatch) -> None:
    """The key holder filled alice's inline policy budget beforehand: keyguard's deny-all policy is refused
    (IAM's 2,048-character quota, keyguard.local.quotas on the command's clients), the boundary holds. The
    list of holds shows alice, whom no keyguard policy names, as partial."""
    from keyguard.local import quotas
    from keyguard.operator import clients as clients_mod
    from keyguard.operator import commands

    deploy_stack(server)
    iam = _client(server, "iam")
    filler = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    filler["Statement"][0]["Sid"] = "x" * 1900
    iam.put_user_policy(UserName="alice", PolicyName="filler", PolicyDocument=json.dumps(filler))

    def with_quotas(*args: Any, **kwargs: Any) -> Any:
        made = clients_mod.OperatorClients(*args, **kwargs)
        quotas.install(made)
        return made

    monkeypatch.setattr(commands, "OperatorClients", with_quotas)
    url = ["--endpoint-url", server]
    code, _, err = cli(*url, "contain", "--key", people["alice"][0], "--yes")
    assert code == 1 and "quarantine-user" in err
    assert "keyguard-quarantine" not in iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert _boundary(server, "alice") is not None  # the layer the key holder could not pre-fill

    code, out, err = cli(*url, "status")
    assert code == 1, out + err
    (row,) = [line for line in out.splitlines() if "user/alice" in line]
    assert "partial (missing quarantine-user)" in row
    code, out, _ = cli(*url, "status", "--user", "alice")
    assert code == 1 and "PARTIAL hold by keyguard" in out and "permissions boundary: arn:aws:iam::" in out


def test_a_hold_whose_layers_all_held_is_contained(server, people, cli) -> None:
    deploy_stack(server)
    url = ["--endpoint-url", server]
    assert cli(*url, "contain", "--key", people["alice"][0], "--yes")[0] == 0
    code, out, _ = cli(*url, "status", "--user", "alice")
    assert code == 0 and "HELD by keyguard" in out
    code, out, _ = cli(*url, "status", "--user", "alice", "--format", "json")
    assert json.loads(out)["hold"] == "contained" and json.loads(out)["ledger"]["missing"] == []


# ------------------------------------------------------------------------------------------ 3. the notice


def test_a_failed_manual_contain_does_not_promise_a_retry(server, failed_boundary) -> None:
    (notice,) = published(failed_boundary["topic"])
    text = notice["text"].lower()
    assert "will retry" not in text and "retries automatically" not in text and "dead-letter" not in text
    assert "keyguard contain --key" not in text  # the command that just failed
    assert "nothing retries" in text
    assert "aws iam put-user-permissions-boundary --user-name alice" in notice["text"]  # what to do instead
    assert "will retry" not in notice["doc"]["reason"]
    assert notice["doc"]["principal"]["type"] == "IAMUser"  # IAM named the owner: a user, not "Unknown"


# ------------------------------------------------------------------------------------------ 4. reason and actor


def test_status_and_release_show_the_ledgers_reason_and_actor_verbatim(server, people, cli) -> None:
    deploy_stack(server)
    url = ["--endpoint-url", server]
    assert cli(*url, "contain", "--key", people["alice"][0], "--reason", REASON, "--yes")[0] == 0

    code, out, _ = cli(*url, "status", "--user", "alice")
    assert code == 0 and f"why          : {REASON}" in out
    assert "by           : arn:aws:sts::" in out or "by           : arn:aws:iam::" in out
    assert "AWS email_ case" not in out  # the tag mirror's rewrite
    code, out, _ = cli(*url, "status", "--user", "alice", "--format", "json")
    ledger = json.loads(out)["ledger"]
    assert ledger["reason"] == REASON and ledger["actor"].startswith("arn:aws:")
    code, out, _ = cli(*url, "status")
    assert REASON in out and "AWS email_ case" not in out

    code, out, _ = cli(*url, "release", "--user", "alice", "--reason", "rotated", "--dry-run")
    assert code == 0 and REASON in out and "AWS email_ case" not in out


def test_the_tag_mirror_is_a_named_fallback(server, people, cli) -> None:
    url = ["--endpoint-url", server]
    assert cli(*url, "contain", "--key", people["alice"][0], "--reason", REASON, "--yes", "--no-stack")[0] == 0
    code, out, _ = cli(*url, "status", "--user", "alice")
    assert code == 0 and "tag mirror" in out and "AWS email_ case 1234" in out
