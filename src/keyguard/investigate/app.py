"""The investigation function: SQS messages from containment -> investigate -> notification.

One message is one run (at containment, +15 min, +60 min) or one part of a run: a long history is read
until a deadline well inside the function's timeout (the Lambda context's remaining time, less
RESERVE for the follow-ups, the notification and the queueing), then checkpointed into a new message
(window, regions, each region's next token, the partial summary) that the next invocation continues.
When a run is complete, the next run is queued once (SQS DelaySeconds, at most 900 s: a message that
arrives before it is due is queued again with the delay left).

A record whose investigation failed (or whose message is not ours) is reported back as a batch item
failure: SQS redelivers it, and after the queue's maxReceiveCount the dead-letter queue keeps it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from keyguard.app import Runtime
from keyguard.errors import KeyguardError, MalformedEvent

RESERVE_SECONDS = 60.0  # after the lookup stops: follow-ups, notification, continuation (of 300 s)
RESERVE_SHARE = 0.25  # ... or this share of a shorter remaining time
EARLY = timedelta(seconds=30)  # a later run this close to its due time runs now


class InvestigationRuntime(Runtime):
    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

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

    def now(self) -> datetime:
        return datetime.now(UTC)

    def deadline(self, context: Any) -> float | None:
        """When the lookup stops (a clock() value): the remaining time less what comes after it."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return None
        seconds = remaining() / 1000
        return self.clock() + seconds - min(RESERVE_SECONDS, seconds * RESERVE_SHARE)

    def memory(self) -> Any:
        from keyguard.investigate.memory import Memory

        table = self.settings.idempotency_table
        return Memory(table, self.clients.get("dynamodb")) if table else None

    def handle_one(self, record: Any, context: Any, now: datetime | None = None) -> Any:
        from keyguard.investigate import core, handoff, report

        try:
            body = json.loads(record["body"])
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedEvent(f"SQS record has no JSON body: {e}") from e
        incident, owner, at = handoff.from_payload(body)
        run = handoff.run_of(body)
        now = now or self.now()
        queue = self.settings.investigation_queue_url
        if run.due is not None and now < run.due - EARLY and queue:
            delay = handoff.resend(self.clients.get("sqs"), queue, body, run, now)
            self._log("info", "investigation not due yet", incident=incident.incident_id, phase=run.phase, delay=delay)
            self._metric("InvestigationsWaiting")
            return None, "waiting"
        memory = self.memory()
        seen = memory.seen(incident.incident_id) if memory else set()
        clients = self.accounts.clients_for(incident.account, incident.incident_id)  # issue 11: its own account
        settings = self.accounts.settings_for(self.settings, incident.account)
        inv = core.investigate(
            incident,
            owner,
            settings,
            clients,
            now,
            run=run,
            contained_at=at,
            deadline=self.deadline(context),
            clock=self.clock,
            sleep=self.sleep,
            seen=seen,
        )
        self._log(
            "info",
            "investigation",
            incident=incident.incident_id,
            phase=run.phase,
            part=run.part,
            finished=inv.finished,
            calls=inv.summary.total,
            lookups=sum(inv.lookup.calls.values()),
            new=[f.id for f in inv.findings],
            follow_ups=[r.line() for r in inv.results],
            failures=inv.failures,
        )
        # The first run always reports (each part of it); a later run only when it found something new.
        if run.phase == 0 or inv.findings or inv.failures:
            notice = self.notifier.publish(report.message(inv), report.dedup_key(inv), context)
        else:
            notice = "nothing new"
            self._metric("InvestigationsNothingNew")
        if memory is not None:
            memory.remember(incident.incident_id, core.announced(inv))
        self._metric("Investigations")
        if inv.finished and run.phase + 1 < len(handoff.PHASES):
            self._queue_next_run(body, run, at, now, memory, incident.incident_id)
        if inv.failures:
            raise KeyguardError("investigation incomplete or a follow-up failed: " + "; ".join(inv.failures))
        if not inv.finished:
            if not queue:
                raise KeyguardError("the history is not read to its end and there is no queue to continue on")
            self._queue_once(
                body, inv.checkpoint(), now, memory, incident.incident_id, f"run-{run.phase}-{run.part + 1}"
            )
            self._metric("InvestigationParts")
        return inv, notice

    def _queue_next_run(self, body: dict, run: Any, at: datetime, now: datetime, memory: Any, incident: str) -> None:
        from keyguard.investigate import handoff

        if not self.settings.investigation_queue_url:
            self._log("warning", "no queue: the later investigation runs are not queued", incident=incident)
            return
        phase = run.phase + 1
        later = handoff.Run(phase=phase, due=at + handoff.PHASES[phase])
        self._queue_once(body, later, now, memory, incident, f"run-{phase}")

    def _queue_once(self, body: dict, run: Any, now: datetime, memory: Any, incident: str, marker: str) -> None:
        """Queue `run` once per marker, however often the message that queues it is delivered (SQS is
        at-least-once: a redelivered part must not fork its continuation)."""
        from keyguard.investigate import handoff

        if memory is not None and not memory.claim(incident, marker):
            return
        try:
            handoff.resend(self.clients.get("sqs"), self.settings.investigation_queue_url, body, run, now)
        except Exception:
            if memory is not None:
                memory.release(incident, marker)
            raise
