"""An investigation that leaves no backdoor: the attacker's own boto3 calls, signed with the leaked key,
in the emulated account; their CloudTrail records (keyguard.local.cloudtrail.Recorder) in the history the
LookupEvents stand-in serves; then the GuardDuty finding, containment, and the investigation. Each test
asserts IAM's state afterwards and what the notification says (trust before/after, revert commands,
counts that match what is listed)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import boto3

from keyguard.actions import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, deny_all_policy
from keyguard.local.cloudtrail import FakeCloudTrail, Recorder
from tests.conftest import inbox, load_event

FOREIGN = "999999999999"
ADMIN = "arn:aws:iam::123456789012:policy/everything"  # moto has no AWS-managed policies: a customer one
EVERYTHING = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def _trust(principal: dict[str, Any]) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


EC2_TRUST = _trust({"Service": "ec2.amazonaws.com"})
FOREIGN_TRUST = _trust({"AWS": f"arn:aws:iam::{FOREIGN}:root"})


class Attack:
    """The account, the leaked key's owner seeded from the GuardDuty finding, and the attacker's IAM
    client (signed with the leaked key, every call recorded into the history)."""

    def __init__(self, account: Any) -> None:
        from keyguard.local import emulator

        self.account = account
        self.event = load_event("guardduty-iam-user.json")
        self.seeded = emulator.seed(account.clients.iam, self.event)
        self.key = self.seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
        self.records: list[dict[str, Any]] = []
        account.cloudtrail = FakeCloudTrail(self.records).install(account.clients.session)
        session = boto3.session.Session(
            aws_access_key_id=self.key,
            aws_secret_access_key=self.seeded.secrets[self.key],
            region_name="us-east-1",
        )
        Recorder(session, self.records, key_id=self.key, user="alice")
        self.iam = session.client("iam")

    def contain_and_investigate(self) -> tuple[list[Any], dict[str, Any], str]:
        from keyguard.local import emulator

        (rule,) = emulator.route(self.seeded.event, emulator.load_rules())
        invocations = [emulator.invoke(self.account, rule, self.seeded.event)]
        invocations += emulator.investigate_queued(self.account)
        docs = inbox(self.account)
        (report,) = [d for d in docs if d.get("kind") == "investigation"]
        (message,) = invocations[-1].published
        return invocations, report, json.loads(message["Message"])["default"]


def _run(account: Any, setup: Callable[[Any], Any], steps: Callable[[Attack], Any]) -> tuple[Attack, dict, str]:
    account.clients.iam.create_policy(PolicyName="everything", PolicyDocument=EVERYTHING)
    setup(account.clients.iam)
    attack = Attack(account)
    steps(attack)
    invocations, report, text = attack.contain_and_investigate()
    assert [i.error for i in invocations] == [None, None], [i.error for i in invocations]
    return attack, report, text


def _assert_honest_counts(report: dict, text: str) -> None:
    """The subject's numbers are the number of targets listed under each heading, nothing more."""
    subject = report["_subject"]
    found = re.search(r"(\d+) (?:would be )?contained, (\d+) need you", subject)
    assert found, subject
    contained, human = int(found.group(1)), int(found.group(2))
    assert contained == len(report["contained"]) and human == len(report["needsYou"]), (subject, report)
    for heading, n in (("Contained by keyguard", contained), ("Needs you", human)):
        if n:
            section = text.split(f"{heading} ({n}):", 1)[1].split("\n\n", 1)[0]
            assert len(re.findall(r"^  - ", section, flags=re.M)) == n, section


def _role_policy(iam: Any, role: str, name: str) -> dict | None:
    try:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return json.loads(doc) if isinstance(doc, str) else doc


def _finding(report: dict, kind: str, target: str) -> dict:
    (found,) = [f for f in report["findings"] if f["kind"] == kind and f["target"] == target]
    return found


def _nothing(iam: Any) -> None:
    pass


