"""Organization mode for the operator commands: `status|contain|release --account ID` act in a member
account through its member role, and `audit --organization` runs the inventory over every account in
parallel, with a progress display, reporting per account and in total.

The commands themselves (keyguard.operator.commands) are unchanged: they get `Clients` acting in the
member account (IAM, EC2, STS there), while notifications still go to the central topic with the
operator's own credentials. `rich` is a CLI dependency only; no Lambda handler imports this module."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from keyguard.aws import Clients
from keyguard.incident import ACCOUNT_RE
from keyguard.operator.clients import OperatorClients, OperatorError, describe
from keyguard.org.accounts import AccountRefused, Organization
from keyguard.org.settings import DEFAULT_MEMBER_ROLE, ORGANIZATION_MODE, OrgSettings

LIST_PERMISSIONS = ("organizations:ListAccounts",)
# What `release` calls in IAM (keyguard.operator.release): granted to the operator role of
# templates/member-global.yaml only, never to the functions' member role.
RELEASE_PERMISSIONS = (
    "iam:DeleteUserPolicy",
    "iam:DeleteRolePolicy",
    "iam:UntagUser",
    "iam:UntagRole",
    "iam:UpdateAccessKey",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutUserPermissionsBoundary",  # the boundary keyguard replaced is put back
)
OPERATOR_ROLE = "keyguard-operator"
DEFAULT_WORKERS = 8
COUNTED = ("activeKeys", "oldKeys", "unusedKeys", "usersWithKeysWithoutMfa", "rootAccessKeys", "imdsv1Instances")


def add_arguments(commands: dict[str, argparse.ArgumentParser]) -> None:
    """The organization options of status, contain, release and audit (called by keyguard.cli)."""
    for name in ("status", "contain", "release"):
        if name in commands:
            commands[name].add_argument("--account", type=_account_id, help="act in this member account (member role)")
    if "audit" in commands:
        audit = commands["audit"]
        audit.add_argument("--organization", action="store_true", help="every active account of the organization")
        audit.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="accounts audited at once (8)")
    for name, parser in commands.items():
        # status/contain/release use the operator role (it may release; the functions' role may not);
        # the organization-wide audit needs only reads, which the member role has
        default = DEFAULT_MEMBER_ROLE if name == "audit" else OPERATOR_ROLE
        parser.add_argument(
            "--member-role",
            default=default,
            help=f"the role assumed in the member account ({default})",
        )
        parser.add_argument(
            "--external-id",
            default=os.environ.get("KEYGUARD_MEMBER_EXTERNAL_ID"),
            help="the member role's sts:ExternalId ($KEYGUARD_MEMBER_EXTERNAL_ID)",
        )


def wanted(args: Any) -> bool:
    return bool(getattr(args, "account", None) or getattr(args, "organization", False))


def _account_id(text: str) -> str:
    if not ACCOUNT_RE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"not a 12-digit account id: {text[:20]!r}")
    return text.strip()


class MemberClients(Clients):
    """Clients in a member account (through its role); SNS stays the operator's (the central topic)."""

    def __init__(self, member: Clients, central: Clients) -> None:
        super().__init__(member.session, central.region)
        self._member, self._central = member, central

    def get(self, service: str, region: str | None = None) -> Any:
        if service == "sns":
            return self._central.get(service, region)
        return self._member.get(service, region or self._central.region)

    def sns(self, topic_arn: str | None = None) -> Any:
        return self._central.sns(topic_arn)


@contextlib.contextmanager
def member_settings(org: Organization, account: str) -> Iterator[None]:
    """The commands read Settings from the environment: for a member account, the quarantine boundary is
    the member's (AWSDenyAll, as the functions use there), not the security account's policy."""
    from keyguard.settings import Settings

    member = org.settings_for(Settings.from_env(), account)
    saved = os.environ.get("KEYGUARD_DENY_ALL_POLICY_ARN")
    if member is not None and member.deny_all_policy_arn:
        os.environ["KEYGUARD_DENY_ALL_POLICY_ARN"] = member.deny_all_policy_arn
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KEYGUARD_DENY_ALL_POLICY_ARN", None)
        else:
            os.environ["KEYGUARD_DENY_ALL_POLICY_ARN"] = saved


def organization_for(args: Any, central: Clients) -> Organization:
    settings = OrgSettings(mode=ORGANIZATION_MODE, member_role_name=args.member_role, external_id=args.external_id)
    return Organization(central, settings)


def member_clients(org: Organization, central: Clients, account: str, who: str) -> MemberClients:
    """`who` goes in the session name (keyguard-<who>, in STS's charset): CloudTrail in the member shows it."""
    try:
        return MemberClients(org.clients_for(account, who), central)
    except AccountRefused as e:
        raise OperatorError(str(e)) from e


