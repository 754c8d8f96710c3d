"""The truth of a hold, from keyguard's ledger: a principal is `contained` only when the last containment
verified every layer it put there. The engine writes each containment to the ledger with the results that
failed (`detail.failures`, one `ActionResult.line()` each); the tag mirror is written only for a whole
containment and the key holder can rewrite it, so it is never the verdict.

States: contained (every layer verified), partial (some layers hold, the `missing` ones failed), failed
(no layer holds, or the read-back failed), unverified (IAM shows keyguard's policy but no ledger is read, or
the ledger has no containment of it), none (not held)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyguard.actions import BOUNDARY_LAYER

# What the engine puts on a principal (keyguard.actions): the layers a hold is made of.
LAYERS = ("deactivate-key", "quarantine-user", BOUNDARY_LAYER, "revoke-user-sessions", "revoke-role-sessions")
CONTAINMENTS = ("contained", "redelivered", "re-contained")  # ledger events that (re)establish a hold
CONTAINED, PARTIAL, FAILED, UNVERIFIED, NONE = "contained", "partial", "failed", "unverified", "none"
UNHEALTHY = (PARTIAL, FAILED)


@dataclass(frozen=True)
class Verdict:
    state: str
    missing: tuple[str, ...] = ()  # layers that failed
    failures: tuple[str, ...] = ()  # the results that failed, as the ledger kept them
    at: datetime | None = None  # of the containment the verdict is about
    actor: str | None = None  # the ledger's, verbatim
    reason: str | None = None  # the ledger's, verbatim
    incident: str | None = None
    layers: tuple[str, ...] = field(default_factory=tuple)  # layers that hold, as the containment recorded them

    @property
    def healthy(self) -> bool:
        return self.state not in UNHEALTHY

    def words(self) -> str:
        """One phrase: `contained`, `partial (missing deny-all-boundary)`, `FAILED (verify)`..."""
        if self.state == PARTIAL:
            return f"partial (missing {', '.join(self.missing)})"
        if self.state == FAILED:
            named = ", ".join(_action(f) for f in self.failures) or "nothing holds"
            return f"FAILED ({named})"
        return self.state


def _action(line: str) -> str:
    """The action of an ActionResult.line() ("deny-all-boundary user alice (...): failed (...)")."""
    return line.split(" ", 1)[0]


def of_entry(entry: Any) -> Verdict | None:
    """The verdict of one ledger history entry (keyguard.ledger.Entry); None for an entry that is no containment."""
    if entry.event not in CONTAINMENTS:
        return None
    detail = entry.detail or {}
    failures = tuple(str(f) for f in detail.get("failures") or ())
    layers = tuple(str(x) for x in detail.get("layers") or ())
    missing = tuple(dict.fromkeys(a for a in map(_action, failures) if a in LAYERS))
    held = [x for x in layers if x in LAYERS]
    if not failures:
        state = CONTAINED
    elif held and missing:
        state = PARTIAL
    else:
        state = FAILED
    return Verdict(state, missing, failures, entry.at, entry.actor, entry.reason or None, entry.incident, layers)


def of_history(entries: list[Any]) -> Verdict | None:
    """The verdict of the last containment in a principal's history (oldest first), and of what the tamper
    watch could not put back after it: a layer it failed to re-apply is missing too."""
    last = None
    for n, entry in enumerate(entries):
        if entry.event in CONTAINMENTS:
            last = n
    if last is None:
        return None
    verdict = of_entry(entries[last])
    if verdict is None:  # pragma: no cover - CONTAINMENTS entries always have one
        return None
    broken = []
    for entry in entries[last + 1 :]:
        if entry.event == "released":
            return Verdict(NONE, at=entry.at, actor=entry.actor, reason=entry.reason or None)
        if entry.event == "tamper":
            broken += [str(r) for r in (entry.detail or {}).get("reapplied") or () if ": failed" in str(r)]
    if not broken:
        return verdict
    failures = verdict.failures + tuple(broken)
    missing = tuple(dict.fromkeys([*verdict.missing, *(a for a in map(_action, broken) if a in LAYERS)]))
    state = PARTIAL if missing and verdict.state != FAILED else FAILED
    return Verdict(
        state, missing, failures, verdict.at, verdict.actor, verdict.reason, verdict.incident, verdict.layers
    )
