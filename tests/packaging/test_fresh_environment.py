"""Every handler the template names, run where only the deployment package exists.

A virtual environment holds src/requirements.txt and the boto3/botocore the Lambda python3.13 runtime
provides (pinned to this venv's versions: AWS publishes no fixed SDK version per runtime, it "depends on
the runtime version and your AWS Region"). The code is copied from src/ as `sam build` packages it
(CodeUri: src/) into a task folder, the only thing on PYTHONPATH. Each function then gets one real-shaped
event, in a subprocess of that environment, against `keyguard emulator` on 127.0.0.1 seeded by
keyguard.local.emulator from this process. The in-process suites cannot see a missing dependency (moto,
yaml, rich are all installed where they run); this test can: on the code before keyguard.patterns, the
tamper watch and the self-check fail here with ModuleNotFoundError: No module named 'moto'.

The environment is built once and kept under .pytest_cache/ (git-ignored), keyed by a hash of
src/requirements.txt, the SDK versions and the Python it uses: about 30 s the first time, nothing after.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from keyguard.local import emulator
from tests.conftest import load_event
from tests.organization.cfn import REPO, Rendered, load

pytestmark = pytest.mark.packaging

SRC = REPO / "src"
ACCOUNT = "123456789012"  # moto's default account, and the one in every function ARN below
REGION = "us-east-1"
STACK = "keyguard"
FORBIDDEN_HERE = ("moto", "pytest", "hypothesis", "rich", "yaml", "jsonschema", "shtab")

SERVER = "import sys; from keyguard.cli import main; sys.exit(main(sys.argv[1:]))"  # `keyguard emulator`

# Runs inside the fresh environment: import the handler as Lambda's runtime does, call it once.
RUNNER = r"""
import importlib, importlib.util, json, sys, uuid
leaked = [m for m in sys.argv[3].split(",") if importlib.util.find_spec(m) is not None]
if leaked:
    sys.exit(f"the fresh environment has dev-only packages: {leaked}")
class Context:
    function_name = sys.argv[2]
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{sys.argv[2]}"
    memory_limit_in_mb = 256
    function_version = "$LATEST"
    aws_request_id = str(uuid.uuid4())
    log_group_name = f"/aws/lambda/{sys.argv[2]}"
    log_stream_name = "fresh-environment"
    def get_remaining_time_in_millis(self):
        return 60000
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
result = handler(json.load(sys.stdin), Context())
print("KEYGUARD-RESULT " + json.dumps(result, default=str))
"""


def _runtime_python() -> str:
    """The functions' runtime is python3.13; use it when this machine has one that runs."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    found = shutil.which("python3.13")
    for candidate in [*map(str, candidates), *([found] if found else [])]:
        if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:  # noqa: S603
            return candidate
    return sys.executable


@pytest.fixture(scope="session")
def lambda_venv() -> Path:
    python = _runtime_python()
    version = subprocess.run(  # noqa: S603
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    sdk = [f"boto3=={metadata.version('boto3')}", f"botocore=={metadata.version('botocore')}"]
    key = hashlib.sha256(((SRC / "requirements.txt").read_text() + " ".join(sdk) + version).encode()).hexdigest()
    venv = REPO / ".pytest_cache" / f"lambda-venv-{key[:16]}"
    if (venv / ".complete").exists():
        return venv
    building = venv.with_name(f"{venv.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(building)], check=True, timeout=120)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(SRC / "requirements.txt"), *sdk],
        check=True,
        timeout=600,
    )
    (building / ".complete").write_text(f"{python}\n{' '.join(sdk)}\n")
    with contextlib.suppress(OSError):  # another run finished first: use its copy
        building.rename(venv)
    shutil.rmtree(building, ignore_errors=True)
    return venv


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """src/ as `sam build` packages it (CodeUri: src/): the code, without caches or build metadata."""
    task = tmp_path_factory.mktemp("task") / "task"
    shutil.copytree(SRC, task, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "requirements.txt"))
    return task


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    """`keyguard emulator` (moto with users' permissions boundaries, LookupEvents and IAM's quotas) on a free
    loopback port, from this (dev) environment; stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", SERVER, "emulator", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_keyguard/health", timeout=2).close()  # noqa: S310 - loopback
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("keyguard emulator did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture
def account(endpoint: str) -> Iterator[emulator.Environment]:
    """A fresh account on the server (reset), provisioned as the stack is; this process's environment
    restored afterwards (the emulator sets fake credentials and the endpoint)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(request, timeout=120).close()  # noqa: S310 - a reset can take seconds on a loaded machine
    saved = dict(os.environ)
    try:
        with emulator.emulated_account(endpoint, account=ACCOUNT) as env:  # the account the events name
            yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _template() -> dict[str, Any]:
    return load("template.yaml")


