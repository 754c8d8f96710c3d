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
STACK = "keyguard"  # the stack name the tamper-*.json events name keyguard's resources with
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

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: the template in 0.1 s, not 1 s
        pass

    def any_tag(loader: Any, suffix: str, node: yaml.Node) -> Any:
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
    """The rules whose pattern the event matches: keyguard's own matcher (keyguard.patterns, the one the
    deployed tamper watch uses), or `tester(pattern, event)` (EventBridge's own TestEventPattern,
    keyguard.local.patterns.aws_matches)."""
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
    history: int = 0  # CloudTrail records of what the keys did before, put into the account's history
    held: list[str] = field(default_factory=list)  # what keyguard held before the event, and how it was undone


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
    cloudtrail: Any = None  # the account's LookupEvents stand-in (in process; None on the wire)
    account: str = ACCOUNT
    endpoint_url: str | None = None
    alarm_topic_arn: str = ""
    key_arn: str = ""  # the stack's KMS key, as the tamper watch is told of it

    def stack_variables(self) -> dict[str, str]:
        """The environment variables template.yaml gives the functions, naming this emulated stack."""
        return {
            "KEYGUARD_TOPIC_ARN": self.topic_arn,
            "KEYGUARD_IDEMPOTENCY_TABLE": self.table,
            "KEYGUARD_INVESTIGATION_QUEUE_URL": self.investigation_url,
            "KEYGUARD_LEDGER_TABLE": self.ledger_table,
            "KEYGUARD_DENY_ALL_POLICY_ARN": self.deny_all_policy_arn,
        }

    def watch_variables(self) -> dict[str, str]:
        """What the template gives the tamper watch besides: the stack's name (CloudFormation puts it in
        front of every generated name), its keys, tables, alarm topic and deployers."""
        return {
            "KEYGUARD_STACK_NAME": STACK,
            "KEYGUARD_ALARM_TOPIC_ARN": self.alarm_topic_arn,
            "KEYGUARD_KEY_ARNS": self.key_arn,
            "KEYGUARD_OWN_TABLES": ",".join(t for t in (self.table, self.ledger_table) if t),
            "KEYGUARD_DEPLOYER_ARNS": f"arn:aws:iam::{self.account}:role/{STACK}-deployer",
        }

    def add_history(self, records: list[dict[str, Any]]) -> None:
        """Put CloudTrail records into the account's event history (LookupEvents answers from it)."""
        if not records:
            return
        if self.endpoint_url:
            _admin(self.endpoint_url, "cloudtrail", {"account": self.account, "records": records})
        else:
            self.cloudtrail.records.extend(records)

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


def fake_credentials(account: str | None = None) -> None:
    """Emulators accept any credentials; never let a demo reach a real account by accident. A 12-digit
    access key id names the emulated account (keyguard emulator, LocalStack)."""
    os.environ["AWS_ACCESS_KEY_ID"] = account or "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - emulator only
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]


@contextmanager
def emulated_account(endpoint_url: str | None = None, account: str | None = None) -> Iterator[Environment]:
    """A fresh in-process moto account, or an account of its own behind an AWS-compatible endpoint
    (`keyguard emulator`): a rehearsal never meets the users an earlier run or another tool left there."""
    from keyguard.local import service

    service.install()  # what moto lacks (boundaries, LookupEvents, quotas), in moto's own service layer
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with service.quotas_enforced():
            yield from _account(endpoint_url, account)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _account(endpoint_url: str | None, account: str | None) -> Iterator[Environment]:
    from keyguard.aws import Clients
    from keyguard.local import service

    if endpoint_url:
        account = account or rehearsal_account()
        fake_credentials(account)
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url  # boto3 sends every client there
        yield _provision(Clients(_session()), account, endpoint_url)
        return
    from moto import mock_aws

    fake_credentials()
    # moto loads ~1,200 default AMIs into every region's EC2 backend (0.7 s each); the emulator needs none
    amis = os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    try:
        with mock_aws():
            service.reset()
            yield _provision(Clients(_session()), ACCOUNT, None)
    finally:
        if amis == "false" and os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS") == "false":
            os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)


@contextmanager
def own_stack_environment() -> Iterator[None]:
    """Each event meets its own emulated stack: no KEYGUARD_* variable of the previous event's (invoke sets
    only those a caller has not set), and the process gets its own back afterwards."""
    saved = {n: v for n, v in os.environ.items() if n.startswith("KEYGUARD_")}
    for n in saved:
        os.environ.pop(n)
    try:
        yield
    finally:
        for n in [n for n in os.environ if n.startswith("KEYGUARD_")]:
            os.environ.pop(n)
        os.environ.update(saved)


