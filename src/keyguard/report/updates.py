"""One incident, one announcement: a containment of a principal keyguard already held for an earlier
incident is announced as an update of that incident.

The case it is for: AWS's quarantine record names a user (keyguard quarantines the user, no key), then the
Health or Trusted Advisor event names the key (keyguard deactivates exactly that key). The second message
says "UPDATE to <first incident>" and what changed, not a new incident.

Decided from keyguard's own records (never from tags the key holder can write), after the deny and after
the ledger recorded this containment, and only when IAM showed the user already behind keyguard's deny-all
boundary, for AWS's own signals of one exposure (its quarantine record, Health, Trusted Advisor): then one
ledger read (the principal's history) says which incident held it.
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
HOLDS = ("contained", "re-contained", "redelivered")


def held_before(r: Response) -> bool:
    """IAM said the user was already behind keyguard's boundary, and the ledger took this incident as new."""
    if r.incident.source not in SAME_EXPOSURE:
        return False
    first_time = any(x.action == "ledger" and x.status is Status.DONE and x.detail == "contained" for x in r.results)
    bounded = any(x.action == BOUNDARY_LAYER and x.status is Status.ALREADY_DONE for x in r.results)
    return first_time and bounded


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
            history = ledger.history(kind=principal_kind(r.incident), name=r.owner)
        except Exception as e:  # LedgerError or anything under it: announce in full rather than guess
            problems.append(f"{r.incident.incident_id}: ledger unreadable ({type(e).__name__})")
            continue
        earlier = None
        for entry in history:  # oldest first
            if entry.event == "released":
                earlier = None
            elif entry.event in HOLDS and entry.incident and entry.incident != r.incident.incident_id:
                earlier = earlier or entry.incident  # the incident that first held it since the last release
        r.update_of = earlier
    return problems
