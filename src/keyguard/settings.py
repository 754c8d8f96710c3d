"""Configuration: SAM parameters -> environment variables -> one frozen, validated Settings."""

from __future__ import annotations

import os
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
    exempt_tag_key: str = "keyguard:exempt"
    protected_principals: frozenset[str] = frozenset()
    own_roles: frozenset[str] = frozenset()
    dedup_ttl_seconds: int = 7 * 24 * 3600
    investigation_queue_url: str | None = None  # containment hands leaked-key incidents on to investigation
    investigation_lookback_days: int = 90  # CloudTrail event history keeps 90 days
    stop_launched_instances: bool = False
    enforce_imdsv2: bool = False
    security_hub: bool = False  # each incident also becomes an ASFF finding (keyguard.report.securityhub)
    chat_topic_arn: str | None = None  # chat notifications' own topic (keyguard.report.chat)

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN

    def is_protected(self, name: str | None) -> bool:
        """A principal keyguard must never act on: listed by the operator, or one of its own roles."""
        if not name:
            return False
        folded = name.lower()  # IAM names are unique regardless of case
        return folded in self.protected_principals or folded in self.own_roles

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
        tag_key = env.get("KEYGUARD_EXEMPT_TAG_KEY", "keyguard:exempt").strip()
        if not tag_key:
            raise ConfigError("KEYGUARD_EXEMPT_TAG_KEY must not be empty")
        return cls(
            mode=mode,
            topic_arn=env.get("KEYGUARD_TOPIC_ARN") or None,
            idempotency_table=env.get("KEYGUARD_IDEMPOTENCY_TABLE") or None,
            guardduty_min_severity=severity,
            create_access_key_response=cak,
            exempt_tag_key=tag_key,
            protected_principals=_names(env.get("KEYGUARD_PROTECTED_PRINCIPALS", "")),
            own_roles=_names(env.get("KEYGUARD_OWN_ROLES", "")),
            dedup_ttl_seconds=ttl,
            investigation_queue_url=env.get("KEYGUARD_INVESTIGATION_QUEUE_URL") or None,
            investigation_lookback_days=days,
            stop_launched_instances=_flag(env, "KEYGUARD_STOP_LAUNCHED_INSTANCES"),
            enforce_imdsv2=_flag(env, "KEYGUARD_ENFORCE_IMDSV2"),
            security_hub=_flag(env, "KEYGUARD_SECURITY_HUB"),
            chat_topic_arn=env.get("KEYGUARD_CHAT_TOPIC_ARN") or None,
        )


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
