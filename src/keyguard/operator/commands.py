"""The operator commands behind `keyguard status | contain | release | audit | history` (argument parsing
and the exit-code table are in keyguard.cli): 0 done, 1 failed (a change or part of it did not happen, the
notification was not sent, the audit is incomplete or has findings at --fail-on), 2 nothing was done.

Every input is checked, and everything read that decides what happens (owners, the stack's settings, the
topic), before the first change. Each command prints one document in --format json (docs/operator.md)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from keyguard.operator import audit as audit_mod
from keyguard.operator import documents, publish, render
from keyguard.operator.clients import OperatorClients, OperatorError, describe
from keyguard.operator.principal import (
    PrincipalState,
    attach_ledger,
    check_key_id,
    check_long_term_key_id,
    check_name,
    held_principals,
    owner_of,
    read_role,
    read_user,
    stamp,
)
from keyguard.operator.terminal import Console, NoAnswer

OK, FAILED, NOTHING_DONE, INTERRUPTED = 0, 1, 2, 130
REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")
TOPIC_RE = re.compile(r"arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z0-9]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
REASON_MAX = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TOPIC_CHECK_PERMISSIONS = ("sns:GetTopicAttributes",)  # the topic exists, before the first change


def now() -> datetime:
    return datetime.now(UTC)


def run(args: Any, console: Console | None = None) -> int:
    console = console or Console(
        json_mode=args.format == "json", color=not getattr(args, "no_color", False), command=args.command
    )
    clients = None
    try:
        clients = OperatorClients(
            args.profile, args.region, args.endpoint_url, timeout=getattr(args, "timeout", 10) or 10
        )
        return COMMANDS[args.command](args, clients, console)
    except KeyboardInterrupt:
        return console.fail("interrupted: what was done so far stays done (run `keyguard status`)", INTERRUPTED)
    except NoAnswer as e:
        return console.fail(f"{e}; nothing was changed", NOTHING_DONE)
    except Exception as e:  # one line, never a traceback
        last = getattr(clients, "last_call", None)
        return console.fail(describe(e, endpoint=args.endpoint_url, last_call=last), NOTHING_DONE)


# ------------------------------------------------------------------------------------------ status


def status(args: Any, clients: OperatorClients, console: Console) -> int:
    """What keyguard holds. Exit 1 when a hold shown is partial or failed: its purpose is to report health."""
    iam, at = clients.iam, now()
    stack, search = _find_stack(clients, args)
    settings = _settings(stack)
    ledger = _ledger_for(clients, settings, stack)
    note = _iam_only(stack, search) if ledger is None else None
    if args.user is None and args.key is None and args.role is None:
        held = [attach_ledger(h, ledger) for h in held_principals(iam, settings.deny_all_policy_arn)]
        if args.format == "json":
            console.document({**documents.held(held, at, ledger), **_stack_fields(stack, note)})
        elif args.format == "csv":
            console.print(render.csv_text(render.HELD_HEADERS, render.held_rows(held)))
        elif held and console.color:
            title = f"keyguard holds {len(held)} in quarantine:"
            console.table(render.HELD_HEADERS, render.held_rows(held), title=title)
        else:
            console.print(render.held_text(held))
        if note and args.format == "table":
            console.print(f"note: {note}")
        return _health(console, held)
    highlight = None
    if args.key is not None:
        highlight = check_long_term_key_id(args.key)
        state = read_user(iam, owner_of(iam, args.key))
    elif args.user is not None:
        state = read_user(iam, args.user)
    else:
        state = read_role(iam, args.role)
    attach_ledger(state, ledger)
    if args.format == "json":
        console.document({**documents.status(state, at, ledger), **_stack_fields(stack, note)})
    elif args.format == "csv" and state.kind == "user":
        console.print(render.csv_text(render.KEY_HEADERS, render.key_rows(state, at, highlight)))
    elif args.format == "csv":
        console.print(render.csv_text(("POLICY", "EFFECT"), [[p.name, p.effect] for p in state.policies]))
    else:
        console.print(render.status_text(state, at, highlight, keys=not console.color))
        if console.color and state.kind == "user":
            console.table(render.KEY_HEADERS, render.key_rows(state, at, highlight), title="\nAccess keys:")
        extra = documents.ledger_lines(state, ledger)
        if extra:
            console.print("\n".join(extra))
        if note:
            console.print(f"note: {note}")
    return _health(console, [state])


def _health(console: Console, states: list[PrincipalState]) -> int:
    """1 when a hold is partial or failed (the ledger's last containment did not verify every layer)."""
    bad = [s for s in states if s.hold in ("partial", "failed")]
    if not bad:
        return OK
    words = "; ".join(f"{s.subject}: {s.verdict.words()}" for s in bad)
    console.warn(f"{len(bad)} hold(s) not complete ({words}): see `keyguard history --user/--role NAME`")
    return FAILED


def _stack_fields(stack: Any, note: str | None) -> dict[str, Any]:
    return {"stack": stack.to_dict() if stack else None, "note": note}


# ------------------------------------------------------------------------------------------ contain


def contain(args: Any, clients: OperatorClients, console: Console) -> int:
    from keyguard import notify
    from keyguard.operator.contain import (
        DEFAULT_REASON,
        as_named,
        caller,
        failed_reason,
        manual_incident,
        settings_for,
    )
    from keyguard.plan import Outcome, plan_actions, protection
    from keyguard.respond import respond

    # 1. every input, before any call
    keys = list(dict.fromkeys(check_long_term_key_id(k) for k in args.key))
    reason = _reason(args.reason, DEFAULT_REASON)
    topic_arg = _check_topic(args.topic_arn)
    # 2. what decides: the stack's settings, the caller, each key's owner (IAM names it), the topic
    stack = _stack_to_act(clients, args, "contain")
    settings = settings_for(_settings(stack), dry_run=args.dry_run, topic_arn=topic_arg or _stack_topic(stack))
    account, actor = caller(clients)
    iam, at = clients.iam, now()
    planned = []
    refused = []
    for key_id in keys:
        owner = owner_of(iam, key_id)  # for the question; the engine asks IAM again and acts on its answer
        incident = manual_incident(key_id, account, clients.region, reason, actor, at)
        stop = _protection(protection, incident, owner, settings)
        if stop:
            refused.append(f"{key_id} of {owner}: {stop}")
        planned.append(
            (key_id, owner, incident, plan_actions(incident, owner, at, boundary_arn=settings.deny_all_policy_arn))
        )
    if refused:
        where = f" ({stack.line()})" if stack else ""
        raise OperatorError(f"refused, nothing was changed{where}: " + "; ".join(refused))
    _check_topic_exists(clients, settings.topic_arn, dry_run=args.dry_run)
    permissions = _simulate(clients, actor, [a for *_, actions in planned for a in actions]) if args.dry_run else None

    doc: dict[str, Any] = {
        "keyguard": 1,
        "command": "contain",
        "dryRun": args.dry_run,
        "account": account,
        "actor": actor,
        "reason": reason,
        "stack": stack.to_dict() if stack else None,
        "withoutStack": None if stack else _lost(settings, settings.topic_arn),
        "topicArn": settings.topic_arn,
        "permissions": permissions,
        "outcome": None,
        "keys": [
            {
                "accessKeyId": key_id,
                "owner": owner,
                "plan": [{"action": a.name, "target": a.target} for a in actions],
                "outcome": None,
                "actions": [],
                "notification": None,
                "response": None,
            }
            for key_id, owner, _, actions in planned
        ],
    }
    lines = []
    for key_id, owner, _, actions in planned:
        lines.append(f"Contain access key {key_id} of IAM user {owner} (IAM names the owner), account {account}:")
        lines += [f"  - {a.describe()}" for a in actions]
    lines.append(f"  - notify: {_topic_line(settings.topic_arn, args.dry_run)}")
    lines.append(f"  - settings: {stack.line() if stack else _no_stack_line(settings, settings.topic_arn)}")
    if permissions is not None:
        lines.append(f"  - your permissions: {permissions['summary']}")
    plan_text = "\n".join(lines)
    if args.format == "json":
        if not args.dry_run and not args.yes:
            console.err.write(plan_text + "\n")  # the question needs the plan beside it
    else:
        console.print(plan_text)
    if not args.dry_run and not args.yes:
        subject = ", ".join(f"{k} of user {o}" for k, o, *_ in planned)
        if not console.confirm(f"Contain {subject} now?"):
            doc["outcome"] = "declined"
            if args.format == "json":
                console.document(doc)
            console.warn("declined: nothing was changed")
            return NOTHING_DONE

    problems: list[str] = []
    any_done = False
    results_text = []
    ledger = _ledger_for(clients, settings, stack)
    for entry, (key_id, _owner, incident, _) in zip(doc["keys"], planned, strict=True):
        response = respond(incident, settings, iam, account=account, now=at, ledger=ledger, actor=actor, reason=reason)
        as_named(response)
        if response.outcome is Outcome.FAILED:  # the engine's words speak of Lambda's retries: nothing retries this
            response.reason = failed_reason(response)
        entry["outcome"] = response.outcome.value
        entry["actions"] = [
            {"action": r.action, "target": r.target, "status": r.status.value, "detail": r.detail or None}
            for r in response.results
        ]
        entry["response"] = notify.document(response)
        any_done = any_done or any(r.status.value == "done" for r in response.results)
        notification = "not sent (dry-run)" if args.dry_run else "no topic configured"
        if settings.topic_arn and not args.dry_run:
            try:
                publish.publish(clients, settings.topic_arn, notify.message(response))
                notification = f"sent to {settings.topic_arn}"
            except publish.PublishFailed as e:
                notification = f"FAILED: {e}"
                problems.append(f"the notification for {key_id} was not sent ({e})")
        entry["notification"] = notification
        text_reason = response.reason
        if response.outcome is Outcome.FAILED:
            names = ", ".join(r.action for r in response.failures) or "lookup"
            problems.insert(0, f"containment of {key_id} FAILED ({names})")
        elif response.outcome not in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN):
            problems.insert(0, f"{key_id}: {response.outcome.value}: {response.reason}")
        which = f"{key_id}: " if len(planned) > 1 else ""
        results_text.append(f"\n{response.outcome.value}: {which}{text_reason}")
        if response.owner_note:
            results_text.append(f"NOTE: {response.owner_note}")
        results_text.append(render.results_text(response.results))
        results_text.append(f"notification: {notification}")
        if response.outcome is Outcome.CONTAINED:
            results_text.append(
                f"Next: review what the key did (CloudTrail), delete it after replacing it, then "
                f'`keyguard release --user {response.owner} --reason "..."`.'
            )
    outcomes = {e["outcome"] for e in doc["keys"]}
    doc["outcome"] = outcomes.pop() if len(outcomes) == 1 else "mixed"
    if args.format == "json":
        console.document(doc)
    else:
        console.print("\n".join(results_text))
    if problems:
        hint = "fix the cause, then run the same command again (it is idempotent)"
        console.warn(f"{'; '.join(problems)}: {hint}")
        return FAILED if any_done else NOTHING_DONE
    return OK


