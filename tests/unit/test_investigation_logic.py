"""Investigation's pure parts and its CloudTrail lookup (paginated, multi-region, rate-limited),
driven by the LookupEvents stand-in at botocore's HTTP seam: no network, no moto."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from keyguard.aws import Clients
from keyguard.errors import MalformedEvent
from keyguard.investigate import handoff
from keyguard.investigate.summary import summarize
from keyguard.investigate.trail import RateLimiter, lookup
from keyguard.local.cloudtrail import FakeCloudTrail, load_history, rebase
from keyguard.plan import Outcome
from keyguard.respond import Response
from tests.conftest import incident_from

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"
ACCOUNT = "123456789012"


@pytest.fixture
def clients(monkeypatch) -> Clients:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Clients(boto3.session.Session(region_name="us-east-1"))


def _synthetic(n: int, regions: list[str], key: str = KEY) -> list[dict]:
    out = []
    for i in range(n):
        when = NOW - timedelta(days=1, seconds=i * 37)
        out.append(
            {
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventID": f"00000000-0000-0000-0000-{i:012d}",
                "eventName": ["ListBuckets", "DescribeInstances", "GetCallerIdentity"][i % 3],
                "eventSource": ["s3", "ec2", "sts"][i % 3] + ".amazonaws.com",
                "awsRegion": regions[i % len(regions)],
                "readOnly": True,
                "sourceIPAddress": "203.0.113.7",
                "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": "alice"},
            }
        )
    return out


def test_history_summary_names_everything_left_behind() -> None:
    records = load_history(KEY)
    s = summarize(records, ACCOUNT)
    assert s.total == 22 and s.errors == {"AccessDenied": 9}
    assert s.created_keys == [("ci-deployer", "AKIAEXAMPLENEWKEY001")]
    assert s.changed_users == {"backdoor-admin": ["CreateUser", "CreateLoginProfile", "AttachUserPolicy"]}
    assert s.assumed_roles == {"deploy-admin": ["maint"]}
    assert [(x.region, x.count, x.kinds) for x in s.launches] == [
        ("us-east-1", 2, ("c5.24xlarge",)),
        ("eu-west-1", 1, ("p3.16xlarge",)),
    ]
    assert s.writes["iam:CreateUser"] == 1 and "s3:ListBuckets" not in s.writes
    assert s.by_region == {"us-east-1": 19, "eu-west-1": 2, "ap-southeast-1": 1}
    assert s.source_ips == {"198.51.100.23": 22}
    assert not s.looks_like_recon  # 9 denials in 22 calls is not yet a burst


def test_failed_calls_create_nothing_and_other_accounts_roles_are_only_reported() -> None:
    base = {"eventTime": "2026-11-27T10:00:00Z", "awsRegion": "us-east-1", "userIdentity": {"accessKeyId": KEY}}
    records = [
        {**base, "eventName": "CreateUser", "requestParameters": {"userName": "x"}, "errorCode": "AccessDenied"},
        {**base, "eventName": "AssumeRole", "requestParameters": {"roleArn": "arn:aws:iam::210987654321:role/r"}},
        {**base, "eventName": "CreateRole", "requestParameters": {"roleName": "new-role"}, "readOnly": "false"},
        *[{**base, "eventName": "ListSecrets", "errorCode": "AccessDenied"} for _ in range(12)],
    ]
    s = summarize(records, ACCOUNT)
    assert s.changed_users == {} and s.assumed_roles == {}
    assert s.other_account_roles == ["arn:aws:iam::210987654321:role/r"]
    assert s.changed_roles == {"new-role": ["CreateRole"]}
    assert s.writes == {"?:CreateRole": 1}
    assert s.looks_like_recon


def test_lookup_reads_every_page_of_every_region_within_the_rate_limit(clients) -> None:
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    records = _synthetic(500, regions) + _synthetic(40, regions, key="AKIAI44QH8DHBEXAMPLE")
    trail = FakeCloudTrail(records).install(clients.session)
    slept: list[float] = []
    found = lookup(clients, KEY, NOW - timedelta(days=90), NOW, regions, sleep=slept.append, clock=lambda: 0.0)
    assert len(found.records) == 500 and found.complete
    assert {r["eventID"] for r in found.records} == {r["eventID"] for r in records[:500]}
    per_region = {region: sum(1 for r in records[:500] if r["awsRegion"] == region) for region in regions}
    assert found.calls == {region: math.ceil(n / 50) for region, n in per_region.items()}
    assert dict(trail.calls) == found.calls
    # at most 2 calls per second per region: with time standing still, page k of a region waits k * 0.5 s
    expected = [0.5 * k for n in found.calls.values() for k in range(1, n)]
    assert sorted(slept) == sorted(expected)
    assert [r["eventTime"] for r in found.records] == sorted(r["eventTime"] for r in found.records)


def test_lookup_respects_the_window(clients) -> None:
    regions = ["us-east-1"]
    old = _synthetic(5, regions)
    for r in old:
        r["eventTime"] = "2020-01-01T00:00:00Z"
    FakeCloudTrail(old + _synthetic(3, regions)).install(clients.session)
    found = lookup(clients, KEY, NOW - timedelta(days=90), NOW, regions, sleep=lambda s: None)
    assert len(found.records) == 3


def test_a_region_that_cannot_be_read_is_reported_not_dropped(clients) -> None:
    clients = Clients(clients.session, retries={"mode": "standard", "max_attempts": 2})  # fail fast
    regions = ["us-east-1", "eu-west-1"]
    FakeCloudTrail(_synthetic(10, regions), throttle=lambda region, n: region == "eu-west-1").install(clients.session)
    found = lookup(clients, KEY, NOW - timedelta(days=90), NOW, regions, sleep=lambda s: None)
    assert not found.complete and set(found.errors) == {"eu-west-1"}
    assert "Throttling" in found.errors["eu-west-1"]
    assert len(found.records) == 5  # us-east-1's


def test_rate_limiter_spaces_calls() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5, 0.5]


def test_rebase_moves_history_into_the_window_keeping_gaps() -> None:
    records = rebase(load_history(KEY), NOW)
    times = [datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for r in records]
    assert max(times) == NOW - timedelta(hours=1)
    assert max(times) - min(times) == timedelta(minutes=4, seconds=26)


def test_hand_off_round_trips_the_incident() -> None:
    incident = incident_from("guardduty-iam-user.json")
    response = Response(incident, Outcome.CONTAINED, owner="alice", at=NOW)
    body = json.loads(json.dumps(handoff.payload(response)))
    assert handoff.from_payload(body) == (incident, "alice", NOW)
    assert handoff.wanted(response)
    assert not handoff.wanted(Response(incident, Outcome.NOT_FOUND))


@pytest.mark.parametrize("body", [{}, {"incident": {"source": "nope"}, "at": "x"}, {"incident": [], "at": 1}])
def test_hand_off_that_is_not_ours_is_a_clear_error(body) -> None:
    with pytest.raises(MalformedEvent, match="not a keyguard investigation request"):
        handoff.from_payload(body)


def test_summary_streams_in_bounded_memory_and_counts_what_it_left_out() -> None:
    from keyguard.investigate.summary import MAX_ITEMS, MAX_KEYS, OTHER, Summary

    s = Summary(account=ACCOUNT)
    base = {"eventTime": "2026-11-27T10:00:00Z", "awsRegion": "us-east-1", "eventSource": "iam.amazonaws.com"}
    for i in range(MAX_KEYS + 50):  # attacker-chosen user agents: more than a report holds
        s.add({**base, "eventName": "ListUsers", "userAgent": f"agent-{i}", "readOnly": True})
    for i in range(MAX_ITEMS + 7):
        s.add({**base, "eventName": "CreateUser", "requestParameters": {"userName": f"u{i}"}, "readOnly": False})
    assert s.total == MAX_KEYS + 50 + MAX_ITEMS + 7
    assert len(s.user_agents) == MAX_KEYS + 1 and s.user_agents[OTHER] == 50  # the rest under OTHER
    assert len(s.changed_users) == MAX_ITEMS and s.dropped["changed users"] == 7
    assert len(json.dumps(s.to_dict())) < 200_000  # fits in the checkpoint's SQS message


def test_checkpoint_round_trip_continues_where_it_stopped() -> None:
    from keyguard.investigate.handoff import Run
    from keyguard.investigate.summary import Summary
    from keyguard.investigate.trail import Cursor

    records = load_history(KEY)
    whole = summarize(records, ACCOUNT)
    first = summarize(records[:10], ACCOUNT)
    run = Run(phase=0, part=2, start=NOW - timedelta(days=90), end=NOW, regions=["us-east-1"])
    run.cursors = {"us-east-1": Cursor("dG9rZW4=", False, 3).to_dict()}
    run.summary = first.to_dict()
    again = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again == run
    assert Cursor.from_dict(again.cursors["us-east-1"]) == Cursor("dG9rZW4=", False, 3)
    resumed = Summary.from_dict(again.summary)
    for r in records[10:]:
        resumed.add(r)
    assert resumed.to_dict() == whole.to_dict()


def test_stream_stops_at_the_deadline_and_resumes_from_the_token(clients) -> None:
    from keyguard.investigate.summary import Summary
    from keyguard.investigate.trail import Cursor, stream

    records = _synthetic(260, ["us-east-1"])
    FakeCloudTrail(records).install(clients.session)
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    cursors = {"us-east-1": Cursor()}
    s = Summary(account=ACCOUNT)
    args = (clients, KEY, NOW - timedelta(days=90), NOW)
    part = stream(*args, cursors, s.add, deadline=1.0, sleep=sleep, clock=lambda: now[0])
    assert not part.finished and cursors["us-east-1"].token and s.total == 150  # 3 pages by t=1.0 s
    resumed = {r: Cursor.from_dict(json.loads(json.dumps(c.to_dict()))) for r, c in cursors.items()}
    rest = stream(*args, resumed, s.add, sleep=sleep, clock=lambda: now[0])
    assert rest.finished and rest.complete and s.total == 260 and resumed["us-east-1"].calls == 6


def test_a_checkpoint_always_fits_in_an_sqs_message() -> None:
    from keyguard.investigate.summary import MAX_CHECKPOINT_BYTES, Summary

    s = Summary(account=ACCOUNT)
    long = "x" * 190
    for i in range(400):  # the worst an attacker can make: long names everywhere, every cap full
        s.add(
            {
                "eventTime": "2026-11-27T10:00:00Z",
                "eventID": f"{i:036d}",
                "eventSource": f"{long}{i}.amazonaws.com",
                "eventName": "PutRolePolicy",
                "awsRegion": f"r{i}",
                "sourceIPAddress": f"{long}{i}",
                "userAgent": f"{long}{i}",
                "readOnly": False,
                "requestParameters": {"roleName": f"{long}{i}", "policyName": long, "policyDocument": long},
            }
        )
    assert len(json.dumps(s.to_dict())) > MAX_CHECKPOINT_BYTES  # so the test shows the shrinking
    checkpoint = s.to_checkpoint()
    assert len(json.dumps(checkpoint).encode()) <= MAX_CHECKPOINT_BYTES
    resumed = Summary.from_dict(checkpoint)
    assert resumed.total == 400 and sum(resumed.by_call.values()) == 400  # counts survive, folded
