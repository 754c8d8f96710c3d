"""The scheduled audit's Lambda handler: run the audit, count it in metrics, publish its summary.

Settings (environment): KEYGUARD_TOPIC_ARN (where the summary goes), KEYGUARD_AUDIT_MAX_KEY_AGE_DAYS and
KEYGUARD_AUDIT_UNUSED_DAYS (default 90 each). A check that cannot run makes the message say INCOMPLETE
(and is logged and counted); an audit that cannot run at all, or a summary that cannot be published,
raises, so that Lambda retries and the dead-letter queue keeps the event."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from keyguard.aws import Clients
from keyguard.errors import ConfigError
from keyguard.operator import audit

METRICS = {
    "AuditActiveKeys": "activeKeys",
    "AuditOldKeys": "oldKeys",
    "AuditUnusedKeys": "unusedKeys",
    "AuditUsersWithoutMfa": "usersWithKeysWithoutMfa",
    "AuditRootAccessKeys": "rootAccessKeys",
    "AuditImdsV1Instances": "imdsv1Instances",
    "AuditHeldPrincipals": "heldPrincipals",
    "AuditIncompleteChecks": "incompleteChecks",
}


@dataclass(frozen=True)
class AuditSettings:
    topic_arn: str | None = None
    max_key_age_days: int = audit.DEFAULT_MAX_KEY_AGE_DAYS
    unused_days: int = audit.DEFAULT_UNUSED_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuditSettings:
        env = os.environ if environ is None else environ
        return cls(
            topic_arn=env.get("KEYGUARD_TOPIC_ARN") or None,
            max_key_age_days=_days(env, "KEYGUARD_AUDIT_MAX_KEY_AGE_DAYS", cls.max_key_age_days),
            unused_days=_days(env, "KEYGUARD_AUDIT_UNUSED_DAYS", cls.unused_days),
        )


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default)).strip()
    try:
        days = int(raw)
    except ValueError as e:
        raise ConfigError(f"{name} must be a whole number of days, got {raw!r}") from e
    if days < 1:
        raise ConfigError(f"{name} must be at least 1, got {days}")
    return days


def make_handler() -> Any:
    logger = Logger(service="keyguard")
    metrics = Metrics(namespace="keyguard", service="keyguard")

    @logger.inject_lambda_context
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.clear_metrics()  # with metrics disabled (local runs) nothing flushes the last invocation's
        settings = AuditSettings.from_env()
        if lambda_handler.clients is None:  # type: ignore[attr-defined]
            lambda_handler.clients = Clients()  # type: ignore[attr-defined]
        report = audit.run(
            lambda_handler.clients,  # type: ignore[attr-defined]
            max_key_age_days=settings.max_key_age_days,
            unused_days=settings.unused_days,
        )
        counts = report.counts()
        for name, field in METRICS.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[field])
        logger.info("audit", extra={"summary": report.summary, "counts": counts})
        if report.errors:
            logger.error("audit incomplete", extra={"errors": report.errors})
        notification = "no topic"
        if settings.topic_arn:
            audit.publish_summary(lambda_handler.clients, settings.topic_arn, report)  # type: ignore[attr-defined]
            notification = "sent"
        return {
            "summary": report.summary,
            "findings": len(report.findings),
            "incomplete": report.errors,
            "notification": notification,
        }

    lambda_handler.clients = None  # type: ignore[attr-defined]  # tests put their own in
    lambda_handler.logger = logger  # type: ignore[attr-defined]
    return lambda_handler
