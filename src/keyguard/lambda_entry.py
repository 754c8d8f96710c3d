"""Builds a Lambda handler for one trigger: Powertools Logger (EventBridge id as correlation id) and
Metrics around Runtime.handle. Importing this creates no client and reads no environment variable."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from keyguard.app import Extractor, Runtime


def make_handler(extract: Extractor, function: str) -> Any:
    logger = Logger(service="keyguard")
    metrics = Metrics(namespace="keyguard", service="keyguard")
    runtime = Runtime(logger=logger, metrics=metrics)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return runtime.handle(event, context, extract)

    # tests and the local runner reach the per-container state through the handler
    lambda_handler.runtime = runtime  # type: ignore[attr-defined]
    lambda_handler.logger = logger  # type: ignore[attr-defined]
    return lambda_handler


def make_investigation_handler() -> Any:
    """The investigation function's handler (SQS batch with partial failures)."""
    from keyguard.investigate.app import InvestigationRuntime

    logger = Logger(service="keyguard")
    metrics = Metrics(namespace="keyguard", service="keyguard")
    runtime = InvestigationRuntime(logger=logger, metrics=metrics)

    @logger.inject_lambda_context
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return runtime.handle_batch(event, context)

    lambda_handler.runtime = runtime  # type: ignore[attr-defined]
    lambda_handler.logger = logger  # type: ignore[attr-defined]
    return lambda_handler
