"""The operator commands in organization mode: `status|contain|release --account ID` act in that member
account through its member role (and nowhere else); `audit --organization` audits every active account,
in parallel, and reports per account and in total."""

from __future__ import annotations

import io
import json

import pytest

from keyguard.cli import build_parser
from keyguard.operator import commands, organization
from keyguard.operator.clients import OperatorClients
from tests.conftest import inbox
from tests.organization.world import OUTSIDER, Organization, stand_in


@pytest.fixture
def central(org: Organization, monkeypatch: pytest.MonkeyPatch) -> OperatorClients:
    import boto3

    # the operator's environment names the security account's deny-all policy, as the stack's functions do
    monkeypatch.setenv("KEYGUARD_DENY_ALL_POLICY_ARN", org.env.deny_all_policy_arn)

    clients = OperatorClients(session=boto3.session.Session(region_name="us-east-1"))
    stand_in(org, clients.get("sts"))
    return clients


def console() -> commands.Console:
    return commands.Console(io.StringIO(), io.StringIO(), io.StringIO())


def run(org: Organization, central: OperatorClients, argv: list[str]) -> tuple[int, str, str]:
    args = build_parser().parse_args(argv)
    assert organization.wanted(args)
    out = console()
    try:
        accounts = organization.organization_for(args, central)
        if args.command == "audit":
            code = organization.audit_organization(args, central, accounts, out)
        else:
            me = f"operator-{args.command}"
            clients = organization.member_clients(accounts, central, args.account, me)
            with organization.member_settings(accounts, args.account):
                code = commands.COMMANDS[args.command](args, clients, out)
    except Exception as e:
        out.warn(organization.describe(e))
        code = commands.NOTHING_DONE
    return code, out.out.getvalue(), out.err.getvalue()


def seed_everywhere(org: Organization, user: str = "alice") -> dict[str, str]:
    keys = {}
    for account in org.members.values():
        iam = org.admin(account)
        iam.create_user(UserName=user)
        keys[account] = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    return keys


def test_contain_status_release_act_in_the_named_account_only(org: Organization, central: OperatorClients) -> None:
    keys = seed_everywhere(org)
    b = org.members["B"]
    ext = ["--external-id", "keyguard-example-external-id"]
    code, out, err = run(
        org,
        central,
        ["contain", "--account", b, "--key", keys[b], "--yes", "--topic-arn", org.env.topic_arn, *ext],
    )
    assert code == commands.OK, err
    assert f"account {b}" in out
    for account, key in keys.items():
        expected = "Inactive" if account == b else "Active"
        assert org.key_states(account)["alice"][key] == expected, account
        assert org.policies(account)["alice"] == (["keyguard-quarantine"] if account == b else [])
    boundary = org.admin(b).get_user(UserName="alice")["User"].get("PermissionsBoundary", {})
    assert boundary.get("PermissionsBoundaryArn") == "arn:aws:iam::aws:policy/AWSDenyAll"
    assert [d["outcome"] for d in inbox(org.env)] == ["contained"]  # the central topic, with the operator's credentials

    code, out, _ = run(org, central, ["status", "--account", b, "--user", "alice", "--format", "json", *ext])
    assert code == commands.OK and json.loads(out)["held"] is True

    code, _, err = run(
        org, central, ["release", "--account", b, "--user", "alice", "--yes", "--topic-arn", org.env.topic_arn, *ext]
    )
    assert code == commands.OK, err
    assert org.policies(b)["alice"] == []
    assert [arn for arn, _ in org.assumed] == [f"arn:aws:iam::{b}:role/keyguard-operator"] * 3
    assert all(name.startswith("keyguard-operator-") for _, name in org.assumed)


@pytest.mark.parametrize("which", ["outsider", "suspended", "wrong-external-id"])
def test_an_account_keyguard_must_not_or_cannot_act_in_stops_the_command(
    org: Organization, central: OperatorClients, which: str
) -> None:
    account = {"outsider": OUTSIDER, "suspended": org.suspended, "wrong-external-id": org.members["A"]}[which]
    external = "guess" if which == "wrong-external-id" else "keyguard-example-external-id"
    code, out, err = run(org, central, ["status", "--account", account, "--user", "alice", "--external-id", external])
    assert code == commands.NOTHING_DONE and out == ""
    expected = {"outsider": "not in the organization", "suspended": "suspended", "wrong-external-id": "AssumeRole"}
    assert expected[which] in err
    if which != "wrong-external-id":
        assert org.assumed == [] and org.refused == []  # never assumed into


def test_audit_organization_reports_every_account_and_the_total(org: Organization, central: OperatorClients) -> None:
    seed_everywhere(org)
    seed_everywhere(org, "bob")
    org.remove_member_role(org.members["C"])  # C cannot be audited: reported, the others go on
    argv = ["audit", "--organization", "--regions", "us-east-1", "--format", "json"]
    argv += ["--external-id", "keyguard-example-external-id", "--workers", "3"]
    code, out, _ = run(org, central, argv)
    report = json.loads(out)
    assert code == commands.FAILED  # one account incomplete
    rows = {r["account"]: r for r in report["accounts"]}
    assert set(rows) >= {org.members["A"], org.members["B"], org.members["C"]}
    for name in ("A", "B"):
        assert rows[org.members[name]]["complete"] and rows[org.members[name]]["counts"]["activeKeys"] == 2
    assert rows[org.members["C"]]["error"] and "AssumeRole" in rows[org.members["C"]]["error"]
    assert {s["account"] for s in report["skipped"]} == {org.suspended}
    assert report["total"]["activeKeys"] == sum(r["counts"].get("activeKeys", 0) for r in report["accounts"])


def test_audit_organization_text_has_a_row_per_account_and_a_total(org: Organization, central: OperatorClients) -> None:
    seed_everywhere(org)
    argv = ["audit", "--organization", "--regions", "us-east-1", "--external-id", "keyguard-example-external-id"]
    code, out, _ = run(org, central, argv)
    assert code == commands.OK
    lines = out.splitlines()
    assert lines[0].startswith("account") and lines[-1].startswith("not audited:")
    for account in org.members.values():
        assert any(line.startswith(account) for line in lines)
    assert any(line.startswith("total") for line in lines)


def test_account_options_are_checked_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", "--account", "12345"])
    args = build_parser().parse_args(["status"])
    assert not organization.wanted(args)  # without --account, the commands are as before
