"""Scale: a Health event naming 50 keys; 1,000 GuardDuty findings through one warm container (events/s);
memory (peak RSS, and what keyguard's own code keeps per event, by tracemalloc).

Against in-process moto, so absolute figures are this machine's CPU, not AWS latency: read events/s as
"keyguard + botocore + moto per event". The topic's SQS subscriber is removed for these loops (moto
would deliver to it inside Publish and keep every message; real SNS answers before delivering).

Usage: python benchmarks/scale.py [--keys 50] [--events 1000] [--json]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import resource
import sys
import time
import tracemalloc
from typing import Any

import common
from calllog import CallRecorder

OWN_CODE = ("/keyguard/", "/aws_lambda_powertools/", "/handlers/")


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def health_keys(recorder: CallRecorder, keys: int) -> dict[str, Any]:
    from keyguard.local import emulator

    base = common.load_event("health-credentials-exposed.json")
    with common.account() as env:
        common.drop_subscribers(env)
        (rule,) = emulator.route(base, common.rules())
        handler = common.Handler(env, rule)
        iam = env.clients.iam
        iam.create_user(UserName="warm-up")
        warm = copy.deepcopy(base)
        warm["detail"]["affectedEntities"] = [
            {"entityValue": iam.create_access_key(UserName="warm-up")["AccessKey"]["AccessKeyId"]}
        ]
        handler(warm)  # a warm container: imports and clients are in place

        event = copy.deepcopy(base)
        event["detail"]["affectedEntities"] = [{"entityValue": f"AKIABENCH{n:011d}"} for n in range(keys)]
        event["resources"] = [e["entityValue"] for e in event["detail"]["affectedEntities"]]
        event["detail"]["eventArn"] += "-bench"
        seeded = emulator.seed(env.clients.iam, event)
        recorder.clear()
        t0 = time.perf_counter()
        result, error = handler(seeded.event)
        total = time.perf_counter() - t0
        calls = list(recorder.calls)
        denies = [c.ended - t0 for c in calls if c.operation == "PutUserPolicy" and c.status == 200]
        deactivations = [c.ended - t0 for c in calls if c.operation == "UpdateAccessKey" and c.status == 200]
        last_deny = max((i for i, c in enumerate(calls) if c.operation == "PutUserPolicy"), default=len(calls))
        ahead: dict[str, int] = {}
        for c in calls[:last_deny]:
            if c.operation not in ("UpdateAccessKey", "PutUserPolicy", "GetAccessKeyLastUsed"):
                ahead[c.operation] = ahead.get(c.operation, 0) + 1
        published = [c.ended - t0 for c in calls if c.operation == "Publish"]
        state = env.iam_state(seeded)
        named = set(seeded.replaced.values())
        touched = {
            "named_inactive": sum(
                1 for s in state.values() for k, v in s.get("keys", {}).items() if k in named and v == "Inactive"
            ),
            "other_keys_active": sum(
                1 for s in state.values() for k, v in s.get("keys", {}).items() if k not in named and v == "Active"
            ),
            "other_keys": sum(1 for s in state.values() for k in s.get("keys", {}) if k not in named),
        }
    ops: dict[str, int] = {}
    for c in calls:
        ops[c.operation] = ops.get(c.operation, 0) + 1
    return {
        "keys": keys,
        "error": error,
        "outcomes": sorted({r["outcome"] for r in (result or {}).get("responses", [])}),
        "total_s": total,
        "per_key_ms": total / keys * 1000,
        "calls": len(calls),
        "calls_by_operation": ops,
        "first_deny_ms": min(denies) * 1000 if denies else None,
        "last_deny_ms": max(denies) * 1000 if denies else None,
        "last_deactivation_ms": max(deactivations) * 1000 if deactivations else None,
        "first_notification_ms": min(published) * 1000 if published else None,
        "non_containment_calls_ahead_of_last_deny": ahead,
        "iam_state": touched,
    }


def guardduty_loop(recorder: CallRecorder, events: int, users: int = 100, traced: int = 50) -> dict[str, Any]:
    from keyguard.local import emulator

    base = common.load_event("guardduty-iam-user.json")
    with common.account() as env:
        common.drop_subscribers(env)
        seeded = emulator.seed(env.clients.iam, base)
        (rule,) = emulator.route(seeded.event, common.rules())
        handler = common.Handler(env, rule)
        iam = env.clients.iam
        pairs = []
        for u in range(users):
            name = f"scale-user-{u:03d}"
            iam.create_user(UserName=name)
            pairs.append((name, iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]))

        def event(n: int) -> dict[str, Any]:
            e = common.guardduty_variant(seeded.event, n)
            details = e["detail"]["resource"]["accessKeyDetails"]
            details["userName"], details["accessKeyId"] = pairs[n % users]
            return e

        for n in range(10):
            handler(event(900_000 + n))
        batch = [event(n) for n in range(events)]  # built ahead: event construction is not keyguard's
        recorder.enabled = False
        gc.collect()
        rss_before = maxrss_mib()
        latencies, failures = [], 0
        t0 = time.perf_counter()
        for e in batch:
            t = time.perf_counter()
            result, error = handler(e)
            latencies.append(time.perf_counter() - t)
            if error or result["responses"][0]["notification"] != "sent":
                failures += 1
        wall = time.perf_counter() - t0
        rss_after = maxrss_mib()
        notifier = handler.fn.runtime.notifier
        sent = getattr(notifier, "sent", [])
        kept = len(sent)
        kept_bytes = sum(len(json.dumps(m)) for m in sent)

        # What stays allocated per event, by whose code allocated it (tracemalloc slows the loop: separate).
        more = [event(500_000 + n) for n in range(traced)]
        gc.collect()
        tracemalloc.start(8)
        snap0 = tracemalloc.take_snapshot()
        for e in more:
            handler(e)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        recorder.enabled = True
    own, other, by_site = 0, 0, {}
    for stat in snap1.compare_to(snap0, "traceback"):
        where = _owner(stat.traceback)
        if where is None:
            other += stat.size_diff
        else:
            own += stat.size_diff
            by_site[where] = by_site.get(where, 0) + stat.size_diff
    sites = sorted(((b, w) for w, b in by_site.items() if b > 0), reverse=True)
    return {
        "events": events,
        "users": users,
        "failures": failures,
        "wall_s": wall,
        "events_per_s": events / wall,
        "latency": common.summary(latencies),
        "maxrss_before_mib": rss_before,
        "maxrss_after_mib": rss_after,
        "notifier_sent_kept": kept,
        "notifier_sent_bytes": kept_bytes,
        "traced_events": traced,
        "retained_own_bytes_per_event": own / traced,
        "retained_other_bytes_per_event": other / traced,
        "traced_peak_mib": traced_peak / 2**20,
        "top_own_sites": [{"bytes_per_event": b / traced, "where": w} for b, w in sites[:5]],
    }


def _owner(traceback: Any) -> str | None:
    """The innermost frame that is keyguard's (or Powertools') code, unless moto or botocore comes first:
    json.dumps called by keyguard is keyguard's; moto's bookkeeping is moto's."""
    for frame in reversed(traceback):  # most recent call first
        name = frame.filename
        if "/moto/" in name or "/botocore/" in name or "/boto3/" in name:
            return None
        if any(p in name for p in OWN_CODE):
            return f"{name.split('/src/')[-1].split('site-packages/')[-1]}:{frame.lineno}"
    return None


