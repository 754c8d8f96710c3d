"""Containment actions: small named units that declare the IAM permissions they need.

Every action is idempotent: a fixed policy name (PutUserPolicy/PutRolePolicy overwrite it) and
Status=Inactive. None deletes anything. tests/unit/test_template_permissions.py checks that template.yaml
grants exactly what these declare.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

QUARANTINE_POLICY = "keyguard-quarantine"
REVOKE_SESSIONS_POLICY = "keyguard-revoke-sessions"

# Errors that a retry cannot fix and that do not mean "someone else already did it".
NOT_FOUND = "NoSuchEntity"


class Status(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already done"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionResult:
    action: str
    target: str
    status: Status
    detail: str = ""
    error_code: str | None = None
    facts: dict[str, str] = field(default_factory=dict, compare=False)  # what the call found (verification)

    def line(self) -> str:
        text = f"{self.action} {self.target}: {self.status.value}"
        return f"{text} ({self.detail})" if self.detail else text


def deny_all_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KeyguardQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


def revoke_sessions_policy(before: datetime) -> dict[str, Any]:
    """Deny every request signed with a session token issued before `before` (IAM's 'Revoke sessions')."""
    stamp = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KeyguardRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": stamp}},
            }
        ],
    }


class Action:
    name: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    records: ClassVar[bool] = False  # True: writes down what was done; skipped when containment failed
    verifies: ClassVar[bool] = False  # True: reads IAM back; runs even when a layer failed
    service: ClassVar[str] = "iam"  # the client run() is given
    target: str

    def describe(self) -> str:
        return f"{self.name} {self.target}"

    def dry_run(self) -> ActionResult:
        return ActionResult(self.name, self.target, Status.DRY_RUN, "would do; nothing changed")

    def run(self, iam: Any) -> ActionResult:
        try:
            found = self._call(iam)
        except Exception as e:  # reported, never swallowed: the engine raises after notifying
            from keyguard.aws import error_code

            code = error_code(e)
            if code is None:
                code = type(e).__name__
            return self._on_error(code, str(e))
        if isinstance(found, ActionResult):
            return found
        return ActionResult(self.name, self.target, Status.DONE)

    def _on_error(self, code: str, message: str) -> ActionResult:
        return ActionResult(self.name, self.target, Status.FAILED, f"{code}: {message}"[:300], code)

    def _call(self, iam: Any) -> ActionResult | None:  # pragma: no cover - abstract
        """Make the call; return None for DONE, or the result itself (already done, verified...)."""
        raise NotImplementedError


@dataclass(frozen=True)
class DeactivateAccessKey(Action):
    """Status=Inactive on exactly this key of exactly this user. Also proves the owner: IAM answers
    NoSuchEntity unless the user owns the key."""

    user: str
    key_id: str
    name: ClassVar[str] = "deactivate-key"
    permissions: ClassVar[tuple[str, ...]] = ("iam:UpdateAccessKey",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.key_id} of user {self.user}"

    def _call(self, iam: Any) -> None:
        iam.update_access_key(UserName=self.user, AccessKeyId=self.key_id, Status="Inactive")


