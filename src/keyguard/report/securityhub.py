"""Each incident as an AWS Security Finding Format (ASFF) finding in the account's own Security Hub.

Imported with BatchImportFindings to the account's default product
(`arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`), after containment and the SNS
notification: optional (SecurityHubFindings=true), skipped when Security Hub is not enabled, and a failure is
reported, never raised into containment. The finding id is stable per incident, so a redelivery updates the
same finding. `keyguard release` marks it RESOLVED (BatchUpdateFindings: the workflow status belongs to the
customer side of the API; BatchImportFindings ignores it on existing findings).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from keyguard.aws import error_code
from keyguard.defang import printable, visible_strings
from keyguard.incident import Incident, PrincipalType, Source
from keyguard.plan import Outcome
from keyguard.respond import Response

IMPORT_PERMISSIONS = ("securityhub:BatchImportFindings",)
RESOLVE_PERMISSIONS = ("securityhub:BatchUpdateFindings",)  # the operator's, at `keyguard release`
SCHEMA_VERSION = "2018-10-08"
NOT_ENABLED = frozenset({"InvalidAccessException", "AccessDeniedException"})  # "not subscribed to Security Hub"
MAX_PRODUCT_FIELDS = 50

_LABEL = {
    "critical": "CRITICAL",
    "high": "HIGH",
    "medium": "MEDIUM",
    "low": "LOW",
    "info": "INFORMATIONAL",
}
_RELATED_PRODUCT = {Source.GUARDDUTY: "guardduty", Source.HEALTH: "health"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9:/_.\-]")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def product_arn(account: str, region: str) -> str:
    """The account's own product ARN: where an account imports findings it makes itself."""
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def finding_id(incident_id: str) -> str:
    return "keyguard/" + _ID_UNSAFE.sub("_", incident_id)[:500]


