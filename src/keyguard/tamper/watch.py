"""The tamper watch as data: which CloudTrail call undoes what, and what keyguard does about it.

Each `Watch` names an API call (EventBridge source, CloudTrail eventSource, eventName) and, where the call
only matters with certain request parameters, an EventBridge pattern on `detail.requestParameters`. The
same table makes the template's rules (`rules()`; tests/unit/test_tamper_watch.py checks that
template.yaml's TamperWatchFunction rules are exactly these) and classifies an event in the handler
(`watch_for()`, with the same pattern matcher the local emulator routes with). So a call the code handles
cannot be missing from the template, and a rule cannot deliver a call that the code does not know.

`target` says what the call acts on: a held "key", "user" or "role" (decided from the ledger), or one of
keyguard's own resources ("rule", "function", "topic", "subscription", "kms-key", "table", "queue",
"alarm", "stack", "own-role", "deny-all-policy"), or something every deployment depends on ("trail",
"detector"). `reapply` names how the containment is put back (see keyguard.tamper.reapply); None means
alert only.

Where the events arrive (EventBridge, "AWS API Call via CloudTrail"): IAM is global and its events reach
EventBridge in us-east-1 only, which is why the stack is deployed there. The other services' events reach
the bus of the region the call was made in, which for keyguard's own resources is the stack's region.
CloudTrail and GuardDuty calls are seen for this region only (a trail's home region; this region's
detector). Only calls that change something reach EventBridge by default (read-only calls need an opt-in
rule state), and only while a trail is logging management events, hence StopLogging / DeleteTrail /
PutEventSelectors are watched here and the self-check looks at the trails too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY
from keyguard.patterns import matches

DETAIL_TYPE = "AWS API Call via CloudTrail"
KEYGUARD_TAG_PREFIX = "keyguard:"
KEYGUARD_POLICIES = (QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY)


@dataclass(frozen=True)
class Watch:
    source: str  # EventBridge `source`
    event_source: str  # CloudTrail `eventSource`
    names: tuple[str, ...]  # CloudTrail `eventName`s
    target: str
    undoes: str  # what the call undoes or blinds, in words, for the notification
    reapply: str | None = None
    request: Mapping[str, Any] | None = None  # EventBridge pattern on detail.requestParameters
    prefix: bool = False  # match eventName by prefix (Lambda logged dated names, e.g. ...20150331v2, until 2021)

    def pattern(self) -> dict[str, Any]:
        names = [{"prefix": n} for n in self.names] if self.prefix else list(self.names)
        detail: dict[str, Any] = {"eventSource": [self.event_source], "eventName": names}
        if self.request is not None:
            detail["requestParameters"] = dict(self.request)
        detail["errorCode"] = [{"exists": False}]  # a failed call changed nothing
        return {"source": [self.source], "detail-type": [DETAIL_TYPE], "detail": detail}

    def rule_key(self) -> tuple[str, str, str, bool]:
        return (self.source, self.event_source, _canonical(self.request), self.prefix)


IAM = ("aws.iam", "iam.amazonaws.com")

WATCHES: tuple[Watch, ...] = (
    # ---- undoing a containment (re-applied while the ledger holds the key or principal)
    Watch(*IAM, ("UpdateAccessKey",), "key", "the key's deactivation", "deactivate-key", {"status": ["Active"]}),
    Watch(
        *IAM,
        ("DeleteUserPolicy", "PutUserPolicy"),
        "user",
        "keyguard's inline deny on the user",
        "user-policy",
        {"policyName": list(KEYGUARD_POLICIES)},
    ),
    Watch(
        *IAM,
        ("DeleteUserPermissionsBoundary", "PutUserPermissionsBoundary"),
        "user",
        "keyguard's deny-all permissions boundary on the user",
        "boundary",
    ),
    # Role inline policies: keyguard's session revocation on a held role, or any policy on keyguard's own
    # roles (a deny there blinds keyguard). Unfiltered, so one rule delivers both; the code tells them apart.
    Watch(
        *IAM,
        ("DeleteRolePolicy", "PutRolePolicy"),
        "role",
        "keyguard's session revocation on the role, or keyguard's own role's permissions",
        "role-policy",
    ),
    # keyguard sets its deny-all as a boundary, not attached; a detach of it is announced (nothing to put back)
    Watch(*IAM, ("DetachUserPolicy",), "user", "keyguard's deny-all policy attached to the user"),
    Watch(
        *IAM,
        ("TagUser", "TagRole"),
        "tags",
        "keyguard's record tags (a mirror for people; the ledger is the record)",
        # unfiltered: `tags` is an array of objects, which the emulator's matcher (moto's) does not match
        # the way EventBridge does; the code looks for keyguard:* keys itself (decide._tags)
    ),
    Watch(
        *IAM,
        ("UntagUser", "UntagRole"),
        "tags",
        "keyguard's record tags (a mirror for people; the ledger is the record)",
        None,
        {"tagKeys": [{"prefix": KEYGUARD_TAG_PREFIX}]},
    ),
    Watch(*IAM, ("UpdateUser",), "user", "the held user's name (a rename dodges name-based records)", "renamed"),
    Watch(
        *IAM,
        ("UpdateAssumeRolePolicy",),
        "role",
        "who may assume the held role (new sessions escape the revocation cut-off)",
        "revoke-role-sessions",
    ),
    # ---- keyguard's own roles and its deny-all policy (a deny on keyguard's role, an allow in its deny-all)
    Watch(
        *IAM,
        (
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "DeleteRole",
        ),
        "own-role",
        "keyguard's own permissions",
    ),
    Watch(
        *IAM,
        ("CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy", "DeletePolicyVersion"),
        "deny-all-policy",
        "keyguard's deny-all policy (every boundary it set points at it)",
    ),
    # ---- blinding keyguard: its own resources (alert; keyguard's own deploys are told apart)
    Watch(
        "aws.events",
        "events.amazonaws.com",
        ("DisableRule", "DeleteRule", "RemoveTargets", "PutRule", "PutTargets"),
        "rule",
        "the rule that delivers events to keyguard",
    ),
    Watch(
        "aws.lambda",
        "lambda.amazonaws.com",
        (
            "UpdateFunctionConfiguration",
            "UpdateFunctionCode",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "DeleteFunction",
            "RemovePermission",
            "CreateEventSourceMapping",
            "UpdateEventSourceMapping",
            "DeleteEventSourceMapping",
            # asynchronous invocation: 0 retries, a 60 s maximum age and no destination drop every event
            # EventBridge hands over while the function fails, with nothing kept
            "PutFunctionEventInvokeConfig",
            "UpdateFunctionEventInvokeConfig",
            "DeleteFunctionEventInvokeConfig",
        ),
        "function",
        "a keyguard function (its code, settings, concurrency, retries or triggers)",
        prefix=True,
    ),
    Watch(
        "aws.sns",
        "sns.amazonaws.com",
        (
            "Unsubscribe",
            "DeleteTopic",
            "SetTopicAttributes",
            "SetSubscriptionAttributes",
            "RemovePermission",
            "Subscribe",  # a new subscriber reads every incident as it happens (Pacu sns__subscribe)
            "PutDataProtectionPolicy",  # a Deny on outbound data can make every Publish fail
        ),
        "topic",
        "keyguard's notification topic or its subscriptions (who reads every incident, whether Publish works)",
    ),
    Watch(
        "aws.kms",
        "kms.amazonaws.com",
        ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"),
        "kms-key",
        "the KMS key keyguard's topic, queues, tables and logs are encrypted with",
    ),
    Watch(
        "aws.dynamodb",
        "dynamodb.amazonaws.com",
        ("DeleteTable", "UpdateTable", "PutResourcePolicy", "DeleteResourcePolicy", "UpdateContinuousBackups"),
        "table",
        "keyguard's ledger or de-duplication table",
    ),
    Watch(
        "aws.sqs",
        "sqs.amazonaws.com",
        ("DeleteQueue", "PurgeQueue", "SetQueueAttributes"),
        "queue",
        "keyguard's dead-letter or investigation queue",
    ),
    Watch(
        "aws.cloudwatch",
        "monitoring.amazonaws.com",
        ("DeleteAlarms", "DisableAlarmActions", "PutMetricAlarm"),
        "alarm",
        "keyguard's alarms (the dead-man's switch)",
    ),
    Watch(
        "aws.cloudformation",
        "cloudformation.amazonaws.com",
        ("DeleteStack", "UpdateStack", "ExecuteChangeSet"),
        "stack",
        "keyguard's stack (everything above at once)",
    ),
    # ---- what every CloudTrail-driven rule depends on, and GuardDuty's findings
    Watch(
        "aws.cloudtrail",
        "cloudtrail.amazonaws.com",
        ("StopLogging", "DeleteTrail", "PutEventSelectors", "UpdateTrail"),
        "trail",
        "CloudTrail logging (EventBridge gets no API calls without a logging trail: keyguard goes blind)",
    ),
    Watch(
        "aws.guardduty",
        "guardduty.amazonaws.com",
        ("DeleteDetector", "DisassociateFromMasterAccount", "DisassociateFromAdministratorAccount"),
        "detector",
        "GuardDuty findings (no detector, no findings for keyguard)",
    ),
    Watch(
        "aws.guardduty",
        "guardduty.amazonaws.com",
        ("UpdateDetector",),
        "detector",
        "GuardDuty findings (a disabled detector reports nothing)",
        request={"enable": [False]},
    ),
    # Every filter change, not only `action = ARCHIVE`: UpdateFilter of an existing suppression rule with new
    # criteria carries no `action` field at all.
    Watch(
        "aws.guardduty",
        "guardduty.amazonaws.com",
        ("CreateFilter", "UpdateFilter"),
        "detector",
        "GuardDuty findings (an auto-archive filter hides matching findings from EventBridge)",
    ),
    Watch(
        "aws.guardduty",
        "guardduty.amazonaws.com",
        ("CreateIPSet", "UpdateIPSet"),
        "detector",
        "GuardDuty findings (GuardDuty generates no findings for addresses in a trusted IP list)",
    ),
)


@dataclass(frozen=True)
class RuleSpec:
    """One EventBridge rule of the TamperWatchFunction (template.yaml event name -> pattern)."""

    name: str
    pattern: dict[str, Any]


def rules(watches: tuple[Watch, ...] = WATCHES) -> list[RuleSpec]:
    """The template's rules: watches with the same source and request filter share one rule."""
    groups: dict[tuple[str, str, str, bool], list[Watch]] = {}
    for w in watches:
        groups.setdefault(w.rule_key(), []).append(w)
    out = []
    for group in groups.values():
        first = group[0]
        names = tuple(n for w in group for n in w.names)
        merged = Watch(first.source, first.event_source, names, first.target, "", None, first.request, first.prefix)
        out.append(RuleSpec(_rule_name(group), merged.pattern()))
    return out


