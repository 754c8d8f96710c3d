"""Warm overhead: the GuardDuty handler against in-process moto, side by side with bare boto3 calls that
perform the same containment and notification, in the same run and the same emulated account.

One warm container: the handler is imported, its clients made and the idempotency utility imported
before timing starts (warm-up invocations). Every timed invocation is a new finding (new finding id), so
each one is contained and announced, never reported as a duplicate. The three contenders are timed in
rotating order in the same loop, on the same boto3 clients:

* handler    keyguard's Lambda handler (Powertools Logger + Metrics, parse, plan, contain, record,
             de-duplicated notification), logs and EMF metrics written to /dev/null as Lambda writes stdout;
* bare       the minimum a responder must do: read key and user from the event, UpdateAccessKey
             (Inactive), PutUserPolicy (deny-all), Publish (a short JSON message);
* same-calls the handler's own AWS calls (recorded in warm-up, replayed in the same order with plain
             boto3: TagUser, DynamoDB PutItem/UpdateItem, ...), with none of keyguard's Python around them.

The topic's SQS subscriber is removed first (moto would deliver to it inside Publish; real SNS answers
before delivering). handler/bare is the target (<= 1.3x); handler/same-calls isolates keyguard's own
code; the time until the key is deactivated and until the deny lands (the exposure window) is compared
directly.

Usage: python benchmarks/warm.py [--iterations N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import common
from calllog import CallRecorder

TARGET_RATIO = 1.3
DENY_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})


class Contender:
    def __init__(self, name: str, run: Any) -> None:
        self.name, self.run = name, run
        self.total: list[float] = []
        self.deactivated: list[float] = []  # until UpdateAccessKey landed
        self.denied: list[float] = []  # until PutUserPolicy landed
        self.notified: list[float] = []  # until Publish landed
        self.calls: list[str] = []
        self.in_calls: list[float] = []  # time inside AWS calls (botocore + moto)
        self.building: list[float] = []  # of which botocore built and signed the requests (client side)
        self.per_op: dict[str, list[float]] = {}


def replay(env: Any, user: str, key: str, ops: list[str]) -> tuple[Any, list[str]]:
    """A plain-boto3 function making `ops` in order (what the handler called), and the ops it cannot."""
    iam, ddb, sns = env.clients.iam, env.clients.get("dynamodb"), env.clients.sns(env.topic_arn)
    sqs = env.clients.get("sqs")
    tags = [{"Key": f"bench:{k}", "Value": "2025-03-10T14:10:00Z"} for k in ("at", "incident", "reason", "leaked")]
    table = env.table

    def put_item(n: int) -> None:
        item = {"id": {"S": f"same-calls#{n}"}, "status": {"S": "INPROGRESS"}, "expiration": {"N": "9999999999"}}
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(id)")

    def update_item(n: int) -> None:
        ddb.update_item(
            TableName=table,
            Key={"id": {"S": f"same-calls#{n}"}},
            UpdateExpression="SET #s = :s, #d = :d",
            ExpressionAttributeNames={"#s": "status", "#d": "data"},
            ExpressionAttributeValues={":s": {"S": "COMPLETED"}, ":d": {"S": '{"MessageId": "x"}'}},
        )

    table_ops = {
        "UpdateAccessKey": lambda n: iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive"),
        "PutUserPolicy": lambda n: iam.put_user_policy(
            UserName=user, PolicyName="keyguard-quarantine", PolicyDocument=DENY_ALL
        ),
        "TagUser": lambda n: iam.tag_user(UserName=user, Tags=tags),
        "GetAccessKeyLastUsed": lambda n: iam.get_access_key_last_used(AccessKeyId=key),
        "GetUser": lambda n: iam.get_user(UserName=user),
        "PutUserPermissionsBoundary": lambda n: iam.put_user_permissions_boundary(
            UserName=user, PermissionsBoundary=env.deny_all_policy_arn
        ),
        "ListAccessKeys": lambda n: iam.list_access_keys(UserName=user),
        "GetUserPolicy": lambda n: iam.get_user_policy(UserName=user, PolicyName="keyguard-quarantine"),
        "TransactWriteItems": lambda n: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": env.ledger_table, "Item": {"pk": {"S": f"bench#{n}"}, "sk": {"S": "x"}}}}
            ]
        ),
        "ListUserTags": lambda n: iam.list_user_tags(UserName=user),
        "PutItem": put_item,
        "UpdateItem": update_item,
        "GetItem": lambda n: ddb.get_item(TableName=table, Key={"id": {"S": f"same-calls#{n}"}}),
        "Publish": lambda n: sns.publish(TopicArn=env.topic_arn, Subject="same-calls", Message=f'{{"n": {n}}}'),
        "SendMessage": lambda n: sqs.send_message(QueueUrl=env.inbox_url, MessageBody=f'{{"n": {n}}}'),
    }
    missing = [op for op in ops if op not in table_ops]
    steps = [table_ops[op] for op in ops if op in table_ops]

    def run(event: dict[str, Any], n: int) -> None:
        for step in steps:
            step(n)

    return run, missing


def measure(iterations: int, warmup: int = 10) -> dict[str, Any]:
    from keyguard.local import emulator

    recorder = CallRecorder().install()
    with common.account() as env:
        common.drop_subscribers(env)
        seeded = emulator.seed(env.clients.iam, common.load_event("guardduty-iam-user.json"))
        (rule,) = emulator.route(seeded.event, common.rules())
        handler = common.Handler(env, rule)
        user, key = "alice", seeded.replaced["AKIAIOSFODNN7EXAMPLE"]
        iam, sns = env.clients.iam, env.clients.sns(env.topic_arn)

        def bare(event: dict[str, Any], n: int) -> None:
            details = event["detail"]["resource"]["accessKeyDetails"]
            u, k = details["userName"], details["accessKeyId"]
            iam.update_access_key(UserName=u, AccessKeyId=k, Status="Inactive")
            iam.put_user_policy(UserName=u, PolicyName="keyguard-quarantine", PolicyDocument=DENY_ALL)
            text = json.dumps({"accessKeyId": k, "user": u, "finding": event["detail"]["id"], "action": "contained"})
            sns.publish(TopicArn=env.topic_arn, Subject=f"contained {k} ({u})", Message=text)

        def run_handler(event: dict[str, Any], n: int) -> None:
            result, error = handler(event)
            notice = (result or {}).get("responses", [{}])[0].get("notification")
            if error or notice != "sent":
                raise RuntimeError(f"handler did not contain and announce: {error or result}")

        # Warm-up: imports on the notification path, client endpoints, moto's lazy state.
        recorder.clear()
        for n in range(warmup):
            run_handler(common.guardduty_variant(seeded.event, 10_000 + n), n)
            handler.forget_sent()
        recorder.clear()
        run_handler(common.guardduty_variant(seeded.event, 20_000), 0)
        handler_ops = [c.operation for c in recorder.calls]
        same, missing = replay(env, user, key, handler_ops)
        contenders = [Contender("handler", run_handler), Contender("bare", bare), Contender("same-calls", same)]
        for c in contenders[1:]:
            for n in range(warmup):
                c.run(common.guardduty_variant(seeded.event, 30_000 + n), 30_000 + n)

        for n in range(iterations):
            event = common.guardduty_variant(seeded.event, n)
            shift = n % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                recorder.clear()
                t0 = time.perf_counter()
                c.run(event, n)
                c.total.append(time.perf_counter() - t0)
                landed = {}
                c.in_calls.append(sum(call.ended - call.started for call in recorder.calls if call.ended))
                c.building.append(sum(call.sent - call.started for call in recorder.calls if call.sent))
                for call in recorder.calls:
                    if call.ended is not None:
                        c.per_op.setdefault(call.operation, []).append(call.ended - call.started)
                    if call.ended is not None and call.status is not None and call.status < 300:
                        landed.setdefault(call.operation, call.ended - t0)
                c.deactivated.append(landed.get("UpdateAccessKey", float("nan")))
                c.denied.append(landed.get("PutUserPolicy", float("nan")))
                c.notified.append(landed.get("Publish", float("nan")))
                if not c.calls:
                    c.calls = [call.operation for call in recorder.calls]
            handler.forget_sent()

    out: dict[str, Any] = {"iterations": iterations, "target_ratio": TARGET_RATIO, "contenders": {}}
    for c in contenders:
        out["contenders"][c.name] = {
            "calls": c.calls,
            "total": common.summary(c.total),
            "until_deactivated": common.summary(c.deactivated),
            "until_denied": common.summary(c.denied),
            "until_notified": common.summary(c.notified),
            "in_calls": common.summary(c.in_calls),
            "building_requests": common.summary(c.building),
            "outside_calls": common.summary([t - i for t, i in zip(c.total, c.in_calls, strict=True)]),
            "per_call_ms": {op: statistics.median(v) * 1000 for op, v in c.per_op.items()},
        }
    med = {c.name: out["contenders"][c.name]["total"]["median_ms"] for c in contenders}
    h = out["contenders"]["handler"]
    b = out["contenders"]["bare"]
    out["ratio_vs_bare"] = med["handler"] / med["bare"]
    out["ratio_vs_same_calls"] = med["handler"] / med["same-calls"]
    out["ratio_until_deactivated"] = h["until_deactivated"]["median_ms"] / b["until_deactivated"]["median_ms"]
    out["ratio_until_denied"] = h["until_denied"]["median_ms"] / b["until_denied"]["median_ms"]
    out["keyguard_python_ms"] = h["outside_calls"]["median_ms"]
    out["bare_python_ms"] = b["outside_calls"]["median_ms"]
    out["extra_calls"] = _extra(h["calls"], b["calls"])
    out["pass"] = out["ratio_vs_bare"] <= TARGET_RATIO
    out["same_calls_missing"] = missing
    # What the ratio becomes when each call costs `extra` ms more than here (network + service time):
    # a model from the measured figures, not a measurement.
    nh, nb = len(h["calls"]), len(b["calls"])
    out["ratio_model"] = {
        str(extra): (med["handler"] + nh * extra) / (med["bare"] + nb * extra) for extra in (0, 10, 30, 100)
    }
    out["ratio_model_until_denied"] = {
        str(extra): (h["until_denied"]["median_ms"] + 2 * extra) / (b["until_denied"]["median_ms"] + 2 * extra)
        for extra in (0, 10, 30, 100)
    }
    return out


def _extra(handler_calls: list[str], bare_calls: list[str]) -> list[str]:
    left = list(bare_calls)
    extra = []
    for op in handler_calls:
        if op in left:
            left.remove(op)
        else:
            extra.append(op)
    return extra


def report(r: dict[str, Any]) -> None:
    print(f"\nwarm overhead: GuardDuty finding, one warm container, {r['iterations']} new findings each, ms")
    head = f"{'':<11} {'median':>7} {'p10':>7} {'p90':>7} | {'in calls':>8} {'build':>6} {'outside':>7} |"
    print(f"{head} {'deactivated':>11} {'denied':>7} {'notified':>8}")
    for name, c in r["contenders"].items():
        t = c["total"]
        print(
            f"{name:<11} {t['median_ms']:>7.2f} {t['p10_ms']:>7.2f} {t['p90_ms']:>7.2f} |"
            f" {c['in_calls']['median_ms']:>8.2f} {c['building_requests']['median_ms']:>6.2f}"
            f" {c['outside_calls']['median_ms']:>7.2f} |"
            f" {c['until_deactivated']['median_ms']:>11.2f} {c['until_denied']['median_ms']:>7.2f}"
            f" {c['until_notified']['median_ms']:>8.2f}"
        )
    print("  in calls: inside AWS calls (botocore + moto), of which build: botocore building and signing the")
    print("  requests (client side, paid against AWS too); outside: everything else (the code around the calls)")
    print("  deactivated / denied / notified: from the event until UpdateAccessKey / PutUserPolicy / Publish landed")
    for name, c in r["contenders"].items():
        per = ", ".join(f"{op} {ms:.1f}" for op, ms in c["per_call_ms"].items())
        print(f"  {name}: {per}")
    verdict = "PASS" if r["pass"] else "FAIL"
    print(f"handler / bare        {r['ratio_vs_bare']:.2f}x   target <= {r['target_ratio']}x: {verdict}")
    print(f"handler / same-calls  {r['ratio_vs_same_calls']:.2f}x")
    print(f"until deactivated     {r['ratio_until_deactivated']:.2f}x   until denied {r['ratio_until_denied']:.2f}x")
    print(f"calls the handler makes on top of bare: {', '.join(r['extra_calls']) or 'none'}")
    if r["same_calls_missing"]:
        print(f"  same-calls could not replay: {', '.join(r['same_calls_missing'])}")
    model = "  ".join(f"+{k} ms: {v:.2f}x" for k, v in r["ratio_model"].items())
    print(f"model, handler/bare if each call took longer by   {model}")
    model = "  ".join(f"+{k} ms: {v:.2f}x" for k, v in r["ratio_model_until_denied"].items())
    print(f"model, until denied, each call longer by          {model}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    common.emit(measure(args.iterations), args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
