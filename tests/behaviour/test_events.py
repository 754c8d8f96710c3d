"""Every events/ file through the template's rules and the handlers, against moto: IAM state and the
notification on the topic are what the trigger x response table promises."""

from __future__ import annotations

import pytest

from tests.conftest import deliver, inbox, load_event

# file -> (function, outcome, named key after, policies added to the owner)
TABLE = {
    "guardduty-iam-user.json": ("GuardDutyFunction", "contained", "Inactive", ["keyguard-quarantine"]),
    "guardduty-low-severity.json": ("GuardDutyFunction", "below-threshold", "Active", []),
    "guardduty-root.json": ("GuardDutyFunction", "root-credentials", None, []),
    "guardduty-sample.json": ("GuardDutyFunction", "sample-finding", None, []),
    "guardduty-assumed-role-exfiltration.json": ("GuardDutyFunction", "sessions-revoked", None, []),
    "health-credentials-exposed.json": ("HealthFunction", "contained", "Inactive", ["keyguard-quarantine"]),
    "health-iam-quarantine.json": ("HealthFunction", "contained", "Inactive", ["keyguard-quarantine"]),
    "cloudtrail-create-access-key.json": (
        "AccessKeyCreatedFunction",
        "contained",
        "Inactive",
        ["keyguard-revoke-sessions"],
    ),
    # issue 12: AWS's quarantine (the old inline form names the key that signed it; by anyone else: notify
    # only), Trusted Advisor, GuardDuty findings on S3 buckets
    "cloudtrail-aws-quarantine-inline.json": (
        "AwsQuarantineFunction",
        "contained",
        "Inactive",
        ["keyguard-quarantine"],
    ),
    "cloudtrail-aws-quarantine-by-admin.json": ("AwsQuarantineFunction", "notify-only", None, []),
    "trustedadvisor-exposed-access-keys.json": (
        "TrustedAdvisorFunction",
        "contained",
        "Inactive",
        ["keyguard-quarantine"],
    ),
    "guardduty-s3-malicious-ip.json": ("GuardDutyFunction", "contained", "Inactive", ["keyguard-quarantine"]),
    "guardduty-s3-policy-anonymous-access.json": ("GuardDutyFunction", "notify-only", "Active", []),
    # without CloudTrail's record of the session's calls the issuer is unknown (tests/behaviour/test_federated.py)
    "guardduty-federated-user.json": ("GuardDutyFunction", "notify-only", None, []),
    # GuardDuty Extended Threat Detection: the sequence actor's key (tests/behaviour/test_attack_sequence.py)
    "guardduty-attack-sequence-iam.json": ("GuardDutyFunction", "contained", "Inactive", ["keyguard-quarantine"]),
}


def test_every_event_file_is_in_the_table() -> None:
    from tests.conftest import EVENTS

    names = {p.name for p in EVENTS.glob("*.json") if not p.name.startswith("tamper-")}  # test_tamper_watch.py
    # the user-only quarantine (no key named) is asserted in tests/behaviour/test_more_signals.py
    # an attack sequence with actors keyguard cannot prove: tests/behaviour/test_attack_sequence.py
    others = {"cloudtrail-create-access-key-failed.json", "cloudtrail-aws-quarantine-v2.json"}
    assert names == set(TABLE) | others | {"guardduty-attack-sequence-iam-unprovable.json"}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_event_file_gets_its_response(account, name: str) -> None:
    function, outcome, key_after, policies = TABLE[name]
    seeded, invocations = deliver(account, load_event(name))
    assert [i.rule.function for i in invocations] == [function]
    assert invocations[0].error is None
    state = account.iam_state(seeded)

    named = set(seeded.replaced.values())
    for user, keys in seeded.users.items():
        for key in keys:
            expected = key_after if key in named else "Active"  # other keys and bystanders untouched
            assert state[f"user/{user}"]["keys"][key] == expected, (user, key)
        owns_named = any(k in named for k in keys)
        assert state[f"user/{user}"]["policies"] == (policies if owns_named and key_after else []), user

    docs = inbox(account)
    assert [d["outcome"] for d in docs] == [outcome] * max(1, len(named))
    for doc in docs:
        assert doc["_attributes"]["outcome"]["Value"] == outcome
        assert len(doc["_subject"]) < 100
        if named:
            assert doc["accessKeyId"] in named
            assert doc["accessKeyId"] in doc["_subject"]


def test_role_credentials_revoke_the_role_sessions(account) -> None:
    seeded, _ = deliver(account, load_event("guardduty-assumed-role-exfiltration.json"))
    assert account.iam_state(seeded)["role/web-app-role"]["policies"] == ["keyguard-revoke-sessions"]
    doc = account.clients.iam.get_role_policy(RoleName="web-app-role", PolicyName="keyguard-revoke-sessions")[
        "PolicyDocument"
    ]
    (statement,) = doc["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    assert list(statement["Condition"]["DateLessThan"]) == ["aws:TokenIssueTime"]


def test_failed_create_access_key_matches_no_rule(account) -> None:
    _, invocations = deliver(account, load_event("cloudtrail-create-access-key-failed.json"))
    assert invocations == []
    assert inbox(account) == []