def rehearsal_account() -> str:
    """A 12-digit account id for one rehearsal over the wire (never moto's default 123456789012)."""
    return "9" + f"{uuid.uuid4().int % 10**11:011d}"


def rehome(event: Any, account: str) -> Any:
    """The event (or history) as it would name `account`: every mention of the example account replaced."""
    if account == ACCOUNT:
        return event
    return json.loads(json.dumps(event).replace(ACCOUNT, account))


def _admin(endpoint_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call to `keyguard emulator`'s own endpoints (/_keyguard/...): what no AWS API can seed."""
    import urllib.error
    import urllib.request

    url = endpoint_url.rstrip("/") + "/_keyguard/" + path
    if not url.startswith(("http://", "https://")):
        raise KeyguardError(f"not an emulator URL: {endpoint_url}")
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310  # nosec B310
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            refused = json.loads(e.read() or b"{}").get("error")
        except (ValueError, AttributeError):
            refused = None
        if refused and e.code != 404:
            raise KeyguardError(f"{url}: the emulator refused: {refused}") from e
        raise KeyguardError(
            f"{endpoint_url} is not `keyguard emulator` ({url} answered HTTP {e.code}), so it cannot hold a"
            " CloudTrail event history: start one with `keyguard emulator` and point --endpoint-url at it"
        ) from e
    except (urllib.error.URLError, OSError) as e:
        raise KeyguardError(f"{url}: {getattr(e, 'reason', e)}") from e


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


def _provision(clients: Any, account: str, endpoint_url: str | None) -> Environment:
    """What the stack creates, under CloudFormation-like names (`keyguard-<Logical>-<id>`)."""
    suffix = uuid.uuid4().hex[:8]
    sns, sqs, ddb = clients.get("sns"), clients.get("sqs"), clients.get("dynamodb")
    topic = sns.create_topic(Name=f"{STACK}-Topic-{suffix}")["TopicArn"]
    alarm_topic = sns.create_topic(Name=f"{STACK}-AlarmTopic-{suffix}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{STACK}-inbox-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for arn in (topic, alarm_topic):  # one subscriber reads both, as a person subscribed to both would
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    table = f"{STACK}-IdempotencyTable-{suffix}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    investigation = sqs.create_queue(QueueName=f"{STACK}-InvestigationQueue-{suffix}")["QueueUrl"]
    ledger = f"{STACK}-ledger-{suffix}"
    ddb.create_table(TableName=ledger, BillingMode="PAY_PER_REQUEST", **LEDGER_SCHEMA)
    deny_all = clients.iam.create_policy(
        PolicyName=f"{STACK}-DenyAllPolicy-{suffix}",
        PolicyDocument=json.dumps(deny_all_policy()),
        Description="keyguard quarantine: the permissions boundary that denies everything",
    )["Policy"]["Arn"]
    key = clients.get("kms").create_key(Description="keyguard - encrypts the notification topic")["KeyMetadata"]
    env = Environment(clients, topic, table, queue_url, investigation, ledger, deny_all)
    env.account, env.endpoint_url, env.alarm_topic_arn, env.key_arn = account, endpoint_url, alarm_topic, key["Arn"]
    if endpoint_url is None:
        from keyguard.local import service

        env.cloudtrail = service.trail(account)
    return env


def seed(iam: Any, event: dict[str, Any], account: str = ACCOUNT) -> Seeded:
    """Create the principals the event names, with real keys in place of the example key ids."""
    event = copy.deepcopy(rehome(event, account))
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
    elif (
        source == "aws.iam"
        and detail.get("eventName") in ("AttachUserPolicy", "PutUserPolicy")
        and not str((detail.get("requestParameters") or {}).get("policyName", "")).startswith("keyguard-")
    ):
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
        _seed_attack_sequence(iam, event, detail, out, user_with_key, other_key, account)
    new_key(BYSTANDER)
    return out


def _seed_attack_sequence(
    iam: Any, event: dict, detail: dict, out: Seeded, user_with_key: Any, other_key: Any, account: str = ACCOUNT
) -> None:
    """GuardDuty attack sequences name credentials in the sequence's actors (keyguard.sources.attack_sequence):
    each IAM user of this account gets a real key in place of the example (and a second key that must stay
    Active), each role exists. Actors of other accounts, root and other types are left as the event says."""
    sample = (detail.get("service") or {}).get("additionalInfo", {}).get("sample") in (True, "true")
    sequence = ((detail.get("service") or {}).get("detection") or {}).get("sequence") or {}
    for actor in [] if sample else sequence.get("actors") or []:
        user = actor.get("user") if isinstance(actor, dict) else None
        if not isinstance(user, dict) or (user.get("account") or {}).get("uid", account) != account:
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
    os.environ.update(KEYGUARD_MODE=mode, **env.stack_variables())
    for name, value in env.watch_variables().items():
        os.environ.setdefault(name, value)  # a test that set its own (another stack name, say) keeps it
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines in the demo's output
    module_name, func_name = rule.handler.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), func_name)
    if LOGS_TO_STDERR:
        _logs_to_stderr()
    handler.runtime.reset(clients=env.clients)
    arn = f"arn:aws:lambda:us-east-1:{env.account}:function:{STACK}-{rule.function}"
    context = FakeContext(rule.function, arn)
    inv = Invocation(rule)
    try:
        inv.result = handler(event, context)
    except KeyguardError as e:
        inv.error = f"{type(e).__name__}: {e}"
    inv.published = list(handler.runtime.notifier.sent)
    return inv


