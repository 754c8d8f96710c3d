"""Send each response's notification once: Powertools Idempotency on DynamoDB, keyed on the incident
and its outcome. Redelivered events and GuardDuty's re-emitted findings announce nothing new.

Imported after containment: the idempotency utility imports boto3 and jmespath, which containment
itself does not need (keyguard.aws uses botocore directly)."""

from __future__ import annotations

from typing import Any

from keyguard import notify
from keyguard.aws import Clients, error_code
from keyguard.errors import KeyguardError
from keyguard.respond import Response
from keyguard.settings import Settings


class NotificationFailed(KeyguardError):
    pass


class Notifier:
    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        self._once: Any = None
        self.sent: list[dict[str, Any]] = []  # what was published, for the local runner

    def send(self, response: Response, context: Any = None) -> str:
        """Returns 'sent', 'duplicate' or 'no topic'; raises NotificationFailed."""
        return self.publish(notify.message(response), notify.dedup_key(response), context)

    def publish(self, msg: dict[str, Any], key: str, context: Any = None) -> str:
        """Publish `msg` unless a message with the same de-duplication `key` was published already."""
        if not self.settings.topic_arn:
            self.sent.append(msg)
            return "no topic"
        published: list[str] = []

        def publish() -> dict[str, str]:
            try:
                out = self.clients.sns(self.settings.topic_arn).publish(TopicArn=self.settings.topic_arn, **msg)
            except Exception as e:
                raise NotificationFailed(f"sns:Publish failed: {error_code(e) or type(e).__name__}: {e}") from e
            published.append(out["MessageId"])
            self.sent.append(msg)
            return {"MessageId": out["MessageId"]}

        if not self.settings.idempotency_table:
            publish()
            return "sent"
        try:
            self._idempotent(publish, context)(notice={"key": key})
        except NotificationFailed:
            raise
        except Exception as e:
            if type(e).__name__ == "IdempotencyAlreadyInProgressError":
                return "duplicate"  # a concurrent delivery of the same incident is announcing it
            if published:
                return "sent"
            # The de-duplication store failed: a duplicate message beats a lost one.
            publish()
            return f"sent (de-duplication unavailable: {type(e).__name__})"
        return "sent" if published else "duplicate"

    def _idempotent(self, publish: Any, context: Any) -> Any:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        if self._once is None:
            self._once = (
                DynamoDBPersistenceLayer(
                    table_name=self.settings.idempotency_table, boto3_client=self.clients.get("dynamodb")
                ),
                IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=self.settings.dedup_ttl_seconds),
            )
        store, config = self._once
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)

        @idempotent_function(data_keyword_argument="notice", persistence_store=store, config=config)
        def once(notice: dict[str, str]) -> dict[str, str]:
            return publish()

        return once
