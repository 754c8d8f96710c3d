"""IAM's quotas that moto does not enforce, answered at botocore's `before-send` seam.

moto accepts any number of inline policy characters, managed policy attachments and tags. Real IAM
refuses, with `LimitExceeded` (HTTP 409), the write that would go past:

- the aggregate size of a user's inline policies: 2,048 characters (a role's: 10,240), whitespace not
  counted (PutUserPolicy / PutRolePolicy; replacing a policy counts its new document, not the old one);
- 10 managed policies attached to a user or a role (AttachUserPolicy / AttachRolePolicy; attaching one
  that is already attached changes nothing and succeeds);
- 50 tags on a user or a role (TagUser / TagRole; keys are matched case-insensitively, so overwriting an
  existing key does not count again).

Source: "IAM and AWS STS quotas" (docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html) and the
API reference of each operation (LimitExceeded, HTTP 409). The messages are IAM's: "Maximum policy size of
2048 bytes exceeded for user NAME" and "Cannot exceed quota for PoliciesPerRole: 10" as AWS answers them
(quoted in public bug reports); the tag message follows the same "Cannot exceed quota for X: N" form.

`install(target)` takes a boto3 or botocore Session, a `keyguard.aws.Clients`, a client, or a list of them,
and returns a `Quotas` whose `uninstall()` takes the hooks off again. It works with in-process moto
(`mock_aws`) and with moto_server: the current state (a user's inline policies, attachments, tags) is read
through the IAM API, with the writing client's own credentials (so in the writer's account) at the writing
client's endpoint. A write within the quotas goes on to the emulator untouched; one past them never reaches
it, and botocore parses IAM's XML error, so `ClientError.response` has the code, the message and 409.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.awsrequest import AWSResponse

from keyguard.aws import event_emitter

_WHITESPACE = re.compile(r"\s")
WRITES = ("PutUserPolicy", "PutRolePolicy", "AttachUserPolicy", "AttachRolePolicy", "TagUser", "TagRole")


@dataclass(frozen=True)
class Limits:
    """IAM's default quotas (the managed-policy ones can be raised to 20 on request)."""

    user_inline_chars: int = 2048
    role_inline_chars: int = 10240
    user_managed_policies: int = 10
    role_managed_policies: int = 10
    user_tags: int = 50
    role_tags: int = 50


@dataclass(frozen=True)
class Refusal:
    operation: str
    entity: str  # "user/alice", "role/web-app-role"
    message: str


def policy_size(document: str | dict[str, Any]) -> int:
    """Characters IAM counts against the inline budget: the document without any whitespace."""
    if isinstance(document, str):
        text = unquote(document) if document.lstrip().startswith("%7B") else document  # IAM's URL-encoded form
    else:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return len(_WHITESPACE.sub("", text))


def filler_policy(chars: int, sid: str = "Filler") -> str:
    """A valid, harmless policy document (an Allow of nothing that exists) of exactly `chars` counted
    characters: what an attacker writes to use up a budget. At least 120 characters."""
    head = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": sid, "Effect": "Allow", "Action": "none:None", "Resource": ""}],
    }
    base = policy_size(head)
    if chars < base + 1:
        raise ValueError(f"a filler policy has at least {base + 1} characters")
    head["Statement"][0]["Resource"] = "arn:aws:s3:::" + "x" * (chars - base - len("arn:aws:s3:::"))
    doc = json.dumps(head, separators=(",", ":"))
    assert policy_size(doc) == chars, (policy_size(doc), chars)
    return doc


