"""What keyguard holds on a principal, read back from IAM: its inline policies (keyguard-quarantine,
keyguard-revoke-sessions), the tags it wrote when it contained (since when, why, which keys leaked), the
tags `keyguard release` wrote, and each access key's status, age and last use."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from keyguard.actions import NOT_FOUND, QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, TAG_PREFIX
from keyguard.aws import error_code
from keyguard.incident import KEY_ID_RE, is_long_term
from keyguard.operator.clients import OperatorError

KEYGUARD_POLICIES = (QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY)
CONTAINED_AT = f"{TAG_PREFIX}contained-at"
INCIDENT = f"{TAG_PREFIX}incident"
REASON = f"{TAG_PREFIX}reason"
CONTAINMENT_TAGS = (CONTAINED_AT, INCIDENT, REASON)  # written by actions.RecordOnUser / RecordOnRole
LEAKED_PREFIX = f"{TAG_PREFIX}leaked:"  # + key id: a key keyguard contained as leaked, never to be revived
RELEASED_AT = f"{TAG_PREFIX}released-at"
RELEASED_BY = f"{TAG_PREFIX}released-by"
RELEASED_REASON = f"{TAG_PREFIX}released-reason"
RELEASED_INCIDENT = f"{TAG_PREFIX}released-incident"
RELEASE_TAGS = (RELEASED_AT, RELEASED_BY, RELEASED_REASON, RELEASED_INCIDENT)

# IAM user and role names: letters, digits and +=,.@_- (up to 64 / 64 characters).
NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")

READ_USER_PERMISSIONS = (
    "iam:GetUser",
    "iam:ListUserPolicies",
    "iam:GetUserPolicy",
    "iam:ListUserTags",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
)
READ_ROLE_PERMISSIONS = ("iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListRoleTags")
HELD_PERMISSIONS = ("iam:GetAccountAuthorizationDetails",)


def check_key_id(value: str) -> str:
    if not KEY_ID_RE.fullmatch(value or ""):
        raise OperatorError(f"{value!r} is not an access key id (AKIA or ASIA and 16 upper-case letters or digits)")
    return value


def check_long_term_key_id(value: str) -> str:
    check_key_id(value)
    if not is_long_term(value):
        raise OperatorError(
            f"{value} is a temporary (ASIA) key: IAM cannot name its owner. Contain the user or role it belongs to "
            "(GuardDuty names it), or the long-term key that minted it"
        )
    return value


def check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value or ""):
        raise OperatorError(f"{value!r} is not a valid IAM {what} name")
    return value


@dataclass(frozen=True)
class PolicyState:
    name: str
    effect: str  # what it does, in words

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "effect": self.effect}


@dataclass(frozen=True)
class KeyState:
    key_id: str
    status: str
    created: datetime | None
    last_used: datetime | None
    last_used_service: str | None
    last_used_region: str | None
    leaked_at: str | None  # keyguard:leaked:<key> tag value: keyguard contained it as leaked

    def age_days(self, now: datetime) -> int | None:
        return None if self.created is None else (now - self.created).days

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "accessKeyId": self.key_id,
            "status": self.status,
            "created": stamp(self.created),
            "ageDays": self.age_days(now),
            "lastUsed": stamp(self.last_used),
            "lastUsedService": self.last_used_service,
            "lastUsedRegion": self.last_used_region,
            "leakedAt": self.leaked_at,
        }


@dataclass
class PrincipalState:
    kind: str  # "user" or "role"
    name: str
    arn: str
    policies: list[PolicyState] = field(default_factory=list)  # keyguard's policies only
    other_policies: list[str] = field(default_factory=list)  # names of the principal's other inline policies
    tags: dict[str, str] = field(default_factory=dict)
    keys: list[KeyState] = field(default_factory=list)
    keys_read: bool = False  # the held-principals scan does not read keys
    boundary: str | None = None  # the permissions boundary's policy ARN (users: keyguard's deny-all while held)
    unique_id: str | None = None  # IAM's (AIDA... / AROA...): the ledger's record must be of this principal
    ledger: Any = None  # keyguard.ledger.PrincipalRecord: what keyguard's own records say
    ledger_leaked: set[str] = field(default_factory=set)  # keys the ledger marks as leaked
    ledger_mismatch: str | None = None  # the ledger's record is of another principal of this name (its id)
    ledger_read: bool = False  # a ledger was read for it (not IAM only)
    verdict: Any = None  # keyguard.operator.hold.Verdict of the ledger's last containment (None: none recorded)

    @property
    def held(self) -> bool:
        return bool(self.policies) or bool(self.ledger is not None and self.ledger.held)

    @property
    def hold(self) -> str:
        """contained | partial | failed (the ledger's last containment), unverified (IAM shows keyguard's
        policy, but no ledger says how the containment went), none (keyguard.operator.hold)."""
        from keyguard.operator import hold

        held_in_ledger = self.ledger is not None and self.ledger.held
        if held_in_ledger and self.verdict is not None and self.verdict.state != hold.NONE:
            return self.verdict.state
        return hold.UNVERIFIED if self.held else hold.NONE

    @property
    def subject(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def leaked(self) -> dict[str, str]:
        """Keys keyguard contained as leaked: the ledger's word (which no tag change lifts), and the tags."""
        found = {k[len(LEAKED_PREFIX) :]: v for k, v in self.tags.items() if k.startswith(LEAKED_PREFIX)}
        for key in self.ledger_leaked:
            found.setdefault(key, "leaked (ledger)")
        return found

    @property
    def containment(self) -> dict[str, str] | None:
        found = {k.removeprefix(TAG_PREFIX): self.tags[k] for k in CONTAINMENT_TAGS if k in self.tags}
        return found or None

    @property
    def release(self) -> dict[str, str] | None:
        found = {k.removeprefix(f"{TAG_PREFIX}released-"): self.tags[k] for k in RELEASE_TAGS if k in self.tags}
        return found or None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "principal": {"type": self.kind, "name": self.name, "arn": self.arn},
            "held": self.held,
            "policies": [p.to_dict() for p in self.policies],
            "contained": self.containment,
            "leakedKeys": self.leaked,
            "released": self.release,
            "boundary": self.boundary,
            "ledger": _ledger_dict(self.ledger),
        }
        if self.keys_read:
            out["keys"] = [k.to_dict(now) for k in self.keys]
        return out


