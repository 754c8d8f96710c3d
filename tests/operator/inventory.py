"""Building an account to test against: IAM state snapshots, and backdating what moto cannot be told
through the API (key creation and last-use dates, root access keys)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
ALLOW_S3 = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)


def snapshot(iam: Any, users: list[str] = (), roles: list[str] = ()) -> dict[str, Any]:
    """Everything about these principals that keyguard could touch: keys, inline policies (with their
    documents), tags."""
    out: dict[str, Any] = {}
    for user in users:
        out[f"user/{user}"] = {
            "keys": {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]},
            "policies": {
                name: iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
                for name in iam.list_user_policies(UserName=user)["PolicyNames"]
            },
            "tags": {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user)["Tags"]},
        }
    for role in roles:
        out[f"role/{role}"] = {
            "policies": {
                name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
            },
            "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role)["Tags"]},
        }
    return out


def user_with_keys(iam: Any, name: str, keys: int = 1, *, tags: dict[str, str] | None = None) -> list[str]:
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    return [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def role(iam: Any, name: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def enable_mfa(iam: Any, user: str) -> None:
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-mfa")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )


# ---------------------------------------------------------------------------------- moto's backend
# moto's API creates every key "now" and never records a last use, and its account summary always says
# the root user has no access keys. The audit needs old, idle and root keys, so the fixture sets those
# fields on moto's in-memory IAM backend (the same process serves moto_server's threads).


def _iam_backend() -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT]["global"]


def backdate_key(
    user: str,
    slot: int,
    *,
    created_days_ago: int,
    used_days_ago: int | None = None,
    service: str = "s3",
    region: str = "us-east-1",
    now: datetime | None = None,
) -> None:
    from moto.iam.models import AccessKeyLastUsed

    now = (now or datetime.now(UTC)).replace(tzinfo=None)  # moto keeps naive UTC times
    key = _iam_backend().users[user].access_keys[slot - 1]
    key.create_date = now - timedelta(days=created_days_ago)
    if used_days_ago is not None:
        key.last_used = AccessKeyLastUsed(now - timedelta(days=used_days_ago), service, region)


def root_has_access_keys(present: bool = True) -> None:
    _iam_backend().account_summary._account_access_keys_present = 1 if present else 0


# ---------------------------------------------------------------------------------- a whole account
AMI = "ami-12c6146b"  # moto's example AMI id


@dataclass
class Seeded:
    leaked_key: str
    instances: dict[str, str]  # name -> instance id


def seed_account(iam: Any, ec2_in: Any) -> Seeded:
    """23 IAM users (clean, old, idle, never used, two active keys, no MFA, inactive, no keys, held by
    keyguard), a role held by keyguard, root access keys, and EC2 instances in us-east-1 and eu-west-1.
    `ec2_in(region)` returns an EC2 client for the region. expected_findings() lists what the audit must find."""
    from keyguard.operator.contain import manual_incident
    from keyguard.respond import respond
    from keyguard.settings import Settings
    from tests.conftest import incident_from

    now = datetime.now(UTC)
    for n in range(1, 11):  # clean: MFA, one recent key, used yesterday
        user = f"ok-{n:02d}"
        user_with_keys(iam, user)
        enable_mfa(iam, user)
        backdate_key(user, 1, created_days_ago=10, used_days_ago=1, now=now)
    for n in range(1, 4):  # no keys at all (and no MFA: nothing to flag without keys)
        iam.create_user(UserName=f"nokeys-{n:02d}")
    for user, keys in (
        ("old-ivan", 1),
        ("ancient-olga", 1),
        ("idle-ursula", 1),
        ("never-nina", 1),
        ("double-dave", 2),
        ("inactive-irene", 1),
        ("fresh-unused-fred", 1),
        ("leaked-lucy", 2),
    ):
        user_with_keys(iam, user, keys)
        enable_mfa(iam, user)
    user_with_keys(iam, "nomfa-mike")
    made = user_with_keys(iam, "mixed-max", 2)
    iam.update_access_key(UserName="mixed-max", AccessKeyId=made[0], Status="Inactive")
    irene = iam.list_access_keys(UserName="inactive-irene")["AccessKeyMetadata"][0]["AccessKeyId"]
    iam.update_access_key(UserName="inactive-irene", AccessKeyId=irene, Status="Inactive")

    backdate_key("old-ivan", 1, created_days_ago=120, used_days_ago=2, now=now)
    backdate_key("ancient-olga", 1, created_days_ago=400, used_days_ago=5, now=now)
    backdate_key("idle-ursula", 1, created_days_ago=200, used_days_ago=150, service="ec2", region="eu-west-1", now=now)
    backdate_key("never-nina", 1, created_days_ago=100, now=now)
    backdate_key("double-dave", 1, created_days_ago=20, used_days_ago=1, now=now)
    backdate_key("double-dave", 2, created_days_ago=15, used_days_ago=1, now=now)
    backdate_key("inactive-irene", 1, created_days_ago=500, now=now)
    backdate_key("fresh-unused-fred", 1, created_days_ago=30, now=now)
    backdate_key("nomfa-mike", 1, created_days_ago=30, used_days_ago=3, now=now)
    backdate_key("mixed-max", 1, created_days_ago=300, used_days_ago=290, now=now)
    backdate_key("mixed-max", 2, created_days_ago=10, used_days_ago=1, now=now)
    backdate_key("leaked-lucy", 1, created_days_ago=40, used_days_ago=0, now=now)
    backdate_key("leaked-lucy", 2, created_days_ago=5, used_days_ago=1, now=now)
    root_has_access_keys()

    # keyguard holds a user (contained by hand, through the engine) and a role (GuardDuty finding)
    leaked = iam.list_access_keys(UserName="leaked-lucy")["AccessKeyMetadata"][0]["AccessKeyId"]
    actor = f"arn:aws:sts::{ACCOUNT}:user/moto"
    respond(manual_incident(leaked, ACCOUNT, "us-east-1", "AWS email", actor, now), Settings(), iam, now=now)
    role(iam, "web-app-role")
    respond(incident_from("guardduty-assumed-role-exfiltration.json"), Settings(), iam, now=now)

    instances = {}
    for region, name, options, stop in (
        ("us-east-1", "web-legacy", {"HttpTokens": "optional"}, False),
        ("us-east-1", "web-new", {"HttpTokens": "required"}, False),
        ("us-east-1", "no-metadata", {"HttpTokens": "optional", "HttpEndpoint": "disabled"}, False),
        ("eu-west-1", "batch-old", {"HttpTokens": "optional"}, True),
        ("eu-west-1", "batch-new", {"HttpTokens": "required"}, False),
        ("eu-west-1", "gone", {"HttpTokens": "optional"}, None),
    ):
        ec2 = ec2_in(region)
        made = ec2.run_instances(
            ImageId=AMI,
            MinCount=1,
            MaxCount=1,
            MetadataOptions=options,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )["Instances"][0]["InstanceId"]
        if stop:
            ec2.stop_instances(InstanceIds=[made])
        elif stop is None:
            ec2.terminate_instances(InstanceIds=[made])
        instances[name] = made
    return Seeded(leaked, instances)


def expected_findings(seeded: Seeded) -> list[tuple[str, str, str]]:
    """(check, subject, region) of every finding the audit must report, in its order."""
    return [
        ("root-access-keys", "root", ""),
        ("held-by-keyguard", "role/web-app-role", ""),
        ("held-by-keyguard", "user/leaked-lucy", ""),
        ("old-key", "user/ancient-olga key 1", ""),
        ("old-key", "user/idle-ursula key 1", ""),
        ("old-key", "user/never-nina key 1", ""),
        ("old-key", "user/old-ivan key 1", ""),
        ("unused-key", "user/idle-ursula key 1", ""),
        ("unused-key", "user/never-nina key 1", ""),
        ("two-active-keys", "user/double-dave", ""),
        ("key-without-mfa", "user/mixed-max", ""),
        ("key-without-mfa", "user/nomfa-mike", ""),
        ("imdsv1-allowed", f"instance {seeded.instances['batch-old']} (batch-old)", "eu-west-1"),
        ("imdsv1-allowed", f"instance {seeded.instances['web-legacy']} (web-legacy)", "us-east-1"),
    ]


EXPECTED_SUMMARY = (
    "23 long-lived access keys (20 active) on 20 of 23 IAM users; 4 older than 90 days (1 older than a year); "
    "2 unused for 90 days; 1 user with two active keys; 2 users with keys but no MFA; the root user has access "
    "keys. 2 of 5 EC2 instances allow IMDSv1 (2 regions checked). keyguard holds 1 user and 1 role in quarantine."
)
