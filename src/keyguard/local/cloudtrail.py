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

    def __init__(self, records: Any, throttle: Callable[[str, int], bool] | None = None) -> None:
        self.records = records  # a list, or a SyntheticHistory
        self._cache: dict[Any, list[dict[str, Any]]] = {}
        self.throttle = throttle  # (region, call number) -> answer ThrottlingException instead
        # (region, call number) -> None, (error code, HTTP status) to answer, or a transport error class
        # to raise: the fault matrix's faults for LookupEvents (this stand-in answers before any client hook)
        self.fault: Callable[[str, int], Any] | None = None
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, session: Any) -> FakeCloudTrail:
        """Answer LookupEvents for every client the (boto3 or botocore) session creates from now on."""
        event_emitter(session).register_first("before-send.cloudtrail.LookupEvents", self._answer)
        return self

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        region = _region_of(request)
        url, request.url = request.url, "https://cloudtrail-stand-in.invalid/"  # nothing else answers it
        got = self.respond(region, json.loads(request.body or b"{}"), url=url)
        return _response(url, *got)

    def respond(self, region: str, args: dict[str, Any], url: str = "") -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of one LookupEvents call: the page, or the fault or throttle set.
        Served at a client's before-send seam (`install`) and by the emulator's CloudTrail service alike."""
        with self._lock:
            self.calls[region] += 1
            number = self.calls[region]
        if self.fault is not None:
            got = self.fault(region, number)
            if isinstance(got, type) and issubclass(got, Exception):
                raise got(endpoint_url=url, error="injected")  # EndpointConnectionError, ReadTimeoutError
            if got:
                code, status = got
                return status, {"__type": code, "message": f"injected {code}"}
        if self.throttle and self.throttle(region, number):
            with self._lock:
                self.throttled[region] += 1
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        return 200, self.page(region, args)

    def page(self, region: str, args: dict[str, Any]) -> dict[str, Any]:
        wanted = {a["AttributeKey"]: a["AttributeValue"] for a in args.get("LookupAttributes", [])}
        start = args.get("StartTime", 0)
        end = args.get("EndTime", float("inf"))
        size = min(int(args.get("MaxResults", 50)), 50)
        offset = int(base64.b64decode(args["NextToken"]).decode()) if args.get("NextToken") else 0
        if isinstance(self.records, SyntheticHistory):
            chunk, more = self.records.page(region, start, end, wanted, offset, size)
        else:
            hits = self._hits(region, start, end, wanted)
            chunk, more = hits[offset : offset + size], offset + size < len(hits)
        out: dict[str, Any] = {"Events": [_event(r) for r in chunk]}
        if more:
            out["NextToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return out

    def _hits(self, region: str, start: float, end: float, wanted: dict[str, str]) -> list[dict[str, Any]]:
        """The matching records, newest first, as CloudTrail answers (one pass per query, then cached
        while the records stay the same)."""
        key = (region, start, end, tuple(sorted(wanted.items())), len(self.records))
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = [
                r
                for r in self.records
                if r.get("awsRegion") == region
                and start <= _epoch(r["eventTime"]) <= end
                and all(_attribute(r, k) == v for k, v in wanted.items())
            ]
            # newest first, as CloudTrail answers: within one second too (the later-written record first)
            found = [r for _, r in sorted(enumerate(found), key=lambda x: (x[1]["eventTime"], x[0]), reverse=True)]
            with self._lock:
                self._cache = {key: found}
        return found


class SyntheticHistory:
    """A history of `n` read-only events of one key, spread over `regions`, made up one page at a time
    (never held in memory): what a busy key looks like to LookupEvents, for 100,000 events as cheaply as
    for 10. Event i is in regions[i % len(regions)], `step` seconds older than event i-1."""

    def __init__(self, n: int, regions: list[str], key_id: str, newest: datetime, step: float = 7.0) -> None:
        self.n, self.regions, self.key_id, self.newest, self.step = n, list(regions), key_id, newest, step

    def count(self, region: str) -> int:
        if region not in self.regions:
            return 0
        r, total = self.regions.index(region), len(self.regions)
        return max(0, (self.n - r + total - 1) // total)

    def record(self, region: str, j: int) -> dict[str, Any]:
        """The region's j-th newest event."""
        i = self.regions.index(region) + j * len(self.regions)
        when = datetime.fromtimestamp(self.newest.timestamp() - i * self.step, UTC)
        names = (("DescribeInstances", "ec2"), ("ListBuckets", "s3"), ("GetCallerIdentity", "sts"))
        name, service = names[i % len(names)]
        return {
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventID": str(uuid.UUID(int=i)),
            "eventName": name,
            "eventSource": f"{service}.amazonaws.com",
            "awsRegion": region,
            "readOnly": True,
            "sourceIPAddress": "198.51.100.23",
            "userAgent": "aws-cli/2.15.30",
            "userIdentity": {"type": "IAMUser", "accessKeyId": self.key_id, "userName": "alice"},
        }

    def page(
        self, region: str, start: float, end: float, wanted: dict[str, str], offset: int, size: int
    ) -> tuple[list[dict[str, Any]], bool]:
        if wanted.get("AccessKeyId", self.key_id) != self.key_id:
            return [], False
        count = self.count(region)
        chunk = [self.record(region, j) for j in range(offset, min(count, offset + size))]
        return [r for r in chunk if start <= _epoch(r["eventTime"]) <= end], offset + size < count


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
    if key == "ResourceName":  # the names a record's resources carry (IAM: the role, user, group, policy)
        req = record.get("requestParameters") or {}
        return _AnyOf(str(req[k]) for k in ("roleName", "userName", "groupName", "policyArn") if req.get(k))
    return None


