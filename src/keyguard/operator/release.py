"""`keyguard release`: take back what keyguard put on a principal, and nothing else.

Removes only keyguard's inline policies (keyguard-quarantine, keyguard-revoke-sessions), replaces the
containment tags with who released it, when and why, and keeps keyguard:leaked:<key> while that key still
exists, so that a leaked key can never be revived. Keys stay as they are; `--reactivate KEY` turns one
key back on, never a key keyguard contained as leaked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from keyguard.actions import (
    NOT_FOUND,
    Action,
    ActionResult,
    RecordOnRole,
    RecordOnUser,
    Status,
    tag_value,
)
from keyguard.operator.clients import OperatorError
from keyguard.operator.principal import (
    CONTAINMENT_TAGS,
    INCIDENT,
    LEAKED_PREFIX,
    RELEASED_AT,
    RELEASED_BY,
    RELEASED_INCIDENT,
    RELEASED_REASON,
    PrincipalState,
    check_long_term_key_id,
)

DEFAULT_REASON = "released by hand"


@dataclass(frozen=True)
class RemoveUserPolicy(Action):
    user: str
    policy: str
    name: ClassVar[str] = "remove-policy"
    permissions: ClassVar[tuple[str, ...]] = ("iam:DeleteUserPolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.policy} from user {self.user}"

    def _call(self, iam: Any) -> None:
        iam.delete_user_policy(UserName=self.user, PolicyName=self.policy)

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == NOT_FOUND:  # removed meanwhile: the state asked for is reached
            return ActionResult(self.name, self.target, Status.ALREADY_DONE, "already removed", code)
        return super()._on_error(code, message)


@dataclass(frozen=True)
class RemoveRolePolicy(Action):
    role: str
    policy: str
    name: ClassVar[str] = "remove-policy"
    permissions: ClassVar[tuple[str, ...]] = ("iam:DeleteRolePolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.policy} from role {self.role}"

    def _call(self, iam: Any) -> None:
        iam.delete_role_policy(RoleName=self.role, PolicyName=self.policy)

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == NOT_FOUND:
            return ActionResult(self.name, self.target, Status.ALREADY_DONE, "already removed", code)
        return super()._on_error(code, message)


@dataclass(frozen=True)
class UntagUser(Action):
    user: str
    keys: tuple[str, ...]
    name: ClassVar[str] = "remove-tags"
    permissions: ClassVar[tuple[str, ...]] = ("iam:UntagUser",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} ({', '.join(self.keys)})"

    def _call(self, iam: Any) -> None:
        iam.untag_user(UserName=self.user, TagKeys=list(self.keys))


@dataclass(frozen=True)
class UntagRole(Action):
    role: str
    keys: tuple[str, ...]
    name: ClassVar[str] = "remove-tags"
    permissions: ClassVar[tuple[str, ...]] = ("iam:UntagRole",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role} ({', '.join(self.keys)})"

    def _call(self, iam: Any) -> None:
        iam.untag_role(RoleName=self.role, TagKeys=list(self.keys))


@dataclass(frozen=True)
class RemoveUserBoundary(Action):
    """Take keyguard's deny-all permissions boundary off the user (the user had no boundary before)."""

    user: str
    name: ClassVar[str] = "remove-boundary"
    permissions: ClassVar[tuple[str, ...]] = ("iam:DeleteUserPermissionsBoundary",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (keyguard's deny-all boundary)"

    def _call(self, iam: Any) -> None:
        iam.delete_user_permissions_boundary(UserName=self.user)


@dataclass(frozen=True)
class RestoreUserBoundary(Action):
    """Put back the boundary keyguard replaced (the ledger kept it), in place of keyguard's deny-all."""

    user: str
    policy_arn: str
    name: ClassVar[str] = "restore-boundary"
    permissions: ClassVar[tuple[str, ...]] = ("iam:PutUserPermissionsBoundary",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (boundary {self.policy_arn})"

    def _call(self, iam: Any) -> None:
        iam.put_user_permissions_boundary(UserName=self.user, PermissionsBoundary=self.policy_arn)


@dataclass(frozen=True)
class ReactivateAccessKey(Action):
    """Status=Active on exactly this key of this user. Only after the release, only when asked twice."""

    user: str
    key_id: str
    name: ClassVar[str] = "reactivate-key"
    permissions: ClassVar[tuple[str, ...]] = ("iam:UpdateAccessKey",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.key_id} of user {self.user}"

    def _call(self, iam: Any) -> None:
        iam.update_access_key(UserName=self.user, AccessKeyId=self.key_id, Status="Active")


RELEASE_ACTIONS: tuple[type[Action], ...] = (
    RemoveUserPolicy,
    RemoveUserBoundary,
    RestoreUserBoundary,
    RemoveRolePolicy,
    UntagUser,
    UntagRole,
    RecordOnUser,
    RecordOnRole,
    ReactivateAccessKey,
)


@dataclass
class ReleasePlan:
    state: PrincipalState
    actions: list[Action] = field(default_factory=list)
    reactivate: ReactivateAccessKey | None = None
    notes: list[str] = field(default_factory=list)
    release_in_ledger: bool = False  # the ledger records the release (before IAM changes: see commands)

    @property
    def empty(self) -> bool:
        return not self.actions and self.reactivate is None and not self.release_in_ledger


def plan_release(
    state: PrincipalState,
    *,
    actor: str,
    reason: str,
    now: datetime,
    reactivate: str | None = None,
    deny_all_arn: str | None = None,
) -> ReleasePlan:
    """What releasing `state` takes. Raises OperatorError, before anything changes, for a key that must not
    be reactivated (the ledger's leaked mark counts even when every tag is gone).

    keyguard's boundary is the stack's deny-all policy (`deny_all_arn`), or, when the ledger says keyguard
    put a boundary there, whatever boundary the user has; the boundary keyguard replaced is restored."""
    plan = ReleasePlan(state)
    if reactivate is not None:
        plan.reactivate = _reactivation(state, reactivate, plan.notes)
    if state.kind == "user":
        plan.actions += [RemoveUserPolicy(state.name, p.name) for p in state.policies]
        record = state.ledger
        ours = state.boundary is not None and (
            state.boundary == deny_all_arn
            or (deny_all_arn is None and record is not None and "deny-all-boundary" in record.layers)
        )
        if ours and record is not None and record.replaced_boundary:
            plan.actions.append(RestoreUserBoundary(state.name, record.replaced_boundary))
        elif ours:
            plan.actions.append(RemoveUserBoundary(state.name))
    else:
        plan.actions += [RemoveRolePolicy(state.name, p.name) for p in state.policies]
    existing = {k.key_id for k in state.keys}
    stale = [k for k in state.tags if k.startswith(LEAKED_PREFIX) and k[len(LEAKED_PREFIX) :] not in existing]
    untag = tuple(k for k in CONTAINMENT_TAGS if k in state.tags) + (tuple(stale) if state.kind == "user" else ())
    held_in_ledger = state.ledger is not None and state.ledger.held
    if not plan.actions and not untag and not held_in_ledger:
        plan.notes.append(f"keyguard holds nothing on {state.subject}: no keyguard policy, no containment record")
        return plan
    plan.release_in_ledger = held_in_ledger or bool(plan.actions)
    if untag:
        plan.actions.append(UntagUser(state.name, untag) if state.kind == "user" else UntagRole(state.name, untag))
    record = [
        (RELEASED_AT, now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        (RELEASED_BY, tag_value(actor)),
        (RELEASED_REASON, tag_value(reason)),
    ]
    if INCIDENT in state.tags:
        record.append((RELEASED_INCIDENT, state.tags[INCIDENT]))
    recorder = RecordOnUser if state.kind == "user" else RecordOnRole
    plan.actions.append(recorder(state.name, tuple(record)))
    kept = [k[len(LEAKED_PREFIX) :] for k in state.tags if k.startswith(LEAKED_PREFIX) and k not in stale]
    if kept:
        plan.notes.append(
            f"kept keyguard:leaked:<key> for {', '.join(kept)}: the key is still on the user; delete it "
            "(aws iam delete-access-key)"
        )
    return plan


def _reactivation(state: PrincipalState, key_id: str, notes: list[str]) -> ReactivateAccessKey | None:
    if state.kind != "user":
        raise OperatorError("--reactivate applies to users' access keys, not to roles")
    check_long_term_key_id(key_id)
    key = next((k for k in state.keys if k.key_id == key_id), None)
    if key is None:
        raise OperatorError(f"{key_id} is not an access key of user {state.name}")
    leaked_at = state.leaked.get(key_id)
    if leaked_at:
        raise OperatorError(
            f"refusing to reactivate {key_id}: keyguard contained it as leaked ({leaked_at}). An exposed key must be "
            "rotated, not revived: create a new key (or better, use a role), then delete this one"
        )
    if key.status == "Active":
        notes.append(f"{key_id} is already active: nothing to reactivate")
        return None
    return ReactivateAccessKey(state.name, key_id)


def execute(iam: Any, actions: list[Action]) -> list[ActionResult]:
    """Run in order; after a failure nothing more is changed (the rest is reported as skipped)."""
    results: list[ActionResult] = []
    for action in actions:
        if any(r.status is Status.FAILED for r in results):
            results.append(ActionResult(action.name, action.target, Status.SKIPPED, "an earlier step failed"))
        else:
            results.append(action.run(iam))
    return results
