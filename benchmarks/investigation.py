"""Investigation of a busy key: 10,000 and 100,000 events, end to end through the investigation function
(emulated account: containment, the SQS hand-off, continuations, SNS), against the LookupEvents stand-in
serving a lazily generated history (keyguard.local.cloudtrail.SyntheticHistory).

CloudTrail allows 2 LookupEvents calls per second per region, 50 events per page: a region's history
cannot be read faster than pages / 2 seconds (the physical floor; regions are read in parallel). The
bench runs the real rate limiter on an emulated clock (each region's thread waits on its own clock, as
parallel threads do), so a 100,000-event history takes seconds to run while its figures are those of a
real run: the rate-limited wall time, the floor, how many invocations of the 300 s function it took
(each stops 60 s before its timeout and continues through the queue), and the peak memory (tracemalloc,
the whole process: investigation, botocore and the emulator together).

Run: .venv/bin/python benchmarks/investigation.py [--json] [--events 10000,100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

KEY_EXAMPLE = "AKIAIOSFODNN7EXAMPLE"
TIMEOUT_S = 300  # template.yaml's InvestigationFunction Timeout
CASES = ((10_000, 3), (100_000, 3), (100_000, 1))
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


class EmulatedClock:
    """clock()/sleep() for the rate limiter and the deadline: each region's thread has its own time (it
    sleeps while the others read, as in a real run); the invocation's main thread is at the latest."""

    def __init__(self) -> None:
        self.base = 0.0
        self.latest = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()

    def _mine(self) -> float | None:
        if threading.current_thread() is threading.main_thread():
            return None
        if getattr(self._local, "base", None) != self.base:
            self._local.base, self._local.t = self.base, self.base
        return self._local.t

    def clock(self) -> float:
        mine = self._mine()
        return self.latest if mine is None else mine

    def sleep(self, seconds: float) -> None:
        mine = self._mine()
        if mine is None:
            self.latest += seconds
            return
        self._local.t = mine + seconds
        with self._lock:
            self.latest = max(self.latest, self._local.t)

    def start_invocation(self) -> None:
        self.base = self.latest


@dataclass
class Context:
    clock: EmulatedClock
    started: float
    function_name: str = "keyguard-InvestigationFunction"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:keyguard-InvestigationFunction"
    memory_limit_in_mb: int = 256
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return int((self.started + TIMEOUT_S - self.clock.clock()) * 1000)


def run(events: int, regions: list[str]) -> dict:
    from keyguard.investigate import core
    from keyguard.local import emulator
    from keyguard.local.cloudtrail import FakeCloudTrail, SyntheticHistory
    from tests.conftest import load_event

    with emulator.emulated_account() as env:
        seeded = emulator.seed(env.clients.iam, load_event("guardduty-iam-user.json"))
        key = seeded.replaced[KEY_EXAMPLE]
        history = SyntheticHistory(events, regions, key, datetime.now(UTC) - timedelta(hours=1))
        trail = FakeCloudTrail(history).install(env.clients.session)
        (rule,) = emulator.route(seeded.event, emulator.load_rules())
        assert emulator.invoke(env, rule, seeded.event).error is None
        env.delivered()
        saved = core.enabled_regions
        core.enabled_regions = lambda clients: list(regions)
        clock = EmulatedClock()
        import handlers.investigate as handler_module

        handler = handler_module.lambda_handler
        sqs = env.clients.get("sqs")
        invocations, parts, real = 0, [], time.perf_counter()
        tracemalloc.start()
        try:
            while True:
                got = sqs.receive_message(QueueUrl=env.investigation_url, MaxNumberOfMessages=1).get("Messages", [])
                if not got:
                    break
                (m,) = got
                sqs.delete_message(QueueUrl=env.investigation_url, ReceiptHandle=m["ReceiptHandle"])
                handler.runtime.reset(clients=env.clients)
                handler.runtime.clock, handler.runtime.sleep = clock.clock, clock.sleep
                clock.start_invocation()
                context = Context(clock, clock.clock(), aws_request_id=str(uuid.uuid4()))
                record = {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"}
                result = handler({"Records": [record]}, context)
                assert result == {"batchItemFailures": []}, result
                invocations += 1
                parts += [json.loads(x["Message"]) for x in env.delivered()]
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            core.enabled_regions = saved
        docs = [json.loads(p["sqs"]) if "sqs" in p else p for p in parts]
        final = docs[-1]
        per_region = {r: history.count(r) for r in regions}
        floor = max(math.ceil(n / 50) for n in per_region.values()) / 2
        return {
            "events": events,
            "regions": len(regions),
            "invocations": invocations,
            "notifications": len(docs),
            "partial_notifications": sum(1 for d in docs if d.get("partial")),
            "reported_total": final["total"],
            "pages": sum(trail.calls.values()),
            "rate_limited_wall_s": round(clock.latest, 1),
            "floor_s": floor,
            "compute_s": round(time.perf_counter() - real, 1),
            "peak_mib": round(peak / 2**20, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
    results = [run(n, REGIONS[:r]) for n, r in CASES]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("investigation of a busy key: LookupEvents at 2 calls/s per region, 50 events per page, 300 s function")
    head = f"{'events':>8} {'regions':>7} {'pages':>6} {'wall s':>8} {'floor s':>8} {'invocations':>11}"
    print(head + f" {'partial msgs':>12} {'reported':>9} {'peak MiB':>9} {'compute s':>9}")
    for r in results:
        print(
            f"{r['events']:>8} {r['regions']:>7} {r['pages']:>6} {r['rate_limited_wall_s']:>8} {r['floor_s']:>8} "
            f"{r['invocations']:>11} {r['partial_notifications']:>12} {r['reported_total']:>9} {r['peak_mib']:>9} "
            f"{r['compute_s']:>9}"
        )
    print("wall s: rate-limited time of the whole investigation (emulated clock); floor s: the slowest region's")
    print("pages / 2 per second; invocations: parts of the first run (each stops 60 s before the 300 s timeout)")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest (the example events)
    main()