def _protection(protection: Any, incident: Any, owner: str, settings: Any) -> str | None:
    stop = protection(incident, owner, settings)
    return stop[1] if stop else None


# ------------------------------------------------------------------------------------------ release


def release(args: Any, clients: OperatorClients, console: Console) -> int:
    from keyguard.operator.contain import caller
    from keyguard.operator.release import DEFAULT_REASON, execute, plan_release

    if args.confirm_reactivate is not None and args.reactivate is None:
        raise OperatorError("--confirm-reactivate needs --reactivate KEY")
    if args.reactivate is not None:
        if args.role is not None:
            raise OperatorError("--reactivate applies to users' access keys, not to roles")
        check_key_id(args.reactivate)
    if args.confirm_reactivate is not None:
        check_key_id(args.confirm_reactivate)
    check_name(args.user if args.user is not None else args.role, "user" if args.user is not None else "role")
    reason = _reason(args.reason, DEFAULT_REASON)
    topic_arg = _check_topic(args.topic_arn)
    stack = _stack_to_act(clients, args, "release")
    settings = _settings(stack)
    topic = topic_arg or _stack_topic(stack) or _env_topic()
    account, actor = caller(clients)
    iam, at = clients.iam, now()
    ledger = _ledger_for(clients, settings, stack)
    state = read_user(iam, args.user) if args.user is not None else read_role(iam, args.role)
    attach_ledger(state, ledger)
    plan = plan_release(
        state, actor=actor, reason=reason, now=at, reactivate=args.reactivate, deny_all_arn=settings.deny_all_policy_arn
    )
    if plan.empty:
        if args.format == "json":
            doc = _release_doc(state, plan, [], actor, reason, at, account=account)
            doc["outcome"] = "nothing-to-release"
            console.document(doc)
        else:
            for note in plan.notes:
                console.print(note)
            console.print("Nothing to release.")
        return OK
    _check_topic_exists(clients, topic, dry_run=args.dry_run)

    steps = [*plan.actions, *([plan.reactivate] if plan.reactivate else [])]
    permissions = _simulate(clients, actor, steps) if args.dry_run else None
    lines = [f"Release {state.subject} in account {account} (released by {actor}, why: {reason}):"]
    contained = render.containment_words(state)
    if contained:
        lines.append(f"  contained: {contained}")
    if state.hold in ("partial", "failed"):
        lines.append(f"  hold: {state.verdict.words()}: its last containment FAILED; the release takes off what holds")
    elif ledger is None:
        lines.append("  hold: read from IAM only (no ledger: whether every layer held is not known)")
    lines += [f"  - {a.describe()}" for a in steps]
    lines.append(f"  - notify: {_topic_line(topic, args.dry_run)}")
    lines += [f"  note: {note}" for note in plan.notes]
    if not plan.reactivate and state.kind == "user":
        inactive = [k.key_id for k in state.keys if k.status != "Active"]
        if inactive:
            lines.append(f"  keys stay inactive: {', '.join(inactive)}")
    if permissions is not None:
        lines.append(f"  - your permissions: {permissions['summary']}")
    plan_text = "\n".join(lines)
    if args.format == "json":
        if not args.dry_run and not args.yes:
            console.err.write(plan_text + "\n")
    else:
        console.print(plan_text)
    if args.dry_run:
        if args.format == "json":
            doc = _release_doc(state, plan, [a.dry_run() for a in steps], actor, reason, at, account=account)
            doc["permissions"] = permissions
            console.document(doc)
        else:
            console.print("dry-run: nothing was changed.")
        return OK
    declined = None
    if not args.yes and not console.confirm(f"Release {state.subject}?"):
        declined = "declined: nothing was changed"
    elif plan.reactivate and args.confirm_reactivate != plan.reactivate.key_id:
        if args.confirm_reactivate is not None:
            declined = (
                f"--confirm-reactivate {args.confirm_reactivate} is not {plan.reactivate.key_id}: nothing was changed"
            )
        else:
            typed = console.ask(
                f"Reactivating {plan.reactivate.key_id} lets it sign requests again. Type the key id to confirm: ",
                hint=f"pass --confirm-reactivate {plan.reactivate.key_id}",
            )
            if typed != plan.reactivate.key_id:
                declined = "reactivation not confirmed: nothing was changed"
    if declined:
        if args.format == "json":
            doc = _release_doc(state, plan, [], actor, reason, at, account=account)
            doc["outcome"] = "declined"
            console.document(doc)
        console.warn(declined)
        return NOTHING_DONE

    findings = _held_incidents(settings, ledger, state)  # read before the ledger records the release
    region = stack.region if stack and stack.region else clients.region  # Security Hub: where the stack reports
    if plan.release_in_ledger and ledger is not None:
        # before IAM changes: the tamper watch must see a release made through keyguard, not an undoing
        ledger.released(
            kind=state.kind,
            name=state.name,
            at=at,
            actor=actor,
            reason=reason,
            incident=state.ledger.incident if state.ledger else None,
            detail={"steps": [a.describe() for a in steps]},
        )
    results = execute(iam, steps)
    doc = _release_doc(state, plan, results, actor, reason, at, account=account)
    failed = [r for r in results if r.status.value == "failed"]
    notification, problems = "no topic configured", []
    if failed:
        problems.append(f"release FAILED at {failed[0].line()}; the steps after it were not done")
    if topic:
        try:
            publish.publish(clients, topic, _release_message(state, doc, failed=bool(failed)))
            notification = f"sent to {topic}"
        except publish.PublishFailed as e:
            notification = f"FAILED: {e}"
            problems.append(f"the notification was not sent ({e})")
    doc["notification"] = notification
    if findings and not failed:  # issue 12: the incidents' Security Hub findings go to RESOLVED
        from keyguard.report import securityhub

        doc["securityHub"] = securityhub.mark_resolved(
            clients.get("securityhub", region),
            findings,
            account=account,
            region=region,
            by=actor,
            reason=reason,
        )
    if args.format == "json":
        console.document(doc)
    else:
        console.print(f"\n{doc['outcome'].upper()}:")
        console.print(render.results_text(results))
        console.print(f"notification: {notification}")
    if problems:
        console.warn("; ".join(problems))
        done = any(r.status.value in ("done", "already-done") for r in results)
        return FAILED if done else NOTHING_DONE
    return OK


