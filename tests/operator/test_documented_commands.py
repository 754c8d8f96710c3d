"""docs/operator.md and the README match the code: every `keyguard` command in their code blocks runs
against moto_server, in the order the documents give, and exits as documented.

A command's expected exit code is 0 unless its line ends with `# exit N`. Sample sessions (```console
blocks, `$ keyguard ...`) show a question: they are answered "n" and must exit 2 (declined). Placeholders
get real values: `AKIA...` and `AKIAIOSFODNN7EXAMPLE` the key of user alice, `"$KEY"` too, and the
endpoint http://127.0.0.1:5000 the test's moto_server. A command without --endpoint-url gets it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "docs" / "operator.md", REPO / "README.md"]
FENCE = re.compile(r"^```(\w*)\s*$")
COMMAND = re.compile(r"^(\$ )?(\.venv/bin/)?keyguard(\s|$)")
# `keyguard emulator` serves until Ctrl-C: the test runs every other command against one (test_emulator.py)
SERVES = re.compile(r"^(\$ )?(\.venv/bin/)?keyguard emulator\b")


def documented_commands(path: Path) -> list[tuple[str, str, int]]:
    """(block language, command line, expected exit code) for each keyguard line in the file's code blocks."""
    out, language, inside, continued = [], "", False, ""
    for raw in path.read_text().splitlines():
        fence = FENCE.match(raw.strip())
        if fence:
            inside, language = (not inside), fence.group(1)
            continue
        if not inside:
            continue
        line = continued + raw.strip()
        if line.endswith("\\"):
            continued = line[:-1] + " "
            continue
        continued = ""
        if not COMMAND.match(line) or SERVES.match(line):
            continue
        expected = 2 if line.startswith("$ ") else 0
        found = re.search(r"#\s*exit\s+(\d+)\s*$", line)
        if found:
            expected = int(found.group(1))
        out.append((language, line, expected))
    return out


def test_the_documents_hold_commands() -> None:
    counts = {p.name: len(documented_commands(p)) for p in DOCS}
    assert counts["operator.md"] >= 15, counts


def _argv(line: str, key: str, url: str) -> list[str]:
    line = line.removeprefix("$ ").replace("http://127.0.0.1:5000", url)
    line = re.sub(r"\s#.*$", "", line)
    line = line.replace('"$KEY"', key).replace("$KEY", key)
    line = line.replace("AKIA...", key).replace("AKIAIOSFODNN7EXAMPLE", key)
    argv = shlex.split(line)
    assert argv[0].endswith("keyguard")
    return argv[1:]


@pytest.fixture
def rehearsal(moto_endpoint):
    """The account the documents rehearse on: the stack's settings parameter, alice with a key (as
    docs/operator.md makes it), bob, and the role web-app-role."""
    from tests.operator.conftest import deploy_settings

    # the stack's settings where the README deploys it: contain and release act only with a stack
    deploy_settings(boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1"))
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    iam.create_user(UserName="bob")
    iam.create_access_key(UserName="bob")
    iam.create_role(
        RoleName="web-app-role",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )
    return moto_endpoint, key


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_documented_command_runs_as_documented(rehearsal, cli, monkeypatch, doc) -> None:
    url, key = rehearsal
    monkeypatch.chdir(REPO)
    ran = []
    for _, line, expected in documented_commands(doc):
        argv = _argv(line, key, url)
        if "--endpoint-url" not in argv and argv[0] not in ("completion",) and "--version" not in argv:
            argv = [*argv, "--endpoint-url", url]
        code, out, err = cli(*argv, answers="n\n")
        assert "Traceback" not in err and "Traceback" not in out, line
        assert code == expected, f"{doc.name}: `{line}` exited {code}, documented {expected}: {err.strip()}"
        if code:
            assert err.strip() or out.strip(), line
        ran.append(line)
    assert ran or doc.name == "README.md"
