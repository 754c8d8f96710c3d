"""The deployed stack's settings, as the operator commands see them.

The template writes one SSM parameter, `/keyguard/<stack>/settings`: a JSON object with the stack's mode,
protected and exempt principals, its own roles, topic, ledger table and deny-all policy. `keyguard contain`
refuses what the stack protects, and every command notifies the stack's topic, without anyone exporting
environment variables. `--stack NAME` chooses the stack (default `keyguard`).

IAM is global: a region only says where the stack's settings, ledger and topic live. The stack is looked for
in the clients' region (--region, or the profile's) and then in us-east-1, where the README deploys it, so
that `--region eu-west-1` never silently drops the stack (its protected principals, ledger, boundary, topic).

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
README_REGION = "us-east-1"  # samconfig.toml and the README deploy the stack here
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
    region: str | None = None  # where the parameter (and so the stack's ledger table) was found

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def environment(self) -> dict[str, str]:
        """The KEYGUARD_* variables these settings stand for (what the stack's functions run with)."""
        return {ENVIRONMENT[k]: v for k, v in self.values.items() if k in ENVIRONMENT}

    def line(self) -> str:
        when = f", changed {self.modified:%Y-%m-%dT%H:%M:%SZ}" if self.modified else ""
        version = f" version {self.version}" if self.version else ""
        where = f" in {self.region}" if self.region else ""
        return f"stack {self.stack}{where} (SSM {self.parameter}{version}{when})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "parameter": self.parameter,
            "version": self.version,
            **self.values,
        }


@dataclass(frozen=True)
class Search:
    """Where a stack was looked for: the refusals and the notes name it."""

    stack: str
    parameter: str
    regions: tuple[str, ...]
    named: bool  # --stack NAME was given

    def where(self) -> str:
        return f"SSM {self.parameter} in {' and '.join(self.regions)}"


def regions_for(region: str) -> tuple[str, ...]:
    """The clients' region, then us-east-1 (same partition only: a China or GovCloud account has no us-east-1)."""
    if region == README_REGION or region.startswith(("cn-", "us-gov-", "us-iso")):
        return (region,)
    return (region, README_REGION)


def find(clients: Any, stack: str | None) -> tuple[StackSettings | None, Search]:
    """The stack's settings, looked for in each region of regions_for(clients.region); None when in none."""
    name = stack or DEFAULT_STACK
    search = Search(name, PARAMETER.format(stack=name), regions_for(clients.region), stack is not None)
    for region in search.regions:
        found = _read(clients, search.parameter, region)
        if found is not None:
            return _settings(name, search.parameter, found, region), search
    return None, search


def read(clients: Any, stack: str | None) -> StackSettings | None:
    """The stack's settings. `stack` None means the default stack, which may not be deployed (None then);
    a stack named with --stack must exist."""
    found, search = find(clients, stack)
    if found is None and search.named:
        raise OperatorError(not_found(search))
    return found


def not_found(search: Search) -> str:
    if search.named:
        return f"no keyguard stack named {search.stack!r} in this account ({search.where()} not found)"
    return f"no keyguard stack found ({search.where()} not found)"


def _read(clients: Any, parameter: str, region: str) -> dict[str, Any] | None:
    try:
        return clients.get("ssm", region).get_parameter(Name=parameter)["Parameter"]
    except Exception as e:
        if error_code(e) == "ParameterNotFound":
            return None
        if error_code(e) in ("AccessDeniedException", "AccessDenied"):
            raise OperatorError(
                f"cannot read the stack's settings ({parameter} in {region}: AccessDenied): grant ssm:GetParameter "
                "on it (docs/operator.md), so that the command knows what the stack protects"
            ) from e
        raise


def _settings(name: str, parameter: str, found: dict[str, Any], region: str) -> StackSettings:
    try:
        doc = json.loads(found["Value"])
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise OperatorError(f"the stack's settings ({parameter}) are not keyguard's JSON: {e}") from e
    values = {k: str(v) for k, v in doc.items() if k in ENVIRONMENT and v not in (None, "")}
    return StackSettings(name, parameter, values, found.get("Version"), found.get("LastModifiedDate"), region)
