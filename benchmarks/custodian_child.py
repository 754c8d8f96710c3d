"""Runs inside .bench/c7n-venv (Cloud Custodian + moto): one GuardDuty finding through one Custodian
policy in `guard-duty` mode, as Custodian's Lambda would run it (c7n.handler.dispatch_event reading
config.json), against in-process moto seeded exactly like keyguard's account (keyguard.local.emulator.seed).

One variant per process, so the first event is a cold container's first event. Prints one JSON document.
Usage (custodian.py calls it): python custodian_child.py VARIANT [--warm N]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

from calllog import CallRecorder, first_containment  # noqa: E402

ACCOUNT = "123456789012"
EVENT = HERE.parent / "events" / "guardduty-iam-user.json"
DENY_ALL_ARN = "arn:aws:iam::aws:policy/AWSDenyAll"
VARIANTS = {
    # The policy: remove-keys as documented (without `disable` it deletes keys).
    "remove-keys": {"actions": [{"type": "remove-keys"}]},
    # The nearest to keyguard's deactivation.
    "remove-keys-disable": {"actions": [{"type": "remove-keys", "disable": True}]},
    # The nearest containment that runs in guard-duty mode for iam-user: attach AWS's deny-all policy.
    "set-policy-deny-all": {"actions": [{"type": "set-policy", "state": "attached", "arn": DENY_ALL_ARN}]},
    # remove-keys disable with Custodian's guard-duty annotation repaired in-process (see patch_annotation):
    # what the mode intends, for the call count.
    "remove-keys-disable-repaired": {"actions": [{"type": "remove-keys", "disable": True}]},
}


def patch_annotation() -> None:
    """GuardDutyMode.resolve_resources sets r['c7n:AccessKeys'] to one dict; remove-keys iterates it as a
    list of key dicts. Wrap the dict in a list, as the action expects (a one-line upstream fix)."""
    from c7n.policy import GuardDutyMode

    original = GuardDutyMode.resolve_resources

    def resolve_resources(self, event):
        resources = original(self, event)
        for r in resources or []:
            if isinstance(r.get("c7n:AccessKeys"), dict):
                r["c7n:AccessKeys"] = [r["c7n:AccessKeys"]]
        return resources

    GuardDutyMode.resolve_resources = resolve_resources


class Context:
    function_name = "custodian-keyguard-peer"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:custodian-keyguard-peer"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def iam_state(iam, seeded) -> dict:
    out = {}
    for user, keys in seeded.users.items():
        try:
            listed = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
        except Exception as e:
            listed = {"error": str(e)}
        out[user] = {
            "keys": {k: listed.get(k, "deleted") for k in keys},
            "inline": iam.list_user_policies(UserName=user)["PolicyNames"],
            "attached": [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--warm", type=int, default=20, help="warm events after the first (0: none)")
    args = parser.parse_args()

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_DEFAULT_REGION="us-east-1")
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - moto only
    os.environ["AWS_REGION"] = "us-east-1"
    if args.variant == "set-policy-deny-all":
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS managed policies (AWSDenyAll) exist
    recorder = CallRecorder().install()

    import boto3
    from moto import mock_aws

    from keyguard.local import emulator

    out: dict = {"variant": args.variant, "policy": None}
    workdir = Path(tempfile.mkdtemp(prefix="keyguard-bench-c7n-"))
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        seeded = emulator.seed(iam, json.loads(EVENT.read_text()))
        named = seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
        out["named_key"] = named
        out["before"] = iam_state(iam, seeded)

        policy = {
            "name": f"keyguard-peer-{args.variant}",
            "resource": "iam-user",
            "mode": {"type": "guard-duty", "role": f"arn:aws:iam::{ACCOUNT}:role/custodian-lambda"},
            **VARIANTS[args.variant],
        }
        out["policy"] = policy
        # What `custodian run` packs into the function (mu.PolicyLambda.get_archive): the policy and
        # execution options (none here: no metrics, no log group, local output).
        (workdir / "config.json").write_text(json.dumps({"execution-options": {}, "policies": [policy]}))
        os.chdir(workdir)

        # Lambda's runtime sends the root logger to CloudWatch; here to /dev/null (the formatting still runs).
        logging.root.addHandler(logging.StreamHandler(open(os.devnull, "w")))  # noqa: SIM115
        t = time.perf_counter()
        from c7n import handler  # what Custodian's generated custodian_policy.py imports

        out["import_after_boto3_s"] = time.perf_counter() - t
        if args.variant.endswith("-repaired"):
            patch_annotation()

        def dispatch(event: dict) -> dict:
            recorder.clear()
            t0 = time.perf_counter()
            error = None
            try:
                handler.dispatch_event(event, Context())
            except Exception as e:
                frame = traceback.extract_tb(e.__traceback__)[-1]
                error = f"{type(e).__name__}: {e} (at {Path(frame.filename).name}:{frame.lineno})"
            elapsed = time.perf_counter() - t0
            calls = list(recorder.calls)
            first = first_containment(calls)
            return {
                "error": error,
                "s": elapsed,
                "calls": [f"{c.service}:{c.name}" for c in calls],
                "before_containment": first,
                "until_containment_s": (calls[first].ended - t0) if first is not None else None,
            }

        event = copy.deepcopy(seeded.event)
        out["cold"] = dispatch(event)
        out["after"] = iam_state(iam, seeded)
        warm = []
        for n in range(args.warm):
            e = copy.deepcopy(seeded.event)
            e["id"] = f"00000000-0000-4000-8000-{n:012d}"
            e["detail"]["id"] = f"peer{n:028d}"
            warm.append(dispatch(e))
        if warm:
            ok = [w for w in warm if not w["error"]]
            out["warm"] = {
                "n": len(warm),
                "errors": len(warm) - len(ok),
                "calls": warm[-1]["calls"],
                "before_containment": warm[-1]["before_containment"],
                "median_ms": sorted(w["s"] for w in warm)[len(warm) // 2] * 1000,
                "until_containment_ms": (
                    sorted(w["until_containment_s"] for w in ok)[len(ok) // 2] * 1000
                    if ok and ok[0]["until_containment_s"] is not None
                    else None
                ),
            }
    import c7n.version

    out["c7n_version"] = c7n.version.version
    os.chdir(HERE)
    # Custodian's Lambda writes its run output under /tmp/<policy name> (init_config forces /tmp).
    for path in (workdir, Path("/tmp") / policy["name"]):  # noqa: S108 - where Custodian writes
        shutil.rmtree(path, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
