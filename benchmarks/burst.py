"""Burst: 1,000 GuardDuty findings for 1,000 keys at once, with 20 % of IAM attempts throttled.

Each finding names a different user's long-term key (users burst-0000 ... burst-0999 in one emulated
account, in-process moto). Lambda runs the findings in parallel containers: here, threads, each with its
own runtime and boto3 clients (own retry quota) reused from one finding to the next, as a warm container
is. A seeded generator answers a share of every IAM attempt with `Throttling`; botocore's standard retry
mode backs off (really sleeping) and tries again. A handler that still raises is retried by "Lambda" twice
more (async invocation), then counted in the dead-letter queue.

Prints: findings, contained (key Inactive and the deny-all policy on its owner, read from IAM at the
end), announced (a "contained" notification published for it), in the DLQ, lost (neither contained nor
in the DLQ), wall time, API calls and attempts per service, retries, throttled attempts, backoff slept.

Not a timed test: the figures are this machine's (2 cores, moto in-process under the GIL, so the
throughput is CPU-bound; AWS's IAM latency and rate limits are not modelled beyond the injected throttling).

Usage: python benchmarks/burst.py [--events 1000] [--throttle 0.2] [--containers 50] [--seed 5] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.faults import CallLog, RandomFault  # noqa: E402
from tests.reliability import world  # noqa: E402

LAMBDA_ATTEMPTS = 3  # an async invocation and Lambda's two retries (template: MaximumRetryAttempts 2)


class Sleeps:
    """botocore's pause between attempts, really slept, and added up."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.total += seconds
            self.count += 1
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--throttle", type=float, default=0.2, help="share of IAM attempts answered Throttling")
    parser.add_argument("--containers", type=int, default=50, help="Lambda containers running at once")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    import boto3
    import botocore.endpoint
    import botocore.session

    from keyguard.app import Runtime
    from keyguard.aws import Clients
    from keyguard.errors import KeyguardError
    from keyguard.sources import guardduty

    with world.emulated() as env:
        iam = env.clients.iam
        t0 = time.perf_counter()
        keys: dict[str, str] = {}
        for n in range(args.events):
            user = f"burst-{n:04d}"
            iam.create_user(UserName=user)
            keys[iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]] = user
        template = json.loads((ROOT / "events" / "guardduty-iam-user.json").read_text())
        events = []
        for n, (key, user) in enumerate(keys.items()):
            event = copy.deepcopy(template)
            event["id"] = f"00000000-0000-4000-8000-{n:012d}"
            event["detail"]["id"] = f"burst{n:027d}"
            details = event["detail"]["resource"]["accessKeyDetails"]
            details["accessKeyId"], details["userName"] = key, user
            events.append(event)
        # SNS checks and stores every message; a subscriber queue would only slow the loop down
        topic = env.clients.get("sns").create_topic(Name="keyguard-burst")["TopicArn"]
        settings = world.settings_for(env, KEYGUARD_TOPIC_ARN=topic)
        setup = time.perf_counter() - t0

        # Containers: each its own boto3 session (hooks, retry quotas), sharing the loaded service models.
        loader = botocore.session.get_session().get_component("data_loader")
        log = CallLog()
        throttles = []
        containers = []
        for _ in range(args.containers):
            core = botocore.session.get_session()
            core.register_component("data_loader", loader)
            session = boto3.session.Session(botocore_session=core)
            log_for(log, session)
            throttles.append(RandomFault(session, "iam", args.throttle, seed=args.seed + len(throttles)))
            containers.append(Runtime(settings=settings, clients=Clients(session=session)))
        free = list(range(args.containers))
        lock = threading.Lock()
        sleeps = Sleeps()
        botocore.endpoint.time = sleeps  # type: ignore[assignment]

        outcome: dict[str, str] = {}
        lambda_attempts: Counter = Counter()

        def handle(event: dict[str, Any]) -> None:
            with lock:
                slot = free.pop()
            try:
                runtime = containers[slot]
                key = event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
                for attempt in range(1, LAMBDA_ATTEMPTS + 1):
                    lambda_attempts[attempt] += 1
                    try:
                        result = runtime.handle(event, world.context_for("guardduty"), guardduty.extract)
                        outcome[key] = result["responses"][0]["outcome"]
                        return
                    except KeyguardError as e:
                        outcome[key] = f"raised {type(e).__name__}"
                outcome[key] = "dead-letter queue"
            finally:
                with lock:
                    free.append(slot)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.containers) as pool:
            list(pool.map(handle, events))
        wall = time.perf_counter() - t0
        botocore.endpoint.time = time  # type: ignore[assignment]
        state = world.iam_state()  # what IAM shows after the burst
        docs = world.published(topic)  # what SNS accepted on the topic
    return report(args, state, docs, keys, outcome, log, throttles, sleeps, lambda_attempts, wall, setup)


