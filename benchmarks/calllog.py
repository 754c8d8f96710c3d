"""Every AWS operation any boto3/botocore client makes, in order, with its HTTP status and timestamps.

Like tests/faults.py's CallLog, this is a botocore event hook ('before-call' / 'after-call'), but it is
installed in botocore's BUILTIN_HANDLERS, so it also sees clients that code under test creates itself
(Cloud Custodian makes its own sessions). Install it before the first session is created. It needs only
botocore, so the Custodian venv imports it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

CONTAINMENT = frozenset({"UpdateAccessKey", "PutUserPolicy", "PutRolePolicy", "AttachUserPolicy", "DeleteAccessKey"})


@dataclass
class Call:
    service: str
    operation: str
    started: float
    status: int | None = None  # None: no HTTP answer (the call raised before one came back)
    ended: float | None = None
    sent: float | None = None  # the first attempt's request was built and signed (botocore, client side)

    @property
    def name(self) -> str:
        return self.operation if self.status is None or self.status < 300 else f"{self.operation}!{self.status}"


class CallRecorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.enabled = True

    def install(self) -> CallRecorder:
        import botocore.handlers

        handlers = botocore.handlers.BUILTIN_HANDLERS
        for pair in (("before-call", self._before), ("after-call", self._after)):
            if pair not in handlers:
                handlers.append(pair)
        # First in line for before-send: moto answers there, and nothing after an answer is called.
        if ("before-send", self._send) not in handlers:
            handlers.insert(0, ("before-send", self._send))
        return self

    def _send(self, **_) -> None:
        if self.enabled and self.calls and self.calls[-1].sent is None:
            self.calls[-1].sent = time.perf_counter()

    def _before(self, model, **_) -> None:
        if self.enabled:
            self.calls.append(Call(model.service_model.service_name, model.name, time.perf_counter()))

    def _after(self, http_response, model, **_) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        for call in reversed(self.calls):
            if call.operation == model.name and call.ended is None:
                call.status, call.ended = http_response.status_code, now
                return

    def clear(self) -> None:
        self.calls.clear()


def first_containment(calls: list[Call], containment: frozenset[str] = CONTAINMENT) -> int | None:
    """Index of the first containment call that IAM accepted (it 'landed'), None if there is none."""
    for i, call in enumerate(calls):
        if call.operation in containment and call.status is not None and call.status < 300:
            return i
    return None
