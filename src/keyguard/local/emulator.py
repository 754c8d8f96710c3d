"""Run events through keyguard as the deployed stack would, against an emulated account.

The rules come from template.yaml (the same patterns EventBridge gets); the event goes to the handler of
every rule it matches; the account is moto (in-process) or any AWS-compatible endpoint (`--endpoint-url`).
The account is seeded with the principals the event names: example key ids in events/ (AWS's documented
AKIA...EXAMPLE values) cannot exist in IAM, so each is replaced by a key the emulator creates for the
named user, and the replacement is shown.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyguard.actions import deny_all_policy
from keyguard.errors import KeyguardError
from keyguard.incident import is_key_id, is_long_term
from keyguard.ledger import TABLE_SCHEMA as LEDGER_SCHEMA
from keyguard.local.patterns import matches

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = REPO / "template.yaml"
DEFAULT_EVENTS = REPO / "events"
ACCOUNT = "123456789012"
BYSTANDER = "bystander-dana"
PLACEHOLDER_IMAGE = "ami-0123456789abcdef0"  # moto runs instances of any image id (no AMI validation by default)


@dataclass(frozen=True)
class Rule:
    function: str
    handler: str
    pattern: dict[str, Any]


def load_template(template: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The SAM template as data; CloudFormation tags (!Ref, !Sub, ...) become their plain arguments."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    # a SafeLoader subclass (CloudFormation tags become plain values): safe_load's guarantees hold
    return yaml.load(template.read_text(), Loader=Loader)  # noqa: S506  # nosec B506


def load_rules(template: Path = DEFAULT_TEMPLATE) -> list[Rule]:
    """Every EventBridgeRule of every function in the SAM template."""
    doc = load_template(template)
    rules = []
    for logical_id, res in doc.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for ev in (res.get("Properties", {}).get("Events") or {}).values():
            if ev.get("Type") == "EventBridgeRule":
                rules.append(Rule(logical_id, res["Properties"]["Handler"], ev["Properties"]["Pattern"]))
    return rules


def route(event: dict[str, Any], rules: list[Rule], tester: Any = None) -> list[Rule]:
    """The rules whose pattern the event matches: moto's matcher, or `tester(pattern, event)` (EventBridge's
    own TestEventPattern, keyguard.local.patterns.aws_matches)."""
    test = tester or matches
    return [r for r in rules if test(r.pattern, event)]


@dataclass
class FakeContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Seeded:
    """What the emulator created for an event, and how the event was rewritten to name it."""

    event: dict[str, Any]
    replaced: dict[str, str] = field(default_factory=dict)  # example key id -> emulated key id
    users: dict[str, list[str]] = field(default_factory=dict)  # user -> its key ids
    secrets: dict[str, str] = field(default_factory=dict)  # emulated key id -> its secret (tests sign with it)
    roles: list[str] = field(default_factory=list)
    instances: list[tuple[str, str]] = field(default_factory=list)  # (region, instance id) the emulator ran


@dataclass
class Environment:
    """An emulated account with keyguard's topic, de-duplication table and a queue reading the topic."""

    clients: Any
    topic_arn: str
    table: str
    inbox_url: str
    investigation_url: str
    ledger_table: str = ""
    deny_all_policy_arn: str = ""
    cloudtrail: Any = None  # the LookupEvents stand-in, once a history is installed

    def iam_state(self, seeded: Seeded) -> dict[str, Any]:
        iam = self.clients.iam
        state: dict[str, Any] = {}
        for user in seeded.users:
            keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            state[f"user/{user}"] = {
                "keys": {k["AccessKeyId"]: k["Status"] for k in keys},
                "policies": sorted(iam.list_user_policies(UserName=user)["PolicyNames"]),
            }
        for role in seeded.roles:
            state[f"role/{role}"] = {"policies": sorted(iam.list_role_policies(RoleName=role)["PolicyNames"])}
        return state

    def delivered(self) -> list[dict[str, Any]]:
        """Notifications that reached the topic's SQS subscriber."""
        sqs = self.clients.get("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = got.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=m["ReceiptHandle"])


def fake_credentials() -> None:
    """Emulators accept any credentials; never let a demo reach a real account by accident."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - emulator only
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]


@contextmanager
def emulated_account(endpoint_url: str | None = None) -> Iterator[Environment]:
    """A fresh in-process moto account, or the account behind an AWS-compatible endpoint."""
    from keyguard.aws import Clients
    from keyguard.local import boundary

    fake_credentials()
    boundary.install()  # moto has no user permissions boundaries
    saved = os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        if endpoint_url:
            os.environ["AWS_ENDPOINT_URL"] = endpoint_url  # boto3 sends every client there
            yield _provision(Clients(_session()))
            return
        from moto import mock_aws

        # moto loads ~1,200 default AMIs into every region's EC2 backend (0.7 s each); the emulator needs none
        amis = os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        try:
            with mock_aws():
                yield _provision(Clients(_session()))
        finally:
            if amis == "false" and os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS") == "false":
                os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        if saved is not None:
            os.environ["AWS_ENDPOINT_URL"] = saved


_LOADER: Any = None


def _session() -> Any:
    """A fresh botocore session (its own event hooks) sharing one data loader: the service models are
    read from disk once per process, not once per emulated account."""
    import botocore.session

    global _LOADER
    session = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _LOADER)
    return session


def _provision(clients: Any) -> Environment:
    suffix = uuid.uuid4().hex[:8]
    sns, sqs, ddb = clients.get("sns"), clients.get("sqs"), clients.get("dynamodb")
    topic = sns.create_topic(Name=f"keyguard-{suffix}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"keyguard-inbox-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    table = f"keyguard-idempotency-{suffix}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    investigation = sqs.create_queue(QueueName=f"keyguard-investigation-{suffix}")["QueueUrl"]
    ledger = f"keyguard-ledger-{suffix}"
    ddb.create_table(TableName=ledger, BillingMode="PAY_PER_REQUEST", **LEDGER_SCHEMA)
    deny_all = clients.iam.create_policy(
        PolicyName=f"keyguard-deny-all-{suffix}",
        PolicyDocument=json.dumps(deny_all_policy()),
        Description="keyguard quarantine: the permissions boundary that denies everything",
    )["Policy"]["Arn"]
    return Environment(clients, topic, table, queue_url, investigation, ledger, deny_all)


def seed(iam: Any, event: dict[str, Any]) -> Seeded:
    """Create the principals the event names, with real keys in place of the example key ids."""
    event = copy.deepcopy(event)
    out = Seeded(event)
    detail = event.get("detail") or {}
    source = event.get("source")

    def new_key(user: str) -> str:
        if user not in out.users:
            _ensure_user(iam, user)
            out.users[user] = []
        made = iam.create_access_key(UserName=user)["AccessKey"]
        out.users[user].append(made["AccessKeyId"])
        out.secrets[made["AccessKeyId"]] = made["SecretAccessKey"]
        return made["AccessKeyId"]

    def user_with_key(user: str, example: str) -> str:
        out.replaced[example] = new_key(user)
        return out.replaced[example]

    def other_key(user: str) -> None:
        new_key(user)

    if source == "aws.guardduty":
        details = detail.get("resource", {}).get("accessKeyDetails", {})
        sample = detail.get("service", {}).get("additionalInfo", {}).get("sample") in (True, "true")
        user_type, name, key = details.get("userType"), details.get("userName"), details.get("accessKeyId")
        if not sample and user_type == "IAMUser" and name and is_key_id(key) and is_long_term(key):
            details["accessKeyId"] = user_with_key(name, key)
            other_key(name)
            if details.get("principalId"):  # GuardDuty names the user's unique id, as IAM gave it
                details["principalId"] = iam.get_user(UserName=name)["User"]["UserId"]
        elif not sample and user_type == "AssumedRole" and name:
            _ensure_role(iam, name)
            out.roles.append(name)
    elif source == "aws.health":
        for n, entity in enumerate(detail.get("affectedEntities") or [], 1):
            key = entity.get("entityValue") if isinstance(entity, dict) else None
            if is_key_id(key) and is_long_term(key):
                entity["entityValue"] = out.replaced.get(key) or user_with_key(f"exposed-key-owner-{n}", key)
                other_key(f"exposed-key-owner-{n}")
        metadata = detail.get("eventMetadata") or {}
        if metadata.get("publicKey") in out.replaced:  # the metadata names the same key the entities do
            metadata["publicKey"] = out.replaced[metadata["publicKey"]]
        event["resources"] = [out.replaced.get(r, r) for r in event.get("resources", [])]
    elif source == "aws.iam" and detail.get("eventName") in ("AttachUserPolicy", "PutUserPolicy"):
        # AWS's quarantine on a user (issue 12): the user exists with keys; the old inline form is signed
        # by the user's own key, which the record then names.
        user = (detail.get("requestParameters") or {}).get("userName")
        identity = detail.get("userIdentity") or {}
        key = identity.get("accessKeyId")
        if isinstance(user, str) and user:
            if identity.get("userName") == user and is_key_id(key) and is_long_term(key):
                identity["accessKeyId"] = user_with_key(user, key)
            other_key(user)
    elif source == "aws.trustedadvisor":
        item = detail.get("check-item-detail") or {}
        name, key = item.get("User Name (IAM or Root)"), item.get("Access Key ID")
        if isinstance(name, str) and name and is_key_id(key) and is_long_term(key):
            item["Access Key ID"] = user_with_key(name, key)
            other_key(name)
    elif source == "aws.iam":
        key_obj = (detail.get("responseElements") or {}).get("accessKey") or {}
        name, key = key_obj.get("userName"), key_obj.get("accessKeyId")
        if name and is_key_id(key):
            new_key(name)  # the user's older key, which must stay as it is
            key_obj["accessKeyId"] = user_with_key(name, key)
    if source == "aws.guardduty" and str(detail.get("type", "")).startswith("AttackSequence:IAM/"):
        _seed_attack_sequence(iam, event, detail, out, user_with_key, other_key)
    new_key(BYSTANDER)
    return out


def _seed_attack_sequence(iam: Any, event: dict, detail: dict, out: Seeded, user_with_key: Any, other_key: Any) -> None:
    """GuardDuty attack sequences name credentials in the sequence's actors (keyguard.sources.attack_sequence):
    each IAM user of this account gets a real key in place of the example (and a second key that must stay
    Active), each role exists. Actors of other accounts, root and other types are left as the event says."""
    sample = (detail.get("service") or {}).get("additionalInfo", {}).get("sample") in (True, "true")
    sequence = ((detail.get("service") or {}).get("detection") or {}).get("sequence") or {}
    for actor in [] if sample else sequence.get("actors") or []:
        user = actor.get("user") if isinstance(actor, dict) else None
        if not isinstance(user, dict) or (user.get("account") or {}).get("uid", ACCOUNT) != ACCOUNT:
            continue
        kind, name, key = user.get("type"), user.get("name"), user.get("credentialUid")
        if kind == "IAMUser" and name and is_key_id(key) and is_long_term(key):
            user["credentialUid"] = out.replaced.get(key) or user_with_key(name, key)
            other_key(name)
            if str(user.get("uid", "")).startswith("AIDA"):  # GuardDuty names the user's unique id, as IAM gave it
                user["uid"] = iam.get_user(UserName=name)["User"]["UserId"]
        elif kind == "AssumedRole" and name and name not in out.roles:
            _ensure_role(iam, name)
            out.roles.append(name)


def _ensure_user(iam: Any, name: str) -> None:
    try:
        iam.create_user(UserName=name)
    except Exception as e:  # EntityAlreadyExists on a long-lived emulator
        if "EntityAlreadyExists" not in str(e):
            raise


def _ensure_role(iam: Any, name: str) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    except Exception as e:
        if "EntityAlreadyExists" not in str(e):
            raise


@dataclass
class Invocation:
    rule: Rule
    result: dict[str, Any] | None = None
    error: str | None = None
    published: list[dict[str, Any]] = field(default_factory=list)


def invoke(env: Environment, rule: Rule, event: dict[str, Any], mode: str = "enforce") -> Invocation:
    """Call the rule's handler as Lambda would, with the stack's environment variables."""
    os.environ.update(
        KEYGUARD_MODE=mode,
        KEYGUARD_TOPIC_ARN=env.topic_arn,
        KEYGUARD_IDEMPOTENCY_TABLE=env.table,
        KEYGUARD_INVESTIGATION_QUEUE_URL=env.investigation_url,
        KEYGUARD_LEDGER_TABLE=env.ledger_table,
        KEYGUARD_DENY_ALL_POLICY_ARN=env.deny_all_policy_arn,
    )
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines in the demo's output
    module_name, func_name = rule.handler.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), func_name)
    handler.runtime.reset(clients=env.clients)
    context = FakeContext(rule.function, f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:keyguard-{rule.function}")
    inv = Invocation(rule)
    try:
        inv.result = handler(event, context)
    except KeyguardError as e:
        inv.error = f"{type(e).__name__}: {e}"
    inv.published = list(handler.runtime.notifier.sent)
    return inv


def seed_activity(env: Environment, seeded: Seeded, now: Any = None) -> None:
    """What the leaked keys did before the event: replay their recorded CloudTrail history
    (events/cloudtrail-history/<example key id>.json) into the account, serve it through the
    LookupEvents stand-in, and give a leaked instance-role session a real (IMDSv1) instance."""
    from datetime import UTC, datetime

    from keyguard.local import cloudtrail

    now = now or datetime.now(UTC)
    records: list[dict[str, Any]] = []
    keys = dict(seeded.replaced)
    for example in list(seeded.replaced):
        history = cloudtrail.rebase(cloudtrail.load_history(example), now)
        records += cloudtrail.replay(env.clients, history, keys)
    seeded.replaced.update(keys)  # keys the history created, too
    for record in records:
        if record.get("errorCode"):
            continue
        name, req = record.get("eventName"), record.get("requestParameters") or {}
        if name == "CreateAccessKey":
            user = record["responseElements"]["accessKey"]["userName"]
            made = record["responseElements"]["accessKey"]["accessKeyId"]
            seeded.users.setdefault(user, [])
            if made not in seeded.users[user]:
                seeded.users[user].append(made)
        elif req.get("userName"):
            seeded.users.setdefault(req["userName"], [])
        elif req.get("roleArn") or req.get("roleName"):
            role = req.get("roleName") or req["roleArn"].rsplit("/", 1)[-1]
            if role not in seeded.roles:
                seeded.roles.append(role)
    for user in seeded.users:  # keys the user had before (replay may have made users with none)
        for key in env.clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            if key["AccessKeyId"] not in seeded.users[user]:
                seeded.users[user].append(key["AccessKeyId"])
    env.cloudtrail = cloudtrail.FakeCloudTrail(records).install(env.clients.session)
    for record in records:
        if record.get("eventName") == "RunInstances" and not record.get("errorCode"):
            items = ((record.get("responseElements") or {}).get("instancesSet") or {}).get("items") or []
            seeded.instances += [(record["awsRegion"], i["instanceId"]) for i in items if i.get("instanceId")]
    _instance_for_role_session(env, seeded)


def _instance_for_role_session(env: Environment, seeded: Seeded) -> None:
    """A GuardDuty finding on instance-role credentials names the instance in its principalId
    (ROLEID:i-...); the emulator runs one that still allows IMDSv1 and points the event at it."""
    detail = seeded.event.get("detail") or {}
    details = (detail.get("resource") or {}).get("accessKeyDetails") or {}
    principal = details.get("principalId") or ""
    if details.get("userType") != "AssumedRole" or ":i-" not in principal:
        return
    region = detail.get("region") or seeded.event.get("region") or "us-east-1"
    ec2 = env.clients.get("ec2", region)
    image = any_image(ec2)
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled"}
    )["Instances"][0]["InstanceId"]
    details["principalId"] = principal.rsplit(":", 1)[0] + ":" + instance
    seeded.instances.append((region, instance))


def any_image(ec2: Any) -> str:
    """An image id the emulator knows. Asked by name: listing all of moto's ~1,200 AMIs takes seconds."""
    named = [{"Name": "name", "Values": ["amzn2-ami-hvm-2.0.*-x86_64-gp2"]}]
    found = ec2.describe_images(Owners=["amazon"], Filters=named)["Images"]
    return found[0]["ImageId"] if found else PLACEHOLDER_IMAGE


def investigated(event: dict[str, Any]) -> bool:
    """Whether containment would hand this event to the investigation (a leaked key or credentials that
    are contained, or would be in dry-run): only then does the demo seed the key's recorded history."""
    from keyguard.errors import KeyguardError as Bad
    from keyguard.incident import Kind
    from keyguard.plan import triage
    from keyguard.settings import Settings
    from keyguard.sources import cloudtrail, guardduty, health

    extract = {"aws.guardduty": guardduty, "aws.health": health, "aws.iam": cloudtrail}.get(event.get("source"))
    if extract is None:
        return False
    try:
        incidents = extract.extract(event)
    except Bad:
        return False
    settings = Settings.from_env()
    return any(i.kind is Kind.COMPROMISE and triage(i, settings) is None for i in incidents)


def investigate_queued(env: Environment, mode: str = "enforce") -> list[Invocation]:
    """Run the investigation function on what containment queued for it, as Lambda's SQS poller would
    (one message per batch, as the template configures)."""
    sqs = env.clients.get("sqs")
    rule = Rule("InvestigationFunction", "handlers.investigate.lambda_handler", {})
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=env.investigation_url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        (m,) = messages
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "eventSource": "aws:sqs",
            "awsRegion": env.clients.region,
        }
        inv = invoke(env, rule, {"Records": [record]}, mode)
        failures = (inv.result or {}).get("batchItemFailures") or []
        if failures:
            inv.error = f"investigation failed for message {m['MessageId']} (SQS redelivers it; then the DLQ keeps it)"
        sqs.delete_message(QueueUrl=env.investigation_url, ReceiptHandle=m["ReceiptHandle"])
        out.append(inv)


