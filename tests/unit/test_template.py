"""template.yaml against the code: least privilege that cannot drift, rules that route every event."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyguard import permissions
from keyguard.local.emulator import load_rules, load_template, route
from tests.conftest import EVENTS, load_event

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
USER_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"
ROLE_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"


def _statements(role_id: str, conditional: bool = True) -> list[dict]:
    """The role's statements; an `!If [Condition, statement, AWS::NoValue]` counts as its statement."""
    role = RESOURCES[role_id]
    assert role["Type"] == "AWS::IAM::Role"
    assert "ManagedPolicyArns" not in role["Properties"], "managed policies grant more than the actions declare"
    out = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if isinstance(statement, list):  # !If
                condition, statement, otherwise = statement
                assert otherwise == "AWS::NoValue" and condition in TEMPLATE["Conditions"]
                if not conditional:
                    continue
            out.append(statement)
    return out


def _conditional(role_id: str) -> dict[str, set[str]]:
    """Condition -> actions granted only under it."""
    out: dict[str, set[str]] = {}
    for policy in RESOURCES[role_id]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if isinstance(statement, list):
                out.setdefault(statement[0], set()).update(_as_list(statement[1]["Action"]))
    return out


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _role_of(function_id: str) -> str:
    return RESOURCES[function_id]["Properties"]["Role"].split(".")[0]  # !GetAtt XRole.Arn


@pytest.mark.parametrize(("function_id", "source"), sorted(permissions.FUNCTIONS.items()))
def test_role_grants_exactly_what_the_actions_declare(function_id: str, source) -> None:
    statements = _statements(_role_of(function_id), conditional=False)
    granted = {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}
    assert {a for a in granted if a.startswith("iam:")} == permissions.iam_permissions(source)
    assert granted == permissions.required(source) | permissions.PLATFORM_PERMISSIONS


@pytest.mark.parametrize("function_id", sorted(permissions.WATCH_FUNCTIONS))
def test_watch_roles_grant_exactly_what_their_code_declares(function_id: str) -> None:
    statements = _statements(_role_of(function_id), conditional=False)
    granted = {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}
    assert granted == permissions.WATCH_FUNCTIONS[function_id] | permissions.PLATFORM_PERMISSIONS


def test_opt_in_ec2_actions_are_granted_only_when_opted_in() -> None:
    conditional = _conditional(_role_of("InvestigationFunction"))
    conditions = TEMPLATE["Conditions"]
    assert conditional == {
        "StopsInstances": set(permissions.opt_in("StopLaunchedInstances")),
        "EnforcesImdsV2": set(permissions.opt_in("EnforceImdsV2")),
    }
    assert conditions["StopsInstances"] == ["StopLaunchedInstances", "true"]
    assert conditions["EnforcesImdsV2"] == ["EnforceImdsV2", "true"]
    for parameter in ("StopLaunchedInstances", "EnforceImdsV2"):
        assert TEMPLATE["Parameters"][parameter]["Default"] == "false"


def test_no_role_may_write_on_everything() -> None:
    roles = [rid for rid, r in RESOURCES.items() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(permissions.FUNCTIONS) + len(permissions.SCHEDULED_FUNCTIONS) + len(
        permissions.WATCH_FUNCTIONS
    )
    for rid in roles:
        for s in _statements(rid):
            assert s["Effect"] == "Allow"
            actions = set(_as_list(s["Action"]))
            if "*" in _as_list(s["Resource"]):  # only reads that IAM cannot scope to a resource
                reads = permissions.UNSCOPABLE_READS | permissions.SCHEDULED_FUNCTIONS.get(
                    rid.removesuffix("Role"), set()
                )
                reads |= permissions.WATCH_UNSCOPED.get(rid.removesuffix("Role"), frozenset())
                assert actions <= reads, (rid, s)
            for action in actions:
                assert "*" not in action, (rid, action)


@pytest.mark.parametrize("function_id", sorted(permissions.FUNCTIONS) + sorted(permissions.WATCH_FUNCTIONS))
def test_iam_writes_are_scoped_to_users_or_roles_of_this_account(function_id: str) -> None:
    for s in _statements(_role_of(function_id)):
        actions = _as_list(s["Action"])
        if not any(a.startswith("iam:") for a in actions):
            continue
        assert all(a.startswith("iam:") for a in actions)
        expected = ROLE_ARN if any("Role" in a for a in actions) else USER_ARN
        assert _as_list(s["Resource"]) == [expected], s


def test_functions_are_the_ones_the_code_knows_and_their_handlers_import() -> None:
    functions = {rid: r for rid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == set(permissions.FUNCTIONS) | set(permissions.SCHEDULED_FUNCTIONS) | set(
        permissions.WATCH_FUNCTIONS
    )
    for resource in functions.values():
        module, name = resource["Properties"]["Handler"].rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))


