"""CloudTrail LookupEvents by access key id, in every enabled region, fully paginated, within
LookupEvents' rate limit (2 requests per second, per account, per region)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyguard.aws import Clients, error_code

LOOKUP_PERMISSIONS = ("cloudtrail:LookupEvents", "ec2:DescribeRegions")
REQUESTS_PER_SECOND = 2.0
MAX_RESULTS = 50  # LookupEvents' maximum page size


class RateLimiter:
    """At most `rate` calls per second (one region's LookupEvents budget)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            if now < self._next:
                self.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


@dataclass
class Lookup:
    """What the lookup found, and what it cost."""

    records: list[dict[str, Any]] = field(default_factory=list)  # CloudTrail records, oldest first
    regions: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # region -> LookupEvents calls (pages)
    errors: dict[str, str] = field(default_factory=dict)  # region -> why it could not be read
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.errors


def enabled_regions(clients: Clients) -> list[str]:
    """Regions enabled for the account (opt-in regions only when opted in)."""
    regions = clients.get("ec2").describe_regions(AllRegions=False)["Regions"]
    return sorted(r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in")


def lookup(
    clients: Clients,
    key_id: str,
    start: datetime,
    end: datetime,
    regions: list[str],
    rate: float = REQUESTS_PER_SECOND,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Lookup:
    """Every CloudTrail event signed with `key_id` in [start, end], in every region (regions in parallel,
    each within its own rate limit). A region that fails is recorded in `errors`, never silently dropped."""
    began = time.monotonic()
    out = Lookup(regions=list(regions))

    def one(region: str) -> tuple[str, list[dict[str, Any]], int, str | None]:
        client = clients.get("cloudtrail", region)
        limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        records: list[dict[str, Any]] = []
        calls, token = 0, None
        try:
            while True:
                limiter.wait()
                args: dict[str, Any] = {
                    "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key_id}],
                    "StartTime": start,
                    "EndTime": end,
                    "MaxResults": MAX_RESULTS,
                }
                if token:
                    args["NextToken"] = token
                page = client.lookup_events(**args)
                calls += 1
                records.extend(_record(e, region) for e in page.get("Events", []))
                token = page.get("NextToken")
                if not token:
                    return region, records, calls, None
        except Exception as e:  # recorded per region; the report says which regions are incomplete
            return region, records, calls, f"{error_code(e) or type(e).__name__}: {e}"[:300]

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(regions)))) as pool:
        for region, records, calls, err in pool.map(one, regions):
            out.records.extend(records)
            out.calls[region] = calls
            if err:
                out.errors[region] = err
    out.records.sort(key=lambda r: (r.get("eventTime") or "", r.get("eventID") or ""))
    out.seconds = time.monotonic() - began
    return out


def _record(event: dict[str, Any], region: str) -> dict[str, Any]:
    """The CloudTrail record inside a LookupEvents event (its CloudTrailEvent JSON string)."""
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    record.setdefault("eventName", event.get("EventName"))
    record.setdefault("eventSource", event.get("EventSource"))
    record.setdefault("awsRegion", region)
    record.setdefault("eventID", event.get("EventId"))
    when = event.get("EventTime")
    if "eventTime" not in record and isinstance(when, datetime):
        record["eventTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return record
