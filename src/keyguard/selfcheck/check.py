"""The dead-man's switch: is keyguard still wired as deployed?

Each check reads one thing back from AWS and says ok or what is wrong. The heartbeat metric the handler
publishes is 1 only when every check passed; the stack's alarm treats a missing heartbeat as breaching,
so a check that fails *and* a check that stops running (function deleted, its schedule disabled, its
concurrency set to 0) both raise the alarm, on a topic with its own KMS key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyguard.aws import error_code
from keyguard.tamper.watch import rules as tamper_rules

# How many EventBridge rules target each function, as template.yaml declares them (a test keeps these
# equal to the template; GuardDuty: access-key findings and attack sequences). The investigation function is fed
# by its queue (an event source mapping).
EXPECTED_RULES = {"guardduty": 2, "health": 1, "access-key-created": 1, "tamper": len(tamper_rules())}
QUEUE_FED = ("investigation",)

READ_PERMISSIONS = (
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunctionConcurrency",
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "sns:ListSubscriptionsByTopic",
    "kms:DescribeKey",
    "cloudtrail:GetTrailStatus",
)
# Reads and the heartbeat that IAM cannot scope to one resource (the template grants them on "*").
UNSCOPED_PERMISSIONS = (
    "events:ListRuleNamesByTarget",
    "lambda:ListEventSourceMappings",
    "cloudtrail:DescribeTrails",
    "cloudwatch:PutMetricData",
)


@dataclass(frozen=True)
class CheckConfig:
    functions: Mapping[str, str] = field(default_factory=dict)  # role in keyguard -> deployed function name
    expected_mode: str = "enforce"
    topic_arns: tuple[str, ...] = ()
    key_arns: tuple[str, ...] = ()
    stack_name: str | None = None
    topic_arn: str | None = None  # where a failed check is announced (besides the alarm)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CheckConfig:
        env = os.environ if environ is None else environ
        functions = {}
        for item in env.get("KEYGUARD_WATCHED_FUNCTIONS", "").split(","):
            role, _, name = item.strip().partition("=")
            if role and name:
                functions[role.strip()] = name.strip()
        topics = (env.get("KEYGUARD_TOPIC_ARN"), env.get("KEYGUARD_ALARM_TOPIC_ARN"))
        return cls(
            functions=functions,
            expected_mode=env.get("KEYGUARD_EXPECTED_MODE", "enforce").strip().lower(),
            topic_arns=tuple(t for t in topics if t),
            key_arns=tuple(k.strip() for k in env.get("KEYGUARD_KEY_ARNS", "").split(",") if k.strip()),
            stack_name=env.get("KEYGUARD_STACK_NAME") or None,
            topic_arn=env.get("KEYGUARD_TOPIC_ARN") or None,
        )


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAILED'}: {self.name}" + (f" ({self.detail})" if self.detail else "")


def run(clients: Any, config: CheckConfig) -> list[Check]:
    """Every check; a check that cannot read counts as failed (a denied read is a finding too)."""
    out: list[Check] = []
    if not config.functions:
        out.append(Check("configuration", False, "KEYGUARD_WATCHED_FUNCTIONS names no function"))
    for role, name in sorted(config.functions.items()):
        out += _guarded(f"function {role}", lambda r=role, n=name: _function(clients, r, n, config))
    for arn in config.topic_arns:
        out += _guarded(f"topic {arn.rsplit(':', 1)[-1]}", lambda a=arn: [_topic(clients, a)])
    for arn in config.key_arns:
        out += _guarded(f"key {arn.rsplit('/', 1)[-1]}", lambda a=arn: [_key(clients, a)])
    out += _guarded("cloudtrail", lambda: [_trail(clients)])
    return out


def _guarded(name: str, check: Any) -> list[Check]:
    try:
        return check()
    except Exception as e:
        return [Check(name, False, f"could not check: {error_code(e) or type(e).__name__}")]


def _function(clients: Any, role: str, name: str, config: CheckConfig) -> list[Check]:
    lam, events = clients.get("lambda"), clients.get("events")
    label = f"function {role} ({name})"
    cfg = lam.get_function_configuration(FunctionName=name)
    out = []
    mode = ((cfg.get("Environment") or {}).get("Variables") or {}).get("KEYGUARD_MODE", "")
    out.append(
        Check(f"{label} mode", mode == config.expected_mode, f"{mode or 'unset'}, deployed {config.expected_mode}")
    )
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    out.append(Check(f"{label} concurrency", reserved is None, "unreserved" if reserved is None else f"{reserved}"))
    if role in QUEUE_FED:
        mappings = lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", [])
        enabled = [m for m in mappings if m.get("State") in ("Enabled", "Enabling", "Updating")]
        out.append(Check(f"{label} queue trigger", bool(enabled), f"{len(enabled)} of {len(mappings)} enabled"))
        return out
    expected = EXPECTED_RULES.get(role)
    arn = cfg["FunctionArn"]
    names = events.list_rule_names_by_target(TargetArn=arn).get("RuleNames", [])
    enabled = []
    for rule in names:
        if events.describe_rule(Name=rule).get("State") != "ENABLED":
            continue
        targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
        if any(t.get("Arn") == arn for t in targets):
            enabled.append(rule)
    ok = expected is None or len(enabled) >= expected
    out.append(
        Check(f"{label} rules", ok and bool(enabled), f"{len(enabled)} enabled, targeting it; expected {expected}")
    )
    return out


def _topic(clients: Any, arn: str) -> Check:
    subs = clients.sns(arn).list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
    confirmed = [s for s in subs if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    name = arn.rsplit(":", 1)[-1]
    return Check(f"topic {name} subscriptions", bool(confirmed), f"{len(confirmed)} confirmed of {len(subs)}")


def _key(clients: Any, arn: str) -> Check:
    state = clients.get("kms").describe_key(KeyId=arn)["KeyMetadata"].get("KeyState")
    return Check(f"key {arn.rsplit('/', 1)[-1]} enabled", state == "Enabled", str(state))


def _trail(clients: Any) -> Check:
    """EventBridge gets "AWS API Call via CloudTrail" events only while a trail is logging."""
    ct = clients.get("cloudtrail")
    trails = ct.describe_trails().get("trailList", [])
    logging = [t for t in trails if ct.get_trail_status(Name=t["TrailARN"]).get("IsLogging")]
    return Check("a CloudTrail trail is logging", bool(logging), f"{len(logging)} of {len(trails)} logging")


def healthy(checks: list[Check]) -> bool:
    return bool(checks) and all(c.ok for c in checks)
