"""The fault matrix: every AWS call a response makes x every kind of fault, against moto.

Each fault is injected at botocore's `before-send` seam (tests/faults.py): the request never reaches the
emulator, botocore parses the injected answer (or the raised transport error) and its standard retry mode
(1 attempt + 5 retries) runs as it would against AWS. Only the pause between attempts is recorded instead of slept
(faults.Backoff), so the matrix takes seconds.

For each cell the test asserts what happened, from the emulator's IAM state and the messages on the topic:
- a transient fault (twice, then the call succeeds) is retried and the response completes as without it;
- a fault that lasts (throttling or a network error beyond the 5 attempts, access denied, not found) is
  named in the notification (when SNS itself works) and the handler raises ResponseFailed, so Lambda
  retries and the dead-letter queue keeps the event; Lambda's retry, once the fault is gone, completes
  the response and announces it once;
- an action is reported "done" only when its effect is in IAM, and nothing is reported "failed" or
  "skipped" that changed IAM;
- nothing changes on any key but the named one, nor on any principal but its owner.

The matrix (calls x faults x outcome) is printed at the end of the run (conftest.py) and kept in
docs/reliability.md (test_docs_show_the_matrix; KEYGUARD_WRITE_DOCS=1 rewrites that section).

Adding calls: a new AWS call in a response makes test_every_call_a_response_makes_is_in_the_matrix fail
until it has a Row. The investigation function's calls (CloudTrail LookupEvents, ...) go in
INVESTIGATION_ROWS, with a Scenario that delivers an investigation request.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, deny_all_policy
from keyguard.aws import RETRY_CONFIG
from keyguard.errors import ResponseFailed
from tests.conftest import load_event
from tests.faults import FAULT_KINDS, Backoff, CallLog, inject
from tests.reliability import world

# botocore's `max_attempts` counts retries (its docs: "retry attempts ... after the initial request"):
# max_attempts=5 is 6 attempts in all. `total_max_attempts` would count the first one.
ATTEMPTS = RETRY_CONFIG.get("total_max_attempts") or RETRY_CONFIG["max_attempts"] + 1
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


# ------------------------------------------------------------------------------------------- the columns


@dataclass(frozen=True)
class Column:
    label: str
    kind: str  # a faults.FAULT_KINDS name
    times: int | None  # faulted attempts; None: every attempt

    @property
    def passes(self) -> bool:
        """Twice, then the call goes through: botocore's retries alone must absorb it."""
        return self.times is not None


COLUMNS = (
    Column("throttled x2", "throttling", 2),
    Column("throttled always", "throttling", None),
    Column("access denied", "access-denied", None),
    Column("not found", "not-found", None),
    Column("conn. error x2", "connection-error", 2),
    Column("conn. error always", "connection-error", None),
    Column("timeout x2", "read-timeout", 2),
    Column("timeout always", "read-timeout", None),
)


# ------------------------------------------------------------------------------------------- the outcomes


@dataclass(frozen=True)
class Outcome:
    code: str
    meaning: str


RETRIED = Outcome("R", "retried by botocore; the response completed as without the fault, announced once")
FAILED = Outcome(
    "F",
    "the notification names the failed action and the error; the handler raises ResponseFailed (Lambda "
    "retries, then the DLQ keeps the event); the retry completes containment and announces it",
)
NOTHING = Outcome("N", "IAM says the key (or role) does not exist: announced as not found, nothing changed, no error")
COMPLETED = Outcome("C", "completed anyway: the call only decides or records (see the notes)")
UNANNOUNCED = Outcome(
    "U",
    "contained, but the notification could not be sent: the handler raises ResponseFailed; the retry "
    "announces it once (the idempotency record was released)",
)
UNDEDUPLICATED = Outcome("D", "contained and announced without de-duplication (a redelivery may announce it again)")
HANDOFF = Outcome(
    "H",
    "contained and announced; the investigation hand-off failed: the handler raises ResponseFailed and the "
    "retry queues it (without announcing again)",
)
OUTCOMES = (RETRIED, FAILED, NOTHING, COMPLETED, UNANNOUNCED, UNDEDUPLICATED, HANDOFF)  # + INV_* below


# ------------------------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class Scenario:
    name: str
    event: str  # events/ file
    trigger: str  # world.HANDLERS key
    outcome: str  # keyguard's outcome when nothing fails
    calls: tuple[tuple[str, str], ...]  # (service, operation) in order, when nothing fails
    redelivery: bool = False  # delivered once cleanly before the faulted delivery


