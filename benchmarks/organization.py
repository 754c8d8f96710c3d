"""Organization burst: 1,000 GuardDuty findings over 50 member accounts, contained by the central stack.

One emulated organization (in-process moto, accounts by id): 50 members with the member role of
templates/member-global.yaml, 20 users with a key each per member, and one finding per key as the
GuardDuty delegated administrator delivers it (the key's account in detail.accountId, regions in turn).
Lambda runs findings in parallel containers: here, threads, each with its own runtime, botocore session
and member-credential cache, reused from one finding to the next as a warm container is.

Prints: findings, contained (the key Inactive in its own account, read from IAM at the end), events/s,
AssumeRole calls (total, and the most any container made for one account: at most one per account per
credential lifetime), DescribeAccount calls, the calls before the first deny for a cold and for a cached
account, and when each deny landed (from the burst's start, and from its finding's start).

Not a timed test: the figures are this machine's (2 cores, moto in-process under the GIL).

Usage: python benchmarks/organization.py [--accounts 50] [--events 1000] [--containers 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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

DENY = ("UpdateAccessKey", "PutUserPolicy", "PutRolePolicy")


class Calls:
    """Per finding (each runs in one thread): the calls it made, and when its key's deny landed."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.assumed: Counter[tuple[int, str]] = Counter()  # (container, account) -> AssumeRole calls
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hook(self, emitter: Any) -> None:
        emitter.register("before-call", self._before, unique_id="org-bench-before")
        emitter.register("after-call", self._after, unique_id="org-bench-after")

    def start(self, container: int) -> None:
        self.local.ops, self.local.denied, self.local.container = [], None, container

    def _before(self, model: Any, params: Any = None, **_: Any) -> None:
        ops = getattr(self.local, "ops", None)
        if ops is None:
            return
        ops.append(model.name)
        with self._lock:
            self.counts[model.name] += 1
            if model.name == "AssumeRole":
                body = (params or {}).get("body") or {}  # the serialized request (query protocol: a dict)
                account = str(body.get("RoleArn", "::::?") if isinstance(body, dict) else "::::?").split(":")[4]
                self.assumed[(self.local.container, account)] += 1

    def _after(self, model: Any, http_response: Any, **_: Any) -> None:
        if model.name in DENY and http_response.status_code < 300 and getattr(self.local, "denied", 1) is None:
            self.local.denied = time.perf_counter()

    def before_first_deny(self) -> list[str]:
        ops = self.local.ops
        first = next((i for i, op in enumerate(ops) if op in DENY), len(ops))
        return ops[:first]