def seeded_resources(env: Environment, seeded: Seeded) -> list[str]:
    """What the emulator made for one event, in words."""
    out = [f"user/{u}" for u in seeded.users] + [f"role/{r}" for r in seeded.roles]
    out += [f"instance {i} ({region})" for region, i in seeded.instances]
    out += [f"topic {env.topic_arn}", f"queue {env.inbox_url}", f"queue {env.investigation_url}", f"table {env.table}"]
    out += [f"table {env.ledger_table}"] if env.ledger_table else []
    out += [f"policy {env.deny_all_policy_arn}"] if env.deny_all_policy_arn else []
    return out


def cleanup(env: Environment, seeded: Seeded) -> tuple[list[str], list[str]]:
    """Remove what the emulator made for one event (a long-lived emulator such as moto_server keeps it, and
    `keyguard audit` against it would list it). Returns (removed, not removed with why)."""
    iam, removed, failed = env.clients.iam, [], []

    def attempt(what: str, *calls: Any) -> None:
        try:
            for call in calls:
                call()
            removed.append(what)
        except Exception as e:
            failed.append(f"{what}: {type(e).__name__}: {' '.join(str(e).split())[:200]}")

    for user in seeded.users:
        attempt(f"user/{user}", lambda u=user: _delete_user(iam, u))
    for role in seeded.roles:
        attempt(f"role/{role}", lambda r=role: _delete_role(iam, r))
    for region, instance in seeded.instances:
        ec2 = env.clients.get("ec2", region)
        attempt(f"instance {instance} ({region})", lambda e=ec2, i=instance: e.terminate_instances(InstanceIds=[i]))
    sqs, sns, ddb = env.clients.get("sqs"), env.clients.get("sns"), env.clients.get("dynamodb")
    attempt(f"topic {env.topic_arn}", lambda: sns.delete_topic(TopicArn=env.topic_arn))
    for url in (env.inbox_url, env.investigation_url):
        attempt(f"queue {url}", lambda u=url: sqs.delete_queue(QueueUrl=u))
    attempt(f"table {env.table}", lambda: ddb.delete_table(TableName=env.table))
    if env.ledger_table:
        attempt(f"table {env.ledger_table}", lambda: ddb.delete_table(TableName=env.ledger_table))
    if env.deny_all_policy_arn:
        attempt(f"policy {env.deny_all_policy_arn}", lambda: iam.delete_policy(PolicyArn=env.deny_all_policy_arn))
    return removed, failed


def _delete_user(iam: Any, user: str) -> None:
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
        iam.delete_user_policy(UserName=user, PolicyName=name)
    for policy in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])
    for call in (iam.delete_login_profile, iam.delete_user_permissions_boundary):
        try:
            call(UserName=user)
        except Exception as e:
            if "NoSuchEntity" not in str(e):
                raise
    iam.delete_user(UserName=user)


def _delete_role(iam: Any, role: str) -> None:
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=role)
