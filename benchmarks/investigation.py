"""Investigation lookup cost: a 3-region, 500-event history for one key, against the LookupEvents
stand-in (keyguard.local.cloudtrail) with the real rate limiter (2 calls/s per region) and real sleeps.

Prints LookupEvents calls and wall time, plain and with 20 % of calls throttled (botocore's standard
retries recover them). Run: .venv/bin/python benchmarks/investigation.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta

import boto3

from keyguard.aws import Clients
from keyguard.investigate.trail import lookup
from keyguard.local.cloudtrail import FakeCloudTrail

KEY = "AKIAIOSFODNN7EXAMPLE"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def history(n: int, now: datetime) -> list[dict]:
    return [
        {
            "eventTime": (now - timedelta(hours=2, seconds=i * 11)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventID": f"00000000-0000-0000-0000-{i:012d}",
            "eventName": "DescribeInstances",
            "eventSource": "ec2.amazonaws.com",
            "awsRegion": REGIONS[i % len(REGIONS)],
            "readOnly": True,
            "userIdentity": {"type": "IAMUser", "accessKeyId": KEY, "userName": "alice"},
        }
        for i in range(n)
    ]


def run(events: int, throttle_share: float) -> dict:
    now = datetime.now(UTC)
    rng = random.Random(7)  # noqa: S311 - a repeatable simulation, not cryptography
    clients = Clients(boto3.session.Session(region_name="us-east-1"))
    throttle = (lambda region, n: rng.random() < throttle_share) if throttle_share else None
    trail = FakeCloudTrail(history(events, now), throttle=throttle).install(clients.session)
    began = time.perf_counter()
    found = lookup(clients, KEY, now - timedelta(days=90), now, REGIONS)
    return {
        "events": events,
        "regions": len(REGIONS),
        "throttled_share": throttle_share,
        "found": len(found.records),
        "pages": sum(found.calls.values()),
        "http_calls": sum(trail.calls.values()),
        "throttled": sum(trail.throttled.values()),
        "incomplete_regions": sorted(found.errors),
        "seconds": round(time.perf_counter() - began, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")  # the stand-in answers; nothing leaves
    results = [run(args.events, 0.0), run(args.events, 0.2)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"investigation lookup: {args.events} events of one key in {len(REGIONS)} regions, 2 calls/s per region")
    print(f"{'throttled':>10} {'found':>6} {'pages':>6} {'http calls':>11} {'throttled':>10} {'seconds':>8}")
    for r in results:
        print(
            f"{r['throttled_share']:>10.0%} {r['found']:>6} {r['pages']:>6} {r['http_calls']:>11} "
            f"{r['throttled']:>10} {r['seconds']:>8.2f}"
            + (f"  INCOMPLETE {r['incomplete_regions']}" if r["incomplete_regions"] else "")
        )


if __name__ == "__main__":
    main()
