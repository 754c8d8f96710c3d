"""What a watched call means, decided from configuration and keyguard's own records (the ledger).

Never from tags, names or policy text on the principal: the caller can write all of those. The only
inputs are the call (what was done to what, by whom), the stack's configuration (which resources and
roles are keyguard's, who deploys it) and the ledger (which keys and principals keyguard holds, and
whether a hold was released through `keyguard release`)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keyguard.actions import BOUNDARY_LAYER, REVOKE_SESSIONS_POLICY
from keyguard.tamper.call import Call
from keyguard.tamper.config import WatchConfig
from keyguard.tamper.watch import KEYGUARD_POLICIES, KEYGUARD_TAG_PREFIX, Watch


class Verdict(StrEnum):
    RECONTAIN = "re-contain"  # a held key or principal: put the containment back, critical alert
    ALERT = "alert"  # keyguard's own resources or what it depends on: critical alert
    SUSPICIOUS = "suspicious"  # keyguard's record tags changed on a principal it does not hold: high alert
    IGNORE = "ignore"  # nothing to do (reason says why); no alert


LEVEL = {Verdict.RECONTAIN: "critical", Verdict.ALERT: "critical", Verdict.SUSPICIOUS: "high", Verdict.IGNORE: "info"}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    kind: str = ""  # "key", "user", "role", or the own-resource class
    name: str | None = None  # the key id, principal name or resource name the call acted on
    reapply: str | None = None
    record: Any = None  # the ledger's KeyRecord / PrincipalRecord that holds it
    new_name: str | None = None  # UpdateUser: the name the held user now has

    @property
    def level(self) -> str:
        return LEVEL[self.verdict]


def ignore(reason: str, kind: str = "", name: str | None = None) -> Decision:
    return Decision(Verdict.IGNORE, reason, kind, name)


def decide(call: Call, watch: Watch, config: WatchConfig, ledger: Any) -> Decision:
    if call.error_code:
        return ignore(f"the call failed ({call.error_code}): nothing changed")
    if is_own_role(call, config):
        return ignore("made by one of keyguard's own roles")
    if watch.target == "key":
        return _key(call, watch, ledger)
    if watch.target in ("user", "role"):
        return _principal(call, watch, config, ledger)
    if watch.target == "tags":
        return _tags(call, ledger)
    return _resource(call, watch, config)


def is_own_role(call: Call, config: WatchConfig) -> bool:
    """A session of one of keyguard's function roles, in this account."""
    issuer = call.actor.issuer_arn
    if not issuer or ":role/" not in issuer or (call.account and call.actor.account != call.account):
        return False
    return issuer.rsplit("/", 1)[-1].lower() in config.own_roles


def is_deployer(call: Call, config: WatchConfig) -> bool:
    """keyguard's own deploy: CloudFormation's service role or the operator role (configured ARNs)."""
    candidates = {a.lower() for a in (call.actor.issuer_arn, call.actor.arn) if a}
    return bool(candidates & config.deployers)


def _held(record: Any) -> bool:
    return record is not None and bool(getattr(record, "held", False))


def _released(record: Any) -> bool:
    return record is not None and not _held(record) and getattr(record, "released_at", None) is not None


def _key(call: Call, watch: Watch, ledger: Any) -> Decision:
    key_id = call.param("accessKeyId")
    if not key_id:
        return ignore("no access key id in the call")
    record = ledger.key(key_id)
    if not _held(record):
        why = "released through keyguard release" if _released(record) else "not a key keyguard holds"
        return ignore(why, "key", key_id)
    reason = f"{call.name} set key {key_id}, which keyguard holds, back to Active: it undid {watch.undoes}"
    return Decision(Verdict.RECONTAIN, reason, "key", key_id, watch.reapply, record)


def _principal(call: Call, watch: Watch, config: WatchConfig, ledger: Any) -> Decision:
    kind = watch.target
    name = call.param("userName") if kind == "user" else call.param("roleName")
    if not name:
        return ignore(f"no {kind} name in the call")
    if kind == "role" and name.lower() in config.own_roles:
        return _own(call, config, "own-role", name, "keyguard's own role's permissions or trust")
    policy_call = call.name in ("DeleteRolePolicy", "PutRolePolicy", "DeleteUserPolicy", "PutUserPolicy")
    if policy_call and call.param("policyName") not in KEYGUARD_POLICIES:
        return ignore("not one of keyguard's policies", kind, name)
    if call.name in ("PutUserPolicy", "PutRolePolicy") and _is_keyguard_deny(call):
        return ignore("the document put is keyguard's own deny (a containment, not an undoing)", kind, name)
    reapply = watch.reapply
    if call.name == "PutUserPermissionsBoundary" and call.param("permissionsBoundary") == config.deny_all_policy_arn:
        return ignore("the boundary put is keyguard's deny-all", kind, name)
    detached = call.param("policyArn") if call.name == "DetachUserPolicy" else None
    if call.name == "DetachUserPolicy" and (not config.deny_all_policy_arn or detached != config.deny_all_policy_arn):
        return ignore("not keyguard's policy", kind, name)
    record = ledger.principal(kind, name)
    if not _held(record):
        why = "released through keyguard release" if _released(record) else f"not a {kind} keyguard holds"
        return ignore(why, kind, name)
    layers = tuple(getattr(record, "layers", None) or ())
    if watch.reapply == "boundary" and layers and BOUNDARY_LAYER not in layers:
        return ignore("keyguard put no boundary on it (its boundary is not keyguard's)", kind, name)
    new_name = call.param("newUserName") if call.name == "UpdateUser" else None
    return Decision(
        Verdict.RECONTAIN,
        f"{call.name} on {kind} {name}, which keyguard holds, undid {watch.undoes}",
        kind,
        name,
        reapply,
        record,
        new_name,
    )


