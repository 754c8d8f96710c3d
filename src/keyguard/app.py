"""What every handler does: parse, contain (all keys first), notify once, count, and fail loudly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyguard.actions import Status
from keyguard.aws import Clients, error_code
from keyguard.errors import KeyguardError, MalformedEvent, ResponseFailed
from keyguard.incident import Incident
from keyguard.plan import NO_ACTION, Outcome
from keyguard.respond import Response, finish, respond
from keyguard.settings import Settings

Extractor = Callable[[Any], list[Incident]]

DEDUP_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


class Runtime:
    """Per-container state, created at import without doing anything: settings and clients are made on
    the first event (after moto or the real environment is in place), then reused."""

    def __init__(
        self,
        logger: Any = None,
        metrics: Any = None,
        settings: Settings | None = None,
        clients: Clients | None = None,
    ) -> None:
        self.logger = logger
        self.metrics = metrics
        self._settings = settings
        self._clients = clients
        self._notifier: Any = None
        self._ledger: Any = None
        self._accounts: Any = None  # issue 11: where each incident is acted on (keyguard.org.accounts)

    @property
    def ledger(self) -> Any:
        """keyguard's records (its DynamoDB client is made on first use, after the first deny)."""
        if self._ledger is None:
            self._ledger = _LazyLedger(self.settings.ledger_table, self.clients)
        return self._ledger

    def reset(self, settings: Settings | None = None, clients: Clients | None = None) -> None:
        """Forget per-container state (tests and the local emulator start a new account)."""
        self._settings, self._clients, self._notifier, self._ledger = settings, clients, None, None
        self._accounts = None
        if self.metrics is not None:
            self.metrics.clear_metrics()  # with metrics disabled (local runs) nothing flushes them

    @property
    def notifier(self) -> Any:
        """Created on first use, after containment (the idempotency utility it imports brings boto3)."""
        if self._notifier is None:
            from keyguard.dedup import Notifier

            self._notifier = Notifier(self.settings, self.clients)
        return self._notifier

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients()
        return self._clients

    @property
    def accounts(self) -> Any:
        """The account the function runs in, or (organization mode) each incident's member account."""
        if self._accounts is None:
            from keyguard.org.accounts import for_runtime

            self._accounts = for_runtime(self.clients)
        return self._accounts

    def handle(self, event: Any, context: Any, extract: Extractor) -> dict[str, Any]:
        try:
            incidents = extract(event)
        except MalformedEvent as e:
            self._log("error", "malformed event: nothing was done", error=str(e))
            self._metric("MalformedEvents")
            raise
        settings = self.settings
        account = _account_of(context)
        from keyguard.sources import federation  # a federated session's issuer: named by AWS, confirmed by IAM

        if federation.needs_resolving(incidents):
            incidents = [federation.resolve(i, self.clients, account=account) for i in incidents]
        if self._notifier is not None:
            self._notifier.sent.clear()  # a warm container keeps only this invocation's messages
        # Containment first: every key of the event is contained before anything is recorded or announced.
        ledger = self.ledger
        placed = [self.accounts.place(event, i, account, settings) for i in incidents]  # issue 11: its own account
        responses = [
            p.refused
            or respond(p.incident, p.settings or settings, p.iam, account=p.account, defer_records=True, ledger=ledger)
            for p in placed
        ]
        for p, r in zip(placed, responses, strict=True):
            finish(r, p.iam, layers_only=True)  # every key's boundary before any key's read-back
        from keyguard.report import updates  # after every deny: an earlier incident of the same principal

        for problem in updates.link(responses, ledger):
            self._log("warning", "earlier incident not looked up", problem=problem)
        for p, r in zip(placed, responses, strict=True):
            finish(r, p.iam)
        for r in responses:
            self._log(
                "info",
                "response",
                incident=r.incident.incident_id,
                outcome=r.outcome.value,
                owner=r.owner,
                actions=[x.line() for x in r.results],
            )
        notices = self._notify(responses, context)
        reports = self._report(responses, notices)
        handoffs = self._hand_off(responses)
        self._count(responses, notices)
        problems = [f"{r.incident.key_id}: {r.reason}" for r in responses if r.failed]
        problems += [
            f"{r.incident.key_id}: notification {n}"
            for r, n in zip(responses, notices, strict=True)
            if n.startswith("failed")
        ]
        problems += [
            f"{r.incident.key_id}: investigation {h}"
            for r, h in zip(responses, handoffs, strict=True)
            if h.startswith("failed")
        ]
        if problems:
            raise ResponseFailed("; ".join(problems), report=responses)
        return {
            "responses": [
                {
                    "incident": r.incident.incident_id,
                    "outcome": r.outcome.value,
                    "notification": n,
                    "investigation": h,
                    "reports": p,
                }
                for r, n, h, p in zip(responses, notices, handoffs, reports, strict=True)
            ]
        }

    def _hand_off(self, responses: list[Response]) -> list[str]:
        """Leaked-key incidents go on to the investigation function (its own queue, retries and DLQ),
        after containment and the first notification, so investigating can never delay containment."""
        from keyguard.investigate import handoff

        out = []
        for r in responses:
            if not handoff.wanted(r) or not r.incident.key_id:  # no key named (AWS's quarantine): nothing to trace
                out.append("not needed")
            elif not self.settings.investigation_queue_url:
                out.append("not configured")
            else:
                try:
                    handoff.send(self.clients.get("sqs"), self.settings.investigation_queue_url, r)
                    out.append("queued")
                except Exception as e:
                    self._log("error", "investigation hand-off failed", incident=r.incident.incident_id, error=str(e))
                    out.append(f"failed: {error_code(e) or type(e).__name__}")
        return out

    def _report(self, responses: list[Response], notices: list[str]) -> list[str]:
        """Security Hub and chat (keyguard.report), after the notification; failures logged, never raised."""
        if not (self.settings.security_hub or self.settings.chat_topic_arn):
            return ["none" for _ in responses]
        from keyguard.report import after_notify

        out = after_notify(self.settings, self.clients, responses, notices)
        for r, line in zip(responses, out, strict=True):
            if "failed" in line:
                self._log("error", "report failed", incident=r.incident.incident_id, reports=line)
                self._metric("ReportFailures")
        return out

    def _notify(self, responses: list[Response], context: Any) -> list[str]:
        out = []
        for r in responses:
            try:
                out.append(self.notifier.send(r, context))
            except KeyguardError as e:
                self._log("error", "notification failed", incident=r.incident.incident_id, error=str(e))
                out.append(f"failed: {e}")
        return out

    def _count(self, responses: list[Response], notices: list[str]) -> None:
        for r in responses:
            for res in r.results:
                if res.status is Status.DONE and res.action == "deactivate-key":
                    self._metric("KeysDeactivated")
                elif res.status is Status.DONE and res.action.endswith("sessions"):
                    self._metric("SessionsRevoked")
            if r.outcome in (Outcome.CONTAINED, Outcome.SESSIONS_REVOKED):
                self._metric("Contained")
            elif r.outcome is Outcome.FAILED:
                self._metric("Failed")
            elif r.outcome in NO_ACTION or r.outcome is Outcome.WOULD_CONTAIN:
                self._metric("Skipped")
        self._metric("DuplicateNotifications", sum(1 for n in notices if n == "duplicate"))

    def _metric(self, name: str, value: float = 1) -> None:
        if self.metrics is not None and value:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def _log(self, level: str, msg: str, **fields: Any) -> None:
        if self.logger is not None:
            getattr(self.logger, level)(msg, extra=fields)


class _LazyLedger:
    """A Ledger whose DynamoDB client is created on its first read or write: keyguard.ledger and the
    client are not needed before the first deny, and containment never waits for them."""

    def __init__(self, table: str | None, clients: Clients) -> None:
        self.table = table
        self._clients = clients
        self._ledger: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.table)

    def __getattr__(self, name: str) -> Any:
        if self._ledger is None:
            from keyguard.ledger import Ledger

            self._ledger = Ledger(self.table, self._clients.get("dynamodb"))
        return getattr(self._ledger, name)


def _account_of(context: Any) -> str | None:
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 4 and parts[4] else None
