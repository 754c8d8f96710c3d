"""What moto lacks and keyguard needs, added to moto's own service layer: the one emulator.

moto answers every request through its response classes, whether the caller is in this process
(`mock_aws`, which hands botocore's requests to them) or on the wire (`keyguard emulator`, moto's server).
Patching those classes, rather than hooking each caller's botocore session, gives in-process tests, the
demo, the CLI, `sam local invoke` and a user's own scripts the same answers:

- users' permissions boundaries (keyguard.local.boundary);
- CloudTrail `LookupEvents` over the records the emulator holds per account (`trail(account)`): the
  history a demo or a test seeds, served by keyguard.local.cloudtrail.FakeCloudTrail's filtering and
  paging, so throttling and faults set on that object apply on the wire too;
- IAM's quotas on inline policy size, managed policy attachments and tags (the limits and messages of
  keyguard.local.quotas), checked against moto's own state before moto writes;
- one request at a time: moto's backends are not thread-safe (a transaction deep-copies a table and
  restores it on failure, so two at once interleave), while AWS serialises writes to an item. A
  re-entrant lock around moto's dispatch makes concurrent callers see what AWS would let them see.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keyguard.local.quotas import Limits, policy_size

_installed = False
_enforcing = 0  # how many emulated accounts and emulator servers are open: quotas apply while any is
_lock = threading.RLock()
_trails: dict[str, Any] = {}  # account id -> FakeCloudTrail
LIMITS = Limits()


def install() -> None:
    """Idempotent: patch moto's response classes once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        from keyguard.local import boundary

        boundary.install()
        _serialise()
        _account_from_key()
        _lookup_events()
        _quotas()
        _installed = True


@contextmanager
def quotas_enforced() -> Iterator[None]:
    """IAM's quotas apply while this is open (the emulated account, `keyguard emulator`). The patches stay
    in moto for the process; a test of plain moto elsewhere in it still meets moto's own behaviour."""
    global _enforcing
    with _lock:
        _enforcing += 1
    try:
        yield
    finally:
        with _lock:
            _enforcing -= 1


def reset() -> None:
    """Forget every account's CloudTrail history (a fresh in-process world)."""
    with _lock:
        _trails.clear()


def trail(account: str) -> Any:
    """The account's CloudTrail stand-in: add records to `.records`; set `.throttle` or `.fault`."""
    from keyguard.local.cloudtrail import FakeCloudTrail

    with _lock:
        found = _trails.get(account)
        if found is None:
            found = _trails[account] = FakeCloudTrail([])
        return found


def forget(account: str, key_ids: set[str]) -> int:
    """Drop the records of `key_ids` from an account's history (a rehearsal removes what it seeded)."""
    with _lock:
        found = _trails.get(account)
        if found is None:
            return 0
        keep = [r for r in found.records if (r.get("userIdentity") or {}).get("accessKeyId") not in key_ids]
        dropped = len(found.records) - len(keep)
        found.records[:] = keep
        return dropped


# ---------------------------------------------------------------------------------------- patches


def _serialise() -> None:
    from moto.core.responses import BaseResponse

    original = BaseResponse._dispatch

    def _dispatch(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(self, *args, **kwargs)

    BaseResponse._dispatch = _dispatch  # type: ignore[method-assign]


def _account_from_key() -> None:
    """A 12-digit access key id names the account, as LocalStack does: a rehearsal (or `sam local invoke`,
    which hands the container the caller's credentials) gets an account of its own just by its credentials,
    whichever client or library makes the call. moto's own choices come first (MOTO_ACCOUNT_ID, the
    x-moto-account-id header, a key that moto's IAM issued)."""
    import os

    from moto.core.responses import BaseResponse

    original = BaseResponse.get_current_account

    def get_current_account(self: Any) -> str:
        if "MOTO_ACCOUNT_ID" not in os.environ and "x-moto-account-id" not in self.headers:
            # moto reads only 20-character key ids out of the signature; this reads a 12-digit one
            found = _SIGNED_ACCOUNT.search(str(self.headers.get("Authorization", "")))
            if found:
                return found.group(1)
        return original(self)

    BaseResponse.get_current_account = get_current_account  # type: ignore[method-assign]


def _lookup_events() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self: Any) -> Any:
        args = json.loads(self.body or b"{}")
        status, body = trail(self.current_account).respond(self.region, args)
        # moto takes the HTTP status from the headers' "status", not from the tuple's first item
        return status, {"Content-Type": "application/x-amz-json-1.1", "status": status}, json.dumps(body)

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def _quotas() -> None:
    """IAM refuses the write that would go past a quota with LimitExceeded (HTTP 409); moto accepts it."""
    from moto.iam import responses
    from moto.iam.exceptions import LimitExceededException

    def guard(operation: str, check: Any) -> None:
        original = getattr(responses.IamResponse, operation)

        def checked(self: Any) -> Any:
            message = check(self) if _enforcing else None
            if message:
                raise LimitExceededException(message)
            return original(self)

        setattr(responses.IamResponse, operation, checked)

    def inline(user: bool) -> Any:
        def check(self: Any) -> str | None:
            name = self._get_param("UserName" if user else "RoleName")
            entity = _entity(self.backend, user, name)
            if entity is None:
                return None  # moto answers NoSuchEntity itself
            policy = self._get_param("PolicyName")
            total = policy_size(self._get_param("PolicyDocument") or "")
            total += sum(policy_size(doc) for other, doc in entity.policies.items() if other != policy)
            limit = LIMITS.user_inline_chars if user else LIMITS.role_inline_chars
            if total <= limit:
                return None
            return f"Maximum policy size of {limit} bytes exceeded for {'user' if user else 'role'} {name}"

        return check

    def attached(user: bool) -> Any:
        def check(self: Any) -> str | None:
            entity = _entity(self.backend, user, self._get_param("UserName" if user else "RoleName"))
            if entity is None or self._get_param("PolicyArn") in entity.managed_policies:
                return None
            limit = LIMITS.user_managed_policies if user else LIMITS.role_managed_policies
            if len(entity.managed_policies) < limit:
                return None
            return f"Cannot exceed quota for PoliciesPer{'User' if user else 'Role'}: {limit}"

        return check

    def tags(user: bool) -> Any:
        def check(self: Any) -> str | None:
            name = self._get_param("UserName" if user else "RoleName")
            entity = _entity(self.backend, user, name)
            if entity is None:
                return None
            have = self.backend.list_user_tags(name) if user else entity.tags
            new = [t.get("Key", "") for t in self._get_param("Tags", []) or []]
            keys = {t["Key"].lower() for t in have} | {k.lower() for k in new}
            limit = LIMITS.user_tags if user else LIMITS.role_tags
            if len(keys) <= limit:
                return None
            return f"Cannot exceed quota for TagsPer{'User' if user else 'Role'}: {limit}"

        return check

    guard("put_user_policy", inline(True))
    guard("put_role_policy", inline(False))
    guard("attach_user_policy", attached(True))
    guard("attach_role_policy", attached(False))
    guard("tag_user", tags(True))
    guard("tag_role", tags(False))


def _entity(backend: Any, user: bool, name: str) -> Any:
    try:
        return backend.get_user(name) if user else backend.get_role(name)
    except Exception:  # NoSuchEntity: moto's own call answers it
        return None


ACCOUNT_ID = re.compile(r"[0-9]{12}")
_SIGNED_ACCOUNT = re.compile(r"Credential=([0-9]{12})/")
