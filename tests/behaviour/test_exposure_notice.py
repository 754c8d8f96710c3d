"""The Health and Trusted Advisor notices tell the owner what to scrub and by when: where AWS found the key
(defanged, printable, never a link in the text, the JSON document or chat) and AWS's Support case with the
date to reply by. And two things that must stay true: a backup copy of the global Health event is answered
once, and AWS's quarantine policy is matched by prefix (`AWSCompromisedKeyQuarantineV4` included)."""

from __future__ import annotations

import copy
import json
from typing import Any

from keyguard import notify
from keyguard.ledger import Ledger
from keyguard.plan import Outcome
from keyguard.report import chat
from keyguard.respond import Response
from keyguard.sources import health
from tests.behaviour.test_more_signals import _chat_inbox
from tests.conftest import deliver, inbox, load_event

HEALTH = "health-credentials-exposed.json"
TRUSTED_ADVISOR = "trustedadvisor-exposed-access-keys.json"
PLACE = "hxxps://github[.]com/example/example-repo/blob/main/deploy[.]env"
LINKS = ("http://", "https://", "github.com", "deploy.env", "www.")
HIDDEN = ("\u202e", "\u200b", "\u2066", "\x1b", "\r")


def _text(invocation: Any) -> str:
    """The e-mail / default text of the topic message the handler published."""
    (msg,) = [m for m in invocation.published if "Subject" in m]
    return json.loads(msg["Message"])["default"]


def test_the_health_notice_shows_where_the_key_leaked_and_when_to_answer_aws(account, monkeypatch) -> None:
    topic, read_chat = _chat_inbox(account)
    monkeypatch.setenv("KEYGUARD_CHAT_TOPIC_ARN", topic)
    seeded, (inv,) = deliver(account, load_event(HEALTH))
    assert inv.rule.function == "HealthFunction" and inv.error is None
    (key,) = seeded.replaced.values()
    (owner,) = [u for u, keys in seeded.users.items() if key in keys]
    assert account.iam_state(seeded)[f"user/{owner}"]["keys"][key] == "Inactive"
    record = Ledger(account.ledger_table, account.clients.get("dynamodb")).key(key)
    assert record is not None and record.leaked and record.held

    (doc,) = inbox(account)
    assert doc["outcome"] == "contained"
    # startTime "Sat, 15 Mar 2025 03:11:58 GMT" + 4 days
    assert doc["evidence"]["exposed_at"] == PLACE and doc["evidence"]["reply_by"] == "2025-03-19"
    text = _text(inv)
    assert f"Exposed at   : {PLACE}" in text
    assert "Support case : AWS opened one (AWS Support Center); reply by 2025-03-19" in text
    assert "Reply to AWS's Support case about this key (AWS Support Center) by 2025-03-19" in text
    assert f"Remove the key from where AWS found it: {PLACE}" in text
    (message,) = read_chat()
    described = message["content"]["description"]
    assert "reply by 2025-03-19" in described and "github" in described
    for shown in (text, json.dumps(doc), json.dumps(message, ensure_ascii=False)):
        assert not [bad for bad in LINKS if bad in shown]


def test_a_hostile_exposed_url_is_printable_text_everywhere() -> None:
    event = load_event(HEALTH)
    event["detail"]["eventMetadata"]["exposedUrl"] = (
        "HTTPS://evil.example/\u202egpj.exe\u200b?next=http://www.phish.example\n<!channel> [x](https://e.x)\x1b[31m"
    )
    (incident,) = health.extract(event)
    response = Response(incident, Outcome.CONTAINED, reason="Leaked access key: deactivated.", owner="bob")
    shown = [
        notify.body(response),
        json.dumps(notify.document(response), ensure_ascii=False),
        json.dumps(chat.message(response, level="high"), ensure_ascii=False),
    ]
    for text in shown:
        assert not [bad for bad in (*LINKS, "HTTPS://", *HIDDEN) if bad in text], text
    expected = "hxxps://evil[.]example/gpj[.]exe?next=hxxp[://]www[.]phish[.]example <!channel>"
    assert incident.evidence.exposed_at.startswith(expected)


def test_the_place_is_shown_only_for_the_key_aws_found_there() -> None:
    event = load_event(HEALTH)
    other = "AKIAIOSFODNN7EXAMPLE"
    event["detail"]["affectedEntities"].append({"entityValue": other})
    by_key = {i.key_id: i.evidence for i in health.extract(event)}
    assert by_key["AKIAI44QH8DHBEXAMPLE"].exposed_at == PLACE  # eventMetadata.publicKey
    assert by_key[other].exposed_at is None and by_key[other].reply_by == "2025-03-19"


def test_aws_s_quarantine_event_claims_no_support_case() -> None:
    for incident in health.extract(load_event("health-iam-quarantine.json")):
        assert incident.evidence.reply_by is None and incident.evidence.exposed_at is None


def test_the_trusted_advisor_notice_names_the_case_the_deadline_and_the_place_defanged(account) -> None:
    seeded, (inv,) = deliver(account, load_event(TRUSTED_ADVISOR))
    assert inv.rule.function == "TrustedAdvisorFunction" and inv.error is None
    (key,) = seeded.replaced.values()
    assert account.iam_state(seeded)["user/bob"]["keys"][key] == "Inactive"
    (doc,) = inbox(account)
    place = "hxxps://github[.]com/example-org/example-repo/blob/main/config[.]env"
    case = "02648f3b-e19d-4c96-9cd5-ba3c8cf3e9d8"
    # Deadline "1742310000000" (epoch milliseconds) is 2025-03-18T15:00:00Z
    shown = {k: doc["evidence"].get(k) for k in ("exposed_at", "support_case", "reply_by")}
    assert shown == {"exposed_at": place, "support_case": case, "reply_by": "2025-03-18"}
    text = _text(inv)
    assert f"Reply to AWS Support case {case} (AWS Support Center) by 2025-03-18" in text
    assert not [bad for bad in LINKS if bad in text + json.dumps(doc)]


def test_a_backup_copy_of_the_global_health_event_is_answered_once(account) -> None:
    """AWS Health delivers a global event's copy to a backup region too: same event ARN, another envelope."""
    seeded, _ = deliver(account, load_event("health-iam-quarantine.json"))
    copy_ = copy.deepcopy(seeded.event)
    copy_.update(id="5f0e1d2c-3b4a-4968-8776-655443322110", region="us-west-2")
    _, (again,) = deliver(account, copy_, seed=False)
    assert again.error is None
    named = set(seeded.replaced.values())
    assert sorted(d["accessKeyId"] for d in inbox(account)) == sorted(named)  # one notice per key, not two
    state = account.iam_state(seeded)
    assert all(state[f"user/{u}"]["keys"][k] == "Inactive" for u, ks in seeded.users.items() for k in ks if k in named)


def test_aws_quarantine_v4_is_matched_by_prefix_and_contained(account) -> None:
    event = copy.deepcopy(load_event("cloudtrail-aws-quarantine-v2.json"))
    request = event["detail"]["requestParameters"]
    request["policyArn"] = request["policyArn"].replace("QuarantineV2", "QuarantineV4")
    assert request["policyArn"] == "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV4"
    seeded, (inv,) = deliver(account, event)
    assert inv.rule.function == "AwsQuarantineFunction" and inv.error is None
    assert account.iam_state(seeded)["user/alice"]["policies"] == ["keyguard-quarantine"]
    (doc,) = inbox(account)
    assert doc["outcome"] == "contained" and doc["findingType"] == "AttachUserPolicy AWSCompromisedKeyQuarantineV4"