class Quotas:
    """The installed hooks, the quotas they enforce, and what they refused (`refused`)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.refused: list[Refusal] = []
        self.checked = 0  # writes looked at (within the quotas or not)
        self._id = f"keyguard-quotas-{uuid.uuid4().hex[:8]}"
        self._emitters: list[Any] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self.active = True  # clients made from an installed session carry a copy of its hooks: this ends them

    # -------------------------------------------------------------------------------- installing

    def attach(self, emitter: Any) -> None:
        for op in WRITES:
            emitter.register(f"before-call.iam.{op}", self._remember_signer, unique_id=f"{self._id}-call-{op}")
            # not register_first: an injected fault (tests/faults.py) answers before the quotas, as a failing
            # network or service would; moto's own hook is on "before-send" itself, which comes after
            emitter.register(f"before-send.iam.{op}", self._answer, unique_id=f"{self._id}-send-{op}")
        self._emitters.append(emitter)

    def uninstall(self) -> None:
        """Take every hook off. Clients made from an installed session meanwhile keep a copy of the hook,
        which does nothing from now on."""
        self.active = False
        for emitter in self._emitters:
            for op in WRITES:
                emitter.unregister(f"before-call.iam.{op}", unique_id=f"{self._id}-call-{op}")
                emitter.unregister(f"before-send.iam.{op}", unique_id=f"{self._id}-send-{op}")
        self._emitters.clear()

    def __enter__(self) -> Quotas:
        return self

    def __exit__(self, *_: Any) -> None:
        self.uninstall()

    # -------------------------------------------------------------------------------- the seam

    def _remember_signer(self, request_signer: Any = None, **_: Any) -> None:
        if not self.active:
            return
        self._local.signer = request_signer  # before-send of the same call follows on this thread

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self.active or urlsplit(request.url).netloc.endswith(".invalid"):
            return None  # off, or another before-send hook (an injected fault) already answered it
        body = request.body
        form = parse_qs(body.decode() if isinstance(body, bytes) else (body or ""), keep_blank_values=True)
        args = {k: v[0] for k, v in form.items()}
        op = args.get("Action", "")
        if op not in WRITES:
            return None
        with self._lock:
            self.checked += 1
        reader = self._reader(request)
        message = self._check(reader, op, args)
        if message is None:
            return None
        kind = "role" if "Role" in op else "user"
        entity = f"{kind}/{args.get('RoleName') or args.get('UserName')}"
        with self._lock:
            self.refused.append(Refusal(op, entity, message))
        request.url = "https://iam-quota-exceeded.invalid/"  # keeps moto's own hook from acting on it
        xml = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>Sender</Type><Code>LimitExceeded</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        from keyguard.local.cloudtrail import RawBody

        return AWSResponse(request.url, 409, {"Content-Type": "text/xml"}, RawBody(xml.encode()))

    def _reader(self, request: Any) -> Any:
        """An IAM client without these hooks, at the request's endpoint, signing as the writer does."""
        parts = urlsplit(request.url)
        endpoint = None if parts.netloc.endswith("amazonaws.com") else f"{parts.scheme}://{parts.netloc}"
        if endpoint is None and not _moto_active():
            raise RuntimeError("keyguard.local.quotas emulates IAM's quotas for emulators; this request goes to AWS")
        signer = getattr(self._local, "signer", None)
        creds = signer._credentials.get_frozen_credentials() if signer is not None and signer._credentials else None
        if creds is None:
            return _reader_client(endpoint, "testing", "testing", None)
        return _reader_client(endpoint, creds.access_key, creds.secret_key, creds.token)

    # -------------------------------------------------------------------------------- the quotas

    def _check(self, iam: Any, op: str, args: dict[str, str]) -> str | None:
        lim = self.limits
        try:
            if op in ("PutUserPolicy", "PutRolePolicy"):
                return self._inline(iam, op, args)
            if op == "AttachUserPolicy":
                attached = all_pages(iam.list_attached_user_policies, "AttachedPolicies", UserName=args["UserName"])
                if args["PolicyArn"] in {p["PolicyArn"] for p in attached} or len(attached) < lim.user_managed_policies:
                    return None
                return f"Cannot exceed quota for PoliciesPerUser: {lim.user_managed_policies}"
            if op == "AttachRolePolicy":
                attached = all_pages(iam.list_attached_role_policies, "AttachedPolicies", RoleName=args["RoleName"])
                if args["PolicyArn"] in {p["PolicyArn"] for p in attached} or len(attached) < lim.role_managed_policies:
                    return None
                return f"Cannot exceed quota for PoliciesPerRole: {lim.role_managed_policies}"
            if op in ("TagUser", "TagRole"):
                user = op == "TagUser"
                have = (
                    all_pages(iam.list_user_tags, "Tags", UserName=args["UserName"])
                    if user
                    else all_pages(iam.list_role_tags, "Tags", RoleName=args["RoleName"])
                )
                new = [v for k, v in args.items() if re.fullmatch(r"Tags\.member\.\d+\.Key", k)]
                keys = {t["Key"].lower() for t in have} | {k.lower() for k in new}
                limit = lim.user_tags if user else lim.role_tags
                if len(keys) <= limit:
                    return None
                return f"Cannot exceed quota for TagsPer{'User' if user else 'Role'}: {limit}"
        except Exception as e:
            if _code(e) == "NoSuchEntity":
                return None  # the emulator answers that itself
            raise
        return None

    def _inline(self, iam: Any, op: str, args: dict[str, str]) -> str | None:
        user = op == "PutUserPolicy"
        name = args["UserName"] if user else args["RoleName"]
        ident = {"UserName": name} if user else {"RoleName": name}
        names = all_pages(iam.list_user_policies if user else iam.list_role_policies, "PolicyNames", **ident)
        get = iam.get_user_policy if user else iam.get_role_policy
        total = policy_size(args.get("PolicyDocument", ""))
        for other in names:
            if other != args["PolicyName"]:
                total += policy_size(get(PolicyName=other, **ident)["PolicyDocument"])
        limit = self.limits.user_inline_chars if user else self.limits.role_inline_chars
        if total <= limit:
            return None
        return f"Maximum policy size of {limit} bytes exceeded for {'user' if user else 'role'} {name}"


