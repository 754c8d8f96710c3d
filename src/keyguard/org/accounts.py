"""Where each incident is acted on: the account the function runs in, or (organization mode) the member
account its event proves, through the member role. The runtime asks `place()` once per incident."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from keyguard.actions import ActionResult, Status
from keyguard.aws import Clients, error_code
from keyguard.errors import KeyguardError
from keyguard.incident import Incident
from keyguard.org import target
from keyguard.org.credentials import MemberCredentials, assume, member_session, session_name
from keyguard.org.directory import Directory, DirectoryUnavailable
from keyguard.org.settings import OrgSettings, partition_of
from keyguard.plan import Outcome
from keyguard.respond import Response
from keyguard.settings import Settings

ASSUME_ACTION = "assume-member-role"
MEMBER_BOUNDARY = "AWSDenyAll"  # the quarantine's permissions boundary in member accounts (AWS managed)
MEMBER_SIDE_ROLES = ("keyguard-forwarder", "keyguard-operator")  # templates/member-global.yaml


@dataclass
class Placement:
    """One incident, where to act on it: `iam` and `clients` of its account, or `refused` (a response
    that says why nothing was done there)."""

    incident: Incident
    account: str | None
    clients: Clients | None = None
    refused: Response | None = None
    settings: Settings | None = None  # the settings for that account (None: the runtime's, unchanged)

    @property
    def iam(self) -> Any:
        return self.clients.iam if self.clients is not None else None


class AccountRefused(KeyguardError):
    """Organization mode: the account cannot be acted in (see the message); nothing was done there."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class SingleAccount:
    """Account mode (the default): everything happens in the account the function runs in."""

    organization = False

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def place(self, event: Any, incident: Incident, account: str | None, settings: Settings | None = None) -> Placement:
        return Placement(incident, account, self.clients)

    def clients_for(self, account: str | None, incident_id: str | None = None) -> Clients:
        return self.clients

    def settings_for(self, settings: Settings, account: str | None) -> Settings:
        return settings


