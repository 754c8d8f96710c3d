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

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            if self.left is not None and self.left <= 0:
                return None
            self.calls += 1
            if self.left is not None:
                self.left -= 1
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
