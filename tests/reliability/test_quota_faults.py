"""Fault rows where the fault is an IAM quota the attacker filled before the event: the fault matrix's
scenarios, with IAM's quotas emulated (keyguard.local.quotas; moto enforces none of them) and the account
prepared by the attacker's own IAM calls.

Each row asserts, from IAM and the topic, what holds today and must keep holding (`test_quota_fault`), and,
where today's engine fails against the attacker, what issue 9 must achieve (`test_quota_fault_issue9`,
which failed on the engine before issue 9 and holds since: the deny-all boundary, the ledger). Whether
a user's other key is denied is decided by IAM's evaluation logic (tests/iam_eval.py) on the documents read
back from IAM: moto cannot tell.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, deny_all_policy
from keyguard.errors import ResponseFailed
from keyguard.local import quotas
from keyguard.local.quotas import filler_policy
from tests import iam_eval
from tests.reliability import test_fault_matrix as matrix
from tests.reliability import world
from tests.reliability.test_fault_matrix import GD_ROLE, GD_USER, HEALTH, NEW_KEY, Bench, Delivery, Scenario

stage = matrix.stage  # the fault matrix's fixtures: one emulated account per module, a bench per scenario
bench_for = matrix.bench_for
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
ADMIN = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


# ------------------------------------------------------------------------------------------- what the attacker does


def fill_inline_budget(iam: Any, bench: Bench, kind: str, name: str) -> None:
    """One PutUserPolicy (PutRolePolicy) that leaves fewer characters than keyguard's smallest policy."""
    budget = 2048 if kind == "user" else 10240
    doc = filler_policy(budget - 100)
    if kind == "user":
        iam.put_user_policy(UserName=name, PolicyName="ops-notes", PolicyDocument=doc)
    else:
        iam.put_role_policy(RoleName=name, PolicyName="ops-notes", PolicyDocument=doc)


def fill_tags(iam: Any, bench: Bench, kind: str, name: str) -> None:
    """50 tags: TagUser (TagRole) takes at most 50 per call."""
    tags = [{"Key": f"team:{i:02d}", "Value": "platform"} for i in range(50)]
    if kind == "user":
        iam.tag_user(UserName=name, Tags=tags)
    else:
        iam.tag_role(RoleName=name, Tags=tags)


