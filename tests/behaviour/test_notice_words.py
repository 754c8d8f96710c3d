"""Issue 13, items 1-6: the words a person reads at 3 a.m. give the right next step, for the principal
the notice is about, in the mode the stack runs in. Each event goes through the template's rules into
the emulated account; the text asserted is the one that reached the topic's subscriber."""

from __future__ import annotations

import re

from tests.conftest import deliver, deliver_and_investigate, load_event


def _texts(invocations) -> list[tuple[str, str]]:
    """(subject, text body) of what each handler published, in order."""
    import json

    return [(m["Subject"], json.loads(m["Message"])["default"]) for inv in invocations for m in inv.published]


def _steps(text: str) -> str:
    return text.split("What to do now:", 1)[1]


def test_dry_run_role_notice_gives_role_commands(account) -> None:
    """Item 1: an assumed-role finding in dry-run never suggests user commands or deleting an ASIA key."""
    _, invocations = deliver(account, load_event("guardduty-assumed-role-exfiltration.json"), mode="dry-run")
    ((_subject, text),) = _texts(invocations)
    steps = _steps(text)
    assert "--user-name web-app-role" not in text
    assert "delete-access-key" not in text and "delete-user-policy" not in text
    assert "role web-app-role STILL WORK" in steps
    assert "--role-name web-app-role" in steps


def test_enforced_role_notice_releases_with_keyguard_release(account) -> None:
    _, invocations = deliver(account, load_event("guardduty-assumed-role-exfiltration.json"))
    ((_, text),) = _texts(invocations)
    steps = _steps(text)
    assert "keyguard release --role web-app-role" in steps
    assert "--user-name" not in text and "delete-access-key" not in text


def test_dry_run_leaked_key_notice_says_still_active_and_contain_now(account) -> None:
    """Item 2: the key is STILL ACTIVE, and `keyguard contain --key ...` is the first step."""
    seeded, invocations = deliver(account, load_event("guardduty-iam-user.json"), mode="dry-run")
    key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
    (_, text), *_ = _texts(invocations)
    first = _steps(text).strip().splitlines()[0]
    assert "STILL ACTIVE" in first and f"keyguard contain --key {key}" in first


def test_dry_run_new_key_notice_never_says_reactivate(account) -> None:
    """Item 2: in dry-run the new key was never deactivated: no step turns it back on."""
    _seeded, invocations = deliver(account, load_event("cloudtrail-create-access-key.json"), mode="dry-run")
    ((_, text),) = _texts(invocations)
    assert "--status Active" not in text and "reactivat" not in text.lower()
    assert "is active" in _steps(text)


def test_release_advice_points_to_keyguard_release_first(account) -> None:
    """Item 3: `keyguard release`, then the raw calls only as the fallback, the boundary included."""
    _, invocations = deliver(account, load_event("guardduty-iam-user.json"))
    (_, text), *_ = _texts(invocations)
    steps = _steps(text)
    release = next(line for line in steps.splitlines() if "Release the user" in line)
    assert release.index("keyguard release --user alice") < release.index("aws iam delete-user-policy")
    assert "aws iam delete-user-permissions-boundary --user-name alice" in release
    assert "Only if the keyguard command is unavailable" in release


def test_investigation_notice_has_a_step_per_item_and_an_honest_subject(account) -> None:
    """Item 4: every thing found gets a step; the subject counts what the body lists."""
    _, invocations = deliver_and_investigate(account, load_event("guardduty-iam-user.json"))
    messages = _texts(invocations)
    subject, text = next(m for m in messages if "INVESTIGATED" in m[0])
    found = re.search(r"(\d+) contained, (\d+) need you", subject)
    assert found, subject
    contained = re.search(r"^Contained by keyguard \((\d+)\):", text, re.M)
    human = re.search(r"^Needs you \((\d+)\):", text, re.M)
    assert contained and human
    assert (found.group(1), found.group(2)) == (contained.group(1), human.group(1)) == ("3", "2")
    steps = _steps(text)
    assert "p3.16xlarge" in steps and "aws ec2 terminate-instances --region eu-west-1" in steps
    assert "backdoor-admin" in steps and "deploy-admin" in steps
    numbered = [line for line in steps.splitlines() if re.match(r"\s+\d+\. ", line)]
    # 3 contained (key, backdoor-admin, deploy-admin) + 2 launches + the leaked key's own steps
    assert len(numbered) == 6, steps


def test_health_detail_never_names_another_key_or_user(account) -> None:
    """Item 5: AWS's event text names the example key and user; the facts name IAM's owner and key."""
    seeded, invocations = deliver(account, load_event("health-credentials-exposed.json"))
    (_, text), *_ = _texts(invocations)
    assert "AKIAI44QH8DHBEXAMPLE" not in text and "IAM user bob" not in text
    assert seeded.replaced["AKIAI44QH8DHBEXAMPLE"] in text and "exposed-key-owner-1" in text
    assert re.search(r"^Detail +: left out", text, re.M)


def test_health_detail_kept_when_it_agrees() -> None:
    from datetime import UTC, datetime

    from keyguard import notify
    from keyguard.plan import Outcome
    from keyguard.respond import Response
    from tests.conftest import incident_from

    incident = incident_from("health-iam-quarantine.json")
    text = notify.body(Response(incident, Outcome.CONTAINED, "x", "alice", at=datetime.now(UTC)))
    assert "AWSCompromisedKeyQuarantineV3" in text


def test_new_key_exemption_advice_names_the_stack_parameter(account) -> None:
    """Item 6: what exempts now is the stack parameter ExemptPrincipals, not a tag."""
    _, invocations = deliver(account, load_event("cloudtrail-create-access-key.json"))
    ((_, text),) = _texts(invocations)
    steps = _steps(text)
    assert "ExemptPrincipals" in steps
    assert "tag the user keyguard exemption" not in text
    assert "keyguard release --user bob --reactivate" in steps


def test_a_users_session_key_is_never_to_be_deleted() -> None:
    """Item 1: an ASIA key (a user's GetSessionToken credentials) cannot be deleted: no such advice."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from keyguard import notify
    from keyguard.plan import Outcome
    from keyguard.respond import Response
    from tests.conftest import incident_from

    incident = replace(incident_from("guardduty-iam-user.json"), key_id="ASIAIOSFODNN7EXAMPLE")
    for outcome in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN, Outcome.FAILED):
        text = notify.body(Response(incident, outcome, "x", "alice", at=datetime.now(UTC)))
        assert "delete-access-key" not in text and "keyguard contain --key ASIA" not in text, outcome
        assert "rotate user alice's long-term keys" in text
