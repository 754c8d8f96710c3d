"""GuardDuty Extended Threat Detection: `AttackSequence:IAM/...` findings (a sequence of suspicious actions
made with AWS credentials).

They arrive as ordinary `GuardDuty Finding` events, but the credentials are not in
`resource.accessKeyDetails`: each actor of `detail.service.detection.sequence.actors[]` (up to 400) names its
credential in `user` (`name`, `type`, `uid`, `credentialUid`, `account.uid`; GuardDuty API reference
`Sequence`, `Actor`, `User`, `Account`).

Each actor whose credential keyguard can act on becomes the incident a GuardDuty IAM finding on that
credential would be (the same source, severity threshold and sample handling; IAM confirms the owner of a
long-term key, role and session credentials take the existing role/session paths). The actors that cannot be
proven to be a principal of this account (no key named, activity in another account, root without a key,
a type IAM cannot contain, a name IAM would not accept) are gathered in one notify-only incident that names
each with its reason: a human decides, nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import Evidence, Incident, Kind, PrincipalType, Source, envelope_time, is_key_id, is_long_term
from keyguard.sources._fields import envelope, obj, opt_account, opt_obj, opt_text, text

SOURCE = "aws.guardduty"
DETAIL_TYPES = ("GuardDuty Finding",)
TYPE_PREFIX = "AttackSequence:IAM/"  # a prefix: AWS adds sequence types
MAX_ACTORS = 400  # API reference, Sequence.actors: "Maximum number of 400 items"
NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")  # IAM user and role names
UNIQUE_ID_RE = re.compile(r"(AIDA|AROA)[A-Z0-9]{12,28}")
ARN_ACCOUNT_RE = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::([0-9]{12}):")

_TYPES = {
    "IAMUser": PrincipalType.IAM_USER,
    "AssumedRole": PrincipalType.ASSUMED_ROLE,
    "Root": PrincipalType.ROOT,
    "FederatedUser": PrincipalType.FEDERATED_USER,
}


def is_attack_sequence(detail: Mapping[str, Any]) -> bool:
    value = detail.get("type")
    return isinstance(value, str) and value.startswith(TYPE_PREFIX)


def extract(event: Any) -> list[Incident]:
    detail = envelope(event, SOURCE, DETAIL_TYPES)
    finding_type = text(detail, "type", "detail")
    if not finding_type.startswith(TYPE_PREFIX):
        raise MalformedEvent(f"detail.type must start with {TYPE_PREFIX!r}, got {finding_type[:60]!r}")
    severity = detail.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, int | float) or not 0 <= severity <= 10:
        raise MalformedEvent(f"detail.severity must be a number within 0..10, got {severity!r}")
    finding_id = text(detail, "id", "detail")
    service = obj(detail, "service", "detail")
    sequence = obj(obj(service, "detection", "detail.service"), "sequence", "detail.service.detection")
    actors = sequence.get("actors")
    if not isinstance(actors, list):
        raise MalformedEvent("detail.service.detection.sequence.actors must be a list")
    if len(actors) > MAX_ACTORS:
        raise MalformedEvent(f"detail.service.detection.sequence.actors has {len(actors)} entries, more than 400")
    account = opt_account(detail, "accountId", "detail", event["account"])
    sample = _is_sample(opt_obj(service, "additionalInfo"))

    def incident(key_id: str, kind: PrincipalType, name: str | None, **extra: Any) -> Incident:
        return Incident(
            source=Source.GUARDDUTY,
            kind=Kind.COMPROMISE,
            key_id=key_id,
            principal_type=kind,
            principal_name=name,
            account=account,
            region=opt_text(detail, "region") or opt_text(event, "region") or "",
            source_id=extra.pop("source_id", finding_id),
            event_id=event["id"],
            observed_at=envelope_time(event.get("time")),
            finding_type=finding_type,
            severity=float(severity),
            sample=sample,
            source_arn=opt_text(detail, "arn"),
            **extra,
        )

    signals = _signals_by_actor(sequence)
    if sample:  # GuardDuty's placeholders name nobody: one notice says the wiring works
        first = next((a for a in actors if isinstance(a, Mapping)), {})
        key = opt_text(opt_obj(first, "user"), "credentialUid") or ""
        return [incident(key[:128], PrincipalType.OTHER, None, evidence=_evidence(detail, service, None, []))]
    out: list[Incident] = []
    unproven: list[str] = []
    seen: set[str] = set()
    for n, actor in enumerate(actors, 1):
        if not isinstance(actor, Mapping):
            unproven.append(f"actor {n}: not an object")
            continue
        user = opt_obj(actor, "user")
        label = _label(actor, user, n)
        key = opt_text(user, "credentialUid") or ""
        found = _provable(user, key, account)
        if isinstance(found, str):
            unproven.append(f"{label}: {found}")
            continue
        if key in seen:
            continue  # the same credential in two actors: one incident
        seen.add(key)
        kind, name = found
        uid = opt_text(user, "uid")
        ev = _evidence(detail, service, label, signals.get(opt_text(actor, "id") or "", []))
        out.append(incident(key, kind, name, principal_id=uid if _unique_id(uid) else None, evidence=ev))
    if unproven:
        digest = hashlib.sha256("\n".join(sorted(unproven)).encode()).hexdigest()[:12]
        shown = unproven[:12] + ([f"... and {len(unproven) - 12} more"] if len(unproven) > 12 else [])
        why = (
            f"GuardDuty's attack sequence names {len(unproven)} credential(s) keyguard cannot prove to be a"
            " principal of this account, so it changed nothing for them; a human must decide: " + "; ".join(shown)
        )[:1500]
        out.append(
            incident(
                "",
                PrincipalType.OTHER,
                None,
                # a new set of unproven actors (GuardDuty updates the finding) is a new notice, the same set is not
                source_id=f"{finding_id}/not-proven-{digest}",
                not_evidence=why,
                evidence=_evidence(detail, service, None, []),
            )
        )
    if not out:
        raise MalformedEvent(f"{finding_type} finding names no actor (detail.service.detection.sequence.actors)")
    return out


def _provable(user: Mapping[str, Any], key: str, account: str) -> tuple[PrincipalType, str | None] | str:
    """(principal type, name) for an actor keyguard acts on as it would on a GuardDuty IAM finding, or the
    reason it cannot (for the human who must)."""
    kind_text = opt_text(user, "type") or ""
    raw_name = user.get("name")
    name = raw_name[:128] if isinstance(raw_name, str) and raw_name.strip() else None  # a number is no IAM name
    if not user:
        return "no user (credentials) named"
    where = _account_of(user)
    if where and where != account:
        return f"the activity was in account {where}, not {account}: not proven to be this account's credential"
    if not is_key_id(key):
        return "no access key id named (credentialUid)"
    kind = _TYPES.get(kind_text)
    if kind is None:
        return f"type {kind_text[:40] or 'unknown'!r} is not an IAM user or role: IAM cannot contain it"
    if kind is PrincipalType.ROOT:
        return kind, None  # keyguard's root path: critical notice, a human acts (IAM cannot restrict root)
    if kind is PrincipalType.FEDERATED_USER:
        return kind, name  # the issuing IAM user is named from CloudTrail, confirmed by IAM (sources.federation)
    if name is not None and not NAME_RE.fullmatch(name):
        return f"the name {name[:80]!r} is not an IAM {'role' if kind is PrincipalType.ASSUMED_ROLE else 'user'} name"
    if kind is PrincipalType.ASSUMED_ROLE:
        if not name:
            return "role credentials with no role name"
        if is_long_term(key):
            return "a role actor with a long-term (AKIA) key id"
        return kind, name
    if not name and not is_long_term(key):
        return "session credentials (ASIA) of an unnamed user: IAM cannot name an owner"
    # a long-term key: deactivating it with the named user proves the owner, else IAM names it
    return (kind if name else PrincipalType.UNKNOWN), name


def _account_of(user: Mapping[str, Any]) -> str | None:
    """The account the actor's activity was in (User.account.uid), or the account in the user's ARN uid."""
    named = opt_obj(user, "account").get("uid")
    if named is not None and not isinstance(named, str):
        return f"<a {type(named).__name__}, not an account id>"  # never equal to this account
    if named:
        return named[:40]
    found = ARN_ACCOUNT_RE.match(opt_text(user, "uid") or "")
    return found.group(1) if found else None


def _unique_id(uid: str | None) -> bool:
    return bool(uid) and bool(UNIQUE_ID_RE.fullmatch(uid.split(":", 1)[0]))  # type: ignore[union-attr]


def _label(actor: Mapping[str, Any], user: Mapping[str, Any], n: int) -> str:
    parts = [opt_text(user, "type") or "?", opt_text(user, "name") or "(no name)", opt_text(user, "credentialUid")]
    shown = " ".join(p[:64] for p in parts if p)
    return f"actor {n} ({shown})"


def _signals_by_actor(sequence: Mapping[str, Any]) -> dict[str, list[str]]:
    """The names of the signals (GuardDuty findings, CloudTrail activity) each actor id took part in."""
    out: dict[str, list[str]] = {}
    signals = sequence.get("signals")
    for signal in signals if isinstance(signals, list) else []:
        if not isinstance(signal, Mapping):
            continue
        name = opt_text(signal, "name")
        ids = signal.get("actorIds")
        for actor_id in ids if isinstance(ids, list) and name else []:
            if isinstance(actor_id, str) and name[:80] not in out.setdefault(actor_id, []):  # type: ignore[index]
                out[actor_id].append(name[:80])  # type: ignore[index]
    return out


def _is_sample(additional: Mapping[str, Any]) -> bool:
    value = additional.get("sample")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _evidence(detail: Mapping[str, Any], service: Mapping[str, Any], label: str | None, signals: list[str]) -> Evidence:
    title = opt_text(detail, "title") or opt_text(detail, "description") or "GuardDuty attack sequence"
    parts = [title[:300]]
    if label:
        parts.append(f"Credential: {label}.")
    if signals:
        parts.append(f"Its signals: {', '.join(signals[:10])}{', ...' if len(signals) > 10 else ''}.")
    return Evidence(
        first_seen=opt_text(service, "eventFirstSeen"),
        last_seen=opt_text(service, "eventLastSeen"),
        description=" ".join(parts)[:500],
    )