def test_role_created_with_a_foreign_trust_gets_deny_all_and_the_trust_is_reported(account) -> None:
    def steps(a: Attack) -> None:
        a.iam.create_role(RoleName="backdoor-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
        a.iam.attach_role_policy(RoleName="backdoor-role", PolicyArn=ADMIN)

    _, report, text = _run(account, _nothing, steps)
    iam = account.clients.iam
    assert _role_policy(iam, "backdoor-role", QUARANTINE_POLICY) == deny_all_policy()
    boundary = iam.get_role(RoleName="backdoor-role")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
    assert boundary == account.deny_all_policy_arn  # the layer the key holder cannot pre-fill
    # the trust policy itself is evidence: keyguard does not change it (the restore command is given)
    trust = iam.get_role(RoleName="backdoor-role")["Role"]["AssumeRolePolicyDocument"]
    assert FOREIGN in json.dumps(trust)
    created = _finding(report, "role-created", "role backdoor-role")
    assert created["critical"] and created["status"] == "done"
    assert any("trust before: (none: the key created the role)" in d for d in created["details"])
    assert any(d.startswith("trust after") and FOREIGN in d for d in created["details"])
    assert any(d.startswith("trust now") and FOREIGN in d for d in created["details"])
    assert created["revert"] == [
        f"aws iam delete-role-policy --role-name backdoor-role --policy-name {QUARANTINE_POLICY}",
        f"aws iam detach-role-policy --role-name backdoor-role --policy-arn {ADMIN}",
        "aws iam delete-role --role-name backdoor-role",
    ]
    assert "role backdoor-role" in report["contained"]
    assert "role backdoor-role [CRITICAL]" in text and f"arn:aws:iam::{FOREIGN}:root" in text
    assert report["_attributes"]["severity"]["Value"] == "critical"
    _assert_honest_counts(report, text)


def test_trust_changed_on_an_existing_role_gets_deny_all_and_the_restore_command(account) -> None:
    def setup(iam: Any) -> None:
        iam.create_role(RoleName="ci-runner", AssumeRolePolicyDocument=EC2_TRUST)

    def steps(a: Attack) -> None:
        a.iam.update_assume_role_policy(RoleName="ci-runner", PolicyDocument=_trust({"Service": "ec2.amazonaws.com"}))
        a.iam.update_assume_role_policy(RoleName="ci-runner", PolicyDocument=FOREIGN_TRUST)

    _, report, text = _run(account, setup, steps)
    assert _role_policy(account.clients.iam, "ci-runner", QUARANTINE_POLICY) == deny_all_policy()
    changes = [f for f in report["findings"] if f["kind"] == "role-trust-changed"]
    assert len(changes) == 2 and all(f["critical"] for f in changes)
    last = changes[-1]
    # before: what the key's own earlier change set; after: the foreign account; restore: exactly the before
    assert any(d.startswith("trust before") and "ec2.amazonaws.com" in d for d in last["details"])
    assert any(d.startswith("trust after") and FOREIGN in d for d in last["details"])
    (restore,) = last["revert"]
    assert restore.startswith("aws iam update-assume-role-policy --role-name ci-runner --policy-document '")
    restored = json.loads(restore.split("--policy-document ", 1)[1].strip("'"))
    assert restored["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert report["contained"] == ["role ci-runner"]
    _assert_honest_counts(report, text)


def test_policy_writes_on_existing_roles_contain_the_role_and_say_how_to_revert(account) -> None:
    def setup(iam: Any) -> None:
        iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=EC2_TRUST)
        iam.create_role(RoleName="audit-role", AssumeRolePolicyDocument=EC2_TRUST)
        iam.create_group(GroupName="developers")

    deny_only = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    allow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

    def steps(a: Attack) -> None:
        a.iam.attach_role_policy(RoleName="app-role", PolicyArn=ADMIN)
        a.iam.put_role_policy(RoleName="audit-role", PolicyName="harmless", PolicyDocument=deny_only)
        a.iam.put_group_policy(GroupName="developers", PolicyName="all", PolicyDocument=allow)

    _, report, text = _run(account, setup, steps)
    iam = account.clients.iam
    assert _role_policy(iam, "app-role", QUARANTINE_POLICY) == deny_all_policy()
    assert _role_policy(iam, "audit-role", QUARANTINE_POLICY) is None  # a Deny grants nothing
    assert _finding(report, "policy-write", "role app-role")["revert"] == [
        f"aws iam detach-role-policy --role-name app-role --policy-arn {ADMIN}"
    ]
    group = _finding(report, "policy-write", "group developers")
    assert group["status"] == "human"
    assert group["revert"] == ["aws iam delete-group-policy --group-name developers --policy-name all"]
    assert report["contained"] == ["role app-role"] and report["needsYou"] == ["group developers"]
    assert "aws iam delete-role-policy --role-name audit-role --policy-name harmless" in text
    _assert_honest_counts(report, text)


def test_policy_version_set_as_default_is_critical_with_the_revert(account) -> None:
    arn = "arn:aws:iam::123456789012:policy/app-policy"
    v1 = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    )
    v2 = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

    def setup(iam: Any) -> None:
        iam.create_policy(PolicyName="app-policy", PolicyDocument=v1)

    def steps(a: Attack) -> None:
        a.iam.create_policy_version(PolicyArn=arn, PolicyDocument=v2, SetAsDefault=True)

    _, report, text = _run(account, setup, steps)
    found = _finding(report, "policy-version", f"policy {arn}")
    assert found["critical"] and found["status"] == "human"
    assert found["revert"][0].startswith(f"aws iam set-default-policy-version --policy-arn {arn} --version-id v1")
    assert found["revert"][1] == f"aws iam delete-policy-version --policy-arn {arn} --version-id v2"
    assert report["needsYou"] == [f"policy {arn}"]
    assert report["_attributes"]["severity"]["Value"] == "critical"
    _assert_honest_counts(report, text)


