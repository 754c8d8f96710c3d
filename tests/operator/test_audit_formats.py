"""What people expect from a security CLI's audit (issue 13): --fail-on for CI, --user, --only-flagged, a
key inventory by key id with ARNs and severities, OCSF Detection Findings, and a progress display and
colour only on a terminal."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.operator.conftest import clean_environment
from tests.operator.inventory import expected_findings, seed_account

REGIONS = "us-east-1,eu-west-1"


@pytest.fixture(scope="module")
def account():
    from moto import mock_aws

    from keyguard.operator.clients import OperatorClients

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        clean_environment(mp)
        clients = OperatorClients()
        yield clients, seed_account(clients.iam, lambda region: clients.get("ec2", region))


@pytest.fixture
def seeded(account, monkeypatch):
    from keyguard.operator import commands
    from keyguard.operator.clients import OperatorClients

    clean_environment(monkeypatch)
    clients = OperatorClients()
    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: clients)
    return clients, account[1]


@pytest.mark.parametrize(("threshold", "code"), [("critical", 1), ("high", 1), ("medium", 1), ("low", 1)])
def test_fail_on_exits_1_at_or_above(seeded, cli, threshold, code) -> None:
    got, _, err = cli("audit", "--regions", REGIONS, "--fail-on", threshold)
    assert got == code and f"at or above {threshold} (--fail-on)" in err


def test_fail_on_passes_when_nothing_reaches_it(seeded, cli) -> None:
    got, _, err = cli("audit", "--regions", REGIONS, "--fail-on", "critical", "--user", "ok-01")
    assert (got, err) == (0, "")


def test_user_limits_keys_and_findings(seeded, cli) -> None:
    code, out, _ = cli("audit", "--regions", REGIONS, "--user", "double-dave", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and {k["user"] for k in doc["accessKeys"]} == {"double-dave"}
    assert [f["check"] for f in doc["findings"]] == ["two-active-keys"]
    assert cli("audit", "--regions", REGIONS, "--user", "nobody")[0] == 2


def test_only_flagged_lists_keys_with_a_finding(seeded, cli) -> None:
    code, out, _ = cli("audit", "--regions", REGIONS, "--only-flagged", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["accessKeys"] and all(k["flags"] for k in doc["accessKeys"])
    assert not any(k["user"].startswith("ok-") for k in doc["accessKeys"])


def test_key_inventory_csv_has_key_ids_arns_and_severity(seeded, cli) -> None:
    clients, _ = seeded
    code, out, _ = cli("audit", "--regions", REGIONS, "--inventory", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows
    assert list(rows[0]) == [
        "ACCOUNT", "USER", "USER_ARN", "ACCESS_KEY_ID", "STATUS", "CREATED", "AGE_DAYS", "LAST_USED",
        "LAST_USED_SERVICE", "LAST_USED_REGION", "MFA", "FLAGS", "SEVERITY",
    ]  # fmt: skip
    for row in rows:
        ids = {k["AccessKeyId"] for k in clients.iam.list_access_keys(UserName=row["USER"])["AccessKeyMetadata"]}
        assert row["ACCESS_KEY_ID"] in ids, row
        assert row["USER_ARN"] == f"arn:aws:iam::123456789012:user/{row['USER']}"
    by_user = {r["USER"]: r for r in rows}
    assert by_user["ancient-olga"]["SEVERITY"] == "high"  # older than a year
    assert by_user["ok-01"]["SEVERITY"] == ""


def test_ocsf_detection_findings(seeded, cli) -> None:
    _, made = seeded
    code, out, _ = cli("audit", "--regions", REGIONS, "--format", "ocsf")
    findings = json.loads(out)
    assert code == 0 and len(findings) == len(expected_findings(made))
    for f in findings:
        assert (f["class_uid"], f["category_uid"], f["type_uid"], f["activity_id"]) == (2004, 2, 200401, 1)
        assert f["status_code"] == "FAIL" and f["cloud"]["account"]["uid"] == "123456789012"
        assert f["severity_id"] == {"Low": 2, "Medium": 3, "High": 4, "Critical": 5}[f["severity"]]
        assert (
            f["finding_info"]["uid"] and f["finding_info"]["title"] and f["resources"][0]["uid"].startswith("arn:aws:")
        )
    root = next(f for f in findings if f["metadata"]["event_code"] == "root-access-keys")
    assert root["severity"] == "Critical" and root["resources"][0]["uid"] == "arn:aws:iam::123456789012:root"


# ------------------------------------------------------------------------------------------ terminal only


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_only(monkeypatch) -> None:
    from keyguard.operator.terminal import Console

    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    Console(out=tty).print("containment FAILED; alice HELD; CONTAINED")
    assert "\x1b[" in tty.getvalue()
    pipe = io.StringIO()
    Console(out=pipe).print("containment FAILED")
    assert pipe.getvalue() == "containment FAILED\n"
    tty = _Tty()
    Console(out=tty, color=False).print("FAILED")  # --no-color
    assert "\x1b[" not in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    Console(out=tty).print("FAILED")
    assert "\x1b[" not in tty.getvalue()


def test_tables_are_rich_on_a_terminal_and_plain_in_a_pipe(monkeypatch) -> None:
    from keyguard.operator.terminal import Console

    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, pipe = _Tty(), io.StringIO()
    rows = [["user/alice", "keyguard-quarantine", "2025-03-17T09:41:27Z", None]]
    Console(out=tty).table(("PRINCIPAL", "POLICIES", "SINCE", "WHY"), rows)
    Console(out=pipe).table(("PRINCIPAL", "POLICIES", "SINCE", "WHY"), rows)
    assert "\x1b[" in tty.getvalue() and "─" in tty.getvalue()
    assert pipe.getvalue().splitlines() == [
        "  PRINCIPAL   POLICIES             SINCE                 WHY",
        "  user/alice  keyguard-quarantine  2025-03-17T09:41:27Z  -",
    ]


def test_progress_on_a_terminal_only(monkeypatch) -> None:
    from keyguard.operator.terminal import Console

    assert Console(err=_Tty()).progress_enabled
    assert not Console(err=io.StringIO()).progress_enabled
    assert not Console(err=_Tty(), json_mode=True).progress_enabled
    err = _Tty()
    with Console(err=err).progress("auditing", total=2) as advance:
        advance()
        advance()
    quiet = io.StringIO()
    with Console(err=quiet).progress("auditing") as advance:
        advance()
    assert quiet.getvalue() == ""


def test_lambda_code_never_imports_rich() -> None:
    """The scheduled audit runs in Lambda: nothing a handler imports may pull in rich or shtab."""
    import subprocess
    import sys

    code = (
        "import sys, handlers.audit, handlers.guardduty, handlers.health, handlers.access_key_created, "
        "handlers.investigate; print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'shtab')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="src")  # noqa: S603
    assert run.stdout.strip() == "[]"