def _held_incidents(settings: Any, ledger: Any, state: PrincipalState) -> list[str]:
    """The incidents whose Security Hub findings a release resolves (SecurityHubFindings on), from the ledger."""
    if not getattr(settings, "security_hub", False) or ledger is None:
        return []
    from keyguard.report import securityhub

    try:
        return securityhub.incidents_held(ledger, state.kind, state.name)
    except Exception:  # a release is never blocked by reporting; the ledger error shows elsewhere
        return []


def _release_doc(
    state: PrincipalState,
    plan: Any,
    results: list[Any],
    actor: str,
    reason: str,
    at: datetime,
    account: str | None = None,
) -> dict[str, Any]:
    statuses = {r.status.value for r in results}
    outcome = "release-failed" if "failed" in statuses else "would-release" if statuses == {"dry-run"} else "released"
    steps = [*plan.actions, *([plan.reactivate] if plan.reactivate else [])]
    return {
        "keyguard": 1,
        "command": "release",
        "outcome": outcome,
        "at": stamp(at),
        "account": account,
        "principal": {"type": state.kind, "name": state.name, "arn": state.arn},
        "hold": state.hold,
        "containment": _containment_doc(state),
        "releasedBy": actor,
        "reason": reason,
        "removedPolicies": [p.name for p in state.policies],
        "reactivated": plan.reactivate.key_id if plan.reactivate and results and "failed" not in statuses else None,
        "leakedKeys": state.leaked,
        "notes": plan.notes,
        "plan": [{"action": a.name, "target": a.target} for a in steps],
        "actions": [
            {"action": r.action, "target": r.target, "status": r.status.value, "detail": r.detail or None}
            for r in results
        ],
        "permissions": None,
        "notification": None,
    }


