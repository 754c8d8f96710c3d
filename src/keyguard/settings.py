"""Configuration: SAM parameters -> environment variables -> one frozen, validated Settings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyguard.errors import ConfigError

ENFORCE = "enforce"
DRY_RUN = "dry-run"
MODES = (ENFORCE, DRY_RUN)

CAK_QUARANTINE = "quarantine"
CAK_NOTIFY = "notify"
CAK_RESPONSES = (CAK_QUARANTINE, CAK_NOTIFY)


@dataclass(frozen=True)
class Settings:
    mode: str = ENFORCE
    topic_arn: str | None = None
    idempotency_table: str | None = None
    guardduty_min_severity: float = 4.0
    create_access_key_response: str = CAK_QUARANTINE
    exempt_tag_key: str = ""  # opt-in: tags are writable by the key holder, so none exempts by default
    protected_principals: frozenset[str] = frozenset()  # principal refs (see principal_refs)
    own_roles: frozenset[str] = frozenset()  # keyguard's own roles' names: protected as roles only
    exempt_principals: frozenset[str] = frozenset()  # may create access keys (notified, not acted on)
    ledger_table: str | None = None  # keyguard's own records (keyguard.ledger)
    deny_all_policy_arn: str | None = None  # the stack's deny-all managed policy: the quarantine boundary
    dedup_ttl_seconds: int = 7 * 24 * 3600
    investigation_queue_url: str | None = None  # containment hands leaked-key incidents on to investigation
    investigation_lookback_days: int = 90  # CloudTrail event history keeps 90 days
    stop_launched_instances: bool = False
    enforce_imdsv2: bool = False

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN

    def is_protected(self, kind: str, name: str | None, arn: str | None = None, unique_id: str | None = None) -> bool:
        """A principal keyguard must never act on: listed by the operator, or one of its own roles.

        `kind` is "user" or "role": a user is never protected by a role's name (keyguard's own roles are
        roles), so renaming a user after a protected role borrows nothing."""
        if kind == "role" and name and name.lower() in self.own_roles:
            return True
        return matches_principal(self.protected_principals, kind, name, arn, unique_id)

    def is_exempt(self, kind: str, name: str | None, arn: str | None = None, unique_id: str | None = None) -> bool:
        """Listed in ExemptPrincipals (stack configuration, which the key holder cannot write)."""
        return matches_principal(self.exempt_principals, kind, name, arn, unique_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mode = env.get("KEYGUARD_MODE", ENFORCE).strip().lower()
        if mode not in MODES:
            raise ConfigError(f"KEYGUARD_MODE must be one of {MODES}, got {mode!r}")
        cak = env.get("KEYGUARD_CREATE_ACCESS_KEY_RESPONSE", CAK_QUARANTINE).strip().lower()
        if cak not in CAK_RESPONSES:
            raise ConfigError(f"KEYGUARD_CREATE_ACCESS_KEY_RESPONSE must be one of {CAK_RESPONSES}, got {cak!r}")
        severity = _number(env, "KEYGUARD_GUARDDUTY_MIN_SEVERITY", 4.0, float, 0, 10)
        ttl = int(_number(env, "KEYGUARD_DEDUP_TTL_SECONDS", cls.dedup_ttl_seconds, int, 1, None))
        days = int(_number(env, "KEYGUARD_INVESTIGATION_LOOKBACK_DAYS", 90, int, 1, 90))  # CloudTrail keeps 90
        tag_key = env.get("KEYGUARD_EXEMPT_TAG_KEY", "").strip()  # empty: no tag exempts anyone
        return cls(
            mode=mode,
            topic_arn=env.get("KEYGUARD_TOPIC_ARN") or None,
            idempotency_table=env.get("KEYGUARD_IDEMPOTENCY_TABLE") or None,
            guardduty_min_severity=severity,
            create_access_key_response=cak,
            exempt_tag_key=tag_key,
            protected_principals=principal_refs(env.get("KEYGUARD_PROTECTED_PRINCIPALS", "")),
            own_roles=_names(env.get("KEYGUARD_OWN_ROLES", "")),
            exempt_principals=principal_refs(env.get("KEYGUARD_EXEMPT_PRINCIPALS", "")),
            ledger_table=env.get("KEYGUARD_LEDGER_TABLE") or None,
            deny_all_policy_arn=env.get("KEYGUARD_DENY_ALL_POLICY_ARN") or None,
            dedup_ttl_seconds=ttl,
            investigation_queue_url=env.get("KEYGUARD_INVESTIGATION_QUEUE_URL") or None,
            investigation_lookback_days=days,
            stop_launched_instances=_flag(env, "KEYGUARD_STOP_LAUNCHED_INSTANCES"),
            enforce_imdsv2=_flag(env, "KEYGUARD_ENFORCE_IMDSV2"),
        )


_UNIQUE_ID = re.compile(r"A(IDA|ROA)[A-Z0-9]{12,124}")  # IAM unique ids of users (AIDA) and roles (AROA)


def principal_refs(raw: str) -> frozenset[str]:
    """Comma-separated principals, each in one of these forms, to "kind:name" (lower case), "id:ID" or a
    bare lower-cased name:

    - `user/NAME`, `role/NAME`, or an IAM ARN (`arn:aws:iam::ACCOUNT:user/PATH/NAME`, `...:role/...`):
      that user, or that role, only;
    - an assumed-role ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`): the role;
    - a unique id (`AIDA...` for a user, `AROA...` for a role): that principal under any later name;
    - a bare `NAME`: a user or a role of that name (kept for compatibility; a key holder who can rename
      users can take a bare name that was meant for a role, so prefer the typed forms).
    """
    out = set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if _UNIQUE_ID.fullmatch(item):
            out.add(f"id:{item}")
            continue
        if ":assumed-role/" in item:
            out.add("role:" + item.split(":assumed-role/", 1)[1].split("/", 1)[0].lower())
            continue
        resource = item.split(":", 5)[5] if item.startswith("arn:") and item.count(":") >= 5 else item
        kind, _, rest = resource.partition("/")
        if kind in ("user", "role") and rest:
            out.add(f"{kind}:{rest.rsplit('/', 1)[-1].lower()}")
        else:
            out.add(resource.rsplit("/", 1)[-1].lower())
    return frozenset(out)


def matches_principal(
    refs: frozenset[str], kind: str, name: str | None, arn: str | None = None, unique_id: str | None = None
) -> bool:
    """Whether `kind` ("user" | "role") `name` (or its ARN, or its unique id) is one of `refs`."""
    if unique_id and f"id:{unique_id}" in refs:
        return True
    if not name and arn:
        name = arn.rsplit("/", 1)[-1]
    if not name:
        return False
    folded = name.lower()  # IAM names are unique regardless of case
    return f"{kind}:{folded}" in refs or folded in refs


def _names(raw: str) -> frozenset[str]:
    """Comma-separated principal names or ARNs, folded to lower case (IAM names are case-insensitive).

    user/NAME and role/PATH/NAME ARNs give NAME; an assumed-role ARN (assumed-role/ROLE/SESSION) gives ROLE.
    """
    out = set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if ":assumed-role/" in item:
            item = item.split(":assumed-role/", 1)[1].split("/", 1)[0]
        out.add(item.rsplit("/", 1)[-1].lower())
    return frozenset(out)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "false").strip().lower()
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _number(env: Mapping[str, str], name: str, default: float, kind: type, low: float, high: float | None) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError as e:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from e
    if not (low <= value and (high is None or value <= high)):  # written so that NaN fails too
        bounds = f"within {low}..{high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value
