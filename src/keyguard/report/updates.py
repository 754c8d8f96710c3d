"""One incident, one announcement: a containment of a principal keyguard already held for an earlier
incident is announced as an update of that incident.

The case it is for: AWS's quarantine record names a user (keyguard quarantines the user, no key), then the
Health or Trusted Advisor event names the key (keyguard deactivates exactly that key). The second message
says "UPDATE to <first incident>" and what changed, not a new incident.

Decided from keyguard's own records (never from tags the key holder can write), after the deny and before
the ledger records this containment, and only when IAM showed the user already behind keyguard's deny-all
boundary, for AWS's own signals of one exposure (its quarantine record, Health, Trusted Advisor): then one
ledger read (the principal's record) says which incident held it.
"""

from __future__ import annotations

from typing import Any

from keyguard.actions import BOUNDARY_LAYER, Status
from keyguard.incident import Source
from keyguard.plan import Outcome, principal_kind
from keyguard.respond import Response

LINKED = frozenset({Outcome.CONTAINED, Outcome.SESSIONS_REVOKED, Outcome.FAILED})
# AWS's own signals about one exposure: its quarantine record (the user) and its Health / Trusted Advisor
# notices (the key). A GuardDuty finding or a new key is a new incident, announced in full.
SAME_EXPOSURE = frozenset({Source.AWS_QUARANTINE, Source.HEALTH, Source.TRUSTED_ADVISOR})


def held_before(r: Response) -> bool:
    """IAM said the user was already behind keyguard's boundary, and the ledger took this incident as new."""
    if r.incident.source not in SAME_EXPOSURE:
        return False
    return any(x.action == BOUNDARY_LAYER and x.status is Status.ALREADY_DONE for x in r.results)


def link(responses: list[Response], ledger: Any) -> list[str]:
    """Set `update_of` on each response whose principal the ledger held for another incident. Returns what
    could not be read (a note each): a ledger that cannot be read leaves the message a full one."""
    if ledger is None or not getattr(ledger, "enabled", False):
        return []
    problems = []
    for r in responses:
        if r.outcome not in LINKED or not r.owner or not held_before(r):
            continue
        try:
            held = ledger.principal(principal_kind(r.incident), r.owner)  # as it was before this containment
        except Exception as e:  # LedgerError or anything under it: announce in full rather than guess
            problems.append(f"{r.incident.incident_id}: ledger unreadable ({type(e).__name__})")
            continue
        if held is not None and held.held and held.incident and held.incident != r.incident.incident_id:
            r.update_of = held.incident  # (the same incident: a redelivery, announced once by de-duplication)
    return problems
