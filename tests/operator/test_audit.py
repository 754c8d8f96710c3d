"""`keyguard audit` on a seeded account: exactly the seeded findings, in table, JSON and CSV.

moto creates every key "now", never records a last use (its credential report says N/A, and
not_supported for the last-used service and region) and always reports no root access keys. The
fixture therefore sets key dates and root keys on moto's in-memory backend (tests/operator/inventory.py);
the audit measures ages against its own clock (`now`), never against the report's GeneratedTime, which
moto fixes in 2015. The service/region columns are covered by a hand-written report in the AWS format."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from keyguard.errors import KeyguardError
from keyguard.operator import audit
from keyguard.operator.clients import OperatorError
from tests.faults import Fault
from tests.operator.conftest import clean_environment
from tests.operator.inventory import EXPECTED_SUMMARY, expected_findings, seed_account

TWO_REGIONS = "us-east-1,eu-west-1"


@pytest.fixture(scope="module")
def account():
    """One seeded account for the module (the audit only reads; seeding takes a while)."""
    from moto import mock_aws

    from keyguard.operator.clients import OperatorClients

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        clean_environment(mp)
        clients = OperatorClients()
        yield seed_account(clients.iam, lambda region: clients.get("ec2", region))


@pytest.fixture
def seeded(account, monkeypatch):
    """Fresh clients on the seeded account (faults injected into them do not outlive the test)."""
    from keyguard.operator import commands
    from keyguard.operator.clients import OperatorClients

    clean_environment(monkeypatch)
    clients = OperatorClients()
    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: clients)
    return clients, account


def test_json_reports_exactly_the_seeded_findings(seeded, cli) -> None:
    _, made = seeded
    code, out, err = cli("audit", "--regions", TWO_REGIONS, "--format", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert [(f["check"], f["subject"], f["region"]) for f in doc["findings"]] == expected_findings(made)
    assert doc["summary"] == EXPECTED_SUMMARY
    assert doc["complete"] is True and doc["incomplete"] == []
    assert doc["counts"] == {
        "users": 23,
        "keys": 23,
        "activeKeys": 20,
        "oldKeys": 4,
        "keysOlderThanAYear": 1,
        "unusedKeys": 2,
        "usersWithTwoActiveKeys": 1,
        "usersWithKeysWithoutMfa": 2,
        "rootAccessKeys": 1,
        "instances": 5,
        "imdsv1Instances": 2,
        "heldPrincipals": 2,
        "incompleteChecks": 0,
    }
    details = {(f["check"], f["subject"]): f["detail"] for f in doc["findings"]}
    assert details[("old-key", "user/ancient-olga key 1")].startswith("active, 400 days old (created ")
    assert details[("unused-key", "user/idle-ursula key 1")].startswith("last used 150 days ago (")
    assert details[("unused-key", "user/never-nina key 1")] == "never used since it was created 100 days ago"
    assert details[("two-active-keys", "user/double-dave")] == "2 active access keys"
    assert details[("key-without-mfa", "user/mixed-max")] == "1 active access key and no MFA"
    assert details[("held-by-keyguard", "user/leaked-lucy")].startswith(
        "keyguard-quarantine (denies every action) since "
    )
    assert "why: manual AWS email - by user/moto " in details[("held-by-keyguard", "user/leaked-lucy")]
    assert details[("held-by-keyguard", "role/web-app-role")].startswith(
        "keyguard-revoke-sessions (denies sessions issued before "
    )
    assert details[("imdsv1-allowed", f"instance {made.instances['batch-old']} (batch-old)")] == (
        "stopped, HttpTokens optional: IMDSv1 answers (require IMDSv2)"
    )
    # the inventory: every key, with the flags that concern it
    keys = {(k["user"], k["slot"]): k for k in doc["accessKeys"]}
    assert len(keys) == 23
    assert keys[("idle-ursula", 1)]["flags"] == ["old-key", "unused-key"]
    assert keys[("double-dave", 2)]["flags"] == ["two-active-keys"]
    assert keys[("mixed-max", 1)]["active"] is False and keys[("mixed-max", 1)]["flags"] == []
    assert keys[("mixed-max", 2)]["flags"] == ["key-without-mfa"]
    assert keys[("inactive-irene", 1)]["ageDays"] == 500 and keys[("inactive-irene", 1)]["flags"] == []
    assert keys[("leaked-lucy", 1)]["active"] is False
    assert all(k["flags"] == [] for (user, _), k in keys.items() if user.startswith(("ok-", "fresh-")))
    assert doc["ec2"]["regions"] == ["us-east-1", "eu-west-1"]
    assert {i["name"] for i in doc["ec2"]["imdsv1"]} == {"web-legacy", "batch-old"}
    assert [h["principal"]["name"] for h in doc["held"]] == ["web-app-role", "leaked-lucy"]
    assert doc["rootAccessKeys"] is True


def table_rows(lines: list[str], headers: list[str]) -> list[dict[str, str]]:
    """Read back a printed table: columns start where their headers do; '-' is an empty cell."""
    head = next(n for n, line in enumerate(lines) if line.split() == " ".join(headers).split())
    starts = [lines[head].index(h) for h in headers]
    rows = []
    for line in lines[head + 1 :]:
        if not line.startswith("  ") or not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append({h: ("" if c == "-" else c) for h, c in zip(headers, cells, strict=True)})
    return rows


def test_table_reports_exactly_the_seeded_findings(seeded, cli) -> None:
    _, made = seeded
    code, out, err = cli("audit", "--regions", TWO_REGIONS)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "Findings (14):" in lines
    findings = table_rows(lines, ["CHECK", "SUBJECT", "REGION", "DETAIL"])
    assert [(r["CHECK"], r["SUBJECT"], r["REGION"]) for r in findings] == expected_findings(made)
    assert lines[-1] == f"Summary: {EXPECTED_SUMMARY}"
    assert "Access keys (23 on 23 users):" in lines
    keys = table_rows(lines, ["USER", "KEY", "STATUS", "AGE (DAYS)", "LAST USED", "SERVICE", "REGION", "MFA", "FLAGS"])
    assert len(keys) == 23
    olga = next(r for r in keys if r["USER"] == "ancient-olga")
    assert (olga["STATUS"], olga["AGE (DAYS)"], olga["MFA"], olga["FLAGS"]) == ("Active", "400", "yes", "old-key")
    nina = next(r for r in keys if r["USER"] == "never-nina")
    assert (nina["LAST USED"], nina["FLAGS"]) == ("never", "old-key, unused-key")
    lucy = [(r["KEY"], r["STATUS"], r["FLAGS"]) for r in keys if r["USER"] == "leaked-lucy"]
    assert lucy == [("1", "Inactive", ""), ("2", "Active", "held-by-keyguard")]  # her user is quarantined
    flagged = {r["USER"] for r in keys if r["FLAGS"]}
    assert flagged == {
        "leaked-lucy",
        "ancient-olga",
        "idle-ursula",
        "never-nina",
        "old-ivan",
        "double-dave",
        "mixed-max",
        "nomfa-mike",
    }


def test_csv_lists_the_findings(seeded, cli) -> None:
    _, made = seeded
    code, out, _ = cli("audit", "--regions", TWO_REGIONS, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["CHECK", "SUBJECT", "REGION", "DETAIL", "SEVERITY"]
    assert [tuple(r[:3]) for r in rows[1:]] == expected_findings(made)


REGIONS = (
    {"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required"},
    {"RegionName": "eu-west-1", "OptInStatus": "opt-in-not-required"},
    {"RegionName": "ap-east-1", "OptInStatus": "opted-in"},
    {"RegionName": "af-south-1", "OptInStatus": "not-opted-in"},
)


class _Region:
    """EC2 in one region: DescribeRegions as AWS answers it, and one page of instances."""

    def __init__(self, region: str, asked: list[str]) -> None:
        self.region, self.asked = region, asked

    def describe_regions(self):
        return {"Regions": list(REGIONS)}

    def get_paginator(self, name: str):
        assert name == "describe_instances"
        return self

    def paginate(self):
        self.asked.append(self.region)
        tokens = "optional" if self.region == "ap-east-1" else "required"
        instance = {
            "InstanceId": f"i-{self.region.replace('-', '')}",
            "State": {"Name": "running"},
            "MetadataOptions": {"HttpTokens": tokens, "HttpEndpoint": "enabled"},
        }
        yield {"Reservations": [{"Instances": [instance]}]}


def test_every_enabled_region_is_checked_by_default() -> None:
    asked: list[str] = []

    class Clients:
        def get(self, service: str, region: str | None = None):
            assert service == "ec2"
            return _Region(region or "us-east-1", asked)

    report = audit.AuditReport(NOW)
    audit._scan_instances(Clients(), report, None)
    assert sorted(asked) == ["ap-east-1", "eu-west-1", "us-east-1"]  # enabled and opted-in; never not-opted-in
    assert report.regions == ["ap-east-1", "eu-west-1", "us-east-1"] and report.instances == 3
    assert [(i.instance_id, i.region) for i in report.imdsv1] == [("i-apeast1", "ap-east-1")]


def test_thresholds_are_options(seeded, cli) -> None:
    code, out, _ = cli(
        "audit", "--regions", "us-east-1", "--max-key-age", "365", "--unused-days", "1", "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    old = [f["subject"] for f in doc["findings"] if f["check"] == "old-key"]
    unused = [f["subject"] for f in doc["findings"] if f["check"] == "unused-key"]
    assert old == ["user/ancient-olga key 1"]
    # used more than a day ago (or never, and older than a day); lucy's active key was used yesterday: 1 day
    assert "user/ok-01 key 1" not in unused and "user/never-nina key 1" in unused
    assert "user/ancient-olga key 1" in unused and "user/nomfa-mike key 1" in unused
    assert doc["thresholds"] == {"maxKeyAgeDays": 365, "unusedDays": 1}


def test_a_region_that_cannot_be_read_makes_the_audit_incomplete_and_loud(seeded, cli) -> None:
    aws, _ = seeded
    Fault(aws.get("ec2", "eu-west-1"), "DescribeInstances", "UnauthorizedOperation", status=403)
    code, out, err = cli("audit", "--regions", TWO_REGIONS)
    assert code == 1
    assert err.startswith("keyguard: audit INCOMPLETE: 1 check(s) could not run: EC2 instances in eu-west-1")
    assert len(err.strip().splitlines()) == 1
    assert "INCOMPLETE, these checks could not run:" in out
    assert "1 of 3 EC2 instances allows IMDSv1 (1 region checked). " in out
    assert out.rstrip().endswith("INCOMPLETE: 1 check could not run.")


def test_a_credential_report_that_cannot_be_had_stops_the_audit(seeded, cli) -> None:
    aws, _ = seeded
    Fault(aws.iam, "GenerateCredentialReport", "AccessDenied", status=403)
    code, out, err = cli("audit")
    assert (code, out) == (2, "")
    assert err == (
        "keyguard: AWS GenerateCredentialReport failed: AccessDenied: injected AccessDenied "
        "(see docs/operator.md for the permissions each command needs)\n"
    )


# ---------------------------------------------------------------------------- the report itself

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,"
    "access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
# The shape IAM documents (root row first; N/A, no_information, not_supported), with our own values.
REPORT = "\n".join(
    [
        HEADER,
        "<root_account>,arn:aws:iam::123456789012:root,2019-01-01T00:00:00+00:00,not_supported,"
        "2025-02-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,"
        "false,N/A,false,N/A",
        "carol,arn:aws:iam::123456789012:user/carol,2020-01-01T00:00:00+00:00,true,no_information,"
        "2020-01-01T00:00:00+00:00,N/A,false,true,2024-01-15T08:00:00+00:00,2024-06-01T12:30:00+00:00,eu-west-1,"
        "s3,true,2025-02-20T08:00:00+00:00,2025-02-28T09:00:00+00:00,us-east-1,sts,false,N/A,false,N/A",
        "dan,arn:aws:iam::123456789012:user/dan,2021-01-01T00:00:00+00:00,false,N/A,N/A,N/A,true,false,"
        "2021-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "erin,arn:aws:iam::123456789012:user/erin,2021-01-01T00:00:00+00:00,false,N/A,N/A,N/A,true,false,N/A,"
        "N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
    ]
)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_parses_the_documented_report_format() -> None:
    rows, root = audit.parse_credential_report(REPORT.encode())
    assert root is not None and root["user"] == "<root_account>"
    keys = audit.keys_of(rows)
    assert [(k.user, k.slot, k.active, k.mfa) for k in keys] == [
        ("carol", 1, True, False),
        ("carol", 2, True, False),
        ("dan", 1, False, True),
    ]
    carol = keys[0]
    assert carol.created == datetime(2024, 1, 15, 8, tzinfo=UTC)
    assert (carol.last_used, carol.last_used_service, carol.last_used_region) == (
        datetime(2024, 6, 1, 12, 30, tzinfo=UTC),
        "s3",
        "eu-west-1",
    )
    findings = audit.key_findings(keys, NOW, 90, 90)
    assert [(f.check.value, f.subject, f.detail) for f in findings] == [
        ("old-key", "user/carol key 1", "active, 411 days old (created 2024-01-15)"),
        ("unused-key", "user/carol key 1", "last used 272 days ago (2024-06-01, s3, eu-west-1)"),
        ("two-active-keys", "user/carol", "2 active access keys"),
        ("key-without-mfa", "user/carol", "2 active access keys and no MFA"),
    ]


@pytest.mark.parametrize("value", ["N/A", "no_information", "not_supported", "", None, "yesterday"])
def test_report_dates_that_are_not_dates(value) -> None:
    assert audit.report_date(value) is None


def test_a_report_without_the_documented_columns_is_refused() -> None:
    with pytest.raises(OperatorError, match="columns"):
        audit.parse_credential_report(b"name,keys\nalice,2\n")


class _SlowReport:
    """IAM while the report is being generated: GetCredentialReport answers ReportInProgress."""

    def __init__(self, busy: int) -> None:
        self.busy, self.generated = busy, 0

    def generate_credential_report(self):
        self.generated += 1
        return {"State": "STARTED"}

    def get_credential_report(self):
        from botocore.exceptions import ClientError

        if self.busy:
            self.busy -= 1
            raise ClientError({"Error": {"Code": "ReportInProgress", "Message": "busy"}}, "GetCredentialReport")
        return {"Content": REPORT.encode(), "GeneratedTime": NOW}


def test_waits_for_the_report_being_generated() -> None:
    slept: list[float] = []
    iam = _SlowReport(busy=2)
    content, at = audit.credential_report(iam, sleep=slept.append)
    assert content == REPORT.encode() and at == NOW
    assert slept == [2, 2] and iam.generated == 3


def test_gives_up_waiting_with_one_clear_error() -> None:
    with pytest.raises(OperatorError, match="not ready after 0 s") as e:
        audit.credential_report(_SlowReport(busy=99), sleep=lambda _: None, wait_seconds=0)
    assert isinstance(e.value, KeyguardError)
