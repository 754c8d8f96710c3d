"""Member-account credentials: AssumeRole through the regional STS endpoint, cached until shortly before
they expire, refreshed once when a member account answers that the session expired mid-response."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import botocore.session
from botocore.credentials import Credentials, ReadOnlyCredentials

ASSUME_PERMISSIONS = ("sts:AssumeRole",)
SESSION_SECONDS = 3600  # role chaining (a Lambda role assuming a role) caps sessions at one hour
REFRESH_MARGIN = 600  # refresh 10 minutes before expiry: longer than any function's timeout
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException"})
_NAME_BAD = re.compile(r"[^\w+=,.@-]")


def session_name(incident_id: str | None) -> str:
    """`keyguard-<incident>` in STS's RoleSessionName charset ([\\w+=,.@-]) and length (2..64); a long id
    keeps its start and a hash of the whole, so that two incidents never share a name by truncation."""
    name = "keyguard-" + _NAME_BAD.sub("-", incident_id or "operator")
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:53]}-{digest}"


class MemberCredentials(Credentials):
    """botocore credentials that assume the member role on first use and again shortly before expiry.

    The signer asks for frozen credentials before every attempt, so a refresh reaches every client made
    from the session, and a retried request is signed with the new ones."""

    def __init__(
        self,
        fetch: Callable[[], tuple[ReadOnlyCredentials, float]],
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Credentials.__init__ is not called: its fields are properties here, read from the current session
        self._fetch, self._margin, self._clock = fetch, margin, clock
        self._frozen: ReadOnlyCredentials | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.method = "assume-role"

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        with self._lock:
            if self._frozen is None or self._expires - self._clock() <= self._margin:
                self._frozen, self._expires = self._fetch()
            return self._frozen

    def expire(self) -> None:
        """Forget the session: the next signed request assumes the role again."""
        with self._lock:
            self._frozen = None

    @property
    def fresh(self) -> bool:
        with self._lock:
            return self._frozen is not None and self._expires - self._clock() > self._margin

    @property
    def access_key(self) -> str:  # type: ignore[override]
        return self.get_frozen_credentials().access_key

    @property
    def secret_key(self) -> str:  # type: ignore[override]
        return self.get_frozen_credentials().secret_key

    @property
    def token(self) -> str | None:  # type: ignore[override]
        return self.get_frozen_credentials().token

    @property
    def account_id(self) -> str | None:  # type: ignore[override]
        return None


def assume(sts: Any, role_arn: str, name: str, external_id: str | None) -> tuple[ReadOnlyCredentials, float]:
    kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": name, "DurationSeconds": SESSION_SECONDS}
    if external_id:
        kwargs["ExternalId"] = external_id
    got = sts.assume_role(**kwargs)["Credentials"]
    expires = got["Expiration"]
    at = expires.timestamp() if isinstance(expires, datetime) else time.time() + SESSION_SECONDS
    return ReadOnlyCredentials(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"]), at


class _Provider:
    """botocore's credential_provider component: the session's clients all use these credentials."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def load_credentials(self) -> Credentials:
        return self._credentials


def member_session(credentials: MemberCredentials, loader: Any = None) -> Any:
    """A botocore session for one member account: its own credentials, and one retry with fresh ones
    when the member account says the session expired (ExpiredToken) mid-response. `loader`: the central
    session's data loader, so that service models already read are not read again per account."""
    session = botocore.session.Session()
    if loader is not None:
        session.register_component("data_loader", loader)
    session.register_component("credential_provider", _Provider(credentials))
    session.register("needs-retry", _RetryExpired(credentials), unique_id="keyguard-member-expired")
    return session


class _RetryExpired:
    def __init__(self, credentials: MemberCredentials) -> None:
        self._credentials = credentials

    def __call__(self, response: Any = None, request_dict: Any = None, **_: Any) -> float | None:
        if not response or not isinstance(request_dict, dict):
            return None
        code = (response[1] or {}).get("Error", {}).get("Code") if isinstance(response, tuple) else None
        context = request_dict.setdefault("context", {})
        if code not in EXPIRED or context.get("keyguard_refreshed"):
            return None
        context["keyguard_refreshed"] = True
        self._credentials.expire()
        return 0  # retry now, signed with fresh credentials
