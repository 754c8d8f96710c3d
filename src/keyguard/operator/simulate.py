"""`--dry-run`: would the caller's own permissions allow the plan? IAM's policy simulator answers
(SimulatePrincipalPolicy, for the caller's user or role, each action on its resource).

The simulator knows identity policies, boundaries and SCPs, not resource policies or session policies; and
it may be unavailable (not granted, or an emulator such as moto that does not implement it). Then the answer
is "cannot tell", and the reason, never a guess."""

from __future__ import annotations

from typing import Any

from keyguard.aws import error_code

SIMULATE_PERMISSIONS = ("iam:SimulatePrincipalPolicy",)


def principal_arn(actor: str) -> str | None:
    """The IAM user or role ARN the simulator takes, from the caller ARN (an assumed-role session -> its role)."""
    parts = actor.split(":", 5)
    if len(parts) < 6 or parts[2] not in ("iam", "sts"):
        return None
    partition, account, resource = parts[1], parts[4], parts[5]
    if parts[2] == "iam" and resource.startswith(("user/", "role/")):
        return actor
    if parts[2] == "sts" and resource.startswith("user/"):  # what moto's GetCallerIdentity answers
        return f"arn:{partition}:iam::{account}:{resource}"
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None  # root, federated users: the simulator cannot take them


def resource_arn(action: Any, account: str, partition: str = "aws") -> str:
    user = getattr(action, "user", None)
    role = getattr(action, "role", None)
    if user:
        return f"arn:{partition}:iam::{account}:user/{user}"
    if role:
        return f"arn:{partition}:iam::{account}:role/{role}"
    return "*"


def check(clients: Any, actor: str, actions: list[Any]) -> dict[str, Any]:
    """{"checked": bool, "allowed": bool | None, "denied": [...], "summary": text, "results": [...]}."""
    source = principal_arn(actor)
    if source is None:
        return _cannot(f"the simulator takes IAM users and roles, not {actor}")
    account = source.split(":")[4]
    partition = source.split(":")[1]
    pairs = sorted({(p, resource_arn(a, account, partition)) for a in actions for p in a.permissions})
    results = []
    try:
        iam = clients.iam
        for resource in sorted({r for _, r in pairs}):
            names = [p for p, r in pairs if r == resource]
            pages = iam.get_paginator("simulate_principal_policy").paginate(
                PolicySourceArn=source, ActionNames=names, ResourceArns=[resource]
            )
            for page in pages:
                for item in page.get("EvaluationResults", []):
                    results.append(
                        {
                            "action": item["EvalActionName"],
                            "resource": item.get("EvalResourceName", resource),
                            "decision": item["EvalDecision"],
                        }
                    )
    except NotImplementedError:
        return _cannot("the endpoint does not implement IAM's policy simulator (moto does not)")
    except Exception as e:
        code = error_code(e)
        if type(e).__name__ == "ResponseParserError":  # moto_server answers an unimplemented call with a page
            return _cannot("the endpoint did not answer IAM's policy simulator (moto does not implement it)")
        if code in ("AccessDenied", "AccessDeniedException"):
            return _cannot("iam:SimulatePrincipalPolicy is not granted to you")
        if code in ("NotImplemented", "InvalidAction") or "not been implemented" in str(e):
            return _cannot("the endpoint does not implement IAM's policy simulator (moto does not)")
        return _cannot(f"the simulator failed ({code or type(e).__name__})")
    denied = [r for r in results if r["decision"] != "allowed"]
    if denied:
        listed = ", ".join(f"{r['action']} on {r['resource']} ({r['decision']})" for r in denied)
        summary = f"DENIED by IAM's policy simulator: {listed}"
    else:
        summary = f"IAM's policy simulator allows all {len(results)} calls (identity policies; not resource policies)"
    return {"checked": True, "allowed": not denied, "denied": denied, "summary": summary, "results": results}


def _cannot(why: str) -> dict[str, Any]:
    return {
        "checked": False,
        "allowed": None,
        "denied": [],
        "summary": f"cannot tell whether your permissions allow the plan: {why}",
        "results": [],
    }