def template_functions() -> dict[str, str]:
    """Function logical id -> Handler, for every AWS::Serverless::Function the template names."""
    return {
        lid: res["Properties"]["Handler"]
        for lid, res in _template()["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def stack_environment(function: str, env: emulator.Environment, endpoint: str) -> dict[str, str]:
    """The variables the stack gives the function (Globals plus its own, the template's defaults), with
    the emulated topic, tables and queue in place of the stack's, and nothing else from this process."""
    rendered = Rendered("template.yaml", {}, ACCOUNT, REGION, stack=STACK)
    variables = rendered.value(rendered.doc["Globals"]["Function"]["Environment"]["Variables"])
    own = rendered.resources("AWS::Serverless::Function")[function].get("Environment", {}).get("Variables", {})
    variables.update(own)
    variables.update(
        KEYGUARD_MODE="enforce",
        KEYGUARD_TOPIC_ARN=env.topic_arn,
        KEYGUARD_ALARM_TOPIC_ARN=env.topic_arn,
        KEYGUARD_IDEMPOTENCY_TABLE=env.table,
        KEYGUARD_LEDGER_TABLE=env.ledger_table,
        KEYGUARD_INVESTIGATION_QUEUE_URL=env.investigation_url,
        KEYGUARD_DENY_ALL_POLICY_ARN=env.deny_all_policy_arn,
        KEYGUARD_CHAT_TOPIC_ARN="",
        KEYGUARD_STACK_NAME=STACK,
    )
    return {
        **{k: str(v) for k, v in variables.items()},
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ACCESS_KEY_ID": env.account,  # a 12-digit key id: keyguard emulator answers as that account
        "AWS_SECRET_ACCESS_KEY": "testing",  # the emulator accepts any credentials
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "PYTHONNOUSERSITE": "1",
    }


def run_in_package(
    venv: Path, task: Path, function: str, event: dict[str, Any], env: emulator.Environment, endpoint: str
) -> dict[str, Any]:
    handler = template_functions()[function]
    variables = {**stack_environment(function, env, endpoint), "PYTHONPATH": str(task)}
    done = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "python"), "-s", "-c", RUNNER, handler, function, ",".join(FORBIDDEN_HERE)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=task,
        env=variables,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "ModuleNotFoundError" not in output and "ImportError" not in output, output[-3000:]
    assert done.returncode == 0, f"{function} ({handler}) failed in the package:\n{output[-3000:]}"
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("KEYGUARD-RESULT ")]
    return json.loads(line.removeprefix("KEYGUARD-RESULT ")) or {}


def _key_status(env: emulator.Environment, user: str, key: str) -> str:
    keys = env.clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next(k["Status"] for k in keys if k["AccessKeyId"] == key)


def _scheduled_event(rule: str) -> dict[str, Any]:
    """The event an EventBridge schedule delivers (EventBridge User Guide, "Creating a rule that runs on a
    schedule": source aws.events, detail-type "Scheduled Event", the rule in resources, empty detail)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2025-03-17T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK}-{rule}"],
        "detail": {},
    }


def _contain(venv: Path, task: Path, env: emulator.Environment, endpoint: str) -> tuple[emulator.Seeded, str, str]:
    """A GuardDuty finding on a user's key, contained by the packaged GuardDuty function."""
    seeded = emulator.seed(env.clients.iam, load_event("guardduty-iam-user.json"))
    details = seeded.event["detail"]["resource"]["accessKeyDetails"]
    user, key = details["userName"], details["accessKeyId"]
    assert _key_status(env, user, key) == "Active"
    run_in_package(venv, task, "GuardDutyFunction", seeded.event, env, endpoint)
    return seeded, user, key


def test_every_function_of_the_template_is_covered_here() -> None:
    covered = {*RESPONDER_EVENTS, "TamperWatchFunction", "InvestigationFunction", "AuditFunction", "SelfCheckFunction"}
    assert set(template_functions()) == covered
    assert len(covered) >= 9


