"""SNS messages for what the operator commands and the scheduled audit report, shaped like the
containment notifications: text for people, a JSON document for machines ("keyguard": 1), and the
message attributes subscribers filter on (source, severity, outcome)."""

from __future__ import annotations

from typing import Any

from keyguard import notify
from keyguard.aws import error_code
from keyguard.errors import KeyguardError

SOURCE = "operator"  # message attribute `source` of release and audit messages


class PublishFailed(KeyguardError):
    pass


def message(subject: str, text: str, doc: dict[str, Any], *, severity: str, outcome: str) -> dict[str, Any]:
    return notify.package(subject, text, {"keyguard": 1, **doc}, SOURCE, severity, outcome)


def publish(clients: Any, topic_arn: str, msg: dict[str, Any]) -> str:
    """Publish; returns the message id. Raises PublishFailed (one line) so that nothing fails silently."""
    try:
        return clients.sns(topic_arn).publish(TopicArn=topic_arn, **msg)["MessageId"]
    except Exception as e:
        raise PublishFailed(f"sns:Publish to {topic_arn} failed: {error_code(e) or type(e).__name__}: {e}") from e
