"""The ledger against moto's DynamoDB: history is appended, never overwritten; state follows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyguard.ledger import Ledger, LedgerError

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.fixture
def ledger(account: Any) -> Ledger:
    return Ledger(account.ledger_table, account.clients.get("dynamodb"))


def test_containment_then_second_containment_adds_history_and_keeps_the_first_time(ledger: Ledger) -> None:
    ledger.contained(
        incident_id="guardduty:f1:AKIA1",
        kind="user",
        name="Alice",
        at=T0,
        actor="keyguard-guardduty",
        reason="guardduty UnauthorizedAccess",
        unique_id="AIDAEXAMPLE1",
        layers=["keyguard-quarantine", "boundary"],
        leaked_keys=["AKIAIOSFODNN7EXAMPLE"],
        replaced_boundary="arn:aws:iam::123456789012:policy/team-boundary",
    )
    ledger.contained(
        incident_id="manual:t2:AKIA1",
        kind="user",
        name="alice",
        at=T0 + timedelta(hours=1),
        actor="user/jane",
        reason="rotated, case 1234",
        replaced_boundary="arn:aws:iam::123456789012:policy/keyguard-deny-all",
    )
    held = ledger.principal("user", "ALICE")
    assert held is not None and held.held
    assert held.contained_at == T0  # the first containment's time stays
    assert held.incident == "manual:t2:AKIA1"
    assert held.replaced_boundary == "arn:aws:iam::123456789012:policy/team-boundary"  # never overwritten
    assert held.leaked_keys == ("AKIAIOSFODNN7EXAMPLE",)
    history = ledger.history(kind="user", name="alice")
    assert [e.reason for e in history] == ["guardduty UnauthorizedAccess", "rotated, case 1234"]  # verbatim
    key = ledger.key("AKIAIOSFODNN7EXAMPLE")
    assert key is not None and key.leaked and key.held and key.user == "Alice"
    assert ledger.principal_by_id("AIDAEXAMPLE1") == ledger.principal("user", "alice")
    assert ledger.incident("guardduty:f1:AKIA1").first_contained_at == T0  # type: ignore[union-attr]


def test_release_clears_the_hold_but_a_leaked_key_stays_leaked(ledger: Ledger) -> None:
    ledger.contained(
        incident_id="i1", kind="user", name="bob", at=T0, actor="kg", reason="r", leaked_keys=["AKIAIOSFODNN7EXAMPLE"]
    )
    ledger.released(kind="user", name="bob", at=T0 + timedelta(days=1), actor="user/jane", reason="rotated")
    record = ledger.principal("user", "bob")
    assert record is not None and not record.held and record.released_at == T0 + timedelta(days=1)
    key = ledger.key("AKIAIOSFODNN7EXAMPLE")
    assert key is not None and key.leaked and not key.held
    assert [e.event for e in ledger.history(since=T0)] == ["contained", "released"]
    assert [e.event for e in ledger.history(since=T0 + timedelta(hours=1))] == ["released"]


def test_notes_and_roles(ledger: Ledger) -> None:
    ledger.contained(incident_id="i2", kind="role", name="web-app-role", at=T0, actor="kg", reason="sessions")
    ledger.note(
        "tamper",
        "role",
        "web-app-role",
        actor="user/mallory",
        reason="UpdateAssumeRolePolicy",
        at=T0 + timedelta(seconds=1),
    )
    assert [e.event for e in ledger.history(kind="role", name="web-app-role")] == ["contained", "tamper"]
    assert ledger.principal("user", "web-app-role") is None  # a user is not a role of the same name


def test_without_a_table_reads_find_nothing_and_writes_fail_loudly(account: Any) -> None:
    off = Ledger(None, account.clients.get("dynamodb"))
    assert off.key("AKIAIOSFODNN7EXAMPLE") is None and off.history() == []
    with pytest.raises(LedgerError):
        off.note("tamper", "user", "x", actor="a")


def test_a_missing_table_is_a_ledger_error_with_its_cause(account: Any) -> None:
    gone = Ledger("no-such-table", account.clients.get("dynamodb"))
    with pytest.raises(LedgerError, match="ResourceNotFoundException"):
        gone.key("AKIAIOSFODNN7EXAMPLE")