# The events/ file each responder gets: one that names a long-term key.
RESPONDER_EVENTS = {
    "GuardDutyFunction": "guardduty-iam-user.json",
    "HealthFunction": "health-credentials-exposed.json",
    "AccessKeyCreatedFunction": "cloudtrail-create-access-key.json",
    "AwsQuarantineFunction": "cloudtrail-aws-quarantine-inline.json",  # the old form names the signing key
    "TrustedAdvisorFunction": "trustedadvisor-exposed-access-keys.json",
}


@pytest.mark.parametrize(("function", "name"), sorted(RESPONDER_EVENTS.items()))
def test_a_responder_in_the_package_deactivates_exactly_the_named_keys(
    function: str, name: str, lambda_venv: Path, task_dir: Path, account: emulator.Environment, endpoint: str
) -> None:
    assert function in [r.function for r in emulator.route(load_event(name), emulator.load_rules())]
    seeded = emulator.seed(account.clients.iam, load_event(name))
    before = account.iam_state(seeded)
    run_in_package(lambda_venv, task_dir, function, seeded.event, account, endpoint)
    after = account.iam_state(seeded)
    changed = {
        (p, key): status
        for p in after
        if p.startswith("user/")
        for key, status in after[p]["keys"].items()
        if before[p]["keys"].get(key) != status
    }
    assert changed, f"{name}: {function} deactivated no key"
    assert set(changed.values()) == {"Inactive"}
    assert f"user/{emulator.BYSTANDER}" not in {p for p, _ in changed}
    if seeded.replaced:  # the event named keys: exactly those
        assert {k for _, k in changed} == set(seeded.replaced.values())
    assert account.delivered(), f"{name}: {function} sent no notification"


def test_the_packaged_tamper_watch_recontains_a_reactivated_key(
    lambda_venv: Path, task_dir: Path, account: emulator.Environment, endpoint: str
) -> None:
    _, user, key = _contain(lambda_venv, task_dir, account, endpoint)
    assert _key_status(account, user, key) == "Inactive"
    account.delivered()
    account.clients.iam.update_access_key(UserName=user, AccessKeyId=key, Status="Active")  # the undoing call
    ev = copy.deepcopy(load_event("tamper-update-access-key.json"))
    ev["detail"]["requestParameters"].update(userName=user, accessKeyId=key, status="Active")
    run_in_package(lambda_venv, task_dir, "TamperWatchFunction", ev, account, endpoint)
    assert _key_status(account, user, key) == "Inactive"
    assert any("UpdateAccessKey" in json.dumps(m) for m in account.delivered())


def test_the_packaged_investigation_runs_what_containment_queued(
    lambda_venv: Path, task_dir: Path, account: emulator.Environment, endpoint: str
) -> None:
    _contain(lambda_venv, task_dir, account, endpoint)
    sqs = account.clients.get("sqs")
    got = sqs.receive_message(QueueUrl=account.investigation_url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
    (message,) = got["Messages"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-investigation",
        "awsRegion": REGION,
    }
    result = run_in_package(lambda_venv, task_dir, "InvestigationFunction", {"Records": [record]}, account, endpoint)
    assert "batchItemFailures" in result  # it ran and answered the SQS poller


def test_the_packaged_audit_inventories_the_account(
    lambda_venv: Path, task_dir: Path, account: emulator.Environment, endpoint: str
) -> None:
    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))  # users with keys
    result = run_in_package(lambda_venv, task_dir, "AuditFunction", _scheduled_event("audit"), account, endpoint)
    keys, users = sum(len(k) for k in seeded.users.values()), len(seeded.users)
    assert f"{keys} long-lived access keys ({keys} active) on {users} of {users} IAM users" in result["summary"]
    assert result["notification"] == "sent" and account.delivered()


def test_the_packaged_self_check_checks_and_reports(
    lambda_venv: Path, task_dir: Path, account: emulator.Environment, endpoint: str
) -> None:
    """The emulator has the topics but not the stack's functions and keys: the self-check says so."""
    result = run_in_package(
        lambda_venv, task_dir, "SelfCheckFunction", _scheduled_event("self-check"), account, endpoint
    )
    assert result["healthy"] is False
    assert any(c.startswith("FAILED: function guardduty") for c in result["checks"]), result
    assert any(c.startswith("ok: topic") for c in result["checks"]), result
    assert result["notification"] == "sent"