def _containment_doc(state: PrincipalState) -> dict[str, Any] | None:
    """What release is undoing: the ledger's last containment (verbatim), or the tag mirror's (named so)."""
    verdict = state.verdict
    if verdict is not None and state.ledger is not None and state.ledger.held:
        return {
            "from": "ledger",
            "at": stamp(verdict.at),
            "actor": verdict.actor,
            "reason": verdict.reason,
            "incident": verdict.incident,
            "state": verdict.state,
            "missing": list(verdict.missing),
        }
    record = state.containment
    if not record:
        return None
    return {
        "from": "tags",
        "at": record.get("contained-at"),
        "actor": None,
        "reason": record.get("reason"),
        "incident": record.get("incident"),
        "state": state.hold,
        "missing": [],
    }


def _release_message(state: PrincipalState, doc: dict[str, Any], *, failed: bool) -> dict[str, Any]:
    head = "release FAILED" if failed else "RELEASED"
    subject = f"keyguard: {head} {state.subject}"
    if doc["reactivated"]:
        subject += f" (key {doc['reactivated']} reactivated)"
    text = "\n".join(
        [
            f"{head}: {state.subject} in account {doc['account']}.",
            f"Released by : {doc['releasedBy']}",
            f"Why         : {doc['reason']}",
            f"At          : {doc['at']}",
            "",
            "Actions:",
            *[f"  - {a['action']} {a['target']}: {a['status']}" for a in doc["actions"]],
        ]
    )
    machine = {k: v for k, v in doc.items() if k not in ("command", "keyguard", "notification", "permissions")}
    return publish.message(subject, text, machine, severity="high" if failed else "medium", outcome=doc["outcome"])


