"""Pure: what a key's CloudTrail history says it did, and what it left behind.

Summarised while streaming: `Summary.add(record)` takes one CloudTrail record at a time and keeps only
counters and capped lists, so memory is bounded whatever the history's size (an attacker can make
100,000 events on purpose). What did not fit is counted (`dropped`), never silently lost: the report says
how many, and they count as needing a human. `to_dict`/`from_dict` carry a partial summary across
invocations (the checkpoint travels in the investigation queue's message, so it stays well under SQS's
256 KiB message limit: see MAX_CHECKPOINT_BYTES).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Calls that launch things that cost money: event name -> (service, what)
LAUNCHES = {
    "RunInstances": ("ec2", "instances"),
    "RequestSpotInstances": ("ec2", "spot requests"),
    "RequestSpotFleet": ("ec2", "spot fleets"),
    "CreateFleet": ("ec2", "fleets"),
    "CreateFunction": ("lambda", "functions"),
    "CreateFunction20150331": ("lambda", "functions"),
    "CreateCluster": ("ecs/eks", "clusters"),
    "CreateService": ("ecs", "services"),
    "RunTask": ("ecs", "tasks"),
    "CreateStack": ("cloudformation", "stacks"),
    "CreateNotebookInstance": ("sagemaker", "notebooks"),
    "CreateTrainingJob": ("sagemaker", "training jobs"),
    "CreateDBInstance": ("rds", "databases"),
}
USER_CHANGES = {
    "CreateUser",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "PutUserPolicy",
    "AddUserToGroup",
}
ROLE_CHANGES = {"CreateRole", "UpdateAssumeRolePolicy"}
# IAM writes that leave a way back in, kept one by one (with what is needed to revert each)
IAM_WRITES = {
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "AttachRolePolicy",
    "PutRolePolicy",
    "AttachGroupPolicy",
    "PutGroupPolicy",
    "AttachUserPolicy",
    "PutUserPolicy",
    "AddUserToGroup",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "UpdateAccessKey",
    "CreateOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "AddClientIDToOpenIDConnectProvider",
    "CreateSAMLProvider",
    "UpdateSAMLProvider",
}

# Bounds (memory, and the checkpoint's size in the SQS message)
MAX_KEYS = 200  # distinct keys per counter; the rest count under OTHER
MAX_ITEMS = 100  # entries per list (created keys, users, roles, launches, IAM writes)
MAX_CALLS_EACH = 10  # calls kept per changed user or role, sessions per assumed role
MAX_IDS = 25  # instance ids etc. per launch
DOC_BUDGET = 48_000  # characters of policy documents kept in all (trust policies: before/after)
MAX_TEXT = 200  # any one name, ARN, user agent kept from a record
MAX_CHECKPOINT_BYTES = 200_000
OTHER = "(other)"


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT]


class Capped(Counter):
    """A Counter of at most MAX_KEYS keys: new keys beyond that are counted under OTHER."""

    def bump(self, key: str, n: int = 1) -> None:
        key = _text(key)
        if key not in self and len(self) >= MAX_KEYS:
            key = OTHER
        self[key] += n


@dataclass(frozen=True)
class Launch:
    region: str
    event: str
    service: str
    what: str
    count: int
    kinds: tuple[str, ...]  # instance types, runtimes, ...
    ids: tuple[str, ...]  # instance ids, function names, ...


@dataclass
class Summary:
    total: int = 0
    first: str | None = None
    last: str | None = None
    by_call: Capped = field(default_factory=Capped)  # "iam:CreateUser"
    by_region: Capped = field(default_factory=Capped)
    writes: Capped = field(default_factory=Capped)
    source_ips: Capped = field(default_factory=Capped)
    user_agents: Capped = field(default_factory=Capped)
    errors: Capped = field(default_factory=Capped)  # error code -> count
    created_keys: list[tuple[str, str]] = field(default_factory=list)  # (user, key id)
    changed_users: dict[str, list[str]] = field(default_factory=dict)  # user -> calls that changed it
    changed_roles: dict[str, list[str]] = field(default_factory=dict)  # role -> calls that created/changed it
    assumed_roles: dict[str, list[str]] = field(default_factory=dict)  # role name -> session names
    other_account_roles: list[str] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    iam_writes: list[dict[str, Any]] = field(default_factory=list)  # see _iam_write
    dropped: Capped = field(default_factory=Capped)  # what a cap left out: list name -> count
    doc_chars: int = 0
    account: str = ""

    @property
    def access_denied(self) -> int:
        return sum(n for code, n in self.errors.items() if "AccessDenied" in code or "Unauthorized" in code)

    @property
    def looks_like_recon(self) -> bool:
        """A burst of AccessDenied: someone probing what the key may do."""
        return self.access_denied >= 10 and self.access_denied >= self.total / 3

    def add(self, r: Any) -> None:
        """Take one CloudTrail record into account (constant memory per record)."""
        if not isinstance(r, dict):
            return
        name = str(r.get("eventName") or "?")
        source = str(r.get("eventSource") or "?").split(".")[0]
        region = str(r.get("awsRegion") or "?")
        self.total += 1
        when = r.get("eventTime")
        if isinstance(when, str):
            self.first = min(self.first or when, when)
            self.last = max(self.last or when, when)
        self.by_call.bump(f"{source}:{name}")
        self.by_region.bump(region)
        if r.get("sourceIPAddress"):
            self.source_ips.bump(str(r["sourceIPAddress"]))
        if r.get("userAgent"):
            self.user_agents.bump(str(r["userAgent"])[:120])
        if r.get("errorCode"):
            self.errors.bump(str(r["errorCode"]))
            return  # a failed call created nothing
        if r.get("readOnly") is False or str(r.get("readOnly")).lower() == "false":
            self.writes.bump(f"{source}:{name}")
        self._persistence(name, r)
        if name in LAUNCHES:
            self._keep(self.launches, "launches", _launch(name, region, r))

    # ------------------------------------------------------------------------------------ bounded lists

    def _keep(self, items: list[Any], what: str, item: Any) -> None:
        if len(items) < MAX_ITEMS:
            items.append(item)
        else:
            self.dropped.bump(what)

    def _note(self, table: dict[str, list[str]], what: str, key: str, value: str) -> None:
        key, value = _text(key), _text(value)
        if key not in table:
            if len(table) >= MAX_ITEMS:
                self.dropped.bump(what)
                return
            table[key] = []
        if len(table[key]) < MAX_CALLS_EACH:
            table[key].append(value)

    def _doc(self, raw: Any) -> str | None:
        """A policy document as compact JSON, kept while the budget lasts (None: not kept)."""
        if raw is None:
            return None
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), sort_keys=True)
        if self.doc_chars + len(text) > DOC_BUDGET:
            self.dropped.bump("policy documents")
            return None
        self.doc_chars += len(text)
        return text

    def _persistence(self, name: str, r: dict[str, Any]) -> None:
        req = r.get("requestParameters") if isinstance(r.get("requestParameters"), dict) else {}
        resp = r.get("responseElements") if isinstance(r.get("responseElements"), dict) else {}
        identity = r.get("userIdentity") if isinstance(r.get("userIdentity"), dict) else {}
        if name in IAM_WRITES:
            write = _iam_write(name, r, req, resp, identity, self._doc)
            if write is not None:
                self._keep(self.iam_writes, "IAM writes", write)
        if name == "CreateAccessKey":
            key = resp.get("accessKey") if isinstance(resp.get("accessKey"), dict) else {}
            user = key.get("userName") or req.get("userName") or identity.get("userName")
            if key.get("accessKeyId") and user:
                self._keep(self.created_keys, "created keys", (_text(user), _text(key["accessKeyId"])))
        elif name in USER_CHANGES and req.get("userName"):
            self._note(self.changed_users, "changed users", str(req["userName"]), name)
        elif name in ROLE_CHANGES and req.get("roleName"):
            self._note(self.changed_roles, "changed roles", str(req["roleName"]), name)
        elif name in ("AttachRolePolicy", "PutRolePolicy") and req.get("roleName"):
            if name == "AttachRolePolicy" or _allows(req.get("policyDocument")):
                self._note(self.changed_roles, "changed roles", str(req["roleName"]), name)
        elif name == "AssumeRole" and isinstance(req.get("roleArn"), str):
            arn = req["roleArn"]
            parts = arn.split(":")
            role = arn.rsplit("/", 1)[-1]
            if len(parts) > 4 and parts[4] == self.account:
                self._note(self.assumed_roles, "assumed roles", role, str(req.get("roleSessionName") or "?"))
            elif _text(arn) not in self.other_account_roles:
                self._keep(self.other_account_roles, "other accounts' roles", _text(arn))

    # ------------------------------------------------------------------------------------ checkpoint

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "first": self.first,
            "last": self.last,
            "byCall": dict(self.by_call),
            "byRegion": dict(self.by_region),
            "writes": dict(self.writes),
            "sourceIps": dict(self.source_ips),
            "userAgents": dict(self.user_agents),
            "errors": dict(self.errors),
            "createdKeys": [list(k) for k in self.created_keys],
            "changedUsers": self.changed_users,
            "changedRoles": self.changed_roles,
            "assumedRoles": self.assumed_roles,
            "otherAccountRoles": self.other_account_roles,
            "launches": [vars(x) | {"ids": list(x.ids), "kinds": list(x.kinds)} for x in self.launches],
            "iamWrites": self.iam_writes,
            "dropped": dict(self.dropped),
            "docChars": self.doc_chars,
            "account": self.account,
        }

    def to_checkpoint(self) -> dict[str, Any]:
        """to_dict(), made to fit MAX_CHECKPOINT_BYTES (the checkpoint rides in an SQS message). What is
        given up first is what the parts that read it already acted on and announced: the IAM writes and
        changed principals; then the counters keep their largest entries (the rest under OTHER)."""
        d = self.to_dict()
        if _size(d) <= MAX_CHECKPOINT_BYTES:
            return d
        for name in ("iamWrites", "changedUsers", "changedRoles", "assumedRoles", "otherAccountRoles", "launches"):
            d[name] = [] if isinstance(d[name], list) else {}
        d["docChars"] = 0
        keep = 50
        while _size(d) > MAX_CHECKPOINT_BYTES and keep >= 1:
            for name in ("byCall", "byRegion", "writes", "sourceIps", "userAgents", "errors"):
                ranked = sorted(d[name].items(), key=lambda kv: -kv[1])
                top, rest = dict(ranked[:keep]), sum(v for _, v in ranked[keep:])
                if rest:
                    top[OTHER] = top.get(OTHER, 0) + rest
                d[name] = top
            keep //= 2
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        def capped(name: str) -> Capped:
            return Capped({str(k): int(v) for k, v in (d.get(name) or {}).items()})

        return cls(
            total=int(d.get("total") or 0),
            first=d.get("first"),
            last=d.get("last"),
            by_call=capped("byCall"),
            by_region=capped("byRegion"),
            writes=capped("writes"),
            source_ips=capped("sourceIps"),
            user_agents=capped("userAgents"),
            errors=capped("errors"),
            created_keys=[(str(u), str(k)) for u, k in d.get("createdKeys") or []],
            changed_users={str(k): list(v) for k, v in (d.get("changedUsers") or {}).items()},
            changed_roles={str(k): list(v) for k, v in (d.get("changedRoles") or {}).items()},
            assumed_roles={str(k): list(v) for k, v in (d.get("assumedRoles") or {}).items()},
            other_account_roles=list(d.get("otherAccountRoles") or []),
            launches=[
                Launch(**{**x, "ids": tuple(x["ids"]), "kinds": tuple(x["kinds"])}) for x in d.get("launches") or []
            ],
            iam_writes=list(d.get("iamWrites") or []),
            dropped=capped("dropped"),
            doc_chars=int(d.get("docChars") or 0),
            account=str(d.get("account") or ""),
        )


def _size(d: dict[str, Any]) -> int:
    return len(json.dumps(d).encode())


def summarize(records: Any, account: str) -> Summary:
    """The summary of `records` (any iterable: consumed one at a time)."""
    s = Summary(account=account)
    for r in records:
        s.add(r)
    return s


def parse_document(raw: Any) -> Any:
    """A policy document from a CloudTrail record: a JSON string (sometimes URL-encoded) or an object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return None
    from urllib.parse import unquote

    for text in (raw, unquote(raw)):
        try:
            return json.loads(text)
        except ValueError:
            continue
    return None