def _ms(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    q = statistics.quantiles(ms, n=10) if len(ms) >= 2 else [ms[0]] * 9
    return {"median_ms": statistics.median(ms), "p90_ms": q[-1], "max_ms": ms[-1], "min_ms": ms[0]}


def measure(n_accounts: int, n_events: int, n_containers: int) -> dict[str, Any]:
    import botocore.session

    from keyguard.app import Runtime
    from keyguard.aws import Clients
    from keyguard.local import emulator
    from keyguard.org.accounts import Organization as Accounts
    from keyguard.org.settings import OrgSettings
    from keyguard.settings import Settings
    from keyguard.sources import guardduty
    from tests.organization import world

    per_account = max(1, n_events // n_accounts)
    os.environ.update(POWERTOOLS_METRICS_DISABLED="true")
    with emulator.emulated_account() as env:
        t0 = time.perf_counter()
        org = world.build(env, names=tuple(f"m{n:02d}" for n in range(n_accounts)))
        os.environ.update(org.environ())
        template = json.loads((ROOT / "events/organization/guardduty-delegated-admin-iam-user.json").read_text())
        keys: dict[str, str] = {}  # key -> account
        per_member: list[list[dict[str, Any]]] = []
        for a, account in enumerate(org.members.values()):
            iam = org.admin(account)
            mine = []
            for u in range(per_account):
                user = f"burst-{u:03d}"
                iam.create_user(UserName=user)
                key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
                keys[key] = account
                region = world.REGIONS[(a + u) % len(world.REGIONS)]
                event = world.retarget(template, account, world.CENTRAL, region)
                event["id"] = f"00000000-0000-4000-8000-{a:04d}{u:08d}"
                event["detail"]["id"] = f"orgburst{a:04d}{u:020d}"
                event["detail"]["resource"]["accessKeyDetails"].update(accessKeyId=key, userName=user)
                mine.append(event)
            per_member.append(mine)
        events = [e for batch in zip(*per_member, strict=True) for e in batch]  # accounts interleaved
        topic = env.clients.get("sns").create_topic(Name="keyguard-org-burst")["TopicArn"]
        settings = Settings(topic_arn=topic, idempotency_table=env.table)
        setup = time.perf_counter() - t0

        calls = Calls()
        loader = botocore.session.get_session().get_component("data_loader")
        containers = []
        for _ in range(n_containers):
            core = botocore.session.get_session()
            core.register_component("data_loader", loader)
            calls.hook(core.get_component("event_emitter"))
            clients = Clients(session=core)
            world.stand_in(org, clients.get("sts"))
            calls.hook(clients.get("sts").meta.events)
            runtime = Runtime(settings=settings, clients=clients)

            def prepare(session: Any, loader: Any = loader) -> None:
                session.register_component("data_loader", loader)
                calls.hook(session.get_component("event_emitter"))

            runtime._accounts = Accounts(clients, OrgSettings.from_env(), prepare=prepare)
            containers.append(runtime)
        free = list(range(n_containers))
        lock = threading.Lock()
        context = emulator.FakeContext("GuardDutyFunction", f"arn:aws:lambda:us-east-1:{world.CENTRAL}:function:kg")
        rows: list[dict[str, Any]] = []
        seen: set[tuple[int, str]] = set()

        def handle(event: dict[str, Any]) -> None:
            with lock:
                slot = free.pop()
            try:
                account = event["detail"]["accountId"]
                cold = (slot, account) not in seen
                seen.add((slot, account))
                calls.start(slot)
                started = time.perf_counter()
                error = None
                try:
                    containers[slot].handle(event, context, guardduty.extract)  # no logger: nothing printed
                except Exception as e:
                    error = f"{type(e).__name__}: {e}"[:200]
                denied = calls.local.denied
                rows.append(
                    {
                        "cold": cold,
                        "error": error,
                        "before": calls.before_first_deny(),
                        "since_start": None if denied is None else denied - burst_start,
                        "since_event": None if denied is None else denied - started,
                    }
                )
            finally:
                with lock:
                    free.append(slot)

        burst_start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n_containers) as pool:
            list(pool.map(handle, events))
        wall = time.perf_counter() - burst_start

        contained = sum(
            1
            for key, account in keys.items()
            if any(
                k["AccessKeyId"] == key and k["Status"] == "Inactive"
                for k in org.admin(account).list_access_keys(
                    UserName=next(
                        e for e in events if e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] == key
                    )["detail"]["resource"]["accessKeyDetails"]["userName"]
                )["AccessKeyMetadata"]
            )
        )
    cold_rows = [r for r in rows if r["cold"]]
    warm_rows = [r for r in rows if not r["cold"]]
    landed = [r for r in rows if r["since_start"] is not None]
    return {
        "accounts": n_accounts,
        "findings": len(events),
        "containers": n_containers,
        "setup_s": setup,
        "wall_s": wall,
        "events_per_s": len(events) / wall,
        "contained": contained,
        "failed": sum(1 for r in rows if r["error"]),
        "errors": sorted({r["error"] for r in rows if r["error"]})[:3],
        "assume_role_calls": calls.counts["AssumeRole"],
        "assume_role_max_per_container_account": max(calls.assumed.values(), default=0),
        "container_account_pairs": len(calls.assumed),
        "describe_account_calls": calls.counts["DescribeAccount"],
        "before_first_deny_cold": Counter(" > ".join(r["before"]) or "(none)" for r in cold_rows).most_common(3),
        "before_first_deny_cached": Counter(" > ".join(r["before"]) or "(none)" for r in warm_rows).most_common(3),
        "deny_since_burst_start": _ms([r["since_start"] for r in landed]),
        "deny_since_finding_cold": _ms([r["since_event"] for r in cold_rows if r["since_event"] is not None]),
        "deny_since_finding_cached": _ms([r["since_event"] for r in warm_rows if r["since_event"] is not None]),
    }


def report(r: dict[str, Any]) -> None:
    print(
        f"organization: {r['findings']} GuardDuty findings over {r['accounts']} member accounts,"
        f" {r['containers']} containers: {r['events_per_s']:.1f} events/s ({r['wall_s']:.1f} s),"
        f" contained {r['contained']}/{r['findings']} in their own accounts, failed {r['failed']}"
    )
    print(
        f"  AssumeRole {r['assume_role_calls']} calls for {r['container_account_pairs']} (container, account) pairs,"
        f" at most {r['assume_role_max_per_container_account']} per account per container (credential lifetime);"
        f" DescribeAccount {r['describe_account_calls']}"
    )
    cold = "; ".join(f"{k} x{n}" for k, n in r["before_first_deny_cold"])
    cached = "; ".join(f"{k} x{n}" for k, n in r["before_first_deny_cached"])
    print(f"  before the first deny: cold account {cold}; cached account {cached}")
    s, c, w = r["deny_since_burst_start"], r["deny_since_finding_cold"], r["deny_since_finding_cached"]
    print(
        f"  deny landed after the burst began: median {s['median_ms']:.0f} ms, p90 {s['p90_ms']:.0f},"
        f" last {s['max_ms']:.0f};"
        f" after its finding began: cold account median {c['median_ms']:.1f} ms (p90 {c['p90_ms']:.1f}),"
        f" cached {w['median_ms']:.1f} ms (p90 {w['p90_ms']:.1f})"
    )
    for e in r["errors"]:
        print(f"  error: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.accounts, args.events, args.containers)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        report(result)
    return 0 if result["failed"] == 0 and result["contained"] == result["findings"] else 1


if __name__ == "__main__":
    sys.exit(main())