def attach_ten(iam: Any, bench: Bench, kind: str, name: str) -> None:
    """10 managed policies on the user, the first of them allowing everything."""
    for i in range(10):
        doc = ADMIN if i == 0 else filler_policy(150, sid=f"P{i}")
        arn = iam.create_policy(PolicyName=f"{name}-{i}-{uuid.uuid4().hex[:6]}", PolicyDocument=doc)["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)


# ------------------------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class QuotaRow:
    scenario: Scenario
    quota: str  # what is full
    prepare: Callable[[Any, Bench, str, str], None]
    refused: str  # the operation the emulated quota refuses ("" : none)
    action: str  # keyguard's action that the refusal fails ("" : none)
    today: str  # what the row asserts today (docs)
    issue9: str = ""  # what issue 9 must achieve (xfail until it does); "" : nothing more
    attack: str = ""  # issue 9's attack number

    @property
    def label(self) -> str:
        return f"{self.scenario.name}: {self.quota}"

    @property
    def kind(self) -> str:
        return "role" if self.scenario is GD_ROLE else "user"


CONTAINED_ANNOUNCED = "contained and announced as such, no error; the ledger holds the key (leaked, unless a new key)"
OTHER_KEY_DENIED = "the user's other key is denied by IAM (explicit deny: the deny-all boundary); the failure reported"

QUOTA_ROWS = (
    QuotaRow(
        GD_USER,
        "inline budget full (2,048)",
        fill_inline_budget,
        "PutUserPolicy",
        "quarantine-user",
        "key Inactive; quarantine-user failed (LimitExceeded, 1 attempt: not retried), announced, handler raises",
        OTHER_KEY_DENIED,
        "1",
    ),
    QuotaRow(
        HEALTH,
        "inline budget full (2,048)",
        fill_inline_budget,
        "PutUserPolicy",
        "quarantine-user",
        "key Inactive; quarantine-user failed (LimitExceeded, 1 attempt: not retried), announced, handler raises",
        OTHER_KEY_DENIED,
        "1",
    ),
    QuotaRow(
        NEW_KEY,
        "inline budget full (2,048)",
        fill_inline_budget,
        "PutUserPolicy",
        "revoke-user-sessions",
        "new key Inactive; revoke-user-sessions failed (LimitExceeded), announced, handler raises",
    ),
    QuotaRow(
        GD_ROLE,
        "role inline budget full (10,240)",
        fill_inline_budget,
        "PutRolePolicy",
        "revoke-role-sessions",
        "revoke-role-sessions failed (LimitExceeded), announced, handler raises",
    ),
    QuotaRow(
        GD_USER,
        "50 tags",
        fill_tags,
        "TagUser",
        "record",
        "key Inactive and deny-all in place before the record; TagUser refused once",
        CONTAINED_ANNOUNCED,
        "4",
    ),
    QuotaRow(
        NEW_KEY,
        "50 tags",
        fill_tags,
        "TagUser",
        "record",
        "new key Inactive and sessions revoked before the record; TagUser refused once",
        CONTAINED_ANNOUNCED,
        "4",
    ),
    QuotaRow(
        GD_ROLE,
        "50 tags",
        fill_tags,
        "TagRole",
        "record",
        "sessions revoked before the record; TagRole refused once",
        "sessions-revoked announced, no error; the ledger records the role",
        "4",
    ),
    QuotaRow(
        GD_USER,
        "10 managed policies (one allows everything)",
        attach_ten,
        "",
        "",
        "contained as without it (keyguard attaches no managed policy); the other key is denied by IAM",
    ),
)


# ------------------------------------------------------------------------------------------- the bench


@dataclass
class QuotaRun:
    bench: Bench
    quotas: quotas.Quotas
    got: Delivery
    owner: str  # the user or role the scenario contains
    other_key: str | None  # the owner's key the event does not name


@pytest.fixture
def run_row(bench_for: Any) -> Iterator[Callable[[QuotaRow], QuotaRun]]:
    installed: list[quotas.Quotas] = []

    def run(row: QuotaRow) -> QuotaRun:
        bench, _ = bench_for(row.scenario)
        q = quotas.install(bench.env.clients)  # before any client of the env is made: all of them get it
        installed.append(q)
        iam = bench.env.clients.iam
        if row.kind == "role":
            (owner,) = bench.seeded.roles
            other = None
        else:
            (owner,) = [u for u, keys in bench.seeded.users.items() if set(keys) & bench.named]
            other = next((k for k in bench.seeded.users[owner] if k not in bench.named), None)
            if row.prepare is not attach_ten:  # the owner is an administrator (a managed policy: no budget used)
                admin = f"{owner}-admin-{uuid.uuid4().hex[:6]}"  # managed policies outlive stage.clear_iam()
                arn = iam.create_policy(PolicyName=admin, PolicyDocument=ADMIN)["Policy"]["Arn"]
                iam.attach_user_policy(UserName=owner, PolicyArn=arn)
        row.prepare(iam, bench, row.kind, owner)
        got = bench.deliver(row.scenario, remaining_ms=1)
        return QuotaRun(bench, q, got, owner, other)

    yield run
    for q in installed:
        q.uninstall()


def _other_key_decision(run: QuotaRun) -> iam_eval.Decision:
    """Real IAM's answer to a request signed with the owner's other key, on the documents IAM holds now."""
    iam = run.bench.env.clients.iam
    user = iam_eval.user_documents(iam, run.owner)
    return user.evaluate(iam_eval.long_term_key(user.arn, "iam:CreateAccessKey", user.arn))


def _refusals(run: QuotaRun, op: str) -> int:
    return sum(1 for r in run.quotas.refused if r.operation == op)


ROWS = [pytest.param(r, id=r.label) for r in QUOTA_ROWS]
ISSUE9_ROWS = [pytest.param(r, id=r.label) for r in QUOTA_ROWS if r.issue9]  # held since issue 9's engine


@pytest.mark.parametrize("row", ROWS)
def test_quota_fault(run_row: Callable[[QuotaRow], QuotaRun], row: QuotaRow) -> None:
    """What holds today and must keep holding: the quota refuses exactly the write it should, once (IAM's
    LimitExceeded is not retried), containment that does not depend on it is in IAM, a failure is named in
    the notification and raised, and nothing else changed."""
    run = run_row(row)
    got, error = run.got, run.got.invocation.error
    matrix._assert_exact(run.bench, got)
    matrix._assert_reports_match_iam(got)
    if row.refused:
        assert _refusals(run, row.refused) == 1, run.quotas.refused
    else:
        assert run.quotas.refused == [], run.quotas.refused
    state = got.after[f"{row.kind}/{run.owner}"]
    for key in run.bench.named & set(state.get("keys", {})):
        assert state["keys"][key] == "Inactive"
    if row.kind == "user" and run.other_key:
        assert state["keys"][run.other_key] == "Active"  # never touched
    (doc,) = got.docs
    actions = {a["action"]: a for a in doc["actions"]}
    if row.refused in ("PutUserPolicy", "PutRolePolicy"):  # a containment layer failed: loud, raised
        assert actions[row.action]["status"] == "failed" and "LimitExceeded" in actions[row.action]["detail"]
        assert isinstance(error, ResponseFailed) and row.action in str(error)
        assert doc["level"] == "critical"
    if row.refused in ("TagUser", "TagRole"):  # the deny landed before the record was attempted
        policy = QUARANTINE_POLICY if row.scenario in (GD_USER, HEALTH) else REVOKE_SESSIONS_POLICY
        assert policy in state["policies"], state["policies"]
        if policy == QUARANTINE_POLICY:
            assert state["policies"][policy] == deny_all_policy()
    if not row.refused:
        assert error is None and doc["outcome"] == row.scenario.outcome
        decided = _other_key_decision(run)
        assert decided.denied and decided.explicit, decided.reason


@pytest.mark.parametrize("row", ISSUE9_ROWS)
def test_quota_fault_issue9(run_row: Callable[[QuotaRow], QuotaRun], row: QuotaRow) -> None:
    """What issue 9 must achieve against the attacker who filled the quota first."""
    run = run_row(row)
    got, error = run.got, run.got.invocation.error
    matrix._assert_exact(run.bench, got)
    (doc,) = got.docs
    if row.issue9 == OTHER_KEY_DENIED:
        decided = _other_key_decision(run)
        assert decided.denied and decided.explicit, f"the other key still works in real IAM: {decided.reason}"
        assert "permissions boundary" in decided.reason, decided.reason
        failed = [a for a in doc["actions"] if a["status"] == "failed"]
        assert any("LimitExceeded" in a["detail"] for a in failed), doc["actions"]  # reported, not hidden
    else:
        assert error is None, repr(error)
        assert doc["outcome"] == row.scenario.outcome, doc["outcome"]
        _ledger_has(run, row)


def _ledger_has(run: QuotaRun, row: QuotaRow) -> None:
    """The containment is in keyguard's own ledger (issue 9's seam: keyguard.ledger.Ledger)."""
    from keyguard.ledger import Ledger  # type: ignore[import-not-found]

    env = run.bench.env
    table = getattr(env, "ledger_table", None) or os.environ["KEYGUARD_LEDGER_TABLE"]
    ledger = Ledger(table, env.clients.get("dynamodb"))
    if row.kind == "user":
        for key in run.bench.named:
            record = ledger.key(key)
            assert record is not None and record.held and record.user == run.owner, record
            # a leaked key is never to be revived; a new key (CreateAccessKey) may be, after review
            assert record.leaked is (row.scenario is not NEW_KEY), record
    else:
        record = ledger.principal("role", run.owner)
        assert record is not None and record.contained_at, record


# ------------------------------------------------------------------------------------------- the docs

BEGIN, END = "<!-- quota-faults:begin -->", "<!-- quota-faults:end -->"


def render_markdown() -> str:
    lines = ["| scenario: quota full | refused | asserted | and since issue 9 (failed before it) |"]
    lines.append("|---|---|---|---|")
    for r in QUOTA_ROWS:
        then = f"attack {r.attack}: {r.issue9}" if r.issue9 else "-"
        lines.append(f"| {r.label} | {r.refused or '-'} | {r.today} | {then} |")
    return "\n".join(lines)


def test_docs_show_the_quota_rows() -> None:
    text = DOCS.read_text()
    table = render_markdown()
    if os.environ.get("KEYGUARD_WRITE_DOCS") == "1" and BEGIN in text and END in text:
        text = text[: text.index(BEGIN) + len(BEGIN)] + "\n" + table + "\n" + text[text.index(END) :]
        DOCS.write_text(text)
    assert BEGIN in text and END in text, f"{DOCS} has no quota-faults section"
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert shown == table, f"{DOCS} shows outdated quota rows: run with KEYGUARD_WRITE_DOCS=1"


def test_world_state_sees_what_the_attacker_wrote(stage: world.Stage) -> None:
    """The rows read IAM through world.iam_state: it must show the attacker's filler and tags."""
    stage.clear_iam()
    iam = stage.fresh().clients.iam
    iam.create_user(UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="ops-notes", PolicyDocument=filler_policy(1948))
    iam.tag_user(UserName="alice", Tags=[{"Key": f"team:{i:02d}", "Value": "platform"} for i in range(50)])
    state = world.iam_state()["user/alice"]
    assert list(state["policies"]) == ["ops-notes"] and len(state["tags"]) == 50
    stage.clear_iam()
