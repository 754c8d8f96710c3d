"""The AWS CLI's habits work, against moto_server over the wire (--endpoint-url): `--output json|table|text`
(with `--format` the same option), choices in any case, key ids pasted with whitespace, `history --key`."""

from __future__ import annotations

import json

import pytest

from tests.operator.inventory import snapshot, user_with_keys
from tests.operator.test_operator_truth import _client, deploy_stack


@pytest.fixture
def held(moto_endpoint: str, cli) -> tuple[str, dict[str, list[str]]]:
    """A deployed stack; alice's first key contained (bob's other key too), alice released."""
    from keyguard.local import boundary

    boundary.install()  # user permissions boundaries on this in-process server (moto has none)
    url = moto_endpoint
    deploy_stack(url)
    iam = _client(url, "iam")
    keys = {"alice": user_with_keys(iam, "alice", 2), "bob": user_with_keys(iam, "bob")}
    assert cli("--endpoint-url", url, "contain", "--key", keys["alice"][0], "--reason", "case 1", "--yes")[0] == 0
    return url, keys


def test_output_is_the_same_option_as_format_and_text_is_the_plain_table(held, cli) -> None:
    url, _ = held
    code, by_format, _ = cli("--endpoint-url", url, "status", "--format", "json")
    code2, by_output, _ = cli("--endpoint-url", url, "status", "--output", "json")
    assert code == code2 == 0
    one, other = json.loads(by_format), json.loads(by_output)
    assert {**one, "at": None} == {**other, "at": None}
    assert [h["principal"]["name"] for h in other["held"]] == ["alice"]

    code, out, _ = cli("--endpoint-url", url, "--output", "text", "status")
    assert code == 0 and out.startswith("keyguard holds 1 in quarantine:") and "\x1b[" not in out
    code, out, _ = cli("--endpoint-url", url, "status", "--output", "JSON")  # any case
    assert code == 0 and json.loads(out)["command"] == "status"
    code, out, _ = cli("--endpoint-url", url, "status", "--user", "nobody", "--output", "json")
    assert code == 2 and json.loads(out)["error"] == "no IAM user named 'nobody' in this account"


def test_choices_are_matched_in_any_case(held, cli) -> None:
    url, _ = held
    lower = cli("--endpoint-url", url, "audit", "--regions", "us-east-1", "--fail-on", "low")
    upper = cli("--endpoint-url", url, "audit", "--regions", "us-east-1", "--fail-on", "LOW")
    assert lower[0] == upper[0] == 1  # alice's two active keys are a finding
    assert "at or above low (--fail-on)" in upper[2]


def test_a_key_id_pasted_with_whitespace_is_the_key(held, cli) -> None:
    url, keys = held
    (bobs,) = keys["bob"]
    code, _, err = cli("--endpoint-url", url, "contain", "--key", f" {bobs}\n", "--yes")
    assert code == 0, err
    assert snapshot(_client(url, "iam"), ["bob"])["user/bob"]["keys"] == {bobs: "Inactive"}
    code, out, _ = cli("--endpoint-url", url, "status", "--key", f"{bobs} ", "--format", "json")
    assert code == 0 and json.loads(out)["principal"]["name"] == "bob"


def test_history_of_one_key(held, cli) -> None:
    url, keys = held
    (bobs,) = keys["bob"]
    assert cli("--endpoint-url", url, "contain", "--key", bobs, "--yes")[0] == 0
    assert cli("--endpoint-url", url, "release", "--user", "alice", "--reason", "rotated", "--yes")[0] == 0

    code, out, _ = cli("--endpoint-url", url, "history", "--key", keys["alice"][0], "--format", "json")
    entries = json.loads(out)["entries"]
    assert code == 0 and [(e["event"], e["principal"]["name"]) for e in entries] == [
        ("contained", "alice"),
        ("released", "alice"),
    ]
    code, out, _ = cli("--endpoint-url", url, "history", "--key", bobs, "--format", "json")
    assert code == 0 and [(e["event"], e["principal"]["name"]) for e in json.loads(out)["entries"]] == [
        ("contained", "bob")
    ]
    code, out, _ = cli("--endpoint-url", url, "history", "--key", keys["alice"][1], "--format", "json")
    assert code == 0 and json.loads(out)["entries"] == []  # alice's other key was never contained
