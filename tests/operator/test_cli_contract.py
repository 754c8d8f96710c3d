"""Issue 13, items 7-16: the keyguard command behaves like the tools people know. Each test runs the command
as a person or a script would (in-process, or as a process against moto_server) and checks IAM after it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.faults import Fault
from tests.operator.conftest import deploy_settings
from tests.operator.inventory import snapshot, user_with_keys

REPO = Path(__file__).resolve().parents[2]
KEYGUARD = [sys.executable, "-m", "keyguard.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}  # this tree's code, whatever is installed


@pytest.fixture
def alice(aws, monkeypatch):
    """alice with two keys, bob with one; the commands use these clients."""
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    deploy_settings(aws.get("ssm"))  # a deployed stack (no ledger, topic or boundary): contain/release act
    keys = user_with_keys(aws.iam, "alice", 2)
    user_with_keys(aws.iam, "bob")
    return aws, keys


def state(aws):
    return snapshot(aws.iam, ["alice", "bob"])


def one_line(err: str) -> str:
    assert "Traceback" not in err and "Error:" not in err.split("keyguard:", 1)[0]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------ 7. stack settings


def _stack(aws, name="keyguard", **values):
    deploy_settings(aws.get("ssm"), name, **values)


def test_contain_refuses_a_principal_the_deployed_stack_protects(alice, cli) -> None:
    aws, (leaked, _) = alice
    _stack(aws, protectedPrincipals="break-glass,alice")
    before = state(aws)
    code, _, err = cli("contain", "--key", leaked, "--yes")
    assert code == 2 and "alice is a protected principal" in one_line(err)
    assert "stack keyguard in us-east-1 (SSM /keyguard/keyguard/settings" in err
    assert state(aws) == before


def test_stack_chosen_with_dash_dash_stack(alice, cli) -> None:
    aws, (leaked, _) = alice
    _stack(aws, "keyguard-prod", protectedPrincipals="alice")
    assert cli("contain", "--key", leaked, "--yes", "--stack", "keyguard-prod")[0] == 2
    code, _, err = cli("contain", "--key", leaked, "--yes", "--stack", "nope")
    assert code == 2 and "no keyguard stack named 'nope'" in err
    assert state(aws)["user/alice"]["keys"][leaked] == "Active"


def test_the_stack_topic_is_told(alice, cli) -> None:
    aws, (leaked, _) = alice
    topic = aws.get("sns").create_topic(Name="keyguard-topic")["TopicArn"]
    _stack(aws, topicArn=topic)
    code, out, _ = cli("contain", "--key", leaked, "--yes", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["topicArn"] == topic and doc["keys"][0]["notification"] == f"sent to {topic}"
    assert doc["stack"]["parameter"] == "/keyguard/keyguard/settings"


def test_template_publishes_the_settings_the_cli_reads() -> None:
    from keyguard.local.emulator import load_template
    from keyguard.operator.stack import ENVIRONMENT, PARAMETER

    resource = load_template()["Resources"]["SettingsParameter"]["Properties"]
    assert resource["Name"] == PARAMETER.format(stack="${AWS::StackName}")
    text, names = resource["Value"]
    filled = re.sub(r"\$\{[^}]+\}", "x", text)
    doc = json.loads(filled)
    assert set(doc) - {"keyguard", "stack"} <= set(ENVIRONMENT)
    assert {"mode", "protectedPrincipals", "ownRoles", "topicArn"} <= set(doc)
    assert set(names) == {"OwnRoles"}


# ------------------------------------------------------------------------------------------ 8. timeouts


@pytest.fixture
def silent_endpoint():
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(20)
    held, stop = [], threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    server.close()


def test_a_silent_endpoint_fails_fast_naming_the_slow_call(silent_endpoint, monkeypatch) -> None:
    from tests.operator.conftest import clean_environment

    clean_environment(monkeypatch)
    run = subprocess.run(  # noqa: S603 - our own command
        [*KEYGUARD, "status", "--user", "alice", "--endpoint-url", silent_endpoint, "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,  # today's main hangs here for minutes
        cwd=REPO,
        env=_env(),
        check=False,
    )
    assert run.returncode == 2
    line = one_line(run.stderr)
    assert re.fullmatch(
        r"keyguard: timed out waiting for [a-z0-9]+:[A-Za-z]+ at http://127\.0\.0\.1:.*\(try --timeout\)", line
    )


# ------------------------------------------------------------------------------------------ 9. exit codes


def test_exit_codes_are_one_table_in_code_readme_and_docs() -> None:
    from keyguard.cli import EXIT_CODES

    assert set(EXIT_CODES) == {0, 1, 2, 130}
    for doc in (REPO / "README.md", REPO / "docs" / "operator.md"):
        text = doc.read_text()
        for code in (0, 1, 2):
            assert re.search(rf"\|\s*`{code}`\s*\|", text), f"{doc.name} has no row for exit code {code}"
    ops = (REPO / "docs" / "operator.md").read_text()
    for phrase in ("declined", "every change refused", "--fail-on", "notification"):
        assert phrase in ops


def test_declined_and_unanswered_exit_2(alice, cli) -> None:
    aws, (leaked, _) = alice
    before = state(aws)
    assert cli("contain", "--key", leaked, answers="n\n")[0] == 2
    assert cli("contain", "--key", leaked, answers="")[0] == 2
    assert state(aws) == before


def test_every_change_refused_exits_2_and_part_done_exits_1(alice, cli) -> None:
    aws, (leaked, _) = alice
    fault = Fault(aws.iam, "UpdateAccessKey", "AccessDenied", status=403)
    Fault(aws.iam, "PutUserPolicy", "AccessDenied", status=403)
    code, _, err = cli("contain", "--key", leaked, "--yes")
    assert code == 2 and "FAILED" in one_line(err)
    fault.remove()
    code, _, err = cli("contain", "--key", leaked, "--yes")
    assert code == 1 and "FAILED (quarantine-user" in one_line(err)


def test_wrong_confirm_reactivate_exits_2(alice, cli) -> None:
    aws, (new, other) = alice
    aws.iam.update_access_key(UserName="alice", AccessKeyId=new, Status="Inactive")
    aws.iam.put_user_policy(
        UserName="alice",
        PolicyName="keyguard-revoke-sessions",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
        ),
    )
    before = state(aws)
    code, _, err = cli("release", "--user", "alice", "--reactivate", new, "--confirm-reactivate", other, "--yes")
    assert code == 2 and f"--confirm-reactivate {other} is not {new}" in one_line(err)
    assert state(aws) == before


def test_a_notification_that_fails_exits_1(alice, cli) -> None:
    aws, (leaked, _) = alice
    topic = aws.get("sns").create_topic(Name="t")["TopicArn"]
    Fault(aws.sns(topic), "Publish", "KMSDisabledException", status=400)
    code, _, err = cli("contain", "--key", leaked, "--yes", "--topic-arn", topic)
    assert code == 1 and "notification" in one_line(err)
    assert state(aws)["user/alice"]["keys"][leaked] == "Inactive"


# ------------------------------------------------------------------------------------------ 10. stdin


@pytest.mark.parametrize("redirect", ["<&-", "</dev/null"])
def test_closed_or_empty_stdin_says_pass_yes(moto_endpoint, redirect) -> None:
    import boto3

    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    deploy_settings(boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1"))
    (key,) = user_with_keys(iam, "alice")
    command = " ".join([*KEYGUARD, "contain", "--key", key, "--endpoint-url", moto_endpoint])
    run = subprocess.run(  # noqa: S603 - our own command
        ["bash", "-c", f"{command} {redirect}"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=_env(),
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "AttributeError" not in run.stderr
    assert "pass --yes" in run.stderr.strip().splitlines()[-1]
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["Status"] == "Active"


# ------------------------------------------------------------------------------------------ 11. no Python internals


def test_invoke_of_a_json_list_is_one_plain_line(tmp_path, cli) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    code, _, err = cli("invoke", str(path))
    assert code == 2 and "not one EventBridge event (a JSON list)" in one_line(err)
    assert "object has no attribute" not in err


def test_an_endpoint_that_is_not_a_url_is_refused(cli) -> None:
    code, _, err = cli("--endpoint-url", "notaurl", "status")
    assert code == 2 and "not an http(s) URL: 'notaurl'" in one_line(err)
    assert "ValueError" not in err and "Invalid endpoint" not in err


@pytest.fixture
def web_page():
    """An HTTP server that answers every request with a web page, as a non-AWS endpoint would."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>hello</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_non_aws_endpoint_is_named_as_such(web_page, cli, monkeypatch) -> None:
    from tests.operator.conftest import clean_environment

    clean_environment(monkeypatch)
    code, _, err = cli("--endpoint-url", web_page, "status")
    line = one_line(err)
    assert code == 2 and "is it an AWS-compatible endpoint" in line
    assert "ResponseParserError" not in line and "Unable to parse" not in line


