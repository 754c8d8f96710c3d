"""`keyguard audit` for machines and CI: a severity per finding (`--fail-on`), filters (`--user`,
`--only-flagged`), the key inventory by key id (CSV with ARNs and a severity column), and OCSF.

OCSF: each finding is a Detection Finding (class_uid 2004, category "Findings"), shaped as Prowler emits
it (its json-ocsf output, which Security Lake ingests): finding_info, severity_id, status_code FAIL,
resources with the ARN, cloud.account. Plain data: no terminal libraries here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from keyguard.operator.audit import A_YEAR, AuditReport, Check, Finding, KeyRecord

SEVERITIES = ("informational", "low", "medium", "high", "critical")
OCSF_SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
OCSF_VERSION = "1.3.0"
DETECTION_FINDING = 2004
FINDINGS_CATEGORY = 2
CREATE = 1

TITLES = {
    Check.ROOT_KEYS: "The root user has access keys",
    Check.HELD: "A principal is held in quarantine by keyguard",
    Check.OLD: "An active access key is older than the maximum age",
    Check.UNUSED: "An active access key has not been used for a long time",
    Check.TWO_ACTIVE: "A user has two active access keys",
    Check.NO_MFA: "A user with active access keys has no MFA device",
    Check.IMDSV1: "An EC2 instance still allows IMDSv1",
}
REMEDIATION = {
    Check.ROOT_KEYS: "Delete the root user's access keys; nobody should use root.",
    Check.HELD: "Finish the incident (rotate the key), then `keyguard release`.",
    Check.OLD: "Replace the key with a role, or rotate it.",
    Check.UNUSED: "Deactivate, then delete the unused key.",
    Check.TWO_ACTIVE: "Keep one active key at most; delete the other after rotation.",
    Check.NO_MFA: "Give the user an MFA device, or replace its keys with a role.",
    Check.IMDSV1: "Require IMDSv2: aws ec2 modify-instance-metadata-options --http-tokens required.",
}


def severity(finding: Finding, report: AuditReport | None = None) -> str:
    """How urgent a finding is: root keys are critical; a key older than a year, or a principal held, high."""
    if finding.check is Check.ROOT_KEYS:
        return "critical"
    if finding.check is Check.HELD:
        return "high"
    if finding.check is Check.OLD and report is not None:
        key = _key_of(report, finding.subject)
        if key is not None and key.age_days(report.generated_at) > A_YEAR:
            return "high"
    if finding.check is Check.UNUSED:
        return "low"
    return "medium"


def at_or_above(report: AuditReport, threshold: str) -> list[Finding]:
    floor = SEVERITIES.index(threshold)
    return [f for f in report.findings if SEVERITIES.index(severity(f, report)) >= floor]


def key_severity(report: AuditReport, key: KeyRecord) -> str | None:
    """The highest severity among the findings that concern this key (its own and its user's)."""
    mine = {key.subject, f"user/{key.user}"} if key.active else {key.subject}
    found = [severity(f, report) for f in report.findings if f.subject in mine]
    return max(found, key=SEVERITIES.index) if found else None


def filtered(report: AuditReport, *, user: str | None, only_flagged: bool) -> AuditReport:
    """The report limited to one user's keys and findings, and/or to keys that have a finding."""
    keys, findings = report.keys, report.findings
    if user is not None:
        folded = user.lower()
        keys = [k for k in keys if k.user.lower() == folded]
        subjects = {f"user/{k.user}" for k in keys} | {k.subject for k in keys}
        findings = [f for f in findings if f.subject in subjects]
    if only_flagged:
        keys = [k for k in keys if report.flags(k)]
    return replace(report, keys=keys, findings=findings, users=len({k.user for k in keys}) if user else report.users)


@dataclass(frozen=True)
class KeyId:
    key_id: str
    status: str
    created: datetime | None


def key_ids(iam: Any, report: AuditReport) -> dict[tuple[str, int], str]:
    """(user, slot) -> access key id. The credential report names slots; IAM's ListAccessKeys gives ids.
    A slot's "last rotated" time is its key's creation time: that is how they are matched."""
    out: dict[tuple[str, int], str] = {}
    for user in sorted({k.user for k in report.keys}):
        listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        for key in [k for k in report.keys if k.user == user]:
            match = [m for m in listed if _same_second(m.get("CreateDate"), key.created)]
            if len(match) != 1 and len(listed) == 1 and len([k for k in report.keys if k.user == user]) == 1:
                match = listed
            if len(match) == 1:
                out[(user, key.slot)] = match[0]["AccessKeyId"]
    return out


INVENTORY_HEADERS = (
    "ACCOUNT",
    "USER",
    "USER_ARN",
    "ACCESS_KEY_ID",
    "STATUS",
    "CREATED",
    "AGE_DAYS",
    "LAST_USED",
    "LAST_USED_SERVICE",
    "LAST_USED_REGION",
    "MFA",
    "FLAGS",
    "SEVERITY",
)


def inventory_rows(report: AuditReport, ids: dict[tuple[str, int], str]) -> list[list[Any]]:
    now = report.generated_at
    return [
        [
            report.account,
            k.user,
            k.arn,
            ids.get((k.user, k.slot), f"(slot {k.slot}: id not found)"),
            "Active" if k.active else "Inactive",
            _stamp(k.created),
            k.age_days(now),
            _stamp(k.last_used),
            k.last_used_service,
            k.last_used_region,
            "yes" if k.mfa else "no",
            " ".join(report.flags(k)),
            key_severity(report, k),
        ]
        for k in report.keys
    ]


def ocsf(report: AuditReport, version: str) -> list[dict[str, Any]]:
    """One OCSF Detection Finding per audit finding."""
    at = report.generated_at
    out = []
    for f in report.findings:
        sev = severity(f, report)
        resource_uid, resource_type = _resource(report, f)
        out.append(
            {
                "message": f"{f.subject}: {f.detail}",
                "activity_id": CREATE,
                "activity_name": "Create",
                "category_uid": FINDINGS_CATEGORY,
                "category_name": "Findings",
                "class_uid": DETECTION_FINDING,
                "class_name": "Detection Finding",
                "type_uid": DETECTION_FINDING * 100 + CREATE,
                "type_name": "Detection Finding: Create",
                "time": int(at.timestamp()),
                "time_dt": _stamp(at),
                "severity_id": OCSF_SEVERITY_ID[sev],
                "severity": sev.capitalize(),
                "status_id": 1,
                "status": "New",
                "status_code": "FAIL",
                "status_detail": f.detail,
                "finding_info": {
                    "uid": f"keyguard-{report.account or 'unknown'}-{f.check.value}-{f.region or 'global'}-{f.subject}",
                    "title": TITLES[f.check],
                    "desc": f.detail,
                    "types": [f.check.value],
                    "created_time": int(at.timestamp()),
                    "created_time_dt": _stamp(at),
                },
                "remediation": {"desc": REMEDIATION[f.check]},
                "resources": [
                    {
                        "uid": resource_uid,
                        "name": f.subject,
                        "type": resource_type,
                        "region": f.region or "global",
                        "cloud_partition": "aws",
                    }
                ],
                "cloud": {
                    "provider": "aws",
                    "region": f.region or "global",
                    "account": {"uid": report.account, "type_id": 10, "type": "AWS Account"},
                },
                "metadata": {
                    "version": OCSF_VERSION,
                    "event_code": f.check.value,
                    "product": {"uid": "keyguard", "name": "keyguard", "vendor_name": "keyguard", "version": version},
                    "profiles": ["cloud", "datetime"],
                },
            }
        )
    return out


def _resource(report: AuditReport, f: Finding) -> tuple[str, str]:
    account = report.account or "unknown"
    if f.check is Check.ROOT_KEYS:
        return f"arn:aws:iam::{account}:root", "AwsAccount"
    if f.check is Check.IMDSV1:
        instance = f.subject.split()[1]
        return f"arn:aws:ec2:{f.region}:{account}:instance/{instance}", "AwsEc2Instance"
    kind, _, rest = f.subject.partition("/")
    name = rest.split(" ")[0]
    key = _key_of(report, f.subject)
    if key is not None:
        return key.arn, "AwsIamAccessKey"
    if kind == "role":
        return f"arn:aws:iam::{account}:role/{name}", "AwsIamRole"
    arn = next((k.arn for k in report.keys if k.user == name), f"arn:aws:iam::{account}:user/{name}")
    return arn, "AwsIamUser"


def _key_of(report: AuditReport, subject: str) -> KeyRecord | None:
    return next((k for k in report.keys if k.subject == subject), None)


def _same_second(a: Any, b: datetime | None) -> bool:
    return isinstance(a, datetime) and b is not None and abs((a - b).total_seconds()) < 1.5


def _stamp(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None
