"""The tamper watch's runtime: read the call, decide from the ledger, re-apply and read back, record in the
ledger, announce once per CloudTrail event, and fail loudly (Lambda retries, the DLQ keeps the event)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyguard.actions import ActionResult, Status
from keyguard.aws import Clients, error_code
from keyguard.errors import ConfigError, KeyguardError, MalformedEvent, ResponseFailed
from keyguard.tamper import call as calls
from keyguard.tamper import message
from keyguard.tamper.config import WatchConfig
from keyguard.tamper.decide import Decision, Verdict, decide
from keyguard.tamper.reapply import reapply
from keyguard.tamper.watch import watch_for

NOTIFY_PERMISSIONS = ("sns:Publish",)
# reads (key, principal, principal_by_id) and writes (note; contained for a renamed principal): GetItem, and
# TransactWriteItems, which IAM authorises as its Put and Update parts
LEDGER_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
LEDGER_TARGETS = ("key", "user", "role", "tags")


class Holds:
    """The ledger's answer for a key or principal. A name the ledger does not know (the principal was
    renamed) is asked by the unique id IAM gives that name now (AIDA.../AROA...: a rename cannot take it)."""

    def __init__(self, ledger: Any, iam: Any) -> None:
        self.ledger, self.iam = ledger, iam

    def key(self, key_id: str) -> Any:
        return self.ledger.key(key_id)

    def principal(self, kind: str, name: str) -> Any:
        record = self.ledger.principal(kind, name)
        if record is not None or not hasattr(self.ledger, "principal_by_id"):
            return record
        try:
            if kind == "user":
                unique_id = self.iam.get_user(UserName=name)["User"]["UserId"]
            else:
                unique_id = self.iam.get_role(RoleName=name)["Role"]["RoleId"]
        except Exception as e:
            if error_code(e) == "NoSuchEntity":
                return None
            raise
        return self.ledger.principal_by_id(unique_id)


class TamperRuntime:
    def __init__(self, logger: Any = None, metrics: Any = None, config: WatchConfig | None = None) -> None:
        self.logger, self.metrics = logger, metrics
        self._config, self._clients, self._notifier, self._ledger = config, None, None, None

    def reset(self, config: WatchConfig | None = None, clients: Clients | None = None, ledger: Any = None) -> None:
        """Forget per-container state (tests and the local emulator start a new account)."""
        self._config, self._clients, self._notifier, self._ledger = config, clients, None, ledger
        if self.metrics is not None:
            self.metrics.clear_metrics()

    @property
    def config(self) -> WatchConfig:
        if self._config is None:
            self._config = WatchConfig.from_env()
        return self._config

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients()
        return self._clients

    @property
    def notifier(self) -> Any:
        if self._notifier is None:
            from keyguard.dedup import Notifier

            self._notifier = Notifier(self.config, self.clients)  # type: ignore[arg-type]  # duck-typed settings
        return self._notifier

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            if not self.config.ledger_table:
                raise ConfigError("KEYGUARD_LEDGER_TABLE is not set: the tamper watch decides from the ledger")
            from keyguard.ledger import Ledger

            self._ledger = Ledger(self.config.ledger_table, self.clients.get("dynamodb"))
        return self._ledger

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        if self._notifier is not None:
            self._notifier.sent.clear()
        try:
            call = calls.read(event)
        except MalformedEvent as e:
            self._log("error", "malformed event: nothing was done", error=str(e))
            self._metric("MalformedEvents")
            raise
        watch = watch_for(event)
        if watch is None:
            self._metric("TamperIgnored")
            return self._done(call, None, "not watched", [])
        config = self.config
        ledger = Holds(self.ledger, self.clients.iam) if watch.target in LEDGER_TARGETS else None
        decision = decide(call, watch, config, ledger)
        if decision.verdict is Verdict.IGNORE:
            self._log("info", "tamper watch: nothing to do", event=call.event_id, call=call.name, why=decision.reason)
            self._metric("TamperIgnored")
            return self._done(call, decision, "ignored", [])
        now = datetime.now(UTC)
        results = reapply(decision, call, config, self.clients.iam, now) if decision.reapply else []
        if decision.verdict is Verdict.RECONTAIN and not config.dry_run:
            results.append(self._record(decision, call, results, now))
        outcome = message.outcome(decision, results, config.dry_run)
        notice = self._notify(call, decision, results, outcome, context)
        self._metric("TamperEvents")
        if outcome == "re-contained":
            self._metric("Recontained")
        problems = [r.line() for r in results if r.status is Status.FAILED]
        if notice.startswith("failed"):
            problems.append(f"notification {notice}")
        self._log("warning", "tamper", event=call.event_id, call=call.name, outcome=outcome, actor=call.actor.identity)
        if problems:
            self._metric("TamperFailed")
            raise ResponseFailed(f"tamper {call.event_id}: " + "; ".join(problems), report=results)
        return self._done(call, decision, outcome, results, notice)

    def _record(self, decision: Decision, call: Call, results: list[ActionResult], now: datetime) -> ActionResult:
        """Append what happened to the ledger's history of the held key or principal."""
        kind = "user" if decision.kind == "key" else decision.kind
        name = getattr(decision.record, "user", None) if decision.kind == "key" else decision.name
        detail = {
            "eventId": call.event_id,
            "eventName": call.name,
            "sourceIPAddress": call.actor.source_ip,
            "accessKeyId": call.actor.access_key_id,
            "keyId": decision.name if decision.kind == "key" else None,
            "newName": decision.new_name,
            "reapplied": [r.line() for r in results],
        }
        target = f"{kind} {name}"
        record = decision.record
        try:
            self.ledger.note(
                "tamper", kind, name, actor=call.actor.identity, reason=decision.reason, detail=detail, at=now
            )
            renamed = decision.reapply == "renamed" and decision.new_name and decision.new_name != name
            if renamed and not any(r.status is Status.FAILED for r in results):
                # the hold follows the principal to its new name (same unique id, layers, keys)
                self.ledger.contained(
                    incident_id=getattr(record, "incident", None) or f"tamper:{call.event_id}",
                    kind="user",
                    name=decision.new_name,
                    at=now,
                    actor="keyguard tamper watch",
                    reason=f"renamed from {name} by {call.actor.identity}; the hold follows it",
                    unique_id=getattr(record, "unique_id", None),
                    layers=getattr(record, "layers", ()) or (),
                    keys=getattr(record, "keys", ()) or (),
                    leaked_keys=getattr(record, "leaked_keys", ()) or (),
                    event="re-contained",
                    detail={"renamedFrom": name, "eventId": call.event_id},
                )
        except Exception as e:
            code = error_code(e) or type(e).__name__
            return ActionResult("record", target, Status.FAILED, f"ledger: {code}: {e}"[:300], code)
        return ActionResult("record", target, Status.DONE, "ledger history")

    def _notify(self, call: Call, decision: Decision, results: list, outcome: str, context: Any) -> str:
        msg = message.message(call, decision, results, self.config.dry_run)
        try:
            return self.notifier.publish(msg, f"{message.dedup_key(call)}|{outcome}", context)
        except KeyguardError as e:
            self._log("error", "tamper notification failed; trying the alarm topic", error=str(e))
            return f"failed: {e}; alarm topic: {self._fallback(msg)}"

    def _fallback(self, msg: dict[str, Any]) -> str:
        """The alarm path's topic has its own key: a disabled main key does not silence this message."""
        arn = self.config.alarm_topic_arn
        if not arn:
            return "not configured"
        try:
            self.clients.sns(arn).publish(TopicArn=arn, **msg)
        except Exception as e:
            return f"failed ({error_code(e) or type(e).__name__})"
        return "sent"

    def _done(self, call: Call, decision: Decision | None, outcome: str, results: list, notice: str = "none") -> dict:
        return {
            "tamper": {
                "eventId": call.event_id,
                "call": call.name,
                "outcome": outcome,
                "reason": decision.reason if decision else "no watch matches this call",
                "notification": notice,
                "actions": [r.line() for r in results],
            }
        }

    def _metric(self, name: str, value: float = 1) -> None:
        if self.metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def _log(self, level: str, msg: str, **fields: Any) -> None:
        if self.logger is not None:
            getattr(self.logger, level)(msg, extra=fields)


Call = calls.Call


def make_handler() -> Any:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.logging import correlation_paths

    logger = Logger(service="keyguard")
    metrics = Metrics(namespace="keyguard", service="keyguard")
    runtime = TamperRuntime(logger=logger, metrics=metrics)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return runtime.handle(event, context)

    lambda_handler.runtime = runtime  # type: ignore[attr-defined]
    lambda_handler.logger = logger  # type: ignore[attr-defined]
    return lambda_handler