@dataclass(frozen=True)
class QuarantineUser(Action):
    """Inline deny-all on the user: kills the key, sessions minted from it, and any other credential."""

    user: str
    name: ClassVar[str] = "quarantine-user"
    permissions: ClassVar[tuple[str, ...]] = ("iam:PutUserPolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (policy {QUARANTINE_POLICY})"

    def _call(self, iam: Any) -> None:
        iam.put_user_policy(
            UserName=self.user, PolicyName=QUARANTINE_POLICY, PolicyDocument=json.dumps(deny_all_policy())
        )


BOUNDARY_LAYER = "deny-all-boundary"


@dataclass(frozen=True)
class BoundUser(Action):
    """The stack's deny-all managed policy as the user's permissions boundary: the layer a key holder
    cannot fill beforehand (a user has one boundary slot, and PutUserPermissionsBoundary replaces it; the
    inline policy budget of 2,048 characters can be pre-filled). An explicit deny in a boundary also stops
    what resource policies grant the user. A boundary it replaces is kept in `facts` for the ledger, so
    that `keyguard release` can restore it."""

    user: str
    policy_arn: str
    name: ClassVar[str] = BOUNDARY_LAYER
    permissions: ClassVar[tuple[str, ...]] = ("iam:GetUser", "iam:PutUserPermissionsBoundary")

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (boundary {self.policy_arn.rsplit('/', 1)[-1]})"

    def _call(self, iam: Any) -> ActionResult | None:
        found = iam.get_user(UserName=self.user)["User"]
        current = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        facts = {"uniqueId": found.get("UserId", "")}
        if current == self.policy_arn:
            return ActionResult(self.name, self.target, Status.ALREADY_DONE, "already the boundary", facts=facts)
        iam.put_user_permissions_boundary(UserName=self.user, PermissionsBoundary=self.policy_arn)
        if current:
            facts["replacedBoundary"] = current
            return ActionResult(self.name, self.target, Status.DONE, f"replaced boundary {current}", facts=facts)
        return ActionResult(self.name, self.target, Status.DONE, facts=facts)


@dataclass(frozen=True)
class VerifyUser(Action):
    """Read IAM back after acting: the outcome is `contained` only when IAM shows it. Checks the key's
    status, keyguard's inline policy document and the boundary, whichever the plan put there."""

    user: str
    key_id: str | None = None
    policy: str | None = None  # keyguard's inline policy the plan wrote
    document: str | None = None  # ... and its document (json.dumps)
    boundary_arn: str | None = None
    name: ClassVar[str] = "verify"
    permissions: ClassVar[tuple[str, ...]] = ("iam:GetUser", "iam:ListAccessKeys", "iam:GetUserPolicy")
    verifies: ClassVar[bool] = True

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user}"

    def _call(self, iam: Any) -> ActionResult | None:
        shown, missing, facts = [], [], {}
        found = iam.get_user(UserName=self.user)["User"]  # also IAM's unique id, for the ledger
        facts["uniqueId"] = found.get("UserId", "")
        facts["arn"] = found.get("Arn", "")
        boundary = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if self.boundary_arn:
            name = boundary.rsplit("/", 1)[-1] if boundary else "none"
            (shown if boundary == self.boundary_arn else missing).append(f"boundary {name}")
        if self.key_id:
            keys = iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]
            status = next((k["Status"] for k in keys if k["AccessKeyId"] == self.key_id), "absent")
            (shown if status in ("Inactive", "absent") else missing).append(f"key {self.key_id} {status}")
        if self.policy:
            try:
                doc = iam.get_user_policy(UserName=self.user, PolicyName=self.policy)["PolicyDocument"]
            except Exception as e:
                from keyguard.aws import error_code

                if error_code(e) != NOT_FOUND:
                    raise
                doc = None
            if doc is None:
                missing.append(f"policy {self.policy} ({NOT_FOUND})")
            elif _same_document(doc, self.document):
                shown.append(f"policy {self.policy} as written")
            else:
                missing.append(f"policy {self.policy} changed")
        if missing:
            detail = f"IAM does not show: {', '.join(missing)}" + (f" (shows: {', '.join(shown)})" if shown else "")
            return ActionResult(self.name, self.target, Status.FAILED, detail, "NotContained", facts=facts)
        return ActionResult(self.name, self.target, Status.DONE, f"IAM shows: {', '.join(shown)}", facts=facts)


@dataclass(frozen=True)
class VerifyRole(Action):
    """Read back the role's session revocation (the policy document keyguard wrote)."""

    role: str
    policy: str
    document: str
    name: ClassVar[str] = "verify"
    permissions: ClassVar[tuple[str, ...]] = ("iam:GetRolePolicy",)
    verifies: ClassVar[bool] = True

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role}"

    def _call(self, iam: Any) -> ActionResult | None:
        doc = iam.get_role_policy(RoleName=self.role, PolicyName=self.policy)["PolicyDocument"]
        if not _same_document(doc, self.document):
            return ActionResult(
                self.name, self.target, Status.FAILED, f"IAM shows another {self.policy} document", "NotContained"
            )
        return ActionResult(self.name, self.target, Status.DONE, f"IAM shows: policy {self.policy} as written")

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code in ("UnmodifiableEntity", NOT_FOUND):  # nothing was revoked there (the revocation said why)
            return ActionResult(self.name, self.target, Status.SKIPPED, f"{code}: nothing to verify", code)
        return super()._on_error(code, message)


