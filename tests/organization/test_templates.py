"""Organization mode's templates against the code: the member role grants exactly what the actions
declare, global IAM stays out of the per-region StackSet, the trust and bus policies allow and deny what
they must (checked as JSON, since moto ignores both), and account mode is unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keyguard import permissions
from keyguard.operator import organization
from keyguard.org.settings import DEFAULT_MEMBER_ROLE
from tests.organization.cfn import REPO, Rendered, load
from tests.organization.policies import ALLOW, DENY, IMPLICIT, Request, decide, decide_scp

CENTRAL, MEMBER, OUTSIDER = "123456789012", "111122223333", "444455556666"
ORG, OTHER_ORG = "o-a1b2c3d4e5", "o-zz9y8x7w6v"
BUS = f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/keyguard-keyguard-central"
FUNCTION_ROLES = [f"arn:aws:iam::{CENTRAL}:role/keyguard-{f}Role-ABC123" for f in sorted(permissions.FUNCTIONS)]
MEMBER_PARAMS = {"CentralAccountId": CENTRAL, "TrustedRoleArns": ",".join(FUNCTION_ROLES), "CentralBusArn": BUS}
USER_ARN = f"arn:aws:iam::{MEMBER}:user/*"
ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/*"


def member_global(**params: str) -> Rendered:
    return Rendered("templates/member-global.yaml", {**MEMBER_PARAMS, **params}, MEMBER, "us-east-1")


def member_regional(region: str = "us-east-1", account: str = MEMBER) -> Rendered:
    return Rendered("templates/member-regional.yaml", MEMBER_PARAMS, account, region)


def central(**params: str) -> Rendered:
    base = {"DeploymentMode": "organization", "OrganizationId": ORG}
    return Rendered("template.yaml", {**base, **params}, CENTRAL, "us-east-1")


def _allows(role: dict) -> list[dict]:
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


# ---------------------------------------------------------------- the member role: exactly what is declared
def test_member_role_grants_exactly_what_the_actions_declare() -> None:
    role = member_global().resources("AWS::IAM::Role")["MemberRole"]
    assert "ManagedPolicyArns" not in role
    assert _actions(_allows(role)) == permissions.member_role()


@pytest.mark.parametrize(
    ("parameter", "opt_in"),
    [("StopLaunchedInstances", "StopLaunchedInstances"), ("EnforceImdsV2", "EnforceImdsV2")],
)
def test_member_role_opt_ins_follow_the_central_parameters(parameter: str, opt_in: str) -> None:
    role = member_global(**{parameter: "true"}).resources("AWS::IAM::Role")["MemberRole"]
    assert _actions(_allows(role)) == permissions.member_role() | permissions.opt_in(opt_in)
    for s in _allows(role):
        if set(s["Action"]) & permissions.opt_in(opt_in):
            assert s["Resource"] == f"arn:aws:ec2:*:{MEMBER}:instance/*"


def test_member_role_writes_only_this_accounts_users_and_roles_and_never_its_own() -> None:
    role = member_global().resources("AWS::IAM::Role")["MemberRole"]
    for s in _allows(role):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if s["Resource"] == "*":
            assert set(actions) <= permissions.MEMBER_READS, s
            continue
        expected = ROLE_ARN if any("Role" in a for a in actions) else USER_ARN
        assert s["Resource"] == expected, s
        assert all(a.startswith("iam:") and "*" not in a for a in actions)
    denies = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "NeverTheseRoles",
            "Effect": "Deny",
            "Action": "iam:*",
            "Resource": [
                f"arn:aws:iam::{MEMBER}:role/keyguard-member",
                f"arn:aws:iam::{MEMBER}:role/keyguard-forwarder",
                f"arn:aws:iam::{MEMBER}:role/keyguard-operator",
            ],
        }
    ]
    assert role["RoleName"] == DEFAULT_MEMBER_ROLE and role["MaxSessionDuration"] == 3600


def test_operator_role_exists_only_when_operators_are_named_and_grants_exactly_what_the_commands_need() -> None:
    assert "OperatorRole" not in member_global().resources("AWS::IAM::Role")
    operators = f"arn:aws:iam::{CENTRAL}:role/SecurityOps"
    role = member_global(OperatorRoleArns=operators).resources("AWS::IAM::Role")["OperatorRole"]
    assert _actions(_allows(role)) == permissions.operator_role()
    for s in _allows(role):
        if s["Resource"] != "*":
            assert s["Resource"] in (USER_ARN, ROLE_ARN)
            assert (s["Resource"] == ROLE_ARN) == all("Role" in a for a in s["Action"])
        else:
            assert set(s["Action"]) <= permissions.MEMBER_READS
    trust = role["AssumeRolePolicyDocument"]
    assert decide(trust, Request(operators, "sts:AssumeRole", context={"aws:PrincipalArn": operators})) == ALLOW
    for other in FUNCTION_ROLES:  # the functions never get release
        assert decide(trust, Request(other, "sts:AssumeRole", context={"aws:PrincipalArn": other})) == IMPLICIT
    member = member_global(OperatorRoleArns=operators).resources("AWS::IAM::Role")["MemberRole"]
    undo = {p for p in organization.RELEASE_PERMISSIONS if p.startswith(("iam:Delete", "iam:Untag"))}
    assert undo and not _actions(_allows(member)) & undo  # the functions' role can never undo a containment


def test_release_permissions_are_the_calls_release_makes() -> None:
    source = (Path(permissions.__file__).parent / "operator" / "release.py").read_text()
    calls = set(re.findall(r"iam\.([a-z_]+)\(", source))
    names = {"iam:" + "".join(w.title() for w in c.split("_")) for c in calls}
    assert names and names <= set(organization.RELEASE_PERMISSIONS) | permissions.operator_role()
    writes = {n for n in names if not n.startswith(("iam:Get", "iam:List"))}
    assert writes <= set(organization.RELEASE_PERMISSIONS)


def test_central_functions_may_only_assume_member_roles_of_the_organization() -> None:
    rendered = central()
    (policy,) = rendered.resources("AWS::IAM::Policy").values()
    assert sorted(policy["Roles"]) == sorted(f"keyguard-{f}Role" for f in permissions.CENTRAL_FUNCTIONS)
    statements = policy["PolicyDocument"]["Statement"]
    assert _actions(statements) == permissions.ORGANIZATION_PERMISSIONS
    assume = next(s for s in statements if s["Action"] == "sts:AssumeRole")
    assert assume["Resource"] == "arn:aws:iam::*:role/keyguard-member"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG}}
    describe = next(s for s in statements if s["Action"] == "organizations:DescribeAccount")
    assert describe["Resource"] == f"arn:aws:organizations::*:account/{ORG}/*"


# ---------------------------------------------------------------- global vs regional
def test_global_iam_stays_out_of_the_per_region_stackset() -> None:
    for region in ("us-east-1", "eu-west-1"):
        kinds = {r["Type"] for r in load("templates/member-regional.yaml")["Resources"].values()}
        assert kinds == {"AWS::Events::Rule"}, region
    assert {r["Type"] for r in load("templates/member-global.yaml")["Resources"].values()} == {"AWS::IAM::Role"}
    assert not set(load("templates/member-global.yaml")["Parameters"]) - set(
        load("templates/management.yaml")["Parameters"]
    )


def test_management_stack_is_the_member_stacks_in_one() -> None:
    """Service-managed StackSets never deploy to the management account: its plain stack must not drift."""
    management = load("templates/management.yaml")["Resources"]
    parts = {**load("templates/member-global.yaml")["Resources"], **load("templates/member-regional.yaml")["Resources"]}
    for res in parts.values():
        if res.get("Condition") == "InGlobalRegion":  # the management stack is deployed in us-east-1 only
            res.pop("Condition")
    assert management == parts


def test_every_us_east_1_only_rule_is_in_us_east_1_and_guardduty_everywhere() -> None:
    east = set(member_regional("us-east-1").resources("AWS::Events::Rule"))
    west = set(member_regional("eu-west-1").resources("AWS::Events::Rule"))
    assert east == {"ForwardGuardDutyFindings", "ForwardHealthRiskEvents", "ForwardIamCalls", "ForwardRuleChanges"}
    assert west == {"ForwardGuardDutyFindings", "ForwardRuleChanges"}


def test_forwarders_deliver_to_the_central_bus_with_the_forwarder_role() -> None:
    for rule in member_regional().resources("AWS::Events::Rule").values():
        (target,) = rule["Targets"]
        assert target["Arn"] == BUS
        assert target["RoleArn"] == f"arn:aws:iam::{MEMBER}:role/keyguard-forwarder"
        assert rule["EventPattern"]["account"] == [MEMBER]  # a member forwards only its own events
    forwarder = member_global().resources("AWS::IAM::Role")["ForwarderRole"]
    assert _actions(_allows(forwarder)) == {"events:PutEvents"}
    assert _allows(forwarder)[0]["Resource"] == BUS


# ---------------------------------------------------------------- trust policy, checked as a document
TRUST_CASES = [
    # (who asks, external id presented, with an ExternalId configured, without one)
    ("each central function role", FUNCTION_ROLES, "ext-1234", ALLOW, ALLOW),
    ("a central function role, wrong external id", FUNCTION_ROLES[:1], "guess", IMPLICIT, ALLOW),
    ("a central function role, no external id", FUNCTION_ROLES[:1], None, IMPLICIT, ALLOW),
    (
        "another role of the security account",
        [f"arn:aws:iam::{CENTRAL}:role/developer"],
        "ext-1234",
        IMPLICIT,
        IMPLICIT,
    ),
    ("a user of the security account", [f"arn:aws:iam::{CENTRAL}:user/admin"], "ext-1234", IMPLICIT, IMPLICIT),
    (
        "the same role name in the member account",
        [f"arn:aws:iam::{MEMBER}:role/keyguard-GuardDutyFunctionRole-ABC123"],
        "ext-1234",
        IMPLICIT,
        IMPLICIT,
    ),
    (
        "the same role name outside",
        [f"arn:aws:iam::{OUTSIDER}:role/keyguard-GuardDutyFunctionRole-ABC123"],
        "ext-1234",
        IMPLICIT,
        IMPLICIT,
    ),
    ("a service", ["service:lambda.amazonaws.com"], None, IMPLICIT, IMPLICIT),
]


@pytest.mark.parametrize(
    ("who", "principals", "external", "with_id", "without_id"), TRUST_CASES, ids=[c[0] for c in TRUST_CASES]
)
def test_member_role_trust(
    who: str, principals: list[str], external: str | None, with_id: str, without_id: str
) -> None:
    for params, expected in (({"ExternalId": "ext-1234"}, with_id), ({}, without_id)):
        trust = member_global(**params).resources("AWS::IAM::Role")["MemberRole"]["AssumeRolePolicyDocument"]
        for principal in principals:
            context = {"aws:PrincipalArn": principal}
            if external is not None:
                context["sts:ExternalId"] = external
            got = decide(trust, Request(principal, "sts:AssumeRole", context=context))
            assert got == expected, (who, principal, params)


def test_forwarder_role_is_only_for_eventbridge_in_this_account() -> None:
    trust = member_global().resources("AWS::IAM::Role")["ForwarderRole"]["AssumeRolePolicyDocument"]
    events = "service:events.amazonaws.com"
    assert decide(trust, Request(events, "sts:AssumeRole", context={"aws:SourceAccount": MEMBER})) == ALLOW
    assert decide(trust, Request(events, "sts:AssumeRole", context={"aws:SourceAccount": OUTSIDER})) == IMPLICIT
    assert decide(trust, Request(f"arn:aws:iam::{MEMBER}:user/x", "sts:AssumeRole")) == IMPLICIT


# ---------------------------------------------------------------- bus policy, checked as a document
BUS_CASES = [
    ("a member's forwarder role", f"arn:aws:iam::{MEMBER}:role/keyguard-forwarder", "events:PutEvents", ORG, ALLOW),
    ("any principal of the organization", f"arn:aws:iam::{MEMBER}:user/x", "events:PutEvents", ORG, ALLOW),
    ("another organization", f"arn:aws:iam::{OUTSIDER}:role/keyguard-forwarder", "events:PutEvents", OTHER_ORG, DENY),
    ("an account in no organization", f"arn:aws:iam::{OUTSIDER}:role/x", "events:PutEvents", None, DENY),
    ("a member changing the bus's rules", f"arn:aws:iam::{MEMBER}:role/x", "events:PutRule", ORG, IMPLICIT),
]


@pytest.mark.parametrize(("who", "principal", "action", "org", "expected"), BUS_CASES, ids=[c[0] for c in BUS_CASES])
def test_central_bus_policy(who: str, principal: str, action: str, org: str | None, expected: str) -> None:
    (bus,) = central().resources("AWS::Events::EventBus").values()
    assert bus["Name"] == BUS.rsplit("/", 1)[1]
    context = {"aws:PrincipalOrgID": org} if org else {}
    assert decide(bus["Policy"], Request(principal, action, BUS, context)) == expected


# ---------------------------------------------------------------- account mode unchanged
def test_account_mode_creates_none_of_the_organization_resources() -> None:
    doc = load("template.yaml")
    assert doc["Parameters"]["DeploymentMode"]["Default"] == "account"
    org_resources = {lid for lid, r in doc["Resources"].items() if r.get("Condition") == "Organization"}
    assert org_resources == {
        "CentralBus",
        "GuardDutyOrganizationRule",
        "GuardDutyOrganizationPermission",
        "HealthOrganizationRule",
        "HealthOrganizationPermission",
        "AccessKeyCreatedOrganizationRule",
        "AccessKeyCreatedOrganizationPermission",
        "OrganizationAccessPolicy",
    }
    account_mode = Rendered("template.yaml", {}, CENTRAL, "us-east-1")
    assert not set(account_mode.resources()) & org_resources
    assert not account_mode.conditions["Organization"]


def test_every_organization_setting_the_code_reads_is_set_by_the_template() -> None:
    source = (Path(permissions.__file__).parent / "org" / "settings.py").read_text()
    read = set(re.findall(r'"(KEYGUARD_[A-Z_]+)"', source))
    env = load("template.yaml")["Globals"]["Function"]["Environment"]["Variables"]
    assert read and read <= set(env)


def test_central_rules_invoke_the_functions_and_keep_failures() -> None:
    rendered = central()
    rules = rendered.resources("AWS::Events::Rule")
    assert {lid.removesuffix("OrganizationRule") + "Function" for lid in rules} == set(
        permissions.CENTRAL_FUNCTIONS
    ) - {"InvestigationFunction"}
    for lid, rule in rules.items():
        assert rule["EventBusName"] == "keyguard-CentralBus"
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"]["Arn"].endswith(":DeadLetterQueue")
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
        permission = rendered.resources("AWS::Lambda::Permission")[lid.replace("Rule", "Permission")]
        assert permission["SourceArn"].endswith(f":{lid}") and permission["Principal"] == "events.amazonaws.com"
    assert REPO.joinpath("templates").is_dir()


# ---------------------------------------------------------------- the optional SCP (docs/organization-scp.json)
ADMIN = f"arn:aws:iam::{MEMBER}:role/Admin"
STACKSETS = f"arn:aws:iam::{MEMBER}:role/stacksets-exec-0123456789abcdef0123456789abcdef"
SCP_CASES = [
    (ADMIN, "iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{MEMBER}:role/keyguard-member", DENY),
    (ADMIN, "iam:DeleteRole", f"arn:aws:iam::{MEMBER}:role/keyguard-forwarder", DENY),
    (ADMIN, "iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/keyguard-member", DENY),
    (ADMIN, "events:DisableRule", f"arn:aws:events:eu-west-1:{MEMBER}:rule/keyguard-forward-guardduty", DENY),
    (ADMIN, "events:RemoveTargets", f"arn:aws:events:us-east-1:{MEMBER}:rule/keyguard-forward-iam", DENY),
    (
        ADMIN,
        "cloudformation:DeleteStack",
        f"arn:aws:cloudformation:us-east-1:{MEMBER}:stack/StackSet-keyguard-member-global-1a2b/abc",
        DENY,
    ),
    (STACKSETS, "iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{MEMBER}:role/keyguard-member", IMPLICIT),
    (STACKSETS, "events:PutRule", f"arn:aws:events:eu-west-1:{MEMBER}:rule/keyguard-forward-guardduty", IMPLICIT),
    (ADMIN, "iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/web-app-role", IMPLICIT),
    (ADMIN, "events:DisableRule", f"arn:aws:events:eu-west-1:{MEMBER}:rule/nightly-backup", IMPLICIT),
]


@pytest.mark.parametrize(("principal", "action", "resource", "expected"), SCP_CASES)
def test_optional_scp_stops_member_principals_changing_keyguard(
    principal: str, action: str, resource: str, expected: str
) -> None:
    import json

    scp = json.loads((REPO / "docs" / "organization-scp.json").read_text())
    request = Request(principal, action, resource, {"aws:PrincipalArn": principal})
    assert decide_scp(scp, request) == (ALLOW if expected == IMPLICIT else expected)  # an SCP only denies


def test_the_scp_names_what_the_templates_create() -> None:
    text = (REPO / "docs" / "organization-scp.json").read_text()
    params = load("templates/member-global.yaml")["Parameters"]
    assert f"role/{params['MemberRoleName']['Default']}" in text
    assert f"role/{params['ForwarderRoleName']['Default']}" in text
    names = [r["Properties"]["Name"] for r in load("templates/member-regional.yaml")["Resources"].values()]
    assert names and all(n.startswith("keyguard-forward-") for n in names)


@pytest.mark.parametrize(
    ("resource_org", "role", "expected"),
    [
        (ORG, "keyguard-member", ALLOW),
        (OTHER_ORG, "keyguard-member", IMPLICIT),  # the same role name in another organization's account
        (None, "keyguard-member", IMPLICIT),  # an account in no organization
        (ORG, "OrganizationAccountAccessRole", IMPLICIT),  # any other role of a member
    ],
)
def test_central_function_role_and_member_trust_together(resource_org: str | None, role: str, expected: str) -> None:
    """Cross-account AssumeRole as IAM decides it: the central role's own policy (template.yaml
    OrganizationAccessPolicy) and the member role's trust must both allow."""
    (policy,) = central().resources("AWS::IAM::Policy").values()
    trust = member_global(ExternalId="ext-1234").resources("AWS::IAM::Role")["MemberRole"]["AssumeRolePolicyDocument"]
    context = {"aws:PrincipalArn": FUNCTION_ROLES[0], "sts:ExternalId": "ext-1234"}
    if resource_org:
        context["aws:ResourceOrgID"] = resource_org
    request = Request(FUNCTION_ROLES[0], "sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/{role}", context)
    assert decide(trust, request, identity=policy["PolicyDocument"]) == expected
