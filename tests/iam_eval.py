"""IAM's policy evaluation logic, for tests: "would real IAM deny this request?"

moto is not IAM's policy engine (it evaluates StringEquals conditions only, ignores permissions boundaries,
trust and bus policies). A test that claims "real IAM denies this" decides it here, against the exact policy
documents read back from the emulated account (`user_documents`, `role_documents`) and a request context
that says what real IAM would know about the request (`long_term_key`, `session`).

What is implemented, after the IAM User Guide ("Policy evaluation logic", "IAM JSON policy elements:
Condition operators", "Permissions boundaries for IAM entities", "Conditions with multiple context keys or
values"):

- the order: an explicit Deny in any policy that applies (identity, boundary, session policy, SCP, a
  resource policy whose Principal matches) wins; SCPs (each level) must allow; within one account a resource
  policy that names the user or the role session allows on its own (an implicit deny of the identity policies
  or of the boundary does not limit it, an explicit deny does); one that names the role is limited by the
  boundary; one that names the account delegates to the identity policies; otherwise the identity policies
  must allow, and so must the boundary and the session policy when there is one. Across accounts both the
  identity side and the resource policy must allow;
- Action / NotAction (wildcards, case-insensitive), Resource / NotResource (wildcards, case-sensitive,
  policy variables such as `${aws:username}`), Principal / NotPrincipal (`*`, account ids, `:root`, user,
  role and assumed-role ARNs, services);
- condition operators: String(Not)Equals(IgnoreCase), String(Not)Like, Numeric*, Date*, Bool, BinaryEquals,
  (Not)IpAddress, Arn(Not)Equals, Arn(Not)Like, Null, the `...IfExists` suffix and the `ForAnyValue:` /
  `ForAllValues:` set qualifiers. Condition keys are case-insensitive. A key absent from the request context
  makes a condition false, except: a negated operator (String/Numeric/Date/ArnNot..., NotIpAddress) is true;
  `...IfExists` is true; `Null` tests for the absence itself; `ForAllValues:` is true and `ForAnyValue:` false.
  Multiple operators, and multiple keys in one operator, are ANDed; multiple values of one key are ORed
  (NORed for a negated operator).

Not modelled: permission sets, RCPs, VPC endpoint policies, ACLs, service-specific quirks (KMS key policies,
S3 object ownership), `NotPrincipal` with boundaries, default values in policy variables.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Document = Mapping[str, Any] | str
Policies = Mapping[str, Document] | Iterable[Document] | None

# ------------------------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Request:
    """One request as IAM's evaluation sees it.

    `principal`: the ARN the request is signed as: `arn:aws:iam::A:user/N`, `arn:aws:sts::A:assumed-role/R/S`
    (a role session), `arn:aws:iam::A:root`, or a service principal (`events.amazonaws.com`); None for an
    anonymous request. `role`: for a role session, the role's ARN (with its path, if any; derived otherwise).
    `context`: the request context's condition keys (case-insensitive), each a string or a list of strings.
    `resource_account`: the account owning the resource, when it is not the principal's."""

    action: str
    resource: str = "*"
    principal: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    role: str | None = None
    resource_account: str | None = None

    @property
    def account(self) -> str | None:
        return _account_of(self.principal)

    @property
    def role_arn(self) -> str | None:
        if self.role:
            return self.role
        m = re.fullmatch(r"arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+", self.principal or "")
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}" if m else None

    def has(self, name: str) -> bool:
        return self.key(name) is not _ABSENT

    def key(self, name: str) -> Any:
        """A context key's value (keys are case-insensitive), `_ABSENT` when the request has no such key."""
        lowered = name.lower()
        for k, v in self.context.items():
            if k.lower() == lowered:
                return v
        return _ABSENT


_ABSENT = object()


