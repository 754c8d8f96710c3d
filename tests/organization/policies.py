"""Resource policies and SCPs of organization mode decided by IAM's evaluation logic (tests/iam_eval.py,
issue 9's evaluator): moto ignores trust policies, bus policies and SCPs, so a test that says "IAM allows
this" or "IAM denies this" asks here. The caller's own identity policies allow everything, so that what is
decided is the document under test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests import iam_eval

ALLOW, DENY, IMPLICIT = "allow", "explicit-deny", "implicit-deny"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Request:
    principal: str  # an IAM ARN, or "service:<name>"
    action: str
    resource: str = "*"
    context: dict[str, str] = field(default_factory=dict)


def _request(r: Request) -> iam_eval.Request:
    principal = r.principal.removeprefix("service:")
    parts = r.resource.split(":")
    owner = parts[4] if len(parts) > 4 and parts[4].isdigit() else None
    return iam_eval.Request(r.action, r.resource, principal, dict(r.context), resource_account=owner)


def _verdict(decision: iam_eval.Decision) -> str:
    if decision.allowed:
        return ALLOW
    return DENY if decision.explicit else IMPLICIT


def decide(document: dict[str, Any], request: Request, identity: Any = ALLOW_ALL) -> str:
    """A resource policy (trust policy, bus policy): it must allow the request itself, as a trust policy
    must for sts:AssumeRole and a bus policy must for another account's PutEvents."""
    return _verdict(iam_eval.evaluate(_request(request), identity, resource=document, resource_must_allow=True))


def decide_scp(scp: dict[str, Any], request: Request) -> str:
    """An SCP over a principal whose own policies allow everything: only the SCP can deny."""
    decision = iam_eval.evaluate(_request(request), ALLOW_ALL, scps=[[scp, ALLOW_ALL]])
    return _verdict(decision)
