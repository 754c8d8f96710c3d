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
class Cursor:
    """Where one region's lookup stands: the next page's token, or done (read to the end, or failed)."""

    token: str | None = None
    done: bool = False
    calls: int = 0  # LookupEvents calls (pages) made for this region so far, all parts together
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "done": self.done, "calls": self.calls, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cursor:
        token = d.get("token")
        return cls(token if isinstance(token, str) else None, bool(d.get("done")), int(d.get("calls") or 0))


@dataclass
class Lookup:
    """What the lookup found, and what it cost."""

    records: list[dict[str, Any]] = field(default_factory=list)  # only when collecting (lookup())
    regions: list[str] = field(default_factory=list)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    extra_errors: dict[str, str] = field(default_factory=dict)  # e.g. DescribeRegions
    seconds: float = 0.0
    pages: int = 0  # pages read in this invocation

    @property
    def calls(self) -> dict[str, int]:
        return {region: c.calls for region, c in self.cursors.items()}

    @property
    def errors(self) -> dict[str, str]:
        """region -> why it could not be read (never silently dropped)."""
        out = {region: c.error for region, c in self.cursors.items() if c.error}
        return {**out, **self.extra_errors}

    @property
    def finished(self) -> bool:
        """Every region read to its end (or failed): nothing left to continue with."""
        return all(c.done for c in self.cursors.values())

    @property
    def complete(self) -> bool:
        return self.finished and not self.errors


def enabled_regions(clients: Clients) -> list[str]:
    """Regions enabled for the account (opt-in regions only when opted in)."""
    regions = clients.get("ec2").describe_regions(AllRegions=False)["Regions"]
    return sorted(r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in")


def stream(
    clients: Clients,
    key_id: str,
    start: datetime,
    end: datetime,
    cursors: dict[str, Cursor],
    on_record: Callable[[dict[str, Any]], None],
    *,
    deadline: float | None = None,
    rate: float = REQUESTS_PER_SECOND,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Lookup:
    """Feed every CloudTrail event signed with `key_id` in [start, end] to `on_record`, one at a time,
    region by region from where each cursor stands (regions in parallel, each within its own rate
    limit). At `deadline` (a `clock()` value) each region stops before its next page and keeps its
    token: the caller checkpoints the cursors and continues in a new invocation. `start`/`end` must stay
    the same across the parts: CloudTrail accepts a NextToken only with the parameters that made it.
    A region that fails is recorded in its cursor's `error`, never silently dropped."""
    began = clock()
    out = Lookup(regions=list(cursors), cursors=cursors)
    lock = threading.Lock()
    pages = [0]

    def one(region: str) -> None:
        cursor = cursors[region]
        if cursor.done:
            return
        client = clients.get("cloudtrail", region)
        limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        read = 0
        try:
            while True:
                if deadline is not None and read and clock() >= deadline:
                    return  # the token is kept: the next part goes on from here (after 1 page at least)
                limiter.wait()
                args: dict[str, Any] = {
                    "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key_id}],
                    "StartTime": start,
                    "EndTime": end,
                    "MaxResults": MAX_RESULTS,
                }
                if cursor.token:
                    args["NextToken"] = cursor.token
                page = client.lookup_events(**args)
                read += 1
                with lock:
                    cursor.calls += 1
                    pages[0] += 1
                    for event in page.get("Events", []):
                        on_record(_record(event, region))
                cursor.token = page.get("NextToken")
                if not cursor.token:
                    cursor.done = True
                    return
        except Exception as e:  # recorded per region; the report says which regions are incomplete
            cursor.error = f"{error_code(e) or type(e).__name__}: {e}"[:300]
            cursor.done = True

    pending = [region for region, c in cursors.items() if not c.done]
    if pending:
        with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
            list(pool.map(one, pending))
    out.pages = pages[0]
    out.seconds = clock() - began
    return out


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
    """Every event of `key_id` in [start, end] in every region, collected (oldest first): for small
    histories and tests. The investigation itself streams (stream())."""
    records: list[dict[str, Any]] = []
    out = stream(
        clients, key_id, start, end, {r: Cursor() for r in regions}, records.append, rate=rate, sleep=sleep, clock=clock
    )
    out.records = sorted(records, key=lambda r: (r.get("eventTime") or "", r.get("eventID") or ""))
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