def _account_of(arn: str | None) -> str | None:
    if not arn:
        return None
    if re.fullmatch(r"\d{12}", arn):
        return arn
    parts = arn.split(":")
    return parts[4] if len(parts) >= 6 and parts[0] == "arn" and parts[4] else None


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def long_term_key(
    user_arn: str, action: str, resource: str = "*", *, now: datetime | None = None, **extra: Any
) -> Request:
    """A request signed with an IAM user's access key (AKIA...): the context has no aws:TokenIssueTime."""
    ctx = {
        "aws:PrincipalArn": user_arn,
        "aws:PrincipalAccount": _account_of(user_arn),
        "aws:PrincipalType": "User",
        "aws:username": user_arn.rsplit("/", 1)[-1],
        "aws:CurrentTime": _stamp(now or datetime.now(UTC)),
        "aws:SecureTransport": "true",
        "aws:ViaAWSService": "false",
        **extra,
    }
    return Request(action, resource, user_arn, ctx)


def session(
    principal_arn: str,
    action: str,
    resource: str = "*",
    *,
    issued_at: datetime,
    now: datetime | None = None,
    role: str | None = None,
    **extra: Any,
) -> Request:
    """A request signed with temporary credentials (ASIA...): an assumed-role session, or a user's
    GetSessionToken / GetFederationToken session. The context has aws:TokenIssueTime."""
    is_role = ":assumed-role/" in principal_arn
    # aws:PrincipalArn of a role session is the role's ARN, not the session's
    principal_arn_key = (role or Request("x", principal=principal_arn).role_arn) if is_role else principal_arn
    ctx = {
        "aws:PrincipalArn": principal_arn_key,
        "aws:PrincipalAccount": _account_of(principal_arn),
        "aws:PrincipalType": "AssumedRole" if is_role else "User",
        "aws:TokenIssueTime": _stamp(issued_at),
        "aws:CurrentTime": _stamp(now or datetime.now(UTC)),
        "aws:SecureTransport": "true",
        "aws:ViaAWSService": "false",
        **extra,
    }
    if not is_role:
        ctx["aws:username"] = principal_arn.rsplit("/", 1)[-1]
    return Request(action, resource, principal_arn, ctx, role=role)


# ------------------------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "explicit deny in boundary (Sid ...)", "implicit deny: no identity-based policy allows", ...

    @property
    def denied(self) -> bool:
        return not self.allowed

    @property
    def explicit(self) -> bool:
        return self.reason.startswith("explicit deny")

    def __bool__(self) -> bool:  # `assert evaluate(...)` reads as "allowed"
        return self.allowed


