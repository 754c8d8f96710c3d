"""Shared by the in-process sections (calls, warm, scale): events, handlers and figures.

Each section runs keyguard's real Lambda handlers (src/handlers/*) against in-process moto through
keyguard.local.emulator: the same routing (template.yaml's rule patterns), the same seeding and the same
stack (encrypted-topic stand-in with an SQS subscriber, idempotency table) as `make demo` and the tests.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
EVENTS = ROOT / "events"
ACCOUNT = "123456789012"

if str(SRC) not in sys.path:  # a fresh clone whose .venv does not hold the project yet
    sys.path.insert(0, str(SRC))

# Lambda writes stdout to CloudWatch Logs: the handler's JSON log lines and EMF metrics are part of its
# work, so both stay on; they are written to /dev/null instead of the terminal.
os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def event_files() -> list[Path]:
    return sorted(EVENTS.glob("*.json"))


class Handler:
    """One Lambda function as a warm container holds it: imported once, clients made once."""

    def __init__(self, env: Any, rule: Any, mode: str = "enforce") -> None:
        from keyguard.local import emulator

        os.environ.update(KEYGUARD_MODE=mode, KEYGUARD_TOPIC_ARN=env.topic_arn, KEYGUARD_IDEMPOTENCY_TABLE=env.table)
        # as the stack deploys it: the ledger and the deny-all boundary (issue 9)
        os.environ.update(KEYGUARD_LEDGER_TABLE=env.ledger_table, KEYGUARD_DENY_ALL_POLICY_ARN=env.deny_all_policy_arn)
        module, func = rule.handler.rsplit(".", 1)
        self.fn = getattr(importlib.import_module(module), func)
        self.fn.runtime.reset(clients=env.clients)
        for h in getattr(self.fn.logger, "handlers", []):
            if hasattr(h, "setStream"):
                h.setStream(DEVNULL)
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:keyguard-{rule.function}"
        self.context = emulator.FakeContext(rule.function, arn)
        self.rule = rule

    def __call__(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """(result, error): errors are reported, as Lambda would record them."""
        from keyguard.errors import KeyguardError

        with contextlib.redirect_stdout(DEVNULL):
            try:
                return self.fn(event, self.context), None
            except KeyguardError as e:
                return None, f"{type(e).__name__}: {e}"

    def forget_sent(self) -> None:
        """Notifier.sent is for the local runner; a long loop would otherwise measure that list."""
        notifier = self.fn.runtime.notifier
        if notifier is not None and hasattr(notifier, "sent"):
            notifier.sent.clear()


@contextlib.contextmanager
def account() -> Iterator[Any]:
    """A fresh in-process moto account set up like the stack (keyguard.local.emulator)."""
    from keyguard.local import emulator

    os.environ.pop("AWS_ENDPOINT_URL", None)
    cheap_moto_transactions()
    with emulator.emulated_account() as env:
        yield env


def cheap_moto_transactions() -> None:
    """moto backs up every table a TransactWriteItems touches by deep copy, once per item in the call, to
    roll back a failed transaction: O(table size) per call, which DynamoDB does not pay. The ledger writes one
    transaction per containment, so a 1,000-event loop would time moto's copies (and hold gigabytes).
    The benchmarks make no failing transaction: they skip the table backup, and only that copy."""
    import copy as std_copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class _Copy:
        def __getattr__(self, name: str) -> Any:
            return getattr(std_copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else std_copy.deepcopy(value, memo)

    models.copy = _Copy()  # type: ignore[assignment]


def drop_subscribers(env: Any) -> None:
    """Timing loops remove the topic's SQS subscriber: moto delivers to it inside Publish (and keeps every
    message), while real SNS answers Publish before it delivers."""
    sns = env.clients.sns(env.topic_arn)
    for sub in sns.list_subscriptions_by_topic(TopicArn=env.topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def rules() -> list[Any]:
    from keyguard.local import emulator

    return emulator.load_rules()


def guardduty_variant(event: dict[str, Any], n: int) -> dict[str, Any]:
    """The same finding as a new GuardDuty finding (new finding id, new envelope id): a new incident, so
    keyguard contains and announces it again instead of reporting a duplicate."""
    e = copy.deepcopy(event)
    e["id"] = f"00000000-0000-4000-8000-{n:012d}"
    e["detail"]["id"] = f"bench{n:027d}"
    return e


def summary(samples_s: list[float]) -> dict[str, float]:
    """Median, p10, p90, mean and min in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=10) if len(ms) >= 2 else [ms[0]] * 9
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p10_ms": q[0],
        "p90_ms": q[-1],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
    }


def emit(result: dict[str, Any], as_json: bool, report: Any) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        report(result)
