"""tests/iam_eval.py against a table of request contexts: every condition operator (with a key present,
absent, IfExists, under ForAnyValue/ForAllValues), Action/Resource/Principal matching, and the evaluation
order (explicit deny, SCPs, resource-based policies, identity-based policies, permissions boundaries,
session policies), ending with the facts keyguard's containment rests on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyguard.actions import deny_all_policy, revoke_sessions_policy
from tests.iam_eval import Request, assume_role, conditions_hold, evaluate, long_term_key, session

ACCOUNT = "123456789012"
OTHER = "210987654321"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/web-app-role"
ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/web-app-role/i-0123456789abcdef0"
BUCKET = "arn:aws:s3:::keyguard-evidence"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


ADMINISTRATOR_ACCESS = doc(allow())  # AWS's AdministratorAccess managed policy
AWS_DENY_ALL = doc(deny())  # AWS's AWSDenyAll managed policy
ABSENT = object()

# ------------------------------------------------------------------------------------------- operators

# (operator, policy values, context value or ABSENT, holds?)
OPERATORS: list[tuple[str, Any, Any, bool]] = [
    # strings
    ("StringEquals", "alice", "alice", True),
    ("StringEquals", "alice", "Alice", False),
    ("StringEquals", ["bob", "alice"], "alice", True),  # values ORed
    ("StringEquals", "alice", ABSENT, False),
    ("StringNotEquals", "alice", "bob", True),
    ("StringNotEquals", "alice", "alice", False),
    ("StringNotEquals", ["alice", "bob"], "bob", False),  # NOR over the values
    ("StringNotEquals", "alice", ABSENT, True),  # negated: an absent key makes it true
    ("StringEqualsIgnoreCase", "ALICE", "alice", True),
    ("StringEqualsIgnoreCase", "ALICE", "bob", False),
    ("StringNotEqualsIgnoreCase", "ALICE", "alice", False),
    ("StringNotEqualsIgnoreCase", "ALICE", "bob", True),
    ("StringLike", "ali*", "alice", True),
    ("StringLike", "al?ce", "alice", True),
    ("StringLike", "al?ce", "allice", False),
    ("StringLike", "Ali*", "alice", False),  # case-sensitive
    ("StringLike", "ali*", ABSENT, False),
    ("StringNotLike", "ali*", "bob", True),
    ("StringNotLike", "ali*", "alice", False),
    ("StringNotLike", "ali*", ABSENT, True),
    ("StringEqualsIfExists", "alice", ABSENT, True),
    ("StringEqualsIfExists", "alice", "bob", False),
    ("StringEqualsIfExists", "alice", "alice", True),
    ("StringLikeIfExists", "ali*", ABSENT, True),
    # numbers
    ("NumericEquals", "10", "10", True),
    ("NumericEquals", "10", "10.0", True),
    ("NumericEquals", "10", "11", False),
    ("NumericNotEquals", "10", "11", True),
    ("NumericNotEquals", "10", "10", False),
    ("NumericNotEquals", "10", ABSENT, True),
    ("NumericLessThan", "3600", "60", True),
    ("NumericLessThan", "3600", "3600", False),
    ("NumericLessThanEquals", "3600", "3600", True),
    ("NumericGreaterThan", "3600", "7200", True),
    ("NumericGreaterThan", "3600", "3600", False),
    ("NumericGreaterThanEquals", "3600", "3600", True),
    ("NumericLessThan", "3600", ABSENT, False),
    ("NumericLessThan", "3600", "not a number", False),
    ("NumericLessThanIfExists", "3600", ABSENT, True),
    # dates (ISO 8601 and epoch seconds)
    ("DateLessThan", "2026-12-01T09:00:00Z", "2026-12-01T08:59:59Z", True),
    ("DateLessThan", "2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z", False),
    ("DateLessThan", "2026-12-01T09:00:00Z", "2026-12-01T09:00:01Z", False),
    ("DateLessThan", "2026-12-01T09:00:00Z", ABSENT, False),  # no aws:TokenIssueTime: a long-term key
    ("DateLessThanEquals", "2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z", True),
    ("DateGreaterThan", "2026-12-01T09:00:00Z", "2026-12-01T09:00:01Z", True),
    ("DateGreaterThan", "2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z", False),
    ("DateGreaterThanEquals", "2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z", True),
    ("DateEquals", "2026-12-01T09:00:00Z", "2026-12-01T09:00:00+00:00", True),
    ("DateNotEquals", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", True),
    ("DateNotEquals", "2026-12-01T09:00:00Z", ABSENT, True),
    ("DateLessThan", "1796115600", "2026-12-01T08:00:00Z", True),  # epoch 2026-12-01T09:00:00Z
    ("DateLessThan", "2026-12-01", "2026-11-30T23:59:59Z", True),
    ("DateLessThanIfExists", "2026-12-01T09:00:00Z", ABSENT, True),
    ("DateLessThan", "2026-12-01T09:00:00Z", "yesterday", False),
    # booleans
    ("Bool", "true", "true", True),
    ("Bool", "true", "false", False),
    ("Bool", True, "true", True),  # a JSON boolean in the policy
    ("Bool", "false", ABSENT, False),
    ("BoolIfExists", "false", ABSENT, True),
    ("BoolIfExists", "true", "false", False),
    # binary
    ("BinaryEquals", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", True),
    ("BinaryEquals", "QmluYXJ5VmFsdWU=", "T3RoZXI=", False),
    # IP addresses
    ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
    ("IpAddress", "203.0.113.0/24", "198.51.100.7", False),
    ("IpAddress", "203.0.113.7", "203.0.113.7", True),  # a single address
    ("IpAddress", "2001:db8::/32", "2001:db8::1", True),
    ("IpAddress", "203.0.113.0/24", ABSENT, False),
    ("NotIpAddress", "203.0.113.0/24", "198.51.100.7", True),
    ("NotIpAddress", "203.0.113.0/24", "203.0.113.7", False),
    ("NotIpAddress", "203.0.113.0/24", ABSENT, True),
    ("IpAddressIfExists", "203.0.113.0/24", ABSENT, True),
    # ARNs: each of the six parts separately
    ("ArnEquals", ALICE, ALICE, True),
    ("ArnEquals", ALICE, f"arn:aws:iam::{ACCOUNT}:user/bob", False),
    ("ArnLike", "arn:aws:iam::*:user/*", ALICE, True),
    ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/*", ALICE, False),
    ("ArnLike", "arn:aws:*:*:*:*", ALICE, True),
    ("ArnLike", "arn:aws:iam::*:*", "not-an-arn", False),
    ("ArnLike", "arn:aws:logs:*:*:log-group:keyguard-*:*", "arn:aws:logs:us-east-1:1:log-group:keyguard-x:*", True),
    ("ArnLike", ALICE, ABSENT, False),
    ("ArnNotEquals", ALICE, f"arn:aws:iam::{ACCOUNT}:user/bob", True),
    ("ArnNotEquals", ALICE, ALICE, False),
    ("ArnNotLike", "arn:aws:iam::*:role/*", ALICE, True),
    ("ArnNotLike", "arn:aws:iam::*:user/*", ALICE, False),
    ("ArnNotLike", "arn:aws:iam::*:user/*", ABSENT, True),
    ("ArnLikeIfExists", "arn:aws:iam::*:role/*", ABSENT, True),
    # Null: tests the absence itself
    ("Null", "true", ABSENT, True),
    ("Null", "true", "2026-12-01T09:00:00Z", False),
    ("Null", "false", "2026-12-01T09:00:00Z", True),
    ("Null", "false", ABSENT, False),
    # set qualifiers over a multi-valued key
    ("ForAnyValue:StringEquals", ["team", "cost"], ["team", "owner"], True),
    ("ForAnyValue:StringEquals", ["team", "cost"], ["owner"], False),
    ("ForAnyValue:StringEquals", ["team"], ABSENT, False),
    ("ForAnyValue:StringEquals", ["team"], [], False),
    ("ForAnyValue:StringEqualsIfExists", ["team"], ABSENT, False),  # ForAnyValue: absent is false
    ("ForAllValues:StringEquals", ["team", "cost"], ["team", "cost"], True),
    ("ForAllValues:StringEquals", ["team", "cost"], ["team", "owner"], False),
    ("ForAllValues:StringEquals", ["team"], ABSENT, True),  # vacuously true
    ("ForAllValues:StringEquals", ["team"], [], True),
    ("ForAllValues:StringLike", ["keyguard:*"], ["keyguard:incident", "keyguard:reason"], True),
    ("ForAllValues:StringLike", ["keyguard:*"], ["keyguard:incident", "owner"], False),
    ("ForAnyValue:StringLike", ["keyguard:*"], ["owner", "keyguard:exempt"], True),
    ("ForAllValues:StringNotEquals", ["keyguard:exempt"], ["team", "owner"], True),
    ("ForAllValues:StringNotEquals", ["keyguard:exempt"], ["team", "keyguard:exempt"], False),
    ("ForAnyValue:StringNotEquals", ["keyguard:exempt"], ["keyguard:exempt", "team"], True),
    ("ForAnyValue:StringNotEquals", ["keyguard:exempt"], ["keyguard:exempt"], False),
    ("ForAnyValue:ArnLike", ["arn:aws:iam::*:role/*"], [ALICE, ROLE], True),
    ("StringEquals", "team", ["owner", "team"], True),  # unqualified over a list: any value
    ("StringNotEquals", "team", ["owner", "team"], False),  # negated over a list: none may match
]


@pytest.mark.parametrize(
    ("operator", "wanted", "got", "holds"),
    OPERATORS,
    ids=[f"{o}:{w}:{'ABSENT' if g is ABSENT else g}" for o, w, g, _ in OPERATORS],
)
def test_condition_operator(operator: str, wanted: Any, got: Any, holds: bool) -> None:
    context = {} if got is ABSENT else {"test:Key": got}
    request = Request("s3:GetObject", BUCKET, ALICE, context)
    assert conditions_hold({operator: {"test:Key": wanted}}, request) is holds
    # and inside a policy: an Allow with the condition allows exactly when it holds
    decided = evaluate(request, [doc(allow(Condition={operator: {"test:Key": wanted}}))])
    assert decided.allowed is holds, decided.reason


def test_every_operator_family_is_in_the_table() -> None:
    families = {o.split(":")[-1].removesuffix("IfExists") for o, *_ in OPERATORS}
    assert families >= {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
        "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
        "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
        "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
        "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
    }  # fmt: skip
    assert any(o.startswith("ForAnyValue:") for o, *_ in OPERATORS)
    assert any(o.startswith("ForAllValues:") for o, *_ in OPERATORS)
    assert sum(o.endswith("IfExists") for o, *_ in OPERATORS) >= 8


def test_condition_keys_are_case_insensitive_and_blocks_are_anded() -> None:
    request = Request("s3:GetObject", BUCKET, ALICE, {"AWS:SourceIp": "203.0.113.7", "aws:username": "alice"})
    assert conditions_hold({"IpAddress": {"aws:sourceip": "203.0.113.0/24"}}, request)
    both = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}, "StringEquals": {"aws:username": "alice"}}
    assert conditions_hold(both, request)
    assert not conditions_hold({**both, "StringEquals": {"aws:username": "alice", "aws:PrincipalTag/x": "y"}}, request)
    assert not conditions_hold({**both, "Bool": {"aws:SecureTransport": "true"}}, request)  # absent key
    with pytest.raises(ValueError, match="not implemented"):
        conditions_hold({"StringSoundsLike": {"aws:username": "alice"}}, request)


# ------------------------------------------------------------------------------------------- matching

# (statement fields, action, resource, applies?)
MATCHING: list[tuple[dict[str, Any], str, str, bool]] = [
    ({"Action": "*"}, "iam:ListUsers", "*", True),
    ({"Action": "iam:*"}, "iam:ListUsers", "*", True),
    ({"Action": "iam:*"}, "s3:GetObject", "*", False),
    ({"Action": "IAM:listusers"}, "iam:ListUsers", "*", True),  # actions are case-insensitive
    ({"Action": "iam:List*"}, "iam:ListUsers", "*", True),
    ({"Action": "iam:*AccessKey*"}, "iam:UpdateAccessKey", "*", True),
    ({"Action": "iam:?etUser"}, "iam:GetUser", "*", True),
    ({"Action": ["s3:*", "iam:GetUser"]}, "iam:GetUser", "*", True),
    ({"NotAction": "iam:*"}, "s3:GetObject", "*", True),
    ({"NotAction": "iam:*"}, "iam:GetUser", "*", False),
    ({"NotAction": ["iam:*", "sts:*"]}, "sts:GetCallerIdentity", "*", False),
    ({"Action": "s3:*", "Resource": f"{BUCKET}/*"}, "s3:GetObject", f"{BUCKET}/report.json", True),
    ({"Action": "s3:*", "Resource": f"{BUCKET}/*"}, "s3:ListBucket", BUCKET, False),
    ({"Action": "s3:*", "Resource": "arn:aws:s3:::KEYGUARD-*"}, "s3:ListBucket", BUCKET, False),  # case-sensitive
    ({"Action": "s3:*", "NotResource": f"{BUCKET}/*"}, "s3:ListBucket", BUCKET, True),
    ({"Action": "s3:*", "NotResource": [BUCKET, f"{BUCKET}/*"]}, "s3:ListBucket", BUCKET, False),
    ({"Action": "iam:*", "Resource": "arn:aws:iam::*:user/${aws:username}"}, "iam:GetUser", ALICE, True),
    ({"Action": "iam:*", "Resource": "arn:aws:iam::*:user/${aws:username}"}, "iam:GetUser", ALICE[:-5] + "bob", False),
    ({"Action": "s3:*", "Resource": "arn:aws:s3:::a${*}b"}, "s3:ListBucket", "arn:aws:s3:::a*b", True),
    ({"Action": "s3:*", "Resource": "arn:aws:s3:::a${*}b"}, "s3:ListBucket", "arn:aws:s3:::axyzb", False),
    ({"Action": "iam:*", "Resource": "arn:aws:iam::*:user/${aws:PrincipalTag/team}"}, "iam:GetUser", ALICE, False),
]


@pytest.mark.parametrize(("fields", "action", "resource", "applies"), MATCHING)
def test_action_and_resource_matching(fields: dict[str, Any], action: str, resource: str, applies: bool) -> None:
    request = long_term_key(ALICE, action, resource)
    statement = {"Effect": "Allow", "Resource": "*", **fields}
    if "NotResource" in fields:
        del statement["Resource"]
    assert evaluate(request, [doc(statement)]).allowed is applies


# ------------------------------------------------------------------------------------------- evaluation order

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BUCKET_POLICY_FOR_ALICE = doc(
    {
        "Sid": "AliceMayWrite",
        "Effect": "Allow",
        "Principal": {"AWS": ALICE},
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET}/*",
    }
)
BUCKET_POLICY_FOR_ACCOUNT = doc(
    {
        "Sid": "Account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:*",
        "Resource": f"{BUCKET}/*",
    }
)
BUCKET_POLICY_FOR_ROLE = doc(
    {"Sid": "Role", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject", "Resource": f"{BUCKET}/*"}
)
ONLY_S3_READ = doc(allow("s3:GetObject"))  # a boundary that allows reads only (an implicit deny for the rest)
PUT = long_term_key(ALICE, "s3:PutObject", f"{BUCKET}/x")

# (name, request, evaluate() keyword arguments, allowed?, reason starts with)
ORDER: list[tuple[str, Request, dict[str, Any], bool, str]] = [
    ("nothing applies: implicit deny", PUT, {}, False, "implicit deny: no identity"),
    ("identity allows", PUT, {"identity": [ADMINISTRATOR_ACCESS]}, True, "allowed by identity"),
    (
        "explicit deny beats an allow in the same policy set",
        PUT,
        {"identity": {"admin": ADMINISTRATOR_ACCESS, "keyguard-quarantine": deny_all_policy()}},
        False,
        "explicit deny in identity-based policy keyguard-quarantine",
    ),
    (
        "a deny for another action does not apply",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS, doc(deny("iam:*"))]},
        True,
        "allowed",
    ),
    (
        "a boundary that allows it: identity ∩ boundary",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "boundary": doc(allow("s3:*"))},
        True,
        "allowed by identity",
    ),
    (
        "a boundary that does not allow it: implicit deny",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "boundary": ONLY_S3_READ},
        False,
        "implicit deny: the permissions boundary",
    ),
    (
        "a boundary alone grants nothing",
        PUT,
        {"boundary": doc(allow())},
        False,
        "implicit deny: no identity",
    ),
    (
        "deny-all boundary with AdministratorAccess",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "boundary": AWS_DENY_ALL},
        False,
        "explicit deny in permissions boundary",
    ),
    (
        "bucket policy naming the user allows without any identity policy",
        PUT,
        {"resource": BUCKET_POLICY_FOR_ALICE},
        True,
        "allowed by resource-based policy (Sid AliceMayWrite) (names the user)",
    ),
    (
        "bucket policy naming the user is not limited by a boundary's implicit deny",
        PUT,
        {"resource": BUCKET_POLICY_FOR_ALICE, "boundary": ONLY_S3_READ},
        True,
        "allowed by resource-based policy",
    ),
    (
        "bucket policy naming the user IS stopped by a boundary's explicit deny",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "resource": BUCKET_POLICY_FOR_ALICE, "boundary": AWS_DENY_ALL},
        False,
        "explicit deny in permissions boundary",
    ),
    (
        "bucket policy naming the account delegates to identity policies",
        PUT,
        {"resource": BUCKET_POLICY_FOR_ACCOUNT},
        False,
        "implicit deny: no identity",
    ),
    (
        "bucket policy naming the account, identity allows",
        PUT,
        {"resource": BUCKET_POLICY_FOR_ACCOUNT, "identity": [doc(allow("s3:PutObject"))]},
        True,
        "allowed by identity",
    ),
    (
        "bucket policy's explicit deny for the principal",
        PUT,
        {
            "identity": [ADMINISTRATOR_ACCESS],
            "resource": doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{BUCKET}/*"}),
        },
        False,
        "explicit deny in resource-based policy",
    ),
    (
        "bucket policy's deny for someone else does not apply",
        PUT,
        {
            "identity": [ADMINISTRATOR_ACCESS],
            "resource": doc(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
                    "Action": "s3:*",
                    "Resource": "*",
                }
            ),
        },
        True,
        "allowed by identity",
    ),
    (
        "NotPrincipal deny spares the named principal",
        PUT,
        {
            "identity": [ADMINISTRATOR_ACCESS],
            "resource": doc({"Effect": "Deny", "NotPrincipal": {"AWS": ALICE}, "Action": "s3:*", "Resource": "*"}),
        },
        True,
        "allowed by identity",
    ),
    (
        "role session: a bucket policy naming the session allows",
        session(ROLE_SESSION, "s3:PutObject", f"{BUCKET}/x", issued_at=NOW),
        {"resource": doc({"Effect": "Allow", "Principal": {"AWS": ROLE_SESSION}, "Action": "s3:*", "Resource": "*"})},
        True,
        "allowed by resource-based policy",
    ),
    (
        "role session: a bucket policy naming the role is limited by the role's boundary",
        session(ROLE_SESSION, "s3:PutObject", f"{BUCKET}/x", issued_at=NOW),
        {"resource": BUCKET_POLICY_FOR_ROLE, "boundary": ONLY_S3_READ},
        False,
        "implicit deny",
    ),
    (
        "role session: a bucket policy naming the role, no boundary",
        session(ROLE_SESSION, "s3:PutObject", f"{BUCKET}/x", issued_at=NOW),
        {"resource": BUCKET_POLICY_FOR_ROLE},
        True,
        "allowed by resource-based policy (Sid Role) (names the role)",
    ),
    (
        "session policy intersects",
        session(ROLE_SESSION, "s3:PutObject", f"{BUCKET}/x", issued_at=NOW),
        {"identity": [ADMINISTRATOR_ACCESS], "session_policy": ONLY_S3_READ},
        False,
        "implicit deny: the session policy",
    ),
    (
        "SCP: every level must allow",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "scps": [doc(allow()), doc(allow("iam:*"))]},
        False,
        "implicit deny: SCP level 2",
    ),
    (
        "SCP: allowed at every level",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "scps": [doc(allow()), [doc(allow("iam:*")), doc(allow("s3:*"))]]},
        True,
        "allowed by identity",
    ),
    (
        "SCP: an explicit deny",
        PUT,
        {"identity": [ADMINISTRATOR_ACCESS], "scps": [doc(allow(), deny("s3:PutObject"))]},
        False,
        "explicit deny in SCP level 1",
    ),
    (
        "SCP does not limit a resource-policy grant's explicit denies away: deny still wins",
        PUT,
        {"resource": BUCKET_POLICY_FOR_ALICE, "scps": [doc(deny("s3:*"))]},
        False,
        "explicit deny in SCP",
    ),
    (
        "cross-account: the identity side alone is not enough",
        Request("s3:PutObject", f"{BUCKET}/x", ALICE, resource_account=OTHER),
        {"identity": [ADMINISTRATOR_ACCESS]},
        False,
        "implicit deny: cross-account",
    ),
    (
        "cross-account: both sides allow",
        Request("s3:PutObject", f"{BUCKET}/x", ALICE, resource_account=OTHER),
        {"identity": [ADMINISTRATOR_ACCESS], "resource": BUCKET_POLICY_FOR_ACCOUNT},
        True,
        "allowed by identity-based policy #1 (Sid 1) and resource-based policy",
    ),
    (
        "cross-account: the resource side alone is not enough",
        Request("s3:PutObject", f"{BUCKET}/x", ALICE, resource_account=OTHER),
        {"resource": BUCKET_POLICY_FOR_ALICE},
        False,
        "implicit deny: no identity",
    ),
]


@pytest.mark.parametrize(("name", "request_", "policies", "allowed", "reason"), ORDER, ids=[o[0] for o in ORDER])
def test_evaluation_order(name: str, request_: Request, policies: dict[str, Any], allowed: bool, reason: str) -> None:
    decided = evaluate(request_, **policies)
    assert decided.allowed is allowed, decided.reason
    assert decided.reason.startswith(reason), decided.reason


# ------------------------------------------------------------------------------------------- trust and bus policies

TRUST_USER = doc({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
TRUST_ACCOUNT = doc({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"})
TRUST_EC2 = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


def test_trust_policies_as_resource_policies() -> None:
    assume = long_term_key(ALICE, "sts:AssumeRole", ROLE)
    assert assume_role(assume, TRUST_USER)  # names the user: no identity policy needed (same account)
    assert not assume_role(assume, TRUST_ACCOUNT)  # names the account: the identity policy must allow
    assert assume_role(assume, TRUST_ACCOUNT, [doc(allow("sts:AssumeRole", ROLE))])
    decided = assume_role(assume, TRUST_EC2, [ADMINISTRATOR_ACCESS])  # only EC2 may assume it, even for an admin
    assert decided.denied and "trust" in decided.reason
    assert assume_role(Request("sts:AssumeRole", ROLE, "ec2.amazonaws.com"), TRUST_EC2)
    # a quarantined user (deny-all boundary) cannot assume the role that trusts it by name
    assert assume_role(assume, TRUST_USER, boundary=AWS_DENY_ALL).explicit
    # nor when the quarantine is the inline deny-all
    assert assume_role(assume, TRUST_USER, {"keyguard-quarantine": deny_all_policy()}).explicit
    # across accounts: the trust policy names the other account, and that account's identity policy allows
    outsider = Request("sts:AssumeRole", ROLE, f"arn:aws:iam::{OTHER}:user/ops", resource_account=ACCOUNT)
    trust_other = doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "sts:AssumeRole"}
    )
    assert assume_role(outsider, trust_other, [doc(allow("sts:AssumeRole"))])
    assert not assume_role(outsider, trust_other)
    assert not assume_role(outsider, TRUST_ACCOUNT, [doc(allow("sts:AssumeRole"))])


def test_eventbridge_bus_policy_as_a_resource_policy() -> None:
    bus = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/keyguard"
    member = "111122223333"
    sender = f"arn:aws:iam::{member}:role/keyguard-forwarder"
    policy = doc(
        {
            "Sid": "MemberAccounts",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        }
    )
    send = Request("events:PutEvents", bus, sender, {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}, resource_account=ACCOUNT)
    identity = [doc(allow("events:PutEvents", bus))]
    assert evaluate(send, identity, resource=policy)
    outsider = Request("events:PutEvents", bus, f"arn:aws:iam::{OTHER}:role/x", {"aws:PrincipalOrgID": "o-zzzz"})
    assert not evaluate(Request(**{**outsider.__dict__, "resource_account": ACCOUNT}), identity, resource=policy)
    no_org = Request("events:PutEvents", bus, sender, {}, resource_account=ACCOUNT)  # key absent: false
    assert not evaluate(no_org, identity, resource=policy)
    by_account = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{member}:root"},
            "Action": "events:PutEvents",
            "Resource": bus,
        }
    )
    assert evaluate(send, identity, resource=by_account)
    assert not evaluate(send, resource=by_account)  # the sender's own account must allow too


# ------------------------------------------------------------------------------------------- keyguard's facts

CUTOFF = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REVOKE = revoke_sessions_policy(CUTOFF)  # keyguard's own document
USER_SESSION = ALICE  # GetSessionToken sessions act as the user


def test_revocation_denies_a_session_issued_before_the_cut_off() -> None:
    before = session(ROLE_SESSION, "s3:GetObject", issued_at=CUTOFF - timedelta(minutes=10), now=CUTOFF)
    decided = evaluate(before, {"admin": ADMINISTRATOR_ACCESS, "keyguard-revoke-sessions": REVOKE})
    assert decided.denied and decided.explicit
    assert "keyguard-revoke-sessions" in decided.reason
    assert evaluate(session(ROLE_SESSION, "iam:CreateUser", issued_at=CUTOFF - timedelta(seconds=1)), [REVOKE]).denied


def test_revocation_allows_a_session_issued_after_the_cut_off() -> None:
    for issued in (CUTOFF, CUTOFF + timedelta(seconds=1), CUTOFF + timedelta(hours=2)):
        after = session(ROLE_SESSION, "s3:GetObject", issued_at=issued, now=issued + timedelta(minutes=1))
        assert evaluate(after, {"admin": ADMINISTRATOR_ACCESS, "keyguard-revoke-sessions": REVOKE}).allowed


def test_revocation_does_not_apply_to_a_long_term_key() -> None:
    """A request signed with an AKIA key has no aws:TokenIssueTime: the DateLessThan condition is false, so
    the revocation's deny does not apply. A revived key is NOT stopped by keyguard-revoke-sessions."""
    revived = long_term_key(ALICE, "iam:CreateAccessKey", ALICE, now=CUTOFF + timedelta(days=1))
    assert "aws:TokenIssueTime" not in revived.context
    decided = evaluate(revived, {"admin": ADMINISTRATOR_ACCESS, "keyguard-revoke-sessions": REVOKE})
    assert decided.allowed, decided.reason
    # the user's own GetSessionToken session from before the cut-off is denied, though
    old = session(USER_SESSION, "iam:CreateAccessKey", issued_at=CUTOFF - timedelta(hours=1))
    assert evaluate(old, {"admin": ADMINISTRATOR_ACCESS, "keyguard-revoke-sessions": REVOKE}).denied
    # what does stop a revived key: the quarantine's deny-all, inline or as the boundary
    assert evaluate(revived, {"admin": ADMINISTRATOR_ACCESS, "keyguard-quarantine": deny_all_policy()}).explicit
    assert evaluate(revived, [ADMINISTRATOR_ACCESS], boundary=deny_all_policy()).explicit


