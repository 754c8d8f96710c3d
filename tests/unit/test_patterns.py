"""Table-driven tests for the local EventBridge event-pattern matcher."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.local.patterns import matches

# A realistic CloudTrail-via-EventBridge event for iam:CreateAccessKey.
CREATE_KEY_OK: dict[str, Any] = {
    "version": "0",
    "id": "6f2a6b7e-1111-2222-3333-444455556666",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.iam",
    "account": "123456789012",
    "time": "2024-05-01T12:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "eventVersion": "1.08",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {"userName": "ci-bot"},
        "responseElements": {"accessKey": {"userName": "ci-bot", "accessKeyId": "AKIAEXAMPLE", "status": "Active"}},
    },
}
CREATE_KEY_FAILED: dict[str, Any] = {
    **CREATE_KEY_OK,
    "detail": {
        **{k: v for k, v in CREATE_KEY_OK["detail"].items() if k != "responseElements"},
        "errorCode": "AccessDenied",
        "errorMessage": "User is not authorized to perform: iam:CreateAccessKey",
        "responseElements": None,
    },
}
CREATE_KEY_PATTERN = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventName": ["CreateAccessKey"], "errorCode": [{"exists": False}]},
}

HEALTH_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "AWS Health Event",
    "source": "aws.health",
    "account": "123456789012",
    "time": "2024-05-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["AKIAEXAMPLE"],
    "detail": {
        "eventArn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/x",
        "service": "RISK",
        "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
        "eventTypeCategory": "issue",
        "affectedEntities": [{"entityValue": "AKIAEXAMPLE"}],
    },
}
HEALTH_PATTERN = {
    "source": ["aws.health"],
    "detail": {"service": ["RISK"], "eventTypeCode": [{"prefix": "AWS_RISK_"}]},
}


def _with_detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, "detail": {**event["detail"], **changes}}


CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # --- exact matching, AND across keys, OR across alternatives
    ("exact-string", {"source": ["aws.iam"]}, {"source": "aws.iam"}, True),
    ("exact-string-miss", {"source": ["aws.iam"]}, {"source": "aws.ec2"}, False),
    ("exact-case-sensitive", {"source": ["aws.iam"]}, {"source": "AWS.IAM"}, False),
    ("alternatives-or", {"source": ["aws.ec2", "aws.iam"]}, {"source": "aws.iam"}, True),
    (
        "keys-and-one-fails",
        {"source": ["aws.iam"], "region": ["eu-west-1"]},
        {"source": "aws.iam", "region": "us-east-1"},
        False,
    ),
    (
        "keys-and-all-pass",
        {"source": ["aws.iam"], "region": ["us-east-1"]},
        {"source": "aws.iam", "region": "us-east-1"},
        True,
    ),
    ("missing-field", {"source": ["aws.iam"]}, {"detail-type": "x"}, False),
    ("extra-event-fields-ignored", {"a": ["1"]}, {"a": "1", "b": "2"}, True),
    ("empty-string", {"a": [""]}, {"a": ""}, True),
    ("empty-string-not-null", {"a": [""]}, {"a": None}, False),
    ("string-not-number", {"a": ["5"]}, {"a": 5}, False),
    ("number-exact", {"a": [4]}, {"a": 4}, True),
    ("number-int-vs-float", {"a": [4]}, {"a": 4.0}, True),
    ("number-float-vs-int", {"a": [4.0]}, {"a": 4}, True),
    ("number-miss", {"a": [4]}, {"a": 5}, False),
    ("number-not-string", {"a": [5]}, {"a": "5"}, False),
    ("bool-true", {"a": [True]}, {"a": True}, True),
    ("bool-not-one", {"a": [True]}, {"a": 1}, False),
    ("one-not-bool", {"a": [1]}, {"a": True}, False),
    ("bool-not-string", {"a": [False]}, {"a": "false"}, False),
    ("null-exact", {"a": [None]}, {"a": None}, True),
    ("null-vs-missing", {"a": [None]}, {}, False),
    ("null-vs-empty-string", {"a": [None]}, {"a": ""}, False),
    # --- nested objects
    ("nested-match", {"detail": {"state": ["running"]}}, {"detail": {"state": "running"}}, True),
    ("nested-miss", {"detail": {"state": ["running"]}}, {"detail": {"state": "stopped"}}, False),
    ("nested-parent-missing", {"detail": {"state": ["running"]}}, {"source": "x"}, False),
    ("nested-parent-scalar", {"detail": {"state": ["running"]}}, {"detail": "running"}, False),
    ("nested-deep", {"detail": {"a": {"b": {"c": ["x"]}}}}, {"detail": {"a": {"b": {"c": "x"}}}}, True),
    ("leaf-pattern-vs-object-value", {"detail": ["x"]}, {"detail": {"x": 1}}, False),
    # --- arrays in events
    ("array-any-element", {"resources": ["arn:b"]}, {"resources": ["arn:a", "arn:b"]}, True),
    ("array-no-element", {"resources": ["arn:c"]}, {"resources": ["arn:a", "arn:b"]}, False),
    ("array-empty", {"resources": ["arn:a"]}, {"resources": []}, False),
    ("array-intersection", {"resources": ["x", "arn:b"]}, {"resources": ["arn:a", "arn:b"]}, True),
    ("array-nested-arrays", {"a": ["z"]}, {"a": [["x"], ["y", "z"]]}, True),
    ("array-operator-any-element", {"a": [{"prefix": "pro"}]}, {"a": ["dev-1", "prod-1"]}, True),
    (
        "array-of-objects",
        {"employees": {"firstName": ["Anna"]}},
        {"employees": [{"firstName": "John"}, {"firstName": "Anna"}]},
        True,
    ),
    (
        "array-of-objects-miss",
        {"employees": {"firstName": ["Zoe"]}},
        {"employees": [{"firstName": "John"}, {"firstName": "Anna"}]},
        False,
    ),
    (
        "array-of-objects-same-element",
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        {
            "employees": [
                {"firstName": "Anna", "lastName": "Smith"},
                {"firstName": "Peter", "lastName": "Jones"},
            ]
        },
        False,
    ),
    (
        "array-of-objects-same-element-hit",
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        {
            "employees": [
                {"firstName": "Anna", "lastName": "Smith"},
                {"firstName": "Peter", "lastName": "Jones"},
            ]
        },
        True,
    ),
    # --- prefix
    ("prefix-hit", {"time": [{"prefix": "2017-10-02"}]}, {"time": "2017-10-02T18:43:48Z"}, True),
    ("prefix-miss", {"time": [{"prefix": "2017-10-02"}]}, {"time": "2017-10-03T18:43:48Z"}, False),
    ("prefix-case-sensitive", {"a": [{"prefix": "AWS_"}]}, {"a": "aws_risk"}, False),
    ("prefix-non-string", {"a": [{"prefix": "1"}]}, {"a": 12}, False),
    ("prefix-missing", {"a": [{"prefix": "x"}]}, {}, False),
    (
        "prefix-ignore-case-hit",
        {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]},
        {"service": "eventbridge"},
        True,
    ),
    (
        "prefix-ignore-case-miss",
        {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]},
        {"service": "lambda"},
        False,
    ),
    # --- suffix
    ("suffix-hit", {"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.png"}, True),
    ("suffix-miss", {"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.PNG"}, False),
    (
        "suffix-ignore-case-hit",
        {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]},
        {"FileName": "cat.PNG"},
        True,
    ),
    (
        "suffix-ignore-case-miss",
        {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]},
        {"FileName": "cat.jpg"},
        False,
    ),
    # --- equals-ignore-case
    ("eic-hit", {"name": [{"equals-ignore-case": "alice"}]}, {"name": "ALICE"}, True),
    ("eic-miss", {"name": [{"equals-ignore-case": "alice"}]}, {"name": "alicia"}, False),
    ("eic-non-string", {"name": [{"equals-ignore-case": "1"}]}, {"name": 1}, False),
    # --- anything-but
    ("ab-string-hit", {"state": [{"anything-but": "initializing"}]}, {"state": "running"}, True),
    ("ab-string-miss", {"state": [{"anything-but": "initializing"}]}, {"state": "initializing"}, False),
    ("ab-number-hit", {"x": [{"anything-but": 123}]}, {"x": 124}, True),
    ("ab-number-miss-float", {"x": [{"anything-but": 123}]}, {"x": 123.0}, False),
    ("ab-list-strings-hit", {"state": [{"anything-but": ["stopped", "overloaded"]}]}, {"state": "ok"}, True),
    (
        "ab-list-strings-miss",
        {"state": [{"anything-but": ["stopped", "overloaded"]}]},
        {"state": "stopped"},
        False,
    ),
    ("ab-list-numbers-miss", {"x": [{"anything-but": [100, 200, 300]}]}, {"x": 200}, False),
    ("ab-list-numbers-hit", {"x": [{"anything-but": [100, 200, 300]}]}, {"x": 250}, True),
    ("ab-missing-field", {"state": [{"anything-but": "initializing"}]}, {}, False),
    ("ab-null-value", {"state": [{"anything-but": "initializing"}]}, {"state": None}, True),
    ("ab-prefix-hit", {"region": [{"anything-but": {"prefix": "us-"}}]}, {"region": "eu-west-1"}, True),
    ("ab-prefix-miss", {"region": [{"anything-but": {"prefix": "us-"}}]}, {"region": "us-east-1"}, False),
    ("ab-suffix-miss", {"f": [{"anything-but": {"suffix": ".png"}}]}, {"f": "a.png"}, False),
    ("ab-suffix-hit", {"f": [{"anything-but": {"suffix": ".png"}}]}, {"f": "a.jpg"}, True),
    (
        "ab-ignore-case-miss",
        {"s": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
        {"s": "INITIALIZING"},
        False,
    ),
    (
        "ab-ignore-case-hit",
        {"s": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
        {"s": "running"},
        True,
    ),
    (
        "ab-ignore-case-list-miss",
        {"s": [{"anything-but": {"equals-ignore-case": ["a", "b"]}}]},
        {"s": "B"},
        False,
    ),
    ("ab-wildcard-miss", {"p": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"p": "/usr/lib/x"}, False),
    ("ab-wildcard-hit", {"p": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"p": "/usr/bin/x"}, True),
    ("ab-array-any-element", {"s": [{"anything-but": "a"}]}, {"s": ["a", "b"]}, True),
    ("ab-array-all-excluded", {"s": [{"anything-but": ["a", "b"]}]}, {"s": ["a", "b"]}, False),
    # --- exists (leaf nodes only; null counts as present)
    ("exists-true-present", {"d": {"c": [{"exists": True}]}}, {"d": {"c": 5}}, True),
    ("exists-true-absent", {"d": {"c": [{"exists": True}]}}, {"d": {"x": 5}}, False),
    ("exists-true-null", {"d": {"c": [{"exists": True}]}}, {"d": {"c": None}}, True),
    ("exists-true-empty-string", {"d": {"c": [{"exists": True}]}}, {"d": {"c": ""}}, True),
    ("exists-true-object-not-leaf", {"d": {"c": [{"exists": True}]}}, {"d": {"c": {"c1": 100}}}, False),
    ("exists-false-absent", {"d": {"c": [{"exists": False}]}}, {"d": {"x": 5}}, True),
    ("exists-false-present", {"d": {"c": [{"exists": False}]}}, {"d": {"c": 5}}, False),
    ("exists-false-null", {"d": {"c": [{"exists": False}]}}, {"d": {"c": None}}, False),
    ("exists-false-object-not-leaf", {"d": {"c": [{"exists": False}]}}, {"d": {"c": {"c1": 100}}}, True),
    ("exists-false-parent-missing", {"d": {"c": [{"exists": False}]}}, {"other": 1}, True),
    ("exists-false-or-value", {"a": [{"exists": False}, "x"]}, {"a": "x"}, True),
    # --- numeric
    ("num-range-int-hit", {"c": [{"numeric": [">", 0, "<=", 5]}]}, {"c": 5}, True),
    ("num-range-float-hit", {"c": [{"numeric": [">", 0, "<=", 5]}]}, {"c": 0.5}, True),
    ("num-range-lower-open", {"c": [{"numeric": [">", 0, "<=", 5]}]}, {"c": 0}, False),
    ("num-range-upper-closed-float", {"c": [{"numeric": [">", 0, "<=", 5]}]}, {"c": 5.0}, True),
    ("num-range-above", {"c": [{"numeric": [">", 0, "<=", 5]}]}, {"c": 5.000001}, False),
    ("num-range-float-bounds", {"c": [{"numeric": [">=", 1.5, "<", 2.5]}]}, {"c": 2}, True),
    ("num-lt-hit", {"d": [{"numeric": ["<", 10]}]}, {"d": 9.99}, True),
    ("num-lt-miss", {"d": [{"numeric": ["<", 10]}]}, {"d": 10}, False),
    ("num-gte-hit", {"d": [{"numeric": [">=", 10]}]}, {"d": 10.0}, True),
    ("num-eq-exponent", {"x": [{"numeric": ["=", 3.018e2]}]}, {"x": 301.8}, True),
    ("num-eq-int-float", {"x": [{"numeric": ["=", 4]}]}, {"x": 4.0}, True),
    ("num-eq-miss", {"x": [{"numeric": ["=", 4]}]}, {"x": 4.5}, False),
    ("num-string-value", {"x": [{"numeric": [">", 0]}]}, {"x": "5"}, False),
    ("num-bool-value", {"x": [{"numeric": [">", 0]}]}, {"x": True}, False),
    ("num-negative", {"x": [{"numeric": ["<", 0]}]}, {"x": -3}, True),
    ("num-array-any", {"x": [{"numeric": [">", 10]}]}, {"x": [1, 2, 11]}, True),
    ("num-missing", {"x": [{"numeric": [">", 0]}]}, {}, False),
    # --- wildcard
    ("wc-middle-hit", {"s": [{"wildcard": "Simple*Service"}]}, {"s": "SimpleQueueService"}, True),
    ("wc-middle-empty-run", {"s": [{"wildcard": "Simple*Service"}]}, {"s": "SimpleService"}, True),
    ("wc-middle-miss", {"s": [{"wildcard": "Simple*Service"}]}, {"s": "SimpleQueueServices"}, False),
    ("wc-multi", {"k": [{"wildcard": "dir/*/file*.txt"}]}, {"k": "dir/a/b/file-1.txt"}, True),
    ("wc-no-star-exact", {"k": [{"wildcard": "abc"}]}, {"k": "abcd"}, False),
    ("wc-escaped-star-hit", {"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"}, True),
    ("wc-escaped-star-miss", {"k": [{"wildcard": "a\\*b"}]}, {"k": "axb"}, False),
    ("wc-escaped-backslash", {"k": [{"wildcard": "a\\\\*"}]}, {"k": "a\\bc"}, True),
    ("wc-regex-chars-literal", {"k": [{"wildcard": "a.b*"}]}, {"k": "axb"}, False),
    ("wc-non-string", {"k": [{"wildcard": "*"}]}, {"k": 5}, False),
    # --- cidr
    ("cidr-v4-hit", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.255"}, True),
    ("cidr-v4-miss", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.1"}, False),
    ("cidr-v6-hit", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ("cidr-v6-vs-v4", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "10.0.0.1"}, False),
    ("cidr-not-an-ip", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "AWS Internal"}, False),
    ("cidr-non-string", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": 10}, False),
    # --- $or
    (
        "or-first",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "metricName": "CPU"},
        True,
    ),
    (
        "or-second",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
        True,
    ),
    (
        "or-none",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        False,
    ),
    (
        "or-and-still-required",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"x": ["y"]}]},
        {"source": "aws.ec2", "metricName": "CPU"},
        False,
    ),
    (
        "or-nested-in-detail",
        {"detail": {"$or": [{"a": [1]}, {"b": [{"exists": True}]}]}},
        {"detail": {"b": None}},
        True,
    ),
    ("or-branch-with-and", {"$or": [{"a": ["1"], "b": ["2"]}, {"c": ["3"]}]}, {"a": "1", "b": "x"}, False),
    ("or-nested-or", {"$or": [{"a": ["1"]}, {"$or": [{"b": ["2"]}, {"c": ["3"]}]}]}, {"c": "3"}, True),
    # --- realistic keyguard routes
    ("iam-createkey-success", CREATE_KEY_PATTERN, CREATE_KEY_OK, True),
    ("iam-createkey-failed", CREATE_KEY_PATTERN, CREATE_KEY_FAILED, False),
    (
        "iam-createkey-failed-null-error",
        CREATE_KEY_PATTERN,
        _with_detail(CREATE_KEY_OK, errorCode=None),
        False,
    ),
    ("iam-other-event", CREATE_KEY_PATTERN, _with_detail(CREATE_KEY_OK, eventName="DeleteAccessKey"), False),
    ("iam-wrong-source", CREATE_KEY_PATTERN, {**CREATE_KEY_OK, "source": "aws.sts"}, False),
    ("health-risk", HEALTH_PATTERN, HEALTH_EVENT, True),
    (
        "health-other-risk-code",
        HEALTH_PATTERN,
        _with_detail(HEALTH_EVENT, eventTypeCode="AWS_RISK_IAM_QUARANTINE"),
        True,
    ),
    (
        "health-non-risk-code",
        HEALTH_PATTERN,
        _with_detail(HEALTH_EVENT, eventTypeCode="AWS_EC2_OPERATIONAL_ISSUE"),
        False,
    ),
    ("health-other-service", HEALTH_PATTERN, _with_detail(HEALTH_EVENT, service="EC2"), False),
    ("health-wrong-source", HEALTH_PATTERN, {**HEALTH_EVENT, "source": "aws.iam"}, False),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in CASES],
)
def test_matches(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_case_ids_are_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


INVALID: list[tuple[str, Any, str]] = [
    ("unknown-operator", {"a": [{"contains": "x"}]}, "unknown operator 'contains'"),
    ("unknown-operator-typo", {"a": [{"prefx": "x"}]}, "unknown operator 'prefx'"),
    ("two-operators-in-one-object", {"a": [{"prefix": "x", "suffix": "y"}]}, "exactly one key"),
    ("empty-operator-object", {"a": [{}]}, "exactly one key"),
    ("scalar-leaf", {"a": "x"}, "must be a list"),
    ("number-leaf", {"a": 5}, "must be a list"),
    ("empty-leaf-list", {"a": []}, "empty list"),
    ("empty-pattern", {}, "empty pattern"),
    ("empty-nested-object", {"detail": {}}, "empty pattern"),
    ("nested-list-alternative", {"a": [["x"]]}, "invalid value"),
    ("prefix-number", {"a": [{"prefix": 5}]}, "'prefix'"),
    ("prefix-bad-object", {"a": [{"prefix": {"ignore-case": "x"}}]}, "'prefix'"),
    ("suffix-list", {"a": [{"suffix": [".png"]}]}, "'suffix'"),
    ("eic-number", {"a": [{"equals-ignore-case": 1}]}, "'equals-ignore-case'"),
    ("exists-string", {"a": [{"exists": "true"}]}, "'exists'"),
    ("exists-int", {"a": [{"exists": 1}]}, "'exists'"),
    ("numeric-unknown-op", {"a": [{"numeric": ["!=", 4]}]}, "unknown numeric operator '!='"),
    ("numeric-odd-length", {"a": [{"numeric": [">", 0, "<"]}]}, "operator/number pairs"),
    ("numeric-string-operand", {"a": [{"numeric": [">", "4"]}]}, "must be a number"),
    ("numeric-bool-operand", {"a": [{"numeric": [">", True]}]}, "must be a number"),
    ("numeric-not-list", {"a": [{"numeric": 4}]}, "operator/number pairs"),
    ("anything-but-mixed-list", {"a": [{"anything-but": ["a", 1]}]}, "'anything-but'"),
    ("anything-but-empty-list", {"a": [{"anything-but": []}]}, "'anything-but'"),
    ("anything-but-null", {"a": [{"anything-but": None}]}, "'anything-but'"),
    ("anything-but-unknown-nested", {"a": [{"anything-but": {"numeric": [">", 1]}}]}, "'anything-but'"),
    ("anything-but-nested-number", {"a": [{"anything-but": {"prefix": 1}}]}, "'anything-but'"),
    ("wildcard-consecutive-stars", {"a": [{"wildcard": "a**b"}]}, "consecutive"),
    ("wildcard-bad-escape", {"a": [{"wildcard": "a\\b"}]}, "invalid escape"),
    ("wildcard-trailing-backslash", {"a": [{"wildcard": "a\\"}]}, "invalid escape"),
    ("cidr-invalid", {"a": [{"cidr": "10.0.0.0/33"}]}, "invalid 'cidr'"),
    ("cidr-not-string", {"a": [{"cidr": 10}]}, "'cidr'"),
    ("or-not-list", {"$or": {"a": ["x"]}}, "'\\$or'"),
    ("or-empty", {"$or": []}, "'\\$or'"),
    ("or-element-not-object", {"$or": [["x"]]}, "'\\$or' element 0"),
    ("or-invalid-branch", {"$or": [{"a": ["x"]}, {"b": [{"bogus": 1}]}]}, "unknown operator 'bogus'"),
    ("pattern-not-object", ["source"], "must be a JSON object"),
]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [pytest.param(p, m, id=name) for name, p, m in INVALID],
)
def test_malformed_pattern_raises(pattern: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        matches(pattern, {"a": "x", "b": "y", "detail": {"x": 1}})


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param({"a": ["x", {"bogus": 1}]}, id="after-matching-alternative"),
        pytest.param({"a": ["x"], "b": [{"bogus": 1}]}, id="on-field-absent-from-event"),
        pytest.param({"zzz": {"yyy": [{"bogus": 1}]}}, id="under-absent-parent"),
    ],
)
def test_malformed_pattern_raises_even_when_it_would_otherwise_match(pattern: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown operator 'bogus'"):
        matches(pattern, {"a": "x"})


def test_event_must_be_object() -> None:
    with pytest.raises(ValueError, match="event must be a JSON object"):
        matches({"a": ["x"]}, ["a"])  # type: ignore[arg-type]


def test_inputs_are_not_mutated() -> None:
    pattern = {"detail": {"errorCode": [{"exists": False}]}, "$or": [{"source": ["aws.iam"]}]}
    event = {"source": "aws.iam", "detail": {"eventName": "CreateAccessKey"}}
    pattern_before, event_before = repr(pattern), repr(event)
    assert matches(pattern, event) is True
    assert (repr(pattern), repr(event)) == (pattern_before, event_before)