def _ledger_dict(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "held": record.held,
        "incident": record.incident,
        "containedAt": stamp(record.contained_at),
        "releasedAt": stamp(record.released_at),
        "layers": list(record.layers),
        "replacedBoundary": record.replaced_boundary,
        "leakedKeys": list(record.leaked_keys),
        "uniqueId": record.unique_id,
    }


def attach_ledger(state: PrincipalState, ledger: Any) -> PrincipalState:
    """What keyguard's ledger says about the principal and its keys (None: no ledger configured)."""
    if ledger is None or not getattr(ledger, "enabled", False):
        return state
    from keyguard.operator import hold

    state.ledger_read = True
    state.ledger = ledger.principal(state.kind, state.name)
    if state.ledger is not None and state.ledger.unique_id and state.unique_id != state.ledger.unique_id:
        # another principal of that name (deleted and re-created, or another account's in organization mode):
        # its record (a boundary to restore, its hold) is not this one's
        state.ledger_mismatch = state.ledger.unique_id
        state.ledger = None
    if state.ledger is not None:  # how its last containment went, who did it and why (verbatim)
        state.verdict = hold.of_history(ledger.history(kind=state.kind, name=state.name))
    keys = {k.key_id for k in state.keys} | set(state.ledger.leaked_keys if state.ledger else ())
    for key_id in keys:
        record = ledger.key(key_id)
        if record is not None and record.leaked:
            state.ledger_leaked.add(key_id)
    state.keys = [
        replace(k, leaked_at=k.leaked_at or "leaked (ledger)") if k.key_id in state.ledger_leaked else k
        for k in state.keys
    ]
    return state