class _AnyOf(frozenset):
    """Equal to any of its members (a record names several resources)."""

    def __eq__(self, other: object) -> bool:
        return other in self if isinstance(other, str) else frozenset.__eq__(self, other)

    __hash__ = frozenset.__hash__


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


class Recorder:
    """Writes the CloudTrail record of every call made through a session (the attacker's boto3 session,
    signed with the leaked key) into `records`, shaped as CloudTrail writes IAM/STS/EC2 management events:
    requestParameters and responseElements are the call's parameters and answer with lowerCamelCase
    names, dates in CloudTrail's "Mar 10, 2025 2:00:05 PM" style, secrets and session tokens left out,
    IAM calls recorded in us-east-1. The tests serve `records` through FakeCloudTrail, so what the
    investigation reads is what the attacker's calls really did in the emulated account."""

    def __init__(
        self,
        session: Any,
        records: list[dict[str, Any]],
        *,
        key_id: str,
        user: str,
        account: str = "123456789012",
        source_ip: str = "198.51.100.23",
        user_agent: str = "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.records, self.key_id, self.user, self.account = records, key_id, user, account
        self.source_ip, self.user_agent, self.clock = source_ip, user_agent, clock
        emitter = event_emitter(session)
        emitter.register("before-parameter-build", self._params, unique_id=f"recorder-params-{id(self)}")
        emitter.register("after-call", self._after, unique_id=f"recorder-after-{id(self)}")

    def _params(self, params: Any, context: Any = None, **_: Any) -> None:
        if isinstance(context, dict):
            context["keyguard_recorded_params"] = copy.deepcopy(params)

    def _after(self, http_response: Any, parsed: Any, model: Any, context: Any = None, **_: Any) -> None:
        context = context if isinstance(context, dict) else {}
        service = model.service_model.endpoint_prefix
        region = "us-east-1" if service == "iam" else str(context.get("client_region") or "us-east-1")
        params = _camel(context.get("keyguard_recorded_params") or {})
        answer = {k: v for k, v in (parsed or {}).items() if k not in ("ResponseMetadata", "Error")}
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDACKCEVSQ6C2EXAMPLE",
                "arn": f"arn:aws:iam::{self.account}:user/{self.user}",
                "accountId": self.account,
                "accessKeyId": self.key_id,
                "userName": self.user,
            },
            "eventTime": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": model.name,
            "awsRegion": region,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "requestParameters": params or None,
            "responseElements": _camel(answer) or None,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": model.name.startswith(("Get", "List", "Describe", "Lookup")),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
        }
        status = getattr(http_response, "status_code", 200)
        if status >= 400:
            error = (parsed or {}).get("Error") or {}
            record["errorCode"] = error.get("Code") or str(status)
            record["errorMessage"] = error.get("Message") or ""
            record["responseElements"] = None
        self.records.append(record)


_SECRETS = ("secretaccesskey", "sessiontoken", "password", "privatekey")


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            (k[:1].lower() + k[1:]): _camel(v) for k, v in value.items() if not any(s in k.lower() for s in _SECRETS)
        }
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%b %d, %Y %I:%M:%S %p").replace(" 0", " ")
    return value
