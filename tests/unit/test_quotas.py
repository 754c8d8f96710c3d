"""keyguard.local.quotas: IAM's quotas that moto does not enforce, answered as IAM answers them, exactly
where IAM would (one character, one policy, one tag past the quota; not one before), in-process and over
HTTP (moto_server)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from keyguard.local import quotas
from keyguard.local.quotas import Limits, filler_policy, policy_size

QUARANTINE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KeyguardQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
)
Q = policy_size(QUARANTINE)  # what keyguard-quarantine costs in the budget


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """In-process moto. Clients copy their session's hooks when they are made: a test installs the quotas
    on the session first, or on the client itself."""
    from moto import mock_aws

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def _limit_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int, int]:
    r = excinfo.value.response
    return (
        r["Error"]["Code"],
        r["Error"]["Message"],
        r["ResponseMetadata"]["HTTPStatusCode"],
        r["ResponseMetadata"]["RetryAttempts"],
    )


# ------------------------------------------------------------------------------------------ counting


def test_policy_size_counts_every_character_but_whitespace() -> None:
    assert policy_size('{"a": "b c"}') == len('{"a":"bc"}')
    assert policy_size('{\n\t"a" :\r\n "b"}') == len('{"a":"b"}')
    assert policy_size({"a": ["b", "c"]}) == len('{"a":["b","c"]}')
    assert policy_size({"a": "é"}) == len('{"a":"é"}')  # as written, not \u00e9
    assert policy_size("%7B%22a%22%3A%22b%22%7D") == len('{"a":"b"}')  # IAM's URL-encoded answer
    assert policy_size(QUARANTINE) == Q == 111


@pytest.mark.parametrize("chars", [150, 1954, 2048, 10240])
def test_filler_policy_has_exactly_the_size_asked_for(chars: int) -> None:
    doc = filler_policy(chars)
    assert policy_size(doc) == chars
    assert json.loads(doc)["Statement"][0]["Effect"] == "Allow"
    with pytest.raises(ValueError):
        filler_policy(10)


# ------------------------------------------------------------------------------------------ inline budget


def test_a_full_user_inline_budget_refuses_the_quarantine_policy(moto: boto3.Session) -> None:
    q = quotas.install(moto)
    iam = moto.client("iam")
    iam.create_user(UserName="alice")
    with q:
        iam.put_user_policy(UserName="alice", PolicyName="attacker", PolicyDocument=filler_policy(2048 - Q + 1))
        with pytest.raises(ClientError) as e:
            iam.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)
        assert _limit_error(e) == ("LimitExceeded", "Maximum policy size of 2048 bytes exceeded for user alice", 409, 0)
        assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["attacker"]  # never reached moto
        assert [(r.operation, r.entity) for r in q.refused] == [("PutUserPolicy", "user/alice")]
    # without the emulation, moto takes it: the gap this module closes
    iam.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)


def test_the_budget_is_exact_to_the_character(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    iam.create_user(UserName="alice")
    with quotas.install(iam):
        iam.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2048 - Q))
        iam.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)  # 2,048
        with pytest.raises(ClientError, match="LimitExceeded"):
            iam.put_user_policy(UserName="alice", PolicyName="c", PolicyDocument=filler_policy(150))


def test_whitespace_is_free_and_replacing_a_policy_counts_its_new_document_only(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    iam.create_user(UserName="alice")
    with quotas.install(iam):
        padded = json.dumps(json.loads(filler_policy(1900)), indent=8)  # ~2,000 characters with its whitespace
        assert len(padded) > 2048 - Q
        iam.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=padded)
        iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=filler_policy(148))  # 2,048
        iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=filler_policy(148))  # the same again
        with pytest.raises(ClientError, match="LimitExceeded"):
            iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=filler_policy(149))
        iam.delete_user_policy(UserName="alice", PolicyName="a")  # space freed
        iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=filler_policy(2048))


def test_a_role_has_10240_characters(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    iam.create_role(RoleName="web", AssumeRolePolicyDocument=QUARANTINE)
    with quotas.install(iam):
        iam.put_role_policy(RoleName="web", PolicyName="a", PolicyDocument=filler_policy(10240 - Q))
        iam.put_role_policy(RoleName="web", PolicyName="b", PolicyDocument=QUARANTINE)
        with pytest.raises(ClientError) as e:
            iam.put_role_policy(RoleName="web", PolicyName="c", PolicyDocument=filler_policy(150))
        assert _limit_error(e)[:3] == ("LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role web", 409)


def test_an_unknown_user_is_the_emulators_answer(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    with quotas.install(iam), pytest.raises(ClientError, match="NoSuchEntity"):
        iam.put_user_policy(UserName="nobody", PolicyName="p", PolicyDocument=QUARANTINE)


# ------------------------------------------------------------------------------------------ managed policies


def _managed(iam: Any, n: int) -> list[str]:
    return [
        iam.create_policy(PolicyName=f"p{i}", PolicyDocument=filler_policy(150, sid=f"P{i}"))["Policy"]["Arn"]
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", ["user", "role"])
def test_ten_managed_policies_then_limit_exceeded(moto: boto3.Session, kind: str) -> None:
    iam = moto.client("iam")
    arns = _managed(iam, 11)
    if kind == "user":
        iam.create_user(UserName="alice")
        attach = lambda arn: iam.attach_user_policy(UserName="alice", PolicyArn=arn)  # noqa: E731
        attached = lambda: iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]  # noqa: E731
        message = "Cannot exceed quota for PoliciesPerUser: 10"
    else:
        iam.create_role(RoleName="web", AssumeRolePolicyDocument=QUARANTINE)
        attach = lambda arn: iam.attach_role_policy(RoleName="web", PolicyArn=arn)  # noqa: E731
        attached = lambda: iam.list_attached_role_policies(RoleName="web")["AttachedPolicies"]  # noqa: E731
        message = "Cannot exceed quota for PoliciesPerRole: 10"
    with quotas.install(iam):
        for arn in arns[:10]:
            attach(arn)
        attach(arns[3])  # already attached: IAM changes nothing and says nothing
        with pytest.raises(ClientError) as e:
            attach(arns[10])
        assert _limit_error(e)[:3] == ("LimitExceeded", message, 409)
        assert len(attached()) == 10


def test_a_raised_quota_is_honoured(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    iam.create_user(UserName="alice")
    arns = _managed(iam, 12)
    with quotas.install(iam, Limits(user_managed_policies=11)):
        for arn in arns[:11]:
            iam.attach_user_policy(UserName="alice", PolicyArn=arn)
        with pytest.raises(ClientError, match="PoliciesPerUser: 11"):
            iam.attach_user_policy(UserName="alice", PolicyArn=arns[11])


# ------------------------------------------------------------------------------------------ tags


def _tags(n: int, prefix: str = "t") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": "v"} for i in range(n)]


@pytest.mark.parametrize("kind", ["user", "role"])
def test_fifty_tags_then_limit_exceeded(moto: boto3.Session, kind: str) -> None:
    iam = moto.client("iam")
    if kind == "user":
        iam.create_user(UserName="alice", Tags=_tags(50))
        tag = lambda tags: iam.tag_user(UserName="alice", Tags=tags)  # noqa: E731
        listed = lambda: iam.list_user_tags(UserName="alice")["Tags"]  # noqa: E731
    else:
        iam.create_role(RoleName="web", AssumeRolePolicyDocument=QUARANTINE, Tags=_tags(50))
        tag = lambda tags: iam.tag_role(RoleName="web", Tags=tags)  # noqa: E731
        listed = lambda: iam.list_role_tags(RoleName="web")["Tags"]  # noqa: E731
    with quotas.install(iam):
        tag([{"Key": "t7", "Value": "overwritten"}, {"Key": "T8", "Value": "case does not make a new key"}])
        with pytest.raises(ClientError) as e:
            tag([{"Key": "keyguard:incident", "Value": "x"}])
        assert _limit_error(e)[:3] == ("LimitExceeded", f"Cannot exceed quota for TagsPer{kind.title()}: 50", 409)
        assert "keyguard:incident" not in {t["Key"] for t in listed()}


def test_tags_are_counted_with_what_the_request_adds(moto: boto3.Session) -> None:
    iam = moto.client("iam")
    iam.create_user(UserName="alice", Tags=_tags(46))
    with quotas.install(iam):
        iam.tag_user(UserName="alice", Tags=_tags(4, "k"))  # 50
        iam.untag_user(UserName="alice", TagKeys=["t0", "t1"])
        with pytest.raises(ClientError, match="LimitExceeded"):
            iam.tag_user(UserName="alice", Tags=_tags(3, "n"))  # 51
        iam.tag_user(UserName="alice", Tags=_tags(2, "n"))  # 50


# ------------------------------------------------------------------------------------------ installing


def test_install_on_keyguards_clients_reaches_clients_made_before_and_after(moto: boto3.Session) -> None:
    from keyguard.aws import Clients

    clients = Clients()
    early = clients.iam  # made before install
    early.create_user(UserName="alice")
    early.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2000))
    q = quotas.install(clients)
    with pytest.raises(ClientError, match="LimitExceeded"):
        early.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)
    later = clients.session.create_client("iam", region_name="us-east-1")
    with pytest.raises(ClientError, match="LimitExceeded"):
        later.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)
    assert len(q.refused) == 2 and q.checked == 2
    q.uninstall()
    early.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)


def test_install_on_one_client_leaves_others_alone(moto: boto3.Session) -> None:
    watched, other = moto.client("iam"), moto.client("iam")
    watched.create_user(UserName="alice")
    watched.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2000))
    with quotas.install(watched):
        with pytest.raises(ClientError, match="LimitExceeded"):
            watched.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=QUARANTINE)
        other.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=QUARANTINE)


def test_the_state_is_read_in_the_writers_account(moto: boto3.Session) -> None:
    """A write made with another account's credentials (sts.assume_role, as organization mode does) is
    checked against that account's user, not the default account's user of the same name."""
    iam = moto.client("iam")
    iam.create_user(UserName="alice")  # 123456789012: an empty budget
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
    )
    creds = moto.client("sts").assume_role(RoleArn="arn:aws:iam::210987654321:role/member", RoleSessionName="keyguard")[
        "Credentials"
    ]
    member = boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    member.create_role(RoleName="member", AssumeRolePolicyDocument=trust)
    member.create_user(UserName="alice")
    member.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2000))
    with quotas.install([member, iam]):
        with pytest.raises(ClientError, match="LimitExceeded"):
            member.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)
        iam.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_over_http_against_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        session = boto3.Session(region_name="us-east-1")
        iam = session.client("iam", endpoint_url=f"http://127.0.0.1:{port}")
        iam.create_user(UserName="alice", Tags=_tags(50))
        iam.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2000))
        with quotas.install(session) as q:
            iam = session.client("iam", endpoint_url=f"http://127.0.0.1:{port}")
            with pytest.raises(ClientError) as e:
                iam.put_user_policy(UserName="alice", PolicyName="keyguard-quarantine", PolicyDocument=QUARANTINE)
            assert _limit_error(e) == (
                "LimitExceeded",
                "Maximum policy size of 2048 bytes exceeded for user alice",
                409,
                0,
            )
            with pytest.raises(ClientError, match="TagsPerUser: 50"):
                iam.tag_user(UserName="alice", Tags=[{"Key": "keyguard:incident", "Value": "x"}])
            assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["a"]
            assert len(q.refused) == 2
    finally:
        server.stop()


def test_the_emulators_handlers_meet_the_quotas(account: Any, iam_quotas: quotas.Quotas) -> None:
    """Installed on the emulated account's clients (tests/conftest.py `iam_quotas`), the quotas reach the
    clients keyguard's handlers use: a budget filled beforehand refuses keyguard-quarantine."""
    from keyguard.local import emulator
    from tests.conftest import load_event

    seeded = emulator.seed(account.clients.iam, load_event("guardduty-iam-user.json"))
    account.clients.iam.put_user_policy(UserName="alice", PolicyName="ops", PolicyDocument=filler_policy(2000))
    (rule,) = emulator.route(seeded.event, emulator.load_rules())
    inv = emulator.invoke(account, rule, seeded.event)
    assert inv.error and "quarantine-user" in inv.error
    assert [(r.operation, r.entity) for r in iam_quotas.refused] == [("PutUserPolicy", "user/alice")]
    assert account.clients.iam.list_user_policies(UserName="alice")["PolicyNames"] == ["ops"]