GD_USER = Scenario(
    "guardduty-user",
    "guardduty-iam-user.json",
    "guardduty",
    "contained",
    (
        ("iam", "UpdateAccessKey"),
        ("iam", "PutUserPolicy"),
        ("iam", "GetUser"),
        ("iam", "PutUserPermissionsBoundary"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetUserPolicy"),
        ("dynamodb", "TransactWriteItems"),
        ("iam", "TagUser"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
GD_ROLE = Scenario(
    "guardduty-role",
    "guardduty-assumed-role-exfiltration.json",
    "guardduty",
    "sessions-revoked",
    (
        ("iam", "PutRolePolicy"),
        ("iam", "GetRolePolicy"),
        ("dynamodb", "TransactWriteItems"),
        ("iam", "TagRole"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
HEALTH = Scenario(
    "health",
    "health-credentials-exposed.json",
    "health",
    "contained",
    (
        ("iam", "GetAccessKeyLastUsed"),
        ("iam", "UpdateAccessKey"),
        ("iam", "PutUserPolicy"),
        ("iam", "GetUser"),
        ("iam", "PutUserPermissionsBoundary"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetUserPolicy"),
        ("dynamodb", "TransactWriteItems"),
        ("iam", "TagUser"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
NEW_KEY = Scenario(
    "create-access-key",
    "cloudtrail-create-access-key.json",
    "cloudtrail",
    "contained",
    (
        ("iam", "UpdateAccessKey"),
        ("dynamodb", "GetItem"),  # the ledger's first cut-off, read after the deactivation
        ("iam", "PutUserPolicy"),
        ("iam", "GetUser"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetUserPolicy"),
        ("dynamodb", "TransactWriteItems"),
        ("iam", "TagUser"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),  # the new key's investigation (the runs at +15 and +60 minutes)
    ),
)
REDELIVERY = Scenario(
    "guardduty-user, redelivered",
    "guardduty-iam-user.json",
    "guardduty",
    "contained",
    (
        ("iam", "UpdateAccessKey"),
        ("iam", "PutUserPolicy"),
        ("iam", "GetUser"),  # the boundary is keyguard's already: not put again
        ("iam", "ListAccessKeys"),
        ("iam", "GetUserPolicy"),
        ("dynamodb", "TransactWriteItems"),
        ("iam", "TagUser"),
        ("dynamodb", "PutItem"),  # the record exists: Powertools reads it from the failed condition
        ("sqs", "SendMessage"),
    ),
    redelivery=True,
)
SCENARIOS = (GD_USER, GD_ROLE, HEALTH, NEW_KEY, REDELIVERY)


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    service: str
    op: str
    lasting: Outcome  # a fault that outlasts botocore's retries, or access denied
    not_found: Outcome | None = None  # None: as `lasting`
    passing: Outcome = RETRIED  # the fault passes after two attempts
    action: str | None = None  # the action whose failure the notification names (F)
    also: tuple[tuple[str, str, str], ...] = ()  # other faults in place: (service, op, kind), every attempt
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.op} ({self.scenario.name})"

    def expected(self, column: Column) -> Outcome:
        if column.passes:
            return self.passing
        if column.kind == "not-found" and self.not_found is not None:
            return self.not_found
        return self.lasting


ROWS = (
    # GuardDuty finding on an IAM user's long-term key: deactivate, quarantine, record
    Row(
        GD_USER,
        "iam",
        "UpdateAccessKey",
        FAILED,
        action="deactivate-key",
        note="not found: IAM is asked who owns the key, names the same user, and the retried call fails too",
    ),
    Row(
        GD_USER,
        "iam",
        "PutUserPolicy",
        FAILED,
        action="quarantine-user",
        note="the key stays inactive and the deny-all boundary still lands: one failed layer leaves the others",
    ),
    Row(
        GD_USER,
        "iam",
        "GetUser",
        FAILED,
        action="deny-all-boundary",
        note="read before the boundary is put (a boundary it replaces is kept for release) and again to verify",
    ),
    Row(GD_USER, "iam", "PutUserPermissionsBoundary", FAILED, action="deny-all-boundary"),
    Row(GD_USER, "iam", "ListAccessKeys", FAILED, action="verify", note="IAM read back: no 'contained' unseen"),
    Row(GD_USER, "iam", "GetUserPolicy", FAILED, action="verify"),
    Row(GD_USER, "dynamodb", "TransactWriteItems", FAILED, action="ledger", note="the ledger: keyguard's own record"),
    Row(
        GD_USER,
        "iam",
        "TagUser",
        COMPLETED,
        note="the tags only mirror the ledger: reported skipped, the containment holds (issue 9, attack 4)",
    ),
    Row(
        GD_USER,
        "dynamodb",
        "PutItem",
        UNDEDUPLICATED,
        note="the de-duplication store failed: the message is sent anyway (a duplicate beats a lost one)",
    ),
    Row(GD_USER, "sns", "Publish", UNANNOUNCED),
    Row(
        GD_USER,
        "dynamodb",
        "UpdateItem",
        UNDEDUPLICATED,
        note="sent; the record stays in progress until the function's timeout, then a redelivery sends again",
    ),
    Row(
        GD_USER,
        "dynamodb",
        "DeleteItem",
        UNANNOUNCED,
        passing=UNANNOUNCED,
        also=(("sns", "Publish", "access-denied"),),
        note="only called when Publish failed (here: access denied on every attempt), to release the record",
    ),
    Row(GD_USER, "sqs", "SendMessage", HANDOFF),
    # GuardDuty finding on a role's credentials: revoke the role's sessions, record
    Row(
        GD_ROLE,
        "iam",
        "PutRolePolicy",
        FAILED,
        not_found=NOTHING,
        action="revoke-role-sessions",
        note="not found: the role is gone, nothing to revoke or record",
    ),
    Row(
        GD_ROLE,
        "iam",
        "GetRolePolicy",
        FAILED,
        not_found=COMPLETED,
        action="verify",
        note="not found: the role is gone after the revocation; nothing left to verify",
    ),
    Row(
        GD_ROLE,
        "iam",
        "TagRole",
        COMPLETED,
        note="the tags only mirror the ledger; not found: there is no role left to tag",
    ),
    # AWS Health: IAM names the owner first
    Row(HEALTH, "iam", "GetAccessKeyLastUsed", FAILED, not_found=NOTHING, action="lookup-owner"),
    Row(HEALTH, "iam", "UpdateAccessKey", FAILED, action="deactivate-key"),
    Row(HEALTH, "iam", "PutUserPolicy", FAILED, action="quarantine-user"),
    Row(HEALTH, "iam", "TagUser", COMPLETED),
    # CloudTrail CreateAccessKey: the deactivation first (0 calls before it), then the ledger's cut-off
    Row(NEW_KEY, "iam", "UpdateAccessKey", FAILED, action="deactivate-key"),
    Row(
        NEW_KEY,
        "dynamodb",
        "GetItem",
        COMPLETED,
        note="the ledger's first cut-off cannot be read: sessions issued before now are revoked (never fewer), "
        "and the notice says so",
    ),
    Row(NEW_KEY, "iam", "PutUserPolicy", FAILED, action="revoke-user-sessions"),
    Row(NEW_KEY, "dynamodb", "TransactWriteItems", FAILED, action="ledger"),
    Row(NEW_KEY, "iam", "TagUser", COMPLETED),
    # the same finding again: the idempotency record exists
    Row(
        REDELIVERY,
        "dynamodb",
        "PutItem",
        UNDEDUPLICATED,
        note="redelivery: the store cannot say it was announced, so it is announced again",
    ),
)

# The investigation function's calls: CloudTrail LookupEvents, the reads (DescribeRegions, DescribeInstances,
# GetRole, GetAccessKeyLastUsed), the follow-up IAM writes, and the SQS SendMessage that queues the next run
# or part. Delivered as an investigation request (its SQS event) after a real containment; see
# test_investigation_fault below.
INV_DONE = Outcome("R", RETRIED.meaning)
INV_FAILED = Outcome(
    "I",
    "investigation: the report names the failed call (outcome investigation-failed, critical) and the record is "
    "a batch item failure (SQS redelivers it, then the DLQ keeps it); the redelivery completes the follow-ups",
)
INV_COMPLETED = Outcome("C", COMPLETED.meaning)
INV_UNQUEUED = Outcome(
    "Q",
    "investigation: reported and followed up; queueing the next run or part failed: batch item failure, and the "
    "redelivery queues it without announcing again",
)
INV_UNANNOUNCED = Outcome(
    "S",
    "investigation: followed up, the report could not be sent: batch item failure; the redelivery announces it once",
)
INV = Scenario(
    "investigation",
    "guardduty-iam-user.json",
    "investigation",
    "investigated",
    (
        ("dynamodb", "GetItem"),
        ("ec2", "DescribeRegions"),
        ("cloudtrail", "LookupEvents"),
        ("iam", "PutRolePolicy"),
        ("iam", "GetRole"),
        ("iam", "PutRolePermissionsBoundary"),
        ("iam", "GetRolePolicy"),
        ("iam", "TagRole"),
        ("iam", "GetAccessKeyLastUsed"),
        ("iam", "UpdateAccessKey"),
        ("iam", "PutUserPolicy"),
        ("iam", "GetUser"),
        ("iam", "ListAccessKeys"),
        ("iam", "GetUserPolicy"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
INV_INSTANCE = Scenario(
    "investigation, instance role",
    "guardduty-assumed-role-exfiltration.json",
    "investigation",
    "investigated",
    (
        ("dynamodb", "GetItem"),
        ("ec2", "DescribeRegions"),
        ("cloudtrail", "LookupEvents"),
        ("ec2", "DescribeInstances"),
        ("ec2", "ModifyInstanceMetadataOptions"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
INV_LONG = Scenario(
    "investigation, long history",
    "guardduty-iam-user.json",
    "investigation",
    "investigating",
    (
        ("dynamodb", "GetItem"),
        ("ec2", "DescribeRegions"),
        ("cloudtrail", "LookupEvents"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("dynamodb", "UpdateItem"),
        ("sqs", "SendMessage"),
    ),
)
INVESTIGATION_SCENARIOS = (INV, INV_INSTANCE, INV_LONG)
INVESTIGATION_ROWS: tuple[Row, ...] = (
    Row(
        INV,
        "ec2",
        "DescribeRegions",
        INV_FAILED,
        note="the incident's own region is read instead; the report names DescribeRegions and the record is retried",
    ),
    Row(
        INV,
        "cloudtrail",
        "LookupEvents",
        INV_FAILED,
        note="the region is reported INCOMPLETE (never dropped); what it holds is acted on by the retry",
    ),
    Row(
        INV,
        "iam",
        "PutRolePolicy",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="quarantine-role",
        note="quarantine-role on the role the key created; not found: the role is gone, nothing to deny",
    ),
    Row(INV, "iam", "TagRole", INV_FAILED, not_found=INV_COMPLETED, action="record"),
    Row(
        INV,
        "iam",
        "GetAccessKeyLastUsed",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="lookup-owner",
        note="IAM names the revived key's owner; not found: the key is gone, nothing to deactivate",
    ),
    Row(INV, "iam", "UpdateAccessKey", INV_FAILED, action="deactivate-key", note="the revived dormant key"),
    Row(INV, "iam", "PutUserPolicy", INV_FAILED, action="revoke-user-sessions"),
    Row(
        INV,
        "iam",
        "GetRole",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="deny-all-boundary",
        note="read before the boundary is put (and for the report's trust now); not found: the role is gone",
    ),
    Row(
        INV,
        "iam",
        "PutRolePermissionsBoundary",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="deny-all-boundary",
        note="the deny-all boundary on the role the key created (the layer its inline budget cannot block)",
    ),
    Row(
        INV,
        "iam",
        "GetRolePolicy",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="verify",
        note="IAM read back; not found: the role is gone, nothing to verify",
    ),
    Row(INV, "iam", "GetUser", INV_FAILED, action="verify", note="IAM read back of the revived key's owner"),
    Row(INV, "iam", "ListAccessKeys", INV_FAILED, action="verify"),
    Row(INV, "iam", "GetUserPolicy", INV_FAILED, action="verify"),
    Row(INV, "sns", "Publish", INV_UNANNOUNCED),
    Row(INV, "sqs", "SendMessage", INV_UNQUEUED, note="queues the +15-minute run (once: keyguard's memory)"),
    Row(
        INV_INSTANCE,
        "ec2",
        "DescribeInstances",
        INV_FAILED,
        not_found=INV_COMPLETED,
        action="check-imds",
        note="not found: the instance is gone (terminated), nothing to check",
    ),
    Row(INV_INSTANCE, "ec2", "ModifyInstanceMetadataOptions", INV_FAILED, action="require-imdsv2"),
    Row(INV_LONG, "sqs", "SendMessage", INV_UNQUEUED, note="the continuation of a long history (its checkpoint)"),
)
ALL_ROWS = ROWS + INVESTIGATION_ROWS

# Calls the idempotency layer can make that no response made in any scenario above: each must be shown
# never to happen (test_calls_never_made), or get a row.
NEVER_CALLED: dict[tuple[str, str], str] = {
    ("dynamodb", "Query"): "the ledger's history query is the operator's (keyguard history, status); no "
    "response reads it",
}

# Functions in template.yaml whose calls the matrix does not cover yet, with the reason.
NOT_COVERED_FUNCTIONS = {
    "AuditFunction": "the scheduled key inventory (IAM credential report reads, then a notification) is not a "
    "response to an event: add a Scenario and rows for its calls",
    "TamperWatchFunction": "re-applies with the engine's own actions (their faults are the rows above); a failed "
    "re-apply or read-back is reported and raised (tests/behaviour/test_tamper_*.py): add rows for its reads",
    "SelfCheckFunction": "reads only; any read that fails counts as a failed check and drops the heartbeat "
    "(tests/behaviour/test_selfcheck.py)",
    # issue 12: the same engine and the same calls as the Health scenario (UpdateAccessKey, PutUserPolicy,
    # TagUser; GetAccessKeyLastUsed when the event names no owner; SNS, DynamoDB), through other extractors
    "AwsQuarantineFunction": "AWS's quarantine record: the calls of the Health scenario (add a Scenario for it)",
    "TrustedAdvisorFunction": "Trusted Advisor Exposed Access Keys: the calls of the Health scenario (add a Scenario)",
}

# ------------------------------------------------------------------------------------------- recording

RESULTS: dict[tuple[str, str], str] = {}  # (row label, column label) -> what happened, for the summary


# ------------------------------------------------------------------------------------------- the test


@dataclass
class Delivery:
    invocation: world.Invocation
    calls: list[tuple[str, str]]
    docs: list[dict[str, Any]]
    before: dict[str, Any]
    after: dict[str, Any]
    queued: int = 0  # investigation requests queued
    records: list[str] = field(default_factory=list)  # idempotency records' status after the delivery

    @property
    def diff(self) -> dict[str, Any]:
        return world.changes(self.before, self.after)


@dataclass
class Bench:
    env: Any
    seeded: Any
    log: CallLog
    allowed: set[str] = field(default_factory=set)  # principals the response may change
    named: set[str] = field(default_factory=set)  # the key ids the event names

    def deliver(self, scenario: Scenario, remaining_ms: int = 60_000) -> Delivery:
        before = world.iam_state()
        start = len(self.log.services)
        context = world.context_for(scenario.trigger, remaining_ms=remaining_ms)
        inv = world.invoke(self.env, scenario.trigger, self.seeded.event, context=context)
        calls = self.log.services[start:]
        after = world.iam_state()
        docs = _inbox(self.env)
        ddb = self.env.clients.get("dynamodb")
        records = [i["status"]["S"] for i in ddb.scan(TableName=self.env.table).get("Items", [])]
        return Delivery(inv, calls, docs, before, after, _drain(self.env), records)


def _inbox(env: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(m["Message"]) for m in env.delivered()]


def _drain(env: Any) -> int:
    url = getattr(env, "investigation_url", None)
    if not url:
        return 0
    sqs, n = env.clients.get("sqs"), 0
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return n
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        n += len(got)


def _client(env: Any, service: str) -> Any:
    return env.clients.iam if service == "iam" else env.clients.get(service)


@pytest.fixture(scope="module")
def stage():
    s = world.Stage()
    yield s
    s.close()


@pytest.fixture
def bench_for(stage: world.Stage, monkeypatch: pytest.MonkeyPatch):
    """The stage's account, cleared and seeded for a scenario, with new clients (their own retry quota)
    whose every AWS call is logged: the session's hook reaches clients made later, e.g. one for a service
    nobody expected. Faults made through `inject` are removed afterwards, whatever happened."""
    from keyguard.local import emulator

    backoff = Backoff().install(monkeypatch)
    logs: list[CallLog] = []

    def make(scenario: Scenario) -> tuple[Bench, Backoff]:
        stage.clear_iam()
        env = stage.fresh()
        log = CallLog(stage.session)  # before any client of env exists: each inherits the hook
        logs.append(log)
        seeded = emulator.seed(env.clients.iam, load_event(scenario.event))
        env.delivered(), _drain(env)  # nothing left over from an earlier test
        bench = Bench(env, seeded, log)
        bench.named = set(seeded.replaced.values())
        bench.allowed = {f"user/{u}" for u, keys in seeded.users.items() if set(keys) & bench.named}
        bench.allowed |= {f"role/{r}" for r in seeded.roles}
        return bench, backoff

    yield make
    for log in logs:
        log.close()


CELLS = [pytest.param(row, col, id=f"{row.scenario.name}:{row.op}:{col.label}") for row in ROWS for col in COLUMNS]


@pytest.mark.parametrize(("row", "column"), CELLS)
def test_fault(bench_for, row: Row, column: Column) -> None:
    scenario = row.scenario
    bench, backoff = bench_for(scenario)
    expected = row.expected(column)
    RESULTS[(row.label, column.label)] = "?"
    if scenario.redelivery:
        first = bench.deliver(scenario)
        assert first.invocation.error is None and [d["outcome"] for d in first.docs] == [scenario.outcome]

    extra = [inject(_client(bench.env, s), op, kind) for s, op, kind in row.also]
    fault = inject(_client(bench.env, row.service), row.op, column.kind, times=column.times)
    delays_before = len(backoff.delays)
    # The Lambda retry comes a minute or more later, after the attempt's time is up: an idempotency record
    # that attempt left in progress has expired by then (see the DeleteItem row).
    got = bench.deliver(scenario, remaining_ms=1)
    delays = backoff.delays[delays_before:]
    observed = _classify(got, scenario, column)
    RESULTS[(row.label, column.label)] = f"{observed.code} x{fault.calls}"

    # The faulted call was made, as often as botocore's retry mode says.
    logical = got.calls.count((row.service, row.op))
    assert fault.calls >= 1, f"{row.op} was never called in {scenario.name}: the cell proves nothing"
    transient = FAULT_KINDS[column.kind].transient
    if column.passes:
        assert fault.calls == column.times
        assert len(delays) >= column.times  # botocore backed off before each retry
    elif transient:
        assert fault.calls == ATTEMPTS * logical, (fault.calls, logical)
        assert len(delays) >= (ATTEMPTS - 1) * logical
    else:
        assert fault.calls == logical  # not retried: a retry cannot fix it
    if not transient and not row.also:
        assert delays == []

    # Only keyguard's domain error escapes, and it is raised exactly when something failed.
    error = got.invocation.error
    assert error is None or isinstance(error, ResponseFailed), repr(error)
    _assert_exact(bench, got)
    _assert_reports_match_iam(got)
    assert observed == expected, (
        f"{row.label} / {column.label}: expected {expected.code} ({expected.meaning}), got {observed.code}: "
        f"error={error!r} docs={[(d['outcome'], [(a['action'], a['status']) for a in d['actions']]) for d in got.docs]}"
    )

    code = FAULT_KINDS[column.kind].code_for(row.service)
    if expected is FAILED:
        (doc,) = got.docs
        failed = [a for a in doc["actions"] if a["status"] == "failed"]
        assert row.action in [a["action"] for a in failed], failed
        assert all(code in a["detail"] for a in failed if a["action"] == row.action), (code, failed)
        assert doc["level"] == "critical"
    if expected is UNANNOUNCED:
        assert got.docs == [] and "notification" in str(error)
        if ("dynamodb", "DeleteItem") not in row.also and row.op != "DeleteItem":
            assert ("dynamodb", "DeleteItem") in got.calls  # the record is released for the retry
    if expected is HANDOFF:
        assert got.queued == 0 and "investigation" in str(error)

    for f in [fault, *extra]:
        f.remove()
    if error is not None:
        _assert_retry_completes(bench, scenario, got)
    RESULTS[(row.label, column.label)] = f"{observed.code} x{fault.calls}"


def _classify(got: Delivery, scenario: Scenario, column: Column) -> Outcome:
    error, docs = got.invocation.error, got.docs
    outcomes = [d["outcome"] for d in docs]
    if error is not None and outcomes == ["failed"]:
        return FAILED
    if error is not None and not docs and "notification" in str(error):
        return UNANNOUNCED
    if error is not None and outcomes == [scenario.outcome] and "investigation" in str(error):
        return HANDOFF
    if error is not None:
        return Outcome("?", f"raised {error!r} with {outcomes}")
    if outcomes == ["not-found"] and not got.diff:
        return NOTHING
    clean = outcomes == [scenario.outcome] or (scenario.redelivery and outcomes == [])
    if not clean:
        return Outcome("?", f"no error, notifications {outcomes}")
    announced_again = scenario.redelivery and outcomes == [scenario.outcome]
    if announced_again or not got.records or any(status != "COMPLETED" for status in got.records):
        return UNDEDUPLICATED  # a later delivery finds no completed record: it announces again
    statuses = [a["status"] for d in docs for a in d["actions"]]
    if column.passes and all(s == "done" for s in statuses):
        return RETRIED
    return COMPLETED


def _assert_exact(bench: Bench, got: Delivery) -> None:
    """Nothing but the named key and its owner (or the named role) changed; no key was deleted or made
    active; nothing changed outside IAM's users and roles the event concerns."""
    for principal, diff in got.diff.items():
        assert principal in bench.allowed, f"{principal} changed: {diff}"
        assert "exists" not in diff, f"{principal} was created or deleted"
        for key_id, (old, new) in diff.get("keys", {}).items():
            assert key_id in bench.named, f"key {key_id} (not named by the event) changed {old} -> {new}"
            assert (old, new) == ("Active", "Inactive"), (key_id, old, new)


_TARGET = re.compile(r"\b(user|role) ([^\s(]+)")


def _assert_reports_match_iam(got: Delivery) -> None:
    """'done' only when the action's effect is in IAM; 'failed'/'skipped'/'dry-run' never changed IAM."""
    for doc in got.docs:
        for action in doc["actions"]:
            name, status, target = action["action"], action["status"], action["target"]
            found = _TARGET.search(target)
            if name in ("lookup-owner", "check-exemption", "contain-key", "verify", "ledger") or found is None:
                continue  # reads, and keyguard's own table: no IAM effect to compare
            principal = f"{found.group(1)}/{found.group(2)}"
            state, diff = got.after.get(principal, {}), got.diff.get(principal, {})
            if name == "deactivate-key":
                key = target.split()[0]
                effect, changed = state.get("keys", {}).get(key) == "Inactive", key in diff.get("keys", {})
            elif name in ("quarantine-user", "quarantine-role", "revoke-user-sessions", "revoke-role-sessions"):
                policy = QUARANTINE_POLICY if name.startswith("quarantine") else REVOKE_SESSIONS_POLICY
                doc_in_iam = state.get("policies", {}).get(policy)
                effect = doc_in_iam is not None and _is_keyguard_policy(name, doc_in_iam)
                changed = policy in diff.get("policies", {})
            elif name == "record":
                effect = "keyguard:incident" in state.get("tags", {})
                changed = bool(diff.get("tags"))
            elif name == "deny-all-boundary":
                named = re.search(r"\(boundary ([^)\s]+)\)", target)  # the policy the report says it set
                effect = bool(named and str(state.get("boundary", "")).endswith(f"/{named.group(1)}"))
                changed = "boundary" in diff
            else:
                raise AssertionError(f"unknown action {name}: teach this test its effect")
            if status == "done":
                assert effect, f"{name} on {principal} reported done, but IAM shows no effect"
            else:
                assert not changed, f"{name} on {principal} reported {status}, but IAM changed: {diff}"


def _is_keyguard_policy(action: str, document: dict[str, Any]) -> bool:
    if action.startswith("quarantine"):
        return document == deny_all_policy()
    (statement,) = document["Statement"]
    return (
        statement["Effect"] == "Deny"
        and statement["Action"] == "*"
        and "aws:TokenIssueTime" in statement["Condition"]["DateLessThan"]
    )


def _assert_retry_completes(bench: Bench, scenario: Scenario, failed: Delivery) -> None:
    """Lambda's retry, with the fault gone: the response completes and its outcome is announced once
    over both deliveries (a failure notice before it is fine: it is a different outcome)."""
    time.sleep(0.005)  # past the faulted attempt's (1 ms) time: its in-progress record has expired
    retry = bench.deliver(scenario)
    assert retry.invocation.error is None, repr(retry.invocation.error)
    _assert_exact(bench, retry)
    _assert_reports_match_iam(retry)
    announced = [d["outcome"] for d in failed.docs + retry.docs]
    # (a redelivered scenario announced its outcome before the faulted delivery: once, and not again)
    assert announced.count(scenario.outcome) == (0 if scenario.redelivery else 1), announced
    for doc in retry.docs:
        assert all(a["status"] in ("done", "already done", "skipped") for a in doc["actions"]), doc["actions"]
    if getattr(bench.env, "investigation_url", None) and ("sqs", "SendMessage") in scenario.calls:
        assert retry.queued == 1  # investigation is requested once the retry succeeds


# ------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_call_a_response_makes_is_in_the_matrix(bench_for, scenario: Scenario) -> None:
    """The calls each scenario makes when nothing fails are exactly the ones declared, and each is a row of
    the matrix in at least one scenario. A new call (another service, an investigation hand-off, a
    GetItem) fails here until the matrix has it."""
    bench, _ = bench_for(scenario)
    if scenario.redelivery:
        bench.deliver(scenario)
    got = bench.deliver(scenario)
    assert got.invocation.error is None
    assert tuple(dict.fromkeys(got.calls)) == scenario.calls
    rows = {(r.service, r.op) for r in ALL_ROWS}
    missing = [c for c in scenario.calls if c not in rows]
    assert not missing, f"calls without a row in the fault matrix: {missing}"


def test_calls_never_made(bench_for) -> None:
    """Calls the idempotency layer could make but does not: if one starts being made, it needs a row."""
    seen: set[tuple[str, str]] = set()
    for scenario in SCENARIOS:
        bench, _ = bench_for(scenario)
        bench.deliver(scenario)
        got = bench.deliver(scenario)  # a redelivery too: the duplicate path
        seen |= set(bench.log.services)
        assert got.invocation.error is None
    assert not seen & set(NEVER_CALLED), seen & set(NEVER_CALLED)
    # each listed call belongs to a service keyguard really talks to, so the check above can fail
    assert {s for s, _ in NEVER_CALLED} <= {s for s, _ in seen}


def test_every_function_is_covered_or_listed() -> None:
    from keyguard.local.emulator import load_template

    functions = {rid for rid, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    covered = {world.FUNCTION_NAMES[s.trigger] for s in SCENARIOS + INVESTIGATION_SCENARIOS}
    unaccounted = functions - covered - set(NOT_COVERED_FUNCTIONS)
    assert not unaccounted, f"functions neither in the fault matrix nor listed as not covered: {unaccounted}"
    assert covered <= functions


# ------------------------------------------------------------------------------------------- the docs

BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


def render_markdown(cells: dict[tuple[str, str], str] | None = None) -> str:
    """The matrix as docs/reliability.md shows it: the expected outcome of every cell (the test asserts each),
    or, given `cells`, what a run observed."""
    head = "| call (scenario) | " + " | ".join(c.label for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in ALL_ROWS:
        got = [(cells or {}).get((row.label, c.label), row.expected(c).code) for c in COLUMNS]
        lines.append(f"| {row.label} | " + " | ".join(got) + " |")
    for service, op in NEVER_CALLED:
        lines.append(f"| {op} ({service}) | " + " | ".join("-" for _ in COLUMNS) + " |")
    lines += ["", "| code | outcome |", "|---|---|"]
    lines += [f"| {o.code} | {o.meaning} |" for o in OUTCOMES + INVESTIGATION_OUTCOMES]
    lines += ["| - | never called: " + "; ".join(f"{op}: {why}" for (_, op), why in NEVER_CALLED.items()) + " |"]
    notes = [f"- {r.label}: {r.note}" for r in ALL_ROWS if r.note]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def test_docs_show_the_matrix() -> None:
    text = DOCS.read_text() if DOCS.exists() else ""
    table = render_markdown()
    if os.environ.get("KEYGUARD_WRITE_DOCS") == "1":
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN) + len(BEGIN)] + "\n" + table + "\n" + text[text.index(END) :]
        else:
            text += f"\n{BEGIN}\n{table}\n{END}\n"
        DOCS.write_text(text)
    assert BEGIN in text and END in text, f"{DOCS} has no fault matrix section (run with KEYGUARD_WRITE_DOCS=1)"
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert shown == table, f"{DOCS} shows an outdated fault matrix: run with KEYGUARD_WRITE_DOCS=1"


def test_the_matrix_counts() -> None:
    """Every fault kind the issue names is a column, each against every row."""
    assert {c.kind for c in COLUMNS} == set(FAULT_KINDS)
    assert len(CELLS) + len(INVESTIGATION_CELLS) == len(ALL_ROWS) * len(COLUMNS)
    iam_calls = {r.op for r in ALL_ROWS if r.service == "iam"}
    assert iam_calls == {
        "UpdateAccessKey",
        "PutUserPolicy",
        "PutRolePolicy",
        "GetAccessKeyLastUsed",
        "GetUser",
        "PutUserPermissionsBoundary",
        "ListAccessKeys",
        "GetUserPolicy",
        "GetRolePolicy",
        "TagUser",
        "TagRole",
        "GetRole",
        "PutRolePermissionsBoundary",
    }


@pytest.mark.parametrize(
    ("status", "after", "caught"),
    [
        ("done", "Active", True),  # "done" for a deactivation that did not happen
        ("failed", "Inactive", True),  # "failed" for one that did
        ("done", "Inactive", False),
        ("failed", "Active", False),
    ],
)
def test_the_report_check_catches_a_false_report(status: str, after: str, caught: bool) -> None:
    """_assert_reports_match_iam is what makes "never done for an action that did not happen" a test."""
    key = "AKIAIOSFODNN7EXAMPLE"
    doc = {"actions": [{"action": "deactivate-key", "target": f"{key} of user alice", "status": status}]}
    before = {"user/alice": {"keys": {key: "Active"}, "policies": {}, "tags": {}}}
    got = Delivery(
        world.Invocation(), [], [doc], before, {"user/alice": {**before["user/alice"], "keys": {key: after}}}
    )
    if caught:
        with pytest.raises(AssertionError):
            _assert_reports_match_iam(got)
    else:
        _assert_reports_match_iam(got)


# ------------------------------------------------------------------------------------------- investigation

INVESTIGATION_OUTCOMES = (INV_FAILED, INV_UNQUEUED, INV_UNANNOUNCED)
INVESTIGATION_CELLS = [
    pytest.param(row, col, id=f"{row.scenario.name}:{row.op}:{col.label}")
    for row in INVESTIGATION_ROWS
    for col in COLUMNS
]
FOREIGN_TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},'
    '"Action":"sts:AssumeRole"}]}'
)
REGIONS = ("eu-west-1", "us-east-1")  # of the emulator's DescribeRegions answer: two, to keep cells quick


class TrailFault:
    """A FAULT_KINDS fault on LookupEvents, answered by the CloudTrail stand-in itself (it answers at the
    before-send seam before any client hook could), in CloudTrail's error shape."""

    def __init__(self, trail: Any, kind: str, times: int | None) -> None:
        self.trail, self.left, self.calls = trail, times, 0
        fk = FAULT_KINDS[kind]
        self.answer = fk.raises or fk.answers["cloudtrail"]  # type: ignore[index]
        trail.fault = self._fault

    def _fault(self, region: str, number: int) -> Any:
        if self.left is not None and self.left <= 0:
            return None
        self.calls += 1
        if self.left is not None:
            self.left -= 1
        return self.answer

    def remove(self) -> None:
        self.trail.fault = None


@dataclass
class InvestigationBench:
    env: Any
    log: CallLog
    record: dict[str, Any]
    settings: Any
    remaining_ms: int
    trail: Any
    dormant: str | None = None

    def deliver(self) -> Delivery:
        before = world.iam_state()
        start = len(self.log.services)
        context = world.context_for("investigation", remaining_ms=self.remaining_ms)
        inv = world.invoke(
            self.env, "investigation", {"Records": [self.record]}, settings=self.settings, context=context
        )
        calls = self.log.services[start:]
        docs = [d for d in _inbox(self.env) if d.get("kind") == "investigation"]
        return Delivery(inv, calls, docs, before, world.iam_state(), _drain_delayed(self.env))


def _drain_delayed(env: Any) -> int:
    """Messages on the investigation queue, delayed ones too (the +15-minute run waits 900 s): counted and
    removed, straight from the emulator's queue."""
    from moto.sqs.models import sqs_backends

    name = env.investigation_url.rsplit("/", 1)[-1]
    queue = sqs_backends[world.ACCOUNT][world.REGION].queues[name]
    n = len(queue._messages)
    queue._messages.clear()
    return n


@pytest.fixture(scope="module")
def trail(stage: world.Stage) -> Any:
    from keyguard.local.cloudtrail import FakeCloudTrail

    return FakeCloudTrail([]).install(stage.session)


@pytest.fixture
def investigation_for(stage: world.Stage, trail: Any, monkeypatch: pytest.MonkeyPatch):
    """A contained leaked key whose history holds the attack of the scenario, and its investigation request."""
    import json
    from datetime import UTC, datetime, timedelta

    import boto3

    from keyguard.investigate import core
    from keyguard.local import emulator
    from keyguard.local.cloudtrail import Recorder, SyntheticHistory

    backoff = Backoff().install(monkeypatch)
    real = core.enabled_regions
    monkeypatch.setattr(core, "enabled_regions", lambda clients: [r for r in real(clients) if r in REGIONS])
    logs: list[CallLog] = []

    def make(scenario: Scenario) -> tuple[InvestigationBench, Backoff]:
        stage.clear_iam()
        env = stage.fresh()
        log = CallLog(stage.session)
        logs.append(log)
        trail.fault, trail.records = None, []
        seeded = emulator.seed(env.clients.iam, load_event(scenario.event))
        env.delivered(), _drain_delayed(env)
        dormant = None
        extra = {"KEYGUARD_ENFORCE_IMDSV2": "true"} if scenario is INV_INSTANCE else {}
        if scenario is INV_INSTANCE:
            emulator._instance_for_role_session(env, seeded)
        elif scenario is INV:
            iam = env.clients.iam
            iam.create_user(UserName="old-ci")
            dormant = iam.create_access_key(UserName="old-ci")["AccessKey"]["AccessKeyId"]
            iam.update_access_key(UserName="old-ci", AccessKeyId=dormant, Status="Inactive")
            key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
            attacker = boto3.session.Session(
                aws_access_key_id=key, aws_secret_access_key=seeded.secrets[key], region_name="us-east-1"
            )
            Recorder(attacker, trail.records, key_id=key, user="alice")
            attacker_iam = attacker.client("iam")
            attacker_iam.create_role(RoleName="backdoor-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
            attacker_iam.update_access_key(UserName="old-ci", AccessKeyId=dormant, Status="Active")
        else:
            key = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
            trail.records = SyntheticHistory(120, ["us-east-1"], key, datetime.now(UTC) - timedelta(hours=1))
        contained = world.invoke(env, "guardduty", seeded.event, settings=world.settings_for(env))
        assert contained.error is None, contained.error
        sqs = env.clients.get("sqs")
        (message,) = sqs.receive_message(QueueUrl=env.investigation_url, MaxNumberOfMessages=1)["Messages"]
        sqs.delete_message(QueueUrl=env.investigation_url, ReceiptHandle=message["ReceiptHandle"])
        env.delivered()
        record = {"messageId": message["MessageId"], "body": message["Body"], "eventSource": "aws:sqs"}
        assert json.loads(record["body"])["incident"]
        remaining = 1 if scenario is INV_LONG else 60_000  # a long history: the deadline comes after one page
        settings = world.settings_for(env, **extra)
        return InvestigationBench(env, log, record, settings, remaining, trail, dormant), backoff

    yield make
    trail.fault = None
    for log in logs:
        log.close()


def _inv_classify(got: Delivery, scenario: Scenario, column: Column) -> Outcome:
    failed = bool((got.invocation.result or {}).get("batchItemFailures"))
    outcomes = [_outcome_of(d) for d in got.docs]
    if got.invocation.error is not None:
        return Outcome("?", f"raised {got.invocation.error!r}")
    if failed and outcomes == ["investigation-failed"]:
        return INV_FAILED
    if failed and outcomes == []:
        return INV_UNANNOUNCED
    if failed and outcomes == [scenario.outcome] and got.queued == 0:
        return INV_UNQUEUED
    if failed or outcomes != [scenario.outcome] or got.queued != 1:
        return Outcome("?", f"failed={failed} outcomes={outcomes} queued={got.queued}")
    statuses = [a["status"] for d in got.docs for a in d["actions"]]
    if column.passes and all(s == "done" for s in statuses):
        return INV_DONE
    return INV_COMPLETED


def _outcome_of(doc: dict[str, Any]) -> str:
    if doc["failures"]:
        return "investigation-failed"
    return "investigating" if doc["partial"] else "investigated"


def _assert_investigation_exact(bench: InvestigationBench, got: Delivery) -> None:
    """Only what the key left behind changed: the role it created, the key it revived (Active -> Inactive,
    nothing else of its user's), and that user's session cut-off."""
    for principal, diff in got.diff.items():
        assert principal in ("role/backdoor-role", "user/old-ci"), f"{principal} changed: {diff}"
        assert "exists" not in diff, principal
        for key_id, (old, new) in diff.get("keys", {}).items():
            assert key_id == bench.dormant and (old, new) == ("Active", "Inactive"), (key_id, old, new)


@pytest.mark.parametrize(("row", "column"), INVESTIGATION_CELLS)
def test_investigation_fault(investigation_for, row: Row, column: Column) -> None:
    scenario = row.scenario
    bench, backoff = investigation_for(scenario)
    expected = row.expected(column)
    RESULTS[(row.label, column.label)] = "?"
    if row.service == "cloudtrail":
        fault: Any = TrailFault(bench.trail, column.kind, column.times)
    else:
        fault = inject(_client(bench.env, row.service), row.op, column.kind, times=column.times)
    delays_before = len(backoff.delays)
    got = bench.deliver()
    delays = backoff.delays[delays_before:]
    observed = _inv_classify(got, scenario, column)
    RESULTS[(row.label, column.label)] = f"{observed.code} x{fault.calls}"

    logical = got.calls.count((row.service, row.op))
    assert fault.calls >= 1, f"{row.op} was never called in {scenario.name}: the cell proves nothing"
    transient = FAULT_KINDS[column.kind].transient
    if column.passes:
        assert fault.calls == column.times
        assert len(delays) >= column.times
    elif transient:
        assert fault.calls == ATTEMPTS * logical, (fault.calls, logical)
    else:
        assert fault.calls == logical
    _assert_investigation_exact(bench, got)
    _assert_reports_match_iam(got)
    seen = [(d["failures"], [(a["action"], a["status"]) for a in d["actions"]]) for d in got.docs]
    assert observed == expected, f"{row.label} / {column.label}: expected {expected.code}, got {observed}: {seen}"
    code = FAULT_KINDS[column.kind].code_for(row.service)
    if expected is INV_FAILED:
        (doc,) = got.docs
        assert doc["level"] == "critical"
        assert any(code in f for f in doc["failures"]), (code, doc["failures"])
        if row.action:
            assert row.action in [a["action"] for a in doc["actions"] if a["status"] == "failed"]

    fault.remove()
    if expected in (INV_DONE, INV_COMPLETED):
        return
    # SQS redelivers the record, the fault gone: the follow-ups complete, the outcome is announced once over
    # both deliveries, and the next run (or part) is queued once.
    time.sleep(0.005)
    retry = bench.deliver()
    assert not (retry.invocation.result or {}).get("batchItemFailures"), retry.docs
    _assert_investigation_exact(bench, retry)
    _assert_reports_match_iam(retry)
    announced = [_outcome_of(d) for d in got.docs + retry.docs]
    assert announced.count(scenario.outcome) == 1, announced
    assert got.queued + retry.queued == 1, (got.queued, retry.queued)
    if scenario is INV:
        state = world.iam_state()
        assert state["role/backdoor-role"]["policies"].get(QUARANTINE_POLICY) == deny_all_policy()
        assert state["user/old-ci"]["keys"][bench.dormant] == "Inactive"


@pytest.mark.parametrize("scenario", INVESTIGATION_SCENARIOS, ids=lambda s: s.name)
def test_every_call_an_investigation_makes_is_in_the_matrix(investigation_for, scenario: Scenario) -> None:
    """The calls each investigation scenario makes when nothing fails are exactly the declared ones; each is a
    row, or one of the de-duplication and memory calls whose faults the containment rows already show."""
    bench, _ = investigation_for(scenario)
    got = bench.deliver()
    assert not (got.invocation.result or {}).get("batchItemFailures"), got.docs
    assert tuple(dict.fromkeys(got.calls)) == scenario.calls
    rows = {(r.service, r.op) for r in ALL_ROWS if r.scenario.trigger == "investigation"}
    missing = [c for c in scenario.calls if c not in rows and c[0] != "dynamodb"]
    assert not missing, f"calls without a row in the fault matrix: {missing}"