class Organization:
    """Organization mode: one `Clients` per member account, made from the member role's credentials."""

    organization = True

    def __init__(
        self,
        central: Clients,
        settings: OrgSettings,
        *,
        directory: Directory | None = None,
        prepare: Callable[[Any], None] | None = None,
    ) -> None:
        self.central, self.settings = central, settings
        self.directory = directory or Directory(lambda: central.get("organizations"), settings.allowed)
        _regional_sts(central)
        self._prepare = prepare  # tests: install stand-ins on each member session
        self._members: dict[str, tuple[MemberCredentials, Clients]] = {}
        self._lock = threading.Lock()
        self.assume_calls = 0

    # ---------------------------------------------------------------- the runtime's seam
    def place(self, event: Any, incident: Incident, account: str | None, settings: Settings | None = None) -> Placement:
        """The incident in the account its event proves, with clients (and settings) there; or refused,
        with the reason."""
        try:
            where = target.of(event, incident.source)
        except target.NotProven as e:
            return _refused(incident, f"The event does not prove its account: {e}. Nothing was done.")
        proven = replace(incident, account=where.account, region=where.region or incident.region)
        if where.account != where.delivered_by and not self._may_speak_for_others(where.delivered_by, account):
            return _refused(
                proven,
                f"Account {where.delivered_by} delivered an event about account {where.account}; only a "
                "delegated administrator's events may name another account. Nothing was done in either.",
            )
        try:
            clients = self.clients_for(where.account, incident.incident_id)
        except AccountRefused as e:
            if e.retry:
                return _failed(proven, self.settings.role_arn(where.account), str(e))
            return _refused(proven, f"{e} Nothing was done.")
        return Placement(proven, where.account, clients, settings=self.settings_for(settings, where.account))

    def settings_for(self, settings: Settings | None, account: str | None) -> Settings | None:
        """The runtime's settings as they apply in a member account: the quarantine boundary is AWS's own
        deny-all policy there (a boundary must be in the user's account or AWS managed, and nobody can
        edit AWSDenyAll), and keyguard's member-side roles are its own roles, never acted on."""
        if settings is None:
            return None
        boundary = f"arn:{self._partition}:iam::aws:policy/{MEMBER_BOUNDARY}" if settings.deny_all_policy_arn else None
        own = settings.own_roles | {name.lower() for name in (self.settings.member_role_name, *MEMBER_SIDE_ROLES)}
        return replace(settings, deny_all_policy_arn=boundary, own_roles=frozenset(own))

    def clients_for(self, account: str | None, incident_id: str | None = None) -> Clients:
        """Clients acting in `account` through its member role (cached per account, refreshed before
        expiry). Raises AccountRefused: retry=False for an account keyguard must not act in."""
        if account is None:
            raise AccountRefused("No account was named.", retry=False)
        try:
            standing = self.directory.standing(account)
        except DirectoryUnavailable as e:
            why = f"AWS Organizations could not say whether {account} is a member: {e}"
            raise AccountRefused(why, retry=True) from e
        if not standing.ok:
            raise AccountRefused(f"Refused: {standing.reason}; keyguard never assumes a role there.", retry=False)
        with self._lock:
            found = self._members.get(account)
        if found is not None:
            return found[1]
        credentials = MemberCredentials(self._fetcher(account, incident_id))
        try:
            credentials.get_frozen_credentials()  # now, so that a refused AssumeRole is reported as such
        except Exception as e:
            code = error_code(e) or type(e).__name__
            raise AccountRefused(
                f"AssumeRole into {self.settings.role_arn(account, self._partition)} failed ({code}): the member "
                "role is missing, or its trust does not name this function",
                retry=True,
            ) from e
        session = member_session(credentials, _loader(self.central))
        if self._prepare is not None:
            self._prepare(session)
        clients = Clients(session=session, region=self.central.region)
        with self._lock:
            self._members[account] = (credentials, clients)
        return clients

    # ---------------------------------------------------------------- details
    @property
    def _partition(self) -> str:
        return partition_of(self.central.region)

    def _fetcher(self, account: str, incident_id: str | None) -> Callable[[], Any]:
        arn = self.settings.role_arn(account, self._partition)
        name = session_name(incident_id)

        def fetch() -> Any:
            self.assume_calls += 1
            return assume(self.central.get("sts"), arn, name, self.settings.external_id)

        return fetch

    def _may_speak_for_others(self, delivered_by: str, own_account: str | None) -> bool:
        return delivered_by in self.settings.delegated_admins or (
            not self.settings.delegated_admins and delivered_by == own_account
        )


def _regional_sts(clients: Clients) -> None:
    """AssumeRole through the STS endpoint of the function's own region (botocore's default since 1.36;
    pinned here so that AWS_STS_REGIONAL_ENDPOINTS=legacy cannot send it to the global endpoint)."""
    session = getattr(clients.session, "_session", clients.session)  # a boto3 Session wraps botocore's
    setter = getattr(session, "set_config_variable", None)
    if setter is not None:
        setter("sts_regional_endpoints", "regional")


def _loader(clients: Clients) -> Any:
    session = getattr(clients.session, "_session", clients.session)  # a boto3 Session wraps botocore's
    get = getattr(session, "get_component", None)
    return get("data_loader") if get is not None else None


def _refused(incident: Incident, reason: str) -> Placement:
    return Placement(incident, None, refused=Response(incident, Outcome.OTHER_ACCOUNT, reason=reason))


def _failed(incident: Incident, role_arn: str, detail: str) -> Placement:
    result = ActionResult(ASSUME_ACTION, role_arn, Status.FAILED, detail[:300], "AssumeRoleFailed")
    response = Response(
        incident,
        Outcome.FAILED,
        reason=f"Could not act in account {incident.account}: nothing was changed. keyguard will retry.",
        results=[result],
    )
    return Placement(incident, None, refused=response)


def for_runtime(clients: Clients, environ: Mapping[str, str] | None = None) -> SingleAccount | Organization:
    """Account mode, or organization mode, as the stack's KEYGUARD_DEPLOYMENT_MODE says."""
    settings = OrgSettings.from_env(environ)
    if not settings.organization:
        return SingleAccount(clients)
    return Organization(clients, settings)
