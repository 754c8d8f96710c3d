"""AWS access for the operator commands: boto3's normal credential chain (environment, --profile, SSO,
instance role), an optional AWS-compatible endpoint, and AWS errors as one line a person can act on.

Unlike `keyguard demo` / `invoke`, nothing here invents credentials: a real account is the point."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ReadTimeoutError,
)

from keyguard.aws import RETRY_CONFIG, Clients, error_code
from keyguard.errors import KeyguardError

DEFAULT_REGION = "us-east-1"  # IAM is global; EC2 regions are listed from here
NO_CREDENTIALS = (
    "no AWS credentials found: use --profile NAME, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "or run `aws sso login`"
)
_REJECTED = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "AuthFailure"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


class OperatorError(KeyguardError):
    """Bad input, or an answer from AWS that stops the command before it changes anything. One line, exit 2."""


class OperatorClients(Clients):
    """boto3 clients for one profile / region / endpoint; credentials are checked before the first call."""

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: Any | None = None,
    ) -> None:
        if session is None:
            try:
                session = boto3.session.Session(profile_name=profile, region_name=region)
            except ProfileNotFound as e:
                raise OperatorError(f"AWS profile {profile!r} not found in ~/.aws/config or ~/.aws/credentials") from e
        super().__init__(session, region or session.region_name or DEFAULT_REGION)
        self.endpoint_url = endpoint_url
        self._checked = False

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        found = self._clients.get(key)
        if found is None:
            self._check_credentials()
            config = Config(retries=RETRY_CONFIG, connect_timeout=5, read_timeout=30)
            found = self._session.client(service, region_name=key[1], config=config, endpoint_url=self.endpoint_url)
            self._clients[key] = found
        return found

    def _check_credentials(self) -> None:
        if self._checked:
            return
        try:
            found = self._session.get_credentials()
        except BotoCoreError as e:  # e.g. an SSO profile whose token expired
            raise OperatorError(f"cannot load AWS credentials: {one_line(str(e))}") from e
        if found is None:
            raise OperatorError(NO_CREDENTIALS)
        self._checked = True


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, without a traceback."""
    code = error_code(exc)
    if code is not None:
        response = getattr(exc, "response", {})
        message = response.get("Error", {}).get("Message", "")
        operation = getattr(exc, "operation_name", "the call")
        if code in _REJECTED:
            return f"AWS rejected the credentials ({code}): check the profile or the keys in the environment"
        if code in _EXPIRED:
            return f"the AWS credentials have expired ({code}): refresh them (e.g. `aws sso login`)"
        text = f"AWS {operation} failed: {code}: {message}"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            text += " (see docs/operator.md for the permissions each command needs)"
        return one_line(text)
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url')}: no network, or the endpoint is down"
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return f"timed out talking to {exc.kwargs.get('endpoint_url')}"
    if isinstance(exc, NoRegionError):
        return "no AWS region configured: pass --region"
    if isinstance(exc, KeyguardError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def one_line(text: str) -> str:
    return " ".join(text.split())
