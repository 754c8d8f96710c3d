"""Logs and metrics a security team reads: JSON logs correlated by the EventBridge id, EMF metrics."""

from __future__ import annotations

import io
import json

from tests.conftest import deliver, load_event


def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_metrics_and_correlated_logs(account, monkeypatch, capsys) -> None:
    from handlers.guardduty import lambda_handler

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    logs = io.StringIO()
    monkeypatch.setattr(lambda_handler.logger.registered_handler, "stream", logs)
    event = load_event("guardduty-iam-user.json")
    capsys.readouterr()
    deliver(account, event)
    lines = _json_lines(logs.getvalue() + capsys.readouterr().out)

    (response_log,) = [x for x in lines if x.get("message") == "response"]
    assert response_log["correlation_id"] == event["id"]
    assert response_log["outcome"] == "contained"

    (emf,) = [x for x in lines if "_aws" in x]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "keyguard"
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"Contained", "KeysDeactivated"} <= names
    assert emf["Contained"] == [1.0] and emf["KeysDeactivated"] == [1.0]


def test_failure_is_counted(account, monkeypatch, capsys) -> None:
    from tests.faults import Fault

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    Fault(account.clients.iam, "UpdateAccessKey", "AccessDenied", status=403)
    capsys.readouterr()
    deliver(account, load_event("guardduty-iam-user.json"))
    (emf,) = [x for x in _json_lines(capsys.readouterr().out) if "_aws" in x]
    assert emf["Failed"] == [1.0] and "Contained" not in emf
