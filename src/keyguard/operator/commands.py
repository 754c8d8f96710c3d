"""The operator commands behind `keyguard status | contain | release | audit` (argument parsing is in
keyguard.cli). Exit codes: 0 done, 1 the change (or part of it) did not happen or the audit is
incomplete, 2 nothing was done: bad input, unknown user or key, no credentials, unreachable endpoint."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from keyguard.operator import audit as audit_mod
from keyguard.operator import publish, render
from keyguard.operator.clients import OperatorClients, OperatorError, describe
from keyguard.operator.principal import (
    PrincipalState,
    attach_ledger,
    check_key_id,
    check_long_term_key_id,
    held_principals,
    owner_of,
    read_role,
    read_user,
    stamp,
)

OK, NOT_DONE, ERROR, INTERRUPTED = 0, 1, 2, 130
REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")


def now() -> datetime:
    return datetime.now(UTC)


class Console:
    """Where a command writes and reads: results to stdout, prompts and errors to stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, stdin: TextIO | None = None) -> None:
        self.out, self.err, self.stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(f"keyguard: {text}", file=self.err)

    def ask(self, question: str) -> str:
        self.err.write(question)
        self.err.flush()
        return self.stdin.readline().strip()

    def confirm(self, question: str) -> bool:
        return self.ask(f"{question} [y/N] ").lower() in ("y", "yes")


def run(args: Any, console: Console | None = None) -> int:
    console = console or Console()
    try:
        clients = OperatorClients(args.profile, args.region, args.endpoint_url)
        return COMMANDS[args.command](args, clients, console)
    except KeyboardInterrupt:
        console.warn("interrupted")
        return INTERRUPTED
    except Exception as e:  # one line, never a traceback
        console.warn(describe(e))
        return ERROR


# ------------------------------------------------------------------------------------------ status


def status(args: Any, clients: OperatorClients, console: Console) -> int:
    iam, at = clients.iam, now()
    if args.user is None and args.key is None and args.role is None:
        held = held_principals(iam)
        if args.format == "json":
            console.print(render.json_text({"held": [h.to_dict(at) for h in held]}))
        elif args.format == "csv":
            console.print(render.csv_text(render.HELD_HEADERS, render.held_rows(held)))
        else:
            console.print(render.held_text(held))
        return OK
    highlight = None
    if args.key is not None:
        highlight = check_long_term_key_id(args.key)
        state = read_user(iam, owner_of(iam, args.key))
    elif args.user is not None:
        state = read_user(iam, args.user)
    else:
        state = read_role(iam, args.role)
    attach_ledger(state, _ledger(clients))
    _show_state(state, at, args.format, console, highlight)
    return OK


def _show_state(state: PrincipalState, at: datetime, fmt: str, console: Console, highlight: str | None) -> None:
    if fmt == "json":
        console.print(render.json_text(state.to_dict(at)))
    elif fmt == "csv" and state.kind == "user":
        console.print(render.csv_text(render.KEY_HEADERS, render.key_rows(state, at, highlight)))
    elif fmt == "csv":
        console.print(render.csv_text(("POLICY", "EFFECT"), [[p.name, p.effect] for p in state.policies]))
    else:
        console.print(render.status_text(state, at, highlight))


# ------------------------------------------------------------------------------------------ contain


