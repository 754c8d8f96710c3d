"""The emulator routes with moto's EventBridge pattern matcher (the hand-written one is gone): the
template's rules route every event in events/ as EventBridge would, broken patterns raise, and moto's
known differences from EventBridge are kept visible (none touches an operator the templates use)."""

from __future__ import annotations

import copy

import pytest
from botocore.stub import Stubber

from keyguard.local import emulator
from keyguard.local.patterns import aws_matches, matches, template_operators
from tests.conftest import load_event

EXPECTED = {
    "cloudtrail-create-access-key-failed.json": [],
    "cloudtrail-create-access-key.json": ["AccessKeyCreatedFunction"],
    "guardduty-assumed-role-exfiltration.json": ["GuardDutyFunction"],
    "guardduty-iam-user.json": ["GuardDutyFunction"],
    "guardduty-low-severity.json": ["GuardDutyFunction"],
    "guardduty-root.json": ["GuardDutyFunction"],
    "guardduty-sample.json": ["GuardDutyFunction"],
    "health-credentials-exposed.json": ["HealthFunction"],
    "health-iam-quarantine.json": ["HealthFunction"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_rules_route_every_event(name: str) -> None:
    rules = emulator.load_rules()
    assert [r.function for r in emulator.route(load_event(name), rules)] == EXPECTED[name]


def test_templates_use_only_operators_moto_implements_as_aws_does() -> None:
    used = {op for rule in emulator.load_rules() for op in template_operators(rule.pattern)}
    assert used == {"prefix", "exists"}


@pytest.mark.parametrize(
    ("change", "routed"),
    [
        (lambda e: e["detail"].update(errorCode="AccessDenied"), False),
        (lambda e: e["detail"].update(errorCode=None), False),  # null is a value: it exists
        (lambda e: e["detail"].update(eventName="CreateUser"), False),
        (lambda e: e.update(source="aws.sts"), False),
        (lambda e: e["detail"].pop("errorCode", None), True),
    ],
)
def test_create_access_key_rule_edges(change, routed: bool) -> None:
    event = copy.deepcopy(load_event("cloudtrail-create-access-key.json"))
    change(event)
    assert bool(emulator.route(event, emulator.load_rules())) is routed


def test_health_prefix() -> None:
    event = copy.deepcopy(load_event("health-credentials-exposed.json"))
    event["detail"]["eventTypeCode"] = "AWS_EC2_OPERATIONAL_ISSUE"
    assert emulator.route(event, emulator.load_rules()) == []


@pytest.mark.parametrize(
    "pattern",
    [{"a": [{"contains": "x"}]}, {"a": [{"prefx": "x"}]}, {"$or": [{"a": ["x"]}, {"b": [{"bogus": 1}]}]}],
)
def test_unknown_operator_raises_instead_of_matching(pattern) -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        matches(pattern, {"a": "x"})


@pytest.mark.parametrize("pattern", [{"a": "x"}, {"a": []}])
def test_malformed_pattern_raises(pattern) -> None:
    with pytest.raises(ValueError, match="invalid event pattern"):
        matches(pattern, {"a": "x"})


def test_event_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="event must be a JSON object"):
        matches({"a": ["x"]}, ["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "event", "eventbridge"),
    [
        ({"a": [True]}, {"a": 1}, False),
        ({"employees": {"firstName": ["Anna"]}}, {"employees": [{"firstName": "Anna"}]}, True),
    ],
)
def test_moto_gaps_stay_visible(pattern, event, eventbridge: bool) -> None:
    """Where moto's matcher is not EventBridge: no template pattern uses these shapes."""
    assert matches(pattern, event) is not eventbridge


def test_aws_answers_when_asked() -> None:
    import boto3

    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    event = load_event("guardduty-iam-user.json")
    (rule,) = emulator.route(event, emulator.load_rules())
    with Stubber(client) as stub:
        stub.add_response("test_event_pattern", {"Result": True})
        assert aws_matches(client, rule.pattern, event) is True
