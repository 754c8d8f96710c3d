"""EventBridge event patterns for the local emulator: keyguard's own matcher (keyguard.patterns, the one
the deployed tamper watch classifies with, so the emulator and the functions give the same answers), and
AWS's own TestEventPattern when asked to (`aws_matches`).

moto's matcher is no longer used: it is a dev-only package (the deployed functions cannot import it) and
it differs from EventBridge on arrays of objects, `true` vs `1`, `300` vs `300.0` and nested arrays
(tests/unit/test_event_patterns.py). `template_operators` lists what the templates use so a test can say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from keyguard import patterns

__all__ = ["aws_matches", "matches", "template_operators"]


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True if `event` matches the EventBridge `pattern`. Raises ValueError for a malformed pattern."""
    return patterns.matches(pattern, event)


def aws_matches(events_client: Any, pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's own answer (TestEventPattern), with the caller's credentials. The event must carry
    the envelope fields AWS requires (id, account, source, time, region, resources, detail-type)."""
    answer = events_client.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
    return bool(answer["Result"])


def template_operators(pattern: Any) -> Iterator[str]:
    """Every named operator a pattern uses (`prefix`, `exists`, ...); `$or` and nesting followed."""
    return patterns.operators(pattern)
