"""Investigate one contained incident: look up, summarise, contain what the key left behind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from keyguard.actions import (
    Action,
    ActionResult,
    QuarantineUser,
    RecordOnRole,
    RecordOnUser,
    RevokeRoleSessions,
    Status,
)
from keyguard.aws import Clients, error_code
from keyguard.incident import Incident, Kind, PrincipalType, Source
from keyguard.investigate.ec2 import RequireImdsV2, StopInstance, metadata_tokens
from keyguard.investigate.summary import Summary, summarize
from keyguard.investigate.trail import Lookup, enabled_regions, lookup
from keyguard.plan import SERVICE_LINKED_PREFIX, containment_tags
from keyguard.respond import Response, respond
from keyguard.settings import Settings

INSTANCE_SESSION = re.compile(r":(i-[0-9a-f]{8,17})$")
# What investigation does besides running the engine on created keys; the template grants these.
FOLLOW_UP_ACTIONS: tuple[type[Action], ...] = (QuarantineUser, RecordOnUser, RevokeRoleSessions, RecordOnRole)
OPT_IN_ACTIONS = {"StopLaunchedInstances": StopInstance, "EnforceImdsV2": RequireImdsV2}


@dataclass
class Investigation:
    incident: Incident
    owner: str | None
    start: datetime
    end: datetime
    lookup: Lookup
    summary: Summary
    keys: list[Response] = field(default_factory=list)  # keys the leaked key created, through the engine
    results: list[ActionResult] = field(default_factory=list)  # users, roles, instances
    imds: list[tuple[str, str, str | None]] = field(default_factory=list)  # (instance, region, HttpTokens)
    dry_run: bool = False

    @property
    def failures(self) -> list[str]:
        out = [f"{r.action} {r.target}: {r.detail}" for r in self.results if r.status is Status.FAILED]
        out += [f"{k.incident.key_id}: {k.reason}" for k in self.keys if k.failed]
        out += [f"CloudTrail in {region}: {err}" for region, err in self.lookup.errors.items()]
        return out


def investigate(
    incident: Incident,
    owner: str | None,
    settings: Settings,
    clients: Clients,
    now: datetime,
    regions: list[str] | None = None,
) -> Investigation:
    """Never raises for AWS errors: each is a result; the caller reports, then raises if anything failed."""
    start = now - timedelta(days=settings.investigation_lookback_days)
    try:
        regions = regions or enabled_regions(clients)
    except Exception as e:
        regions = [incident.region or clients.region]
        found = Lookup(regions=regions, errors={"(all)": f"DescribeRegions failed: {error_code(e) or e}"})
    else:
        found = None
    looked = lookup(clients, incident.key_id, start, now, regions)
    if found is not None:
        looked.errors.update(found.errors)
    summary = summarize(looked.records, incident.account)
    inv = Investigation(incident, owner, start, now, looked, summary, dry_run=settings.dry_run)
    _contain_created_keys(inv, settings, clients, now)
    _contain_principals(inv, settings, clients, now)
    _launched_instances(inv, settings, clients)
    _instance_metadata(inv, settings, clients)
    return inv


def _contain_created_keys(inv: Investigation, settings: Settings, clients: Clients, now: datetime) -> None:
    """Keys the leaked key created: contained like a leaked key (owner verified by IAM, same engine)."""
    seen = {inv.incident.key_id}
    for user, key in inv.summary.created_keys:
        if key in seen:
            continue
        seen.add(key)
        derived = replace(
            inv.incident,
            source=Source.INVESTIGATION,
            kind=Kind.COMPROMISE,
            key_id=key,
            principal_type=PrincipalType.IAM_USER,
            principal_name=user,
            principal_id=None,
            finding_type=f"CreatedBy:{inv.incident.key_id}",
            severity=None,
            sample=False,
        )
        inv.keys.append(respond(derived, settings, clients.iam, account=inv.incident.account, now=now))


def _contain_principals(inv: Investigation, settings: Settings, clients: Clients, now: datetime) -> None:
    """Users it created or changed: deny-all. Roles it created, re-trusted or assumed: sessions revoked."""
    tags = containment_tags(inv.incident, now)
    handled_users = {inv.owner} | {r.owner for r in inv.keys if r.owner}
    actions: list[Action] = []
    for user in sorted(inv.summary.changed_users):
        if user in handled_users:
            continue
        if settings.is_protected("user", user):
            inv.results.append(ActionResult("quarantine-user", f"user {user}", Status.SKIPPED, "protected principal"))
            continue
        actions += [QuarantineUser(user), RecordOnUser(user, tags)]
    roles = sorted(set(inv.summary.changed_roles) | set(inv.summary.assumed_roles))
    for role in roles:
        if settings.is_protected("role", role) or role.startswith(SERVICE_LINKED_PREFIX):
            why = "service-linked role" if role.startswith(SERVICE_LINKED_PREFIX) else "protected principal"
            inv.results.append(ActionResult("revoke-role-sessions", f"role {role}", Status.SKIPPED, why))
            continue
        actions += [RevokeRoleSessions(role, now), RecordOnRole(role, tags)]
    _run(inv, actions, settings, clients)


def _launched_instances(inv: Investigation, settings: Settings, clients: Clients) -> None:
    if not settings.stop_launched_instances:
        return
    actions: list[Action] = [
        StopInstance(instance, launch.region, inv.incident.incident_id)
        for launch in inv.summary.launches
        if launch.event == "RunInstances"
        for instance in launch.ids
    ]
    _run(inv, actions, settings, clients)


def _instance_metadata(inv: Investigation, settings: Settings, clients: Clients) -> None:
    """Leaked instance-role credentials: does the instance still allow IMDSv1?"""
    i = inv.incident
    match = INSTANCE_SESSION.search(i.principal_id or "") if i.principal_type is PrincipalType.ASSUMED_ROLE else None
    if not match or not i.region:
        return
    instance = match.group(1)
    try:
        tokens = metadata_tokens(clients.get("ec2", i.region), instance)
    except Exception as e:
        inv.results.append(
            ActionResult("check-imds", f"{instance} in {i.region}", Status.FAILED, f"{error_code(e) or e}"[:300])
        )
        return
    inv.imds.append((instance, i.region, tokens))
    if tokens == "optional" and settings.enforce_imdsv2:
        _run(inv, [RequireImdsV2(instance, i.region)], settings, clients)


def _run(inv: Investigation, actions: list[Action], settings: Settings, clients: Clients) -> None:
    for action in actions:
        if settings.dry_run:
            inv.results.append(action.dry_run())
        else:
            inv.results.append(action.run(clients.get(action.service, getattr(action, "region", None))))