# ------------------------------------------------------------------------------------------ audit


def audit(args: Any, clients: OperatorClients, console: Console) -> int:
    from keyguard.cli import _version
    from keyguard.operator import audit_formats

    regions = None
    if args.regions is not None:
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
        bad = [r for r in regions if not REGION_RE.fullmatch(r)]
        if bad:
            raise OperatorError(f"not AWS region names: {', '.join(bad)}")
        if not regions:
            raise OperatorError("--regions names no region")
    if args.user is not None:
        check_name(args.user, "user")
    with console.progress("auditing: credential report, account summary, EC2 in every region"):
        report = audit_mod.run(
            clients, now=now(), max_key_age_days=args.max_key_age, unused_days=args.unused_days, regions=regions
        )
    if args.user is not None and args.user.lower() not in {k.user.lower() for k in report.keys}:
        check_user_exists(clients, args.user)  # a user without keys is fine; a user that does not exist is not
    report = audit_formats.filtered(report, user=args.user, only_flagged=args.only_flagged)
    ids: dict[tuple[str, int], str] | None = None
    if args.inventory:
        with console.progress("reading access key ids", total=len({k.user for k in report.keys})):
            ids = audit_formats.key_ids(clients.iam, report)
    if args.format == "json":
        doc = {"keyguard": 1, "command": "audit", **report.to_dict()}
        for entry, key in zip(doc["accessKeys"], report.keys, strict=True):
            entry["severity"] = audit_formats.key_severity(report, key)
            if ids is not None:
                entry["accessKeyId"] = ids.get((key.user, key.slot))
        for entry, finding in zip(doc["findings"], report.findings, strict=True):
            entry["severity"] = audit_formats.severity(finding, report)
        doc["failOn"] = args.fail_on
        console.document(doc)
    elif args.format == "ocsf":
        console.document(audit_formats.ocsf(report, _version()))
    elif args.format == "csv" and ids is not None:
        console.print(render.csv_text(audit_formats.INVENTORY_HEADERS, audit_formats.inventory_rows(report, ids)))
    elif args.format == "csv":
        rows = [
            [*row, audit_formats.severity(f, report)]
            for row, f in zip(render.finding_rows(report), report.findings, strict=True)
        ]
        console.print(render.csv_text((*render.FINDING_HEADERS, "SEVERITY"), rows))
    else:
        console.print(render.audit_text(report))
    problems = []
    if report.errors:
        problems.append(f"audit INCOMPLETE: {len(report.errors)} check(s) could not run: {'; '.join(report.errors)}")
    if args.fail_on:
        hits = audit_formats.at_or_above(report, args.fail_on)
        if hits:
            problems.append(f"{len(hits)} finding(s) at or above {args.fail_on} (--fail-on)")
    if problems:
        console.warn("; ".join(problems))
        return FAILED
    return OK


