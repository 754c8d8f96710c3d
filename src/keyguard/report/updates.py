"""One incident, one announcement: a containment of a principal keyguard already holds for an earlier
incident is announced as an update of that incident.

The case it is for: AWS's quarantine record names a user (keyguard quarantines the user, no key), then the
Health or Trusted Advisor event names the key (keyguard deactivates exactly that key). The second message
says "UPDATE to <first incident>" and what changed, not a new incident. Read from keyguard's own ledger
(never from tags the key holder can write), after the deny and before this containment is written down.
"""

from __future__ import annotations

from typing import Any

from keyguard.plan import Outcome, principal_kind
from keyguard.respond import Response

LINKED = frozenset({Outcome.CONTAINED, Outcome.SESSIONS_REVOKED, Outcome.WOULD_CONTAIN, Outcome.FAILED})


def link(responses: list[Response], ledger: Any) -> list[str]:
    """Set `update_of` on each response whose principal the ledger holds for another incident. Returns what
    could not be read (a note each); a ledger that cannot be read leaves the message a full one."""
    if ledger is None or not getattr(ledger, "enabled", False):
        return []
    problems = []
    for r in responses:
        if r.outcome not in LINKED or not r.owner:
            continue
        try:
            held = ledger.principal(principal_kind(r.incident), r.owner)
        except Exception as e:  # LedgerError or anything under it: announce in full rather than guess
            problems.append(f"{r.incident.incident_id}: ledger unreadable ({type(e).__name__})")
            continue
        if held is not None and held.held and held.incident and held.incident != r.incident.incident_id:
            r.update_of = held.incident
    return problems