def test_a_dormant_key_it_revived_is_deactivated_again(account) -> None:
    keys: dict[str, str] = {}

    def setup(iam: Any) -> None:
        iam.create_user(UserName="old-ci")
        keys["dormant"] = iam.create_access_key(UserName="old-ci")["AccessKey"]["AccessKeyId"]
        keys["other"] = iam.create_access_key(UserName="old-ci")["AccessKey"]["AccessKeyId"]
        iam.update_access_key(UserName="old-ci", AccessKeyId=keys["dormant"], Status="Inactive")

    def steps(a: Attack) -> None:
        a.iam.update_access_key(UserName="old-ci", AccessKeyId=keys["dormant"], Status="Active")

    _, report, text = _run(account, setup, steps)
    iam = account.clients.iam
    status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="old-ci")["AccessKeyMetadata"]}
    assert status == {keys["dormant"]: "Inactive", keys["other"]: "Active"}  # exactly that key
    assert iam.list_user_policies(UserName="old-ci")["PolicyNames"] == [REVOKE_SESSIONS_POLICY]
    found = _finding(report, "key-revived", f"key {keys['dormant']}")
    assert found["critical"] and found["status"] == "done"
    assert report["contained"] == [f"key {keys['dormant']}"]
    _assert_honest_counts(report, text)


def test_identity_provider_created_is_critical_for_a_human(account) -> None:
    def steps(a: Attack) -> None:
        a.iam.create_open_id_connect_provider(
            Url="https://token.example.invalid", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
        )

    _, report, text = _run(account, _nothing, steps)
    (found,) = [f for f in report["findings"] if f["kind"] == "identity-provider"]
    provider = found["target"].split(" ", 1)[1]
    assert provider.startswith("arn:aws:iam::123456789012:oidc-provider/")
    assert found["critical"] and found["status"] == "human"
    assert found["revert"] == [f"aws iam delete-open-id-connect-provider --open-id-connect-provider-arn {provider}"]
    assert account.clients.iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]  # never deleted
    assert report["needsYou"] == [found["target"]] and "Needs you (1):" in text
    _assert_honest_counts(report, text)


def test_dry_run_lists_the_backdoors_and_changes_nothing(account) -> None:
    mode = "dry-run"
    from keyguard.local import emulator

    attack = Attack(account)
    attack.iam.create_role(RoleName="backdoor-role", AssumeRolePolicyDocument=FOREIGN_TRUST)
    (rule,) = emulator.route(attack.seeded.event, emulator.load_rules())
    emulator.invoke(account, rule, attack.seeded.event, mode)
    emulator.investigate_queued(account, mode)
    (report,) = [d for d in inbox(account) if d.get("kind") == "investigation"]
    assert _role_policy(account.clients.iam, "backdoor-role", QUARANTINE_POLICY) is None
    assert report["contained"] == ["role backdoor-role"] and "would be contained" in report["_subject"]
    assert _finding(report, "role-created", "role backdoor-role")["status"] == "would"


def test_the_trust_before_comes_from_the_roles_own_history_when_the_key_did_not_set_it(account) -> None:
    """The role was made by someone else (its CreateRole is in CloudTrail, signed by another key); the
    leaked key only changed its trust: the role's own history says what the trust was before."""
    attack = Attack(account)
    admin = boto3.session.Session(
        aws_access_key_id="AKIAI44QH8DHBEXAMPLE", aws_secret_access_key="x", region_name="us-east-1"
    )
    Recorder(admin, attack.records, key_id="AKIAI44QH8DHBEXAMPLE", user="admin-carol")
    admin.client("iam").create_role(RoleName="ci-runner", AssumeRolePolicyDocument=EC2_TRUST)
    attack.iam.update_assume_role_policy(RoleName="ci-runner", PolicyDocument=FOREIGN_TRUST)
    created, changed = attack.records
    when = datetime.fromisoformat(changed["eventTime"].replace("Z", "+00:00")) - timedelta(minutes=1)
    created["eventTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")  # the role was made before the change
    invocations, report, text = attack.contain_and_investigate()
    assert [i.error for i in invocations] == [None, None]
    assert _role_policy(account.clients.iam, "ci-runner", QUARANTINE_POLICY) == deny_all_policy()
    (change,) = [f for f in report["findings"] if f["kind"] == "role-trust-changed"]
    assert change["details"][0] == f"trust before: {EC2_TRUST} (the role's CloudTrail history)"
    assert change["revert"] == [
        f"aws iam update-assume-role-policy --role-name ci-runner --policy-document '{EC2_TRUST}'"
    ]
    _assert_honest_counts(report, text)
