"""Is an account one keyguard may act in? The allow-list first (no call), then AWS Organizations
(DescribeAccount, one call per account, cached): active members only; unknown, suspended or closed
accounts are refused and never assumed into."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyguard.aws import error_code

DIRECTORY_PERMISSIONS = ("organizations:DescribeAccount",)
ACTIVE = "ACTIVE"
NOT_MEMBER = {"AccountNotFoundException", "AWSOrganizationsNotInUseException"}


@dataclass(frozen=True)
class Standing:
    account: str
    ok: bool
    reason: str = ""


class DirectoryUnavailable(Exception):
    """Organizations could not answer (throttled, denied, unreachable): a retry can help."""

    def __init__(self, account: str, code: str, detail: str) -> None:
        super().__init__(f"DescribeAccount {account} failed ({code}): {detail}"[:300])
        self.code = code


class Directory:
    """Cached answers: an active member for `ttl` seconds, a refusal for `negative_ttl` (an account that
    joins the organization is found within that time)."""

    def __init__(
        self,
        organizations: Callable[[], Any],
        allowed: Callable[[str], bool],
        *,
        ttl: float = 900,
        negative_ttl: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._organizations, self._allowed = organizations, allowed
        self._ttl, self._negative_ttl, self._clock = ttl, negative_ttl, clock
        self._cache: dict[str, tuple[float, Standing]] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def standing(self, account: str) -> Standing:
        if not self._allowed(account):
            return Standing(account, False, f"account {account} is not in MemberAccounts")
        now = self._clock()
        with self._lock:
            hit = self._cache.get(account)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = self._describe(account)
        with self._lock:
            self._cache[account] = (now + (self._ttl if found.ok else self._negative_ttl), found)
        return found

    def prime(self, listed: list[dict[str, Any]]) -> None:
        """Remember what ListAccounts said (the organization-wide audit lists every account once)."""
        now = self._clock()
        with self._lock:
            for item in listed:
                found = _standing(str(item.get("Id")), item)
                self._cache[found.account] = (now + (self._ttl if found.ok else self._negative_ttl), found)

    def _describe(self, account: str) -> Standing:
        self.calls += 1
        try:
            got = self._organizations().describe_account(AccountId=account)["Account"]
        except Exception as e:
            code = error_code(e) or type(e).__name__
            if code in NOT_MEMBER:
                return Standing(account, False, f"account {account} is not in the organization")
            raise DirectoryUnavailable(account, code, str(e)) from e
        return _standing(account, got)


def _standing(account: str, described: dict[str, Any]) -> Standing:
    state = str(described.get("State") or described.get("Status") or "")
    if state != ACTIVE:
        return Standing(account, False, f"account {account} is {state.lower() or 'in an unknown state'}")
    return Standing(account, True)
