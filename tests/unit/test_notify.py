"""keyguard.notify (SNS subject, body, JSON, attributes, dedup key) and the policy documents in actions."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from keyguard import notify
from keyguard.actions import (
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    ActionResult,
    Status,
    deny_all_policy,
    revoke_sessions_policy,
)
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source
from keyguard.plan import Outcome, plan_actions
from keyguard.respond import Response
from tests.conftest import incident_from

ACCOUNT = "123456789012"
AKIA = "AKIAIOSFODNN7EXAMPLE"
ASIA = "ASIAIOSFODNN7EXAMPLE"
NOW = datetime(2025, 3, 17, 9, 41, 27, tzinfo=UTC)

USER = replace(incident_from("guardduty-iam-user.json"), principal_id=None)
ROLE = replace(USER, key_id=ASIA, principal_type=PrincipalType.ASSUMED_ROLE, principal_name="web-app-role")
ROOT = replace(USER, principal_type=PrincipalType.ROOT, principal_name="Root")
HEALTH = replace(
    USER,
    source=Source.HEALTH,
    principal_type=PrincipalType.UNKNOWN,
    principal_name=None,
    severity=None,
    finding_type="AWS_RISK_CREDENTIALS_EXPOSED",
    source_id="arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/x",
    evidence=Evidence(first_seen="Sat, 15 Mar 2025 03:11:58 GMT"),
)
NEW_KEY = replace(
    USER,
    source=Source.CREATE_ACCESS_KEY,
    kind=Kind.NEW_KEY,
    principal_name="bob",
    severity=None,
    finding_type="CreateAccessKey",
    source_id="1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
    evidence=Evidence(source_ip="203.0.113.25", api="CreateAccessKey", service_name="iam"),
)

# The spec of every outcome: its headline (in subject and body) and its level (message attribute).
HEADLINE = {
    Outcome.CONTAINED: "CONTAINED",
    Outcome.SESSIONS_REVOKED: "SESSIONS REVOKED",
    Outcome.WOULD_CONTAIN: "DRY-RUN would contain",
    Outcome.FAILED: "FAILED to contain",
    Outcome.NOT_FOUND: "key not found",
    Outcome.BELOW_THRESHOLD: "low severity, notify only",
    Outcome.ROOT: "ROOT credentials, act now",
    Outcome.SAMPLE: "sample finding, wiring OK",
    Outcome.PROTECTED: "protected principal, not touched",
    Outcome.EXEMPT: "exempt user, not touched",
    Outcome.NOTIFY_ONLY: "notify only",
    Outcome.OTHER_ACCOUNT: "other account, not touched",
}
LEVEL = {
    Outcome.CONTAINED: "high",
    Outcome.SESSIONS_REVOKED: "high",
    Outcome.WOULD_CONTAIN: "high",
    Outcome.FAILED: "critical",
    Outcome.NOT_FOUND: "medium",
    Outcome.BELOW_THRESHOLD: "low",
    Outcome.ROOT: "critical",
    Outcome.SAMPLE: "info",
    Outcome.PROTECTED: "high",
    Outcome.EXEMPT: "low",
    Outcome.NOTIFY_ONLY: "medium",
    Outcome.OTHER_ACCOUNT: "medium",
}


def done(incident: Incident, owner: str) -> list[ActionResult]:
    return [ActionResult(a.name, a.target, Status.DONE) for a in plan_actions(incident, owner, NOW)]


def response_for(outcome: Outcome) -> Response:
    """A realistic Response for each outcome, as respond() would build it."""
    if outcome is Outcome.CONTAINED:
        return Response(USER, outcome, "Leaked access key: deactivated.", "alice", results=done(USER, "alice"), at=NOW)
    if outcome is Outcome.SESSIONS_REVOKED:
        return Response(
            ROLE, outcome, "Role sessions revoked.", "web-app-role", results=done(ROLE, "web-app-role"), at=NOW
        )
    if outcome is Outcome.WOULD_CONTAIN:
        results = [a.dry_run() for a in plan_actions(USER, "alice", NOW)]
        return Response(USER, outcome, "Dry-run: nothing was changed.", "alice", results=results, dry_run=True, at=NOW)
    if outcome is Outcome.FAILED:
        [deactivate, quarantine, *_rest] = plan_actions(USER, "alice", NOW)
        results = [
            ActionResult(deactivate.name, deactivate.target, Status.DONE),
            ActionResult(
                quarantine.name,
                quarantine.target,
                Status.FAILED,
                "AccessDenied: not authorized to perform iam:PutUserPolicy",
                "AccessDenied",
            ),
        ]
        return Response(USER, outcome, "Containment failed: quarantine-user.", "alice", results=results, at=NOW)
    if outcome is Outcome.NOT_FOUND:
        return Response(HEALTH, outcome, "Access key not found in this account.", at=NOW)
    if outcome is Outcome.ROOT:
        return Response(ROOT, outcome, "Root credentials: a human must act now.", at=NOW)
    if outcome is Outcome.SAMPLE:
        return Response(replace(USER, sample=True), outcome, "GuardDuty sample finding.", at=NOW)
    if outcome is Outcome.EXEMPT:
        return Response(NEW_KEY, outcome, "User bob is tagged keyguard:exempt=true.", "bob", at=NOW)
    if outcome is Outcome.BELOW_THRESHOLD:
        return Response(replace(USER, severity=2.0), outcome, "Severity 2 is below 4.", at=NOW)
    if outcome is Outcome.OTHER_ACCOUNT:
        return Response(replace(USER, account="210987654321"), outcome, "Another account.", at=NOW)
    if outcome is Outcome.PROTECTED:
        return Response(USER, outcome, "alice is a protected principal.", "alice", at=NOW)
    return Response(replace(USER, principal_type=PrincipalType.OTHER), outcome, "Not an IAM user or role.", at=NOW)


OUTCOMES = list(Outcome)


def test_the_tables_cover_every_outcome() -> None:
    assert set(HEADLINE) == set(Outcome)
    assert set(LEVEL) == set(Outcome)


def has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") or ch in "\u2028\u2029" for ch in text)


# ---- subject ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_subject_names_key_and_outcome(outcome: Outcome) -> None:
    r = response_for(outcome)
    s = notify.subject(r)
    assert len(s) <= notify.SUBJECT_MAX < 100  # SNS: less than 100 characters
    assert r.incident.key_id in s
    assert HEADLINE[outcome] in s
    assert not has_control_chars(s)


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize(
    "hostile",
    [
        "evil\nBcc: attacker@example.com",
        "evil\r\n\r\nFAKE BODY",
        "tab\there\x00nul\x1b[31mred\x7fdel",
        "line\u2028separator\u0085nel",
        "x" * 300,
        "\n" * 300,
    ],
    ids=["newline", "crlf", "c0-controls", "unicode-separators", "long", "only-newlines"],
)
@pytest.mark.parametrize("where", ["principal_name", "owner"])
def test_subject_survives_hostile_names(outcome: Outcome, hostile: str, where: str) -> None:
    r = response_for(outcome)
    if where == "owner":
        r = replace(r, owner=hostile)
    else:
        r = replace(r, owner=None, incident=replace(r.incident, principal_name=hostile))
    s = notify.subject(r)
    assert len(s) < 100
    assert not has_control_chars(s)
    assert r.incident.key_id in s
    assert HEADLINE[outcome] in s


def test_subject_exact_and_truncated() -> None:
    r = response_for(Outcome.CONTAINED)
    assert notify.subject(r) == f"keyguard: CONTAINED - {AKIA} (alice)"
    long = notify.subject(replace(r, owner="a" * 200))
    assert len(long) == notify.SUBJECT_MAX
    assert long.endswith("...")


def test_subject_without_any_owner() -> None:
    assert notify.subject(response_for(Outcome.NOT_FOUND)) == f"keyguard: key not found - {AKIA}"


def test_subject_prefers_verified_owner() -> None:
    r = replace(response_for(Outcome.CONTAINED), owner="bob")
    assert notify.subject(r).endswith("(bob)")


# ---- body ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_body_names_the_facts_and_every_action(outcome: Outcome) -> None:
    r = response_for(outcome)
    text = notify.body(r)
    assert text.startswith(f"{HEADLINE[outcome]}: {r.reason}")
    assert r.incident.key_id in text
    assert r.incident.account in text
    assert r.incident.incident_id in text
    assert (r.owner or r.incident.principal_name or "unknown") in text
    lines = text.splitlines()
    for result in r.results:
        assert f"  - {result.line()}" in lines
        assert result.status.value in result.line()
    if not r.results:
        assert "  - none (see above why)" in lines
    assert "What to do now:" in lines


def test_body_failed_action_shows_status_and_error() -> None:
    text = notify.body(response_for(Outcome.FAILED))
    assert (
        f"  - quarantine-user user alice (policy {QUARANTINE_POLICY}): failed"
        " (AccessDenied: not authorized to perform iam:PutUserPolicy)"
    ) in text.splitlines()
    assert f"  - deactivate-key {AKIA} of user alice: done" in text.splitlines()
    assert f"aws iam update-access-key --user-name alice --access-key-id {AKIA} --status Inactive" in text


def test_body_contained_user_has_the_release_command() -> None:
    text = notify.body(response_for(Outcome.CONTAINED))
    assert f"  - deactivate-key {AKIA} of user alice: done" in text.splitlines()
    assert f"  - quarantine-user user alice (policy {QUARANTINE_POLICY}): done" in text.splitlines()
    assert f"aws iam delete-user-policy --user-name alice --policy-name {QUARANTINE_POLICY}" in text
    assert f"aws iam delete-access-key --user-name alice --access-key-id {AKIA}" in text


def test_body_contained_new_key_has_the_release_commands() -> None:
    r = Response(NEW_KEY, Outcome.CONTAINED, "New long-lived access key.", "bob", results=done(NEW_KEY, "bob"), at=NOW)
    text = notify.body(r)
    assert f"  - revoke-user-sessions user bob (policy {REVOKE_SESSIONS_POLICY}): done" in text.splitlines()
    assert f"aws iam update-access-key --user-name bob --access-key-id {AKIA} --status Active" in text
    assert f"aws iam delete-user-policy --user-name bob --policy-name {REVOKE_SESSIONS_POLICY}" in text
    assert QUARANTINE_POLICY not in text


def test_body_sessions_revoked_has_the_release_command() -> None:
    text = notify.body(response_for(Outcome.SESSIONS_REVOKED))
    assert f"aws iam delete-role-policy --role-name web-app-role --policy-name {REVOKE_SESSIONS_POLICY}" in text


def test_body_dry_run_says_nothing_changed() -> None:
    text = notify.body(response_for(Outcome.WOULD_CONTAIN))
    assert "dry-run mode" in text
    assert f"  - deactivate-key {AKIA} of user alice: dry-run (would do; nothing changed)" in text.splitlines()


def test_body_owner_forms() -> None:
    contained = notify.body(response_for(Outcome.CONTAINED))
    assert "alice (IAM user)" in contained
    role = notify.body(response_for(Outcome.SESSIONS_REVOKED))
    assert "web-app-role (role)" in role
    unverified = notify.body(response_for(Outcome.ROOT))
    assert "Root (Root, as the event says; not verified)" in unverified
    unknown = notify.body(response_for(Outcome.NOT_FOUND))
    assert "unknown (Unknown)" in unknown
    noted = replace(response_for(Outcome.CONTAINED), owner="bob", owner_note="the event named user 'alice'")
    assert "bob (IAM user); NOTE: the event named user 'alice'" in notify.body(noted)


def test_body_evidence_and_severity() -> None:
    text = notify.body(response_for(Outcome.CONTAINED))
    assert "198.51.100.23 (EXAMPLE-TRANSIT-AS, AS64496, Netherlands)" in text
    assert "s3.amazonaws.com:ListBuckets" in text
    assert "API ListBuckets was invoked from a Tor exit node IP address." in text
    lines = text.splitlines()
    assert any(line.startswith("Severity") and line.endswith(": 5") for line in lines)
    assert any(
        line.startswith("Severity") and line.endswith(": -")
        for line in notify.body(response_for(Outcome.NOT_FOUND)).splitlines()
    )


# ---- message ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_message_structure(outcome: Outcome) -> None:
    r = response_for(outcome)
    m = notify.message(r)
    assert set(m) == {"Subject", "MessageStructure", "Message", "MessageAttributes"}
    assert m["Subject"] == notify.subject(r)
    assert m["MessageStructure"] == "json"
    assert len(m["Message"].encode()) <= 256 * 1024
    per_protocol = json.loads(m["Message"])
    assert per_protocol["default"] == notify.body(r)
    assert all(isinstance(v, str) for v in per_protocol.values())  # SNS: every value a string
    for protocol in ("sqs", "lambda", "email-json", "http", "https"):
        doc = json.loads(per_protocol[protocol])
        assert doc == notify.document(r)
    doc = json.loads(per_protocol["sqs"])
    assert doc["outcome"] == outcome.value
    assert doc["accessKeyId"] == r.incident.key_id
    assert doc["incidentId"] == r.incident.incident_id
    assert doc["account"] == r.incident.account
    assert doc["source"] == r.incident.source.value
    assert doc["level"] == LEVEL[outcome]
    assert doc["at"] == "2025-03-17T09:41:27Z"
    assert doc["actions"] == [
        {"action": a.action, "target": a.target, "status": a.status.value, "detail": a.detail or None}
        for a in r.results
    ]


def test_message_sqs_actions_exact_for_failure() -> None:
    doc = json.loads(json.loads(notify.message(response_for(Outcome.FAILED))["Message"])["sqs"])
    assert doc["actions"] == [
        {"action": "deactivate-key", "target": f"{AKIA} of user alice", "status": "done", "detail": None},
        {
            "action": "quarantine-user",
            "target": f"user alice (policy {QUARANTINE_POLICY})",
            "status": "failed",
            "detail": "AccessDenied: not authorized to perform iam:PutUserPolicy",
        },
    ]
    assert doc["principal"] == {"type": "IAMUser", "named": "alice", "verifiedOwner": "alice"}
    assert doc["evidence"]["source_ip"] == "198.51.100.23"
    assert "user_agent" not in doc["evidence"]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_message_attributes(outcome: Outcome) -> None:
    r = response_for(outcome)
    assert notify.message(r)["MessageAttributes"] == {
        "source": {"DataType": "String", "StringValue": r.incident.source.value},
        "severity": {"DataType": "String", "StringValue": LEVEL[outcome]},
        "outcome": {"DataType": "String", "StringValue": outcome.value},
    }
    assert notify.level(r) == LEVEL[outcome]


@pytest.mark.parametrize(
    ("incident", "source"),
    [(USER, "guardduty"), (HEALTH, "health"), (NEW_KEY, "create-access-key")],
)
def test_message_attribute_source_per_trigger(incident: Incident, source: str) -> None:
    r = Response(incident, Outcome.NOTIFY_ONLY, "x", at=NOW)
    assert notify.message(r)["MessageAttributes"]["source"]["StringValue"] == source


# ---- dedup key ----------------------------------------------------------------------------------


def test_dedup_key_stable_for_same_incident_and_outcome() -> None:
    first = response_for(Outcome.CONTAINED)
    again = replace(
        first,
        at=NOW + timedelta(hours=6),
        reason="said differently",
        incident=replace(first.incident, event_id="another-envelope-id", severity=8.0),
    )
    assert notify.dedup_key(first) == notify.dedup_key(again)
    assert len(notify.dedup_key(first)) == 64
    int(notify.dedup_key(first), 16)


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.CONTAINED])
def test_dedup_key_differs_for_another_outcome(outcome: Outcome) -> None:
    first = response_for(Outcome.CONTAINED)
    assert notify.dedup_key(first) != notify.dedup_key(replace(first, outcome=outcome))


@pytest.mark.parametrize(
    "change",
    [
        {"key_id": "AKIAI44QH8DHBEXAMPLE"},
        {"source_id": "another-finding"},
        {"source": Source.HEALTH},
    ],
    ids=["other-key", "other-finding", "other-source"],
)
def test_dedup_key_differs_for_another_incident(change: dict[str, object]) -> None:
    first = response_for(Outcome.CONTAINED)
    other = replace(first, incident=replace(first.incident, **change))
    assert notify.dedup_key(first) != notify.dedup_key(other)


# ---- policy documents ---------------------------------------------------------------------------


def test_deny_all_policy_exact() -> None:
    assert deny_all_policy() == {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KeyguardQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    assert deny_all_policy() is not deny_all_policy()  # callers cannot corrupt a shared document


def revoke_doc(stamp: str) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KeyguardRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": stamp}},
            }
        ],
    }


@pytest.mark.parametrize(
    ("before", "stamp"),
    [
        (NOW, "2025-03-17T09:41:27Z"),
        (datetime(2025, 3, 17, 9, 41, 27, 999999, tzinfo=UTC), "2025-03-17T09:41:27Z"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), "2025-12-31T23:59:59Z"),
        # An aware time in another zone must be written in UTC: the Z says so.
        (datetime(2025, 3, 17, 11, 41, 27, tzinfo=timezone(timedelta(hours=2))), "2025-03-17T09:41:27Z"),
        (datetime(2025, 3, 17, 4, 41, 27, tzinfo=timezone(timedelta(hours=-5))), "2025-03-17T09:41:27Z"),
    ],
    ids=["utc", "microseconds-dropped", "zero-padded", "end-of-year", "plus-two-hours", "minus-five-hours"],
)
def test_revoke_sessions_policy_exact(before: datetime, stamp: str) -> None:
    doc = revoke_sessions_policy(before)
    assert doc == revoke_doc(stamp)
    assert json.loads(json.dumps(doc)) == doc


def test_document_time_is_utc() -> None:
    r = replace(
        response_for(Outcome.CONTAINED), at=datetime(2025, 3, 17, 11, 41, 27, tzinfo=timezone(timedelta(hours=2)))
    )
    assert notify.document(r)["at"] == "2025-03-17T09:41:27Z"