def evaluate(
    request: Request,
    identity: Policies = None,
    *,
    boundary: Document | None = None,
    resource: Document | None = None,
    session_policy: Document | None = None,
    scps: Iterable[Document | Iterable[Document]] | None = None,
    resource_must_allow: bool = False,
) -> Decision:
    """IAM's decision for `request` given the policies that apply to it.

    `identity`: the principal's identity-based policies (inline, managed, its groups'), a mapping
    name -> document or a list. `boundary`: the permissions boundary's document. `resource`: the resource
    policy (bucket policy, trust policy, bus policy, ...). `scps`: SCP levels (root, OU, account), each a
    document or a list of documents; every level must allow. `resource_must_allow`: the resource policy must
    allow even within one account, as a role's trust policy must for sts:AssumeRole (`assume_role`) and a KMS
    key policy must for the key."""
    named = _named(identity)
    levels = [_named(level if _is_list(level) else [level]) for level in (scps or [])]

    # 1. an explicit deny anywhere wins
    sources = [("identity-based policy", named)]
    if boundary is not None:
        sources.append(("permissions boundary", _named([boundary])))
    if session_policy is not None:
        sources.append(("session policy", _named([session_policy])))
    sources += [(f"SCP level {i + 1}", lvl) for i, lvl in enumerate(levels)]
    for source, docs in sources:
        hit = _first(docs, "Deny", request)
        if hit:
            return Decision(False, f"explicit deny in {source} {hit}")
    if resource is not None:
        hit = _first(_named([resource]), "Deny", request, principal_check=True)
        if hit:
            return Decision(False, f"explicit deny in resource-based policy {hit}")

    # 2. every SCP level must allow
    for i, lvl in enumerate(levels):
        if not _first(lvl, "Allow", request):
            return Decision(False, f"implicit deny: SCP level {i + 1} does not allow")

    identity_hit = _first(named, "Allow", request)
    boundary_ok = boundary is None or bool(_first(_named([boundary]), "Allow", request))
    session_ok = session_policy is None or bool(_first(_named([session_policy]), "Allow", request))
    identity_ok = bool(identity_hit) and boundary_ok and session_ok

    # 3. a resource-based policy
    grant = _resource_grant(resource, request) if resource is not None else None
    cross = request.resource_account is not None and request.resource_account != request.account
    if cross:
        if grant is None:
            return Decision(False, "implicit deny: cross-account request and the resource-based policy does not allow")
        if not identity_ok:
            return Decision(False, _why_not(identity_hit, boundary_ok, session_ok))
        return Decision(True, f"allowed by identity-based policy {identity_hit} and resource-based policy {grant[1]}")
    if grant is None and resource_must_allow:
        return Decision(False, "implicit deny: the resource-based policy (trust or key policy) does not allow")
    if grant is not None:
        how, sid = grant
        if how in ("user", "session", "service", "anyone"):
            return Decision(True, f"allowed by resource-based policy {sid} (names the {how})")
        if how == "role" and boundary_ok and session_ok:
            return Decision(True, f"allowed by resource-based policy {sid} (names the role)")
        # "account": the account delegates to its identity-based policies (below)

    # 4. identity-based policies, within the boundary and the session policy
    if identity_ok:
        return Decision(True, f"allowed by identity-based policy {identity_hit}")
    return Decision(False, _why_not(identity_hit, boundary_ok, session_ok))


def _why_not(identity_hit: str | None, boundary_ok: bool, session_ok: bool) -> str:
    if not identity_hit:
        return "implicit deny: no identity-based policy allows"
    if not boundary_ok:
        return "implicit deny: the permissions boundary does not allow"
    return "implicit deny: the session policy does not allow"


def assume_role(request: Request, trust: Document, identity: Policies = None, **kwargs: Any) -> Decision:
    """sts:AssumeRole of the role whose trust policy is `trust`: the trust policy must allow, and when it
    names the caller's account rather than the caller, the caller's identity policies must allow too."""
    return evaluate(request, identity, resource=trust, resource_must_allow=True, **kwargs)


def allowed(request: Request, *args: Any, **kwargs: Any) -> bool:
    return evaluate(request, *args, **kwargs).allowed


def _is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def _named(policies: Policies) -> list[tuple[str, dict[str, Any]]]:
    if policies is None:
        return []
    if isinstance(policies, Mapping) and "Statement" not in policies:
        items = list(policies.items())
    else:
        items = [(f"#{i + 1}", p) for i, p in enumerate(policies if _is_list(policies) else [policies])]
    return [(name, _parse(doc)) for name, doc in items if doc is not None]


def _parse(doc: Document) -> dict[str, Any]:
    if isinstance(doc, str):
        from urllib.parse import unquote

        return json.loads(unquote(doc) if doc.lstrip().startswith("%7B") else doc)
    return dict(doc)


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    s = doc.get("Statement", [])
    return [s] if isinstance(s, dict) else list(s)


def _first(
    docs: list[tuple[str, dict[str, Any]]], effect: str, request: Request, *, principal_check: bool = False
) -> str | None:
    """'name (Sid x)' of the first statement with `effect` that applies to the request, or None."""
    for name, doc in docs:
        for i, st in enumerate(_statements(doc)):
            if st.get("Effect") != effect:
                continue
            if principal_check and not _principal_applies(st, request):
                continue
            if _applies(st, request):
                return f"{name} (Sid {st.get('Sid', i + 1)})"
    return None


