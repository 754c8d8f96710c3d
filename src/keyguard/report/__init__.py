"""Where security teams look, besides the notification topic: Security Hub (ASFF findings) and chat
(Amazon Q Developer in chat applications). Runs after containment and after the SNS notification; optional;
a failure here is logged and counted, never raised into containment (the topic already said what happened).

`docs/message.schema.json` is the schema of the topic's JSON document (`"keyguard": 1`).
"""

from __future__ import annotations

from typing import Any

from keyguard.respond import Response
from keyguard.settings import Settings


def after_notify(settings: Settings, clients: Any, responses: list[Response], notices: list[str]) -> list[str]:
    """One line per response saying what reached Security Hub and chat, e.g. 'securityhub imported; chat sent'."""
    from keyguard import notify
    from keyguard.report import chat, securityhub

    out: list[list[str]] = [[] for _ in responses]
    if settings.security_hub:
        picked = [(n, r) for n, r in enumerate(responses) if securityhub.wanted(r)]
        if picked:
            region = clients.region
            findings = [
                securityhub.finding(r, level=notify.level(r), account=r.incident.account, region=region)
                for _, r in picked
            ]
            results = securityhub.import_findings(clients.get("securityhub"), findings)
            for (n, _), result in zip(picked, results, strict=True):
                out[n].append(f"securityhub {result}")
    if settings.chat_topic_arn:
        for n, (r, notice) in enumerate(zip(responses, notices, strict=True)):
            if notice == "duplicate":
                out[n].append("chat duplicate")  # announced already (same de-duplication as the topic)
                continue
            try:
                clients.sns(settings.chat_topic_arn).publish(
                    **chat.publish_args(r, topic_arn=settings.chat_topic_arn, level=notify.level(r))
                )
                out[n].append("chat sent")
            except Exception as e:
                from keyguard.aws import error_code

                out[n].append(f"chat failed: {error_code(e) or type(e).__name__}")
    return ["; ".join(x) or "none" for x in out]
