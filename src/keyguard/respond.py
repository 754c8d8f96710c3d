"""The engine: verify the owner, run the plan, containment first. Notification comes after, elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from keyguard.actions import NOT_FOUND, TAG_PREFIX, Action, ActionResult, DeactivateAccessKey, Status, tag_value
from keyguard.aws import error_code
from keyguard.incident import Incident, Kind
from keyguard.plan import Outcome, owner_is_verifiable, plan_actions, protection, triage
from keyguard.settings import Settings

LOOKUP_OWNER_PERMISSIONS = ("iam:GetAccessKeyLastUsed",)
EXEMPTION_PERMISSIONS = ("iam:ListUserTags",)


@dataclass
class Response:
    """What keyguard did about one incident: the notification is made from this."""

    incident: Incident
    outcome: Outcome
    reason: str = ""
    owner: str | None = None
    owner_note: str | None = None  # e.g. the event named another user than IAM did
    results: list[ActionResult] = field(default_factory=list)
    dry_run: bool = False
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    pending: list[Action] = field(default_factory=list)  # records held back by respond(defer_records=True)
    first_contained: datetime | None = None  # when this incident was first contained (a redelivery)
    _actions: list[Action] = field(default_factory=list, repr=False)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    @property
    def failures(self) -> list[ActionResult]:
        return [r for r in self.results if r.status is Status.FAILED]


class _OwnerLookupFailed(Exception):
    def __init__(self, result: ActionResult) -> None:
        super().__init__(result.detail)
        self.result = result


def respond(
    incident: Incident,
    settings: Settings,
    iam: Any,
    *,
    account: str | None = None,
    now: datetime | None = None,
    defer_records: bool = False,
) -> Response:
    """Contain one incident. Never raises for AWS errors: they are results; the caller raises after notifying.

    With defer_records, the actions that only write down what was done (tags) are left in
    `response.pending` for `finish()`: an event naming many keys then denies them all first."""
    now = now or datetime.now(UTC)
    response = Response(incident, Outcome.FAILED, dry_run=settings.dry_run, at=now)
    early = triage(incident, settings, account)
    if early:
        response.outcome, response.reason = early
        return response
    try:
        return _contain(incident, settings, iam, now, response, defer_records)
    except _OwnerLookupFailed as e:
        response.results.append(e.result)
        response.outcome = Outcome.FAILED
        response.reason = f"{e.result.action} failed, so nothing was changed. keyguard will retry."
        return response


def _contain(
    incident: Incident, settings: Settings, iam: Any, now: datetime, response: Response, defer_records: bool
) -> Response:
    named = incident.principal_name
    verified = False
    if not owner_is_verifiable(incident):
        owner = named  # role or session credentials: GuardDuty names the principal; IAM has no key to ask about
    elif settings.dry_run or named is None:
        owner, verified = _lookup_owner(iam, incident.key_id), True
    else:
        owner = named  # tentative: deactivating with this name proves it (NoSuchEntity otherwise)
    if _stopped_for(response, incident, owner, settings, iam):
        return response

    actions = plan_actions(incident, owner, response.first_contained or now)
    if settings.dry_run:
        response.results = [a.dry_run() for a in actions]
        response.outcome, response.reason = Outcome.WOULD_CONTAIN, "Dry-run: nothing was changed."
        return response

    result = actions[0].run(iam)
    if isinstance(actions[0], DeactivateAccessKey) and result.error_code == NOT_FOUND and not verified:
        # The named user does not own the key (or does not exist): IAM says who does.
        owner = _lookup_owner(iam, incident.key_id)
        if _stopped_for(response, incident, owner, settings, iam):
            return response
        actions = plan_actions(incident, owner, response.first_contained or now)
        result = actions[0].run(iam)
    elif result.error_code == NOT_FOUND and not owner_is_verifiable(incident):
        # session credentials of a user or role that does not exist (any more): nothing to contain
        response.results = [replace(result, status=Status.SKIPPED, detail=f"{result.detail[:120]}: not found")]
        return _not_found(response)
    response.results = [result]
    response._actions = actions
    for action in actions[1:]:
        if action.records and not any(r.status is Status.DONE for r in response.results):
            # never write down a containment that did not happen (failed, or nothing there to contain)
            why = "containment failed: not recorded" if response.failures else "nothing was contained: not recorded"
            response.results.append(ActionResult(action.name, action.target, Status.SKIPPED, why))
        elif action.records and response.failures:
            skipped = ActionResult(action.name, action.target, Status.SKIPPED, "containment failed: not recorded")
            response.results.append(skipped)
        elif action.records and defer_records:
            response.pending.append(action)
        else:
            response.results.append(action.run(iam))
    return _conclude(response, incident, actions)


def finish(response: Response, iam: Any) -> Response:
    """Run the records respond(defer_records=True) held back, and conclude again."""
    while response.pending:
        response.results.append(response.pending.pop(0).run(iam))
    if response._actions:
        _conclude(response, response.incident, response._actions)
    return response


def _stopped_for(response: Response, incident: Incident, owner: str | None, settings: Settings, iam: Any) -> bool:
    """Record the owner (noting a mismatch with the event); True when keyguard must not act on it:
    the key is in no user of this account, or the owner is protected or exempt."""
    if owner is None:
        _not_found(response)
        return True
    response.owner = owner
    named = incident.principal_name
    if named and named != owner:
        response.owner_note = f"the event named user {named!r}, but IAM says the key belongs to {owner!r}"
    stop = protection(incident, owner, settings) or _exemption(response, incident, owner, settings, iam)
    if stop:
        response.outcome, response.reason = stop
    return stop is not None


def _conclude(response: Response, incident: Incident, actions: list[Action]) -> Response:
    if response.failures:
        names = ", ".join(r.action for r in response.failures)
        response.outcome, response.reason = (
            Outcome.FAILED,
            f"Containment failed: {names}. keyguard will retry.",
        )
    elif all(r.status is Status.SKIPPED for r in response.results):
        response.outcome = Outcome.NOT_FOUND
        response.reason = "; ".join(r.detail for r in response.results)
    elif incident.kind is Kind.NEW_KEY:
        response.outcome = Outcome.CONTAINED
        response.reason = "New long-lived access key: deactivated; sessions minted from it revoked."
    elif not incident.key_id:  # AWS quarantined the user and named no key: the user, not a key, is contained
        response.outcome = Outcome.CONTAINED
        response.reason = (
            "AWS quarantined this user's credentials: keyguard's deny-all quarantine is on the user. No key was"
            " named, so none was deactivated."
        )
    elif actions and actions[0].name == "revoke-role-sessions":
        response.outcome = Outcome.SESSIONS_REVOKED
        response.reason = "Role credentials in use from elsewhere: every session issued before now is denied."
    else:
        response.outcome = Outcome.CONTAINED
        response.reason = "Leaked access key: deactivated; the user is quarantined with a deny-all policy."
    return response


def _not_found(response: Response) -> Response:
    response.outcome = Outcome.NOT_FOUND
    response.reason = "Access key not found in this account: already deleted, or another account's key."
    return response


def _lookup_owner(iam: Any, key_id: str) -> str | None:
    """The key's owner according to IAM (one call), or None if the key is not in this account."""
    try:
        return iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName")
    except Exception as e:
        code = error_code(e) or type(e).__name__
        if code == NOT_FOUND:
            return None
        raise _OwnerLookupFailed(ActionResult("lookup-owner", key_id, Status.FAILED, f"{code}: {e}"[:300], code)) from e