def stamp(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_policy(name: str, document: Any) -> PolicyState:
    """keyguard's policy in words: deny-all, or deny sessions issued before a time."""
    doc = _document(document)
    for statement in doc.get("Statement", []) if isinstance(doc, dict) else []:
        if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
            continue
        before = (statement.get("Condition") or {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if before:
            return PolicyState(name, f"denies sessions issued before {before}")
        if statement.get("Action") == "*" and not statement.get("Condition"):
            return PolicyState(name, "denies every action")
    return PolicyState(name, "not keyguard's document (edited by hand?)")


def _document(document: Any) -> Any:
    if isinstance(document, str):
        try:
            return json.loads(unquote(document))
        except ValueError:
            return {}
    return document


# kind -> (name parameter, get, its result key, list policies, get policy, list tags)
_IAM_CALLS = {
    "user": ("UserName", "get_user", "User", "list_user_policies", "get_user_policy", "list_user_tags"),
    "role": ("RoleName", "get_role", "Role", "list_role_policies", "get_role_policy", "list_role_tags"),
}


def _read_principal(iam: Any, kind: str, name: str) -> PrincipalState:
    """keyguard's policies (with their documents), the other policies' names and the tags of a user or role."""
    check_name(name, kind)
    param, get, key, list_policies, get_policy, list_tags = _IAM_CALLS[kind]
    try:
        found = getattr(iam, get)(**{param: name})[key]
    except Exception as e:
        if error_code(e) == NOT_FOUND:
            raise OperatorError(f"no IAM {kind} named {name!r} in this account") from e
        raise
    pages = iam.get_paginator(list_policies).paginate(**{param: name})
    state = PrincipalState(kind, found[param], found["Arn"])
    state.boundary = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    state.unique_id = found.get("UserId") or found.get("RoleId")
    for policy in [n for page in pages for n in page["PolicyNames"]]:
        if policy in KEYGUARD_POLICIES:
            doc = getattr(iam, get_policy)(**{param: name, "PolicyName": policy})["PolicyDocument"]
            state.policies.append(describe_policy(policy, doc))
        else:
            state.other_policies.append(policy)
    state.tags = _tags(iam.get_paginator(list_tags).paginate(**{param: name}))
    return state


def read_user(iam: Any, name: str) -> PrincipalState:
    state = _read_principal(iam, "user", name)
    state.keys_read = True
    leaked = state.leaked
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:  # at most 2
        used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
        state.keys.append(
            KeyState(
                key["AccessKeyId"],
                key["Status"],
                _utc(key.get("CreateDate")),
                _utc(used.get("LastUsedDate")),
                _known(used.get("ServiceName")),
                _known(used.get("Region")),
                leaked.get(key["AccessKeyId"]),
            )
        )
    return state


def read_role(iam: Any, name: str) -> PrincipalState:
    return _read_principal(iam, "role", name)


def owner_of(iam: Any, key_id: str) -> str:
    """The IAM user that owns the key, according to IAM (one call)."""
    try:
        owner = iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName")
    except Exception as e:
        if error_code(e) == NOT_FOUND:
            owner = None
        else:
            raise
    if not owner:
        raise OperatorError(f"access key {key_id} is not in this account (already deleted, or another account's key)")
    return owner


def held_principals(iam: Any, boundary_arn: str | None = None) -> list[PrincipalState]:
    """Every user and role that carries a keyguard policy, and every user whose permissions boundary is the
    stack's deny-all (`boundary_arn`): a containment whose inline policy failed (a key holder can fill the
    inline budget beforehand) still holds the user by its boundary. One paginated
    GetAccountAuthorizationDetails."""
    out = []
    pages = iam.get_paginator("get_account_authorization_details").paginate(Filter=["User", "Role"])
    for page in pages:
        for kind, items, name_key, list_key in (
            ("user", page.get("UserDetailList", []), "UserName", "UserPolicyList"),
            ("role", page.get("RoleDetailList", []), "RoleName", "RolePolicyList"),
        ):
            for item in items:
                policies = item.get(list_key) or []
                mine = [
                    describe_policy(p["PolicyName"], p.get("PolicyDocument"))
                    for p in policies
                    if p["PolicyName"] in KEYGUARD_POLICIES
                ]
                boundary = (item.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
                if mine or (boundary_arn and kind == "user" and boundary == boundary_arn):
                    state = PrincipalState(kind, item[name_key], item["Arn"], policies=mine)
                    state.boundary = boundary
                    state.unique_id = item.get("UserId") or item.get("RoleId")  # the ledger's record is of it
                    state.other_policies = [
                        p["PolicyName"] for p in policies if p["PolicyName"] not in KEYGUARD_POLICIES
                    ]
                    state.tags = {t["Key"]: t["Value"] for t in item.get("Tags") or []}
                    out.append(state)
    return sorted(out, key=lambda s: (s.kind, s.name.lower()))


def _tags(pages: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for page in pages for t in page.get("Tags", [])}


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _known(value: Any) -> str | None:
    return value if isinstance(value, str) and value not in ("N/A", "not_supported", "") else None
