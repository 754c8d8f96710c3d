"""The keyguard command: run events through the stack's rules and handlers against an emulated account.

keyguard demo                     every events/*.json, each in a fresh in-process moto account
keyguard invoke EVENT_FILE        one event
--endpoint-url URL                an AWS-compatible emulator (e.g. moto_server) instead of in-process moto
--mode dry-run                    plan and notify "would do", change nothing
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from keyguard.errors import KeyguardError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keyguard", description="Contain leaked AWS access keys.")
    parser.add_argument("--endpoint-url", help="AWS-compatible emulator endpoint (default: in-process moto)")
    parser.add_argument(
        "--template", type=Path, help="SAM template whose rules route events (default: ./template.yaml)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every events/*.json through keyguard against an emulated account")
    demo.add_argument("--events", type=Path, help="folder of EventBridge events (default: ./events)")
    demo.add_argument("--mode", choices=("enforce", "dry-run"), default="enforce")
    one = sub.add_parser("invoke", help="run one EventBridge event through keyguard")
    one.add_argument("event_file", type=Path)
    one.add_argument("--mode", choices=("enforce", "dry-run"), default="enforce")
    args = parser.parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
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
        failures = 0
        for path in files:
            failures += _run_one(emulator, rules, path, args.mode, args.endpoint_url)
        print(f"\n{len(files)} event(s) run; {failures} with an unexpected result.")
        return 1 if failures else 0
    except (KeyguardError, OSError, ValueError) as e:
        print(f"keyguard: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # botocore connection errors and the like: one line, no traceback
        print(f"keyguard: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def _run_one(emulator: Any, rules: list[Any], path: Path, mode: str, endpoint: str | None) -> int:
    try:
        event = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KeyguardError(f"{path}: not JSON ({e})") from e
    print(f"\n=== {path.name}  ({event.get('source')} / {event.get('detail-type')})")
    targets = emulator.route(event, rules)
    if not targets:
        print("    matches no rule in the template: nothing is invoked (as EventBridge would do).")
        return 0
    unexpected = 0
    with emulator.emulated_account(endpoint) as env:
        seeded = emulator.seed(env.clients.iam, event)
        for example, real in seeded.replaced.items():
            print(f"    seeded: {example} -> emulated key {real}")
        before = env.iam_state(seeded)
        for rule in targets:
            print(f"    routed to {rule.function} ({rule.handler}), mode {mode}")
            inv = emulator.invoke(env, rule, seeded.event, mode)
            if inv.error:
                print(f"    handler raised {inv.error}  (Lambda retries; then the dead-letter queue keeps it)")
                unexpected += 1
            for msg in inv.published:
                _print_message(msg)
        after = env.iam_state(seeded)
        delivered = env.delivered()
        print(f"    topic delivered {len(delivered)} message(s) to its SQS subscriber")
        print("    IAM before -> after:")
        for principal in before:
            _print_state(principal, before[principal], after[principal])
    return unexpected


def _print_message(msg: dict[str, Any]) -> None:
    doc = json.loads(json.loads(msg["Message"])["sqs"])
    text = json.loads(msg["Message"])["default"]
    print(f"    outcome: {doc['outcome']}   level: {doc['level']}")
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


if __name__ == "__main__":
    sys.exit(main())
