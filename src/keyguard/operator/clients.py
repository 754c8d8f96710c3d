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
from botocore.parsers import ResponseParserError

from keyguard.aws import Clients, error_code
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


class NotAWS(OperatorError):
    """The endpoint answered, but not like AWS."""


class OperatorClients(Clients):
    """boto3 clients for one profile / region / endpoint; credentials are checked before the first call.

    Interactive: short connect and read timeouts and few attempts, so that an endpoint that accepts a
    connection but never answers fails within seconds, and the message names the call that was slow."""

    ATTEMPTS = 3  # botocore's standard retries: 2 retries, throttling included

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: Any | None = None,
        timeout: float = 10,
    ) -> None:
        if session is None:
            try:
                session = boto3.session.Session(profile_name=profile, region_name=region)
            except ProfileNotFound as e:
                raise OperatorError(f"AWS profile {profile!r} not found in ~/.aws/config or ~/.aws/credentials") from e
        super().__init__(session, region or session.region_name or DEFAULT_REGION)
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self.last_call: str | None = None  # "iam:GetAccessKeyLastUsed": named when a call times out
        self._checked = False

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        found = self._clients.get(key)
        if found is None:
            self._check_credentials()
            config = Config(
                retries={"mode": "standard", "total_max_attempts": self.ATTEMPTS},
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
            )
            found = self._session.client(service, region_name=key[1], config=config, endpoint_url=self.endpoint_url)
            found.meta.events.register("before-call", self._note_call)
            found.meta.events.register("before-parse", self._looks_like_aws)
            self._clients[key] = found
        return found

    def _looks_like_aws(self, operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
        """An endpoint that answers with a web page is not AWS: say so before botocore makes sense of it."""
        headers = {k.lower(): v for k, v in ((response_dict or {}).get("headers") or {}).items()}
        kind = str(headers.get("content-type", "")).lower()
        if kind.startswith("text/html"):
            status = (response_dict or {}).get("status_code")
            raise NotAWS(
                f"{self.endpoint_url or 'the endpoint'} answered {self.last_call or 'the call'} with a web page "
                f"(HTTP {status}), not AWS's format: is it an AWS-compatible endpoint (e.g. moto_server)?"
            )

    def _note_call(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.last_call = f"{model.service_model.endpoint_prefix}:{model.name}"

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


def describe(exc: BaseException, *, endpoint: str | None = None, last_call: str | None = None) -> str:
    """One line saying what went wrong, without a traceback or Python's words for it."""
    code = error_code(exc)
    if code is not None:
        response = getattr(exc, "response", {})
        message = response.get("Error", {}).get("Message", "")
        operation = getattr(exc, "operation_name", "the call")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _REJECTED:
            return f"AWS rejected the credentials ({code}): check the profile or the keys in the environment"
        if code in _EXPIRED:
            return f"the AWS credentials have expired ({code}): refresh them (e.g. `aws sso login`)"
        if code.isdigit() or (status and not response.get("ResponseMetadata", {}).get("RequestId")):
            where = endpoint or "the endpoint"
            return one_line(
                f"{where} did not answer {operation} like AWS (HTTP {status or code}): is it an AWS-compatible "
                "endpoint (e.g. moto_server)?"
            )
        text = f"AWS {operation} failed: {code}: {message}"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            text += " (see docs/operator.md for the permissions each command needs)"
        return one_line(text)
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        what = f" waiting for {last_call}" if last_call else ""
        url = exc.kwargs.get("endpoint_url") or endpoint
        return f"timed out{what} at {url}: the endpoint accepts connections but does not answer (try --timeout)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url')}: no network, or the endpoint is down"
    if isinstance(exc, ResponseParserError):
        where = endpoint or "the endpoint"
        call = f" to {last_call}" if last_call else ""
        return f"{where} answered{call} with something that is not AWS's format: is it an AWS-compatible endpoint?"
    if isinstance(exc, NoRegionError):
        return "no AWS region configured: pass --region"
    if isinstance(exc, NotImplementedError):
        return f"the emulator does not implement {last_call or 'this call'}"
    if isinstance(exc, KeyguardError):
        return one_line(str(exc))
    if isinstance(exc, BotoCoreError):
        return one_line(f"AWS client error: {exc}")
    return one_line(f"unexpected error ({type(exc).__name__}): {exc}")


def one_line(text: str) -> str:
    return " ".join(text.split())