LOGS_TO_STDERR = False  # the demo's runner sets it: its report owns stdout


def _logs_to_stderr() -> None:
    """The functions' JSON log lines (Powertools writes them to stdout, where Lambda reads them) go to
    stderr here: the emulator's own report, one JSON document with --format json, owns stdout."""
    import logging

    for name in ("keyguard", *[n for n in logging.root.manager.loggerDict if n.startswith("keyguard.")]):
        for h in logging.getLogger(name).handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                h.setStream(_STDERR)


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (a test's capture, or the terminal)."""

    def write(self, text: str) -> int:
        import sys

        return sys.stderr.write(text)

    def flush(self) -> None:
        import sys

        sys.stderr.flush()


_STDERR = _CurrentStderr()


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
        history = rehome(cloudtrail.rebase(cloudtrail.load_history(example), now), env.account)
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
    env.add_history(records)
    seeded.history = len(records)
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


def prepare(env: Environment, event: dict[str, Any]) -> Seeded:
    """Everything the account needs before the event, as the deployed system would have it: the event
    re-homed into the emulated account, its principals and keys, the keys' recorded history (for every
    event: the investigation asks CloudTrail whenever it runs), the stack's KMS key where the event names
    one, and, for a call that undoes a hold, the hold itself (made by keyguard's own function from a
    finding) and the key holder's undoing call."""
    seeded = seed(env.clients.iam, event, env.account)
    _stack_key(env, seeded)
    seed_activity(env, seeded)
    _hold_then_undo(env, seeded)
    return seeded


_EXAMPLE_KMS_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"  # AWS's documented example key id


_EXAMPLE_TOPIC = f"{STACK}-Topic-1A2B3C4D5E6F"  # the stack's topic, as the tamper-*.json events name it


def _stack_key(env: Environment, seeded: Seeded) -> None:
    """An event that names the stack's KMS key or topic names the emulated stack's."""
    for example, real in ((_EXAMPLE_KMS_KEY, env.key_arn), (_EXAMPLE_TOPIC, env.topic_arn)):
        real = real.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        text = json.dumps(seeded.event)
        if real and example in text:
            seeded.event = json.loads(text.replace(example, real))
            seeded.replaced[example] = real


# CloudTrail calls that undo what keyguard put on a principal: how the key holder makes each one.
_UNDO_USER = {
    "UpdateAccessKey": lambda iam, user, req, key: iam.update_access_key(
        UserName=user, AccessKeyId=key, Status="Active"
    ),
    "DeleteUserPolicy": lambda iam, user, req, key: iam.delete_user_policy(UserName=user, PolicyName=req["policyName"]),
    "PutUserPolicy": lambda iam, user, req, key: iam.put_user_policy(
        UserName=user, PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
    ),
    "DeleteUserPermissionsBoundary": lambda iam, user, req, key: iam.delete_user_permissions_boundary(UserName=user),
    "UntagUser": lambda iam, user, req, key: iam.untag_user(UserName=user, TagKeys=req["tagKeys"]),
    "UpdateUser": lambda iam, user, req, key: iam.update_user(UserName=user, NewUserName=req["newUserName"]),
}
_UNDO_ROLE = {
    "DeleteRolePolicy": lambda iam, role, req: iam.delete_role_policy(RoleName=role, PolicyName=req["policyName"]),
    "UpdateAssumeRolePolicy": lambda iam, role, req: iam.update_assume_role_policy(
        RoleName=role, PolicyDocument=req["policyDocument"]
    ),
}


def _hold_then_undo(env: Environment, seeded: Seeded) -> None:
    """For a call that undoes a hold, keyguard first holds the principal, through its own GuardDuty
    function and a finding on it (so the ledger, the layers and the tags are keyguard's own), then the key
    holder makes the call the event records."""
    detail = seeded.event.get("detail") or {}
    name, req = detail.get("eventName"), dict(detail.get("requestParameters") or {})
    if seeded.event.get("source") != "aws.iam" or not (name in _UNDO_USER or name in _UNDO_ROLE):
        return
    if name in ("PutUserPolicy", "DeleteUserPolicy", "DeleteRolePolicy") and not str(
        req.get("policyName", "")
    ).startswith("keyguard-"):
        return
    iam = env.clients.iam
    finding = json.loads((DEFAULT_EVENTS / "guardduty-iam-user.json").read_text())
    details = finding["detail"]["resource"]["accessKeyDetails"]
    if name in _UNDO_USER:
        user = req["userName"]
        example = req.get("accessKeyId") or details["accessKeyId"]
        details.update(userName=user, accessKeyId=example)
        details.pop("principalId", None)
        held = seed(iam, finding, env.account)
        key = held.replaced[example]
        seeded.replaced.update(held.replaced)
        for u, keys in held.users.items():
            seeded.users.setdefault(u, []).extend(k for k in keys if k not in seeded.users.get(u, []))
        _contain_first(env, held)
        _UNDO_USER[name](iam, user, req, key)
        if "accessKeyId" in req:
            seeded.event["detail"]["requestParameters"]["accessKeyId"] = key
        if name == "UpdateUser":  # the user is gone under its old name; the demo reads it under the new one
            seeded.users[req["newUserName"]] = seeded.users.pop(user)
        seeded.held.append(f"user/{user} held by keyguard (a GuardDuty finding on {key}), then {name} by its holder")
    else:
        role = req["roleName"]
        finding = json.loads((DEFAULT_EVENTS / "guardduty-assumed-role-exfiltration.json").read_text())
        finding["detail"]["resource"]["accessKeyDetails"]["userName"] = role
        held = seed(iam, finding, env.account)
        if role not in seeded.roles:
            seeded.roles.append(role)
        _contain_first(env, held)
        _UNDO_ROLE[name](iam, role, req)
        seeded.held.append(f"role/{role} held by keyguard (a GuardDuty finding on its session), then {name}")


def _contain_first(env: Environment, held: Seeded) -> None:
    (rule,) = route(held.event, load_rules())  # the finding's own rule, as EventBridge would deliver it
    inv = invoke(env, rule, held.event)
    if inv.error:
        raise KeyguardError(f"the emulator could not hold the principal first: {inv.error}")
    env.delivered()  # that containment's notice is not the event's
    sqs = env.clients.get("sqs")  # nor is its investigation hand-off
    sqs.purge_queue(QueueUrl=env.investigation_url)


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
    out += [f"topic {arn}" for arn in (env.topic_arn, env.alarm_topic_arn) if arn]
    out += [f"queue {env.inbox_url}", f"queue {env.investigation_url}", f"table {env.table}"]
    out += [f"table {env.ledger_table}"] if env.ledger_table else []
    out += [f"policy {env.deny_all_policy_arn}"] if env.deny_all_policy_arn else []
    out += [f"KMS key {env.key_arn} (deletion scheduled)"] if env.key_arn else []
    out += [f"{seeded.history} CloudTrail record(s)"] if seeded.history else []
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
    for arn in (env.topic_arn, env.alarm_topic_arn):
        if arn:
            attempt(f"topic {arn}", lambda a=arn: sns.delete_topic(TopicArn=a))
    for url in (env.inbox_url, env.investigation_url):
        attempt(f"queue {url}", lambda u=url: sqs.delete_queue(QueueUrl=u))
    attempt(f"table {env.table}", lambda: ddb.delete_table(TableName=env.table))
    if env.ledger_table:
        attempt(f"table {env.ledger_table}", lambda: ddb.delete_table(TableName=env.ledger_table))
    if env.deny_all_policy_arn:
        attempt(f"policy {env.deny_all_policy_arn}", lambda: iam.delete_policy(PolicyArn=env.deny_all_policy_arn))
    if env.key_arn:
        kms = env.clients.get("kms")
        attempt(
            f"KMS key {env.key_arn} (deletion scheduled)",
            # by id: moto's ScheduleKeyDeletion fails (HTTP 500) on a key ARN
            lambda: kms.schedule_key_deletion(KeyId=env.key_arn.rsplit("/", 1)[-1], PendingWindowInDays=7),
        )
    if seeded.history and env.endpoint_url:
        keys = sorted(set(seeded.replaced.values()))
        attempt(
            f"{seeded.history} CloudTrail record(s)",
            lambda: _admin(env.endpoint_url or "", "cloudtrail/forget", {"account": env.account, "keys": keys}),
        )
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
