"""The one emulator: what keyguard's own tests emulate, served over the wire by `keyguard emulator`, and the
demo giving the same outcome in process and against it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from keyguard.cli import main
from keyguard.local.emulator import ACCOUNT, emulated_account
from keyguard.local.quotas import filler_policy
from keyguard.local.server import Emulator
from tests.conftest import EVENTS

SECOND = "901234567890"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with Emulator("127.0.0.1", 0) as running:
        yield running.url


def client(url: str, service: str, account: str) -> Any:
    """A client whose 12-digit access key id names its account, as `keyguard emulator` reads it."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=account,
        aws_secret_access_key="testing",
    )


def test_a_12_digit_key_is_an_account_of_its_own(emulator: str) -> None:
    mine, other = client(emulator, "iam", SECOND), client(emulator, "iam", "901234567891")
    mine.create_user(UserName="alice")
    assert client(emulator, "sts", SECOND).get_caller_identity()["Account"] == SECOND
    assert [u["UserName"] for u in mine.list_users()["Users"]] == ["alice"]
    assert other.list_users()["Users"] == []  # a rehearsal never meets another's users


def test_users_permissions_boundaries_over_the_wire(emulator: str) -> None:
    iam = client(emulator, "iam", "901234567892")
    iam.create_user(UserName="bob")
    arn = iam.create_policy(PolicyName="deny-all", PolicyDocument=json.dumps(_deny()))["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName="bob", PermissionsBoundary=arn)
    assert iam.get_user(UserName="bob")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    iam.delete_user_permissions_boundary(UserName="bob")
    assert "PermissionsBoundary" not in iam.get_user(UserName="bob")["User"]


def test_iam_quotas_over_the_wire(emulator: str) -> None:
    iam = client(emulator, "iam", "901234567893")
    iam.create_user(UserName="carol")
    iam.put_user_policy(UserName="carol", PolicyName="fill", PolicyDocument=filler_policy(2000))
    with pytest.raises(ClientError) as refused:
        iam.put_user_policy(UserName="carol", PolicyName="more", PolicyDocument=filler_policy(200))
    assert refused.value.response["Error"]["Code"] == "LimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert iam.list_user_policies(UserName="carol")["PolicyNames"] == ["fill"]  # the refused write changed nothing


def test_lookup_events_from_the_accounts_own_history(emulator: str) -> None:
    account = "901234567894"
    record = {
        "eventTime": "2026-12-01T10:00:00Z",
        "eventID": "0b4e1f7e-0000-4000-8000-000000000001",
        "eventName": "ListBuckets",
        "eventSource": "s3.amazonaws.com",
        "awsRegion": "eu-west-1",
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "alice"},
    }
    assert _post(emulator, "cloudtrail", {"account": account, "records": [record]}) == {"added": 1}
    trail = boto3.client(
        "cloudtrail", endpoint_url=emulator, region_name="eu-west-1", aws_access_key_id=account,
        aws_secret_access_key="testing",
    )  # fmt: skip
    wanted = [{"AttributeKey": "AccessKeyId", "AttributeValue": "AKIAIOSFODNN7EXAMPLE"}]
    found = trail.lookup_events(LookupAttributes=wanted)["Events"]
    assert [json.loads(e["CloudTrailEvent"])["eventID"] for e in found] == [record["eventID"]]
    assert client(emulator, "cloudtrail", account).lookup_events(LookupAttributes=wanted)["Events"] == []  # us-east-1
    other = "901234567895"
    assert client(emulator, "cloudtrail", other).lookup_events()["Events"] == []  # another account's history
    assert _post(emulator, "cloudtrail/forget", {"account": account, "keys": ["AKIAIOSFODNN7EXAMPLE"]}) == {
        "dropped": 1
    }
    assert trail.lookup_events(LookupAttributes=wanted)["Events"] == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("cloudtrail", {"account": "12345", "records": []}, 400),
        ("cloudtrail", {"account": ACCOUNT, "records": [{"no": "time"}]}, 400),
        ("cloudtrail", {"records": []}, 400),
        ("cloudtrail/forget", {"account": ACCOUNT, "keys": "AKIA"}, 400),
        ("nothing-here", {}, 404),
    ],
)
def test_the_emulators_own_endpoints_refuse_bad_input(emulator: str, path: str, body: dict, status: int) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(emulator, path, body)
    assert refused.value.code == status
    assert "error" in json.loads(refused.value.read())


def test_a_plain_aws_endpoint_cannot_hold_a_history_and_says_so(emulator: str) -> None:
    """An emulator without keyguard's endpoints (moto_server, LocalStack) is named, not silently wrong."""
    from moto.server import ThreadedMotoServer

    from keyguard.errors import KeyguardError
    from tests.operator.conftest import free_port

    port = free_port()
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    plain.start()
    try:
        with (
            emulated_account(f"http://127.0.0.1:{port}") as env,
            pytest.raises(KeyguardError, match="keyguard emulator"),
        ):
            env.add_history([{"eventTime": "2026-12-01T10:00:00Z"}])
    finally:
        plain.stop()


SAMPLE = (
    "guardduty-iam-user.json",
    "guardduty-attack-sequence-iam.json",  # its actors name the account: re-homed over the wire too
    "cloudtrail-create-access-key.json",
    "cloudtrail-aws-quarantine-inline.json",
    "trustedadvisor-exposed-access-keys.json",
    "tamper-update-access-key.json",
    "tamper-unsubscribe.json",
    "tamper-disable-key.json",
)


@pytest.mark.parametrize("name", SAMPLE)
def test_the_same_outcome_in_process_and_over_the_wire(emulator: str, name: str, capsys: Any) -> None:
    """Each as events/expected/outcomes.json says, both ways; `make test` runs every events/ file both ways."""
    expected = json.loads((EVENTS / "expected" / "outcomes.json").read_text())[name]
    outcomes = []
    for extra in ([], ["--endpoint-url", emulator]):
        code = main(["invoke", str(EVENTS / name), "--format", "json", *extra])
        out = capsys.readouterr().out
        doc = json.loads(out)  # exactly one JSON document on stdout: the functions' logs went to stderr
        assert code == 0, doc
        (event,) = doc["events"]
        assert not event["unexpected"], event["why"]
        outcomes.append(event["outcomes"])
        if extra:
            assert event["notRemoved"] == [], event["notRemoved"]  # what the run seeded is gone again
    assert outcomes == [expected, expected]


def test_an_event_that_ends_otherwise_than_expected_is_named_and_fails(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "expected").mkdir()
    (tmp_path / "guardduty-sample.json").write_text((EVENTS / "guardduty-sample.json").read_text())
    wrong = {"guardduty-sample.json": {"GuardDutyFunction": ["contained"]}}
    (tmp_path / "expected" / "outcomes.json").write_text(json.dumps(wrong))
    code = main(["demo", "--events", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 event(s) run in process; 1 with an unexpected result." in out
    assert "UNEXPECTED: guardduty-sample.json: outcomes {'GuardDutyFunction': ['sample-finding']}" in out


def test_demo_as_json_is_one_document_and_the_logs_go_to_stderr(capsys: Any) -> None:
    code = main(["invoke", str(EVENTS / "tamper-update-access-key.json"), "--format", "json", "--verbose"])
    captured = capsys.readouterr()
    assert code == 0
    json.loads(captured.out)
    logged = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert any(entry.get("outcome") == "re-contained" for entry in logged)  # the watch's log line, on stderr


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback emulator
        f"{url}/_keyguard/{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def _deny() -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