def check_user_exists(clients: OperatorClients, user: str) -> None:
    from keyguard.aws import error_code

    try:
        clients.iam.get_user(UserName=user)
    except Exception as e:
        if error_code(e) == "NoSuchEntity":
            raise OperatorError(f"no IAM user named {user!r} in this account") from e
        raise


# ------------------------------------------------------------------------------------------ history


def history(args: Any, clients: OperatorClients, console: Console) -> int:
    since = parse_since(args.since, now()) if args.since is not None else None
    kind, name = ("user", args.user) if args.user is not None else ("role", args.role) if args.role else (None, None)
    if name is not None:
        check_name(name, kind)
    stack, search = _find_stack(clients, args)
    ledger = _ledger_for(clients, _settings(stack), stack)
    if ledger is None:
        from keyguard.operator import stack as stack_mod

        where = stack_mod.not_found(search) if stack is None else f"{stack.line()} names no ledger table"
        raise OperatorError(
            f"no ledger to read: {where}. Pass --stack NAME and/or --region REGION where the stack is deployed "
            "(or set KEYGUARD_LEDGER_TABLE); `keyguard status` shows what IAM holds without it"
        )
    # the whole history is asked from the beginning of time: Ledger.history(since=None) queries its index with
    # an empty string, which DynamoDB refuses for a key attribute (reported to the ledger's owner)
    key_id = getattr(args, "key", None)
    if key_id is not None:
        entries = _key_history(ledger, clients, check_long_term_key_id(key_id), since)
    else:
        entries = ledger.history(since=since or EPOCH, kind=kind, name=name)
    if args.format == "json":
        console.document(documents.history(entries, since))
    elif args.format == "csv":
        console.print(render.csv_text(documents.HISTORY_HEADERS, documents.history_rows(entries)))
    elif console.color and entries:
        head = documents.history_text([], since).replace(": nothing recorded.", f" ({len(entries)} entries):")
        console.table(documents.HISTORY_HEADERS, documents.history_rows(entries), title=head)
    else:
        console.print(documents.history_text(entries, since))
    return OK