def finding(r: Response, *, level: str, account: str, region: str, now: datetime | None = None) -> dict[str, Any]:
    """The ASFF finding for one response: the key and the principal as resources, the severity, every
    action's result, the source finding in RelatedFindings, workflow NEW."""
    i = r.incident
    stamp = (now or r.at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    partition = partition_of(region)
    title = f"keyguard {r.outcome.value}: {i.key_id or 'user ' + str(r.owner or i.principal_name)}"
    fields = {
        "keyguard/incidentId": i.incident_id,
        "keyguard/outcome": r.outcome.value,
        "keyguard/source": i.source.value,
        "keyguard/sourceId": i.source_id,
        "keyguard/findingType": i.finding_type,
        "keyguard/dryRun": str(r.dry_run).lower(),
    }
    if r.update_of:  # an update of an earlier incident: its own finding, related to the earlier one
        fields["keyguard/updateOf"] = r.update_of
    for n, res in enumerate(r.results[: MAX_PRODUCT_FIELDS - len(fields)], 1):
        fields[f"keyguard/action/{n:02d}"] = res.line()
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(i.incident_id),
        "ProductArn": product_arn(account, region),
        "GeneratorId": f"keyguard/{i.source.value}",
        "AwsAccountId": account,
        "Types": [_type(i)],
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        "Severity": {"Label": _LABEL.get(level, "MEDIUM")},
        "Title": title[:256],
        "Description": (r.reason or title)[:1024],
        "ProductName": "keyguard",
        "CompanyName": "keyguard",
        "ProductFields": {k: _field(v) for k, v in fields.items()},
        "Resources": _resources(r, account, region, partition),
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    if i.severity is not None:
        out["Severity"]["Original"] = f"{i.severity:g}"
    if i.evidence.first_seen and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", i.evidence.first_seen):
        out["FirstObservedAt"] = i.evidence.first_seen
    related = _RELATED_PRODUCT.get(i.source)
    links = []
    if related and i.source_id:
        source_arn = i.source_arn or i.source_id
        links.append(
            {"ProductArn": f"arn:{partition}:securityhub:{region}::product/aws/{related}", "Id": source_arn[:512]}
        )
    if r.update_of:
        links.append({"ProductArn": product_arn(account, region), "Id": finding_id(r.update_of)})
    if links:
        out["RelatedFindings"] = links
    return visible_strings(out)  # the owner's name and the reason are in the title and resources too


def _type(i: Incident) -> str:
    if i.kind.value == "new-key":
        return "Software and Configuration Checks/AWS Security Best Practices/Long-lived access key"
    return "TTPs/Credential Access/Leaked access key"


def _resources(r: Response, account: str, region: str, partition: str) -> list[dict[str, Any]]:
    i = r.incident
    out: list[dict[str, Any]] = []
    name = r.owner or i.principal_name
    role = i.principal_type is PrincipalType.ASSUMED_ROLE
    if i.key_id:
        key: dict[str, Any] = {
            "Type": "AwsIamAccessKey",
            "Id": f"AWS::IAM::AccessKey:{i.key_id}",
            "Partition": partition,
            "Region": region,
        }
        details: dict[str, Any] = {"PrincipalType": "AssumedRole" if role else "IAMUser"}
        if name:
            details["PrincipalName"] = name
        key["Details"] = {"AwsIamAccessKey": details}
        out.append(key)
    if name and i.principal_type in (PrincipalType.IAM_USER, PrincipalType.UNKNOWN, PrincipalType.ASSUMED_ROLE):
        kind = "role" if role else "user"
        out.append(
            {
                "Type": "AwsIamRole" if role else "AwsIamUser",
                "Id": f"arn:{partition}:iam::{account}:{kind}/{name}",
                "Partition": partition,
                "Region": region,
            }
        )
    if not out:  # ASFF needs one resource: the account
        out.append({"Type": "AwsAccount", "Id": f"AWS::::Account:{account}", "Partition": partition, "Region": region})
    return out


def _field(value: str) -> str:
    return printable(value, 2048)


def import_findings(client: Any, findings: list[dict[str, Any]]) -> list[str]:
    """BatchImportFindings; one result per finding: 'imported', 'skipped: ...' or 'failed: ...'. Never raises."""
    if not findings:
        return []
    try:
        out = client.batch_import_findings(Findings=findings)
    except Exception as e:
        code = error_code(e) or type(e).__name__
        if code in NOT_ENABLED:
            return [f"skipped: Security Hub is not enabled here ({code})"] * len(findings)
        return [f"failed: {code}"] * len(findings)
    failed = {
        f.get("Id"): f"{f.get('ErrorCode')}: {f.get('ErrorMessage')}"[:200] for f in out.get("FailedFindings", [])
    }
    return [f"failed: {failed[f['Id']]}" if f["Id"] in failed else "imported" for f in findings]


def mark_resolved(
    client: Any, incident_ids: list[str], *, account: str, region: str, by: str, reason: str | None = None
) -> list[str]:
    """For the release path (`keyguard release`): the incidents' findings go to workflow RESOLVED, with a note
    saying who released and why. One result per incident; never raises (a release is never blocked)."""
    if not incident_ids:
        return []
    ids = [{"Id": finding_id(x), "ProductArn": product_arn(account, region)} for x in incident_ids]
    text = f"Released by {by}" + (f": {reason}" if reason else "")
    try:
        out = client.batch_update_findings(
            FindingIdentifiers=ids,
            Workflow={"Status": "RESOLVED"},
            Note={"Text": _field(text)[:512], "UpdatedBy": _field(by)[:128] or "keyguard"},
        )
    except Exception as e:
        code = error_code(e) or type(e).__name__
        if code in NOT_ENABLED:
            return [f"skipped: Security Hub is not enabled here ({code})"] * len(ids)
        return [f"failed: {code}"] * len(ids)
    bad = {u.get("FindingIdentifier", {}).get("Id"): u.get("ErrorCode") for u in out.get("UnprocessedFindings", [])}
    return [f"failed: {bad[x['Id']]}" if x["Id"] in bad else "resolved" for x in ids]


def incidents_held(ledger: Any, kind: str, name: str) -> list[str]:
    """For the release path: the incidents keyguard holds `kind/name` for, from its ledger's history (every
    containment since the last release), oldest first. The ones whose findings `mark_resolved` closes."""
    out: list[str] = []
    for entry in ledger.history(kind=kind, name=name):
        if entry.event == "released":
            out = []
        elif (
            entry.incident and entry.event in ("contained", "redelivered", "re-contained") and entry.incident not in out
        ):
            out.append(entry.incident)
    return out


RELEASE_PERMISSIONS = ("securityhub:BatchUpdateFindings",)  # keyguard release (the operator's)


def release_findings(
    clients: Any, ledger: Any, *, kind: str, name: str, account: str, region: str, by: str, reason: str | None
) -> list[str]:
    """What `keyguard release` calls (wired in by the release path), after the policies are removed and
    before the ledger records the release: RESOLVED for the principal's incidents' findings. Never raises."""
    try:
        incidents = incidents_held(ledger, kind, name)
    except Exception as e:
        return [f"failed: ledger unreadable ({type(e).__name__})"]
    return mark_resolved(
        clients.get("securityhub", region), incidents, account=account, region=region, by=by, reason=reason
    )


def wanted(r: Response) -> bool:
    """Sample findings and other accounts' events never become findings here."""
    return r.outcome not in (Outcome.SAMPLE, Outcome.OTHER_ACCOUNT)