def run(args: Any, console: Any = None) -> int:
    """`keyguard status|contain|release --account ID`, `keyguard audit --organization`."""
    from keyguard.operator import commands

    console = console or commands.Console(json_mode=args.format == "json", command=args.command)
    try:
        central = OperatorClients(args.profile, args.region, args.endpoint_url)
        org = organization_for(args, central)
        if args.command == "audit" and getattr(args, "organization", False):
            return audit_organization(args, central, org, console)
        me = central.get("sts").get_caller_identity()["Arn"].rsplit("/", 1)[-1]
        clients = member_clients(org, central, args.account, f"operator-{args.command}-{me}")
        with member_settings(org, args.account):
            return commands.COMMANDS[args.command](args, clients, console)
    except KeyboardInterrupt:
        console.warn("interrupted")
        return commands.INTERRUPTED
    except Exception as e:  # one line, never a traceback
        console.warn(describe(e))
        return commands.NOTHING_DONE


# ---------------------------------------------------------------- audit --organization
@dataclass
class AccountAudit:
    account: str
    name: str
    report: Any = None  # keyguard.operator.audit.AuditReport
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.report is not None and self.report.complete

    def counts(self) -> dict[str, int]:
        return self.report.counts() if self.report is not None else {}


@dataclass
class OrganizationAudit:
    accounts: list[AccountAudit] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (account, why) not active

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(COUNTED, 0)
        for a in self.accounts:
            for k in COUNTED:
                out[k] += a.counts().get(k, 0)
        return out

    @property
    def complete(self) -> bool:
        return all(a.complete for a in self.accounts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": [
                {
                    "account": a.account,
                    "name": a.name,
                    "complete": a.complete,
                    "error": a.error,
                    "counts": a.counts(),
                    "summary": a.report.summary if a.report is not None else None,
                }
                for a in self.accounts
            ],
            "skipped": [{"account": a, "why": why} for a, why in self.skipped],
            "total": self.totals(),
            "complete": self.complete,
        }


def list_accounts(organizations: Any) -> list[dict[str, Any]]:
    out = []
    for page in organizations.get_paginator("list_accounts").paginate():
        out += page.get("Accounts", [])
    return out


def audit_all(
    org: Organization,
    central: Clients,
    audit_one: Callable[[Clients], Any],
    *,
    workers: int = DEFAULT_WORKERS,
    started: Callable[[int], None] | None = None,
    progress: Callable[[AccountAudit], None] | None = None,
) -> OrganizationAudit:
    """Every active account (ListAccounts, once), audited through its member role, `workers` at a time.
    An account that cannot be audited is reported as such; the others go on."""
    listed = list_accounts(central.get("organizations"))
    org.directory.prime(listed)
    result = OrganizationAudit()
    todo = []
    for item in sorted(listed, key=lambda a: str(a.get("Id"))):
        account = str(item.get("Id"))
        standing = org.directory.standing(account)
        if standing.ok:
            todo.append(AccountAudit(account, str(item.get("Name") or "")))
        else:
            result.skipped.append((account, standing.reason))
    if started is not None:
        started(len(todo))

    def one(entry: AccountAudit) -> AccountAudit:
        try:
            clients = member_clients(org, central, entry.account, "operator-audit")
            entry.report = audit_one(clients)
        except Exception as e:  # this account's audit failed; the others go on
            entry.error = describe(e)
        return entry

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done in as_completed([pool.submit(one, e) for e in todo]):
            finished = done.result()
            if progress is not None:
                progress(finished)
    result.accounts = todo
    return result


def audit_organization(args: Any, central: Clients, org: Organization, console: Any) -> int:
    from rich.console import Console as RichConsole
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from keyguard.operator import audit as audit_mod
    from keyguard.operator import commands

    regions = [r.strip() for r in args.regions.split(",") if r.strip()] if getattr(args, "regions", None) else None

    def audit_one(clients: Clients) -> Any:
        return audit_mod.run(clients, max_key_age_days=args.max_key_age, unused_days=args.unused_days, regions=regions)

    columns = (TextColumn("auditing accounts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=RichConsole(file=console.err), transient=True) as bar:
        task = bar.add_task("audit", total=None)
        result = audit_all(
            org,
            central,
            audit_one,
            workers=args.workers,
            started=lambda total: bar.update(task, total=total),
            progress=lambda entry: bar.advance(task),
        )
    if args.format == "json":
        console.print(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        console.print(_text(result))
    return commands.OK if result.complete else commands.FAILED


def _text(result: OrganizationAudit) -> str:
    head = ["account", "name", *COUNTED, "result"]
    rows = []
    for a in result.accounts:
        counts = a.counts()
        status = "ok" if a.complete else (f"FAILED: {a.error}" if a.error else "INCOMPLETE")
        rows.append([a.account, a.name, *(str(counts.get(k, "-")) for k in COUNTED), status])
    totals = result.totals()
    rows.append(["total", f"{len(result.accounts)} accounts", *(str(totals[k]) for k in COUNTED), ""])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines += [f"not audited: {why}" for _, why in result.skipped]
    return "\n".join(lines)
