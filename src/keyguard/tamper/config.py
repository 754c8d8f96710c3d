"""The tamper watch's configuration: environment variables the template sets -> one frozen object.

keyguard's own resources are matched by what the stack configured (ARNs, names, the stack name that
CloudFormation puts at the front of every generated name), never by tags or names an attacker can write."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from keyguard.errors import ConfigError
from keyguard.settings import DRY_RUN, MODES


@dataclass(frozen=True)
class WatchConfig:
    mode: str = "enforce"
    topic_arn: str | None = None
    alarm_topic_arn: str | None = None  # the alarm path's own topic (own key): the fallback when the topic fails
    idempotency_table: str | None = None
    ledger_table: str | None = None
    stack_name: str | None = None
    key_arns: frozenset[str] = frozenset()  # keyguard's KMS keys
    tables: frozenset[str] = frozenset()  # keyguard's DynamoDB table names
    own_roles: frozenset[str] = frozenset()  # keyguard's function roles, names folded to lower case
    deployers: frozenset[str] = frozenset()  # role/user ARNs whose changes to keyguard are its own deploys
    deny_all_policy_arn: str | None = None
    dedup_ttl_seconds: int = 7 * 24 * 3600

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WatchConfig:
        env = os.environ if environ is None else environ
        mode = env.get("KEYGUARD_MODE", "enforce").strip().lower()
        if mode not in MODES:
            raise ConfigError(f"KEYGUARD_MODE must be one of {MODES}, got {mode!r}")
        ttl_raw = env.get("KEYGUARD_DEDUP_TTL_SECONDS", str(cls.dedup_ttl_seconds)).strip()
        try:
            ttl = int(ttl_raw)
        except ValueError as e:
            raise ConfigError(f"KEYGUARD_DEDUP_TTL_SECONDS must be an integer, got {ttl_raw!r}") from e
        if ttl < 1:
            raise ConfigError(f"KEYGUARD_DEDUP_TTL_SECONDS must be at least 1, got {ttl}")
        return cls(
            mode=mode,
            topic_arn=env.get("KEYGUARD_TOPIC_ARN") or None,
            alarm_topic_arn=env.get("KEYGUARD_ALARM_TOPIC_ARN") or None,
            idempotency_table=env.get("KEYGUARD_IDEMPOTENCY_TABLE") or None,
            ledger_table=env.get("KEYGUARD_LEDGER_TABLE") or None,
            stack_name=(env.get("KEYGUARD_STACK_NAME") or "").strip() or None,
            key_arns=_items(env.get("KEYGUARD_KEY_ARNS", "")),
            tables=_items(env.get("KEYGUARD_OWN_TABLES", "")),
            own_roles=frozenset(_role_name(r).lower() for r in _items(env.get("KEYGUARD_OWN_ROLES", ""))),
            deployers=frozenset(a.lower() for a in _items(env.get("KEYGUARD_DEPLOYER_ARNS", ""))),
            deny_all_policy_arn=env.get("KEYGUARD_DENY_ALL_POLICY_ARN") or None,
            dedup_ttl_seconds=ttl,
        )

    def is_stack_name(self, name: str | None) -> bool:
        """A physical name CloudFormation generated for this stack's resource (`<stack>-<LogicalId>-<id>`)."""
        return bool(self.stack_name and name and name.startswith(f"{self.stack_name}-"))


def _items(raw: str) -> frozenset[str]:
    return frozenset(i.strip() for i in raw.split(",") if i.strip())


def _role_name(item: str) -> str:
    return item.rsplit("/", 1)[-1] if item.startswith("arn:") else item
