"""A small, strict evaluator for the resource policies keyguard writes (trust and bus policies), used
until tests/iam_eval.py (issue 9's evaluator) covers them: Principal, Action, Resource, and the condition
operators these documents use, with IAM's rule that a negated operator matches a missing key."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

ALLOW, DENY, IMPLICIT = "allow", "explicit-deny", "implicit-deny"


@dataclass(frozen=True)
class Request:
    principal: str  # an IAM ARN, or "service:<name>"
    action: str
    resource: str = "*"
    context: dict[str, str] = field(default_factory=dict)


def decide(document: dict[str, Any], request: Request) -> str:
    allowed = False
    for statement in _list(document["Statement"]):
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return DENY
        allowed = True
    return ALLOW if allowed else IMPLICIT


def _applies(s: dict[str, Any], r: Request) -> bool:
    return (
        _principal(s.get("Principal"), r.principal)
        and any(fnmatch.fnmatchcase(r.action.lower(), a.lower()) for a in _list(s["Action"]))
        and any(fnmatch.fnmatchcase(r.resource, x) for x in _list(s.get("Resource", "*")))
        and _conditions(s.get("Condition", {}), r.context)
    )


def _principal(spec: Any, principal: str) -> bool:
    if spec is None:
        return True  # an identity policy or an SCP: it applies to the principal it is attached to
    if spec == "*" or spec == {"AWS": "*"}:
        return True
    if not isinstance(spec, dict):
        return False
    if principal.startswith("service:"):
        return principal.removeprefix("service:") in _list(spec.get("Service", []))
    for arn in _list(spec.get("AWS", [])):
        if arn.endswith(":root") and principal.split(":")[4] == arn.split(":")[4]:
            return True  # the account: any principal of it (its own policies decide the rest)
        if arn == principal:
            return True
    return False


def _conditions(block: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in block.items():
        for key, wanted in tests.items():
            if not _test(operator, context.get(key), [str(w) for w in _list(wanted)]):
                return False
    return True


def _test(operator: str, value: str | None, wanted: list[str]) -> bool:
    negated = "Not" in operator
    if value is None:
        return negated  # IAM: a negated operator on a missing key matches
    if operator in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        hit = value in wanted
    elif operator in ("StringLike", "ArnLike", "StringNotLike", "ArnNotLike"):
        hit = any(fnmatch.fnmatchcase(value, w) for w in wanted)
    elif operator == "Bool":
        hit = value.lower() in [w.lower() for w in wanted]
    else:
        raise NotImplementedError(f"condition operator {operator}")
    return not hit if negated else hit


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