def _rule_name(group: list[Watch]) -> str:
    service = group[0].source.removeprefix("aws.").title()
    return f"{service}{group[0].names[0]}" if group[0].request is not None else f"{service}Calls"


def watch_for(event: Mapping[str, Any], watches: tuple[Watch, ...] = WATCHES) -> Watch | None:
    """The watch an event is for (at most one: tests check that no call matches two)."""
    for w in watches:
        if matches(w.pattern(), event):
            return w
    return None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if value is not None else ""


def template_events(indent: int = 8) -> str:
    """The TamperWatchFunction's `Events:` block for template.yaml (`python -m keyguard.tamper.watch`)."""
    pad = " " * indent
    lines = []
    for r in rules():
        lines += [
            f"{pad}{r.name}:",
            f"{pad}  Type: EventBridgeRule",
            f"{pad}  Properties:",
            f"{pad}    Pattern: {json.dumps(r.pattern)}",
            f"{pad}    RetryPolicy:",
            f"{pad}      MaximumRetryAttempts: 185",
            f"{pad}      MaximumEventAgeInSeconds: 86400",
            f"{pad}    DeadLetterConfig:",
            f"{pad}      Arn: !GetAtt DeadLetterQueue.Arn",
        ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a helper for editing template.yaml
    print(template_events())
