"""The tamper watch's table against template.yaml, and its decisions (pure: a ledger stand-in in memory)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.local.emulator import load_rules, load_template, route
from keyguard.selfcheck import check as selfcheck
from keyguard.tamper import call as calls
from keyguard.tamper.config import WatchConfig
from keyguard.tamper.decide import Verdict, decide, resource_name
from keyguard.tamper.reapply import ROUTINES
from keyguard.tamper.watch import WATCHES, rules, watch_for
from tests.conftest import EVENTS, load_event

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
TAMPER = RESOURCES["TamperWatchFunction"]["Properties"]


def _canonical(pattern: dict) -> str:
    return json.dumps(pattern, sort_keys=True)


def test_template_rules_are_exactly_the_table() -> None:
    in_template = {
        name: ev["Properties"]["Pattern"] for name, ev in TAMPER["Events"].items() if ev["Type"] == "EventBridgeRule"
    }
    from_table = {r.name: r.pattern for r in rules()}
    assert set(in_template) == set(from_table), "regenerate: .venv/bin/python -m keyguard.tamper.watch"
    for name, pattern in from_table.items():
        assert _canonical(in_template[name]) == _canonical(pattern), name


def test_every_tamper_rule_retries_and_keeps_failures() -> None:
    for ev in TAMPER["Events"].values():
        assert ev["Properties"]["DeadLetterConfig"] == {"Arn": "DeadLetterQueue.Arn"}
        assert ev["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] == 185


def test_no_call_is_delivered_twice() -> None:
    """Two rules matching one call would invoke the function twice for it."""
    seen: dict[tuple[str, str], str] = {}
    for w in WATCHES:
        for name in w.names:
            key = (w.source, name)
            assert key not in seen, (key, seen[key], w.undoes)
            seen[key] = w.undoes


def test_every_re_apply_the_table_names_exists() -> None:
    assert {w.reapply for w in WATCHES} - {None} <= set(ROUTINES)


# What issue 10 asks the watch to catch (EventBridge source, CloudTrail eventName).
REQUIRED = [
    ("aws.iam", "UpdateAccessKey"),
    ("aws.iam", "DeleteUserPolicy"),
    ("aws.iam", "PutUserPolicy"),
    ("aws.iam", "DeleteRolePolicy"),
    ("aws.iam", "PutRolePolicy"),
    ("aws.iam", "DeleteUserPermissionsBoundary"),
    ("aws.iam", "PutUserPermissionsBoundary"),
    ("aws.iam", "DetachUserPolicy"),
    ("aws.iam", "UntagUser"),
    ("aws.iam", "TagUser"),
    ("aws.iam", "UpdateUser"),
    ("aws.iam", "UpdateAssumeRolePolicy"),
    ("aws.events", "DisableRule"),
    ("aws.events", "DeleteRule"),
    ("aws.events", "RemoveTargets"),
    ("aws.events", "PutRule"),
    ("aws.lambda", "UpdateFunctionConfiguration"),
    ("aws.lambda", "UpdateFunctionCode"),
    ("aws.lambda", "PutFunctionConcurrency"),
    ("aws.lambda", "DeleteFunction"),
    ("aws.lambda", "DeleteEventSourceMapping"),
    ("aws.sns", "Unsubscribe"),
    ("aws.sns", "DeleteTopic"),
    ("aws.sns", "SetTopicAttributes"),
    ("aws.kms", "DisableKey"),
    ("aws.kms", "ScheduleKeyDeletion"),
    ("aws.kms", "PutKeyPolicy"),
    ("aws.dynamodb", "DeleteTable"),
    ("aws.dynamodb", "UpdateTable"),
    ("aws.dynamodb", "PutResourcePolicy"),
    ("aws.dynamodb", "DeleteResourcePolicy"),
    ("aws.cloudtrail", "StopLogging"),
    ("aws.cloudtrail", "DeleteTrail"),
    ("aws.cloudtrail", "PutEventSelectors"),
    ("aws.cloudtrail", "UpdateTrail"),
    ("aws.guardduty", "DeleteDetector"),
    ("aws.guardduty", "UpdateDetector"),
    ("aws.guardduty", "CreateFilter"),
    ("aws.guardduty", "DisassociateFromMasterAccount"),
    ("aws.guardduty", "DisassociateFromAdministratorAccount"),
    ("aws.cloudformation", "DeleteStack"),
    ("aws.cloudformation", "UpdateStack"),
    # the smaller doors: a reader on the topic, a topic that refuses Publish, retries turned off, GuardDuty
    # told to trust an address or to archive by any filter
    ("aws.sns", "Subscribe"),
    ("aws.sns", "PutDataProtectionPolicy"),
    ("aws.lambda", "PutFunctionEventInvokeConfig"),
    ("aws.lambda", "UpdateFunctionEventInvokeConfig"),
    ("aws.lambda", "DeleteFunctionEventInvokeConfig"),
    ("aws.guardduty", "CreateIPSet"),
    ("aws.guardduty", "UpdateIPSet"),
    ("aws.guardduty", "UpdateFilter"),
]


@pytest.mark.parametrize(("source", "name"), REQUIRED)
def test_the_watch_covers_what_the_issue_lists(source: str, name: str) -> None:
    assert any(w.source == source and name in w.names for w in WATCHES)


def _as_call(event: dict, name: str | None = None, **request: Any) -> dict:
    event = copy.deepcopy(event)
    if name:
        event["detail"]["eventName"] = name
    event["detail"]["requestParameters"].update(request)
    return event


def test_lambda_s_dated_event_names_are_matched_and_failed_calls_are_not() -> None:
    event = load_event("tamper-update-function-configuration.json")
    assert event["detail"]["eventName"] == "UpdateFunctionConfiguration20150331v2"
    assert [r.function for r in route(event, load_rules())] == ["TamperWatchFunction"]
    assert route(_as_call(event, "UpdateFunctionConfiguration"), load_rules())
    failed = copy.deepcopy(event)
    failed["detail"]["errorCode"] = "AccessDenied"
    assert route(failed, load_rules()) == []


@pytest.mark.parametrize(
    ("change", "routed"),
    [
        ({"status": "Inactive"}, False),  # keyguard's own deactivation is no undoing
        ({"status": "Active"}, True),
    ],
)
def test_update_access_key_is_watched_only_when_it_activates(change: dict, routed: bool) -> None:
    event = _as_call(load_event("tamper-update-access-key.json"), **change)
    assert bool(route(event, load_rules())) is routed


@pytest.mark.parametrize(
    ("name", "params", "routed"),
    [
        ("PutUserPolicy", {"policyName": "keyguard-revoke-sessions"}, True),
        ("PutUserPolicy", {"policyName": "team-s3-read"}, False),
        ("TagUser", {"tags": [{"key": "team", "value": "x"}, {"key": "keyguard:exempt", "value": "true"}]}, True),
        ("TagUser", {"tags": [{"key": "team", "value": "x"}]}, True),  # delivered; decide() ignores it
        ("UntagUser", {"tagKeys": ["team"]}, False),
        ("UpdateDetector", {"detectorId": "d", "enable": True}, False),
        ("UpdateDetector", {"detectorId": "d", "enable": False}, True),
        # any filter change: an existing ARCHIVE rule updated with new criteria names no action at all
        ("CreateFilter", {"detectorId": "d", "name": "n", "action": "NOOP"}, True),
        ("UpdateFilter", {"detectorId": "d", "filterName": "n", "findingCriteria": {}}, True),
    ],
)
def test_request_parameters_decide_what_is_delivered(name: str, params: dict, routed: bool) -> None:
    source = "aws.guardduty" if name in ("UpdateDetector", "CreateFilter", "UpdateFilter") else "aws.iam"
    base = load_event("tamper-delete-detector.json" if source == "aws.guardduty" else "tamper-put-user-policy.json")
    event = copy.deepcopy(base)
    event["detail"]["eventName"] = name
    event["detail"]["requestParameters"] = {"userName": "bob", **params}
    assert bool(route(event, load_rules())) is routed


# ---------------------------------------------------------------- decisions


@dataclass
class Held:
    held: bool = True
    user: str | None = "bob"
    released_at: str | None = None
    layers: tuple[str, ...] = ()
    unique_id: str | None = None


class MemoryLedger:
    """The ledger's read seam, in memory (decide() only reads key() and principal())."""

    def __init__(self, keys: dict | None = None, principals: dict | None = None) -> None:
        self.keys, self.principals = keys or {}, principals or {}

    def key(self, key_id: str) -> Any:
        return self.keys.get(key_id)

    def principal(self, kind: str, name: str) -> Any:
        return self.principals.get((kind, name))


