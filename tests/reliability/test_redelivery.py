"""Redelivery and concurrency, against moto.

- EventBridge and Lambda deliver at least once: the same event three times must leave one containment
  (the same IAM state as after the first delivery) and one notification.
- Two containers handling events for the same key at the same moment (threads, each with its own clients
  and runtime, against one emulated account) must leave one consistent quarantine, and both incidents must
  be announced.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, deny_all_policy
from tests.conftest import load_event
from tests.reliability import world


@pytest.fixture(scope="module")
def stage():
    s = world.Stage()
    yield s
    s.close()


def _seed(stage: world.Stage, name: str) -> tuple[Any, Any]:
    from keyguard.local import emulator

    stage.clear_iam()
    env = stage.fresh()
    seeded = emulator.seed(env.clients.iam, load_event(name))
    env.delivered()
    return env, seeded


def _docs(env: Any) -> list[dict[str, Any]]:
    return [json.loads(m["Message"]) for m in env.delivered()]


SCENARIOS = {
    "guardduty-iam-user.json": ("guardduty", "contained"),
    "guardduty-assumed-role-exfiltration.json": ("guardduty", "sessions-revoked"),
    "health-iam-quarantine.json": ("health", "contained"),
    "cloudtrail-create-access-key.json": ("cloudtrail", "contained"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_event_three_times_is_one_containment_and_one_notification(stage: world.Stage, name: str) -> None:
    trigger, outcome = SCENARIOS[name]
    env, seeded = _seed(stage, name)
    # as delivered now: a fresh event (one replayed late from the DLQ is handled as new: role_cutoff)
    seeded.event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    states, notices = [], []
    for n in range(3):
        if n:
            # Redeliveries come later (Lambda retries after a minute or more; GuardDuty re-emits a finding
            # every few hours): a second on the clock is enough to show state that moves with it.
            time.sleep(1.05)
        inv = world.invoke(env, trigger, seeded.event)
        assert inv.error is None, repr(inv.error)
        notices += [r["notification"] for r in inv.result["responses"]]
        states.append(world.iam_state())
    docs = _docs(env)
    assert [d["outcome"] for d in docs] == [outcome] * len(inv.result["responses"])
    assert notices.count("sent") == len(docs) and set(notices) <= {"sent", "duplicate"}

    first = states[0]
    named = set(seeded.replaced.values())
    assert any(s.get("keys", {}).get(k) == "Inactive" for s in first.values() for k in named) or not named
    for later in states[1:]:
        for principal, state in first.items():
            # access: keys and the deny policies (their documents included, e.g. a revocation's cut-off)
            assert later[principal].get("keys") == state.get("keys"), principal
            assert later[principal]["policies"] == state["policies"], (
                f"{principal}: the redelivered event changed the containment policy "
                f"{_cutoffs(state)} -> {_cutoffs(later[principal])}"
            )
            # the record: the same incident and reason
            for tag in ("keyguard:incident", "keyguard:reason"):
                assert later[principal]["tags"].get(tag) == state["tags"].get(tag), (principal, tag)


def _cutoffs(state: dict[str, Any]) -> list[str]:
    doc = state["policies"].get(REVOKE_SESSIONS_POLICY)
    return [s["Condition"]["DateLessThan"]["aws:TokenIssueTime"] for s in doc["Statement"]] if doc else []


def _container(env: Any) -> Any:
    """A Lambda container of its own: a runtime and clients from a new boto3 session (same account)."""
    from keyguard.app import Runtime
    from keyguard.aws import Clients

    return Runtime(settings=world.settings_for(env), clients=Clients(session=boto3.session.Session()))


def _at_once(jobs: list[tuple[Any, str, Any]]) -> list[Any]:
    """Run (runtime, trigger, event) jobs in threads released together; return results or exceptions. A
    runtime may also be a callable of the event (a manual contain, the tamper watch's handler)."""
    from keyguard.sources import aws_quarantine, cloudtrail, guardduty, health, trusted_advisor

    extract = {
        "guardduty": guardduty.extract,
        "health": health.extract,
        "cloudtrail": cloudtrail.extract,
        "aws-quarantine": aws_quarantine.extract,
        "trusted-advisor": trusted_advisor.extract,
    }
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, runtime: Any, trigger: str, event: Any) -> None:
        barrier.wait()
        try:
            if callable(runtime):
                results[i] = runtime(event)
            else:
                results[i] = runtime.handle(event, world.context_for(trigger), extract[trigger])
        except Exception as e:  # asserted below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_two_events_for_one_key_at_once_leave_one_quarantine_and_both_are_announced(stage: world.Stage) -> None:
    """A GuardDuty finding and an AWS Health event name the same key of alice's at the same moment."""
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    other = next(k for k in seeded.users["alice"] if k != key)
    health = load_event("health-iam-quarantine.json")
    health["detail"]["affectedEntities"] = [{"entityValue": key}]
    health["resources"] = [key]
    before = world.iam_state()

    results = _at_once([(_container(env), "guardduty", seeded.event), (_container(env), "health", health)])
    assert not [r for r in results if isinstance(r, Exception)], results

    after = world.iam_state()
    alice = after["user/alice"]
    assert alice["keys"] == {key: "Inactive", other: "Active"}
    assert alice["policies"] == {QUARANTINE_POLICY: deny_all_policy()}
    incidents = {r["responses"][0]["incident"] for r in results}
    assert len(incidents) == 2
    # the record on the user is one incident's, whole: never half of one and half of the other
    assert alice["tags"]["keyguard:incident"] in incidents
    assert alice["tags"][f"keyguard:leaked:{key}"]
    assert key in alice["tags"]["keyguard:reason"]
    assert set(world.changes(before, after)) == {"user/alice"}
    docs = _docs(env)
    assert sorted(d["incidentId"] for d in docs) == sorted(incidents)
    assert {d["outcome"] for d in docs} == {"contained"}


def test_the_same_event_twice_at_once_is_announced_once(stage: world.Stage) -> None:
    """EventBridge may deliver one event to two containers at once: one announces, the other sees the
    announcement in progress and stays quiet; both contain."""
    env, seeded = _seed(stage, "guardduty-iam-user.json")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    results = _at_once([(_container(env), "guardduty", seeded.event), (_container(env), "guardduty", seeded.event)])
    assert not [r for r in results if isinstance(r, Exception)], results
    notices = sorted(r["responses"][0]["notification"] for r in results)
    assert notices == ["duplicate", "sent"]
    assert [d["outcome"] for d in _docs(env)] == ["contained"]
    assert world.iam_state()["user/alice"]["keys"][key] == "Inactive"