@pytest.mark.parametrize(
    "action",
    [
        "iam:CreateAccessKey",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PutUserPolicy",
        "s3:PutObject",
        "sts:GetCallerIdentity",
    ],
)
def test_a_deny_all_boundary_denies_everything(action: str) -> None:
    """Even with AdministratorAccess attached, and even with a bucket policy that grants the user itself:
    an explicit deny in the boundary wins over every allow."""
    for boundary in (AWS_DENY_ALL, doc(deny_all_policy()["Statement"][0])):
        key = long_term_key(ALICE, action, f"{BUCKET}/x" if action.startswith("s3:") else "*")
        grant = doc({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "*", "Resource": "*"})
        assert evaluate(key, [ADMINISTRATOR_ACCESS], boundary=boundary).explicit
        assert evaluate(key, [ADMINISTRATOR_ACCESS], boundary=boundary, resource=grant).explicit
        assert evaluate(key, resource=grant, boundary=boundary).explicit
        fresh = session(USER_SESSION, action, key.resource, issued_at=CUTOFF + timedelta(days=1))
        assert evaluate(fresh, [ADMINISTRATOR_ACCESS], boundary=boundary).explicit


def test_a_boundary_that_only_allows_nothing_does_not_stop_a_bucket_policy_grant() -> None:
    """Why keyguard's boundary must be an explicit Deny: a boundary that merely allows nothing is an implicit
    deny, which does not limit what a resource-based policy grants the user by name."""
    allow_nothing = doc(allow("none:None"))
    grant = doc({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "s3:*", "Resource": f"{BUCKET}/*"})
    assert evaluate(PUT, [ADMINISTRATOR_ACCESS], boundary=allow_nothing).denied
    assert evaluate(PUT, [ADMINISTRATOR_ACCESS], boundary=allow_nothing, resource=grant).allowed
    assert evaluate(PUT, [ADMINISTRATOR_ACCESS], boundary=AWS_DENY_ALL, resource=grant).denied