def _resource_grant(doc: Document, request: Request) -> tuple[str, str] | None:
    """How a resource policy's Allow names the principal ('user', 'session', 'role', 'account', 'service',
    'anyone') and which statement, or None when no Allow applies."""
    best: tuple[str, str] | None = None
    rank = {"anyone": 0, "user": 0, "session": 0, "service": 0, "role": 1, "account": 2}
    for i, st in enumerate(_statements(_parse(doc))):
        if st.get("Effect") != "Allow" or not _applies(st, request):
            continue
        how = _principal_match(st, request)
        if how is not None and (best is None or rank[how] < rank[best[0]]):
            best = (how, f"(Sid {st.get('Sid', i + 1)})")
    return best


# ------------------------------------------------------------------------------------------- statements


def _applies(st: dict[str, Any], request: Request) -> bool:
    if "Action" in st:
        acts = any(_wild(p, request.action, ignore_case=True) for p in _list(st["Action"]))
    elif "NotAction" in st:
        acts = not any(_wild(p, request.action, ignore_case=True) for p in _list(st["NotAction"]))
    else:
        acts = False
    if not acts:
        return False
    if "Resource" in st:
        on = any(_resource_matches(p, request) for p in _list(st["Resource"]))
    elif "NotResource" in st:
        on = not any(_resource_matches(p, request) for p in _list(st["NotResource"]))
    else:
        on = True
    if not on:
        return False
    # a resource policy may omit Resource (trust policies do): it is its own resource
    return conditions_hold(st.get("Condition") or {}, request)


def _resource_matches(pattern: str, request: Request) -> bool:
    expanded = _substitute(pattern, request, wildcards=True)
    return expanded is not None and _wild(expanded, request.resource)


def _principal_applies(st: dict[str, Any], request: Request) -> bool:
    if "Principal" in st:
        return _principal_match(st, request) is not None
    if "NotPrincipal" in st:
        return _principal_match({"Principal": st["NotPrincipal"]}, request) is None
    return True  # an identity policy's statement has no Principal


def _principal_match(st: dict[str, Any], request: Request) -> str | None:
    spec = st.get("Principal")
    if spec is None and "NotPrincipal" in st:
        return "anyone" if _principal_match({"Principal": st["NotPrincipal"]}, request) is None else None
    if spec == "*":
        return "anyone"
    if not isinstance(spec, Mapping):
        return None
    p = request.principal or ""
    found: str | None = None
    for kind, values in spec.items():
        for v in _list(values):
            if kind == "AWS":
                if v == "*":
                    return "anyone"
                if v == p:
                    return "session" if ":assumed-role/" in p else ("account" if p.endswith(":root") else "user")
                if request.role_arn and v == request.role_arn:
                    found = "role"
                elif (re.fullmatch(r"\d{12}", v) or v.endswith(":root")) and _account_of(v) == request.account:
                    found = found or "account"
            elif kind == "Service" and v == p:
                return "service"
            elif kind in ("Federated", "CanonicalUser") and v == p:
                return "user"
    return found


# ------------------------------------------------------------------------------------------- conditions

_NEGATED = re.compile(r"^(StringNot|NumericNotEquals|DateNotEquals|NotIpAddress|ArnNot)")


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], request: Request) -> bool:
    """The Condition block: every operator (AND), every key of an operator (AND)."""
    for operator, keys in condition.items():
        for key, values in keys.items():
            if not _condition(operator, key, _list(values), request):
                return False
    return True


