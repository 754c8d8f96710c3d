"""The JSON documents of `status` and `history` (one stable shape each, camelCase throughout, every fact the
table shows), and the ledger's lines in the text output. docs/operator.md shows each shape;
tests/operator/test_cli_contract.py holds them to it."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from keyguard.operator.principal import PrincipalState, stamp

HISTORY_HEADERS = ("AT", "EVENT", "PRINCIPAL", "INCIDENT", "BY", "WHY")


def _containment(state: PrincipalState) -> dict[str, Any] | None:
    record = state.containment
    if not record:
        return None
    return {
        "containedAt": record.get("contained-at"),
        "incident": record.get("incident"),
        "reason": record.get("reason"),
    }


def _release(state: PrincipalState) -> dict[str, Any] | None:
    record = state.release
    if not record:
        return None
    return {k: record.get(k) for k in ("at", "by", "reason", "incident")}


def principal(state: PrincipalState, at: datetime, ledger: Any = None, *, keys: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "principal": {"type": state.kind, "name": state.name, "arn": state.arn},
        "held": state.held,
        "hold": state.hold,
        "policies": [p.to_dict() for p in state.policies],
        "otherPolicies": list(state.other_policies),
        "containment": _containment(state),
        "leakedKeys": [{"accessKeyId": k, "leakedAt": v} for k, v in sorted(state.leaked.items())],
        "lastRelease": _release(state),
        "boundary": state.boundary,
        "ledger": ledger_record(state, ledger),
    }
    if keys:
        out["keys"] = [k.to_dict(at) for k in state.keys] if state.kind == "user" else None
    return out


def status(state: PrincipalState, at: datetime, ledger: Any = None) -> dict[str, Any]:
    return {"keyguard": 1, "command": "status", "at": stamp(at), **principal(state, at, ledger)}


def held(states: list[PrincipalState], at: datetime, ledger: Any = None) -> dict[str, Any]:
    return {
        "keyguard": 1,
        "command": "status",
        "at": stamp(at),
        "held": [principal(s, at, ledger, keys=False) for s in states],
    }


def ledger_record(state: PrincipalState, ledger: Any) -> dict[str, Any] | None:
    """What keyguard's own ledger says about the principal (attach_ledger read it; the tags are a mirror).
    None: no ledger configured; {}: the ledger has no record of it."""
    if ledger is None or not getattr(ledger, "enabled", False):
        return None
    from keyguard.operator.principal import _ledger_dict

    record = _ledger_dict(state.ledger)
    if not record:
        return {}
    verdict = state.verdict  # the last containment: how it went, who did it and why, verbatim
    record.update(
        {
            "state": state.hold,
            "missing": list(verdict.missing) if verdict else [],
            "failures": list(verdict.failures) if verdict else [],
            "lastContainedAt": stamp(verdict.at) if verdict else None,
            "actor": verdict.actor if verdict else None,
            "reason": verdict.reason if verdict else None,
        }
    )
    return record


def ledger_lines(state: PrincipalState, ledger: Any) -> list[str]:
    record = ledger_record(state, ledger)
    if record is None:
        return []
    if not record:
        return ["ledger       : no record of this principal"]
    held = "not held"
    if record.get("held"):
        held = {"partial": "PARTIAL hold", "failed": "FAILED hold"}.get(record.get("state") or "", "HELD")
    lines = [f"ledger       : {held}; incident {record.get('incident') or '-'}"]
    if record.get("containedAt"):
        lines.append(f"  contained  : {record['containedAt']}")
    if record.get("releasedAt"):
        lines.append(f"  released   : {record['releasedAt']}")
    if record.get("layers"):
        lines.append(f"  layers     : {', '.join(record['layers'])}")
    return lines


def history(entries: list[Any], since: datetime | None) -> dict[str, Any]:
    return {
        "keyguard": 1,
        "command": "history",
        "since": stamp(since),
        "entries": [_entry(e) for e in entries],
    }


def _entry(entry: Any) -> dict[str, Any]:
    from keyguard.operator import hold

    raw = _plain(entry)
    verdict = hold.of_entry(entry)  # a containment: did every layer hold?
    return {
        "at": raw.get("at"),
        "event": raw.get("event"),
        "state": verdict.state if verdict else None,
        "missing": list(verdict.missing) if verdict else None,
        "principal": {"type": raw.get("kind"), "name": raw.get("name")},
        "incident": raw.get("incident"),
        "actor": raw.get("actor"),
        "reason": raw.get("reason"),
        "detail": raw.get("detail") or {},
    }


def history_rows(entries: list[Any]) -> list[list[Any]]:
    """EVENT says how a containment went: `contained` only when every layer held, else e.g.
    `contain: partial (missing deny-all-boundary)` or `contain: FAILED (verify)`."""
    from keyguard.operator import hold

    rows = []
    for e in entries:
        d = _entry(e)
        who = f"{d['principal']['type']}/{d['principal']['name']}"
        verdict = hold.of_entry(e)
        event = d["event"]
        if verdict is not None and not verdict.healthy:
            event = f"{'contain' if event == 'contained' else event}: {verdict.words()}"
        rows.append([d["at"], event, who, d["incident"], d["actor"], d["reason"]])
    return rows


def history_text(entries: list[Any], since: datetime | None) -> str:
    from keyguard.operator.render import table

    head = f"keyguard history since {stamp(since)}" if since else "keyguard history"
    if not entries:
        return f"{head}: nothing recorded."
    return f"{head} ({len(entries)} entries, oldest first):\n" + table(HISTORY_HEADERS, history_rows(entries))


def _plain(value: Any) -> Any:
    """A ledger record (dataclass) as JSON-ready data with camelCase keys and UTC stamps."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {_camel(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return stamp(value)
    return value


def _camel(name: str) -> str:
    head, *rest = str(name).split("_")
    return head + "".join(p.capitalize() for p in rest)
