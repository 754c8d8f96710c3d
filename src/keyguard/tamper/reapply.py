"""Put a containment back after a call undid it, then read IAM back to prove it is there again.

Each re-apply is the engine's own action (keyguard.actions: the same fixed policy names, Status=Inactive,
idempotent) followed by a read of the state it set. "Re-contained" is claimed only when the read shows it.
Who owns a key is asked of IAM (GetAccessKeyLastUsed, then ListAccessKeys on that user: IAM lists only a
user's own keys), never taken from the event; exactly that key is deactivated, no other."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from keyguard.actions import (
    BOUNDARY_LAYER,
    NOT_FOUND,
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    Action,
    ActionResult,
    BoundUser,
    DeactivateAccessKey,
    QuarantineUser,
    RevokeRoleSessions,
    RevokeUserSessions,
    Status,
)
from keyguard.aws import error_code
from keyguard.tamper.call import Call
from keyguard.tamper.config import WatchConfig
from keyguard.tamper.decide import Decision, denies_everything

READ_PERMISSIONS = {
    "deactivate-key": ("iam:GetAccessKeyLastUsed", "iam:ListAccessKeys"),
    "user-policy": ("iam:GetUserPolicy",),
    "role-policy": ("iam:GetRolePolicy",),
    "boundary": ("iam:GetUser",),
    "renamed": ("iam:GetUser", "iam:GetUserPolicy"),
    "lookup": ("iam:GetUser", "iam:GetRole"),  # a renamed principal's unique id (app.Holds)
}


# Every action a re-apply may run (permissions.py and the template test take the union of these).
REAPPLY_ACTIONS: tuple[type[Action], ...] = (
    DeactivateAccessKey,
    QuarantineUser,
    RevokeUserSessions,
    RevokeRoleSessions,
    BoundUser,
)


def permissions() -> frozenset[str]:
    return frozenset(p for a in REAPPLY_ACTIONS for p in a.permissions) | frozenset(
        p for perms in READ_PERMISSIONS.values() for p in perms
    )


def reapply(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list[ActionResult]:
    """Run the decision's re-apply (dry-run: say what would run). Never raises for AWS errors."""
    routine = ROUTINES.get(decision.reapply or "")
    if routine is None:
        return []
    try:
        return routine(decision, call, config, iam, now)
    except Exception as e:  # a read that failed: reported, the handler raises after notifying
        code = error_code(e) or type(e).__name__
        return [ActionResult("re-apply", decision.name or "-", Status.FAILED, f"{code}: {e}"[:300], code)]


def _run(action: Action, config: WatchConfig, iam: Any) -> ActionResult:
    return action.dry_run() if config.dry_run else action.run(iam)


def _verify(what: str, ok: bool, detail: str, dry_run: bool) -> ActionResult:
    if dry_run:
        return ActionResult("verify", what, Status.DRY_RUN, "not read back in dry-run")
    return ActionResult("verify", what, Status.DONE if ok else Status.FAILED, detail, None if ok else "NotInPlace")


# ---------------------------------------------------------------- keys


def owner_of(iam: Any, key_id: str, candidates: list[str | None]) -> str | None:
    """The user IAM lists the key under. GetAccessKeyLastUsed names the owner; the other candidates (the
    call's user, the ledger's) are tried too, and only ListAccessKeys on a user decides: IAM lists a user's
    own keys only. (moto keeps a key's old user name after UpdateUser; real IAM does not.)"""
    names: list[str] = []
    try:
        owner = iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName")
        if isinstance(owner, str) and owner:
            names.append(owner)
    except Exception as e:
        if error_code(e) != NOT_FOUND:
            raise
    names += [c for c in candidates if c and c not in names]
    for name in names:
        if _status(iam, name, key_id) is not None:
            return name
    return None


def _status(iam: Any, user: str, key_id: str) -> str | None:
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except Exception as e:
        if error_code(e) == NOT_FOUND:
            return None
        raise
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key_id), None)