def test_never_reads_a_real_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """No emulator in front of the client (no mock_aws, no endpoint): the quotas refuse to read AWS, and the
    write is never sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    iam = boto3.client("iam", region_name="us-east-1")
    with quotas.install(iam), pytest.raises(RuntimeError, match="for emulators"):
        iam.put_user_policy(UserName="alice", PolicyName="p", PolicyDocument=QUARANTINE)


def test_an_injected_fault_answers_first(moto: boto3.Session) -> None:
    """With a fault from tests/faults.py on the same call, the fault answers (the request never reaches IAM,
    whose quotas are not consulted) and the quotas do not try to read through the fault's dead URL."""
    from tests.faults import Fault

    iam = moto.client("iam", config=__import__("botocore.config").config.Config(retries={"max_attempts": 0}))
    iam.create_user(UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="a", PolicyDocument=filler_policy(2000))
    q = quotas.install(iam)
    fault = Fault(iam, "PutUserPolicy", "AccessDenied", status=403)
    with pytest.raises(ClientError, match="AccessDenied"):
        iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=QUARANTINE)
    assert fault.calls == 1 and q.refused == []
    fault.remove()
    with pytest.raises(ClientError, match="LimitExceeded"):
        iam.put_user_policy(UserName="alice", PolicyName="b", PolicyDocument=QUARANTINE)
    q.uninstall()