def measure(keys: int, events: int) -> dict[str, Any]:
    recorder = CallRecorder().install()
    health = health_keys(recorder, keys)
    loop = guardduty_loop(recorder, events)
    return {"health": health, "guardduty_loop": loop, "maxrss_mib": maxrss_mib()}


def report(r: dict[str, Any]) -> None:
    h, g = r["health"], r["guardduty_loop"]
    print(f"\nscale: one Health event naming {h['keys']} keys (warm container)")
    print(f"  outcomes {', '.join(h['outcomes'])}; error: {h['error'] or 'none'}")
    print(
        f"  handler {h['total_s'] * 1000:.0f} ms ({h['per_key_ms']:.1f} ms per key),"
        f" {h['calls']} calls: {h['calls_by_operation']}"
    )
    print(
        f"  first deny {h['first_deny_ms']:.1f} ms, last deny {h['last_deny_ms']:.1f} ms,"
        f" first notification {h['first_notification_ms']:.1f} ms"
    )
    ahead = ", ".join(f"{k} x{v}" for k, v in h["non_containment_calls_ahead_of_last_deny"].items()) or "none"
    print(f"  calls other than lookup/deactivate/deny ahead of the last key's deny: {ahead}")
    s = h["iam_state"]
    print(
        f"  IAM after: {s['named_inactive']}/{h['keys']} named keys Inactive;"
        f" {s['other_keys_active']}/{s['other_keys']} other keys still Active"
    )
    print(f"\nscale: {g['events']} GuardDuty findings, one warm container, {g['users']} users")
    lat = g["latency"]
    print(
        f"  {g['events_per_s']:.1f} events/s ({g['wall_s']:.1f} s); per event median {lat['median_ms']:.1f} ms,"
        f" p90 {lat['p90_ms']:.1f} ms; failures {g['failures']}"
    )
    print(
        f"  peak RSS {g['maxrss_before_mib']:.0f} MiB before the loop, {g['maxrss_after_mib']:.0f} MiB after"
        " (process, moto included)"
    )
    print(
        f"  kept per event after the loop (tracemalloc, {g['traced_events']} events): keyguard + Powertools"
        f" {g['retained_own_bytes_per_event']:.0f} B, moto/botocore/other {g['retained_other_bytes_per_event']:.0f} B"
    )
    print(
        f"  Notifier.sent holds {g['notifier_sent_kept']} messages after the loop"
        f" ({g['notifier_sent_bytes'] / 2**20:.1f} MiB of message text)"
    )
    for site in g["top_own_sites"]:
        print(f"    {site['bytes_per_event']:>8.0f} B/event  {site['where']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    common.emit(measure(args.keys, args.events), args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