def test_every_setting_the_code_reads_is_set_by_the_template() -> None:
    source = (Path(permissions.__file__).parent / "settings.py").read_text()
    read = set(re.findall(r'"(KEYGUARD_[A-Z_]+)"', source))
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert read and read <= set(env)


ROUTES = {
    "guardduty-iam-user.json": ["GuardDutyFunction"],
    "guardduty-low-severity.json": ["GuardDutyFunction"],
    "guardduty-root.json": ["GuardDutyFunction"],
    "guardduty-sample.json": ["GuardDutyFunction"],
    "guardduty-assumed-role-exfiltration.json": ["GuardDutyFunction"],
    "health-credentials-exposed.json": ["HealthFunction"],
    "health-iam-quarantine.json": ["HealthFunction"],
    "cloudtrail-create-access-key.json": ["AccessKeyCreatedFunction"],
    "cloudtrail-create-access-key-failed.json": [],
    **{p.name: ["TamperWatchFunction"] for p in EVENTS.glob("tamper-*.json")},  # tests/unit/test_tamper_watch.py
    # issue 12
    "cloudtrail-aws-quarantine-v2.json": ["AwsQuarantineFunction"],
    "cloudtrail-aws-quarantine-inline.json": ["AwsQuarantineFunction"],
    "cloudtrail-aws-quarantine-by-admin.json": ["AwsQuarantineFunction"],  # reported as not AWS's: notify only
    "trustedadvisor-exposed-access-keys.json": ["TrustedAdvisorFunction"],
    "guardduty-s3-malicious-ip.json": ["GuardDutyFunction"],
    "guardduty-s3-policy-anonymous-access.json": ["GuardDutyFunction"],
    "guardduty-federated-user.json": ["GuardDutyFunction"],
    "guardduty-attack-sequence-iam.json": ["GuardDutyFunction"],  # its own rule: type prefix AttackSequence:IAM/
    "guardduty-attack-sequence-iam-unprovable.json": ["GuardDutyFunction"],
}


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_rules_route_each_event_to_its_function(name: str) -> None:
    assert [r.function for r in route(load_event(name), load_rules())] == ROUTES[name]


@pytest.mark.parametrize(
    ("change", "routed"),
    [
        ({"type": "CredentialAccess:IAMUser/SomeFutureName"}, True),  # finding types get renamed
        ({"resource": {"resourceType": "Instance"}}, False),
    ],
)
def test_guardduty_rule_matches_any_access_key_finding_type(change: dict, routed: bool) -> None:
    event = load_event("guardduty-iam-user.json")
    event["detail"].update(change)
    assert bool(route(event, load_rules())) is routed


@pytest.mark.parametrize("code", ["AWS_RISK_IAM_QUARANTINE", "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED"])
def test_health_rule_matches_every_risk_code(code: str) -> None:
    event = load_event("health-credentials-exposed.json")
    event["detail"]["eventTypeCode"] = code
    assert [r.function for r in route(event, load_rules())] == ["HealthFunction"]


def test_failed_events_are_kept_encrypted_and_announced() -> None:
    on_failure = TEMPLATE["Globals"]["Function"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": "DeadLetterQueue.Arn"}
    for function_id in permissions.FUNCTIONS:
        for rule in RESOURCES[function_id]["Properties"]["Events"].values():
            if rule["Type"] == "EventBridgeRule":
                assert rule["Properties"]["DeadLetterConfig"] == {"Arn": "DeadLetterQueue.Arn"}
    investigation = RESOURCES["InvestigationQueue"]["Properties"]
    assert investigation["RedrivePolicy"]["deadLetterTargetArn"] == "DeadLetterQueue.Arn"
    assert investigation["KmsMasterKeyId"] == "Key"
    (requests,) = RESOURCES["InvestigationFunction"]["Properties"]["Events"].values()
    assert requests["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert RESOURCES["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == "Key"
    assert RESOURCES["Topic"]["Properties"]["KmsMasterKeyId"] == "Key"
    alarm = RESOURCES["DeadLetterAlarm"]["Properties"]
    assert alarm["AlarmActions"] == ["Topic"] and alarm["Threshold"] == 0
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "DeadLetterQueue.QueueName"}]
    ttl = RESOURCES["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiration", "Enabled": True}  # Powertools' default attribute


def test_audit_role_only_reads_and_reports() -> None:
    statements = _statements("AuditFunctionRole")
    granted = {a for s in statements for a in _as_list(s["Action"])}
    assert granted == set(permissions.SCHEDULED_FUNCTIONS["AuditFunction"]) | {"sns:Publish"} | (
        permissions.PLATFORM_PERMISSIONS
    )
    assert not [a for a in granted if a.startswith("iam:") and not a.startswith(("iam:Get", "iam:Generate"))]


