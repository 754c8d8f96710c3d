"""Investigate one contained incident: look up (streaming, within a deadline), summarise, and contain
what the key left behind. Only findings not announced before are acted on and reported."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from keyguard.actions import (
    NOT_FOUND,
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    Action,
    ActionResult,
    BoundUser,
    DeactivateAccessKey,
    QuarantineUser,
    RecordOnRole,
    RecordOnUser,
    RevokeRoleSessions,
    RevokeUserSessions,
    Status,
    VerifyRole,
    VerifyUser,
    deny_all_policy,
    revoke_sessions_policy,
)
from keyguard.aws import Clients, error_code
from keyguard.incident import Incident, Kind, PrincipalType, Source
from keyguard.investigate import followup
from keyguard.investigate.ec2 import RequireImdsV2, StopInstance, metadata_tokens
from keyguard.investigate.followup import BoundRole, Finding, QuarantineRole
from keyguard.investigate.handoff import LAG, Run
from keyguard.investigate.summary import Summary
from keyguard.investigate.trail import Cursor, Lookup, enabled_regions, stream
from keyguard.plan import SERVICE_LINKED_PREFIX, containment_tags
from keyguard.respond import Response, respond
from keyguard.settings import Settings

IAM_REGION = "us-east-1"  # IAM's CloudTrail events are recorded there
INSTANCE_SESSION = re.compile(r":(i-[0-9a-f]{8,17})$")
# What investigation does besides running the engine on created keys; the template grants these.
FOLLOW_UP_ACTIONS: tuple[type[Action], ...] = (
    QuarantineUser,
    RecordOnUser,
    RevokeRoleSessions,
    RecordOnRole,
    QuarantineRole,
    BoundRole,
    BoundUser,
    VerifyUser,
    VerifyRole,
    DeactivateAccessKey,
    RevokeUserSessions,
)
FOLLOW_UP_READS = followup.READ_PERMISSIONS
OPT_IN_ACTIONS = {"StopLaunchedInstances": StopInstance, "EnforceImdsV2": RequireImdsV2}


@dataclass
class Investigation:
    incident: Incident
    owner: str | None
    start: datetime
    end: datetime
    lookup: Lookup
    summary: Summary
    run: Run = field(default_factory=Run)  # the run this was; its checkpoint when unfinished
    keys: list[Response] = field(default_factory=list)  # keys the leaked key created, through the engine
    results: list[ActionResult] = field(default_factory=list)  # users, roles, keys, instances
    imds: list[tuple[str, str, str | None]] = field(default_factory=list)  # (instance, region, HttpTokens)
    findings: list[Finding] = field(default_factory=list)  # new in this run (not announced before)
    acted: list[Finding] = field(default_factory=list)  # found by this part's reads: contained (again)
    already: int = 0  # findings announced by an earlier run or part
    dry_run: bool = False

    @property
    def finished(self) -> bool:
        """Every region read to its end: False means this part checkpoints and the next one continues."""
        return self.lookup.finished

    @property
    def failures(self) -> list[str]:
        out = [f"{r.action} {r.target}: {r.detail}" for r in self.results if r.status is Status.FAILED]
        out += [f"{k.incident.key_id}: {k.reason}" for k in self.keys if k.failed]
        out += [f"CloudTrail in {region}: {err}" for region, err in self.lookup.errors.items()]
        return out

    def checkpoint(self) -> Run:
        """The next part of this run: same window and regions, each region's cursor, the summary so far."""
        return replace(
            self.run,
            part=self.run.part + 1,
            start=self.start,
            end=self.end,
            regions=self.lookup.regions,
            cursors={r: c.to_dict() for r, c in self.lookup.cursors.items()},
            summary=self.summary.to_checkpoint(),
        )


