"""An emulated AWS Organization (in-process moto, several accounts by id): the central stack's account,
members A, B and C with the member role from templates/member-global.yaml, a suspended member and an
account outside. moto ignores trust policies, so AssumeRole of the member role is answered at botocore's
before-send seam: the role must exist in the target account, and its trust (the template's document)
must allow the central function's role with the external id presented (tests/organization/policies.py)."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from botocore.awsrequest import AWSResponse

from keyguard.local import emulator
from keyguard.local.cloudtrail import RawBody
from keyguard.local.patterns import matches
from tests.organization.cfn import Rendered
from tests.organization.policies import ALLOW, Request, decide

CENTRAL = emulator.ACCOUNT  # moto's default account: the security account the central stack runs in
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
MEMBER_ROLE = "keyguard-member"
OPERATOR_ROLE = "keyguard-operator"
FUNCTION_ROLE = f"arn:aws:iam::{CENTRAL}:role/keyguard-GuardDutyFunctionRole-EXAMPLE"  # the caller's role
EXTERNAL_ID = "keyguard-example-external-id"
OUTSIDER = "999988887777"
ADMIN_ROLE = "OrganizationAccountAccessRole"  # what Organizations creates in accounts it creates


@dataclass
class Organization:
    env: emulator.Environment
    members: dict[str, str]  # "A" -> account id
    suspended: str
    org_id: str
    assumed: list[tuple[str, str]] = field(default_factory=list)  # (role ARN, session name) AssumeRole answered
    refused: list[str] = field(default_factory=list)  # role ARNs whose AssumeRole was denied
    _admin: dict[str, Any] = field(default_factory=dict)

    def admin(self, account: str, service: str = "iam", region: str = "us-east-1") -> Any:
        """A client acting as the account's administrator (tests seed and inspect with it)."""
        key = (account, service, region)
        if key not in self._admin:
            creds = self.env.clients.get("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="test-admin"
            )["Credentials"]
            if "session" not in self._admin:
                self._admin["session"] = botocore.session.Session()
            self._admin[key] = self._admin["session"].create_client(
                service,
                region_name=region,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return self._admin[key]

    def environ(self, **extra: str) -> dict[str, str]:
        return {
            "KEYGUARD_DEPLOYMENT_MODE": "organization",
            "KEYGUARD_MEMBER_ROLE_NAME": MEMBER_ROLE,
            "KEYGUARD_MEMBER_EXTERNAL_ID": EXTERNAL_ID,
            "KEYGUARD_DELEGATED_ADMIN_ACCOUNTS": CENTRAL,
            "KEYGUARD_MEMBER_ACCOUNTS": "",
            **extra,
        }

    def key_states(self, account: str) -> dict[str, dict[str, str]]:
        """user -> {key id: status} in an account."""
        iam = self.admin(account)
        out = {}
        for user in iam.list_users()["Users"]:
            name = user["UserName"]
            out[name] = {
                k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            }
        return out

    def policies(self, account: str) -> dict[str, list[str]]:
        iam = self.admin(account)
        return {
            u["UserName"]: iam.list_user_policies(UserName=u["UserName"])["PolicyNames"]
            for u in iam.list_users()["Users"]
        }

    def remove_member_role(self, account: str) -> None:
        iam = self.admin(account)
        for policy in iam.list_role_policies(RoleName=MEMBER_ROLE)["PolicyNames"]:
            iam.delete_role_policy(RoleName=MEMBER_ROLE, PolicyName=policy)
        iam.delete_role(RoleName=MEMBER_ROLE)


def build(env: emulator.Environment, names: tuple[str, ...] = ("A", "B", "C")) -> Organization:
    """The organization: members `names`, and D, suspended once its member role is in place."""
    orgs = env.clients.get("organizations")
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    members = {}
    for name in (*names, "D"):
        status = orgs.create_account(Email=f"{name.lower()}@example.com", AccountName=f"member-{name}")
        members[name] = status["CreateAccountStatus"]["AccountId"]
    suspended = members.pop("D")
    world = Organization(env, members, suspended, org_id)
    for account in [CENTRAL, *members.values(), suspended]:  # CENTRAL: the management stack's role
        _member_role(world, account)
    orgs.close_account(AccountId=suspended)
    stand_in(world, env.clients.get("sts"))
    return world


def stand_in(world: Organization, sts: Any) -> None:
    """Answer this STS client's AssumeRole of member roles as IAM would (see _AssumeRoleStandIn)."""
    _AssumeRoleStandIn(world).install(sts)


def _member_role(world: Organization, account: str) -> None:
    rendered = Rendered(
        "templates/member-global.yaml",
        {
            "CentralAccountId": CENTRAL,
            "TrustedRoleArns": FUNCTION_ROLE,
            "OperatorRoleArns": FUNCTION_ROLE,  # the tests' caller plays the operator too
            "ExternalId": EXTERNAL_ID,
            "CentralBusArn": f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/keyguard-keyguard-central",
        },
        account,
        "us-east-1",
    )
    iam = world.admin(account)
    for lid in ("MemberRole", "OperatorRole"):
        role = rendered.resources("AWS::IAM::Role")[lid]
        trust = json.dumps(role["AssumeRolePolicyDocument"])
        iam.create_role(RoleName=role["RoleName"], AssumeRolePolicyDocument=trust)
        for policy in role["Policies"]:
            document = json.dumps(policy["PolicyDocument"])
            iam.put_role_policy(RoleName=role["RoleName"], PolicyName=policy["PolicyName"], PolicyDocument=document)


class _AssumeRoleStandIn:
    """Answers AssumeRole of member roles as IAM would: AccessDenied unless the role exists and trusts the
    caller (the central function's role) with the external id given."""

    def __init__(self, world: Organization) -> None:
        self.world = world
        self._lock = threading.Lock()

    def install(self, sts: Any) -> None:
        sts.meta.events.register_first("before-send.sts.AssumeRole", self, unique_id="org-assume-role")

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        form = {k: v[0] for k, v in parse_qs(body).items()}
        arn = form.get("RoleArn", "")
        role = arn.rsplit("/", 1)[-1]
        if role not in (MEMBER_ROLE, OPERATOR_ROLE):
            return None  # the tests' own admin sessions
        account = arn.split(":")[4]
        allowed = False
        if account != OUTSIDER:
            try:
                trust = self.world.admin(account).get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
            except Exception:
                trust = None
            if isinstance(trust, str):
                trust = json.loads(trust)
            context = {"aws:PrincipalArn": FUNCTION_ROLE}
            if "ExternalId" in form:
                context["sts:ExternalId"] = form["ExternalId"]
            allowed = (
                trust is not None and decide(trust, Request(FUNCTION_ROLE, "sts:AssumeRole", context=context)) == ALLOW
            )
        with self._lock:
            if allowed:
                self.world.assumed.append((arn, form.get("RoleSessionName", "")))
                return None  # moto answers: credentials that act in that account
            self.world.refused.append(arn)
        request.url = "https://assume-role-refused.invalid/"
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
            f"{FUNCTION_ROLE} is not authorized to perform: sts:AssumeRole on resource: {arn}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, RawBody(xml.encode()))


# ---------------------------------------------------------------- events, as the central bus gets them
def central_rules(org_id: str) -> list[emulator.Rule]:
    rendered = Rendered(
        "template.yaml", {"DeploymentMode": "organization", "OrganizationId": org_id}, CENTRAL, "us-east-1"
    )
    handlers = {
        lid: res["Properties"]["Handler"]
        for lid, res in rendered.doc["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    out = []
    for rule in rendered.resources("AWS::Events::Rule").values():
        (target,) = rule["Targets"]
        function = target["Arn"].rsplit(":", 1)[1]
        out.append(emulator.Rule(function, handlers[function], rule["EventPattern"]))
    return out


def forwarded(world_member: str, region: str, event: dict[str, Any]) -> bool:
    """Whether the member's StackSet instance in `region` forwards `event` to the central bus."""
    rendered = Rendered(
        "templates/member-regional.yaml",
        {"CentralBusArn": f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/keyguard-keyguard-central"},
        world_member,
        region,
    )
    return any(matches(r["EventPattern"], event) for r in rendered.resources("AWS::Events::Rule").values())


def retarget(
    event: dict[str, Any], about: str, delivered_by: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """An events/ file made about account `about` (every account id in it), delivered by `delivered_by`'s
    bus (default: the same account), in `region` (GuardDuty's detail.region, the envelope's region)."""
    text = json.dumps(event)
    for example in ("123456789012", "111122223333"):
        text = text.replace(example, about)
    out = json.loads(text)
    out["account"] = delivered_by or about
    if region:
        text = json.dumps(out["detail"])
        for r in ("us-east-1", "eu-west-1"):
            text = text.replace(f'"{r}"', f'"{region}"').replace(f":{r}:", f":{region}:")
        out["detail"] = json.loads(text)
        out["region"] = region
    return copy.deepcopy(out)
