"""A stand-in for CloudTrail's LookupEvents (moto does not implement it), for the demo and the tests.

It answers at botocore's `before-send` seam with real-shaped JSON pages, so botocore parses them and
its retry logic runs as against AWS: filtered by access key id, region and time window, newest first,
paginated with NextToken, and able to throttle on purpose. It also replays a recorded attack into an
emulated account, so that what the history says the key created really exists there.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse

from keyguard.aws import event_emitter
from keyguard.local.emulator import REPO, _ensure_role, _ensure_user, any_image

HISTORY = REPO / "events" / "cloudtrail-history"


class RawBody(BytesIO):
    """A response body botocore can read (what an HTTP library would hand it): for answers made up
    at the before-send seam, here and in the tests' fault injection."""

    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class FakeCloudTrail:
    """LookupEvents over `records` (CloudTrail records, as in a trail's log files)."""

    def __init__(self, records: list[dict[str, Any]], throttle: Callable[[str, int], bool] | None = None) -> None:
        self.records = records
        self.throttle = throttle  # (region, call number) -> answer ThrottlingException instead
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, session: Any) -> FakeCloudTrail:
        """Answer LookupEvents for every client the (boto3 or botocore) session creates from now on."""
        event_emitter(session).register_first("before-send.cloudtrail.LookupEvents", self._answer)
        return self

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        region = _region_of(request)
        with self._lock:
            self.calls[region] += 1
            number = self.calls[region]
        url, request.url = request.url, "https://cloudtrail-stand-in.invalid/"  # nothing else answers it
        if self.throttle and self.throttle(region, number):
            with self._lock:
                self.throttled[region] += 1
            body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return _response(url, 400, body)
        return _response(url, 200, self.page(region, json.loads(request.body or b"{}")))

    def page(self, region: str, args: dict[str, Any]) -> dict[str, Any]:
        wanted = {a["AttributeKey"]: a["AttributeValue"] for a in args.get("LookupAttributes", [])}
        start = args.get("StartTime", 0)
        end = args.get("EndTime", float("inf"))
        hits = [
            r
            for r in self.records
            if r.get("awsRegion") == region
            and start <= _epoch(r["eventTime"]) <= end
            and all(_attribute(r, k) == v for k, v in wanted.items())
        ]
        hits.sort(key=lambda r: r["eventTime"], reverse=True)  # newest first, as CloudTrail answers
        size = min(int(args.get("MaxResults", 50)), 50)
        offset = int(base64.b64decode(args["NextToken"]).decode()) if args.get("NextToken") else 0
        chunk = hits[offset : offset + size]
        out: dict[str, Any] = {"Events": [_event(r) for r in chunk]}
        if offset + size < len(hits):
            out["NextToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return out


def _region_of(request: Any) -> str:
    """The region the request was signed for (its SigV4 credential scope): right with custom endpoints too."""
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else str(auth)
    if "Credential=" in auth:
        return auth.split("Credential=", 1)[1].split("/")[2]
    return request.url.split("//", 1)[1].split(".")[1]


def _response(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
    return AWSResponse(url, status, headers, RawBody(json.dumps(body).encode()))


def _attribute(record: dict[str, Any], key: str) -> Any:
    if key == "AccessKeyId":
        return (record.get("userIdentity") or {}).get("accessKeyId")
    if key == "EventName":
        return record.get("eventName")
    if key == "Username":
        return (record.get("userIdentity") or {}).get("userName")
    return None


def _event(r: dict[str, Any]) -> dict[str, Any]:
    identity = r.get("userIdentity") or {}
    return {
        "EventId": r.get("eventID"),
        "EventName": r.get("eventName"),
        "ReadOnly": str(r.get("readOnly", "")).lower(),
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": _epoch(r["eventTime"]),
        "EventSource": r.get("eventSource"),
        "Username": identity.get("userName"),
        "Resources": [],
        "CloudTrailEvent": json.dumps(r),
    }


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def load_history(key_id: str) -> list[dict[str, Any]]:
    """The recorded activity of an example key (events/cloudtrail-history/<key id>.json), if any."""
    path = HISTORY / f"{key_id}.json"
    return json.loads(path.read_text())["Records"] if path.is_file() else []


def rebase(records: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Shift a recorded history so that it ends an hour before `now` (inside CloudTrail's 90 days)."""
    if not records:
        return []
    last = max(_epoch(r["eventTime"]) for r in records)
    shift = (now - timedelta(hours=1)).timestamp() - last
    out = copy.deepcopy(records)
    for r in out:
        moved = datetime.fromtimestamp(_epoch(r["eventTime"]) + shift, UTC)
        r["eventTime"] = moved.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def replay(clients: Any, records: list[dict[str, Any]], keys: dict[str, str]) -> list[dict[str, Any]]:
    """Make the emulated account hold what the history says the key created, and rewrite the history
    with the emulator's ids: `keys` maps example key ids to emulated ones and is extended."""
    iam = clients.iam
    out = copy.deepcopy(records)
    for r in out:
        identity = r.get("userIdentity") or {}
        if identity.get("accessKeyId") in keys:
            identity["accessKeyId"] = keys[identity["accessKeyId"]]
        if r.get("errorCode"):
            continue
        req, resp = r.get("requestParameters") or {}, r.get("responseElements") or {}
        name = r.get("eventName")
        if name == "CreateAccessKey":
            user = resp["accessKey"]["userName"]
            _ensure_user(iam, user)
            made = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            keys[resp["accessKey"]["accessKeyId"]] = made
            resp["accessKey"]["accessKeyId"] = made
        elif name in ("CreateUser", "CreateLoginProfile", "UpdateLoginProfile", "AttachUserPolicy", "PutUserPolicy"):
            _ensure_user(iam, req["userName"])
        elif name in ("CreateRole", "UpdateAssumeRolePolicy"):
            _ensure_role(iam, req["roleName"])
        elif name == "AssumeRole":
            _ensure_role(iam, req["roleArn"].rsplit("/", 1)[-1])
        elif name == "RunInstances":
            _run_instances(clients, r)
    return out


def _run_instances(clients: Any, record: dict[str, Any]) -> None:
    ec2 = clients.get("ec2", record["awsRegion"])
    items = record["responseElements"]["instancesSet"]["items"]
    image = any_image(ec2)
    made = ec2.run_instances(
        ImageId=image,
        MinCount=len(items),
        MaxCount=len(items),
        InstanceType=record["requestParameters"].get("instanceType", "t3.micro"),
    )["Instances"]
    for item, instance in zip(items, made, strict=True):
        item["instanceId"] = instance["InstanceId"]


def history_for(key_id: str) -> Path:
    return HISTORY / f"{key_id}.json"
