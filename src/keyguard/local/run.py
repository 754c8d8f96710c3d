"""`keyguard demo` and `keyguard invoke`: events through the template's rules into an emulated account.

Text for people (what was seeded, routed, done, notified; IAM before -> after), or one JSON document
(`--format json`). Against `--endpoint-url` the emulator's account outlives the command, so what was
seeded is removed afterwards unless `--keep` is given, and the output says which."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from keyguard.errors import KeyguardError

DONE, FAILED, NOTHING_DONE = 0, 1, 2


def run(args: Any) -> int:
    import logging

    from keyguard.cli import error_document

    saved = os.environ.get("POWERTOOLS_LOG_LEVEL")
    handlers_log = logging.getLogger("keyguard")  # the handlers' powertools Logger (service keyguard)
    level = handlers_log.level
    if not args.verbose:
        # the report says what the functions did; their log lines (stderr) only when they fail, or --verbose
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from keyguard.local import emulator

    emulator.LOGS_TO_STDERR = True
    try:
        return _run(args, error_document)
    finally:  # the process may go on (tests, a REPL): leave its environment as it was
        emulator.LOGS_TO_STDERR = False
        # a handler's Logger made during the run took the quiet level; later Loggers of the same service
        # reuse it as it is, so give it the level it would have had (powertools' default: INFO)
        handlers_log.setLevel(level or (saved or "INFO").upper())
        if saved is None:
            os.environ.pop("POWERTOOLS_LOG_LEVEL", None)
        else:
            os.environ["POWERTOOLS_LOG_LEVEL"] = saved


def _run(args: Any, error_document: Any) -> int:
    out: list[dict[str, Any]] = []
    text = args.format != "json"
    try:
        from keyguard.local import emulator

        template = args.template or emulator.DEFAULT_TEMPLATE
        if not template.is_file():
            raise KeyguardError(f"template not found: {template}")
        rules = emulator.load_rules(template)
        if args.command == "demo":
            folder = args.events or emulator.DEFAULT_EVENTS
            files = sorted(folder.glob("*.json"))
            if not files:
                raise KeyguardError(f"no events in {folder}")
        else:
            files = [args.event_file]
        events = [(path, _read_event(path)) for path in files]  # every file checked before the first is run
        tester = _aws_tester() if args.aws_patterns else None
        expected = _expected(files[0].parent) if args.mode == "enforce" else {}
        for path, event in events:
            with emulator.own_stack_environment():
                doc = _run_one(emulator, rules, path, event, args, tester, text)
            _compare(doc, expected.get(path.name), text)
            out.append(doc)
        failed = [d["file"] for d in out if d["unexpected"]]
        if text:
            where = f" against {args.endpoint_url}" if args.endpoint_url else " in process"
            print(f"\n{len(files)} event(s) run{where}; {len(failed)} with an unexpected result.")
            for name in failed:
                print(f"  UNEXPECTED: {name}: {next(d['why'] for d in out if d['file'] == name)}")
        else:
            print(json.dumps({"keyguard": 1, "command": args.command, "events": out}, indent=2, default=str))
        return FAILED if failed else DONE
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 130, error_document)
    except Exception as e:  # one line, never a traceback
        from keyguard.operator.clients import describe

        return _fail(args, describe(e, endpoint=args.endpoint_url), NOTHING_DONE, error_document)


EXPECTED = "expected/outcomes.json"  # under the events folder: what each one should end in, per function


def _expected(folder: Path) -> dict[str, Any]:
    """events/expected/outcomes.json: {file: {function: [outcome, ...]}}, the outcomes each function's
    notifications should carry (enforce mode). A file it does not list is judged only by errors."""
    path = folder / EXPECTED
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KeyguardError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from e
    return {k: v for k, v in found.items() if not k.startswith("_")}


def _compare(doc: dict[str, Any], wanted: dict[str, list[str]] | None, text: bool) -> None:
    """Mark the event unexpected, with the reason, when a handler raised or the outcomes differ."""
    got: dict[str, list[str]] = {}
    for inv in doc["invocations"]:
        got.setdefault(inv["function"], []).extend(n["attributes"].get("outcome", "?") for n in inv["notifications"])
    doc["outcomes"] = got
    why = [f"{inv['function']} raised {inv['error']}" for inv in doc["invocations"] if inv["error"]]
    if wanted is not None and got != wanted:
        why.append(f"outcomes {got} where {EXPECTED} says {wanted}")
    doc["unexpected"], doc["why"] = bool(why), "; ".join(why)
    if why and text:
        print(f"    UNEXPECTED: {doc['why']}")


def _fail(args: Any, message: str, code: int, error_document: Any) -> int:
    if args.format == "json":
        print(json.dumps(error_document(args.command, message, code)))
    else:
        print(f"keyguard: {message}", file=sys.stderr)
    return code


def _read_event(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text()
    except OSError as e:
        raise KeyguardError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        event = json.loads(raw)
    except json.JSONDecodeError as e:
        raise KeyguardError(f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    if not isinstance(event, dict):
        kind = {list: "a JSON list", str: "a JSON string"}.get(type(event), f"a JSON {type(event).__name__}")
        raise KeyguardError(f"{path}: not one EventBridge event ({kind}); give one event object per file")
    return event


def _aws_tester() -> Any:
    """EventBridge's TestEventPattern with the caller's own credentials (before the emulator fakes any)."""
    import boto3

    from keyguard.local.patterns import aws_matches

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise KeyguardError("--aws-patterns needs AWS credentials (TestEventPattern is read-only)")
    client = session.client("events", region_name=session.region_name or "us-east-1")
    return lambda pattern, event: aws_matches(client, pattern, event)


def _run_one(
    emulator: Any, rules: list[Any], path: Path, event: dict[str, Any], args: Any, tester: Any, text: bool
) -> dict[str, Any]:
    say = print if text else (lambda *_a, **_k: None)
    doc: dict[str, Any] = {"file": path.name, "source": event.get("source"), "detailType": event.get("detail-type")}
    say(f"\n=== {path.name}  ({event.get('source')} / {event.get('detail-type')})")
    targets = emulator.route(event, rules, tester=tester)
    doc.update(routedTo=[r.function for r in targets], invocations=[], unexpected=False)
    if not targets:
        say("    matches no rule in the template: nothing is invoked (as EventBridge would do).")
        return doc
    with emulator.emulated_account(args.endpoint_url) as env:
        seeded = emulator.prepare(env, event)
        doc["account"] = env.account
        if args.endpoint_url:
            say(f"    emulated account {env.account} at {args.endpoint_url} (its own: a 12-digit key id names it)")
        for example, real in seeded.replaced.items():
            say(f"    seeded: {example} -> emulated {'key' if real.startswith(('AKIA', 'ASIA')) else 'id'} {real}")
        if seeded.history:
            say(f"    seeded: {seeded.history} CloudTrail records of what the key did before")
        for line in seeded.held:
            say(f"    seeded: {line}")
        doc["seeded"] = {"keys": dict(seeded.replaced), "users": sorted(seeded.users), "roles": sorted(seeded.roles)}
        before = env.iam_state(seeded)
        invocations = []
        for rule in targets:
            say(f"    routed to {rule.function} ({rule.handler}), mode {args.mode}")
            invocations.append(emulator.invoke(env, rule, seeded.event, args.mode))
        invocations += emulator.investigate_queued(env, args.mode)  # after containment, from its queue
        for inv in invocations:
            if inv.rule.function == "InvestigationFunction":
                say(f"    then {inv.rule.function} ({inv.rule.handler}) took the hand-off from its queue")
            if inv.error:
                say(f"    handler raised {inv.error}  (Lambda retries; then the dead-letter queue keeps it)")
                doc["unexpected"] = True
            if text:
                for msg in inv.published:
                    _print_message(msg)
            doc["invocations"].append(
                {
                    "function": inv.rule.function,
                    "error": inv.error,
                    "notifications": [_notification(m) for m in inv.published],
                }
            )
        after = env.iam_state(seeded)
        delivered = env.delivered()
        say(f"    topic delivered {len(delivered)} message(s) to its SQS subscriber")
        say("    IAM before -> after:")
        for principal in before:
            if text:
                _print_state(principal, before[principal], after[principal])
        doc["iam"] = {"before": before, "after": after}
        if args.endpoint_url:
            if args.keep:
                doc["leftInPlace"] = emulator.seeded_resources(env, seeded)
                say(f"    left in the emulator (--keep), account {env.account}: {', '.join(doc['leftInPlace'])}")
            else:
                removed, failed = emulator.cleanup(env, seeded)
                doc["removed"], doc["notRemoved"] = removed, failed
                say(f"    removed from the emulator what was seeded: {len(removed)} resource(s)")
                if failed:
                    say(f"    NOT removed (remove by hand): {'; '.join(failed)}")
    return doc


def _notification(msg: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(msg["Message"])
    return {
        "subject": msg["Subject"],
        "attributes": {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()},
        "text": body["default"],
        "document": json.loads(body["sqs"]),
    }


def _print_message(msg: dict[str, Any]) -> None:
    doc = json.loads(json.loads(msg["Message"])["sqs"])
    text = json.loads(msg["Message"])["default"]
    attributes = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    print(f"    outcome: {attributes['outcome']}   level: {attributes['severity']}")
    for a in doc["actions"]:
        print(f"      action {a['action']} {a['target']}: {a['status']}" + (f" ({a['detail']})" if a["detail"] else ""))
    print(f"    notification subject: {msg['Subject']}")
    for line in text.splitlines():
        print(f"      | {line}")


def _print_state(principal: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    for key, status in before.get("keys", {}).items():
        print(f"      {principal} key {key}: {status} -> {after['keys'].get(key, 'deleted')}")
    if before["policies"] != after["policies"]:
        print(f"      {principal} inline policies: {before['policies']} -> {after['policies']}")
    elif "keys" not in before or before["policies"]:
        print(f"      {principal} inline policies: {after['policies']} (unchanged)")
