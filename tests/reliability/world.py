"""What the reliability tests (and benchmarks/burst.py) share: an emulated account, a handler invoked as
Lambda invokes it, and the account's IAM state read straight from the emulator.

The state is read from moto's in-memory IAM backend rather than through ~25 List* calls per snapshot: it is
the same data (test_world_state_matches_the_api checks that), at a cost that lets the property tests take a
snapshot before and after each of thousands of examples.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"

# trigger -> the handler module template.yaml names for it
HANDLERS = {
    "guardduty": "handlers.guardduty",
    "attack_sequence": "handlers.guardduty",  # GuardDuty's attack sequences: the same function, its own rule
    "health": "handlers.health",
    "cloudtrail": "handlers.access_key_created",
    "investigation": "handlers.investigate",
}
FUNCTION_NAMES = {
    "guardduty": "GuardDutyFunction",
    "attack_sequence": "GuardDutyFunction",
    "health": "HealthFunction",
    "cloudtrail": "AccessKeyCreatedFunction",
    "aws-quarantine": "AwsQuarantineFunction",
    "trusted-advisor": "TrustedAdvisorFunction",
    "investigation": "InvestigationFunction",
}


@dataclass
class Context:
    """The Lambda context keyguard reads: the function ARN (its account) and the time left, which
    Powertools Idempotency uses to bound an in-progress record."""

    function_name: str
    invoked_function_arn: str
    remaining_ms: int = 60_000
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def context_for(trigger: str, account: str = ACCOUNT, remaining_ms: int = 60_000) -> Context:
    name = FUNCTION_NAMES[trigger]
    return Context(name, f"arn:aws:lambda:{REGION}:{account}:function:keyguard-{name}", remaining_ms)


@contextmanager
def saved_environ() -> Iterator[None]:
    """Restore os.environ afterwards (the emulator sets fake credentials and keyguard's variables)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def emulated() -> Iterator[Any]:
    """A fresh in-process moto account set up as the stack is (topic + SQS subscriber, idempotency table,
    investigation queue where the stack has one). Never reaches a real account: fake credentials, no
    endpoint override. Safe for containers in threads (tests.faults.SerialEmulator)."""
    from keyguard.local.emulator import emulated_account
    from tests.faults import SerialEmulator

    SerialEmulator.install()  # containers in threads: moto serialised, overlapping transactions cancelled
    with saved_environ():
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            os.environ.pop(var, None)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"  # thousands of invocations: keep the output readable
        with emulated_account() as env:
            yield env


def settings_for(env: Any, mode: str = "enforce", **extra: str) -> Any:
    """Settings as the template sets them for this account (through Settings.from_env, so every variable
    the code reads is validated the way Lambda's would be)."""
    from keyguard.settings import Settings

    variables = {
        "KEYGUARD_MODE": mode,
        "KEYGUARD_TOPIC_ARN": env.topic_arn,
        "KEYGUARD_IDEMPOTENCY_TABLE": env.table,
    }
    if getattr(env, "investigation_url", None):
        variables["KEYGUARD_INVESTIGATION_QUEUE_URL"] = env.investigation_url
    if getattr(env, "ledger_table", None):  # as the template sets them: the ledger and the deny-all boundary
        variables["KEYGUARD_LEDGER_TABLE"] = env.ledger_table
        variables["KEYGUARD_DENY_ALL_POLICY_ARN"] = env.deny_all_policy_arn
    variables.update(extra)
    return Settings.from_env(variables)


@dataclass
class Invocation:
    result: dict[str, Any] | None = None
    error: BaseException | None = None


def handler_for(trigger: str) -> Any:
    return importlib.import_module(HANDLERS[trigger]).lambda_handler


def invoke(
    env: Any,
    trigger: str,
    event: Any,
    *,
    settings: Any = None,
    context: Context | None = None,
    clients: Any = None,
) -> Invocation:
    """Call the trigger's Lambda handler (Powertools decorators included) as Lambda would. Any exception
    is returned, not raised: tests assert which kinds may escape."""
    handler = handler_for(trigger)
    handler.runtime.reset(settings=settings or settings_for(env), clients=clients or env.clients)
    inv = Invocation()
    try:
        inv.result = handler(event, context or context_for(trigger))
    except Exception as e:  # tests decide which exceptions were allowed to escape
        inv.error = e
    return inv


# ---------------------------------------------------------------------------------------------- IAM state


def iam_backend(account: str = ACCOUNT) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["global"]


def iam_state(account: str = ACCOUNT) -> dict[str, Any]:
    """Every user's keys (id -> status), inline policies (name -> document) and tags; every role's inline
    policies and tags. Straight from the emulator's IAM backend."""
    backend = iam_backend(account)
    state: dict[str, Any] = {}
    for name, user in backend.users.items():
        tags = backend.tagger.list_tags_for_resource(user.arn)["Tags"]
        state[f"user/{name}"] = {
            "keys": {k.access_key_id: k.status for k in user.access_keys},
            "policies": {n: _parsed(d) for n, d in user.policies.items()},
            "tags": {t["Key"]: t["Value"] for t in tags},
        }
        if getattr(user, "permissions_boundary_arn", None):  # keyguard.local.boundary
            state[f"user/{name}"]["boundary"] = user.permissions_boundary_arn
    for role in backend.roles.values():
        state[f"role/{role.name}"] = {
            "policies": {n: _parsed(d) for n, d in role.policies.items()},
            "tags": {t["Key"]: t["Value"] for t in (role.tags or [])},
        }
        if getattr(role, "permissions_boundary_arn", None):  # the investigation's deny-all boundary on a role
            state[f"role/{role.name}"]["boundary"] = role.permissions_boundary_arn
    return state


def _parsed(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def iam_state_via_api(iam: Any) -> dict[str, Any]:
    """The same as iam_state, through the IAM API (to check iam_state reads what the API shows)."""
    from urllib.parse import unquote

    def doc(raw: Any) -> str:
        return raw if isinstance(raw, str) else json.dumps(raw)

    state: dict[str, Any] = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        policies = {
            p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
            for p in iam.list_user_policies(UserName=name)["PolicyNames"]
        }
        state[f"user/{name}"] = {
            "keys": {k["AccessKeyId"]: k["Status"] for k in keys},
            "policies": {p: json.loads(unquote(doc(d))) if isinstance(d, str) else d for p, d in policies.items()},
            "tags": {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=name)["Tags"]},
        }
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        policies = {
            p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
            for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }
        state[f"role/{name}"] = {
            "policies": {p: json.loads(unquote(doc(d))) if isinstance(d, str) else d for p, d in policies.items()},
            "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
        }
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """principal -> what changed on it: {"keys": {id: (old, new)}, "policies": {name: (old, new)},
    "tags": {key: (old, new)}}. Principals created or deleted show as all-new or all-gone."""
    out: dict[str, dict[str, Any]] = {}
    for principal in sorted(set(before) | set(after)):
        b, a = before.get(principal, {}), after.get(principal, {})
        diff: dict[str, Any] = {}
        for part in ("keys", "policies", "tags"):
            bp, ap = b.get(part, {}), a.get(part, {})
            moved = {k: (bp.get(k), ap.get(k)) for k in set(bp) | set(ap) if bp.get(k) != ap.get(k)}
            if moved:
                diff[part] = moved
        if b.get("boundary") != a.get("boundary"):
            diff["boundary"] = (b.get("boundary"), a.get("boundary"))
        if diff or (principal in before) != (principal in after):
            out[principal] = diff or {"exists": (principal in before, principal in after)}
    return out


def restore(iam: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Undo what changed between two snapshots (keys back to their status, policies and tags back)."""
    for principal, diff in changes(before, after).items():
        kind, name = principal.split("/", 1)
        if "boundary" in diff and kind == "user":
            old = diff["boundary"][0]
            if old is None:
                iam.delete_user_permissions_boundary(UserName=name)
            else:
                iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=old)
        for key_id, (old, _) in diff.get("keys", {}).items():
            if old is not None:
                iam.update_access_key(UserName=name, AccessKeyId=key_id, Status=old)
        for policy, (old, _) in diff.get("policies", {}).items():
            if old is None and kind == "user":
                iam.delete_user_policy(UserName=name, PolicyName=policy)
            elif old is None:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            elif kind == "user":
                iam.put_user_policy(UserName=name, PolicyName=policy, PolicyDocument=json.dumps(old))
            else:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(old))
        tags = diff.get("tags", {})
        gone = [k for k, (old, _) in tags.items() if old is None]
        back = [{"Key": k, "Value": old} for k, (old, _) in tags.items() if old is not None]
        if gone:
            (iam.untag_user if kind == "user" else iam.untag_role)(
                **({"UserName": name} if kind == "user" else {"RoleName": name}), TagKeys=gone
            )
        if back:
            (iam.tag_user if kind == "user" else iam.tag_role)(
                **({"UserName": name} if kind == "user" else {"RoleName": name}), Tags=back
            )


# ---------------------------------------------------------------------------------------------- a stage


class Stage:
    """One emulated account provisioned once (topic + subscriber, table, queues) for many tests.

    `fresh()` gives an Environment with new clients from the same boto3 session: each has its own retry
    quota and event hooks (faults, call logs), while the service models stay loaded. `clear_iam()` deletes
    every user and role, so the next test seeds a clean account."""

    def __init__(self) -> None:
        self._cm = emulated()
        self.env = self._cm.__enter__()
        self.session = self.env.clients.session

    def fresh(self) -> Any:
        """The stage's resources with new clients; the idempotency table emptied (nothing announced yet)."""
        import dataclasses

        from keyguard.aws import Clients

        ddb = self.env.clients.get("dynamodb")
        for item in ddb.scan(TableName=self.env.table, ProjectionExpression="id").get("Items", []):
            ddb.delete_item(TableName=self.env.table, Key={"id": item["id"]})
        if getattr(self.env, "ledger_table", None):  # keyguard's records of earlier tests
            for item in ddb.scan(TableName=self.env.ledger_table, ProjectionExpression="pk, sk").get("Items", []):
                ddb.delete_item(TableName=self.env.ledger_table, Key={"pk": item["pk"], "sk": item["sk"]})
        return dataclasses.replace(self.env, clients=Clients(session=self.session))

    def clear_iam(self) -> None:
        """Delete every user (keys, policies, tags) and role: straight in the emulator's backend, which is
        what ~15 IAM calls would do, at a fraction of the cost."""
        backend = iam_backend()
        for user in list(backend.users.values()):
            backend.tagger.delete_all_tags_for_resource(user.arn)
        backend.users.clear()
        backend.roles.clear()
        assert iam_state() == {}

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def published(topic_arn: str) -> list[dict[str, Any]]:
    """The keyguard documents SNS accepted on a topic (the JSON part of each message), straight from the
    emulator's record of the topic: what subscribers would get, subscribed or not."""
    from moto.sns.models import sns_backends

    _, _, _, region, account, _ = topic_arn.split(":", 5)
    topic = sns_backends[account][region].topics[topic_arn]
    return [json.loads(json.loads(message)["sqs"]) for _, message, *_ in topic.sent_notifications]