def _exemption(
    response: Response, incident: Incident, user: str, settings: Settings, iam: Any
) -> tuple[Outcome, str] | None:
    """New keys of users tagged <ExemptTagKey>=true are reported, not acted on (one call). The same tags
    say whether this incident was contained before (a redelivery): its cut-off time is then kept."""
    if incident.kind is not Kind.NEW_KEY:
        return None
    try:
        tags = iam.list_user_tags(UserName=user).get("Tags", [])
    except Exception as e:
        code = error_code(e) or type(e).__name__
        if code == NOT_FOUND:
            return None  # no such user: deactivation fails and IAM names the key's owner, if any
        raise _OwnerLookupFailed(
            ActionResult("check-exemption", f"user {user}", Status.FAILED, f"{code}: {e}"[:300], code)
        ) from e
    found = {str(t.get("Key")): str(t.get("Value", "")) for t in tags}
    if found.get(settings.exempt_tag_key, "").lower() == "true":
        return Outcome.EXEMPT, f"User {user} is tagged {settings.exempt_tag_key}=true: notify only."
    if found.get(f"{TAG_PREFIX}incident") == tag_value(incident.incident_id):
        response.first_contained = _parse_stamp(found.get(f"{TAG_PREFIX}contained-at"))
    return None


def _parse_stamp(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
