"""The engine: verify the owner, run the plan, containment first. Notification comes after, elsewhere.

Order, for a leaked key: deactivate exactly that key, deny-all inline policy, deny-all permissions
boundary (each layer runs even when another failed, so that one full inline budget leaves the boundary),
read IAM back (the outcome is `contained` only when IAM shows it), then the records: the ledger
(keyguard's own table) and the tags that mirror it for humans."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from keyguard.actions import (
    BOUNDARY_LAYER,
    NOT_FOUND,
    TAG_PREFIX,
    Action,
    ActionResult,
    BoundUser,
    DeactivateAccessKey,
    RevokeUserSessions,
    Status,
)
from keyguard.aws import error_code
from keyguard.incident import Incident, Kind
from keyguard.plan import (
    Outcome,
    created_by_someone_else,
    owner_is_verifiable,
    plan_actions,
    principal_kind,
    protection,
    triage,
)
from keyguard.settings import Settings

LOOKUP_OWNER_PERMISSIONS = ("iam:GetAccessKeyLastUsed",)
EXEMPTION_PERMISSIONS = ("iam:ListUserTags",)  # only with the opt-in ExemptTagKey


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
    notes: list[str] = field(default_factory=list)  # what a human should know beside the results
    update_of: str | None = None  # the earlier incident this one updates (same principal held; report.updates)
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


@dataclass(frozen=True)
class RecordInLedger(Action):
    """Write the containment into keyguard's ledger: the record every later decision reads (release,
    redeliveries, the tamper watch). Built by the engine from what the layers did."""

    ledger: Any
    response: Any
    actor: str
    why: str
    name: ClassVar[str] = "ledger"
    permissions: ClassVar[tuple[str, ...]] = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
    records: ClassVar[bool] = True  # (GetItem: the new-key path reads the first cut-off)
    service: ClassVar[str] = "dynamodb"

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{principal_kind(self.response.incident)} {self.response.owner}"

    def run(self, iam: Any) -> ActionResult:
        from keyguard.ledger import LedgerError

        try:
            event = _write_ledger(self.ledger, self.response, self.actor, self.why)
        except LedgerError as e:
            return ActionResult(self.name, self.target, Status.FAILED, str(e)[:300], "LedgerError")
        return ActionResult(self.name, self.target, Status.DONE, event)


def respond(
    incident: Incident,
    settings: Settings,
    iam: Any,
    *,
    account: str | None = None,
    now: datetime | None = None,
    defer_records: bool = False,
    ledger: Any = None,
    actor: str | None = None,
    reason: str | None = None,
) -> Response:
    """Contain one incident. Never raises for AWS errors: they are results; the caller raises after notifying.

    With defer_records, the actions that read IAM back or write down what was done (verification, ledger,
    tags) are left in `response.pending` for `finish()`: an event naming many keys then denies them all first.
    `ledger`: keyguard.ledger.Ledger (None: no ledger; the tags are then the only record). `actor` and
    `reason` go into the ledger as given (the operator's own words for `keyguard contain`)."""
    now = now or datetime.now(UTC)
    response = Response(incident, Outcome.FAILED, dry_run=settings.dry_run, at=now)
    early = triage(incident, settings, account)
    if early:
        response.outcome, response.reason = early
        return response
    try:
        return _contain(incident, settings, iam, now, response, defer_records, ledger, actor, reason)
    except _OwnerLookupFailed as e:
        response.results.append(e.result)
        response.outcome = Outcome.FAILED
        response.reason = f"{e.result.action} failed, so nothing was changed. keyguard will retry."
        return response


def _contain(
    incident: Incident,
    settings: Settings,
    iam: Any,
    now: datetime,
    response: Response,
    defer_records: bool,
    ledger: Any,
    actor: str | None,
    reason: str | None,
) -> Response:
    named = incident.principal_name
    verified = False
    if not owner_is_verifiable(incident):
        owner = named  # role or session credentials: GuardDuty names the principal; IAM has no key to ask about
    elif settings.dry_run or named is None:
        owner, verified = _lookup_owner(iam, incident.key_id), True
    else:
        owner = named  # tentative: deactivating with this name proves it (NoSuchEntity otherwise)
    protected_owner = _stopped_for(response, incident, owner, settings, iam)
    if protected_owner is None:
        return response

    def plan(who: str, protected: bool) -> list[Action]:
        return plan_actions(incident, who, now, boundary_arn=settings.deny_all_policy_arn, protected_owner=protected)

    actions = plan(owner, protected_owner)  # type: ignore[arg-type]
    if settings.dry_run:
        response.results = [a.dry_run() for a in actions]
        response.outcome, response.reason = Outcome.WOULD_CONTAIN, "Dry-run: nothing was changed."
        return response

    result = actions[0].run(iam)
    if isinstance(actions[0], DeactivateAccessKey) and result.error_code == NOT_FOUND and not verified:
        # The named user does not own the key (or does not exist): IAM says who does.
        owner = _lookup_owner(iam, incident.key_id)
        protected_owner = _stopped_for(response, incident, owner, settings, iam)
        if protected_owner is None:
            return response
        actions = plan(owner, protected_owner)  # type: ignore[arg-type]
        result = actions[0].run(iam)
    elif result.error_code == NOT_FOUND and not owner_is_verifiable(incident):
        # session credentials of a user or role that does not exist (any more): nothing to contain
        response.results = [replace(result, status=Status.SKIPPED, detail=f"{result.detail[:120]}: not found")]
        return _not_found(response)
    response.results = [result]
    if incident.kind is Kind.NEW_KEY and ledger is not None and getattr(ledger, "enabled", False):
        actions = _keep_first_cutoff(actions, response, ledger)  # after the deactivation: never before it
    if ledger is not None and getattr(ledger, "enabled", False):
        why = reason or f"{incident.source.value} {incident.finding_type} {incident.key_id}"
        record = RecordInLedger(ledger, response, actor or f"keyguard/{incident.source.value}", why)
        actions.insert(_first_record(actions), record)
    response._actions = actions
    for action in actions[1:]:
        if (action.records or action.verifies or isinstance(action, BoundUser)) and defer_records:
            # after every key of the event is denied (deactivated, inline deny-all): the boundary, then the
            # read-back and the records (finish)
            response.pending.append(action)
        else:
            response.results.append(_run_or_skip(action, response, iam))
    return _conclude(response, incident, actions)


def _run_or_skip(action: Action, response: Response, iam: Any) -> ActionResult:
    """Layers always run (one failed layer leaves the others); verification needs something to read back;
    records never write down a containment that did not happen."""
    done = [r for r in response.results if r.status in (Status.DONE, Status.ALREADY_DONE)]
    if action.verifies and not [r for r in done if r.action != "verify"]:
        return ActionResult(action.name, action.target, Status.SKIPPED, "nothing to verify")
    if action.records and not any(r.status is Status.DONE for r in response.results):
        why = "containment failed: not recorded" if response.failures else "nothing was contained: not recorded"
        return ActionResult(action.name, action.target, Status.SKIPPED, why)
    if action.records and response.failures and not isinstance(action, RecordInLedger):
        # the tags mirror only a whole containment; the ledger keeps what holds, failures included
        return ActionResult(action.name, action.target, Status.SKIPPED, "containment failed: not recorded")
    return action.run(iam)


def _first_record(actions: list[Action]) -> int:
    return next((n for n, a in enumerate(actions) if a.records), len(actions))


def _keep_first_cutoff(actions: list[Action], response: Response, ledger: Any) -> list[Action]:
    """A redelivered new-key event keeps the first containment's cut-off (the ledger's, not a tag the key
    holder can forge): later sessions the user opened legitimately are not revoked twice over."""
    from keyguard.ledger import LedgerError

    try:
        found = ledger.incident(response.incident.incident_id)
    except LedgerError as e:
        response.notes.append(f"ledger unreadable ({e}); the session cut-off is now")
        return actions
    first = found.first_contained_at if found else None
    if first is None or first > response.at:
        return actions
    response.first_contained = first
    return [replace(a, before=first) if isinstance(a, RevokeUserSessions) else _verify_at(a, first) for a in actions]


def _verify_at(action: Action, first: datetime) -> Action:
    from keyguard.actions import REVOKE_SESSIONS_POLICY, VerifyUser, revoke_sessions_policy

    if isinstance(action, VerifyUser) and action.policy == REVOKE_SESSIONS_POLICY:
        import json

        return replace(action, document=json.dumps(revoke_sessions_policy(first)))
    return action


def finish(response: Response, iam: Any, *, layers_only: bool = False) -> Response:
    """Run what respond(defer_records=True) held back, and conclude again. `layers_only`: only the deny
    layers held back (the boundary), so that a caller can put every key's layers in place before any key's
    read-back and records."""
    kept = []
    while response.pending:
        action = response.pending.pop(0)
        if layers_only and (action.records or action.verifies):
            kept.append(action)
            continue
        response.results.append(_run_or_skip(action, response, iam))
    response.pending = kept
    if response._actions and not layers_only:
        _conclude(response, response.incident, response._actions)
    return response


def _stopped_for(
    response: Response, incident: Incident, owner: str | None, settings: Settings, iam: Any
) -> bool | None:
    """Record the owner (noting a mismatch with the event). None when keyguard must not act on it (the key
    is in no user of this account, or the owner is protected or exempt); else whether the owner is a
    protected principal whose new key someone else made (deactivate the key, leave the principal)."""
    if owner is None:
        _not_found(response)
        return None
    response.owner = owner
    named = incident.principal_name
    if named and named != owner:
        response.owner_note = f"the event named user {named!r}, but IAM says the key belongs to {owner!r}"
    stop = protection(incident, owner, settings)
    if stop and created_by_someone_else(incident, owner):
        creator = incident.actor_arn or "an unknown caller"
        response.notes.append(
            f"{owner} is a protected principal; {creator} made this key for it. The key is deactivated and "
            f"{owner} itself is left untouched: a human must find out why {creator} did this."
        )
        return True
    stop = stop or _exemption(incident, owner, settings, iam)
    if stop:
        response.outcome, response.reason = stop
        return None
    return False


def _conclude(response: Response, incident: Incident, actions: list[Action]) -> Response:
    _mirror_is_not_the_record(response)
    _compare_unique_ids(response)
    if response.failures:
        names = ", ".join(dict.fromkeys(r.action for r in response.failures))
        holding = [r.action for r in response.results if r.status in (Status.DONE, Status.ALREADY_DONE)]
        holding = [a for a in holding if a not in ("verify", "record", "ledger")]
        response.outcome = Outcome.FAILED
        response.reason = f"Containment failed: {names}. keyguard will retry."
        if holding:
            response.reason += f" Holding meanwhile: {', '.join(dict.fromkeys(holding))}."
    elif all(r.status is Status.SKIPPED for r in response.results):
        response.outcome = Outcome.NOT_FOUND
        response.reason = "; ".join(r.detail for r in response.results)
    elif incident.kind is Kind.NEW_KEY and any(
        n.startswith(f"{response.owner} is a protected") for n in response.notes
    ):
        response.outcome = Outcome.CONTAINED
        response.reason = "New long-lived access key for a protected principal, made by someone else: deactivated."
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
        bound = " and a deny-all permissions boundary" if any(a.name == BOUNDARY_LAYER for a in actions) else ""
        response.reason = f"Leaked access key: deactivated; the user is quarantined with a deny-all policy{bound}."
    return response


def _compare_unique_ids(response: Response) -> None:
    """The event's unique id (GuardDuty principalId: AIDA...) against IAM's (read back): a user renamed, or
    deleted and re-created under the same name, is not the principal the event saw. IAM's answer wins."""
    event_id = (response.incident.principal_id or "").split(":", 1)[0]
    found = next((r.facts.get("uniqueId") for r in response.results if r.facts.get("uniqueId")), None)
    if not event_id.startswith("AIDA") or not found or found == event_id:
        return
    note = f"the event's principal id is {event_id}, but IAM says {response.owner} is {found}"
    if note not in response.notes:
        response.notes.append(note)


def _mirror_is_not_the_record(response: Response) -> None:
    """With a ledger, the tags are a mirror for humans: a key holder who filled the user's 50 tags makes the
    mirror fail, not the containment."""
    recorded = any(r.action == "ledger" and r.status is Status.DONE for r in response.results)
    if not recorded:
        return
    for n, r in enumerate(response.results):
        if r.action == "record" and r.status is Status.FAILED:
            response.results[n] = replace(
                r, status=Status.SKIPPED, detail=f"tag mirror not written ({r.detail[:160]}); the ledger holds it"
            )


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


def _exemption(incident: Incident, user: str, settings: Settings, iam: Any) -> tuple[Outcome, str] | None:
    """New keys of users in ExemptPrincipals (stack configuration) are reported, not acted on. A tag exempts
    only when the stack opts in (ExemptTagKey): the key holder can tag itself, so that costs one call and
    the tamper watch treats any change of that tag as suspicious."""
    if incident.kind is not Kind.NEW_KEY:
        return None
    if settings.is_exempt("user", user):
        return Outcome.EXEMPT, f"User {user} is listed in ExemptPrincipals: notify only."
    if not settings.exempt_tag_key:
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
        return (
            Outcome.EXEMPT,
            f"User {user} is tagged {settings.exempt_tag_key}=true (ExemptTagKey opt-in): notify only.",
        )
    return None


def _write_ledger(ledger: Any, response: Response, actor: str, why: str) -> str:
    """The containment as the ledger keeps it: which layers hold (as IAM answered), which keys keyguard
    deactivated and which leaked, the boundary it replaced, IAM's unique id. Returns the history event."""
    incident = response.incident
    kind = principal_kind(incident)
    held = {r.action for r in response.results if r.status in (Status.DONE, Status.ALREADY_DONE)}
    layers = sorted(held - {"verify", "record", "ledger"})
    facts: dict[str, str] = {}
    for r in response.results:
        facts.update({k: v for k, v in r.facts.items() if v})
    keys = [incident.key_id] if "deactivate-key" in held else []
    leaked = keys if incident.kind is Kind.COMPROMISE else []
    event = "redelivered" if response.first_contained else "contained"  # known on the new-key path (its cut-off)
    ledger.contained(
        incident_id=incident.incident_id,
        kind=kind,
        name=response.owner or "",
        at=response.at,
        actor=actor,
        reason=why,
        unique_id=facts.get("uniqueId"),
        layers=layers,
        keys=keys,
        leaked_keys=leaked,
        replaced_boundary=facts.get("replacedBoundary"),
        event=event,
        detail={
            "failures": [r.line() for r in response.failures],
            "source": incident.source.value,
            "findingType": incident.finding_type,
            "sourceId": incident.source_id,
        },
    )
    return event


__all__ = ["TAG_PREFIX", "RecordInLedger", "Response", "finish", "respond"]
