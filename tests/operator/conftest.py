"""Fixtures for the operator commands: an emulated account (in-process moto, or moto_server over HTTP)
reached through boto3's normal credential chain. The credentials are the test environment's, set here;
the operator code never invents any."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real profile, endpoint or keyguard setting leaks in (other tests set KEYGUARD_* variables)."""
    for var in list(os.environ):
        if var.startswith("KEYGUARD_") or var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh in-process moto account and the operator's clients for it."""
    from moto import mock_aws

    from keyguard.operator.clients import OperatorClients

    clean_environment(monkeypatch)
    with mock_aws():
        yield OperatorClients()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`keyguard emulator` on 127.0.0.1: the commands reach it through --endpoint-url, over HTTP."""
    from keyguard.local.server import Emulator

    clean_environment(monkeypatch)
    server = Emulator("127.0.0.1", free_port()).start()
    url = server.url
    _reset(url)  # moto_server keeps its accounts in the process: start from an empty one
    try:
        yield url
    finally:
        _reset(url)
        server.stop()


def _reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()  # noqa: S310


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `keyguard ...` as a person would: returns (exit code, stdout, stderr); `answers` are typed in."""
    import io
    import sys

    from keyguard.cli import main

    def run(*argv: str, answers: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def deploy_settings(ssm: Any, name: str = "keyguard", **values: str) -> dict[str, Any]:
    """The deployed stack's settings parameter as the template writes it (/keyguard/<stack>/settings), with
    only `values` set: contain and release act only with a stack (or --no-stack). Overwrites."""
    import json

    doc = {"keyguard": 1, "stack": name, "mode": "enforce", **values}
    ssm.put_parameter(Name=f"/keyguard/{name}/settings", Type="String", Value=json.dumps(doc), Overwrite=True)
    return doc
