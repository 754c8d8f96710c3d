"""Shared fixtures: real-shaped events from events/, and an emulated account (in-process moto) set up
the way the stack is (topic with an SQS subscriber, de-duplication table)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh emulated account; keyguard's environment variables point at its topic and table."""
    from keyguard.local.emulator import emulated_account

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for var in (
        "KEYGUARD_MODE",
        "KEYGUARD_PROTECTED_PRINCIPALS",
        "KEYGUARD_CREATE_ACCESS_KEY_RESPONSE",
        "KEYGUARD_EXEMPT_PRINCIPALS",
        "KEYGUARD_EXEMPT_TAG_KEY",
        "KEYGUARD_LEDGER_TABLE",
        "KEYGUARD_DENY_ALL_POLICY_ARN",
    ):
        monkeypatch.delenv(var, raising=False)
    with emulated_account() as env:
        yield env


def deliver(env: Any, event: dict[str, Any], mode: str = "enforce", *, seed: bool = True) -> tuple[Any, list[Any]]:
    """Seed the account for the event (unless told not to), route it through template.yaml's rules and
    invoke each matching handler. Returns (seeded, invocations)."""
    from keyguard.local import emulator

    seeded = emulator.seed(env.clients.iam, event) if seed else emulator.Seeded(event)
    rules = emulator.route(seeded.event, emulator.load_rules())
    return seeded, [emulator.invoke(env, rule, seeded.event, mode) for rule in rules]


def inbox(env: Any) -> list[dict[str, Any]]:
    """The keyguard documents the topic delivered to its SQS subscriber (the message's JSON part)."""
    return [
        {
            **json.loads(m["Message"]),
            "_subject": m.get("Subject"),
            "_attributes": m.get("MessageAttributes", {}),
        }
        for m in env.delivered()
    ]


def incident_from(name: str, index: int = 0) -> Any:
    """The Incident an events/ file yields, through its trigger's extractor."""
    from keyguard.sources import cloudtrail, guardduty, health

    extract = {"guardduty": guardduty, "health": health, "cloudtrail": cloudtrail}[name.split("-")[0]].extract
    return extract(load_event(name))[index]


def deliver_and_investigate(env: Any, event: dict[str, Any], mode: str = "enforce") -> tuple[Any, list[Any]]:
    """The whole pipeline: seed the event's principals and the recorded activity of its keys, contain,
    then run the investigation function on what containment queued for it."""
    from keyguard.local import emulator

    seeded = emulator.seed(env.clients.iam, event)
    emulator.seed_activity(env, seeded)
    rules = emulator.route(seeded.event, emulator.load_rules())
    invocations = [emulator.invoke(env, rule, seeded.event, mode) for rule in rules]
    return seeded, invocations + emulator.investigate_queued(env, mode)


@pytest.fixture
def iam_quotas(account: Any) -> Iterator[Any]:
    """IAM's quotas (moto enforces none) on every IAM client of the account, the handlers' included:
    keyguard.local.quotas. `.refused` lists what IAM would have refused."""
    from keyguard.local import quotas

    installed = quotas.install(account.clients)
    yield installed
    installed.uninstall()
