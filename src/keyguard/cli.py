"""The keyguard command: argument parsing, output format and exit codes (docs/operator.md).

Against an emulated account (fake credentials, never a real account):
  keyguard demo                     every events/*.json, each in a fresh in-process moto account
  keyguard invoke EVENT_FILE        one event
  keyguard emulator [--port 5000]   serve the same emulator on 127.0.0.1 for --endpoint-url and sam local invoke
  --endpoint-url URL                an AWS-compatible emulator (keyguard emulator) instead of in-process moto
  --mode dry-run                    plan and notify "would do", change nothing

Against your account (boto3's credential chain; docs/operator.md):
  keyguard status [--user NAME | --key AKIA... | --role NAME]
  keyguard contain --key AKIA... [--key AKIA...] [--reason TEXT] [--no-stack]
  keyguard release --user NAME [--reason TEXT] [--reactivate KEY] [--no-stack] | --role NAME
  keyguard audit [--max-key-age DAYS] [--unused-days DAYS] [--regions LIST] [--fail-on SEVERITY] ...
  keyguard history [--since WHEN] [--user NAME | --role NAME | --key AKIA...]
  keyguard completion bash|zsh
  global options (before or after the command): --profile, --region, --endpoint-url, --stack,
  --output table|text|json|csv|ocsf (alias --format), --timeout, --no-color
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

OPERATOR_COMMANDS = ("status", "contain", "release", "audit", "history")
DONE, FAILED, NOTHING_DONE, INTERRUPTED = 0, 1, 2, 130
# The exit codes, as docs/operator.md and the README state them (tests/operator/test_cli_contract.py).
EXIT_CODES = {
    DONE: "done: what was asked happened, or already held",
    FAILED: "failed: a change (or part of it) did not happen, the notification was not sent, the audit is "
    "incomplete or has findings at or above --fail-on",
    NOTHING_DONE: "nothing was done: bad input, declined or unanswered confirmation, no credentials, "
    "unreachable or slow endpoint, every change refused",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
# Which --format each command prints; anything else is refused before any call.
FORMATS = {
    "demo": ("table", "json"),
    "invoke": ("table", "json"),
    "status": ("table", "json", "csv"),
    "contain": ("table", "json"),
    "release": ("table", "json"),
    "audit": ("table", "json", "csv", "ocsf"),
    "history": ("table", "json", "csv"),
    "completion": ("table",),
    "emulator": ("table",),
}
ALL_FORMATS = ("table", "json", "csv", "ocsf")
# --output as the AWS CLI spells it: `text` is the table as plain text (no colour), like a pipe gets it
OUTPUTS = (*ALL_FORMATS, "text")
DEFAULT_TIMEOUT = 10
DEFAULT_STACK = "keyguard"
STACK_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (or one JSON document with --format json), exit 2."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        text = f"{message} (see `{self.prog} --help`)"
        if _Parser.json_errors:  # the one document a script reads, on stdout
            print(json.dumps(error_document(None, text, NOTHING_DONE)))
            sys.exit(NOTHING_DONE)
        self.exit(NOTHING_DONE, f"keyguard: {text}\n")


def error_document(command: str | None, message: str, code: int) -> dict[str, Any]:
    """What every command prints on stdout instead of its result when it fails in --format json."""
    return {"keyguard": 1, "command": command, "error": message, "exitCode": code}


# ------------------------------------------------------------------------------------------ argument types


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r} (for example http://127.0.0.1:5000)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number in {text!r}") from None
    return text


def _choice(text: str) -> str:
    """Choices are matched without regard to case (`--fail-on MEDIUM`, `--output JSON`)."""
    return text.strip().lower()


def _key_id(text: str) -> str:
    """A key id as pasted: whitespace around or inside it (a trailing space, a wrapped line) is dropped; the
    commands then check what is left."""
    return "".join(text.split())


def _region(text: str) -> str:
    if not REGION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not an AWS region name: {text!r} (for example us-east-1)")
    return text


def _stack(text: str) -> str:
    if not STACK_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a CloudFormation stack name: {text!r}")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 300:
        raise argparse.ArgumentTypeError(f"seconds must be within 0.1..300, got {text}")
    return value


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError(f"days must be within 1..36500, got {days}")
    return days


# ------------------------------------------------------------------------------------------ the parser


def _global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """The same options before the command and after it: after it they override only when given."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--endpoint-url",
        type=_url,
        default=default(None),
        metavar="URL",
        help="AWS-compatible endpoint, e.g. moto_server (demo/invoke: default in-process moto; other commands: "
        "default AWS itself)",
    )
    group.add_argument(
        "--profile", default=default(None), metavar="NAME", help="AWS profile (default: boto3's credential chain)"
    )
    group.add_argument(
        "--region", type=_region, default=default(None), help="AWS region of the clients (default: the profile's)"
    )
    group.add_argument(
        "--output",
        "--format",
        dest="format",
        type=_choice,
        choices=OUTPUTS,
        default=default("table"),
        help="table for people (text: the same without colour), json for scripts (one document, errors too), "
        "csv where a list is printed, ocsf for audit findings; --format is the same option",
    )
    group.add_argument(
        "--stack",
        type=_stack,
        default=default(None),
        metavar="NAME",
        help=f"the keyguard stack whose settings apply (SSM /keyguard/NAME/settings, looked for in --region, then "
        f"us-east-1; default {DEFAULT_STACK})",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=default(DEFAULT_TIMEOUT),
        metavar="SECONDS",
        help=f"connect and read timeout of each AWS call (default {DEFAULT_TIMEOUT})",
    )
    group.add_argument(
        "--no-color", action="store_true", default=default(False), help="no colour (also: NO_COLOR, or not a TTY)"
    )
    group.add_argument(
        "--verbose", action="store_true", default=default(False), help="demo/invoke: show the handlers' JSON logs"
    )
    group.add_argument(
        "--template",
        type=Path,
        default=default(None),
        metavar="FILE",
        help="demo/invoke: SAM template whose rules route events (default: ./template.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keyguard", description="Contain leaked AWS access keys.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version")
    _global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run every events/*.json through keyguard against an emulated account")
    _global_options(demo, after_command=True)
    demo.add_argument("--events", type=Path, metavar="DIR", help="folder of EventBridge events (default: ./events)")
    _emulator_options(demo)

    one = sub.add_parser("invoke", help="run one EventBridge event through keyguard against an emulated account")
    _global_options(one, after_command=True)
    one.add_argument("event_file", type=Path, metavar="EVENT_FILE", help="one EventBridge event (a JSON object)")
    _emulator_options(one)

    status = sub.add_parser("status", help="what keyguard holds on a user, role or key (no option: everyone held)")
    _global_options(status, after_command=True)
    which = status.add_mutually_exclusive_group()
    which.add_argument("--user", metavar="NAME", help="IAM user name")
    which.add_argument("--key", type=_key_id, metavar="AKIA...", help="access key id: IAM names its user")
    which.add_argument("--role", metavar="NAME", help="IAM role name")

    contain = sub.add_parser("contain", help="contain leaked access keys by hand (same engine as the stack)")
    _global_options(contain, after_command=True)
    contain.add_argument(
        "--key",
        required=True,
        action="append",
        type=_key_id,
        metavar="AKIA...",
        help="a leaked access key id; repeat for several (an AWS Health event can name several)",
    )
    contain.add_argument("--reason", metavar="TEXT", help="why (kept verbatim in the ledger and the notification)")
    _change_options(contain)

    release = sub.add_parser("release", help="remove keyguard's quarantine from a user or role; record who and why")
    _global_options(release, after_command=True)
    who = release.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="NAME", help="IAM user name")
    who.add_argument("--role", metavar="NAME", help="IAM role name (removes keyguard-revoke-sessions)")
    release.add_argument("--reason", metavar="TEXT", help="why (kept verbatim in the ledger and the notification)")
    release.add_argument(
        "--reactivate", type=_key_id, metavar="KEY", help="also reactivate this key (never a leaked one)"
    )
    release.add_argument(
        "--confirm-reactivate",
        type=_key_id,
        metavar="KEY",
        help="the second confirmation of --reactivate, for scripts",
    )
    _change_options(release)

    audit = sub.add_parser("audit", help="long-lived keys, IMDSv1 instances and quarantined principals")
    _global_options(audit, after_command=True)
    audit.add_argument("--max-key-age", type=_days, default=90, metavar="DAYS", help="flag active keys older (90)")
    audit.add_argument("--unused-days", type=_days, default=90, metavar="DAYS", help="flag keys unused this long (90)")
    audit.add_argument("--regions", metavar="LIST", help="comma-separated regions to check for EC2 (default: all)")
    audit.add_argument(
        "--fail-on",
        type=_choice,
        choices=("critical", "high", "medium", "low"),
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above this severity (critical, high, medium, low): for CI",
    )
    audit.add_argument("--user", metavar="NAME", help="only this user's keys and findings")
    audit.add_argument("--only-flagged", action="store_true", help="only keys that have a finding")
    audit.add_argument(
        "--inventory",
        action="store_true",
        help="list keys by id (one IAM call per user): with --format csv, the key inventory instead of findings",
    )

    history = sub.add_parser("history", help="what keyguard contained and released, when, by whom and why (ledger)")
    _global_options(history, after_command=True)
    history.add_argument(
        "--since", metavar="WHEN", help="only entries since then: 2025-03-17, 2025-03-17T09:00:00Z, or 7d / 12h"
    )
    whose = history.add_mutually_exclusive_group()
    whose.add_argument("--user", metavar="NAME", help="only this IAM user")
    whose.add_argument("--role", metavar="NAME", help="only this IAM role")
    whose.add_argument(
        "--key",
        type=_key_id,
        metavar="AKIA...",
        help="only what concerns this access key (its containments, and the releases of those incidents)",
    )

    emulator = sub.add_parser(
        "emulator",
        help="serve the emulator keyguard's tests use (moto plus boundaries, LookupEvents, IAM quotas) until Ctrl-C",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)")
    emulator.add_argument(
        "--account-id",
        metavar="ID",
        help="answer every request as this 12-digit account (default: a 12-digit access key id names it)",
    )
    emulator.set_defaults(format="table")

    completion = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    completion.add_argument(
        "shell", type=_choice, choices=("bash", "zsh"), help="the shell: source the output in its rc file"
    )
    from keyguard.operator import organization  # issue 11: --account, audit --organization

    organization.add_arguments({"status": status, "contain": contain, "release": release, "audit": audit})
    return parser


def _emulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        type=_choice,
        choices=("enforce", "dry-run"),
        default="enforce",
        help="the stack's Mode (default enforce)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="with --endpoint-url: leave what was seeded (users, keys, topic, queues, table, instances) in place",
    )
    parser.add_argument(
        "--aws-patterns",
        action="store_true",
        help="route with EventBridge's own TestEventPattern (your AWS credentials; read-only) instead of keyguard's",
    )


def _change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic-arn", metavar="ARN", help="SNS topic to notify (default: the stack's topic, or $KEYGUARD_TOPIC_ARN)"
    )
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="act although no keyguard stack is found (it is looked for in --region, then us-east-1): no ledger "
        "record (the tamper watch will not re-contain), no deny-all boundary, nobody notified unless --topic-arn",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show the plan and check your permissions (IAM simulator); change nothing",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keyguard")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        from keyguard import __version__

        return __version__


# ------------------------------------------------------------------------------------------ running


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _Parser.json_errors = _wants_json(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors: argparse has printed them
        return stop.code if isinstance(stop.code, int) else NOTHING_DONE
    if args.format == "text":
        args.format, args.no_color = "table", True
    if args.format not in FORMATS[args.command]:
        return _refuse(
            args,
            f"--format {args.format} does not apply to {args.command}: use one of {', '.join(FORMATS[args.command])}",
        )
    if args.command == "completion":
        return _completion(args.shell)
    if args.command == "emulator":
        if args.account_id is not None and not re.fullmatch(r"[0-9]{12}", args.account_id):
            return _refuse(args, f"--account-id must be 12 digits, got {args.account_id!r}")
        from keyguard.local import server

        return server.serve(args.host, args.port, args.account_id)
    if args.command in OPERATOR_COMMANDS:
        from keyguard.operator import commands, organization

        if organization.wanted(args):  # issue 11: a member account, or every account
            return organization.run(args)
        return commands.run(args)
    from keyguard.local import run as local_run

    return local_run.run(args)


def _wants_json(argv: list[str]) -> bool:
    for n, arg in enumerate(argv):
        if arg in ("--format", "--output") and n + 1 < len(argv):
            return argv[n + 1].strip().lower() == "json"
        if arg.lower() in ("--format=json", "--output=json"):
            return True
    return False


def _refuse(args: Any, message: str) -> int:
    if args.format == "json":
        print(json.dumps(error_document(args.command, message, NOTHING_DONE)))
    else:
        print(f"keyguard: {message}", file=sys.stderr)
    return NOTHING_DONE


def _completion(name: str) -> int:
    import shtab

    print(shtab.complete(build_parser(), name))  # the shell's name, positionally
    return DONE


if __name__ == "__main__":
    sys.exit(main())
