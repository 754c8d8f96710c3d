"""The deployed stack's settings, as the operator commands see them.

The template writes one SSM parameter, `/keyguard/<stack>/settings`: a JSON object with the stack's mode,
protected and exempt principals, its own roles, topic, ledger table and deny-all policy. `keyguard contain`
refuses what the stack protects, and every command notifies the stack's topic, without anyone exporting
environment variables. `--stack NAME` chooses the stack (default `keyguard`).

The parameter is configuration written by CloudFormation, not evidence: the output names its version
and when it changed, so that an edit by hand shows. The functions never read it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyguard.aws import error_code
from keyguard.operator.clients import OperatorError

DEFAULT_STACK = "keyguard"
PARAMETER = "/keyguard/{stack}/settings"
READ_PERMISSIONS = ("ssm:GetParameter",)
# JSON field -> the environment variable the functions get from the same stack parameter
ENVIRONMENT = {
    "mode": "KEYGUARD_MODE",
    "protectedPrincipals": "KEYGUARD_PROTECTED_PRINCIPALS",
    "exemptPrincipals": "KEYGUARD_EXEMPT_PRINCIPALS",
    "ownRoles": "KEYGUARD_OWN_ROLES",
    "topicArn": "KEYGUARD_TOPIC_ARN",
    "ledgerTable": "KEYGUARD_LEDGER_TABLE",
    "denyAllPolicyArn": "KEYGUARD_DENY_ALL_POLICY_ARN",
    "createAccessKeyResponse": "KEYGUARD_CREATE_ACCESS_KEY_RESPONSE",
    "guardDutyMinSeverity": "KEYGUARD_GUARDDUTY_MIN_SEVERITY",
    "exemptTagKey": "KEYGUARD_EXEMPT_TAG_KEY",
}


@dataclass(frozen=True)
class StackSettings:
    stack: str
    parameter: str
    values: dict[str, str] = field(default_factory=dict)  # only the fields in ENVIRONMENT, as strings
    version: int | None = None
    modified: datetime | None = None

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def environment(self) -> dict[str, str]:
        """The KEYGUARD_* variables these settings stand for (what the stack's functions run with)."""
        return {ENVIRONMENT[k]: v for k, v in self.values.items() if k in ENVIRONMENT}

    def line(self) -> str:
        when = f", changed {self.modified:%Y-%m-%dT%H:%M:%SZ}" if self.modified else ""
        version = f" version {self.version}" if self.version else ""
        return f"stack {self.stack} (SSM {self.parameter}{version}{when})"

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "parameter": self.parameter, "version": self.version, **self.values}


def read(clients: Any, stack: str | None) -> StackSettings | None:
    """The stack's settings. `stack` None means the default stack, which may not be deployed (None then);
    a stack named with --stack must exist."""
    name = stack or DEFAULT_STACK
    parameter = PARAMETER.format(stack=name)
    try:
        found = clients.get("ssm").get_parameter(Name=parameter)["Parameter"]
    except Exception as e:
        if error_code(e) == "ParameterNotFound":
            if stack is None:
                return None
            raise OperatorError(
                f"no keyguard stack named {name!r} in this account and region (SSM parameter {parameter} not found)"
            ) from e
        if error_code(e) in ("AccessDeniedException", "AccessDenied") and stack is None:
            raise OperatorError(
                f"cannot read the stack's settings ({parameter}: AccessDenied): grant ssm:GetParameter on it "
                "(docs/operator.md), so that the command knows what the stack protects"
            ) from e
        raise
    try:
        doc = json.loads(found["Value"])
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise OperatorError(f"the stack's settings ({parameter}) are not keyguard's JSON: {e}") from e
    values = {k: str(v) for k, v in doc.items() if k in ENVIRONMENT and v not in (None, "")}
    return StackSettings(name, parameter, values, found.get("Version"), found.get("LastModifiedDate"))