def _deactivate_key(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list:
    key_id = decision.name or ""
    record_user = getattr(decision.record, "user", None)
    owner = owner_of(iam, key_id, [call.param("userName"), call.actor.user_name, record_user])
    if owner is None:
        return [ActionResult("deactivate-key", key_id, Status.FAILED, "IAM lists this key under no user", NOT_FOUND)]
    out = [_run(DeactivateAccessKey(owner, key_id), config, iam)]
    status = None if config.dry_run else _status(iam, owner, key_id)
    out.append(_verify(f"{key_id} of user {owner}", status == "Inactive", f"IAM shows {status}", config.dry_run))
    return out


# ---------------------------------------------------------------- inline policies and boundary


def _document(raw: Any) -> dict[str, Any]:
    """IAM returns policy documents URL-encoded (botocore does not decode them); moto returns them parsed."""
    if isinstance(raw, dict):
        return raw
    return json.loads(urllib.parse.unquote(raw))


def _policy_action(kind: str, name: str, policy: str, now: datetime) -> Action:
    if kind == "role":
        return RevokeRoleSessions(name, now)
    return QuarantineUser(name) if policy == QUARANTINE_POLICY else RevokeUserSessions(name, now)


def _verify_policy(iam: Any, kind: str, name: str, policy: str, dry_run: bool) -> ActionResult:
    if dry_run:
        return _verify(f"{kind} {name} policy {policy}", True, "", True)
    if kind == "role":
        raw = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    else:
        raw = iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
    ok = denies_everything(_document(raw), conditional=policy == REVOKE_SESSIONS_POLICY)
    return _verify(f"{kind} {name} policy {policy}", ok, "deny in place" if ok else "IAM shows another document", False)


def _inline_policy(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list:
    kind, name = decision.kind, decision.name or ""
    policy = call.param("policyName") or (QUARANTINE_POLICY if kind == "user" else REVOKE_SESSIONS_POLICY)
    result = _run(_policy_action(kind, name, policy, now), config, iam)
    return [result, _verify_policy(iam, kind, name, policy, config.dry_run)]


def _role_sessions(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list:
    """A held role's trust changed (or its revocation touched): sessions issued before now are denied
    again. Who may assume it from now on is for a human to restore (the notification quotes the change)."""
    name = decision.name or ""
    result = _run(RevokeRoleSessions(name, now), config, iam)
    return [result, _verify_policy(iam, "role", name, REVOKE_SESSIONS_POLICY, config.dry_run)]


def _boundary(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list:
    name = decision.name or ""
    if not config.deny_all_policy_arn:
        return [ActionResult("bound-user", f"user {name}", Status.FAILED, "no deny-all policy configured", "Config")]
    put = _run(BoundUser(name, config.deny_all_policy_arn), config, iam)
    return [put, _verify_boundary(iam, name, config)]


def _verify_boundary(iam: Any, user: str, config: WatchConfig) -> ActionResult:
    if config.dry_run:
        return _verify(f"user {user} boundary", True, "", True)
    got = (iam.get_user(UserName=user)["User"].get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    ok = got == config.deny_all_policy_arn
    return _verify(f"user {user} boundary", ok, "deny-all in place" if ok else f"IAM shows {got}", False)


def _renamed(decision: Decision, call: Call, config: WatchConfig, iam: Any, now: datetime) -> list:
    """A held user renamed (or moved): the hold follows the principal (same unique id) to its new name.
    IAM keeps a user's policies and boundary on a rename; each layer the ledger lists is read back under
    the new name and put again only where it is missing."""
    new = decision.new_name or decision.name or ""
    unique = getattr(decision.record, "unique_id", None)
    if not config.dry_run and unique:
        got = iam.get_user(UserName=new)["User"].get("UserId")
        if got != unique:
            detail = f"user {new} is {got}, keyguard held {unique}: not the same principal, nothing put"
            return [ActionResult("follow-rename", f"user {new}", Status.FAILED, detail, "NotSamePrincipal")]
    layers = set(getattr(decision.record, "layers", None) or ()) or {QuarantineUser.name}
    out: list[ActionResult] = []
    for layer, policy in ((QuarantineUser.name, QUARANTINE_POLICY), (RevokeUserSessions.name, REVOKE_SESSIONS_POLICY)):
        if layer not in layers:
            continue
        check = _verify_policy_or_missing(iam, new, policy, config.dry_run)
        if check.status is Status.DONE:
            out.append(check)
            continue
        out += [_run(_policy_action("user", new, policy, now), config, iam)]
        out += [_verify_policy(iam, "user", new, policy, config.dry_run)]
    if BOUNDARY_LAYER in layers and config.deny_all_policy_arn:
        check = _verify_boundary(iam, new, config)
        if check.status is not Status.DONE:
            out += [_run(BoundUser(new, config.deny_all_policy_arn), config, iam)]
            check = _verify_boundary(iam, new, config)
        out.append(check)
    return out


def _verify_policy_or_missing(iam: Any, user: str, policy: str, dry_run: bool) -> ActionResult:
    try:
        return _verify_policy(iam, "user", user, policy, dry_run)
    except Exception as e:
        if error_code(e) != NOT_FOUND:
            raise
        return _verify(f"user {user} policy {policy}", False, "missing", dry_run)


ROUTINES: dict[str, Callable[..., list[ActionResult]]] = {
    "deactivate-key": _deactivate_key,
    "user-policy": _inline_policy,
    "role-policy": _inline_policy,
    "revoke-role-sessions": _role_sessions,
    "boundary": _boundary,
    "renamed": _renamed,
}
