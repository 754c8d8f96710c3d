"""The commands and keyguard's ledger (issue 13): `--reason` is kept verbatim there (only the tag mirror is
sanitised), `keyguard history` reads what was contained and released, when, by whom and why, and
`status --format json` carries the ledger's record, which no tag change lifts."""

from __future__ import annotations

import csv
import io
import json

import pytest

from keyguard.ledger import TABLE_SCHEMA
from tests.operator.inventory import snapshot, user_with_keys

REASON = "rotated, case 1234"


@pytest.fixture
def alice(aws, monkeypatch):
    """alice with two keys; the stack's settings name the ledger table (as the template writes them)."""
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    aws.get("dynamodb").create_table(TableName="keyguard-ledger", BillingMode="PAY_PER_REQUEST", **TABLE_SCHEMA)
    settings = {"keyguard": 1, "stack": "keyguard", "mode": "enforce", "ledgerTable": "keyguard-ledger"}
    aws.get("ssm").put_parameter(Name="/keyguard/keyguard/settings", Type="String", Value=json.dumps(settings))
    return aws, user_with_keys(aws.iam, "alice", 2)


def _ledger(aws):
    from keyguard.ledger import Ledger

    return Ledger("keyguard-ledger", aws.get("dynamodb"))


def test_reason_is_verbatim_in_the_ledger_and_sanitised_only_in_the_tags(alice, cli) -> None:
    aws, (leaked, _) = alice
    assert cli("contain", "--key", leaked, "--reason", REASON, "--yes")[0] == 0
    (entry,) = _ledger(aws).history(kind="user", name="alice")
    assert entry.event == "contained" and entry.reason == REASON
    assert "rotated_ case 1234" in snapshot(aws.iam, ["alice"])["user/alice"]["tags"]["keyguard:reason"]
    assert cli("release", "--user", "alice", "--reason", REASON, "--yes")[0] == 0
    released = _ledger(aws).history(kind="user", name="alice")[-1]
    assert released.event == "released" and released.reason == REASON


def test_history_reads_the_ledger(alice, cli) -> None:
    _aws, (leaked, _) = alice
    assert cli("contain", "--key", leaked, "--reason", REASON, "--yes")[0] == 0
    assert cli("release", "--user", "alice", "--reason", "done", "--yes")[0] == 0

    code, out, _ = cli("history", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "history"
    got = sorted((e["event"], e["principal"]["type"], e["principal"]["name"], e["reason"]) for e in doc["entries"])
    assert got == [("contained", "user", "alice", REASON), ("released", "user", "alice", "done")]  # same second
    assert all(e["actor"] and e["at"] for e in doc["entries"])

    code, out, _ = cli("history", "--user", "alice")
    assert code == 0 and "contained" in out and "released" in out and REASON in out
    code, out, _ = cli("history", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["AT", "EVENT", "PRINCIPAL", "INCIDENT", "BY", "WHY"] and len(rows) == 3
    code, out, _ = cli("history", "--since", "2999-01-01", "--format", "json")
    assert code == 0 and json.loads(out)["entries"] == []
    code, out, _ = cli("history", "--since", "1h", "--role", "web-app-role", "--format", "json")
    assert code == 0 and json.loads(out)["entries"] == []


def test_history_refuses_a_bad_since_and_a_missing_ledger(aws, cli, monkeypatch) -> None:
    from keyguard.operator import commands

    monkeypatch.setattr(commands, "OperatorClients", lambda *a, **k: aws)
    code, _, err = cli("history", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday'" in err
    code, _, err = cli("history")
    assert code == 2 and "no ledger to read" in err


def test_status_json_carries_the_ledger_record_which_no_tag_change_lifts(alice, cli) -> None:
    aws, (leaked, _) = alice
    assert cli("contain", "--key", leaked, "--yes")[0] == 0
    tags = [t["Key"] for t in aws.iam.list_user_tags(UserName="alice")["Tags"] if t["Key"].startswith("keyguard:")]
    aws.iam.untag_user(UserName="alice", TagKeys=tags)  # the key holder removes the mirror
    code, out, _ = cli("status", "--user", "alice", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["containment"] is None  # the tags are gone...
    assert doc["ledger"]["held"] is True and leaked in doc["ledger"]["leakedKeys"]  # ...the ledger is not
    assert {k["accessKeyId"]: k["leakedAt"] for k in doc["keys"]}[leaked]
    code, out, _ = cli("status", "--user", "alice")
    assert "ledger       : HELD" in out
