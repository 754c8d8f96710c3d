"""Organization-mode configuration (template parameters -> environment variables), validated once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyguard.errors import ConfigError
from keyguard.incident import ACCOUNT_RE

ACCOUNT_MODE = "account"
ORGANIZATION_MODE = "organization"
DEPLOYMENT_MODES = (ACCOUNT_MODE, ORGANIZATION_MODE)
DEFAULT_MEMBER_ROLE = "keyguard-member"
_ROLE_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")
_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}")


@dataclass(frozen=True)
class OrgSettings:
    mode: str = ACCOUNT_MODE
    member_role_name: str = DEFAULT_MEMBER_ROLE
    external_id: str | None = None
    allowed_accounts: frozenset[str] = frozenset()  # empty: every active account of the organization
    delegated_admins: frozenset[str] = frozenset()  # accounts whose events may name another account

    @property
    def organization(self) -> bool:
        return self.mode == ORGANIZATION_MODE

    def allowed(self, account: str) -> bool:
        return not self.allowed_accounts or account in self.allowed_accounts

    def role_arn(self, account: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account}:role/{self.member_role_name}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrgSettings:
        env = os.environ if environ is None else environ
        mode = env.get("KEYGUARD_DEPLOYMENT_MODE", ACCOUNT_MODE).strip().lower() or ACCOUNT_MODE
        if mode not in DEPLOYMENT_MODES:
            raise ConfigError(f"KEYGUARD_DEPLOYMENT_MODE must be one of {DEPLOYMENT_MODES}, got {mode!r}")
        role = env.get("KEYGUARD_MEMBER_ROLE_NAME", DEFAULT_MEMBER_ROLE).strip() or DEFAULT_MEMBER_ROLE
        if not _ROLE_NAME_RE.fullmatch(role):
            raise ConfigError(f"KEYGUARD_MEMBER_ROLE_NAME is not an IAM role name: {role[:70]!r}")
        external = env.get("KEYGUARD_MEMBER_EXTERNAL_ID", "").strip() or None
        if external is not None and not _EXTERNAL_ID_RE.fullmatch(external):
            raise ConfigError("KEYGUARD_MEMBER_EXTERNAL_ID must be 2-1224 characters of [\\w+=,.@:/-]")
        return cls(
            mode=mode,
            member_role_name=role,
            external_id=external,
            allowed_accounts=_accounts(env, "KEYGUARD_MEMBER_ACCOUNTS"),
            delegated_admins=_accounts(env, "KEYGUARD_DELEGATED_ADMIN_ACCOUNTS"),
        )


def _accounts(env: Mapping[str, str], name: str) -> frozenset[str]:
    out = set()
    for item in env.get(name, "").split(","):
        item = item.strip()
        if not item:
            continue
        if not ACCOUNT_RE.fullmatch(item):
            raise ConfigError(f"{name} must list 12-digit account ids, got {item[:20]!r}")
        out.add(item)
    return frozenset(out)


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