def _allows(raw: Any) -> bool:
    """Does the policy document grant anything? Any Allow statement counts (keyguard does not evaluate
    what it allows: an Allow the leaked key wrote is treated as new rights). Unreadable: treated as
    granting too."""
    doc = parse_document(raw)
    if not isinstance(doc, dict):
        return True
    statements = doc.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    return any(not isinstance(s, dict) or s.get("Effect") != "Deny" for s in statements)


def _iam_write(name: str, r: dict[str, Any], req: dict, resp: dict, identity: dict, doc: Any) -> dict | None:
    """The parts of an IAM write that say what changed and how to revert it (names, ARNs, documents)."""
    w: dict[str, Any] = {"event": name, "id": _text(r.get("eventID") or ""), "time": r.get("eventTime")}

    def put(key: str, value: Any) -> None:
        if value is not None and value != "":
            w[key] = _text(value) if not isinstance(value, bool) else value

    for source, key in (
        ("roleName", "role"),
        ("userName", "user"),
        ("groupName", "group"),
        ("policyArn", "policyArn"),
        ("policyName", "policyName"),
        ("accessKeyId", "key"),
        ("status", "status"),
        ("versionId", "version"),
        ("openIDConnectProviderArn", "provider"),
        ("sAMLProviderArn", "provider"),
        ("url", "url"),
        ("name", "name"),
        ("clientID", "clientID"),
    ):
        put(key, req.get(source))
    if name == "CreateRole":
        w["after"] = doc(req.get("assumeRolePolicyDocument"))
        role = resp.get("role") if isinstance(resp.get("role"), dict) else {}
        put("arn", role.get("arn"))
    elif name == "UpdateAssumeRolePolicy":
        w["after"] = doc(req.get("policyDocument"))
    elif name in ("PutRolePolicy", "PutGroupPolicy", "PutUserPolicy", "CreatePolicyVersion"):
        w["allows"] = _allows(req.get("policyDocument"))
    if name == "CreatePolicyVersion":
        version = resp.get("policyVersion") or resp.get("policy") or {}
        put("version", version.get("versionId") if isinstance(version, dict) else None)
        w["default"] = str(req.get("setAsDefault")).lower() == "true"
    elif name == "UpdateAccessKey":
        w["ownKey"] = not req.get("userName")  # no userName: a key of the caller's own user
    elif name == "CreateOpenIDConnectProvider":
        put("provider", resp.get("openIDConnectProviderArn"))
    elif name == "CreateSAMLProvider":
        put("provider", resp.get("sAMLProviderArn"))
    return w


