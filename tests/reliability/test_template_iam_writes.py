"""No policy anywhere in template.yaml allows an IAM write on Resource "*".

tests/unit/test_template.py checks each role against the actions the code declares. This test is the
broader, standing guarantee: every policy document in the template (role policies, function-level SAM
policies, managed policies, key/topic/queue policies), both branches of every Fn::If, every Allow
statement whose Resource is or contains a wildcard ARN ("*", "arn:aws:iam::*:...", NotResource) must not
allow an IAM action that writes (anything but Get*, List*, Generate*, Simulate*), nor "*"/"iam:*"-style
wildcards that include writes.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from keyguard.local.emulator import load_template

IAM_READ_PREFIXES = ("Get", "List", "Generate", "Simulate")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> list[Any]:
    """Every concrete form of a statement list: Fn::If gives both branches, AWS::NoValue gives nothing.
    (emulator.load_template turns !If [c, a, b] into [c, a, b] and !Ref X into X.)"""
    out = []
    for item in _as_list(value):
        if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str):  # !If [cond, a, b]
            out += [b for b in item[1:] if b != "AWS::NoValue"]
        elif item != "AWS::NoValue":
            out.append(item)
    return out


def policy_documents(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for rid, res in template.get("Resources", {}).items():
        props = res.get("Properties") or {}
        kind = res.get("Type")
        if kind == "AWS::IAM::Role":
            docs += [(f"{rid}/{p.get('PolicyName')}", p["PolicyDocument"]) for p in props.get("Policies") or []]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            docs.append((rid, props["PolicyDocument"]))
        elif kind == "AWS::KMS::Key":
            docs.append((rid, props["KeyPolicy"]))
        elif kind == "AWS::Serverless::Function":
            for n, p in enumerate(_as_list(props.get("Policies") or [])):
                if isinstance(p, dict) and "Statement" in p:
                    docs.append((f"{rid}/Policies[{n}]", p))
                elif p:  # a SAM policy template or a managed policy by name: its grants are not visible here
                    docs.append(
                        (f"{rid}/Policies[{n}]", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                    )
    return docs


def is_iam_write(action: str) -> bool:
    """True for an action pattern that matches at least one IAM write."""
    service, _, name = action.partition(":")
    if action == "*":
        return True
    if not fnmatch.fnmatch("iam", service.lower()):
        return False
    # a pattern is a write if it can match a name outside the read prefixes
    return not any(name.startswith(p) for p in IAM_READ_PREFIXES)


def is_everything(resource: Any) -> bool:
    if not isinstance(resource, str):
        return False
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[2] == "iam" and parts[5] in ("*", "user/*", "role/*") and parts[4] in ("*", "")


def iam_writes_on_everything(template: dict[str, Any]) -> list[str]:
    found = []
    for name, doc in policy_documents(template):
        for statement in _branches(doc.get("Statement")):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            wide = "NotResource" in statement or any(is_everything(r) for r in _as_list(statement.get("Resource")))
            actions = _as_list(statement.get("Action", [])) + (["*"] if "NotAction" in statement else [])
            writes = [a for a in actions if isinstance(a, str) and is_iam_write(a)]
            if wide and writes:
                found.append(f"{name} {statement.get('Sid', '')}: {writes} on {statement.get('Resource')}")
    return found


def test_no_policy_allows_an_iam_write_on_everything() -> None:
    template = load_template()
    assert policy_documents(template), "no policy documents found: the test would prove nothing"
    assert iam_writes_on_everything(template) == []


@pytest.mark.parametrize(
    ("statement", "flagged"),
    [
        ({"Effect": "Allow", "Action": "iam:PutUserPolicy", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": ["iam:*"], "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "iam:Put*", "Resource": "arn:aws:iam::*:user/*"}, True),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "iam:UpdateAccessKey", "NotResource": "arn:aws:iam::1:user/x"}, True),
        ({"Effect": "Allow", "Action": "iam:GetAccessKeyLastUsed", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "iam:PutUserPolicy", "Resource": "arn:aws:iam::123456789012:user/*"}, False),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
    ],
)
def test_the_check_itself(statement: dict[str, Any], flagged: bool) -> None:
    template = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [statement]}}]},
            },
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Policies": [{"Statement": [["Cond", statement, "AWS::NoValue"]]}]},
            },
        }
    }
    assert bool(iam_writes_on_everything(template)) is flagged
    assert len(iam_writes_on_everything(template)) == (2 if flagged else 0)  # both places, the !If branch too