# ------------------------------------------------------------------------------------------ 12. output formats


def test_status_json_has_every_fact_in_one_key_style(alice, cli) -> None:
    _aws, (leaked, _) = alice
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    code, out, _ = cli("status", "--user", "alice", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "status"
    assert set(doc) == {
        "keyguard", "command", "at", "principal", "held", "hold", "policies", "otherPolicies", "containment",
        "leakedKeys", "lastRelease", "boundary", "ledger", "keys", "stack", "note",
    }  # fmt: skip
    keys = json.dumps(doc)
    assert not re.search(r'"[a-z]+-[a-z-]+":', keys), "every key is camelCase"
    assert doc["containment"]["containedAt"] and doc["leakedKeys"][0]["accessKeyId"] == leaked


def test_contain_json_without_yes_shows_the_plan(alice, cli) -> None:
    _aws, (leaked, _) = alice
    code, out, err = cli("contain", "--key", leaked, "--format", "json", answers="n\n")
    doc = json.loads(out)
    assert code == 2 and doc["outcome"] == "declined"
    plan = [p["action"] for p in doc["keys"][0]["plan"]]
    assert plan[:2] == ["deactivate-key", "quarantine-user"] and plan[-1] == "record"
    assert "deactivate-key" in err  # the plan beside the question


@pytest.mark.parametrize(
    "argv",
    [
        ["contain", "--key", "AKIAIOSFODNN7EXAMPLE", "--format", "csv"],
        ["release", "--user", "alice", "--format", "csv"],
        ["invoke", "events/guardduty-iam-user.json", "--format", "csv"],
        ["status", "--format", "ocsf"],
    ],
)
def test_a_format_that_does_not_apply_is_refused(cli, argv) -> None:
    code, out, err = cli(*argv)
    assert code == 2 and "does not apply to" in one_line(err) and out == ""


def test_errors_are_json_in_json_mode(alice, cli) -> None:
    code, out, err = cli("status", "--user", "nobody", "--format", "json")
    assert code == 2 and err == ""
    assert json.loads(out) == {
        "keyguard": 1,
        "command": "status",
        "error": "no IAM user named 'nobody' in this account",
        "exitCode": 2,
    }
    code, out, err = cli("--format", "json", "contain", "--key", "AKIA123")
    assert code == 2 and json.loads(out)["error"].startswith("'AKIA123' is not an access key id") and err == ""
    code, out, _ = cli("--format", "json", "contain")  # a usage error
    assert code == 2 and "--key" in json.loads(out)["error"]


def test_invoke_json_is_one_document(cli) -> None:
    code, out, _ = cli("invoke", str(REPO / "events" / "guardduty-low-severity.json"), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "invoke"
    (event,) = doc["events"]
    assert event["routedTo"] == ["GuardDutyFunction"]
    (notice,) = event["invocations"][0]["notifications"]
    assert notice["document"]["outcome"] == "below-threshold"


# ------------------------------------------------------------------------------------------ 13. --reason verbatim


def test_reason_is_kept_verbatim_and_only_the_tag_mirror_is_sanitised(alice, cli) -> None:
    aws, (leaked, _) = alice
    code, out, _ = cli("contain", "--key", leaked, "--reason", "rotated, case 1234", "--yes", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["reason"] == "rotated, case 1234"
    assert "rotated, case 1234" in doc["keys"][0]["response"]["findingType"]
    assert "rotated_ case 1234" in state(aws)["user/alice"]["tags"]["keyguard:reason"]
    code, out, _ = cli("release", "--user", "alice", "--reason", "rotated, case 1234", "--yes", "--format", "json")
    assert code == 0 and json.loads(out)["reason"] == "rotated, case 1234"


def test_a_reason_on_two_lines_is_refused(alice, cli) -> None:
    _aws, (leaked, _) = alice
    code, _, err = cli("contain", "--key", leaked, "--reason", "a\nb", "--yes")
    assert code == 2 and "one line" in one_line(err)


# ------------------------------------------------------------------------------------------ 14. inputs first


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("not-an-arn", "is not an SNS topic ARN"),
        ("arn:aws:sns:us-east-1:123456789012:missing", "does not exist: nothing was changed"),
    ],
)
def test_topic_is_checked_before_the_first_change(alice, cli, topic, message) -> None:
    aws, (leaked, _) = alice
    before = state(aws)
    code, _, err = cli("contain", "--key", leaked, "--yes", "--topic-arn", topic)
    assert code == 2 and message in one_line(err)
    assert state(aws) == before
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    held = state(aws)
    code, _, err = cli("release", "--user", "alice", "--yes", "--topic-arn", topic)
    assert code == 2 and message in one_line(err)
    assert state(aws) == held


def test_every_key_is_checked_before_the_first_change(alice, cli) -> None:
    aws, (leaked, _) = alice
    before = state(aws)
    code, _, err = cli("contain", "--key", leaked, "--key", "AKIAIOSFODNN7EXAMPLE", "--yes")
    assert code == 2 and "AKIAIOSFODNN7EXAMPLE is not in this account" in one_line(err)
    assert state(aws) == before


def test_several_keys_one_question(alice, cli) -> None:
    aws, (leaked, other) = alice
    bob = aws.iam.list_access_keys(UserName="bob")["AccessKeyMetadata"][0]["AccessKeyId"]
    code, _out, err = cli("contain", "--key", leaked, "--key", bob, answers="y\n")
    assert code == 0 and err.count("[y/N]") == 1
    after = state(aws)
    assert after["user/alice"]["keys"] == {leaked: "Inactive", other: "Active"}
    assert after["user/bob"]["keys"] == {bob: "Inactive"}


# ------------------------------------------------------------------------------------------ 16. arguments


def _actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {a}", h) for a, h in _actions(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield "/".join(action.option_strings) or action.dest, action.help


def test_every_argument_has_help() -> None:
    from keyguard.cli import build_parser

    missing = [name for name, text in _actions(build_parser()) if not text]
    assert missing == []


COMMANDS = [
    ["status"],
    ["contain", "--key", "AKIAIOSFODNN7EXAMPLE"],
    ["release", "--user", "alice"],
    ["audit"],
    ["history"],
    ["demo"],
    ["invoke", "events/x.json"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_global_options_before_and_after_every_command(argv) -> None:
    from keyguard.cli import build_parser

    glob = ["--profile", "p", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:1", "--format", "json",
            "--stack", "s", "--timeout", "3", "--no-color"]  # fmt: skip
    before = vars(build_parser().parse_args([*glob, *argv]))
    after = vars(build_parser().parse_args([*argv, *glob]))
    assert before == after
    assert (after["profile"], after["region"], after["format"], after["stack"], after["timeout"]) == (
        "p",
        "eu-west-1",
        "json",
        "s",
        3.0,
    )


def test_version(capsys) -> None:
    from keyguard.cli import main

    assert main(["--version"]) == 0
    assert re.fullmatch(r"keyguard \d+\.\d+\.\d+\n", capsys.readouterr().out)


@pytest.mark.parametrize(("shell", "mark"), [("bash", "complete -o"), ("zsh", "#compdef keyguard")])
def test_shell_completion(cli, shell, mark) -> None:
    code, out, _ = cli("completion", shell)
    assert code == 0 and mark in out and "--reactivate" in out and "contain" in out


def test_interrupted_exits_130_with_one_line(alice, cli, monkeypatch) -> None:
    from keyguard.operator import commands

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setitem(commands.COMMANDS, "status", interrupted)
    code, _, err = cli("status")
    assert code == 130 and "interrupted" in one_line(err)