def log_for(log: Any, session: Any) -> None:
    """Count API calls (before-call: once per call) and attempts (before-send: once per try)."""
    session.events.register("before-call", log._record, unique_id=f"calllog-{id(log)}")

    def attempt(request: Any, event_name: str = "", **_: Any) -> None:
        with log._lock:
            log.attempts[event_name.split(".")[1]] += 1

    if not hasattr(log, "attempts"):
        log.attempts = Counter()
    session.events.register("before-send", attempt, unique_id=f"attempts-{id(log)}")


def report(
    args: Any,
    state: dict[str, Any],
    docs: list[dict[str, Any]],
    keys: dict[str, str],
    outcome: dict[str, str],
    log: Any,
    throttles: list[Any],
    sleeps: Sleeps,
    lambda_attempts: Counter,
    wall: float,
    setup: float,
) -> int:
    contained = sum(
        1
        for key, user in keys.items()
        if state[f"user/{user}"]["keys"].get(key) == "Inactive"
        and "keyguard-quarantine" in state[f"user/{user}"]["policies"]
    )
    announced = {doc["accessKeyId"] for doc in docs if doc["outcome"] == "contained"}
    dlq = sum(1 for o in outcome.values() if o == "dead-letter queue")
    lost = sum(
        1
        for key, user in keys.items()
        if outcome.get(key) != "dead-letter queue"
        and not (state[f"user/{user}"]["keys"].get(key) == "Inactive" and key in announced)
    )
    calls = Counter(service for service, _ in log.services)
    attempts = log.attempts
    faulted = sum(t.faulted for t in throttles)
    iam_attempts = sum(t.attempts for t in throttles)
    figures = {
        "findings": len(keys),
        "contained": contained,
        "announced": len(announced),
        "messages": len(docs),
        "dead_letter_queue": dlq,
        "lost": lost,
        "wall_seconds": round(wall, 2),
        "findings_per_second": round(len(keys) / wall, 1),
        "containers": args.containers,
        "throttle_rate": args.throttle,
        "api_calls": dict(calls),
        "attempts": dict(attempts),
        "retries": sum(attempts.values()) - sum(calls.values()),
        "iam_attempts_throttled": faulted,
        "iam_throttled_share": round(faulted / iam_attempts, 3) if iam_attempts else 0,
        "backoff_pauses": sleeps.count,
        "backoff_slept_seconds": round(sleeps.total, 1),
        "lambda_invocations": dict(lambda_attempts),
        "setup_seconds": round(setup, 1),
        "outcomes": dict(Counter(outcome.values())),
    }
    print(
        f"burst: {figures['findings']} GuardDuty findings for {len(keys)} keys, {args.containers} containers, "
        f"{args.throttle:.0%} of IAM attempts throttled (seed {args.seed})"
    )
    print(f"  contained            {contained} (key Inactive + deny-all on its owner, read from IAM)")
    print(f"  announced            {len(announced)} (a 'contained' message on the topic; {len(docs)} messages in all)")
    print(f"  dead-letter queue    {dlq} (still failing after Lambda's 2 retries)")
    print(f"  lost                 {lost} (neither contained and announced, nor in the DLQ)")
    print(f"  wall time            {wall:.1f} s ({figures['findings_per_second']} findings/s; setup {setup:.1f} s)")
    print(f"  API calls            {sum(calls.values())}: " + ", ".join(f"{s} {n}" for s, n in sorted(calls.items())))
    print(
        f"  attempts             {sum(attempts.values())}: "
        + ", ".join(f"{s} {n}" for s, n in sorted(attempts.items()))
    )
    print(
        f"  retries (botocore)   {figures['retries']}; IAM attempts throttled {faulted} of {iam_attempts} "
        f"({figures['iam_throttled_share']:.1%}); backoff {sleeps.count} pauses, {sleeps.total:.1f} s slept in all"
    )
    print(f"  Lambda invocations   {dict(lambda_attempts)} (attempt number: count)")
    print(f"  outcomes             {figures['outcomes']}")
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0 if lost == 0 and contained == len(keys) else 1


if __name__ == "__main__":
    sys.exit(main())
