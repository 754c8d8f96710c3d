"""Pure: what a key's CloudTrail history says it did, and what it left behind."""

from __future__ import annotations

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
    by_call: Counter[str] = field(default_factory=Counter)  # "iam:CreateUser"
    by_region: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    source_ips: Counter[str] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # error code -> count
    created_keys: list[tuple[str, str]] = field(default_factory=list)  # (user, key id)
    changed_users: dict[str, list[str]] = field(default_factory=dict)  # user -> calls that changed it
    changed_roles: dict[str, list[str]] = field(default_factory=dict)  # role -> calls that created/changed it
    assumed_roles: dict[str, list[str]] = field(default_factory=dict)  # role name -> session names
    other_account_roles: list[str] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)

    @property
    def access_denied(self) -> int:
        return sum(n for code, n in self.errors.items() if "AccessDenied" in code or "Unauthorized" in code)

    @property
    def looks_like_recon(self) -> bool:
        """A burst of AccessDenied: someone probing what the key may do."""
        return self.access_denied >= 10 and self.access_denied >= self.total / 3


def summarize(records: list[dict[str, Any]], account: str) -> Summary:
    s = Summary()
    for r in records:
        if not isinstance(r, dict):
            continue
        name = str(r.get("eventName") or "?")
        source = str(r.get("eventSource") or "?").split(".")[0]
        region = str(r.get("awsRegion") or "?")
        s.total += 1
        when = r.get("eventTime")
        if isinstance(when, str):
            s.first = min(s.first or when, when)
            s.last = max(s.last or when, when)
        s.by_call[f"{source}:{name}"] += 1
        s.by_region[region] += 1
        if r.get("sourceIPAddress"):
            s.source_ips[str(r["sourceIPAddress"])] += 1
        if r.get("userAgent"):
            s.user_agents[str(r["userAgent"])[:120]] += 1
        if r.get("errorCode"):
            s.errors[str(r["errorCode"])] += 1
            continue  # a failed call created nothing
        if r.get("readOnly") is False or str(r.get("readOnly")).lower() == "false":
            s.writes[f"{source}:{name}"] += 1
        _persistence(s, name, r, account)
        if name in LAUNCHES:
            s.launches.append(_launch(name, region, r))
    return s


def _persistence(s: Summary, name: str, r: dict[str, Any], account: str) -> None:
    req = r.get("requestParameters") if isinstance(r.get("requestParameters"), dict) else {}
    resp = r.get("responseElements") if isinstance(r.get("responseElements"), dict) else {}
    identity = r.get("userIdentity") if isinstance(r.get("userIdentity"), dict) else {}
    if name == "CreateAccessKey":
        key = resp.get("accessKey") if isinstance(resp.get("accessKey"), dict) else {}
        user = key.get("userName") or req.get("userName") or identity.get("userName")
        if key.get("accessKeyId") and user:
            s.created_keys.append((str(user), str(key["accessKeyId"])))
    elif name in USER_CHANGES and req.get("userName"):
        s.changed_users.setdefault(str(req["userName"]), []).append(name)
    elif name in ROLE_CHANGES and req.get("roleName"):
        s.changed_roles.setdefault(str(req["roleName"]), []).append(name)
    elif name == "AssumeRole" and isinstance(req.get("roleArn"), str):
        arn = req["roleArn"]
        parts = arn.split(":")
        role = arn.rsplit("/", 1)[-1]
        if len(parts) > 4 and parts[4] == account:
            s.assumed_roles.setdefault(role, []).append(str(req.get("roleSessionName") or "?"))
        else:
            s.other_account_roles.append(arn)


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
                ids.append(str(item.get("instanceId")))
                kinds.append(str(item.get("instanceType") or req.get("instanceType") or "?"))
    elif name == "RequestSpotInstances":
        items = (resp.get("spotInstanceRequestSet") or {}).get("items") or []
        spec = req.get("launchSpecification") if isinstance(req.get("launchSpecification"), dict) else {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                ids.append(str(item.get("spotInstanceRequestId")))
                kinds.append(str(spec.get("instanceType") or "?"))
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
            ids.append(str(ident))
        kind = req.get("runtime") or req.get("instanceType") or req.get("dBInstanceClass")
        if kind:
            kinds.append(str(kind))
    return Launch(region, name, service, what, max(1, len(ids)), tuple(sorted(set(kinds))), tuple(ids))
