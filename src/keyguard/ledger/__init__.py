"""The incident ledger: what keyguard did, and which keys leaked, in keyguard's own DynamoDB table.

The principal that holds a leaked key can write its own tags, names and policies, so none of those is a
safe place for keyguard's state. The ledger is: the stack's table, writable only by keyguard's roles and
the operator role (the table's resource policy, template.yaml `LedgerTable`), with point-in-time recovery.
Tags on the principal stay as a mirror for humans; every decision reads the ledger.

One table, two kinds of item under each partition:
- `state`: what holds now (a principal held or released, a key leaked or held, an incident's first
  containment time), updated in place;
- `entry#<time>#<id>`: the history, append-only (a conditional put never overwrites): every containment,
  release, re-containment and tamper notice, with the actor and the reason in the actor's own words.

Partitions: `user#<name>` / `role#<name>` (lower case: IAM names are case-insensitive), `key#<key id>`,
`incident#<incident id>`, and `id#<unique id>` (AIDA.../AROA...: a rename cannot take it) pointing at a
principal. History entries are also in the `history` index (`gpk` = "history", `gsk` = time), for
`keyguard history --since`.

Every write of one event is one TransactWriteItems call: the history entry and the states land together.

Two writers at once. Several containments of one principal arrive together in a real leak (GuardDuty,
Health, AWS's own quarantine, Trusted Advisor, CreateAccessKey, the tamper watch, an operator's
`keyguard contain`), and each writes the same `state` items. DynamoDB documents (TransactWriteItems,
TransactionCanceledException in its API reference) that it cancels a transaction when "an ongoing operation
is in the process of updating the same item": TransactionCanceledException, whose CancellationReasons hold
one entry per item in request order, Code `TransactionConflict` ("Transaction is ongoing for the item") for
the contested ones, `None` for the others; `ThrottlingError` and `ProvisionedThroughputExceeded` are the
other reasons that say "try again shortly". A cancelled transaction wrote nothing, so `_write` sends it
again (a bounded number of times, with jittered backoff) rather than report a containment that holds as
failed. Each write stays idempotent so that sending it again is safe:

- the states are SET, SET if_not_exists and ADD of string sets: applying them twice is applying them once;
- the history entry's sort key is made once per write (time, a per-process sequence, a random part), so
  every attempt of one write puts the same key under `attribute_not_exists`. If an earlier attempt did land
  (its answer lost: botocore retries a timed-out call, and moto ignores the ClientRequestToken with which
  DynamoDB itself makes those retries idempotent), the entry's condition fails, and since a transaction
  lands whole, its states landed with it: the write is done, and the history shows it once;
- a write built from a read (`released()` un-holds the keys it read) reads again before each attempt, and
  its update is conditional on what it read, so a containment that added a key in between is not missed.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# What the functions that write the ledger need (TransactWriteItems is authorised as its Put/Update parts).
WRITE_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")
READ_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:Query")
HISTORY_INDEX = "history"
USER, ROLE = "user", "role"
KINDS = (USER, ROLE)


_SEQUENCE = itertools.count()

# How many times one ledger write is sent when DynamoDB cancels it for a conflict or throttling. Seven
# triggers can contain one principal at the same moment (see above), so a writer can lose to each of the
# six others once: eight attempts outlast that, with backoff between them of at most
# 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 0.8 + 0.8 = 3.15 s (full jitter: a random share of each step), well inside
# the functions' 60 s timeout. Containment is already in place by then (the ledger is written after the
# deny layers); a write still cancelled after the last attempt is reported as failed, never dropped.
WRITE_ATTEMPTS = 8
_BACKOFF_BASE, _BACKOFF_CAP = 0.05, 0.8
# CancellationReasons codes that mean "nothing was written; the same write may succeed shortly"
_AGAIN = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# top-level errors of the same kind that botocore's standard retries gave up on (it retries them itself)
_AGAIN_ERRORS = frozenset({"TransactionInProgressException"})


class LedgerError(Exception):
    """The ledger could not be read or written (the cause is chained)."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    user: str
    leaked: bool  # keyguard contained it as leaked: never to be revived
    held: bool  # keyguard deactivated it and has not released its user
    incident: str | None
    contained_at: datetime | None
    user_id: str | None = None