CONFIG = WatchConfig(
    stack_name="keyguard",
    topic_arn="arn:aws:sns:us-east-1:123456789012:keyguard-Topic-1A2B3C4D5E6F",
    key_arns=frozenset({"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
    own_roles=frozenset({"keyguard-guarddutyfunctionrole-abc"}),
    deployers=frozenset({"arn:aws:iam::123456789012:role/keyguard-deployer"}),
    deny_all_policy_arn="arn:aws:iam::123456789012:policy/keyguard-DenyAllPolicy-ABC",
)
HELD = MemoryLedger(
    keys={"AKIAI44QH8DHBEXAMPLE": Held()},
    principals={("user", "bob"): Held(), ("role", "web-app-role"): Held(user=None)},
)
RELEASED = MemoryLedger(
    keys={"AKIAI44QH8DHBEXAMPLE": Held(held=False, released_at="2025-03-17T10:00:00Z")},
    principals={
        ("user", "bob"): Held(held=False, released_at="2025-03-17T10:00:00Z"),
        ("role", "web-app-role"): Held(held=False, released_at="2025-03-17T10:00:00Z"),
    },
)

DECISIONS = {
    "tamper-update-access-key.json": ("key", Verdict.RECONTAIN, "deactivate-key"),
    "tamper-delete-user-policy.json": ("user", Verdict.RECONTAIN, "user-policy"),
    "tamper-put-user-policy.json": ("user", Verdict.RECONTAIN, "user-policy"),
    "tamper-delete-user-permissions-boundary.json": ("user", Verdict.RECONTAIN, "boundary"),
    "tamper-untag-user.json": ("user", Verdict.ALERT, None),
    "tamper-update-user.json": ("user", Verdict.RECONTAIN, "renamed"),
    "tamper-update-assume-role-policy.json": ("role", Verdict.RECONTAIN, "revoke-role-sessions"),
    "tamper-delete-role-policy.json": ("role", Verdict.RECONTAIN, "role-policy"),
    "tamper-disable-rule.json": ("rule", Verdict.ALERT, None),
    "tamper-update-function-configuration.json": ("function", Verdict.ALERT, None),
    "tamper-put-function-concurrency.json": ("function", Verdict.ALERT, None),
    "tamper-unsubscribe.json": ("topic", Verdict.ALERT, None),
    "tamper-disable-key.json": ("kms-key", Verdict.ALERT, None),
    "tamper-schedule-key-deletion.json": ("kms-key", Verdict.ALERT, None),
    "tamper-stop-logging.json": ("trail", Verdict.ALERT, None),
    "tamper-delete-detector.json": ("detector", Verdict.ALERT, None),
    "tamper-create-filter-archive.json": ("detector", Verdict.ALERT, None),
    "tamper-delete-stack.json": ("stack", Verdict.ALERT, None),
    "tamper-deployer-update-function.json": ("function", Verdict.IGNORE, None),
}


def test_every_tamper_event_file_has_a_decision() -> None:
    assert {p.name for p in EVENTS.glob("tamper-*.json")} == set(DECISIONS)


def _decide(name_or_event: str | dict, ledger: Any = HELD, config: WatchConfig = CONFIG):
    event = load_event(name_or_event) if isinstance(name_or_event, str) else name_or_event
    watch = watch_for(event)
    assert watch is not None
    return decide(calls.read(event), watch, config, ledger)


@pytest.mark.parametrize("name", sorted(DECISIONS))
def test_each_event_file_is_decided_from_the_ledger_and_configuration(name: str) -> None:
    kind, verdict, reapply = DECISIONS[name]
    d = _decide(name)
    assert (d.kind, d.verdict, d.reapply) == (kind, verdict, reapply), d.reason
    if verdict is Verdict.RECONTAIN:
        assert _decide(name, RELEASED).verdict is Verdict.IGNORE  # released through keyguard release
        assert _decide(name, MemoryLedger()).verdict is Verdict.IGNORE  # never held
        assert "released" in _decide(name, RELEASED).reason


def test_a_tag_change_on_a_principal_keyguard_does_not_hold_is_suspicious_not_ignored() -> None:
    d = _decide("tamper-untag-user.json", MemoryLedger())
    assert (d.verdict, d.level) == (Verdict.SUSPICIOUS, "high")
    tag = load_event("tamper-untag-user.json")
    tag["detail"]["eventName"] = "TagUser"
    tag["detail"]["requestParameters"] = {"userName": "bob", "tags": [{"key": "team", "value": "x"}]}
    assert _decide(tag).verdict is Verdict.IGNORE  # no keyguard:* tag
    tag["detail"]["requestParameters"]["tags"].append({"key": "keyguard:exempt", "value": "true"})
    assert _decide(tag, MemoryLedger()).verdict is Verdict.SUSPICIOUS


def test_keyguard_s_own_roles_are_not_tampering() -> None:
    event = load_event("tamper-delete-user-policy.json")
    role = "keyguard-GuardDutyFunctionRole-ABC"
    event["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/keyguard-GuardDutyFunction-1A2B",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::123456789012:role/{role}"}},
    }
    assert _decide(event).verdict is Verdict.IGNORE
    # the same role name in another account is not keyguard's
    event["detail"]["userIdentity"]["accountId"] = "444455556666"
    assert _decide(event).verdict is Verdict.RECONTAIN


def test_a_deployer_still_cannot_undo_a_hold_without_a_release() -> None:
    """Deployers are told apart for keyguard's own resources, not for holds: only the ledger releases."""
    event = load_event("tamper-delete-user-policy.json")
    event["detail"]["userIdentity"] = load_event("tamper-deployer-update-function.json")["detail"]["userIdentity"]
    assert _decide(event).verdict is Verdict.RECONTAIN


def test_other_accounts_resources_and_names_are_not_keyguard_s() -> None:
    rule = _as_call(load_event("tamper-disable-rule.json"), name="DisableRule", name_="x")
    rule["detail"]["requestParameters"] = {"name": "keyguardian-Rule-1"}  # a prefix, not the stack's
    assert _decide(rule).verdict is Verdict.IGNORE
    topic = load_event("tamper-unsubscribe.json")
    topic["detail"]["requestParameters"]["subscriptionArn"] = "arn:aws:sns:us-east-1:123456789012:other:1"
    assert _decide(topic).verdict is Verdict.IGNORE
    key = load_event("tamper-disable-key.json")
    key["detail"]["requestParameters"]["keyId"] = "arn:aws:kms:us-east-1:123456789012:key/other"
    key["detail"]["resources"] = [{"ARN": "arn:aws:kms:us-east-1:123456789012:key/other"}]
    assert _decide(key).verdict is Verdict.IGNORE
    by_id = load_event("tamper-schedule-key-deletion.json")
    by_id["detail"].pop("resources")  # the bare key id matches too
    assert _decide(by_id).verdict is Verdict.ALERT


@pytest.mark.parametrize(
    ("kind", "params", "name"),
    [
        ("function", {"functionName": "arn:aws:lambda:us-east-1:1:function:keyguard-X-1:live"}, "keyguard-X-1"),
        ("table", {"resourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/keyguard-L-1"}, "keyguard-L-1"),
        ("stack", {"stackName": "arn:aws:cloudformation:us-east-1:123456789012:stack/keyguard/abc"}, "keyguard"),
        ("queue", {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/keyguard-DeadLetterQueue-1"}, None),
    ],
)
def test_resource_names_are_read_from_every_form_the_api_accepts(kind: str, params: dict, name: str | None) -> None:
    event = load_event("tamper-delete-stack.json")
    event["detail"]["requestParameters"] = params
    got = resource_name(calls.read(event), kind)
    assert got == (name or "keyguard-DeadLetterQueue-1")


def test_attacker_controlled_strings_are_bounded_and_printable() -> None:
    event = load_event("tamper-delete-user-policy.json")
    event["detail"]["userAgent"] = "x\n\x1b[31m" + "A" * 100_000
    event["detail"]["sourceIPAddress"] = "198.51.100.23\r\nInjected: yes"
    call = calls.read(event)
    assert len(call.actor.user_agent) <= calls.TEXT_MAX and call.actor.user_agent.isprintable()
    assert call.actor.source_ip.isprintable() and len(call.actor.source_ip) <= 64


def test_a_non_cloudtrail_event_is_malformed() -> None:
    from keyguard.errors import MalformedEvent

    for bad in (None, {}, load_event("guardduty-iam-user.json"), {"detail-type": "AWS API Call via CloudTrail"}):
        with pytest.raises(MalformedEvent):
            calls.read(bad)


# ---------------------------------------------------------------- the dead-man's switch in the template


def test_self_check_expects_as_many_rules_as_the_template_declares() -> None:
    functions = {
        "guardduty": "GuardDutyFunction",
        "health": "HealthFunction",
        "access-key-created": "AccessKeyCreatedFunction",
        "tamper": "TamperWatchFunction",
    }
    for role, fid in functions.items():
        events = RESOURCES[fid]["Properties"]["Events"].values()
        assert selfcheck.EXPECTED_RULES[role] == sum(1 for e in events if e["Type"] == "EventBridgeRule"), role
    watched = RESOURCES["SelfCheckFunction"]["Properties"]["Environment"]["Variables"]["KEYGUARD_WATCHED_FUNCTIONS"]
    roles = {item.split("=", 1)[0] for item in watched[1]}
    assert roles == set(selfcheck.EXPECTED_RULES) | set(selfcheck.QUEUE_FED)


def test_the_alarm_path_does_not_depend_on_the_key_everything_else_uses() -> None:
    alarm = RESOURCES["HeartbeatAlarm"]["Properties"]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == ["AlarmTopic"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("keyguard", "SelfCheckHealthy")
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    schedule = RESOURCES["SelfCheckFunction"]["Properties"]["Events"]["Schedule"]["Properties"]["Schedule"]
    minutes = int(re.fullmatch(r"rate\((\d+) minutes\)", schedule).group(1))
    assert alarm["Period"] >= 2 * 60 * minutes  # one late run is not an alarm; a missing one is
    assert RESOURCES["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == "AlarmKey"  # not Key, not alias/aws/sns
    assert RESOURCES["Topic"]["Properties"]["KmsMasterKeyId"] == "Key"
    statements = RESOURCES["AlarmKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in statements)
    topic_policy = RESOURCES["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in topic_policy)


def _env(function_id: str) -> set[str]:
    own = RESOURCES[function_id]["Properties"].get("Environment", {}).get("Variables", {})
    return set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]) | set(own)


@pytest.mark.parametrize(
    ("module", "function_id"),
    [("tamper/config.py", "TamperWatchFunction"), ("selfcheck/check.py", "SelfCheckFunction")],
)
def test_every_setting_the_watch_reads_is_set_by_the_template(module: str, function_id: str) -> None:
    import keyguard

    source = (Path(keyguard.__file__).parent / module).read_text()
    read = set(re.findall(r'"(KEYGUARD_[A-Z_]+)"', source))
    assert read and read <= _env(function_id), read - _env(function_id)


def test_putting_keyguard_s_own_deny_is_a_containment_not_an_undoing() -> None:
    """`keyguard contain` (the operator role) writes the same policy name: its deny is no tampering."""
    from keyguard.actions import deny_all_policy

    event = load_event("tamper-put-user-policy.json")
    event["detail"]["requestParameters"]["policyDocument"] = json.dumps(deny_all_policy())
    assert _decide(event).verdict is Verdict.IGNORE
    event["detail"]["requestParameters"]["policyDocument"] = "not json {"
    assert _decide(event).verdict is Verdict.RECONTAIN  # unreadable: treated as an overwrite


# ---------------------------------------------------------------- hostile records


_text = st.one_of(st.none(), st.text(max_size=300), st.sampled_from(["bob", "alice", "web-app-role", "keyguard-x"]))
_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=8,
)
_request = st.dictionaries(
    st.sampled_from(
        [
            "userName",
            "roleName",
            "accessKeyId",
            "policyName",
            "policyDocument",
            "newUserName",
            "name",
            "keyId",
            "functionName",
            "topicArn",
            "subscriptionArn",
            "stackName",
            "tagKeys",
            "tags",
            "status",
            "detectorId",
        ]
    ),
    _value,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    watch=st.sampled_from(WATCHES),
    name_index=st.integers(min_value=0, max_value=8),
    request=_request,
    identity=st.dictionaries(st.sampled_from(["type", "arn", "accountId", "accessKeyId", "sessionContext"]), _value),
)
def test_a_hostile_record_never_re_contains_what_the_ledger_does_not_hold(watch, name_index, request, identity) -> None:
    event = load_event("tamper-delete-user-policy.json")
    event["source"] = watch.source
    d = event["detail"]
    d["eventSource"], d["eventName"] = watch.event_source, watch.names[name_index % len(watch.names)]
    d["requestParameters"], d["userIdentity"] = request, identity
    matched = watch_for(event)
    if matched is None:
        return
    decision = decide(calls.read(event), matched, CONFIG, MemoryLedger())  # holds nothing
    assert decision.verdict is not Verdict.RECONTAIN
    assert len(decision.reason) < 2000
