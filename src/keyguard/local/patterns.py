"""EventBridge event patterns for the local emulator: moto's matcher (moto.events.models.EventPattern, the
one behind moto's rules and archives), and AWS's own TestEventPattern when asked to (`aws_matches`).

moto's EventBridge API answers TestEventPattern with NotImplementedError (moto 5.2.1), so the emulator
uses moto's pattern class directly. The template's rules use plain values, `prefix` and `exists`, all of
which moto implements as AWS documents them. moto's class treats an operator it does not know as a match;
`matches` rejects such a pattern first, so that a broken rule never matches silently. Where moto differs
from EventBridge (arrays of objects, `true` vs `1`, nested arrays: tests/unit/test_event_patterns.py), no
template pattern is affected; `template_operators` lists what the templates use so a test can say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["aws_matches", "matches", "template_operators"]

# The operators moto's EventPattern implements (moto 5.2.1, events/models.py).
MOTO_OPERATORS = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "numeric", "anything-but", "exists", "cidr", "wildcard"}
)


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True if `event` matches the EventBridge `pattern`. Raises ValueError for a malformed pattern."""
    from moto.events.exceptions import InvalidEventPatternException
    from moto.events.models import EventPattern

    if not isinstance(pattern, Mapping):
        raise ValueError(f"event pattern must be a JSON object, got {type(pattern).__name__}")
    if not isinstance(event, Mapping):
        raise ValueError(f"event must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(template_operators(pattern)) - MOTO_OPERATORS)
    if unknown:
        raise ValueError(f"unknown operator {unknown[0]!r} in the event pattern")
    try:
        compiled = EventPattern.load(json.dumps(pattern))
    except InvalidEventPatternException as e:
        raise ValueError(f"invalid event pattern: {e.message}") from e
    return compiled.matches_event(dict(event))


def aws_matches(events_client: Any, pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's own answer (TestEventPattern), with the caller's credentials. The event must carry
    the envelope fields AWS requires (id, account, source, time, region, resources, detail-type)."""
    answer = events_client.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
    return bool(answer["Result"])


def template_operators(pattern: Any) -> Iterator[str]:
    """Every named operator a pattern uses (`prefix`, `exists`, ...); `$or` and nesting followed."""
    if isinstance(pattern, Mapping):
        for key, value in pattern.items():
            if key == "$or" and isinstance(value, list):
                for branch in value:
                    yield from template_operators(branch)
            elif isinstance(value, Mapping):
                yield from template_operators(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping):
                        yield from item.keys()
