"""Fault injection at the HTTP seam: a botocore `before-send` hook answers instead of the service, so
botocore's own error parsing and retry logic (standard mode) run as they would against AWS."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class Fault:
    """Answer `operation` calls of `client` with AWS error `code`, `times` times (None: always)."""

    def __init__(self, client: Any, operation: str, code: str, status: int = 400, times: int | None = None):
        self.client, self.code, self.status, self.left = client, code, status, times
        self.event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self.calls = 0
        client.meta.events.register_first(self.event, self._answer, unique_id=f"fault-{operation}")

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.left is not None and self.left <= 0:
            return None
        self.calls += 1
        # Every before-send handler runs (moto's too); pointing the request nowhere keeps the service,
        # emulated or not, from acting on it. Ours is registered first, so botocore takes our answer.
        request.url = "https://fault-injected.invalid/"
        if self.left is not None:
            self.left -= 1
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{self.code}</Code><Message>injected {self.code}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, self.status, {"Content-Type": "text/xml"}, _Raw(body.encode()))

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"fault-{self.event.rsplit('.', 1)[-1]}")


class CallLog:
    """The ordered AWS operations a client makes (botocore event hook)."""

    def __init__(self, *clients: Any) -> None:
        self.calls: list[str] = []
        for client in clients:
            client.meta.events.register("before-call", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