def _condition(operator: str, key: str, wanted: list[Any], request: Request) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists") and op != "Null"
    base = op[: -len("IfExists")] if if_exists else op
    got = request.key(key)
    if base == "Null":
        absent = got is _ABSENT or got in ("", [])
        return any(str(w).lower() == ("true" if absent else "false") for w in wanted)
    absent = got is _ABSENT or (isinstance(got, list) and not got)
    if qualifier == "ForAllValues":
        if absent:
            return True  # vacuously: no value fails
        return all(_one(base, key, wanted, v, request) for v in _list(got))
    if qualifier == "ForAnyValue":
        if absent:
            return False
        return any(_one(base, key, wanted, v, request) for v in _list(got))
    if absent:
        return if_exists or bool(_NEGATED.match(base))
    values = _list(got)
    if _NEGATED.match(base):
        return all(_one(base, key, wanted, v, request) for v in values)
    return any(_one(base, key, wanted, v, request) for v in values)


def _one(op: str, key: str, wanted: list[Any], value: Any, request: Request) -> bool:
    """One context value against the policy's values: ORed for a positive operator, NORed for a negated one
    (a negated operator is true when the value matches none)."""
    negated = bool(_NEGATED.match(op))
    positive = _positive(op)
    matches = any(_match(positive, w, value, request) for w in wanted)
    return not matches if negated else matches


def _positive(op: str) -> str:
    return {
        "StringNotEquals": "StringEquals",
        "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
        "StringNotLike": "StringLike",
        "NumericNotEquals": "NumericEquals",
        "DateNotEquals": "DateEquals",
        "NotIpAddress": "IpAddress",
        "ArnNotEquals": "ArnEquals",
        "ArnNotLike": "ArnLike",
    }.get(op, op)


def _match(op: str, wanted: Any, value: Any, request: Request) -> bool:
    w, v = str(wanted), str(value)
    if op in ("StringEquals", "StringEqualsIgnoreCase", "StringLike"):
        w2 = _substitute(w, request, wildcards=op == "StringLike")
        if w2 is None:
            return False
        if op == "StringEquals":
            return w2 == v
        if op == "StringEqualsIgnoreCase":
            return w2.lower() == v.lower()
        return _wild(w2, v)
    if op.startswith("Numeric"):
        try:
            a, b = float(v), float(w)
        except ValueError:
            return False
        return _compare(op[len("Numeric") :], a, b)
    if op.startswith("Date"):
        a_dt, b_dt = _date(v), _date(w)
        if a_dt is None or b_dt is None:
            return False
        return _compare(op[len("Date") :], a_dt, b_dt)
    if op == "Bool":
        return w.lower() == v.lower()
    if op == "BinaryEquals":
        try:
            return base64.b64decode(w) == base64.b64decode(v)
        except ValueError:
            return False
    if op == "IpAddress":
        try:
            return ipaddress.ip_address(v) in ipaddress.ip_network(w, strict=False)
        except ValueError:
            return False
    if op in ("ArnEquals", "ArnLike"):
        w2 = _substitute(w, request, wildcards=True)
        return w2 is not None and _arn_like(w2, v)
    raise ValueError(f"condition operator {op!r} is not implemented here")


def _compare(how: str, a: Any, b: Any) -> bool:
    return {
        "Equals": a == b,
        "LessThan": a < b,
        "LessThanEquals": a <= b,
        "GreaterThan": a > b,
        "GreaterThanEquals": a >= b,
    }[how]


def _date(text: str) -> datetime | None:
    if re.fullmatch(r"\d+(\.\d+)?", text):  # epoch seconds
        return datetime.fromtimestamp(float(text), UTC)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _arn_like(pattern: str, arn: str) -> bool:
    """Each of the six colon-delimited parts separately, wildcards within a part; the last part keeps its
    colons (arn:aws:logs:...:log-group:name:*)."""
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return False
    return all(_wild(x, y) for x, y in zip(p, a, strict=True))


# ------------------------------------------------------------------------------------------- matching


