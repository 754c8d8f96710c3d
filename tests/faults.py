"""Fault injection at the HTTP seam: a botocore `before-send` hook answers instead of the service, so
botocore's own error parsing and retry logic (standard mode) run as they would against AWS.

- `Fault(client, operation, code, status, times)` answers with an AWS error (XML for query services such as
  IAM and SNS, JSON for DynamoDB).
- `Fault(..., raises=EndpointConnectionError)` raises a transport error from the hook instead: botocore
  treats it as the network failing and retries it as such.
- `inject(client, operation, kind, times)` picks the real error shape of a fault kind for the client's
  service (`FAULT_KINDS`).
- `Backoff` replaces the one `time.sleep` botocore's endpoint makes between attempts with a recorder, so
  a test sees every delay the retry policy chose without waiting for it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from keyguard.aws import event_emitter
from keyguard.local.cloudtrail import RawBody


class Fault:
    """Answer `operation` calls of `client` with AWS error `code`, `times` times (None: always).

    With `raises` (an exception class), raise it from the hook instead of answering: a connection error or
    a timeout. `calls` counts the attempts that were faulted (botocore's retries included)."""

    def __init__(
        self,
        client: Any,
        operation: str,
        code: str = "",
        status: int = 400,
        times: int | None = None,
        *,
        raises: type[Exception] | None = None,
    ):
        self.client, self.code, self.status, self.left = client, code, status, times
        self.operation, self.raises = operation, raises
        self.event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self.calls = 0
        self._lock = threading.Lock()
        client.meta.events.register_first(self.event, self._answer, unique_id=f"fault-{operation}")

    def take(self) -> bool:
        """Count one faulted call; False once the fault has answered `times` calls."""
        with self._lock:
            if self.left is not None and self.left <= 0:
                return False
            self.calls += 1
            if self.left is not None:
                self.left -= 1
            return True

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self.take():
            return None
        # Every before-send handler runs (moto's too); pointing the request nowhere keeps the service,
        # emulated or not, from acting on it. Ours is registered first, so botocore takes our answer.
        url, request.url = request.url, "https://fault-injected.invalid/"
        if self.raises is EndpointConnectionError:
            raise EndpointConnectionError(endpoint_url=url, error="injected: connection refused")
        if self.raises is ReadTimeoutError:
            raise ReadTimeoutError(endpoint_url=url, error="injected: read timed out")
        if self.raises is not None:
            raise self.raises(f"injected {self.raises.__name__}")
        if self.client.meta.service_model.protocol in ("json", "rest-json"):
            body = json.dumps({"__type": f"com.amazonaws.injected#{self.code}", "message": f"injected {self.code}"})
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": self.code}
        else:
            body = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{self.code}</Code><Message>injected {self.code}</Message></Error>"
                "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            )
            headers = {"Content-Type": "text/xml"}
        return AWSResponse(request.url, self.status, headers, RawBody(body.encode()))

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"fault-{self.event.rsplit('.', 1)[-1]}")


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault, as each service really answers it: (code, HTTP status) per service id, or a
    transport exception. `transient`: botocore's standard retry mode retries it."""

    name: str
    transient: bool
    answers: dict[str, tuple[str, int]] | None = None
    raises: type[Exception] | None = None

    def code_for(self, service: str) -> str:
        if self.raises is not None:
            return self.raises.__name__
        assert self.answers is not None
        return self.answers[service][0]


FAULT_KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind(
            "throttling",
            True,
            {
                "iam": ("Throttling", 400),
                "sns": ("Throttled", 429),  # SNS's ThrottledException is HTTP 429, code "Throttled"
                "dynamodb": ("ThrottlingException", 400),
                "sqs": ("RequestThrottled", 400),
                "sts": ("Throttling", 400),
                "cloudtrail": ("ThrottlingException", 400),
                "ec2": ("RequestLimitExceeded", 503),
            },
        ),
        FaultKind(
            "access-denied",
            False,
            {
                "iam": ("AccessDenied", 403),
                "sns": ("AuthorizationError", 403),
                "dynamodb": ("AccessDeniedException", 400),
                "sqs": ("AccessDenied", 403),
                "sts": ("AccessDenied", 403),
                "cloudtrail": ("AccessDeniedException", 400),
                "ec2": ("UnauthorizedOperation", 403),
            },
        ),
        FaultKind(
            "not-found",
            False,
            {
                "iam": ("NoSuchEntity", 404),
                "sns": ("NotFound", 404),
                "dynamodb": ("ResourceNotFoundException", 400),
                "sqs": ("QueueDoesNotExist", 400),
                "sts": ("InvalidIdentityToken", 400),
                "cloudtrail": ("TrailNotFoundException", 400),
                "ec2": ("InvalidInstanceID.NotFound", 400),
            },
        ),
        FaultKind("connection-error", True, raises=EndpointConnectionError),
        FaultKind("read-timeout", True, raises=ReadTimeoutError),
    )
}


