"""Output of the operator commands: tables for people, JSON for scripts, CSV where a list is printed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from keyguard.actions import ActionResult
from keyguard.operator.principal import PrincipalState, stamp

FORMATS = ("table", "json", "csv")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    if not rows:
        return f"{indent}(none)"
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[n]) for r in cells)) for n, h in enumerate(headers)]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([[("" if v is None else v) for v in row] for row in rows])
    return out.getvalue().rstrip("\n")


def json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return " ".join(str(value).split())  # one line per row, whatever a tag holds


def _day(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value else None


# ------------------------------------------------------------------------------------------ status

KEY_HEADERS = ("KEY", "STATUS", "CREATED", "AGE (DAYS)", "LAST USED", "SERVICE", "REGION", "NOTE")


def key_rows(state: PrincipalState, now: datetime, highlight: str | None = None) -> list[list[Any]]:
    rows = []
    for k in state.keys:
        notes = []
        if k.leaked_at:
            notes.append(f"leaked (keyguard {k.leaked_at}): delete it, never reactivate")
        if k.key_id == highlight:
            notes.append("the key asked about")
        rows.append(
            [
                k.key_id,
                k.status,
                _day(k.created),
                k.age_days(now),
                _day(k.last_used),
                k.last_used_service,
                k.last_used_region,
                "; ".join(notes),
            ]
        )
    return rows


def status_text(state: PrincipalState, now: datetime, highlight: str | None = None, *, keys: bool = True) -> str:
    lines = [f"{state.kind} {state.name}  ({state.arn})"]
    verdict, hold = state.verdict, state.hold
    if hold == "partial":
        missing = ", ".join(verdict.missing)
        lines.append(f"PARTIAL hold by keyguard: its last containment FAILED, {missing} not in place:")
    elif hold == "failed":
        lines.append("FAILED hold by keyguard: its last containment did not hold:")
    elif state.held:
        lines.append("HELD by keyguard:")
    else:
        lines.append("not held by keyguard (no keyguard policy)")
    lines += [f"  {p.name}: {p.effect}" for p in state.policies]
    if state.boundary:
        lines.append(f"  permissions boundary: {state.boundary}")
    if hold in ("partial", "failed"):
        lines += [f"  failed: {f}" for f in verdict.failures]
    lines += _containment_lines(state)
    if state.leaked:
        lines.append(f"{'leaked keys':<13}: " + ", ".join(f"{k} ({at})" for k, at in sorted(state.leaked.items())))
    released = state.release
    if released:
        text = f"{released.get('at', '?')} by {released.get('by', '?')}"
        if released.get("reason"):
            text += f" (why: {released['reason']})"
        lines.append(f"{'last release':<13}: {text}")
    if state.other_policies:
        lines.append(f"{'other inline policies (not keyguard, left alone)'}: {', '.join(state.other_policies)}")
    if state.kind == "user" and keys:
        lines += ["", "Access keys:", table(KEY_HEADERS, key_rows(state, now, highlight))]
    return "\n".join(lines)


def _containment_lines(state: PrincipalState) -> list[str]:
    """When, by whom and why it was contained: the ledger's words, verbatim; the tag mirror (which IAM's tag
    rules rewrite, and the key holder can edit) only when no ledger has it, and then named as such."""
    verdict = state.verdict
    if verdict is not None and state.ledger is not None and state.ledger.held:
        found = [
            ("contained at", stamp(verdict.at)),
            ("by", verdict.actor),
            ("why", verdict.reason),
            ("incident", verdict.incident),
        ]
        return [f"{label:<13}: {value}" for label, value in found if value]
    record = state.containment or {}
    lines = [
        f"{label:<13}: {record[key]}"
        for label, key in (("contained at", "contained-at"), ("why", "reason"), ("incident", "incident"))
        if key in record
    ]
    if lines:
        why = "no ledger read" if not state.ledger_read else "the ledger has no containment of it"
        lines.append(f"{'':<13}  (from the tag mirror on the {state.kind} ({why}): IAM's tag rules rewrite it)")
    return lines


def containment_words(state: PrincipalState) -> str | None:
    """One line for `release`: when, by whom and why it was contained (the ledger's, verbatim, or the tags')."""
    verdict = state.verdict
    if verdict is not None and state.ledger is not None and state.ledger.held:
        return f"{stamp(verdict.at)} by {verdict.actor or '?'}, why: {verdict.reason or '-'} (ledger)"
    record = state.containment or {}
    if not record:
        return None
    return f"{record.get('contained-at', '?')}, why: {record.get('reason', '-')} (tag mirror, not the ledger)"


HELD_HEADERS = ("PRINCIPAL", "HOLD", "POLICIES", "SINCE", "WHY")


def held_rows(states: list[PrincipalState]) -> list[list[Any]]:
    rows = []
    for s in states:
        verdict = s.verdict if s.ledger is not None and s.ledger.held else None
        since = stamp(verdict.at) if verdict else (s.containment or {}).get("contained-at")
        why = verdict.reason if verdict else (s.containment or {}).get("reason")
        hold = verdict.words() if verdict and s.hold in ("partial", "failed") else s.hold
        rows.append([s.subject, hold, ", ".join(p.name for p in s.policies), since, why])
    return rows


def held_text(states: list[PrincipalState]) -> str:
    head = f"keyguard holds {len(states)} in quarantine:" if states else "keyguard holds no one in quarantine."
    return head + ("\n" + table(HELD_HEADERS, held_rows(states)) if states else "")


# ------------------------------------------------------------------------------------------ changes


def results_text(results: list[ActionResult]) -> str:
    return "\n".join(f"  - {r.line()}" for r in results) or "  - none"


# ------------------------------------------------------------------------------------------ audit

AUDIT_KEY_HEADERS = ("USER", "KEY", "STATUS", "AGE (DAYS)", "LAST USED", "SERVICE", "REGION", "MFA", "FLAGS")
FINDING_HEADERS = ("CHECK", "SUBJECT", "REGION", "DETAIL")


def finding_rows(report: Any) -> list[list[Any]]:
    return [[f.check.value, f.subject, f.region, f.detail] for f in report.findings]


def audit_text(report: Any, *, inventory: bool = True) -> str:
    now = report.generated_at
    head = f"keyguard audit of account {report.account or '?'} at {now.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    if report.credential_report_at:
        head += f" (IAM credential report of {report.credential_report_at.strftime('%Y-%m-%dT%H:%M:%SZ')})"
    lines = [
        head,
        f"Flags active keys older than {report.max_key_age_days} days and unused for {report.unused_days} days.",
        "",
    ]
    if inventory:
        rows = [
            [
                k.user,
                k.slot,
                "Active" if k.active else "Inactive",
                k.age_days(now),
                _day(k.last_used) or "never",
                k.last_used_service,
                k.last_used_region,
                "yes" if k.mfa else "no",
                ", ".join(report.flags(k)),
            ]
            for k in report.keys
        ]
        users = f"{report.users} user{'' if report.users == 1 else 's'}"
        lines += [f"Access keys ({len(report.keys)} on {users}):", table(AUDIT_KEY_HEADERS, rows), ""]
    lines += [f"Findings ({len(report.findings)}):", table(FINDING_HEADERS, finding_rows(report))]
    if report.held:
        lines += [
            "",
            "Held principals are read from IAM only (keyguard's policies and tag mirror), not the stack's ledger:"
            " `keyguard status` says whether each hold is complete, who contained it and why.",
        ]
    if report.errors:
        lines += ["", "INCOMPLETE, these checks could not run:"] + [f"  - {e}" for e in report.errors]
    lines += ["", f"Summary: {report.summary}"]
    return "\n".join(lines)