def window(run: Run, settings: Settings, contained_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The first run reads the whole lookback; the later ones from just before containment (what the
    lag hid from the first), to now."""
    if run.start and run.end:
        return run.start, run.end
    if run.phase == 0:
        return now - timedelta(days=settings.investigation_lookback_days), now
    return min(contained_at - LAG, now), now


def investigate(
    incident: Incident,
    owner: str | None,
    settings: Settings,
    clients: Clients,
    now: datetime,
    regions: list[str] | None = None,
    *,
    run: Run | None = None,
    contained_at: datetime | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    seen: set[str] | None = None,
) -> Investigation:
    """Never raises for AWS errors: each is a result; the caller reports, then raises if anything failed.
    `seen`: ids of findings announced before (keyguard's memory), which are neither acted on nor
    reported again."""
    run = run or Run()
    start, end = window(run, settings, contained_at or now, now)
    extra: dict[str, str] = {}
    regions = regions or run.regions
    if not regions:
        try:
            regions = enabled_regions(clients)
        except Exception as e:
            regions = [incident.region or clients.region]
            extra["(all)"] = f"DescribeRegions failed: {error_code(e) or type(e).__name__}: {e}"[:300]
    cursors = {r: Cursor.from_dict((run.cursors or {}).get(r) or {}) for r in regions}
    summary = Summary.from_dict(run.summary) if run.summary else Summary(account=incident.account)
    summary.account = incident.account
    # The checkpoint's findings were acted on by the part that read them: this part acts only on what it
    # reads from CloudTrail itself (a forged checkpoint in the queue can mislead a count, never an action).
    earlier = {f.id for f in _findings(Summary.from_dict(summary.to_dict()), incident, owner)} if run.summary else set()
    looked = stream(
        clients, incident.key_id, start, end, cursors, summary.add, deadline=deadline, clock=clock, sleep=sleep
    )
    looked.extra_errors.update(extra)
    inv = Investigation(incident, owner, start, end, looked, summary, run=run, dry_run=settings.dry_run)
    everything = _findings(summary, incident, owner)
    seen = seen or set()
    # Acted on whether announced before or not (containment is idempotent; keyguard's memory can be
    # written by the key holder too, so it may silence a repeat, never a containment); announced only if new.
    inv.acted = [f for f in everything if f.id not in earlier]
    inv.findings = [f for f in inv.acted if f.id not in seen]
    inv.already = len(everything) - len(inv.findings)
    _contain_created_keys(inv, settings, clients, now)
    _contain(inv, settings, clients, now)
    _trust_now(inv, clients)
    _launched_instances(inv, settings, clients)
    if run.phase == 0 and run.part == 1:
        _instance_metadata(inv, settings, clients, seen)
    return inv


# ------------------------------------------------------------------------------------------- findings


def _findings(s: Summary, incident: Incident, owner: str | None) -> list[Finding]:
    """Everything the summary says the key left behind, as findings with stable ids."""
    handled = {owner} | {u for u, _ in s.created_keys}
    out = [
        Finding(
            f"created-key:{key}",
            "created-key",
            f"key {key}",
            f"CreateAccessKey {key} for user {user}",
            contain=("created-key", key),
        )
        for user, key in s.created_keys
        if key != incident.key_id
    ]
    for user, calls in sorted(s.changed_users.items()):
        made = [c for c in calls if c in ("CreateUser", "CreateLoginProfile", "UpdateLoginProfile")]
        if made:
            out.append(
                Finding(
                    f"user:{user}",
                    "user-changed",
                    f"user {user}",
                    f"user {user}: {', '.join(calls)}",
                    contain=("user", user) if user not in handled else None,
                )
            )
    out += followup.findings(s, incident.key_id, {u for u in handled if u})
    changed_roles = {f.contain[1] for f in out if f.contain and f.contain[0] == "role"}
    for role, sessions in sorted(s.assumed_roles.items()):
        out.append(
            Finding(
                f"assumed-role:{role}",
                "role-assumed",
                f"role {role}",
                f"assumed role {role} (sessions {', '.join(sorted(set(sessions)))})",
                contain=("role", role) if role in changed_roles else ("sessions", role),
            )
        )
    for arn in s.other_account_roles:
        out.append(
            Finding(
                f"other-account-role:{arn}",
                "other-account",
                f"role {arn}",
                f"assumed another account's role {arn}: tell that account's owners",
                human=True,
            )
        )
    for launch in s.launches:
        ids = ", ".join(launch.ids[:10])
        out.append(
            Finding(
                f"launch:{launch.region}:{launch.event}:{ids}",
                "launch",
                f"{launch.what} in {launch.region}",
                f"{launch.region} {launch.event} {launch.count} {launch.what}"
                + (f" {', '.join(launch.kinds)}" if launch.kinds else "")
                + (f": {ids}" if ids else ""),
                contain=("launch", f"{launch.region}:{ids}") if launch.event == "RunInstances" else None,
                human=launch.event != "RunInstances",
            )
        )
    for what, n in sorted(s.dropped.items()):
        out.append(
            Finding(
                f"dropped:{what}:{n}",
                "too-many",
                what,
                f"{n} more {what} than a report holds: read the key's CloudTrail history",
                human=True,
            )
        )
    unique: dict[str, Finding] = {}
    for f in out:
        unique.setdefault(f.id, f)
    return list(unique.values())


# ------------------------------------------------------------------------------------------- acting


def _contain_created_keys(inv: Investigation, settings: Settings, clients: Clients, now: datetime) -> None:
    """Keys the leaked key created: contained like a leaked key (owner verified by IAM, same engine)."""
    users = {k: u for u, k in inv.summary.created_keys}
    for f in inv.acted:
        if f.kind != "created-key":
            continue
        key = f.contain[1] if f.contain else ""
        derived = replace(
            inv.incident,
            source=Source.INVESTIGATION,
            kind=Kind.COMPROMISE,
            key_id=key,
            principal_type=PrincipalType.IAM_USER,
            principal_name=users.get(key),
            principal_id=None,
            finding_type=f"CreatedBy:{inv.incident.key_id}",
            severity=None,
            sample=False,
        )
        response = respond(derived, settings, clients.iam, account=inv.incident.account, now=now)
        inv.keys.append(response)
        f.results = list(response.results) or [
            ActionResult("contain-key", f.target, Status.SKIPPED, response.reason or response.outcome.value)
        ]


def _skip_reason(kind: str, name: str, settings: Settings) -> str | None:
    if kind in ("role", "sessions") and name.startswith(SERVICE_LINKED_PREFIX):
        return "service-linked role"
    if settings.is_protected("user" if kind == "user" else "role", name):
        return "protected principal"
    return None


def _contain(inv: Investigation, settings: Settings, clients: Clients, now: datetime) -> None:
    """Users it created or gave rights: deny-all. Roles it created, re-trusted or gave rights: deny-all.
    Roles it only assumed: sessions revoked. Keys it revived: deactivated again. Once per principal."""
    tags = containment_tags(inv.incident, now)
    done: dict[tuple[str, str], list[ActionResult]] = {}
    for f in inv.acted:
        if not f.contain or f.contain[0] in ("created-key", "launch"):
            continue
        kind, name = f.contain
        if f.contain not in done:
            why = _skip_reason(kind, name, settings)
            if why:
                done[f.contain] = [ActionResult(f"contain-{kind}", f.target, Status.SKIPPED, why)]
            elif kind == "key":
                done[f.contain] = _revived_key(name, inv, settings, clients, now)
            else:
                done[f.contain] = _run(inv, _layers(kind, name, settings, tags, now), settings, clients)
        f.results = done[f.contain]


def _layers(kind: str, name: str, settings: Settings, tags: tuple[tuple[str, str], ...], now: datetime) -> list[Action]:
    """The same layers as containment: the inline deny, the deny-all boundary (when the stack has one),
    IAM read back, then the record. A role it only assumed: its sessions revoked, read back."""
    arn = settings.deny_all_policy_arn
    deny = json.dumps(deny_all_policy())
    if kind == "user":
        bound: list[Action] = [BoundUser(name, arn)] if arn else []
        return [
            QuarantineUser(name),
            *bound,
            VerifyUser(name, None, QUARANTINE_POLICY, deny, arn),
            RecordOnUser(name, tags),
        ]
    if kind == "role":
        bound = [BoundRole(name, arn)] if arn else []
        return [QuarantineRole(name), *bound, VerifyRole(name, QUARANTINE_POLICY, deny), RecordOnRole(name, tags)]
    revoke = RevokeRoleSessions(name, now)
    verify = VerifyRole(name, REVOKE_SESSIONS_POLICY, json.dumps(revoke_sessions_policy(revoke.before)))
    return [revoke, verify, RecordOnRole(name, tags)]


def _revived_key(key: str, inv: Investigation, settings: Settings, clients: Clients, now: datetime) -> list:
    """Exactly this key, of the user IAM says owns it: deactivated, and its sessions revoked."""
    target = f"key {key}"
    try:
        owner = clients.iam.get_access_key_last_used(AccessKeyId=key).get("UserName")
    except Exception as e:
        code = error_code(e) or type(e).__name__
        status, why = (Status.SKIPPED, "key not found: deleted?") if code == NOT_FOUND else (Status.FAILED, f"{e}")
        result = ActionResult("lookup-owner", target, status, f"{code}: {why}"[:300], code)
        inv.results.append(result)  # a failed lookup is a failed follow-up: reported, then retried
        return [result]
    if not owner:
        return [ActionResult("lookup-owner", target, Status.SKIPPED, "IAM names no owner in this account")]
    if settings.is_protected("user", owner):
        return [ActionResult("deactivate-key", f"{key} of user {owner}", Status.SKIPPED, "protected principal")]
    revoke = RevokeUserSessions(owner, now)
    verify = VerifyUser(owner, key, REVOKE_SESSIONS_POLICY, json.dumps(revoke_sessions_policy(now)))
    return _run(inv, [DeactivateAccessKey(owner, key), revoke, verify], settings, clients)


def _trust_now(inv: Investigation, clients: Clients) -> None:
    """The trust policy of each re-trusted or created role now: the notification shows it next to the
    before and after (it may have changed again since). A trust the key changed whose earlier policy is
    not in the key's own history: the role's own CloudTrail history (IAM's events are in us-east-1) says
    what it was, and the restore command gets it."""
    for f in inv.findings:  # only for what is announced
        if f.kind not in ("role-created", "role-trust-changed") or not f.contain:
            continue
        if f.kind == "role-trust-changed" and f.details and f.details[0].startswith("trust before: not in"):
            _trust_before(inv, clients, f)
        try:
            now = followup.trust_now(clients.iam, f.contain[1])
        except Exception as e:
            f.details.append(f"trust now  : could not be read ({error_code(e) or type(e).__name__})")
            continue
        f.details.append(f"trust now  : {now if now is not None else '(role deleted)'}")


def _trust_before(inv: Investigation, clients: Clients, f: Finding) -> None:
    role = f.contain[1] if f.contain else ""
    try:
        until = datetime.fromisoformat(f.time.replace("Z", "+00:00")) if f.time else inv.end
        before = followup.trust_before(clients.get("cloudtrail", IAM_REGION), role, until, inv.start)
    except Exception as e:
        f.details[0] = f"trust before: could not be read from CloudTrail ({error_code(e) or type(e).__name__})"
        return
    if before is None:
        f.details[0] = "trust before: not found in the role's CloudTrail history (90 days)"
        return
    f.details[0] = f"trust before: {before} (the role's CloudTrail history)"
    f.revert = [followup.cli("update-assume-role-policy", "--role-name", role, "--policy-document", before)]


def _launched_instances(inv: Investigation, settings: Settings, clients: Clients) -> None:
    launches = {f"{x.region}:{', '.join(x.ids[:10])}": x for x in inv.summary.launches if x.event == "RunInstances"}
    for f in inv.acted:
        if f.kind != "launch" or not f.contain:
            continue
        launch = launches.get(f.contain[1])
        if launch is None:
            continue
        if not settings.stop_launched_instances:
            f.human = True
            continue
        actions: list[Action] = [StopInstance(i, launch.region, inv.incident.incident_id) for i in launch.ids]
        f.results = _run(inv, actions, settings, clients)


def _instance_metadata(inv: Investigation, settings: Settings, clients: Clients, seen: set[str]) -> None:
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
            ActionResult(
                "check-imds",
                f"{instance} in {i.region}",
                Status.FAILED,
                f"{error_code(e) or type(e).__name__}: {e}"[:300],
            )
        )
        return
    inv.imds.append((instance, i.region, tokens))
    if tokens != "optional":
        return
    f = Finding(
        f"imds:{instance}",
        "imds",
        f"instance {instance} in {i.region}",
        f"instance {instance} ({i.region}) allows IMDSv1 (HttpTokens optional)",
        revert=[
            f"aws ec2 modify-instance-metadata-options --region {i.region} --instance-id {instance} "
            "--http-tokens required"
        ],
        human=not settings.enforce_imdsv2,
    )
    if settings.enforce_imdsv2:
        f.results = _run(inv, [RequireImdsV2(instance, i.region)], settings, clients)
    inv.acted.append(f)
    if f.id not in seen:
        inv.findings.append(f)


def _run(inv: Investigation, actions: list[Action], settings: Settings, clients: Clients) -> list[ActionResult]:
    out = []
    for action in actions:
        if settings.dry_run:
            result = action.dry_run()
        else:
            result = action.run(clients.get(action.service, getattr(action, "region", None)))
        out.append(result)
        inv.results.append(result)
    return out


def announced(inv: Investigation) -> list[str]:
    """Ids of the findings to write down as announced: those whose follow-ups did not fail (a failed one
    is tried, and announced, again)."""
    return [f.id for f in inv.findings if f.status != "failed"]