def inject(client: Any, operation: str, kind: str, times: int | None = None) -> Fault:
    """Fault `operation` of `client` with a FAULT_KINDS kind, in the shape the client's service uses."""
    fk = FAULT_KINDS[kind]
    if fk.raises is not None:
        return Fault(client, operation, times=times, raises=fk.raises)
    assert fk.answers is not None
    code, status = fk.answers[client.meta.service_model.service_id.hyphenize()]
    return Fault(client, operation, code, status=status, times=times)


class CallLog:
    """The ordered AWS operations made through clients or sessions (botocore `before-call`: once per API
    call, however many attempts its retries take). A boto3 Session's hook reaches every client made from
    it afterwards, so a call to a service nobody expected is seen too."""

    def __init__(self, *clients: Any) -> None:
        self.calls: list[str] = []
        self.services: list[tuple[str, str]] = []  # (service, operation)
        self._lock = threading.Lock()
        self._emitters = []
        for client in clients:
            meta = getattr(client, "meta", None)
            emitter = meta.events if meta is not None and hasattr(meta, "events") else event_emitter(client)
            # unique_id: a client made from a logged session already has the hook; never record twice
            emitter.register("before-call", self._record, unique_id=f"calllog-{id(self)}")
            self._emitters.append(emitter)

    def close(self) -> None:
        """Stop logging (the hooks stay in clients made from a logged session meanwhile)."""
        for emitter in self._emitters:
            emitter.unregister("before-call", unique_id=f"calllog-{id(self)}")

    def _record(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(model.name)
            self.services.append((model.service_model.service_name, model.name))


class Backoff:
    """Stands in for `time.sleep` in botocore's endpoint (its only use there: the pause between attempts
    that the retry policy computed). Records each delay instead of sleeping, so a test sees the backoff
    without waiting for it. Use as a context manager or via `install(monkeypatch)`."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)

    def __getattr__(self, name: str) -> Any:  # everything else botocore.endpoint reads from `time`
        import time

        return getattr(time, name)

    def install(self, monkeypatch: Any) -> Backoff:
        import botocore.endpoint

        monkeypatch.setattr(botocore.endpoint, "time", self)
        return self

    def __enter__(self) -> Backoff:
        import botocore.endpoint

        self._saved = botocore.endpoint.time
        botocore.endpoint.time = self  # type: ignore[assignment]
        return self

    def __exit__(self, *_: Any) -> None:
        import botocore.endpoint

        botocore.endpoint.time = self._saved


class RandomFault:
    """Answer a share (`rate`) of one service's attempts with an AWS error, chosen by a seeded random
    generator: a burst under throttling. Registered on a boto3 Session (or a client), so every client made
    from the session afterwards is faulted. Counts attempts and faulted attempts."""

    def __init__(
        self, emitter_owner: Any, service: str, rate: float, code: str = "Throttling", status: int = 400, seed: int = 5
    ) -> None:
        import random

        self.rate, self.code, self.status = rate, code, status
        self.attempts = 0
        self.faulted = 0
        self._random = random.Random(seed)  # noqa: S311 - a reproducible share of faults, not a secret
        self._lock = threading.Lock()
        meta = getattr(emitter_owner, "meta", None)
        self._emitter = meta.events if meta is not None and hasattr(meta, "events") else event_emitter(emitter_owner)
        self._event = f"before-send.{service}"
        self._emitter.register_first(self._event, self._answer, unique_id=f"random-fault-{id(self)}")

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            self.attempts += 1
            if self._random.random() >= self.rate:
                return None
            self.faulted += 1
        request.url = "https://fault-injected.invalid/"
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{self.code}</Code><Message>injected {self.code}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, self.status, {"Content-Type": "text/xml"}, RawBody(body.encode()))

    def remove(self) -> None:
        self._emitter.unregister(self._event, unique_id=f"random-fault-{id(self)}")


# ------------------------------------------------------------------------- moto in process, several threads

TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"


class SerialEmulator:
    """Makes in-process moto safe for tests that run containers in threads, and as strict as DynamoDB
    about transactions that overlap.

    moto's backends are not thread-safe: its TransactWriteItems deep-copies the tables, applies the items
    and restores the copy on failure, so a second thread writing meanwhile either breaks the copy
    ("dictionary changed size during iteration") or is undone by the restore. Real services serialise
    each item's writes. Here one lock serialises moto's handling of every request (the before-send seam
    where moto answers botocore), so each call is atomic as it is against AWS.

    DynamoDB also cancels a TransactWriteItems that touches an item another transaction is still writing
    (TransactionCanceledException, CancellationReasons Code `TransactionConflict` for the contested items,
    `None` for the others). With the lock alone, moto would never do that: here a transaction counts as in
    flight from the moment it reaches the seam (waiting for the lock included) until moto has answered,
    and one that arrives meanwhile naming one of its items is cancelled the way DynamoDB cancels it, so
    keyguard's own handling of conflicts runs in every concurrent test. `conflicts` counts them."""

    _installed: SerialEmulator | None = None

    def __init__(self) -> None:
        self.lock = threading.RLock()  # re-entrant: a moto handler that calls another service is not stuck
        self._flight = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self.conflicts = 0
        self.transactions = 0

    @classmethod
    def install(cls) -> SerialEmulator:
        """Once per process, for every client (moto's stubber is one object botocore calls for all)."""
        if cls._installed is None:
            from moto.core.botocore_stubber import BotocoreStubber

            serial = cls()
            answer = BotocoreStubber.__call__

            def call(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
                if not stubber.enabled:
                    return None
                return serial.handle(lambda: answer(stubber, event_name, request, **kwargs), request)

            BotocoreStubber.__call__ = call  # type: ignore[method-assign]
            cls._installed = serial
        return cls._installed

    def handle(self, answer: Any, request: Any) -> Any:
        keys = self._items(request)
        if keys:
            with self._flight:
                self.transactions += 1
                contested = [k in self._in_flight for k in keys]
                if any(contested):
                    self.conflicts += 1
                    return _conflict(request, contested)
                for k in keys:
                    self._in_flight[k] = self._in_flight.get(k, 0) + 1
        try:
            with self.lock:
                return answer()
        finally:
            if keys:
                with self._flight:
                    for k in keys:
                        self._in_flight[k] -= 1
                        if not self._in_flight[k]:
                            del self._in_flight[k]

    @staticmethod
    def _items(request: Any) -> list[tuple[str, str]]:
        """The (table, key) of every item a TransactWriteItems request names, in request order."""
        target = request.headers.get("X-Amz-Target")
        if isinstance(target, bytes):
            target = target.decode()
        if target != TRANSACT_WRITE:
            return []
        body = request.body
        try:
            parsed = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        except ValueError:
            return []
        out = []
        for item in parsed.get("TransactItems", []):
            spec = next(iter(item.values()), {})
            key = spec.get("Key") or {n: spec.get("Item", {}).get(n) for n in ("pk", "sk", "id")}
            out.append((spec.get("TableName", ""), json.dumps({k: v for k, v in key.items() if v}, sort_keys=True)))
        return out


def _conflict(request: Any, contested: list[bool]) -> AWSResponse:
    """DynamoDB's answer to a transaction that overlaps another one in flight (its documented shape)."""
    reasons = [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item."} if c else {"Code": "None"}
        for c in contested
    ]
    codes = ", ".join(r["Code"] for r in reasons)
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            "CancellationReasons": reasons,
        }
    )
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "TransactionCanceledException"}
    return AWSResponse(request.url, 400, headers, RawBody(body.encode()))


