"""Smaller doors a key holder uses against keyguard: attacker-written text in every copy of a notice, and
the calls that read, mute or silence keyguard's topic, functions and GuardDuty without touching a rule."""

from __future__ import annotations

import copy
import json
import unicodedata

from tests.behaviour.test_more_signals import _chat_inbox
from tests.conftest import deliver, load_event

# Right-to-left override (reverses what follows: "exe.jpg" reads "gpj.exe"), a zero-width space, a
# zero-width joiner, a left-to-right isolate, a byte-order mark and a line separator: each invisible or
# re-ordering in a mail or chat client.
HIDDEN = ("\u202e", "\u200b", "\u200d", "\u2066", "\ufeff", "\u2028")


def _invisible(text: str) -> list[str]:
    """Every invisible or re-ordering character in the text, a line break excepted."""
    hidden = {f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in ("Cf", "Cc", "Zl", "Zp")}
    return sorted(hidden - {"U+000A"})


def test_bidi_and_zero_width_text_reaches_no_copy_of_the_notice(account, monkeypatch) -> None:
    """A finding whose user agent, caller IP and user name carry U+202E and zero-width characters: the text
    part (e-mail), the JSON part (SQS, Lambda, HTTPS), chat and Security Hub show none of them."""
    chat_topic, read_chat = _chat_inbox(account)
    monkeypatch.setenv("KEYGUARD_CHAT_TOPIC_ARN", chat_topic)
    monkeypatch.setenv("KEYGUARD_SECURITY_HUB", "true")
    event = copy.deepcopy(load_event("guardduty-s3-malicious-ip.json"))
    call = event["detail"]["service"]["action"]["awsApiCallAction"]
    call["userAgent"] = "aws-cli/2.15 \u202eexe.gpj\u202c zero\u200bwidth" + "".join(HIDDEN)
    call["remoteIpDetails"]["ipAddressV4"] = "198.51.100.23\u200b\u202e"
    call["remoteIpDetails"]["organization"]["asnOrg"] = "EXAMPLE\u2066-AS\u2069"
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = "ali\u202ece"
    _, (inv,) = deliver(account, event)
    assert inv.error is None
    (published,) = inv.published
    parts = json.loads(published["Message"])
    assert set(parts) >= {"default", "email", "sqs", "lambda", "https", "email-json"}
    text = parts["default"]
    assert "aws-cli/2.15 exe.gpj zerowidth" in text  # shown, without what hides or reorders it
    assert "198.51.100.23" in text
    copies = {
        "subject": published["Subject"],
        **{protocol: body for protocol, body in parts.items()},
        # the JSON part decoded: an escaped "\u202e" in it is the character again once parsed
        "json": json.dumps(json.loads(parts["sqs"]), ensure_ascii=False),
        "chat": json.dumps(read_chat(), ensure_ascii=False),
        "securityhub": json.dumps(account.clients.get("securityhub").get_findings()["Findings"], ensure_ascii=False),
    }
    assert "ali" in copies["chat"] and "ali" in copies["securityhub"]  # both were sent and name the user
    assert {name: _invisible(body) for name, body in copies.items() if _invisible(body)} == {}
