"""The investigation function: SQS messages from containment -> investigate -> second notification.

A record whose investigation failed (or whose message is not ours) is reported back as a batch item
failure: SQS redelivers it, and after the queue's maxReceiveCount the dead-letter queue keeps it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from keyguard.app import Runtime
from keyguard.errors import KeyguardError, MalformedEvent


class InvestigationRuntime(Runtime):
    def handle_batch(self, event: Any, context: Any) -> dict[str, Any]:
        records = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(records, list):
            raise MalformedEvent("an SQS event has a Records list")
        failures = []
        if self._notifier is not None:
            self._notifier.sent.clear()  # a warm container keeps only this invocation's messages
        for record in records:
            ident = record.get("messageId") if isinstance(record, dict) else None
            try:
                self.handle_one(record, context)
            except Exception as e:  # one bad record must not hide the others; each is reported
                self._log("error", "investigation failed", message_id=ident, error=f"{type(e).__name__}: {e}")
                self._metric("InvestigationsFailed")
                failures.append({"itemIdentifier": ident})
        return {"batchItemFailures": failures}

    def handle_one(self, record: Any, context: Any, now: datetime | None = None) -> Any:
        from keyguard.investigate import core, handoff, report

        try:
            body = json.loads(record["body"])
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedEvent(f"SQS record has no JSON body: {e}") from e
        incident, owner, _ = handoff.from_payload(body)
        clients = self.accounts.clients_for(incident.account, incident.incident_id)  # issue 11: its own account
        settings = self.accounts.settings_for(self.settings, incident.account)
        inv = core.investigate(incident, owner, settings, clients, now or datetime.now(UTC))
        self._log(
            "info",
            "investigation",
            incident=incident.incident_id,
            calls=inv.summary.total,
            lookups=sum(inv.lookup.calls.values()),
            follow_ups=[r.line() for r in inv.results],
            failures=inv.failures,
        )
        notice = self.notifier.publish(report.message(inv), report.dedup_key(inv), context)
        self._metric("Investigations")
        if inv.failures:
            raise KeyguardError("investigation incomplete or a follow-up failed: " + "; ".join(inv.failures))
        return inv, notice