def _key_history(ledger: Any, clients: OperatorClients, key_id: str, since: datetime | None) -> list[Any]:
    """What concerns one key: its owner's entries that name it (a containment lists its keys; a tamper
    notice names the key it saw), and the releases of those incidents. The owner is the ledger's (the key
    may be deleted since), else IAM's."""
    record = ledger.key(key_id)
    owner = record.user if record is not None and record.user else owner_of(clients.iam, key_id)
    entries = ledger.history(since=since or EPOCH, kind="user", name=owner)

    def names_key(entry: Any) -> bool:
        d = entry.detail or {}
        listed = {*(d.get("keys") or ()), *(d.get("leakedKeys") or ())}
        return (
            key_id in listed
            or key_id in (d.get("keyId"), d.get("accessKeyId"))
            or ((entry.incident or "").endswith(f":{key_id}"))
        )

    incidents = {e.incident for e in entries if e.incident and names_key(e)}
    return [e for e in entries if names_key(e) or (e.event == "released" and e.incident in incidents)]


def parse_since(text: str, at: datetime) -> datetime:
    """2025-03-17, 2025-03-17T09:00:00Z, or a span back from now: 30m, 12h, 7d."""
    span = re.fullmatch(r"([0-9]{1,5})([mhd])", text.strip())
    if span:
        amount, unit = int(span.group(1)), span.group(2)
        return at - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OperatorError(
            f"--since {text!r}: give a date (2025-03-17), a time (2025-03-17T09:00:00Z) or 7d/12h/30m"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------ helpers


def _reason(text: str | None, default: str) -> str:
    """The operator's words, kept as written (the tag mirror sanitises its own copy). Only line breaks and
    other control characters are refused: a reason is one line in every record it lands in."""
    if text is None or not text.strip():
        return default
    if any(not ch.isprintable() for ch in text):
        raise OperatorError("--reason must be one line of printable text (no line breaks or control characters)")
    if len(text) > REASON_MAX:
        raise OperatorError(f"--reason is limited to {REASON_MAX} characters")
    return text.strip()


def _check_topic(topic: str | None) -> str | None:
    if topic is None:
        return None
    if not TOPIC_RE.fullmatch(topic):
        raise OperatorError(f"--topic-arn {topic!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    return topic


def _check_topic_exists(clients: OperatorClients, topic: str | None, *, dry_run: bool) -> None:
    """Before the first change: the topic must exist, so that nobody acts believing people will be told."""
    if not topic:
        return
    from keyguard.aws import error_code

    try:
        clients.sns(topic).get_topic_attributes(TopicArn=topic)
    except Exception as e:
        code = error_code(e)
        if code in ("NotFound", "NotFoundException"):
            raise OperatorError(f"topic {topic} does not exist: nothing was changed (check --topic-arn)") from e
        if code in ("AuthorizationError", "AccessDenied", "AccessDeniedException"):
            return  # sns:GetTopicAttributes not granted: the publish will tell
        raise


def _env_topic() -> str | None:
    return os.environ.get("KEYGUARD_TOPIC_ARN") or None


def _topic_line(topic: str | None, dry_run: bool) -> str:
    if dry_run:
        return (
            f"would notify {topic}"
            if topic
            else "no topic configured (the stack's, --topic-arn or $KEYGUARD_TOPIC_ARN)"
        )
    return topic or f"no topic configured ({_TOPIC_SOURCES}): nobody else is told"


_TOPIC_SOURCES = "the stack's, --topic-arn or $KEYGUARD_TOPIC_ARN"


def _find_stack(clients: OperatorClients, args: Any) -> tuple[Any, Any]:
    """The stack's settings (None when none is found) and where they were looked for. A stack named with
    --stack must exist."""
    from keyguard.operator import stack as stack_mod

    found, search = stack_mod.find(clients, getattr(args, "stack", None))
    if found is None and search.named:
        raise OperatorError(stack_mod.not_found(search))
    return found, search


WITHOUT_STACK = (
    "no ledger record (so the tamper watch will not re-contain it), no deny-all boundary unless "
    "$KEYGUARD_DENY_ALL_POLICY_ARN, nobody notified unless --topic-arn"
)


def _stack_to_act(clients: OperatorClients, args: Any, verb: str) -> Any:
    """contain and release act with the stack, or, when it is not found, only with an explicit --no-stack:
    without it they would skip what it protects, its ledger, its boundary and its topic."""
    from keyguard.operator import stack as stack_mod

    found, search = _find_stack(clients, args)
    no_stack = getattr(args, "no_stack", False)
    if found is not None and no_stack:
        raise OperatorError(f"--no-stack, but {found.line()} is deployed: nothing was changed; drop --no-stack")
    if found is None and not no_stack and not getattr(args, "account", None):
        # (organization mode reads the member's settings from the organization, keyguard.operator.organization)
        raise OperatorError(
            f"{stack_mod.not_found(search)}: nothing was changed. Pass --stack NAME and/or --region REGION where "
            f"the stack is deployed, or --no-stack to {verb} without one ({WITHOUT_STACK})"
        )
    return found


def _stack_topic(stack: Any) -> str | None:
    return stack.get("topicArn") if stack else None


def _lost(settings: Any, topic: str | None) -> list[str]:
    """What acting without the stack loses (what the environment or --topic-arn does not give back)."""
    lost = ["the stack's protected principals (only $KEYGUARD_PROTECTED_PRINCIPALS is honoured)"]
    if not settings.ledger_table:
        lost.append(
            "no ledger record: the tamper watch will not re-contain it, and `release` and `status` read only IAM"
        )
    if not settings.deny_all_policy_arn:
        lost.append("no deny-all boundary (only the inline deny-all policy; $KEYGUARD_DENY_ALL_POLICY_ARN names one)")
    if not topic:
        lost.append("nobody is notified (no topic: --topic-arn names one)")
    return lost


def _no_stack_line(settings: Any, topic: str | None) -> str:
    return "none (--no-stack): " + "; ".join(_lost(settings, topic))


def _iam_only(stack: Any, search: Any) -> str:
    from keyguard.operator import stack as stack_mod

    why = stack_mod.not_found(search) if stack is None else f"{stack.line()} names no ledger table"
    return (
        f"{why}: this shows IAM only (keyguard's policies and tags), not the ledger's record of who contained "
        "and why, nor whether every layer held; pass --stack NAME and/or --region REGION where the stack is deployed"
    )


def _settings(stack: Any) -> Any:
    """The engine's settings as the stack's functions have them: the stack's values over the environment."""
    from keyguard.settings import Settings

    env = dict(os.environ)
    if stack is not None:
        env.update(stack.environment())
    return Settings.from_env(env)


def _ledger_for(clients: OperatorClients, settings: Any, stack: Any = None) -> Any:
    """The stack's ledger (its table from the stack's settings, or KEYGUARD_LEDGER_TABLE), in the stack's
    region: IAM is global, the table is not."""
    if not settings.ledger_table:
        return None
    from keyguard.ledger import Ledger

    region = stack.region if stack is not None and stack.region else None
    return Ledger(settings.ledger_table, clients.get("dynamodb", region))


def _simulate(clients: OperatorClients, actor: str, actions: list[Any]) -> dict[str, Any]:
    from keyguard.operator import simulate

    return simulate.check(clients, actor, actions)


COMMANDS = {"status": status, "contain": contain, "release": release, "audit": audit, "history": history}
