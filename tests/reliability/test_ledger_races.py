"""Two writers of one principal's ledger record at once, and DynamoDB's answers to that.

In a real leak several containments of one principal arrive together (GuardDuty, Health, AWS's own
quarantine, Trusted Advisor, CreateAccessKey, the tamper watch, an operator's `keyguard contain`). Each
writes the principal's `state` item in one TransactWriteItems; DynamoDB cancels the one that overlaps
another in flight (TransactionCanceledException, CancellationReasons `TransactionConflict`). Every
containment must still end `contained`, with one history entry each, the principal held, and no FAILED
notice; a write still cancelled after keyguard's bound is a loud failure.

The in-process emulator is serialised and cancels overlapping transactions as DynamoDB does
(tests.faults.SerialEmulator, installed by world.emulated), so the threaded tests here meet real
conflicts; the deterministic ones inject them at botocore's seam.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

import keyguard.ledger as ledger_module
from keyguard.actions import QUARANTINE_POLICY
from keyguard.ledger import WRITE_ATTEMPTS, Ledger
from tests import faults
from tests.conftest import load_event
from tests.reliability import world
from tests.reliability.test_redelivery import _at_once, _container, _docs, _seed


@pytest.fixture(scope="module")
def stage():
    s = world.Stage()
    yield s
    s.close()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The ledger's pauses between attempts, recorded instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(ledger_module, "_sleep", delays.append)
    return delays


def _ledger(env: Any) -> Ledger:
    return Ledger(env.ledger_table, env.clients.get("dynamodb"))


def _history(env: Any, name: str = "alice") -> list[tuple[str, str | None]]:
    return [(e.event, e.incident) for e in _ledger(env).history(kind="user", name=name)]


# ------------------------------------------------------------------------------ DynamoDB's answers, injected


def test_a_conflicting_transaction_is_sent_again_and_the_containment_is_contained(
    stage: world.Stage, pauses: list[float]
) -> None:
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    conflict = faults.transaction_conflict(env.clients.get("dynamodb"), times=2)
    try:
        inv = world.invoke(env, "guardduty", seeded.event)
    finally:
        conflict.remove()
    assert inv.error is None, repr(inv.error)
    (response,) = inv.result["responses"]
    assert response["outcome"] == "contained"
    assert conflict.calls == 2  # two cancelled attempts, then the third landed
    assert len(pauses) == 2 and all(0 <= p <= 0.1 for p in pauses)  # jittered, under the first two steps
    assert _history(env) == [("contained", response["incident"])]
    record = _ledger(env).principal("user", "alice")
    assert record is not None and record.held and key in record.leaked_keys
    assert [d["outcome"] for d in _docs(env)] == ["contained"]
    assert world.iam_state()["user/alice"]["keys"][key] == "Inactive"


def test_a_transaction_still_cancelled_after_the_bound_is_a_loud_failure(
    stage: world.Stage, pauses: list[float]
) -> None:
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    conflict = faults.transaction_conflict(env.clients.get("dynamodb"))  # every attempt
    try:
        inv = world.invoke(env, "guardduty", seeded.event)
    finally:
        conflict.remove()
    assert conflict.calls == WRITE_ATTEMPTS
    assert len(pauses) == WRITE_ATTEMPTS - 1 and max(pauses) <= ledger_module._BACKOFF_CAP
    # raised, so Lambda retries the event; announced as failed, with the ledger named
    assert type(inv.error).__name__ == "ResponseFailed" and "ledger" in str(inv.error)
    (doc,) = _docs(env)
    assert doc["outcome"] == "failed"
    assert "TransactionConflict" in json.dumps(doc) and f"after {WRITE_ATTEMPTS} attempts" in json.dumps(doc)
    assert _history(env) == []
    # the containment itself holds: the ledger is written after every deny layer
    alice = world.iam_state()["user/alice"]
    assert alice["keys"][key] == "Inactive" and QUARANTINE_POLICY in alice["policies"]


def test_a_write_whose_answer_was_lost_is_in_the_history_once(stage: world.Stage, monkeypatch) -> None:
    """DynamoDB applied the transaction, the answer timed out, botocore sent it again: the entry's key is
    already there, which proves the whole transaction landed. Not a failure, and not a second entry."""
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    faults.Backoff().install(monkeypatch)
    lost = faults.LostAnswer(env.clients.get("dynamodb"), "TransactWriteItems")
    try:
        inv = world.invoke(env, "guardduty", seeded.event)
    finally:
        lost.remove()
    assert lost.calls == 1
    assert inv.error is None, repr(inv.error)
    (response,) = inv.result["responses"]
    assert response["outcome"] == "contained"
    assert _history(env) == [("contained", response["incident"])]
    assert [d["outcome"] for d in _docs(env)] == ["contained"]


def test_a_release_reads_again_when_a_containment_lands_between_its_read_and_its_write(
    stage: world.Stage, monkeypatch: pytest.MonkeyPatch, pauses: list[float]
) -> None:
    env = stage.fresh()
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    mine, theirs = _ledger(env), Ledger(env.ledger_table, boto3.session.Session().client("dynamodb"))
    common = {"kind": "user", "name": "carol", "actor": "test", "reason": "leak"}
    mine.contained(incident_id="i-1", at=at, keys=["AKIA1"], leaked_keys=["AKIA1"], **common)
    read = Ledger.principal
    landed: list[str] = []

    def read_then_a_containment_lands(self: Ledger, kind: str, name: str) -> Any:
        found = read(self, kind, name)
        if self is mine and not landed:  # once: between the release's first read and its write
            landed.append("i-2")
            theirs.contained(incident_id="i-2", at=at + timedelta(seconds=1), keys=["AKIA2"], **common)
        return found

    monkeypatch.setattr(Ledger, "principal", read_then_a_containment_lands)
    mine.released(kind="user", name="carol", at=at + timedelta(seconds=2), actor="test", reason="done")
    monkeypatch.undo()
    # both keys are released with their principal: none is left held by a release that did not see it
    assert mine.key("AKIA1").held is False and mine.key("AKIA2").held is False
    record = mine.principal("user", "carol")
    assert record.held is False and set(record.keys) == {"AKIA1", "AKIA2"}
    assert mine.retried == 1  # the condition on what it read failed once: it read again
    assert [e.event for e in mine.history(kind="user", name="carol")] == ["contained", "contained", "released"]


# ---------------------------------------------------------------------------- writers at once, for real


WRITERS = {
    # the actor and event each trigger writes (as respond and the tamper watch write them)
    "guardduty": ("keyguard/guardduty", "contained"),
    "health": ("keyguard/health", "contained"),
    "aws-quarantine": ("keyguard/aws-quarantine", "contained"),
    "trusted-advisor": ("keyguard/trusted-advisor", "contained"),
    "cloudtrail": ("keyguard/cloudtrail", "contained"),
    "tamper": ("keyguard tamper watch", "re-contained"),
    "manual": ("arn:aws:iam::123456789012:user/operator", "contained"),
}


def test_every_trigger_writing_one_principal_at_once_leaves_one_entry_each(stage: world.Stage) -> None:
    """Seven containers (each its own client, as Lambda's are) write dave's record at the same moment."""
    env = stage.fresh()
    at = datetime.now(UTC)
    barrier = threading.Barrier(len(WRITERS))
    errors: list[BaseException] = []
    serial = faults.SerialEmulator.install()
    before = serial.conflicts

    def write(n: int, trigger: str) -> None:
        actor, event = WRITERS[trigger]
        ledger = Ledger(env.ledger_table, boto3.session.Session().client("dynamodb"))
        barrier.wait()
        try:
            ledger.contained(
                incident_id=f"{trigger}:incident",
                kind="user",
                name="dave",
                at=at,
                actor=actor,
                reason=f"{trigger} named the key",
                keys=[f"AKIADAVE{n}"],
                leaked_keys=[f"AKIADAVE{n}"] if trigger != "cloudtrail" else [],
                layers=["deactivate-key", "quarantine-user"],
                event=event,
            )
        except BaseException as e:  # asserted below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n, t)) for n, t in enumerate(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    entries = _ledger(env).history(kind="user", name="dave")
    assert sorted((e.incident, e.event) for e in entries) == sorted(
        (f"{t}:incident", event) for t, (_, event) in WRITERS.items()
    )
    record = _ledger(env).principal("user", "dave")
    assert record.held and set(record.keys) == {f"AKIADAVE{n}" for n in range(len(WRITERS))}
    assert record.contained_at is not None
    # how often DynamoDB's conflict was met (timing decides; the injected tests above pin it down)
    print(f"{serial.conflicts - before} transaction conflicts met and retried")


def _trusted_advisor(key: str, user: str) -> dict[str, Any]:
    event = load_event("trustedadvisor-exposed-access-keys.json")
    event["detail"]["check-item-detail"].update({"Access Key ID": key, "User Name (IAM or Root)": user})
    return event


def _health(key: str) -> dict[str, Any]:
    event = load_event("health-iam-quarantine.json")
    event["detail"]["affectedEntities"] = [{"entityValue": key}]
    event["resources"] = [key]
    return event


def _aws_quarantine(user: str) -> dict[str, Any]:
    event = load_event("cloudtrail-aws-quarantine-v2.json")
    event["detail"]["requestParameters"]["userName"] = user
    return event


def _new_key(key: str, user: str) -> dict[str, Any]:
    event = load_event("cloudtrail-create-access-key.json")
    event["detail"]["requestParameters"]["userName"] = user
    event["detail"]["responseElements"]["accessKey"].update({"accessKeyId": key, "userName": user})
    event["time"] = event["detail"]["eventTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _manual(env: Any) -> Any:
    """`keyguard contain`'s engine call, from a session of its own (the operator's machine)."""
    from keyguard.operator.contain import manual_incident
    from keyguard.respond import respond

    session = boto3.session.Session()
    settings = world.settings_for(env)

    def contain(key: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        incident = manual_incident(
            key, world.ACCOUNT, world.REGION, "seen in a paste", "arn:aws:iam::123456789012:user/operator", now
        )
        ledger = Ledger(env.ledger_table, session.client("dynamodb"))
        r = respond(incident, settings, session.client("iam"), account=world.ACCOUNT, now=now, ledger=ledger)
        return {"responses": [{"incident": incident.incident_id, "outcome": r.outcome.value, "reason": r.reason}]}

    return contain


PAIRS = {
    "guardduty+aws-quarantine": lambda key, other: [("guardduty", None), ("aws-quarantine", _aws_quarantine("alice"))],
    "health+trusted-advisor": lambda key, other: [
        ("health", _health(key)),
        ("trusted-advisor", _trusted_advisor(key, "alice")),
    ],
    "guardduty+new-key": lambda key, other: [("guardduty", None), ("cloudtrail", _new_key(other, "alice"))],
    "guardduty+manual": lambda key, other: [("guardduty", None), ("manual", key)],
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_two_triggers_for_one_user_at_once_both_end_contained_with_one_history(stage: world.Stage, pair: str) -> None:
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    other = next(k for k in seeded.users["alice"] if k != key)
    jobs = []
    for trigger, event in PAIRS[pair](key, other):
        if trigger == "manual":
            jobs.append((_manual(env), trigger, event))
        else:
            jobs.append((_container(env), trigger, seeded.event if event is None else event))
    results = _at_once(jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    responses = [r["responses"][0] for r in results]
    assert [r["outcome"] for r in responses] == ["contained", "contained"], responses
    incidents = sorted(r["incident"] for r in responses)
    assert len(set(incidents)) == 2
    # one entry per containment, and the principal held
    assert sorted(i for _, i in _history(env)) == incidents
    assert {e for e, _ in _history(env)} == {"contained"}
    record = _ledger(env).principal("user", "alice")
    assert record.held and key in record.keys
    alice = world.iam_state()["user/alice"]
    assert alice["keys"][key] == "Inactive"
    assert QUARANTINE_POLICY in alice["policies"]
    # never a FAILED notice (the operator's contain announces through its own command, not here)
    assert {d["outcome"] for d in _docs(env)} == {"contained"}


def test_a_tag_mirror_that_loses_a_race_is_not_a_failed_containment(stage: world.Stage) -> None:
    """Two containments tag one user at once; IAM refuses one TagUser with ConcurrentModification (HTTP
    409). The tags only mirror the ledger for humans: the containment is contained, and says so."""
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    lost = faults.Fault(env.clients.iam, "TagUser", "ConcurrentModification", status=409)
    try:
        inv = world.invoke(env, "guardduty", seeded.event)
    finally:
        lost.remove()
    assert lost.calls >= 1
    assert inv.error is None, repr(inv.error)
    (response,) = inv.result["responses"]
    assert response["outcome"] == "contained"
    assert _history(env) == [("contained", response["incident"])]
    assert [d["outcome"] for d in _docs(env)] == ["contained"]
    assert world.iam_state()["user/alice"]["keys"][key] == "Inactive"