@dataclass(frozen=True)
class PrincipalRecord:
    kind: str  # "user" | "role"
    name: str
    unique_id: str | None
    held: bool
    incident: str | None
    contained_at: datetime | None
    released_at: datetime | None
    layers: tuple[str, ...] = ()  # keyguard's layers put on it: quarantine policy, boundary, revoke-sessions
    replaced_boundary: str | None = None  # the boundary keyguard's replaced (release restores it)
    leaked_keys: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # every key keyguard deactivated on it


@dataclass(frozen=True)
class IncidentRecord:
    incident_id: str
    first_contained_at: datetime | None


@dataclass(frozen=True)
class Entry:
    at: datetime
    event: str  # contained, released, re-contained, tamper, note...
    kind: str
    name: str
    incident: str | None = None
    actor: str | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": stamp(self.at),
            "event": self.event,
            "principal": {"type": self.kind, "name": self.name},
            "incident": self.incident,
            "actor": self.actor,
            "reason": self.reason,
            "detail": self.detail,
        }


def stamp(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def principal_pk(kind: str, name: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"ledger principals are users or roles, not {kind!r}")
    return f"{kind}#{name.lower()}"


# ---------------------------------------------------------------- DynamoDB's attribute values, by hand
# (botocore's low-level client; boto3's TypeSerializer would load boto3 on the containment path)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _ss(values: Iterable[str]) -> dict[str, list[str]]:
    return {"SS": sorted(set(values))}


def _str(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _bool(item: dict[str, Any], name: str) -> bool:
    value = item.get(name)
    return bool(value.get("BOOL")) if isinstance(value, dict) else False


def _set(item: dict[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    return tuple(sorted(value.get("SS", []))) if isinstance(value, dict) else ()


class Ledger:
    """keyguard's records. `table` None: no ledger configured (reads find nothing, writes raise)."""

    def __init__(self, table: str | None, client: Any) -> None:
        self.table = table
        self.client = client
        self.retried = 0  # attempts sent again after DynamoDB cancelled them (conflicts, throttling)

    @property
    def enabled(self) -> bool:
        return bool(self.table)

    # ------------------------------------------------------------------------------------------ reads
    def _get(self, pk: str) -> dict[str, Any] | None:
        if not self.table:
            return None
        try:
            got = self.client.get_item(TableName=self.table, Key={"pk": _s(pk), "sk": _s("state")}, ConsistentRead=True)
        except Exception as e:
            raise LedgerError(f"ledger read failed ({pk}): {_code(e)}") from e
        return got.get("Item")

    def key(self, key_id: str) -> KeyRecord | None:
        item = self._get(f"key#{key_id}")
        if item is None:
            return None
        return KeyRecord(
            key_id=key_id,
            user=_str(item, "user") or "",
            leaked=_bool(item, "leaked"),
            held=_bool(item, "held"),
            incident=_str(item, "incident"),
            contained_at=_parse(_str(item, "contained_at")),
            user_id=_str(item, "user_id"),
        )

    def principal(self, kind: str, name: str) -> PrincipalRecord | None:
        item = self._get(principal_pk(kind, name))
        return None if item is None else _principal(item)

    def principal_by_id(self, unique_id: str) -> PrincipalRecord | None:
        pointer = self._get(f"id#{unique_id}")
        if pointer is None:
            return None
        return self.principal(_str(pointer, "kind") or USER, _str(pointer, "name") or "")

    def incident(self, incident_id: str) -> IncidentRecord | None:
        item = self._get(f"incident#{incident_id}")
        if item is None:
            return None
        return IncidentRecord(incident_id, _parse(_str(item, "first_contained_at")))

    def history(self, since: datetime | None = None, kind: str | None = None, name: str | None = None) -> list[Entry]:
        """Oldest first. One principal's (kind and name), or everything since `since`."""
        if not self.table:
            return []
        if kind and name:
            query: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
                "ExpressionAttributeValues": {":pk": _s(principal_pk(kind, name)), ":e": _s("entry#")},
            }
        else:
            query = {
                "IndexName": HISTORY_INDEX,
                "KeyConditionExpression": "gpk = :h AND gsk >= :since",
                # DynamoDB refuses an empty string in a key condition: "0" sorts before every time stamp
                "ExpressionAttributeValues": {":h": _s("history"), ":since": _s(stamp(since) or "0")},
            }
        items = sorted(self._query(query), key=lambda item: _str(item, "sk") or "")  # time, to the microsecond
        out = [_entry(item) for item in items]
        if since is not None:
            out = [e for e in out if e.at >= since]
        return out

    def _query(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        try:
            while True:
                page = self.client.query(
                    TableName=self.table, **query, **({"ExclusiveStartKey": start} if start else {})
                )
                yield from page.get("Items", [])
                start = page.get("LastEvaluatedKey")
                if not start:
                    return
        except Exception as e:
            raise LedgerError(f"ledger query failed: {_code(e)}") from e

    # ----------------------------------------------------------------------------------------- writes
    def contained(
        self,
        *,
        incident_id: str,
        kind: str,
        name: str,
        at: datetime,
        actor: str,
        reason: str,
        unique_id: str | None = None,
        layers: Iterable[str] = (),
        keys: Iterable[str] = (),
        leaked_keys: Iterable[str] = (),
        replaced_boundary: str | None = None,
        event: str = "contained",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """keyguard holds `kind/name` for `incident_id`: one history entry, and the states it changes.
        A second containment adds history; the first containment time and a replaced boundary stay."""
        when = stamp(at) or ""
        keys, leaked_keys, layers = sorted(set(keys) | set(leaked_keys)), sorted(set(leaked_keys)), sorted(layers)
        entry_detail = {
            "layers": layers,
            "keys": keys,
            "leakedKeys": leaked_keys,
            "uniqueId": unique_id,
            "replacedBoundary": replaced_boundary,
            **(detail or {}),
        }
        items = [self._entry_item(event, kind, name, at, actor, reason, incident_id, entry_detail)]
        principal = _Update(principal_pk(kind, name))
        principal.set("held", {"BOOL": True}).set("incident", _s(incident_id)).set("kind", _s(kind))
        principal.set("name", _s(name)).set_once("contained_at", _s(when)).remove("released_at")
        if unique_id:
            principal.set("unique_id", _s(unique_id))
        if replaced_boundary:
            principal.set_once("replaced_boundary", _s(replaced_boundary))
        for attr, vals in (("layers", layers), ("keys", keys), ("leaked_keys", leaked_keys)):
            if vals:
                principal.add(attr, _ss(vals))
        items.append(principal.item(self.table))
        items.append(_Update(f"incident#{incident_id}").set_once("first_contained_at", _s(when)).item(self.table))
        for key in keys:
            update = _Update(f"key#{key}").set("user", _s(name)).set("held", {"BOOL": True})
            update.set("incident", _s(incident_id)).set_once("contained_at", _s(when))
            if key in leaked_keys:
                update.set("leaked", {"BOOL": True})  # never set back to false
            if unique_id:
                update.set("user_id", _s(unique_id))
            items.append(update.item(self.table))
        if unique_id:
            items.append(_Update(f"id#{unique_id}").set("kind", _s(kind)).set("name", _s(name)).item(self.table))
        self._write(items)

    def released(
        self,
        *,
        kind: str,
        name: str,
        at: datetime,
        actor: str,
        reason: str,
        incident: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """A release through `keyguard release`: the principal and its keys are no longer held; leaked
        keys stay leaked; the replaced boundary is forgotten once restored (the caller restored it).

        The keys to un-hold come from the record, read again before every attempt; the write holds only
        if the record still has as many keys as read (keyguard only ever adds keys), so a containment that
        added one in between makes this read again rather than leave that key held."""
        entry = self._entry_item("released", kind, name, at, actor, reason, incident, detail or {})

        def build() -> list[dict[str, Any]]:
            record = self.principal(kind, name)
            keys = record.keys if record else ()
            items = [entry]
            update = _Update(principal_pk(kind, name)).set("held", {"BOOL": False})
            update.set("released_at", _s(stamp(at) or "")).set("kind", _s(kind)).set("name", _s(name))
            for attr in ("contained_at", "layers", "replaced_boundary"):
                update.remove(attr)
            update.unchanged_count("keys", len(keys))
            items.append(update.item(self.table))
            for key in keys:
                items.append(_Update(f"key#{key}").set("held", {"BOOL": False}).item(self.table))
            return items

        self._write(build, reread=True)

    def note(
        self,
        event: str,
        kind: str,
        name: str,
        *,
        actor: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
        incident: str | None = None,
    ) -> None:
        """A history entry that changes no state (a tamper notice, an investigation finding...)."""
        at = at or datetime.now(UTC)
        self._write([self._entry_item(event, kind, name, at, actor, reason, incident, detail or {})])

    # ------------------------------------------------------------------------------------------ items
    def _entry_item(
        self,
        event: str,
        kind: str,
        name: str,
        at: datetime,
        actor: str | None,
        reason: str,
        incident: str | None,
        detail: dict[str, Any],
    ) -> dict[str, Any]:
        when = stamp(at) or ""
        precise = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # orders entries of the same second
        sk = f"entry#{precise}#{next(_SEQUENCE):08d}#{uuid.uuid4().hex[:12]}"  # same time: the order written
        item = {
            "pk": _s(principal_pk(kind, name)),
            "sk": _s(sk),
            "gpk": _s("history"),
            "gsk": _s(f"{when}#{sk}"),
            "event": _s(event),
            "kind": _s(kind),
            "name": _s(name),
            "at": _s(when),
            "actor": _s(actor or "unknown"),
            "reason": _s(reason or "-"),
            "detail": _s(json.dumps(detail, sort_keys=True, default=str)),
        }
        if incident:
            item["incident"] = _s(incident)
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def _write(self, items: list[dict[str, Any]] | Any, *, reread: bool = False) -> None:
        """Send the write (`items`, or a function that builds them from a fresh read, called before each
        attempt) as TransactWriteItems, again while DynamoDB cancels it for a conflict or throttling (see
        the module's documentation); LedgerError once it fails otherwise or WRITE_ATTEMPTS are spent.
        `reread`: a condition the build put on what it read may fail; read and build again."""
        if not self.table:
            raise LedgerError("no ledger table configured (KEYGUARD_LEDGER_TABLE)")
        build = items if callable(items) else (lambda: items)
        batch = build()
        if len(batch) > 100:  # TransactWriteItems takes at most 100: one transaction per hundred
            for start in range(0, len(batch), 100):
                part = batch[start : start + 100]
                self._write(part)
            return
        attempt = 1
        while True:
            try:
                self.client.transact_write_items(TransactItems=batch)
                return
            except Exception as e:
                verdict = _verdict(e, batch, reread)
                if verdict == "written":
                    return
                if verdict != "again" or attempt >= WRITE_ATTEMPTS:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise LedgerError(f"ledger write failed{tries}: {_code(e)}{_reasons(e)}") from e
            self.retried += 1
            _sleep(_backoff(attempt))
            attempt += 1
            batch = build()


def _verdict(e: BaseException, batch: list[dict[str, Any]], reread: bool) -> str:
    """'written' (an earlier attempt landed), 'again' (nothing was written; send it again) or 'failed'."""
    from keyguard.aws import error_code

    code = error_code(e)
    if code in _AGAIN_ERRORS:
        return "again"
    if code != "TransactionCanceledException":
        return "failed"
    reasons = [str(r.get("Code") or "None") for r in _cancellation_reasons(e)]
    if len(reasons) != len(batch):
        return "failed"  # no reasons, or not one per item: nothing to go by
    entry_first = "Put" in batch[0] and batch[0]["Put"]["Item"].get("sk", {}).get("S", "").startswith("entry#")
    if entry_first and reasons[0] == "ConditionalCheckFailed":
        return "written"  # this write's own entry key is there: its transaction landed whole
    failing = {r for r in reasons if r != "None"}
    if failing and failing <= _AGAIN:
        return "again"
    if reread and failing == {"ConditionalCheckFailed"}:
        return "again"  # what the build read has changed: read it again
    return "failed"


def _cancellation_reasons(e: BaseException) -> list[Any]:
    """A TransactionCanceledException's CancellationReasons (botocore puts them in the error response)."""
    response = getattr(e, "response", None)  # None on transport errors (botocore's timeouts carry one)
    found = response.get("CancellationReasons") if isinstance(response, dict) else None
    return [r if isinstance(r, dict) else {} for r in found] if isinstance(found, list) else []


def _reasons(e: BaseException) -> str:
    found = _cancellation_reasons(e)
    return f" (reasons: {', '.join(str(r.get('Code') or 'None') for r in found)})" if found else ""


def _backoff(attempt: int) -> float:
    """Full jitter: writers that collided do not collide again on the same schedule."""
    import random

    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))  # noqa: S311 - not a secret


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


class _Update:
    """One UpdateItem of a `state` item, every attribute name aliased (USER, KEYS, NAME... are reserved)."""

    def __init__(self, pk: str) -> None:
        self.pk = pk
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.clauses: dict[str, list[str]] = {"SET": [], "ADD": [], "REMOVE": []}
        self.condition: str | None = None

    def _alias(self, attr: str, value: Any = None) -> tuple[str, str]:
        n = len(self.names)
        self.names[f"#a{n}"] = attr
        if value is not None:
            self.values[f":v{n}"] = value
        return f"#a{n}", f":v{n}"

    def set(self, attr: str, value: Any) -> _Update:
        name, val = self._alias(attr, value)
        self.clauses["SET"].append(f"{name} = {val}")
        return self

    def set_once(self, attr: str, value: Any) -> _Update:
        name, val = self._alias(attr, value)
        self.clauses["SET"].append(f"{name} = if_not_exists({name}, {val})")
        return self

    def add(self, attr: str, value: Any) -> _Update:
        name, val = self._alias(attr, value)
        self.clauses["ADD"].append(f"{name} {val}")
        return self

    def remove(self, attr: str) -> _Update:
        self.clauses["REMOVE"].append(self._alias(attr)[0])
        return self

    def unchanged_count(self, attr: str, count: int) -> _Update:
        """Write only if the string set `attr` still has `count` members (none: absent)."""
        if count == 0:
            self.condition = f"attribute_not_exists({self._alias(attr)[0]})"
        else:
            name, val = self._alias(attr, {"N": str(count)})
            self.condition = f"size({name}) = {val}"
        return self

    def item(self, table: str | None) -> dict[str, Any]:
        expression = " ".join(f"{verb} {', '.join(parts)}" for verb, parts in self.clauses.items() if parts)
        update: dict[str, Any] = {
            "TableName": table,
            "Key": {"pk": _s(self.pk), "sk": _s("state")},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            update["ExpressionAttributeValues"] = self.values
        if self.condition:
            update["ConditionExpression"] = self.condition
        return {"Update": update}


def _principal(item: dict[str, Any]) -> PrincipalRecord:
    return PrincipalRecord(
        kind=_str(item, "kind") or USER,
        name=_str(item, "name") or "",
        unique_id=_str(item, "unique_id"),
        held=_bool(item, "held"),
        incident=_str(item, "incident"),
        contained_at=_parse(_str(item, "contained_at")),
        released_at=_parse(_str(item, "released_at")),
        layers=_set(item, "layers"),
        replaced_boundary=_str(item, "replaced_boundary"),
        leaked_keys=_set(item, "leaked_keys"),
        keys=_set(item, "keys"),
    )


def _entry(item: dict[str, Any]) -> Entry:
    try:
        detail = json.loads(_str(item, "detail") or "{}")
    except ValueError:
        detail = {}
    reason = _str(item, "reason") or ""
    return Entry(
        at=_parse(_str(item, "at")) or datetime.min.replace(tzinfo=UTC),
        event=_str(item, "event") or "",
        kind=_str(item, "kind") or USER,
        name=_str(item, "name") or "",
        incident=_str(item, "incident"),
        actor=_str(item, "actor"),
        reason="" if reason == "-" else reason,
        detail=detail if isinstance(detail, dict) else {},
    )


def _code(e: BaseException) -> str:
    from keyguard.aws import error_code

    return f"{error_code(e) or type(e).__name__}: {e}"[:300]


TABLE_SCHEMA: dict[str, Any] = {
    # template.yaml LedgerTable and the emulator create the table with exactly this
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gpk", "AttributeType": "S"},
        {"AttributeName": "gsk", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": HISTORY_INDEX,
            "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"}, {"AttributeName": "gsk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}