def contain(args: Any, clients: OperatorClients, console: Console) -> int:
    from keyguard import notify
    from keyguard.operator.contain import DEFAULT_REASON, caller, manual_incident, settings_for
    from keyguard.plan import Outcome, plan_actions, protection
    from keyguard.respond import respond
    from keyguard.settings import Settings

    key_id = check_long_term_key_id(args.key)
    reason = _reason(args.reason, DEFAULT_REASON)
    settings = settings_for(Settings.from_env(), dry_run=args.dry_run, topic_arn=args.topic_arn)
    account, actor = caller(clients)
    iam, at = clients.iam, now()
    owner = owner_of(iam, key_id)  # for the question; the engine asks IAM again and acts on its answer
    incident = manual_incident(key_id, account, clients.region, reason, actor, at)
    stop = protection(incident, owner, settings)
    if stop:
        raise OperatorError(f"{stop[1]} keyguard will not act on it")

    if args.format != "json":
        console.print(f"Contain access key {key_id} of IAM user {owner} (IAM names the owner), account {account}:")
        steps = plan_actions(incident, owner, at, boundary_arn=settings.deny_all_policy_arn)
        console.print("\n".join(f"  - {a.describe()}" for a in steps))
        console.print(f"  - notify: {_topic_line(settings.topic_arn, args.dry_run)}")
    if not args.dry_run and not args.yes and not console.confirm(f"Contain {key_id} of user {owner} now?"):
        console.warn("aborted: nothing was changed")
        return NOT_DONE

    ledger = _ledger(clients, settings)
    response = respond(incident, settings, iam, account=account, now=at, ledger=ledger, actor=actor, reason=reason)
    notification = "not sent (dry-run)" if args.dry_run else "no topic configured"
    failed_notice = False
    if settings.topic_arn and not args.dry_run:
        try:
            publish.publish(clients, settings.topic_arn, notify.message(response))
            notification = f"sent to {settings.topic_arn}"
        except publish.PublishFailed as e:
            notification, failed_notice = f"FAILED: {e}", True
    if args.format == "json":
        console.print(render.json_text({**notify.document(response), "notification": notification}))
    else:
        reason = response.reason
        if response.outcome is Outcome.FAILED:  # the engine's text speaks of Lambda's retries; nothing retries here
            reason = f"{', '.join(r.action for r in response.failures)} did not happen (see below)"
        console.print(f"\n{response.outcome.value}: {reason}")
        if response.owner_note:
            console.print(f"NOTE: {response.owner_note}")
        console.print(render.results_text(response.results))
        console.print(f"notification: {notification}")
        if response.outcome is Outcome.CONTAINED:
            console.print(
                f"\nNext: review what the key did (CloudTrail), delete it after replacing it, then "
                f"`keyguard release --user {response.owner}`."
            )
    if failed_notice:
        console.warn(f"the notification was not sent: {notification}")
    ok = response.outcome in (Outcome.CONTAINED, Outcome.WOULD_CONTAIN) and not failed_notice
    if response.outcome is Outcome.FAILED:
        names = ", ".join(r.action for r in response.failures) or "lookup"
        console.warn(f"containment FAILED ({names}): fix the cause, then run the same command again (it is idempotent)")
    return OK if ok else NOT_DONE


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
    reason = _reason(args.reason, DEFAULT_REASON)
    topic = args.topic_arn or _env_topic()
    account, actor = caller(clients)
    iam, at = clients.iam, now()
    from keyguard.settings import Settings

    settings = Settings.from_env()
    ledger = _ledger(clients, settings)
    state = read_user(iam, args.user) if args.user is not None else read_role(iam, args.role)
    attach_ledger(state, ledger)
    plan = plan_release(
        state, actor=actor, reason=reason, now=at, reactivate=args.reactivate, deny_all_arn=settings.deny_all_policy_arn
    )
    if plan.empty:
        for note in plan.notes:
            console.print(note)
        console.print("Nothing to release.")
        return OK

    steps = [*plan.actions, *([plan.reactivate] if plan.reactivate else [])]
    if args.format != "json":
        console.print(f"Release {state.subject} in account {account} (released by {actor}, why: {reason}):")
        console.print("\n".join(f"  - {a.describe()}" for a in steps))
        console.print(f"  - notify: {_topic_line(topic, args.dry_run)}")
        for note in plan.notes:
            console.print(f"  note: {note}")
        if not plan.reactivate and state.kind == "user":
            inactive = [k.key_id for k in state.keys if k.status != "Active"]
            if inactive:
                console.print(f"  keys stay inactive: {', '.join(inactive)}")
    if args.dry_run:
        if args.format == "json":
            console.print(render.json_text(_release_doc(state, plan, [a.dry_run() for a in steps], actor, reason, at)))
        else:
            console.print("dry-run: nothing was changed.")
        return OK
    if not args.yes and not console.confirm(f"Release {state.subject}?"):
        console.warn("aborted: nothing was changed")
        return NOT_DONE
    if plan.reactivate and args.confirm_reactivate != plan.reactivate.key_id:
        typed = console.ask(
            f"Reactivating {plan.reactivate.key_id} lets it sign requests again. Type the key id to confirm: "
        )
        if typed != plan.reactivate.key_id:
            console.warn("reactivation not confirmed: nothing was changed")
            return NOT_DONE

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
    notification, failed_notice = "no topic configured", False
    if topic:
        try:
            publish.publish(clients, topic, _release_message(state, doc, failed=bool(failed)))
            notification = f"sent to {topic}"
        except publish.PublishFailed as e:
            notification, failed_notice = f"FAILED: {e}", True
    doc["notification"] = notification
    if args.format == "json":
        console.print(render.json_text(doc))
    else:
        console.print(f"\n{doc['outcome']}:")
        console.print(render.results_text(results))
        console.print(f"notification: {notification}")
    if failed:
        console.warn(f"release FAILED at {failed[0].line()}; the steps after it were not done")
    if failed_notice:
        console.warn(f"the notification was not sent: {notification}")
    return NOT_DONE if failed or failed_notice else OK


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
    return {
        "outcome": outcome,
        "at": stamp(at),
        "account": account,
        "principal": {"type": state.kind, "name": state.name, "arn": state.arn},
        "releasedBy": actor,
        "reason": reason,
        "removedPolicies": [p.name for p in state.policies],
        "reactivated": plan.reactivate.key_id if plan.reactivate and "failed" not in statuses else None,
        "leakedKeys": state.leaked,
        "notes": plan.notes,
        "actions": [
            {"action": r.action, "target": r.target, "status": r.status.value, "detail": r.detail or None}
            for r in results
        ],
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
    return publish.message(subject, text, doc, severity="high" if failed else "medium", outcome=doc["outcome"])


# ------------------------------------------------------------------------------------------ audit


def audit(args: Any, clients: OperatorClients, console: Console) -> int:
    regions = None
    if args.regions:
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
        bad = [r for r in regions if not REGION_RE.fullmatch(r)]
        if bad:
            raise OperatorError(f"not AWS region names: {', '.join(bad)}")
        if not regions:
            raise OperatorError("--regions names no region")
    report = audit_mod.run(
        clients, now=now(), max_key_age_days=args.max_key_age, unused_days=args.unused_days, regions=regions
    )
    if args.format == "json":
        console.print(render.json_text(report.to_dict()))
    elif args.format == "csv":
        console.print(render.csv_text(render.FINDING_HEADERS, render.finding_rows(report)))
    else:
        console.print(render.audit_text(report))
    if report.errors:
        console.warn(f"audit INCOMPLETE: {len(report.errors)} check(s) could not run: {'; '.join(report.errors)}")
        return NOT_DONE
    return OK


# ------------------------------------------------------------------------------------------ helpers


def _ledger(clients: OperatorClients, settings: Any = None) -> Any:
    """keyguard's ledger, when the stack's table is known (KEYGUARD_LEDGER_TABLE); else None (tags only)."""
    if settings is None:
        from keyguard.settings import Settings

        settings = Settings.from_env()
    if not settings.ledger_table:
        return None
    from keyguard.ledger import Ledger

    return Ledger(settings.ledger_table, clients.get("dynamodb"))


def _reason(text: str | None, default: str) -> str:
    text = " ".join((text or "").split())
    if len(text) > 200:
        raise OperatorError("--reason is limited to 200 characters")
    return text or default


def _env_topic() -> str | None:
    import os

    return os.environ.get("KEYGUARD_TOPIC_ARN") or None


def _topic_line(topic: str | None, dry_run: bool) -> str:
    if dry_run:
        return f"would notify {topic}" if topic else "no topic configured (KEYGUARD_TOPIC_ARN or --topic-arn)"
    return topic or "no topic configured (KEYGUARD_TOPIC_ARN or --topic-arn): nobody else is told"


COMMANDS = {"status": status, "contain": contain, "release": release, "audit": audit}
