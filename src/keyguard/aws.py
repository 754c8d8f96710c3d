"""AWS clients: created lazily, once per container, with standard retries (IAM throttles)."""

from __future__ import annotations

import os
from typing import Any

# Imported with the handler (Lambda's init phase), not on the first event; clients are still made lazily.
# botocore, not boto3: containment needs nothing boto3 adds, and boto3 takes tens of ms more to load.
import botocore.session
from botocore.config import Config

RETRY_CONFIG = {"mode": "standard", "max_attempts": 5}


class Clients:
    """Lazily created AWS clients (botocore). Pass one in; never create clients at import time.

    The endpoint comes from botocore's own AWS_ENDPOINT_URL setting (used for emulators such as moto_server).
    """

    def __init__(self, session: Any | None = None, region: str | None = None, retries: dict | None = None) -> None:
        self._session = session
        self._region = region
        self._retries = retries or RETRY_CONFIG
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def session(self) -> Any:
        """The session every client is made from: botocore's own, or a boto3 Session passed in (the
        operator commands pass one for --profile)."""
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session

    @property
    def events(self) -> Any:
        """The session's event emitter: hooks registered here reach every client made afterwards."""
        return event_emitter(self.session)

    @property
    def region(self) -> str:
        return self._region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        found = self._clients.get(key)
        if found is None:
            config = Config(retries=self._retries, connect_timeout=5, read_timeout=15)
            make = getattr(self.session, "create_client", None) or self.session.client  # botocore | boto3
            found = make(service, region_name=key[1], config=config)
            self._clients[key] = found
        return found

    @property
    def iam(self) -> Any:
        return self.get("iam")

    def sns(self, topic_arn: str | None = None) -> Any:
        region = topic_arn.split(":")[3] if topic_arn and topic_arn.count(":") >= 5 else None
        return self.get("sns", region)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def event_emitter(session: Any) -> Any:
    """The event emitter of a boto3 Session (`.events`) or a botocore Session (its component)."""
    found = getattr(session, "events", None)
    return found if found is not None else session.get_component("event_emitter")
