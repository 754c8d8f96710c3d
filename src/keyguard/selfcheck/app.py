"""The self-check's runtime: run the checks, publish the heartbeat (1 healthy, 0 not), announce a failure.

The heartbeat is the alarm's only input: when this function stops running, no datapoint arrives and the
alarm (TreatMissingData: breaching) fires on its own topic. A failed check is also published to the
main topic, once a day per set of failures (the alarm repeats; the mail need not). Failing to publish
the heartbeat raises: Lambda retries and the dead-letter queue keeps the event."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from keyguard.aws import Clients
from keyguard.notify import package
from keyguard.selfcheck.check import CheckConfig, healthy, run

NAMESPACE = "keyguard"
METRIC = "SelfCheckHealthy"
NOTIFY_PERMISSIONS = ("sns:Publish",)


def heartbeat(clients: Any, config: CheckConfig, ok: bool) -> None:
    dimensions = [{"Name": "Stack", "Value": config.stack_name}] if config.stack_name else []
    clients.get("cloudwatch").put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[{"MetricName": METRIC, "Dimensions": dimensions, "Value": 1.0 if ok else 0.0, "Unit": "Count"}],
    )


def failure_message(checks: list[Any], now: datetime) -> tuple[dict[str, Any], str]:
    failed = [c for c in checks if not c.ok]
    subject = f"keyguard: CRITICAL self-check failed - {failed[0].name}" + (
        f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    )
    lines = ["keyguard's self-check found it is not wired as deployed; it may be blind.", ""]
    lines += [f"  - {c.line()}" for c in checks]
    lines += [
        "",
        "What to do now:",
        "  1. Look for who changed it: the tamper watch's notifications, CloudTrail event history.",
        "  2. Redeploy the stack (sam deploy) to restore it.",
    ]
    doc = {
        "keyguard": 1,
        "kind": "selfcheck",  # docs/message.schema.json: a message kind of its own
        "source": "selfcheck",
        "outcome": "failed",
        "level": "critical",
        "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }
    key = hashlib.sha256(("selfcheck|" + now.strftime("%Y-%m-%d") + "|" + "|".join(c.name for c in failed)).encode())
    return package(subject, "\n".join(lines), doc, "selfcheck", "critical", "failed"), key.hexdigest()


def make_handler() -> Any:
    from aws_lambda_powertools import Logger

    logger = Logger(service="keyguard")

    @logger.inject_lambda_context
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        config = CheckConfig.from_env()
        if lambda_handler.clients is None:  # type: ignore[attr-defined]
            lambda_handler.clients = Clients()  # type: ignore[attr-defined]
        clients = lambda_handler.clients  # type: ignore[attr-defined]
        checks = run(clients, config)
        ok = healthy(checks)
        heartbeat(clients, config, ok)
        notification = "not needed"
        if not ok:
            logger.error("self-check failed", extra={"checks": [c.line() for c in checks]})
            notification = _announce(clients, config, checks, context)
        return {"healthy": ok, "checks": [c.line() for c in checks], "notification": notification}

    lambda_handler.clients = None  # type: ignore[attr-defined]  # tests put their own in
    lambda_handler.logger = logger  # type: ignore[attr-defined]
    return lambda_handler


def _announce(clients: Any, config: CheckConfig, checks: list[Any], context: Any) -> str:
    if not config.topic_arn:
        return "no topic"
    import os

    from keyguard.dedup import Notifier
    from keyguard.errors import KeyguardError
    from keyguard.settings import Settings

    msg, key = failure_message(checks, datetime.now(UTC))
    settings = Settings(topic_arn=config.topic_arn, idempotency_table=os.environ.get("KEYGUARD_IDEMPOTENCY_TABLE"))
    try:
        return Notifier(settings, clients).publish(msg, key, context)
    except KeyguardError as e:  # the main topic may be what failed; the heartbeat (0) still raises the alarm
        return f"failed: {e}"