def _list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(pattern: str, request: Request, *, wildcards: bool) -> str | None:
    """Policy variables: ${aws:username} and the like from the request context; ${*}, ${?}, ${$} stand for
    the characters themselves. None when a variable's key is not in the context (no match)."""
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1).strip()
        if name in ("*", "?", "$"):
            return "\0" + name if wildcards else name  # a literal, not a wildcard
        value = request.key(name)
        if value is _ABSENT or isinstance(value, list):
            missing = True
            return ""
        return str(value)

    out = _VARIABLE.sub(one, pattern)
    return None if missing else out


def _wild(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: * any run of characters, ? one character (a NUL-prefixed one is literal)."""
    if pattern == "*":
        return True
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\0" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


# ------------------------------------------------------------------------------------------- from IAM


@dataclass
class Principal:
    """A user's or a role's policy documents, as IAM holds them: what `evaluate` needs for its requests."""

    arn: str
    identity: dict[str, dict[str, Any]]  # "inline:NAME" / "managed:ARN" / "group NAME inline:..." -> document
    boundary: dict[str, Any] | None
    boundary_arn: str | None = None

    def evaluate(self, request: Request, **kwargs: Any) -> Decision:
        return evaluate(request, self.identity, boundary=self.boundary, **kwargs)


def _managed_document(iam: Any, arn: str) -> dict[str, Any]:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    return _parse(version["Document"])


from keyguard.local.quotas import all_pages as _pages  # noqa: E402  # one IAM pager for the emulator's readers


def user_documents(iam: Any, name: str, boundary_arn: str | None = None) -> Principal:
    """Every policy that applies to IAM user `name`, read back from IAM: inline, attached, its groups'
    inline and attached, and the permissions boundary (GetUser's PermissionsBoundary, as IAM answers it;
    moto 5.2.1 never shows a user's boundary, so an emulator that stands in for PutUserPermissionsBoundary
    must answer GetUser with it, or the caller passes `boundary_arn`)."""
    user = iam.get_user(UserName=name)["User"]
    docs: dict[str, dict[str, Any]] = {}
    for p in _pages(iam.list_user_policies, "PolicyNames", UserName=name):
        docs[f"inline:{p}"] = _parse(iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"])
    for a in _pages(iam.list_attached_user_policies, "AttachedPolicies", UserName=name):
        docs[f"managed:{a['PolicyArn']}"] = _managed_document(iam, a["PolicyArn"])
    for g in _pages(iam.list_groups_for_user, "Groups", UserName=name):
        group = g["GroupName"]
        for p in _pages(iam.list_group_policies, "PolicyNames", GroupName=group):
            docs[f"group {group} inline:{p}"] = _parse(
                iam.get_group_policy(GroupName=group, PolicyName=p)["PolicyDocument"]
            )
        for a in _pages(iam.list_attached_group_policies, "AttachedPolicies", GroupName=group):
            docs[f"group {group} managed:{a['PolicyArn']}"] = _managed_document(iam, a["PolicyArn"])
    boundary_arn = boundary_arn or (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    boundary = _managed_document(iam, boundary_arn) if boundary_arn else None
    return Principal(user["Arn"], docs, boundary, boundary_arn)


def role_documents(iam: Any, name: str) -> tuple[Principal, dict[str, Any]]:
    """A role's identity-based policies and boundary, and its trust policy (a resource-based policy whose
    resource is the role and whose action is sts:AssumeRole)."""
    role = iam.get_role(RoleName=name)["Role"]
    docs: dict[str, dict[str, Any]] = {}
    for p in _pages(iam.list_role_policies, "PolicyNames", RoleName=name):
        docs[f"inline:{p}"] = _parse(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
    for a in _pages(iam.list_attached_role_policies, "AttachedPolicies", RoleName=name):
        docs[f"managed:{a['PolicyArn']}"] = _managed_document(iam, a["PolicyArn"])
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    boundary = _managed_document(iam, boundary_arn) if boundary_arn else None
    return Principal(role["Arn"], docs, boundary, boundary_arn), _parse(role["AssumeRolePolicyDocument"])