# ------------------------------------------------------------------------------------------- issue 9

CONTAINING_ROLES = ("GuardDutyFunctionRole", "HealthFunctionRole", "InvestigationFunctionRole")


@pytest.mark.parametrize("role_id", CONTAINING_ROLES)
def test_the_boundary_grant_is_only_for_keyguards_deny_all(role_id: str) -> None:
    """keyguard's role can set a user's boundary to the stack's deny-all policy and to nothing else: the
    grant cannot be turned into "remove the boundary" or "set an allow-all boundary"."""
    (statement,) = [s for s in _statements(role_id) if "iam:PutUserPermissionsBoundary" in _as_list(s["Action"])]
    assert _as_list(statement["Action"]) == ["iam:PutUserPermissionsBoundary"]
    assert statement["Condition"] == {"ArnEquals": {"iam:PermissionsBoundary": "DenyAllPolicy"}}
    deny_all = RESOURCES["DenyAllPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny_all == [{"Sid": "KeyguardQuarantineBoundary", "Effect": "Deny", "Action": "*", "Resource": "*"}]


def _ledger_policy() -> dict:
    """The ledger's resource policy with CloudFormation's functions resolved as the stack would."""
    account = "123456789012"
    statement = RESOURCES["LedgerTable"]["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"][0]
    roles = [
        f"arn:aws:iam::{account}:role/keyguard-{r.split('.')[0]}"
        for r in statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"][1][1][:-1]
    ]
    operator = f"arn:aws:iam::{account}:role/SecurityOperator"
    resolved = dict(statement, Resource=f"arn:aws:dynamodb:us-east-1:{account}:table/keyguard-ledger")
    resolved["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": [*roles, operator]}}
    return {"Version": "2012-10-17", "Statement": [resolved]}


LEDGER = "arn:aws:dynamodb:us-east-1:123456789012:table/keyguard-ledger"


@pytest.mark.parametrize(
    ("role", "action", "denied"),
    [
        ("keyguard-GuardDutyFunctionRole", "dynamodb:PutItem", False),
        ("keyguard-AccessKeyCreatedFunctionRole", "dynamodb:UpdateItem", False),
        ("keyguard-InvestigationFunctionRole", "dynamodb:PutItem", False),
        ("SecurityOperator", "dynamodb:UpdateItem", False),  # OperatorRoleArns
        ("Admin", "dynamodb:PutItem", True),  # the key holder's admin role: explicit deny
        ("Admin", "dynamodb:DeleteItem", True),
        ("Admin", "dynamodb:BatchWriteItem", True),
        ("Admin", "dynamodb:PartiQLUpdate", True),
        ("Admin", "dynamodb:GetItem", False),  # reading is not refused (the identity policy decides)
    ],
)
def test_only_keyguard_and_the_operator_roles_write_the_ledger(role: str, action: str, denied: bool) -> None:
    """moto ignores resource policies: the document is checked against request contexts instead."""
    from tests.iam_eval import evaluate, session

    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    request = session(
        f"arn:aws:sts::123456789012:assumed-role/{role}/s",
        action,
        LEDGER,
        issued_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    decision = evaluate(request, identity=[admin], resource=_ledger_policy())
    assert decision.denied is denied, decision.reason
    if denied:
        assert decision.explicit


def test_the_ledger_keeps_its_history() -> None:
    table = RESOURCES["LedgerTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain" and props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "TimeToLiveSpecification" not in props  # nothing in it expires
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["KEYGUARD_LEDGER_TABLE"] == props["TableName"] == "${AWS::StackName}-ledger"
    assert env["KEYGUARD_DENY_ALL_POLICY_ARN"] == "DenyAllPolicy"
    from keyguard.ledger import TABLE_SCHEMA

    assert props["KeySchema"] == TABLE_SCHEMA["KeySchema"]
    assert props["AttributeDefinitions"] == TABLE_SCHEMA["AttributeDefinitions"]


def test_every_role_that_writes_the_ledger_may_write_it() -> None:
    """moto ignores the ledger's resource policy: a role granted ledger writes but missing from the policy's
    allow-list would be denied by real DynamoDB, silently in every test. Each must be listed."""
    statement = RESOURCES["LedgerTable"]["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"][0]
    listed = {r.split(".")[0] for r in statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"][1][1][:-1]}
    writers = set()
    for rid, res in RESOURCES.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for statement in _statements(rid):
            actions = set(_as_list(statement.get("Action", [])))
            resources = " ".join(str(r) for r in _as_list(statement.get("Resource", [])))
            if actions & {"dynamodb:PutItem", "dynamodb:UpdateItem"} and "-ledger" in resources:
                writers.add(rid)
    assert writers and writers <= listed, writers - listed