def test_request_contexts_say_what_iam_knows() -> None:
    key = long_term_key(ALICE, "s3:GetObject")
    assert not key.has("AWS:TOKENISSUETIME") and key.has("aws:username")
    s = session(ROLE_SESSION, "s3:GetObject", issued_at=CUTOFF)
    assert s.key("aws:tokenissuetime") == "2026-12-01T09:00:00Z"
    assert s.key("aws:PrincipalArn") == ROLE and s.role_arn == ROLE and s.account == ACCOUNT
    assert session(
        ROLE_SESSION, "x", issued_at=CUTOFF, role=f"arn:aws:iam::{ACCOUNT}:role/app/web-app-role"
    ).role_arn.endswith("role/app/web-app-role")
    assert evaluate(key, '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}')


def test_documents_read_back_from_the_emulated_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """user_documents/role_documents read what IAM holds (inline, managed, groups', boundary, trust) and
    evaluate() decides on it."""
    import json

    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from tests.iam_eval import role_documents, user_documents

    with mock_aws():
        import boto3

        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="alice")
        admin = iam.create_policy(PolicyName="admin", PolicyDocument=json.dumps(ADMINISTRATOR_ACCESS))["Policy"]["Arn"]
        deny_all = iam.create_policy(PolicyName="deny-all", PolicyDocument=json.dumps(AWS_DENY_ALL))["Policy"]["Arn"]
        iam.create_group(GroupName="ops")
        iam.add_user_to_group(GroupName="ops", UserName="alice")
        iam.attach_group_policy(GroupName="ops", PolicyArn=admin)
        iam.put_user_policy(UserName="alice", PolicyName="notes", PolicyDocument=json.dumps(doc(allow("s3:List*"))))
        user = user_documents(iam, "alice")
        assert set(user.identity) == {"inline:notes", f"group ops managed:{admin}"} and user.boundary is None
        key = long_term_key(user.arn, "iam:CreateAccessKey", user.arn)
        assert user.evaluate(key).allowed  # through the group
        bounded = user_documents(iam, "alice", boundary_arn=deny_all)  # moto shows no user boundary
        assert bounded.evaluate(key).explicit
        iam.create_role(
            RoleName="web-app-role",
            AssumeRolePolicyDocument=json.dumps(TRUST_EC2),
            PermissionsBoundary=deny_all,
        )
        iam.attach_role_policy(RoleName="web-app-role", PolicyArn=admin)
        role, trust = role_documents(iam, "web-app-role")
        assert role.boundary_arn == deny_all and trust == TRUST_EC2
        assert role.evaluate(session(ROLE_SESSION, "s3:GetObject", issued_at=NOW, role=role.arn)).explicit
        assert assume_role(Request("sts:AssumeRole", role.arn, "ec2.amazonaws.com"), trust)