def transaction_conflict(client: Any, times: int | None = None, contested: tuple[int, ...] = (1,)) -> Fault:
    """Cancel `client`'s TransactWriteItems `times` times as DynamoDB cancels a transaction that conflicts
    with another in flight: TransactionCanceledException with one CancellationReason per item of the
    request, `TransactionConflict` at the `contested` positions (default: the item after the history
    entry, the principal's state), `None` elsewhere."""
    fault = Fault(client, "TransactWriteItems", "TransactionCanceledException", times=times)

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if not fault.take():
            return None
        n = len(json.loads(request.body).get("TransactItems", []))
        at = [i for i in contested if i < n] or [0]  # a lone history entry: the entry itself
        request.url = "https://fault-injected.invalid/"
        return _conflict(request, [i in at for i in range(n)])

    client.meta.events.unregister(fault.event, unique_id="fault-TransactWriteItems")
    client.meta.events.register_first(fault.event, answer, unique_id="fault-TransactWriteItems")
    return fault


class LostAnswer:
    """The service acts on `operation` (moto, in process), but its answer is lost on the way back (a read
    timeout), `times` times: botocore sends the same request again, as it does against AWS after a
    timeout. What a caller then sees shows whether its write is idempotent."""

    def __init__(self, client: Any, operation: str, times: int = 1) -> None:
        self.client, self.left, self.calls = client, times, 0
        self.event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self._lock = threading.Lock()
        client.meta.events.register_first(self.event, self._answer, unique_id=f"lost-{operation}")

    def _answer(self, request: Any, event_name: str = "", **_: Any) -> None:
        with self._lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.calls += 1
        from moto.core.models import botocore_stubber

        botocore_stubber(event_name=event_name, request=request)  # the service acts; its answer is dropped
        url, request.url = request.url, "https://fault-injected.invalid/"
        raise ReadTimeoutError(endpoint_url=url, error="injected: the answer was lost")

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"lost-{self.event.rsplit('.', 1)[-1]}")