def _is_keyguard_deny(call: Call) -> bool:
    raw = call.request.get("policyDocument")
    try:
        doc = raw if isinstance(raw, dict) else json.loads(urllib.parse.unquote(raw)) if isinstance(raw, str) else None
    except ValueError:
        return False
    return isinstance(doc, dict) and denies_everything(
        doc, conditional=call.param("policyName") == REVOKE_SESSIONS_POLICY
    )


def denies_everything(doc: dict[str, Any], conditional: bool) -> bool:
    """A Deny of Action "*" on Resource "*" (conditional: on aws:TokenIssueTime, the session revocation)."""
    statements = doc.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    for s in statements:
        if not isinstance(s, dict) or s.get("Effect") != "Deny":
            continue
        if s.get("Action") in ("*", ["*"]) and s.get("Resource") in ("*", ["*"]):
            condition = s.get("Condition")
            if not conditional and not condition:
                return True
            if conditional and "aws:TokenIssueTime" in json.dumps(condition):
                return True
    return False


def _tags(call: Call, ledger: Any) -> Decision:
    kind = "user" if call.name.endswith("User") else "role"
    name = call.param("userName") if kind == "user" else call.param("roleName")
    if not name:
        return ignore(f"no {kind} name in the call")
    tags = call.request.get("tags") if call.name.startswith("Tag") else call.request.get("tagKeys")
    keys = [t.get("key") if isinstance(t, dict) else t for t in tags] if isinstance(tags, list) else []
    if not any(isinstance(k, str) and k.startswith(KEYGUARD_TAG_PREFIX) for k in keys):
        return ignore("no keyguard:* tag in the call", kind, name)
    record = ledger.principal(kind, name)
    if _held(record):
        return Decision(
            Verdict.ALERT,
            f"{call.name} changed keyguard's record tags on {kind} {name}, which keyguard holds (the ledger keeps"
            " the record; the hold stands)",
            kind,
            name,
            None,
            record,
        )
    return Decision(
        Verdict.SUSPICIOUS,
        f"{call.name} changed keyguard:* tags on {kind} {name}; tags never exempt or release anyone",
        kind,
        name,
    )


def _own(call: Call, config: WatchConfig, kind: str, name: str | None, what: str) -> Decision:
    if is_deployer(call, config):
        return ignore("keyguard's own deploy (a configured deployer or operator role)", kind, name)
    return Decision(Verdict.ALERT, f"{call.name} changed {what}", kind, name)


def _resource(call: Call, watch: Watch, config: WatchConfig) -> Decision:
    kind = watch.target
    name = resource_name(call, kind)
    if kind in ("trail", "detector"):
        return _own(call, config, kind, name, watch.undoes)
    if not is_own_resource(call, kind, name, config):
        return ignore(f"not one of keyguard's resources ({kind})", kind, name)
    return _own(call, config, kind, name, watch.undoes)


def resource_name(call: Call, kind: str) -> str | None:
    """The resource the call acted on, as the call names it."""
    p, r = call.param, call.response
    if kind == "rule":
        return p("name", "rule")
    if kind == "function":
        ref = p("functionName") or (r.get("functionArn") if isinstance(r.get("functionArn"), str) else None)
        if ref and ":function:" in ref:
            ref = ref.split(":function:", 1)[1].split(":", 1)[0]
        return ref
    if kind == "topic":
        sub = p("subscriptionArn")
        # PutDataProtectionPolicy names the topic as `resourceArn`
        return p("topicArn", "resourceArn") or (sub.rsplit(":", 1)[0] if sub else None)
    if kind == "kms-key":
        return p("keyId") or next(iter(call.resources), None)
    if kind == "table":
        ref = p("tableName", "resourceArn")
        return ref.split(":table/", 1)[1].split("/", 1)[0] if ref and ":table/" in ref else ref
    if kind == "queue":
        url = p("queueUrl")
        return url.rstrip("/").rsplit("/", 1)[-1] if url else None
    if kind == "alarm":
        names = call.request.get("alarmNames")
        if isinstance(names, list) and names:
            return ",".join(str(n) for n in names)
        return p("alarmName")
    if kind == "stack":
        ref = p("stackName")
        return ref.split(":stack/", 1)[1].split("/", 1)[0] if ref and ":stack/" in ref else ref
    if kind == "own-role":
        return p("roleName")
    if kind == "deny-all-policy":
        return p("policyArn")
    if kind == "trail":
        return p("name", "trailName")
    if kind == "detector":
        return p("detectorId")
    return None


def is_own_resource(call: Call, kind: str, name: str | None, config: WatchConfig) -> bool:
    if not name:
        return False
    if kind in ("rule", "function", "queue"):
        return config.is_stack_name(name)
    if kind == "alarm":
        return any(config.is_stack_name(n) for n in name.split(","))
    if kind == "topic":
        return name in {config.topic_arn, config.alarm_topic_arn} - {None}
    if kind == "kms-key":
        refs = {name, *call.resources}
        ids = {a for a in config.key_arns} | {a.rsplit("/", 1)[-1] for a in config.key_arns}
        alias = f"alias/{config.stack_name}-" if config.stack_name else None
        return bool(refs & ids) or bool(alias and any(ref.rsplit(":", 1)[-1].startswith(alias) for ref in refs))
    if kind == "table":
        return name in config.tables or config.is_stack_name(name)
    if kind == "stack":
        return bool(config.stack_name) and name == config.stack_name
    if kind == "own-role":
        return name.lower() in config.own_roles
    if kind == "deny-all-policy":
        return bool(config.deny_all_policy_arn) and name == config.deny_all_policy_arn
    return False