def _same_document(found: Any, written: str | None) -> bool:
    """IAM returns policy documents URL-encoded (botocore decodes some, moto others): compare as JSON."""
    from urllib.parse import unquote

    def load(doc: Any) -> Any:
        if isinstance(doc, str):
            try:
                return json.loads(doc)
            except ValueError:
                return json.loads(unquote(doc))
        return doc

    try:
        return written is not None and load(found) == json.loads(written)
    except ValueError:
        return False


@dataclass(frozen=True)
class RevokeUserSessions(Action):
    """Deny the user's sessions issued before now; the person keeps console and new sessions."""

    user: str
    before: datetime
    name: ClassVar[str] = "revoke-user-sessions"
    permissions: ClassVar[tuple[str, ...]] = ("iam:PutUserPolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (policy {REVOKE_SESSIONS_POLICY})"

    def _call(self, iam: Any) -> None:
        doc = json.dumps(revoke_sessions_policy(self.before))
        iam.put_user_policy(UserName=self.user, PolicyName=REVOKE_SESSIONS_POLICY, PolicyDocument=doc)


@dataclass(frozen=True)
class RevokeRoleSessions(Action):
    """Deny the role's sessions issued before now (leaked instance-role or assumed-role credentials)."""

    role: str
    before: datetime
    name: ClassVar[str] = "revoke-role-sessions"
    permissions: ClassVar[tuple[str, ...]] = ("iam:PutRolePolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role} (policy {REVOKE_SESSIONS_POLICY})"

    def _call(self, iam: Any) -> None:
        doc = json.dumps(revoke_sessions_policy(self.before))
        iam.put_role_policy(RoleName=self.role, PolicyName=REVOKE_SESSIONS_POLICY, PolicyDocument=doc)

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == "UnmodifiableEntity":  # service-linked roles cannot be changed, by design
            return ActionResult(
                self.name, self.target, Status.SKIPPED, "service-linked role: IAM forbids changes", code
            )
        if code == NOT_FOUND:
            return ActionResult(self.name, self.target, Status.SKIPPED, "role not found: already deleted?", code)
        return super()._on_error(code, message)


TAG_PREFIX = "keyguard:"
_TAG_VALUE_UNSAFE = re.compile(r"[^\w .:/=+\-@]")  # IAM: [\p{L}\p{Z}\p{N}_.:/=+\-@]


def tag_value(text: str) -> str:
    """IAM tag values: at most 256 letters, digits, spaces and _.:/=+-@."""
    return _TAG_VALUE_UNSAFE.sub("_", text)[:256]


@dataclass(frozen=True)
class RecordOnUser(Action):
    """Tags on the user saying when and why keyguard acted, and which keys leaked (never to be revived).
    Runs after containment; `keyguard status` and `keyguard release` read them."""

    user: str
    tags: tuple[tuple[str, str], ...]
    name: ClassVar[str] = "record"
    permissions: ClassVar[tuple[str, ...]] = ("iam:TagUser",)
    records: ClassVar[bool] = True

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"user {self.user} (tags {', '.join(k for k, _ in self.tags)})"

    def _call(self, iam: Any) -> None:
        iam.tag_user(UserName=self.user, Tags=[{"Key": k, "Value": v} for k, v in self.tags])


@dataclass(frozen=True)
class RecordOnRole(Action):
    """Tags on the role saying when and why keyguard revoked its sessions."""

    role: str
    tags: tuple[tuple[str, str], ...]
    name: ClassVar[str] = "record"
    permissions: ClassVar[tuple[str, ...]] = ("iam:TagRole",)
    records: ClassVar[bool] = True

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role} (tags {', '.join(k for k, _ in self.tags)})"

    def _call(self, iam: Any) -> None:
        iam.tag_role(RoleName=self.role, Tags=[{"Key": k, "Value": v} for k, v in self.tags])

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code in ("UnmodifiableEntity", NOT_FOUND):  # as for the revocation it records
            return ActionResult(self.name, self.target, Status.SKIPPED, f"{code}: nothing to record on", code)
        return super()._on_error(code, message)


ALL_ACTIONS: tuple[type[Action], ...] = (
    DeactivateAccessKey,
    QuarantineUser,
    BoundUser,
    VerifyUser,
    VerifyRole,
    RevokeUserSessions,
    RevokeRoleSessions,
    RecordOnUser,
    RecordOnRole,
)