def _launch(name: str, region: str, r: dict[str, Any]) -> Launch:
    service, what = LAUNCHES[name]
    req = r.get("requestParameters") if isinstance(r.get("requestParameters"), dict) else {}
    resp = r.get("responseElements") if isinstance(r.get("responseElements"), dict) else {}
    ids: list[str] = []
    kinds: list[str] = []
    if name == "RunInstances":
        items = (resp.get("instancesSet") or {}).get("items") or []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                ids.append(_text(item.get("instanceId")))
                kinds.append(_text(item.get("instanceType") or req.get("instanceType") or "?"))
    elif name == "RequestSpotInstances":
        items = (resp.get("spotInstanceRequestSet") or {}).get("items") or []
        spec = req.get("launchSpecification") if isinstance(req.get("launchSpecification"), dict) else {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                ids.append(_text(item.get("spotInstanceRequestId")))
                kinds.append(_text(spec.get("instanceType") or "?"))
    else:
        ident = (
            req.get("functionName")
            or req.get("clusterName")
            or req.get("name")
            or req.get("serviceName")
            or req.get("stackName")
            or req.get("dBInstanceIdentifier")
            or req.get("notebookInstanceName")
            or req.get("trainingJobName")
        )
        if ident:
            ids.append(_text(ident))
        kind = req.get("runtime") or req.get("instanceType") or req.get("dBInstanceClass")
        if kind:
            kinds.append(_text(kind))
    count = max(1, len(ids))
    return Launch(region, name, service, what, count, tuple(sorted(set(kinds)))[:MAX_IDS], tuple(ids[:MAX_IDS]))
