"""Strict, small accessors for untrusted event dictionaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyguard.errors import MalformedEvent
from keyguard.incident import ACCOUNT_RE

_MAX_TEXT = 2048


def obj(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{where}.{key} must be an object, got {type(value).__name__}")
    return value


def opt_obj(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def text(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"{where}.{key} must be a non-empty string, got {_show(value)}")
    if len(value) > _MAX_TEXT:
        raise MalformedEvent(f"{where}.{key} is longer than {_MAX_TEXT} characters")
    return value


def opt_text(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value[:_MAX_TEXT]
    return None


def envelope(event: Any, source: str, detail_types: tuple[str, ...]) -> Mapping[str, Any]:
    """Check the EventBridge envelope; return its detail."""
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    if event.get("source") != source:
        raise MalformedEvent(f"event.source must be {source!r}, got {_show(event.get('source'))}")
    if event.get("detail-type") not in detail_types:
        raise MalformedEvent(f"event.detail-type must be one of {detail_types}, got {_show(event.get('detail-type'))}")
    text(event, "id", "event")
    account(event, "account", "event")
    return obj(event, "detail", "event")


def account(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = text(parent, key, where)
    if not ACCOUNT_RE.fullmatch(value):
        raise MalformedEvent(f"{where}.{key} must be a 12-digit account id, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def opt_account(parent: Mapping[str, Any], key: str, where: str, default: str) -> str:
    """An account id the event may repeat inside its detail; validated when present."""
    return default if parent.get(key) is None else account(parent, key, where)
