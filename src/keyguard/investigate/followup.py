"""What the leaked key left behind, as findings: each says what changed, what keyguard does about it,
and the exact `aws` command that reverts it. Pure, except the actions (which declare their permissions)
and one read (the role's trust policy now, iam:GetRole).

What keyguard contains itself, and what it leaves to a person:
- Roles the key created, or whose trust it changed: deny-all (inline `keyguard-quarantine`), never a
  trust-policy change (the restore command is given). A foreign account that the trust names can still
  assume the role, but its sessions can do nothing. Trust changes are critical.
- A policy write "grants new rights" when it attaches a managed policy (any), or puts an inline policy
  or a policy version with at least one Allow statement (keyguard does not evaluate what the Allow
  permits: one the leaked key wrote is treated as new rights). Users and roles given new rights are
  contained (users deny-all, as before; roles deny-all). Groups and managed policies are not
  principals: denying a group or a shared policy would deny everyone using it, so those writes are
  reported with the revert command, for a human.
- A dormant key the leaked key revived (UpdateAccessKey Status=Active) is deactivated again: exactly
  that key, its owner named by IAM (GetAccessKeyLastUsed), and sessions minted from it before now are
  revoked on that user (the TokenIssueTime cut-off, as for a new key).
- Identity providers (OIDC, SAML) created or changed: critical, for a human (keyguard never deletes).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from keyguard.actions import (
    BOUNDARY_LAYER,
    NOT_FOUND,
    QUARANTINE_POLICY,
    Action,
    ActionResult,
    Status,
    deny_all_policy,
)
from keyguard.investigate.summary import Summary, parse_document

READ_PERMISSIONS = ("iam:GetRole",)
TRUST_EVENTS = ("CreateRole", "UpdateAssumeRolePolicy")
PROVIDER_EVENTS = (
    "CreateOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "AddClientIDToOpenIDConnectProvider",
    "CreateSAMLProvider",
    "UpdateSAMLProvider",
)


@dataclass(frozen=True)
class QuarantineRole(Action):
    """Inline deny-all on a role the leaked key created, re-trusted or gave new rights: every session of
    it, old or new (whoever its trust lets in), can do nothing."""

    role: str
    name: ClassVar[str] = "quarantine-role"
    permissions: ClassVar[tuple[str, ...]] = ("iam:PutRolePolicy",)

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role} (policy {QUARANTINE_POLICY})"

    def _call(self, iam: Any) -> None:
        iam.put_role_policy(
            RoleName=self.role, PolicyName=QUARANTINE_POLICY, PolicyDocument=json.dumps(deny_all_policy())
        )

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == "UnmodifiableEntity":
            return ActionResult(
                self.name, self.target, Status.SKIPPED, "service-linked role: IAM forbids changes", code
            )
        if code == NOT_FOUND:
            return ActionResult(self.name, self.target, Status.SKIPPED, "role not found: already deleted?", code)
        return super()._on_error(code, message)


@dataclass(frozen=True)
class BoundRole(Action):
    """The stack's deny-all managed policy as the role's permissions boundary: the layer the key holder
    cannot pre-fill (a role's inline-policy budget can be filled so that PutRolePolicy fails; a role has
    one boundary slot, which this replaces; the replaced one is named in the result)."""

    role: str
    policy_arn: str
    name: ClassVar[str] = BOUNDARY_LAYER
    permissions: ClassVar[tuple[str, ...]] = ("iam:GetRole", "iam:PutRolePermissionsBoundary")

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"role {self.role} (boundary {self.policy_arn.rsplit('/', 1)[-1]})"

    def _call(self, iam: Any) -> ActionResult | None:
        found = iam.get_role(RoleName=self.role)["Role"]
        current = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if current == self.policy_arn:
            return ActionResult(self.name, self.target, Status.ALREADY_DONE, "already the boundary")
        iam.put_role_permissions_boundary(RoleName=self.role, PermissionsBoundary=self.policy_arn)
        if current:
            return ActionResult(self.name, self.target, Status.DONE, f"replaced boundary {current}")
        return None

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == "UnmodifiableEntity":
            return ActionResult(
                self.name, self.target, Status.SKIPPED, "service-linked role: IAM forbids changes", code
            )
        if code == NOT_FOUND:
            return ActionResult(self.name, self.target, Status.SKIPPED, "role not found: already deleted?", code)
        return super()._on_error(code, message)


@dataclass
class Finding:
    """One thing the key left behind."""

    id: str  # stable across runs: the CloudTrail event id (or what stands in for it)
    kind: str
    target: str  # "role x", "user y", "key AKIA...", "policy arn", "provider arn"
    line: str  # one line for the report
    critical: bool = False
    contain: tuple[str, str] | None = None  # ("role" | "user" | "key", name) keyguard contains
    human: bool = False  # keyguard does not act: a person reverts it
    details: list[str] = field(default_factory=list)  # trust before/after/now
    revert: list[str] = field(default_factory=list)  # exact commands
    results: list[ActionResult] = field(default_factory=list)
    time: str = ""  # the CloudTrail event's time (trust changes: the history before it holds the trust before)

    @property
    def status(self) -> str:
        """done | would | failed | skipped | human | reported"""
        if self.human:
            return "human"
        if not self.results:
            return "reported"
        states = {r.status for r in self.results if r.action != "record"} or {r.status for r in self.results}
        if Status.FAILED in states:
            return "failed"
        if states == {Status.DRY_RUN}:
            return "would"
        if states <= {Status.DONE, Status.ALREADY_DONE}:
            return "done"
        return "skipped"

    @property
    def needs_a_human(self) -> bool:
        return self.status in ("human", "failed", "skipped")

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "line": self.line,
            "critical": self.critical,
            "status": self.status,
            "details": self.details,
            "revert": self.revert,
            "actions": [r.line() for r in self.results],
        }


def cli(*args: str) -> str:
    return " ".join(shlex.quote(a) if i > 2 else a for i, a in enumerate(("aws", "iam", *args)))


def _trusts_outside(doc: Any, account: str) -> list[str]:
    """Principals in a trust policy outside this account: other accounts, '*', federated providers."""
    doc = parse_document(doc)
    out: list[str] = []
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    for s in statements if isinstance(statements, list) else [statements] if isinstance(statements, dict) else []:
        if not isinstance(s, dict) or s.get("Effect") != "Allow":
            continue
        principal = s.get("Principal")
        if principal == "*":
            out.append("*")
            continue
        if not isinstance(principal, dict):
            continue
        for kind, values in principal.items():
            for v in values if isinstance(values, list) else [values]:
                text = str(v)
                if kind == "Federated" or (kind == "AWS" and (text == "*" or account not in text)):
                    out.append(text)
    return out


def findings(summary: Summary, incident_key: str, handled_users: set[str]) -> list[Finding]:
    """Every IAM write of the summary as a finding (oldest first), with its containment and revert."""
    out: list[Finding] = []
    account = summary.account
    order = {"CreateRole": 0}  # within one second: the role exists before anything is attached to it

    # oldest first; within one second (CloudTrail's resolution) in reverse of the order read, which is
    # newest first, and a role's creation before anything done to it
    def when(item: tuple[int, dict[str, Any]]) -> tuple[str, int, int]:
        i, w = item
        return str(w.get("time") or ""), order.get(str(w.get("event")), 1), -i

    writes = [w for _, w in sorted(enumerate(summary.iam_writes), key=when)]
    trust_before: dict[str, str | None] = {}  # role -> the trust policy an earlier write of this key set
    role_policies: dict[str, list[str]] = {}  # role -> revert commands of what the key attached / put
    created: dict[str, Finding] = {}
    for w in writes:
        event = str(w.get("event"))
        ident = str(w.get("id") or f"{event}:{w.get('role') or w.get('user') or w.get('group')}:{w.get('time')}")
        role, user, group = w.get("role"), w.get("user"), w.get("group")
        arn = w.get("policyArn")
        if event in TRUST_EVENTS and role:
            after = w.get("after")
            outside = _trusts_outside(after, account) if after else []
            f = Finding(
                ident,
                "role-created" if event == "CreateRole" else "role-trust-changed",
                f"role {role}",
                f"{event} role {role}" + (f": trusts {', '.join(outside)}" if outside else ""),
                critical=event == "UpdateAssumeRolePolicy" or bool(outside),
                contain=("role", role),
            )
            f.time = str(w.get("time") or "")
            before = trust_before.get(role, "(none: the key created the role)" if event == "CreateRole" else None)
            f.details = [
                f"trust before: {before if before else 'not in this key history (see the role in CloudTrail)'}",
                f"trust after : {after or '(document not kept: too many, see CloudTrail event ' + ident + ')'}",
            ]
            if event == "CreateRole":
                created[role] = f  # its revert is complete once every later write on it is known
            elif before and before.startswith("{"):
                f.revert = [cli("update-assume-role-policy", "--role-name", role, "--policy-document", before)]
            else:
                f.revert = [
                    cli("update-assume-role-policy", "--role-name", role, "--policy-document", "<the trust before>")
                ]
            trust_before[role] = after
            out.append(f)
        elif event in ("AttachRolePolicy", "PutRolePolicy") and role:
            grants = event == "AttachRolePolicy" or w.get("allows", True)
            what = arn if event == "AttachRolePolicy" else f"inline {w.get('policyName')}"
            revert = (
                cli("detach-role-policy", "--role-name", role, "--policy-arn", str(arn))
                if event == "AttachRolePolicy"
                else cli("delete-role-policy", "--role-name", role, "--policy-name", str(w.get("policyName")))
            )
            role_policies.setdefault(role, []).append(revert)
            out.append(
                Finding(
                    ident,
                    "policy-write",
                    f"role {role}",
                    f"{event} role {role}: {what}" + ("" if grants else " (deny only: no new rights)"),
                    contain=("role", role) if grants else None,
                    revert=[revert],
                )
            )
        elif event in ("AttachUserPolicy", "PutUserPolicy", "AddUserToGroup") and user:
            if event == "AttachUserPolicy":
                revert = cli("detach-user-policy", "--user-name", user, "--policy-arn", str(arn))
                what = str(arn)
            elif event == "PutUserPolicy":
                revert = cli("delete-user-policy", "--user-name", user, "--policy-name", str(w.get("policyName")))
                what = f"inline {w.get('policyName')}"
            else:
                revert = cli("remove-user-from-group", "--user-name", user, "--group-name", str(group))
                what = f"group {group}"
            contained = user not in handled_users
            out.append(
                Finding(
                    ident,
                    "policy-write",
                    f"user {user}",
                    f"{event} user {user}: {what}",
                    contain=("user", user) if contained else None,
                    revert=[revert],
                )
            )
        elif event in ("AttachGroupPolicy", "PutGroupPolicy") and group:
            if event == "AttachGroupPolicy":
                revert = cli("detach-group-policy", "--group-name", group, "--policy-arn", str(arn))
                what = str(arn)
            else:
                revert = cli("delete-group-policy", "--group-name", group, "--policy-name", str(w.get("policyName")))
                what = f"inline {w.get('policyName')}"
            out.append(
                Finding(
                    ident,
                    "policy-write",
                    f"group {group}",
                    f"{event} group {group}: {what} (every member gains it; a group is not contained)",
                    human=True,
                    revert=[revert],
                )
            )
        elif event == "CreatePolicyVersion" and arn:
            version = str(w.get("version") or "")
            default = bool(w.get("default"))
            previous = f"v{int(version[1:]) - 1}" if version[1:].isdigit() and int(version[1:]) > 1 else None
            revert = []
            if default:
                revert.append(
                    cli("set-default-policy-version", "--policy-arn", arn, "--version-id", previous or "<earlier>")
                    + "  # the version before: check with aws iam list-policy-versions --policy-arn "
                    + shlex.quote(arn)
                )
            if version:
                revert.append(cli("delete-policy-version", "--policy-arn", arn, "--version-id", version))
            out.append(
                Finding(
                    ident,
                    "policy-version",
                    f"policy {arn}",
                    f"CreatePolicyVersion {arn} {version or '?'}"
                    + (" set as default: every user, group and role it is attached to gains it" if default else ""),
                    critical=default and bool(w.get("allows", True)),
                    human=True,
                    revert=revert,
                )
            )
        elif event == "SetDefaultPolicyVersion" and arn:
            out.append(
                Finding(
                    ident,
                    "policy-version",
                    f"policy {arn}",
                    f"SetDefaultPolicyVersion {arn} -> {w.get('version')}",
                    critical=True,
                    human=True,
                    revert=[
                        cli("set-default-policy-version", "--policy-arn", arn, "--version-id", "<earlier>")
                        + "  # see aws iam list-policy-versions --policy-arn "
                        + shlex.quote(arn)
                    ],
                )
            )
        elif event == "UpdateAccessKey" and str(w.get("status")).lower() == "active" and w.get("key"):
            key = str(w["key"])
            if key == incident_key:
                continue  # the leaked key itself: containment deactivated it, after this call
            out.append(
                Finding(
                    ident,
                    "key-revived",
                    f"key {key}",
                    f"UpdateAccessKey {key} Status=Active (a dormant key revived)",
                    critical=True,
                    contain=("key", key),
                    revert=[],
                )
            )
        elif event in PROVIDER_EVENTS:
            provider = str(w.get("provider") or w.get("url") or w.get("name") or "?")
            if event == "CreateOpenIDConnectProvider":
                revert = [cli("delete-open-id-connect-provider", "--open-id-connect-provider-arn", provider)]
            elif event == "CreateSAMLProvider":
                revert = [cli("delete-saml-provider", "--saml-provider-arn", provider)]
            elif event == "AddClientIDToOpenIDConnectProvider":
                client = str(w.get("clientID") or "<client id>")
                revert = [
                    cli(
                        "remove-client-id-from-open-id-connect-provider",
                        "--open-id-connect-provider-arn",
                        provider,
                        "--client-id",
                        client,
                    )
                ]
            else:
                revert = [f"# restore the earlier value: not in the CloudTrail record ({event} {provider})"]
            out.append(
                Finding(
                    ident,
                    "identity-provider",
                    f"provider {provider}",
                    f"{event} {provider}: a way in from outside the account",
                    critical=True,
                    human=True,
                    revert=revert,
                )
            )
    for role, f in created.items():  # to remove a role: keyguard's policy, what the key added, then the role
        f.revert = [
            cli("delete-role-policy", "--role-name", role, "--policy-name", QUARANTINE_POLICY),
            *role_policies.get(role, []),
            cli("delete-role", "--role-name", role),
        ]
    return out


def trust_before(cloudtrail: Any, role: str, until: datetime, since: datetime, pages: int = 2) -> str | None:
    """The trust policy a role had before `until`, from CloudTrail's history of the role (anyone's
    CreateRole or UpdateAssumeRolePolicy, newest first; at most `pages` pages): None if not found."""
    token = None
    for _ in range(pages):
        args: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": role}],
            "StartTime": since,
            "EndTime": until,
            "MaxResults": 50,
        }
        if token:
            args["NextToken"] = token
        page = cloudtrail.lookup_events(**args)
        for event in page.get("Events", []):
            if event.get("EventName") not in TRUST_EVENTS:
                continue
            try:
                record = json.loads(event.get("CloudTrailEvent") or "{}")
            except ValueError:
                continue
            if record.get("errorCode") or record.get("eventTime", "") >= until.strftime("%Y-%m-%dT%H:%M:%SZ"):
                continue
            req = record.get("requestParameters") or {}
            doc = req.get("assumeRolePolicyDocument") or req.get("policyDocument")
            if doc:
                return doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"), sort_keys=True)
        token = page.get("NextToken")
        if not token:
            return None
    return None


def trust_now(iam: Any, role: str) -> str | None:
    """The role's trust policy now (compact JSON), or None if the role is gone. Raises other errors."""
    try:
        doc = iam.get_role(RoleName=role)["Role"].get("AssumeRolePolicyDocument")
    except Exception as e:
        from keyguard.aws import error_code

        if error_code(e) == NOT_FOUND:
            return None
        raise
    parsed = parse_document(doc)
    return json.dumps(parsed, separators=(",", ":"), sort_keys=True) if parsed is not None else str(doc)
