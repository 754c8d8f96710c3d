"""GuardDuty Extended Threat Detection (`AttackSequence:IAM/...`): the finding through template.yaml's rules to
the GuardDuty function; each actor's credential is contained as a GuardDuty IAM finding on it would be, and
the actors keyguard cannot prove to be this account's principals reach a human in one notice, with reasons."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from keyguard.errors import MalformedEvent
from keyguard.ledger import Ledger
from keyguard.sources import guardduty
from tests.conftest import deliver, inbox, load_event

IAM_USER = "guardduty-attack-sequence-iam.json"
MIXED = "guardduty-attack-sequence-iam-unprovable.json"
FINDING_TYPE = "AttackSequence:IAM/CompromisedCredentials"


def _actors(event: dict[str, Any]) -> list[dict[str, Any]]:
    return event["detail"]["service"]["detection"]["sequence"]["actors"]


def test_an_iam_user_actor_is_contained_as_a_guardduty_iam_finding_would_be(account) -> None:
    seeded, invocations = deliver(account, load_event(IAM_USER))
    assert [i.rule.function for i in invocations] == ["GuardDutyFunction"]
    assert invocations[0].error is None
    (key,) = seeded.replaced.values()
    assert _actors(seeded.event)[0]["user"]["credentialUid"] == key

    iam = account.clients.iam
    state = account.iam_state(seeded)["user/alice"]
    assert state["keys"][key] == "Inactive"
    assert [s for k, s in state["keys"].items() if k != key] == ["Active"]  # only the named key
    assert state["policies"] == ["keyguard-quarantine"]
    (statement,) = iam.get_user_policy(UserName="alice", PolicyName="keyguard-quarantine")["PolicyDocument"][
        "Statement"
    ]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "*", "*")
    boundary = iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
    assert boundary == account.deny_all_policy_arn
    bystander = account.iam_state(seeded)["user/bystander-dana"]
    assert set(bystander["keys"].values()) == {"Active"} and bystander["policies"] == []

    finding_id = seeded.event["detail"]["id"]
    ledger = Ledger(account.ledger_table, account.clients.get("dynamodb"))
    held = ledger.principal("user", "alice")
    assert held is not None and held.held and held.incident == f"guardduty:{finding_id}:{key}"
    record = ledger.key(key)
    assert record is not None and record.leaked and record.user == "alice"

    (doc,) = inbox(account)
    assert (doc["outcome"], doc["accessKeyId"], doc["source"]) == ("contained", key, "guardduty")
    assert doc["findingType"] == FINDING_TYPE and doc["principal"]["verifiedOwner"] == "alice"
    assert key in doc["_subject"]


def test_actors_that_cannot_be_proven_go_to_a_human_in_one_notice_with_the_reasons(account) -> None:
    seeded, invocations = deliver(account, load_event(MIXED))
    assert [i.rule.function for i in invocations] == ["GuardDutyFunction"]
    assert invocations[0].error is None
    state = account.iam_state(seeded)
    (bob_key,) = seeded.replaced.values()
    assert state["user/bob"]["keys"][bob_key] == "Inactive"
    assert sorted(state["user/bob"]["keys"].values()) == ["Active", "Inactive"]
    assert state["user/bob"]["policies"] == ["keyguard-quarantine"]
    assert state["role/web-app-role"]["policies"] == ["keyguard-revoke-sessions"]  # the role path
    assert set(state["user/bystander-dana"]["keys"].values()) == {"Active"}

    docs = {d["outcome"]: d for d in inbox(account)}
    assert sorted(docs) == ["contained", "notify-only", "sessions-revoked"]  # one notice per incident
    human = docs["notify-only"]
    assert human["accessKeyId"] == "" and human["actions"] == []
    reason = human["reason"]
    assert "3 credential(s)" in reason
    assert "actor 3 (Root Root): no access key id named" in reason
    assert "actor 4 (IAMUser carol AKIAIOSFODNN7EXAMPLE): the activity was in account 444455556666" in reason
    assert "actor 5 (IdentityCenterUser" in reason and "is not an IAM user or role" in reason
    assert docs["sessions-revoked"]["principal"]["named"] == "web-app-role"
    (text,) = [
        json.loads(m["Message"])["default"]
        for m in invocations[0].published
        if json.loads(json.loads(m["Message"])["sqs"])["outcome"] == "notify-only"
    ]
    assert "Access key : none acted on (the credentials named are listed above, with why)" in text


def test_a_redelivered_sequence_is_contained_and_announced_once(account) -> None:
    seeded, _ = deliver(account, load_event(IAM_USER))
    _, again = deliver(account, seeded.event, seed=False)
    assert again[0].error is None
    assert [d["outcome"] for d in inbox(account)] == ["contained"]


def test_below_the_severity_threshold_nothing_is_changed(account) -> None:
    event = load_event(IAM_USER)
    event["detail"]["severity"] = 2
    seeded, _ = deliver(account, event)
    assert set(account.iam_state(seeded)["user/alice"]["keys"].values()) == {"Active"}
    assert [d["outcome"] for d in inbox(account)] == ["below-threshold"]


def test_a_sample_sequence_says_the_wiring_works_and_changes_nothing(account) -> None:
    event = load_event(IAM_USER)
    event["detail"]["service"]["additionalInfo"] = {"sample": True}
    _actors(event)[0]["user"].update(name="GeneratedFindingUserName", credentialUid="GeneratedFindingAccessKeyId")
    seeded, _ = deliver(account, event)
    assert "user/alice" not in account.iam_state(seeded)
    assert [d["outcome"] for d in inbox(account)] == ["sample-finding"]


def test_a_new_set_of_unproven_actors_is_a_new_incident_the_same_set_is_not() -> None:
    event = load_event(MIXED)
    first = guardduty.extract(event)[-1].incident_id
    assert guardduty.extract(copy.deepcopy(event))[-1].incident_id == first
    _actors(event).append({"id": "x", "user": {"name": "eve", "type": "IAMUser", "uid": "AIDAEXAMPLEEXAMPLE12"}})
    assert guardduty.extract(event)[-1].incident_id != first


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["service"]["detection"]["sequence"].update(actors=[{"id": "a"}] * 401),
        lambda d: d["service"]["detection"]["sequence"].update(actors="alice"),
        lambda d: d["service"].pop("detection"),
        lambda d: d["service"]["detection"]["sequence"].update(actors=[]),
        lambda d: d.update(severity="9"),
    ],
)
def test_a_malformed_sequence_is_refused_before_anything_is_done(change) -> None:
    event = load_event(IAM_USER)
    change(event["detail"])
    with pytest.raises(MalformedEvent):
        guardduty.extract(event)


def test_a_role_name_iam_would_not_accept_is_not_acted_on() -> None:
    event = load_event(MIXED)
    _actors(event)[1]["user"]["name"] = "web-app-role/i-0123456789abcdef0"
    incidents = guardduty.extract(event)
    assert [i.principal_name for i in incidents if i.key_id] == ["bob"]
    assert "is not an IAM role name" in (incidents[-1].not_evidence or "")
