"""The keyguard command.

Against an emulated account (fake credentials, never a real account):
  keyguard demo                     every events/*.json, each in a fresh in-process moto account
  keyguard invoke EVENT_FILE        one event
  --endpoint-url URL                an AWS-compatible emulator (e.g. moto_server) instead of in-process moto
  --mode dry-run                    plan and notify "would do", change nothing

Against your account (boto3's credential chain; docs/operator.md):
  keyguard status [--user NAME | --key AKIA... | --role NAME]
  keyguard contain --key AKIA... [--reason TEXT]
  keyguard release --user NAME [--reason TEXT] [--reactivate KEY] | --role NAME
  keyguard audit [--max-key-age DAYS] [--unused-days DAYS] [--regions LIST]
  global options: --profile, --region, --endpoint-url, --format table|json|csv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from keyguard.errors import KeyguardError

OPERATOR_COMMANDS = ("status", "contain", "release", "audit")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and exit 2), like every other keyguard error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"keyguard: {message} (see `{self.prog} --help`)\n")


def _global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """Accepted before the command and, for the operator commands, after it too."""
    default = argparse.SUPPRESS if after_command else None
    parser.add_argument(
        "--endpoint-url",
        default=default,
        help="AWS-compatible endpoint, e.g. moto_server (demo/invoke: default in-process moto; operator "
        "commands: default AWS itself)",
    )
    parser.add_argument("--profile", default=default, help="AWS profile (operator commands; default: boto3's chain)")
    parser.add_argument("--region", default=default, help="AWS region for the clients (operator commands)")
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=argparse.SUPPRESS if after_command else "table",
        help="table for people, json for scripts, csv where a list is printed (operator commands)",
    )


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError(f"days must be within 1..36500, got {days}")
    return days


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keyguard", description="Contain leaked AWS access keys.")
    _global_options(parser, after_command=False)
    parser.add_argument(
        "--template", type=Path, help="SAM template whose rules route events (default: ./template.yaml)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="run every events/*.json through keyguard against an emulated account")
    demo.add_argument("--events", type=Path, help="folder of EventBridge events (default: ./events)")
    demo.add_argument("--mode", choices=("enforce", "dry-run"), default="enforce")
    one = sub.add_parser("invoke", help="run one EventBridge event through keyguard")
    one.add_argument("event_file", type=Path)
    one.add_argument("--mode", choices=("enforce", "dry-run"), default="enforce")

    status = sub.add_parser("status", help="what keyguard holds on a user, role or key (no option: everyone held)")
    _global_options(status, after_command=True)
    which = status.add_mutually_exclusive_group()
    which.add_argument("--user", help="IAM user name")
    which.add_argument("--key", help="access key id (AKIA...): IAM names its user")
    which.add_argument("--role", help="IAM role name")

    contain = sub.add_parser("contain", help="contain a leaked access key by hand (same engine as the stack)")
    _global_options(contain, after_command=True)
    contain.add_argument("--key", required=True, help="the leaked access key id (AKIA...)")
    contain.add_argument("--reason", help="why (recorded on the user and in the notification)")
    _change_options(contain)

    release = sub.add_parser("release", help="remove keyguard's policies from a user or role; record who and why")
    _global_options(release, after_command=True)
    who = release.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="IAM user name")
    who.add_argument("--role", help="IAM role name (removes keyguard-revoke-sessions)")
    release.add_argument("--reason", help="why (recorded on the principal and in the notification)")
    release.add_argument("--reactivate", metavar="KEY", help="also reactivate this key (never a leaked one)")
    release.add_argument(
        "--confirm-reactivate", metavar="KEY", help="the second confirmation of --reactivate, for scripts"
    )
    _change_options(release)

    audit = sub.add_parser("audit", help="long-lived keys, IMDSv1 instances and quarantined principals")
    _global_options(audit, after_command=True)
    audit.add_argument("--max-key-age", type=_days, default=90, metavar="DAYS", help="flag active keys older (90)")
    audit.add_argument("--unused-days", type=_days, default=90, metavar="DAYS", help="flag keys unused this long (90)")
    audit.add_argument("--regions", help="comma-separated regions to check for EC2 (default: every enabled region)")
    from keyguard.operator import organization  # issue 11: --account, audit --organization

    organization.add_arguments({"status": status, "contain": contain, "release": release, "audit": audit})
    return parser


def _change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic-arn", help="SNS topic to notify (default: $KEYGUARD_TOPIC_ARN; none: no notice)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in OPERATOR_COMMANDS:
        from keyguard.operator import commands, organization

        if organization.wanted(args):  # issue 11: a member account, or every account
            return organization.run(args)
        return commands.run(args)
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
        emulator.seed_activity(env, seeded)
        for example, real in seeded.replaced.items():
            print(f"    seeded: {example} -> emulated key {real}")
        if env.cloudtrail.records:
            print(f"    seeded: {len(env.cloudtrail.records)} CloudTrail records of what the key did before")
        before = env.iam_state(seeded)
        invocations = []
        for rule in targets:
            print(f"    routed to {rule.function} ({rule.handler}), mode {mode}")
            invocations.append(emulator.invoke(env, rule, seeded.event, mode))
        invocations += emulator.investigate_queued(env, mode)  # after containment, from its queue
        for inv in invocations:
            if inv.rule.function == "InvestigationFunction":
                print(f"    then {inv.rule.function} ({inv.rule.handler}) took the hand-off from its queue")
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


if __name__ == "__main__":
    sys.exit(main())
