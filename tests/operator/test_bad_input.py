"""Bad input and a broken environment: one line on stderr naming the problem, a non-zero exit code,
no traceback, and nothing changed."""

from __future__ import annotations

import pytest

from tests.operator.conftest import deploy_settings, free_port
from tests.operator.inventory import snapshot, user_with_keys

UNKNOWN_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example id: in no account


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keyguard: ")
    return lines[0]


@pytest.fixture
def alice(aws, monkeypatch):
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    deploy_settings(aws.get("ssm"))  # a deployed stack (no ledger, topic or boundary): contain/release act
    keys = user_with_keys(aws.iam, "alice", 2)
    return aws, keys


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["contain", "--key", "AKIA123", "--yes"], "'AKIA123' is not an access key id"),
        (["contain", "--key", "akiaiosfodnn7example", "--yes"], "is not an access key id"),
        (["contain", "--key", "ASIAIOSFODNN7EXAMPLE", "--yes"], "is a temporary (ASIA) key: IAM cannot name its owner"),
        (["contain", "--key", UNKNOWN_KEY, "--yes"], f"access key {UNKNOWN_KEY} is not in this account"),
        (["status", "--key", "AKIA-not-a-key"], "is not an access key id"),
        (["status", "--key", UNKNOWN_KEY], f"access key {UNKNOWN_KEY} is not in this account"),
        (["status", "--user", "nobody"], "no IAM user named 'nobody' in this account"),
        (["status", "--user", "bad name!"], "'bad name!' is not a valid IAM user name"),
        (["status", "--role", "no-such-role"], "no IAM role named 'no-such-role' in this account"),
        (["release", "--user", "nobody", "--yes"], "no IAM user named 'nobody' in this account"),
        (["release", "--role", "no-such-role", "--yes"], "no IAM role named 'no-such-role' in this account"),
        (["release", "--user", "alice", "--reactivate", "AKIA123", "--yes"], "'AKIA123' is not an access key id"),
        (
            ["release", "--user", "alice", "--reactivate", UNKNOWN_KEY, "--yes"],
            f"{UNKNOWN_KEY} is not an access key of",
        ),
        (
            ["release", "--role", "r", "--reactivate", UNKNOWN_KEY, "--yes"],
            "--reactivate applies to users' access keys",
        ),
        (
            ["release", "--user", "alice", "--confirm-reactivate", UNKNOWN_KEY],
            "--confirm-reactivate needs --reactivate",
        ),
        (["release", "--user", "alice", "--reason", "x" * 201, "--yes"], "--reason is limited to 200 characters"),
        (["audit", "--regions", "us-east-1,mars-1"], "not AWS region names: mars-1"),
        (["audit", "--regions", " , "], "--regions names no region"),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(alice, cli, argv, message) -> None:
    aws, _ = alice
    before = snapshot(aws.iam, ["alice"])
    code, out, err = cli(*argv)
    assert code == 2
    assert message in one_line(err)
    assert out == ""
    assert snapshot(aws.iam, ["alice"]) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["contain"], "the following arguments are required: --key"),
        (["release", "--reason", "x"], "one of the arguments --user --role is required"),
        (["status", "--user", "a", "--key", UNKNOWN_KEY], "not allowed with argument --user"),
        (["audit", "--max-key-age", "0"], "days must be within 1..36500, got 0"),
        (["audit", "--unused-days", "ninety"], "not a number of days: 'ninety'"),
        (["status", "--format", "xml"], "invalid choice: 'xml'"),
        (["rotate"], "invalid choice: 'rotate'"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, message) -> None:
    from keyguard.cli import main

    assert main(argv) == 2
    assert message in one_line(capsys.readouterr().err)


def test_no_credentials(cli, monkeypatch, tmp_path) -> None:
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for argv in (["status"], ["audit"], ["contain", "--key", UNKNOWN_KEY, "--yes"], ["release", "--user", "a"]):
        code, out, err = cli("--region", "us-east-1", *argv)
        assert (code, out) == (2, "")
        assert one_line(err) == (
            "keyguard: no AWS credentials found: use --profile NAME, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        )


def test_the_operator_commands_do_not_invent_credentials(cli, monkeypatch, tmp_path) -> None:
    """Unlike `keyguard demo`, which fakes credentials for its emulator: the environment stays as it was."""
    import os

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cli("--endpoint-url", f"http://127.0.0.1:{free_port()}", "status")
    assert "AWS_ACCESS_KEY_ID" not in os.environ


def test_unknown_profile(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    code, _, err = cli("--profile", "no-such-profile", "status")
    assert code == 2
    assert one_line(err) == "keyguard: AWS profile 'no-such-profile' not found in ~/.aws/config or ~/.aws/credentials"


def test_profile_after_the_command_is_the_same_option(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    code, _, err = cli("status", "--profile", "no-such-profile")
    assert code == 2 and "'no-such-profile' not found" in err


@pytest.mark.parametrize("argv", [["status"], ["audit"], ["contain", "--key", UNKNOWN_KEY, "--yes"]])
def test_unreachable_endpoint(cli, monkeypatch, argv) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli("--endpoint-url", url, "--region", "us-east-1", *argv)
    assert (code, out) == (2, "")
    assert one_line(err) == f"keyguard: cannot reach {url}/: no network, or the endpoint is down"


def test_rejected_credentials(alice, cli) -> None:
    from tests.faults import Fault

    aws, _ = alice
    Fault(aws.iam, "GetUser", "InvalidClientTokenId", status=403)
    code, _, err = cli("status", "--user", "alice")
    assert code == 2
    assert one_line(err) == (
        "keyguard: AWS rejected the credentials (InvalidClientTokenId): "
        "check the profile or the keys in the environment"
    )
