"""`keyguard audit` and the scheduled audit: the long-lived keys this account still has, and what makes
them risky. One IAM credential report (not N calls per user), the account summary for root keys, EC2
instances that still allow IMDSv1 in every enabled region, and the principals keyguard holds.

`run(clients)` returns an AuditReport; `summary_message(report)` is what the scheduled audit publishes.
A check that cannot run is recorded in `report.errors` (the report says it is incomplete); only a
credential report that cannot be had stops the audit."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from keyguard.aws import error_code
from keyguard.operator.clients import OperatorError, describe
from keyguard.operator.principal import HELD_PERMISSIONS, PrincipalState, held_principals, stamp

REPORT_PERMISSIONS = ("iam:GenerateCredentialReport", "iam:GetCredentialReport")
SUMMARY_PERMISSIONS = ("iam:GetAccountSummary",)
EC2_PERMISSIONS = ("ec2:DescribeRegions", "ec2:DescribeInstances")
# Everything the audit reads. None of these actions supports resource-level permissions: Resource "*".
AUDIT_PERMISSIONS = REPORT_PERMISSIONS + SUMMARY_PERMISSIONS + HELD_PERMISSIONS + EC2_PERMISSIONS

DEFAULT_MAX_KEY_AGE_DAYS = 90
DEFAULT_UNUSED_DAYS = 90
A_YEAR = 365
ROOT_ROW = "<root_account>"
REPORT_WAIT_SECONDS = 120
REGION_WORKERS = 8
GONE = ("shutting-down", "terminated")


class Check(StrEnum):
    """What the audit flags, most urgent first."""

    ROOT_KEYS = "root-access-keys"
    HELD = "held-by-keyguard"
    OLD = "old-key"
    UNUSED = "unused-key"
    TWO_ACTIVE = "two-active-keys"
    NO_MFA = "key-without-mfa"
    IMDSV1 = "imdsv1-allowed"


@dataclass(frozen=True)
class KeyRecord:
    """One access key as the credential report has it (the report names slots 1 and 2, not key ids)."""

    user: str
    arn: str
    slot: int
    active: bool
    created: datetime | None  # access_key_N_last_rotated: when the key in this slot was created
    last_used: datetime | None
    last_used_service: str | None
    last_used_region: str | None
    mfa: bool

    def age_days(self, now: datetime) -> int:
        return (now - self.created).days if self.created else 0

    def idle_days(self, now: datetime) -> int:
        """Days since the key was last used; a key never used has been idle since it was created."""
        return (now - self.last_used).days if self.last_used else self.age_days(now)

    @property
    def subject(self) -> str:
        return f"user/{self.user} key {self.slot}"


@dataclass(frozen=True)
class Finding:
    check: Check
    subject: str
    detail: str
    region: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check.value, "subject": self.subject, "region": self.region, "detail": self.detail}


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str
    region: str
    state: str
    http_tokens: str | None
    http_endpoint: str | None
    name: str | None = None

    @property
    def allows_imdsv1(self) -> bool:
        """HttpTokens optional = IMDSv1 answers; with the endpoint disabled there is no metadata service."""
        return self.http_tokens == "optional" and self.http_endpoint != "disabled"

    def to_dict(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "region": self.region,
            "state": self.state,
            "name": self.name,
            "httpTokens": self.http_tokens,
            "httpEndpoint": self.http_endpoint,
        }


@dataclass
class AuditReport:
    generated_at: datetime
    max_key_age_days: int = DEFAULT_MAX_KEY_AGE_DAYS
    unused_days: int = DEFAULT_UNUSED_DAYS
    account: str | None = None
    credential_report_at: datetime | None = None
    users: int = 0
    keys: list[KeyRecord] = field(default_factory=list)
    root_access_keys: bool | None = None  # None: could not be checked
    regions: list[str] = field(default_factory=list)  # regions whose instances were read
    instances: int = 0
    imdsv1: list[InstanceRecord] = field(default_factory=list)
    held: list[PrincipalState] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors

    def count(self, check: Check) -> int:
        return sum(1 for f in self.findings if f.check is check)

    def flags(self, key: KeyRecord) -> list[str]:
        """The checks that concern this key (its own, and its user's)."""
        mine = {key.subject, f"user/{key.user}"} if key.active else {key.subject}
        return [f.check.value for f in self.findings if f.subject in mine]

    def counts(self) -> dict[str, int]:
        now = self.generated_at
        active = [k for k in self.keys if k.active]
        return {
            "users": self.users,
            "keys": len(self.keys),
            "activeKeys": len(active),
            "oldKeys": self.count(Check.OLD),
            "keysOlderThanAYear": sum(1 for k in active if k.age_days(now) > A_YEAR),
            "unusedKeys": self.count(Check.UNUSED),
            "usersWithTwoActiveKeys": self.count(Check.TWO_ACTIVE),
            "usersWithKeysWithoutMfa": self.count(Check.NO_MFA),
            "rootAccessKeys": int(bool(self.root_access_keys)),
            "instances": self.instances,
            "imdsv1Instances": len(self.imdsv1),
            "heldPrincipals": len(self.held),
            "incompleteChecks": len(self.errors),
        }

    @property
    def summary(self) -> str:
        return summarize(self)

    def to_dict(self) -> dict[str, Any]:
        now = self.generated_at
        return {
            "account": self.account,
            "generatedAt": stamp(now),
            "credentialReportGeneratedAt": stamp(self.credential_report_at),
            "thresholds": {"maxKeyAgeDays": self.max_key_age_days, "unusedDays": self.unused_days},
            "summary": self.summary,
            "complete": self.complete,
            "counts": self.counts(),
            "accessKeys": [
                {
                    "user": k.user,
                    "arn": k.arn,
                    "slot": k.slot,
                    "active": k.active,
                    "created": stamp(k.created),
                    "ageDays": k.age_days(now),
                    "lastUsed": stamp(k.last_used),
                    "lastUsedService": k.last_used_service,
                    "lastUsedRegion": k.last_used_region,
                    "mfa": k.mfa,
                    "flags": self.flags(k),
                }
                for k in self.keys
            ],
            "rootAccessKeys": self.root_access_keys,
            "ec2": {
                "regions": self.regions,
                "instances": self.instances,
                "imdsv1": [i.to_dict() for i in self.imdsv1],
            },
            "held": [h.to_dict(now) for h in self.held],
            "findings": [f.to_dict() for f in self.findings],
            "incomplete": self.errors,
        }


# ------------------------------------------------------------------------------------------ reading


def credential_report(
    iam: Any, *, sleep: Callable[[float], None] = time.sleep, wait_seconds: float = REPORT_WAIT_SECONDS
) -> tuple[bytes, datetime | None]:
    """The account's credential report (IAM makes at most one every 4 hours; older ones are reused)."""
    deadline = time.monotonic() + wait_seconds
    iam.generate_credential_report()
    while True:
        try:
            got = iam.get_credential_report()
            content = got["Content"]
            return (content.encode() if isinstance(content, str) else content), _as_utc(got.get("GeneratedTime"))
        except Exception as e:
            if error_code(e) not in ("ReportInProgress", "ReportNotPresent", "ReportExpired"):
                raise
            if time.monotonic() >= deadline:
                raise OperatorError(
                    f"the IAM credential report was not ready after {wait_seconds:g} s: try again in a minute"
                ) from e
        sleep(2)
        iam.generate_credential_report()


def parse_credential_report(content: bytes | str) -> tuple[list[dict[str, str]], dict[str, str] | None]:
    """(the users' rows, the root row) of the CSV credential report."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and ("user" not in rows[0] or "access_key_1_active" not in rows[0]):
        raise OperatorError("the credential report does not have the columns IAM documents (user, access_key_1_...)")
    root = next((r for r in rows if r.get("user") == ROOT_ROW), None)
    return [r for r in rows if r.get("user") != ROOT_ROW], root


def keys_of(rows: list[dict[str, str]]) -> list[KeyRecord]:
    """Every access key in the report: a slot whose last_rotated is a date holds a key."""
    out = []
    for row in rows:
        for slot in (1, 2):
            created = report_date(row.get(f"access_key_{slot}_last_rotated"))
            if created is None:
                continue
            out.append(
                KeyRecord(
                    user=row["user"],
                    arn=row.get("arn", ""),
                    slot=slot,
                    active=row.get(f"access_key_{slot}_active") == "true",
                    created=created,
                    last_used=report_date(row.get(f"access_key_{slot}_last_used_date")),
                    last_used_service=_known(row.get(f"access_key_{slot}_last_used_service")),
                    last_used_region=_known(row.get(f"access_key_{slot}_last_used_region")),
                    mfa=row.get("mfa_active") == "true",
                )
            )
    return out


def report_date(value: str | None) -> datetime | None:
    """Credential report dates are ISO 8601; N/A, no_information and not_supported mean none."""
    if not value or _known(value) is None:
        return None
    try:
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def root_access_keys(iam: Any) -> bool:
    return bool(iam.get_account_summary()["SummaryMap"].get("AccountAccessKeysPresent", 0))


def enabled_regions(ec2: Any) -> list[str]:
    """The regions enabled for the account (DescribeRegions without AllRegions lists only those)."""
    regions = ec2.describe_regions()["Regions"]
    return sorted(r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in")


def instances_in(ec2: Any, region: str) -> list[InstanceRecord]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", []):
            for i in reservation.get("Instances", []):
                state = (i.get("State") or {}).get("Name", "")
                if state in GONE:
                    continue
                options = i.get("MetadataOptions") or {}
                name = next((t["Value"] for t in i.get("Tags") or [] if t.get("Key") == "Name"), None)
                out.append(
                    InstanceRecord(
                        i["InstanceId"], region, state, options.get("HttpTokens"), options.get("HttpEndpoint"), name
                    )
                )
    return out


# ------------------------------------------------------------------------------------------ deciding


def key_findings(keys: list[KeyRecord], now: datetime, max_age_days: int, unused_days: int) -> list[Finding]:
    """Active keys only: an inactive key cannot sign a request."""
    out = []
    users: dict[str, list[KeyRecord]] = {}
    for k in keys:
        users.setdefault(k.user, []).append(k)
        if not k.active:
            continue
        age, idle = k.age_days(now), k.idle_days(now)
        if age > max_age_days:
            out.append(Finding(Check.OLD, k.subject, f"active, {age} days old (created {_day(k.created)})"))
        if idle > unused_days:
            if k.last_used is None:
                detail = f"never used since it was created {age} days ago"
            else:
                where = ", ".join(x for x in (k.last_used_service, k.last_used_region) if x)
                detail = f"last used {idle} days ago ({_day(k.last_used)}{', ' + where if where else ''})"
            out.append(Finding(Check.UNUSED, k.subject, detail))
    for user, mine in users.items():
        active = [k for k in mine if k.active]
        if len(active) >= 2:
            out.append(Finding(Check.TWO_ACTIVE, f"user/{user}", f"{len(active)} active access keys"))
        if active and not active[0].mfa:
            out.append(Finding(Check.NO_MFA, f"user/{user}", f"{_n(len(active), 'active access key')} and no MFA"))
    return out


def held_finding(state: PrincipalState) -> Finding:
    policies = ", ".join(f"{p.name} ({p.effect})" for p in state.policies)
    record = state.containment or {}
    detail = policies
    if record.get("contained-at"):
        detail += f" since {record['contained-at']}"
    if record.get("reason"):
        detail += f"; why: {record['reason']}"
    return Finding(Check.HELD, state.subject, detail)


def order(findings: list[Finding]) -> list[Finding]:
    rank = {c: n for n, c in enumerate(Check)}
    return sorted(findings, key=lambda f: (rank[f.check], f.region, f.subject))


# ------------------------------------------------------------------------------------------ running


def run(
    clients: Any,
    *,
    now: datetime | None = None,
    max_key_age_days: int = DEFAULT_MAX_KEY_AGE_DAYS,
    unused_days: int = DEFAULT_UNUSED_DAYS,
    regions: list[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AuditReport:
    """The whole audit. `now` is the clock ages are measured against (the credential report says when it
    was made, and IAM reuses a report for up to 4 hours)."""
    now = now or datetime.now(UTC)
    iam = clients.iam
    report = AuditReport(now, max_key_age_days, unused_days)
    content, report.credential_report_at = credential_report(iam, sleep=sleep)
    rows, _root = parse_credential_report(content)
    report.users = len(rows)
    report.keys = keys_of(rows)
    findings = key_findings(report.keys, now, max_key_age_days, unused_days)
    report.account = _account(clients, rows)

    try:
        report.root_access_keys = root_access_keys(iam)
        if report.root_access_keys:
            findings.append(
                Finding(Check.ROOT_KEYS, "root", "the root user has access keys: delete them (no one should use root)")
            )
    except Exception as e:
        report.errors.append(f"root access keys (iam:GetAccountSummary): {describe(e)}")

    try:
        report.held = held_principals(iam)
        findings += [held_finding(h) for h in report.held]
    except Exception as e:
        report.errors.append(f"principals held by keyguard (iam:GetAccountAuthorizationDetails): {describe(e)}")

    _scan_instances(clients, report, regions)
    findings += [
        Finding(
            Check.IMDSV1,
            f"instance {i.instance_id}" + (f" ({i.name})" if i.name else ""),
            f"{i.state}, HttpTokens optional: IMDSv1 answers (require IMDSv2)",
            i.region,
        )
        for i in report.imdsv1
    ]
    report.findings = order(findings)
    return report


def _scan_instances(clients: Any, report: AuditReport, regions: list[str] | None) -> None:
    if regions is None:
        try:
            regions = enabled_regions(clients.get("ec2"))
        except Exception as e:
            report.errors.append(f"EC2 regions (ec2:DescribeRegions): {describe(e)}")
            return
    ec2 = {region: clients.get("ec2", region) for region in regions}  # made here: client creation is not thread-safe

    def one(region: str) -> tuple[str, list[InstanceRecord] | None, str | None]:
        try:
            return region, instances_in(ec2[region], region), None
        except Exception as e:
            return region, None, describe(e)

    with ThreadPoolExecutor(max_workers=REGION_WORKERS) as pool:
        results = list(pool.map(one, regions))
    for region, found, error in results:
        if found is None:
            report.errors.append(f"EC2 instances in {region} (ec2:DescribeInstances): {error}")
            continue
        report.regions.append(region)
        report.instances += len(found)
        report.imdsv1 += [i for i in found if i.allows_imdsv1]


def _account(clients: Any, rows: list[dict[str, str]]) -> str | None:
    for row in rows:
        parts = row.get("arn", "").split(":")
        if len(parts) > 4 and parts[4]:
            return parts[4]
    try:
        return clients.get("sts").get_caller_identity()["Account"]
    except Exception:
        return None  # only a label in the report


# ------------------------------------------------------------------------------------------ telling


def summarize(report: AuditReport) -> str:
    """One paragraph a manager can read."""
    c = report.counts()
    if not c["keys"]:
        keys = f"No long-lived access keys on {_n(c['users'], 'IAM user')}"
    else:
        holders = len({k.user for k in report.keys})
        keys = (
            f"{_n(c['keys'], 'long-lived access key')} ({c['activeKeys']} active) on {holders} of "
            f"{_n(c['users'], 'IAM user')}"
        )
    parts = [keys]
    if c["oldKeys"]:
        year = c["keysOlderThanAYear"]
        older = f" ({year} older than a year)" if year and report.max_key_age_days < A_YEAR else ""
        parts.append(f"{c['oldKeys']} older than {report.max_key_age_days} days{older}")
    if c["unusedKeys"]:
        parts.append(f"{c['unusedKeys']} unused for {report.unused_days} days")
    if c["usersWithTwoActiveKeys"]:
        parts.append(f"{_n(c['usersWithTwoActiveKeys'], 'user')} with two active keys")
    if c["usersWithKeysWithoutMfa"]:
        parts.append(f"{_n(c['usersWithKeysWithoutMfa'], 'user')} with keys but no MFA")
    if report.root_access_keys:
        parts.append("the root user has access keys")
    sentences = ["; ".join(parts) + "."]
    if report.regions:
        sentences.append(
            f"{c['imdsv1Instances']} of {_n(c['instances'], 'EC2 instance')} "
            f"{'allows' if c['imdsv1Instances'] == 1 else 'allow'} IMDSv1 "
            f"({_n(len(report.regions), 'region')} checked)."
        )
    users = sum(1 for h in report.held if h.kind == "user")
    roles = len(report.held) - users
    held = [_n(n, noun) for n, noun in ((users, "user"), (roles, "role")) if n]
    if held:
        sentences.append(f"keyguard holds {' and '.join(held)} in quarantine.")
    else:
        sentences.append("keyguard holds no one in quarantine.")
    if report.errors:
        sentences.append(f"INCOMPLETE: {_n(len(report.errors), 'check')} could not run.")
    return " ".join(sentences)


def summary_message(report: AuditReport) -> dict[str, Any]:
    """What the scheduled audit publishes to the topic."""
    from keyguard.operator import publish, render

    c = report.counts()
    head = "keyguard audit" + ("" if report.complete else " INCOMPLETE")
    short = (
        f"{_n(c['activeKeys'], 'active key')}, {c['oldKeys']} old, {_n(c['imdsv1Instances'], 'IMDSv1 host')}, "
        f"{c['heldPrincipals']} held"
    )
    if report.root_access_keys:
        severity = "critical"
    elif not report.complete:
        severity = "high"
    elif report.findings:
        severity = "medium"
    else:
        severity = "info"
    text = render.audit_text(report, inventory=False)
    text += "\n\nThe full key inventory: run `keyguard audit` (or `keyguard audit --format json`)."
    doc = report.to_dict()
    doc.pop("accessKeys")  # the inventory can exceed what SNS carries; the findings name every problem
    return publish.message(
        f"{head}: {short}", text, doc, severity=severity, outcome="audit" if report.complete else "audit-incomplete"
    )


def publish_summary(clients: Any, topic_arn: str, report: AuditReport) -> str:
    """Publish the summary to the topic; returns the message id. Raises PublishFailed."""
    from keyguard.operator.publish import publish

    return publish(clients, topic_arn, summary_message(report))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _day(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d") if when else "-"


def _known(value: str | None) -> str | None:
    return value if value and value not in ("N/A", "no_information", "not_supported") else None


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