_READERS: dict[tuple[str | None, str, str, str | None], Any] = {}
_READERS_LOCK = threading.Lock()


def _reader_client(endpoint: str | None, key: str, secret: str, token: str | None) -> Any:
    """One hook-free IAM client per endpoint and credentials, from one botocore session (the IAM model is
    loaded once; sessions are not thread-safe, so clients are made under a lock)."""
    with _READERS_LOCK:
        found = _READERS.get((endpoint, key, secret, token))
        if found is None:
            # AWS's own endpoint is only ever read with in-process moto active: that session is made after
            # moto is imported, so it carries moto's before-send hook (a session made earlier would not)
            local = endpoint is None
            if local not in _SESSIONS:
                import botocore.session

                _SESSIONS[local] = botocore.session.Session()
            found = _SESSIONS[local].create_client(
                "iam",
                region_name="us-east-1",
                endpoint_url=endpoint,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
            )
            _READERS[(endpoint, key, secret, token)] = found
        return found


_SESSIONS: dict[bool, Any] = {}


def _moto_active() -> bool:
    """In-process moto is intercepting requests (`mock_aws`): a reader at AWS's endpoint reaches moto."""
    import sys

    models = sys.modules.get("moto.core.models")
    return bool(models is not None and getattr(models.botocore_stubber, "enabled", False))


def install(target: Any, limits: Limits | None = None) -> Quotas:
    """Enforce IAM's quotas on every IAM client of `target`: a boto3/botocore Session (and the clients it
    makes from now on), a `keyguard.aws.Clients` (its session and the clients it already made), a client,
    or an iterable of these. Returns the `Quotas`; `uninstall()` (or `with`) removes the hooks."""
    quotas = Quotas(limits)
    seen: set[int] = set()
    for emitter in _emitters(target):
        if id(emitter) not in seen:
            seen.add(id(emitter))
            quotas.attach(emitter)
    return quotas


def _emitters(target: Any) -> Iterable[Any]:
    if isinstance(target, (list, tuple, set)):
        for t in target:
            yield from _emitters(t)
        return
    made = getattr(target, "_clients", None)
    if isinstance(made, dict) and hasattr(target, "session"):  # keyguard.aws.Clients
        yield event_emitter(target.session)
        for (service, _), client in made.items():
            if service == "iam":
                yield client.meta.events
        return
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):  # a client
        yield meta.events
        return
    yield event_emitter(target)  # a boto3 or botocore Session


def all_pages(call: Any, field_name: str, **kwargs: Any) -> list[Any]:
    """Every item of an IAM list call, following its Marker (tests/iam_eval.py reads documents with it)."""
    out: list[Any] = []
    marker = None
    while True:
        page = call(**kwargs, **({"Marker": marker} if marker else {}))
        out += page.get(field_name, [])
        if not page.get("IsTruncated"):
            return out
        marker = page["Marker"]


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["Limits", "Quotas", "Refusal", "filler_policy", "install", "policy_size"]
