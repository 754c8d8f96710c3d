"""Pure-Python EventBridge event-pattern matcher for the local emulator.

Implements the content-filtering semantics AWS documents for event buses
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html,
eb-event-patterns-arrays.html, eb-event-patterns-null-values.html) and that aws/event-ruler
implements:

* every key of the pattern must match (AND); a leaf is a list of alternatives (OR);
* a nested pattern object recurses into the event's object; if the event holds an array
  of objects there, the nested pattern must match one element as a whole;
* an event array at a leaf matches if any element matches;
* ``null`` is a value: it matches ``[null]`` and counts as present for ``exists``;
* ``exists`` looks at leaves only, so an object-valued field counts as absent;
* ``"$or": [pattern, ...]`` matches if any sub-pattern matches.

Malformed patterns (unknown operators, wrong operand types, empty lists) raise
``ValueError`` before any matching happens, so a broken rule can never match silently.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["matches"]

_MISSING: Any = object()
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_STRING_OPS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_OPERATORS = (*_STRING_OPS, "anything-but", "numeric", "exists", "cidr")


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Return True if ``event`` matches the EventBridge ``pattern``.

    Raises ValueError if the pattern is malformed.
    """
    if not isinstance(pattern, Mapping):
        raise ValueError(f"event pattern must be a JSON object, got {type(pattern).__name__}")
    if not isinstance(event, Mapping):
        raise ValueError(f"event must be a JSON object, got {type(event).__name__}")
    _validate_object(pattern, "")
    return _match_object(pattern, event)


# --------------------------------------------------------------------------- validation


def _validate_object(pattern: Mapping[str, Any], path: str) -> None:
    if not pattern:
        raise ValueError(f"empty pattern object at {path or '<root>'}")
    for key, value in pattern.items():
        if not isinstance(key, str):
            raise ValueError(f"pattern keys must be strings, got {key!r} at {path or '<root>'}")
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or not value:
                raise ValueError(f"'$or' at {where} must be a non-empty list of pattern objects")
            for i, sub in enumerate(value):
                if not isinstance(sub, Mapping):
                    raise ValueError(f"'$or' element {i} at {where} must be a pattern object")
                _validate_object(sub, f"{where}[{i}]")
        elif isinstance(value, Mapping):
            _validate_object(value, where)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"empty list of values at {where}")
            for alt in value:
                _validate_alternative(alt, where)
        else:
            raise ValueError(f"pattern value at {where} must be a list of values or an object, got {value!r}")


def _validate_alternative(alt: Any, where: str) -> None:
    if _is_literal(alt):
        return
    if not isinstance(alt, Mapping):
        raise ValueError(f"invalid value {alt!r} at {where}: expected string, number, bool, null or operator")
    if len(alt) != 1:
        raise ValueError(f"operator object at {where} must have exactly one key, got {sorted(alt)}")
    ((op, arg),) = alt.items()
    if op in ("prefix", "suffix"):
        if isinstance(arg, Mapping):
            if set(arg) != {"equals-ignore-case"} or not isinstance(arg["equals-ignore-case"], str):
                raise ValueError(f"'{op}' at {where} takes a string or {{'equals-ignore-case': string}}")
        elif not isinstance(arg, str):
            raise ValueError(f"'{op}' at {where} takes a string, got {arg!r}")
    elif op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise ValueError(f"'equals-ignore-case' at {where} takes a string, got {arg!r}")
    elif op == "wildcard":
        if not isinstance(arg, str):
            raise ValueError(f"'wildcard' at {where} takes a string, got {arg!r}")
        _wildcard_regex(arg, where)
    elif op == "anything-but":
        _validate_anything_but(arg, where)
    elif op == "numeric":
        _validate_numeric(arg, where)
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError(f"'exists' at {where} takes true or false, got {arg!r}")
    elif op == "cidr":
        if not isinstance(arg, str):
            raise ValueError(f"'cidr' at {where} takes a string, got {arg!r}")
        try:
            ipaddress.ip_network(arg, strict=False)
        except ValueError as exc:
            raise ValueError(f"invalid 'cidr' {arg!r} at {where}: {exc}") from None
    else:
        raise ValueError(f"unknown operator {op!r} at {where}; supported: {', '.join(_OPERATORS)}")


def _validate_anything_but(arg: Any, where: str) -> None:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in _STRING_OPS:
            raise ValueError(
                f"'anything-but' object at {where} must have one of {', '.join(_STRING_OPS)}, got {sorted(arg)}"
            )
        ((op, inner),) = arg.items()
        values = inner if isinstance(inner, list) else [inner]
        if not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"'anything-but' {op!r} at {where} takes a string or list of strings")
        if op == "wildcard":
            for v in values:
                _wildcard_regex(v, where)
        return
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise ValueError(f"'anything-but' at {where} takes a non-empty list")
    if all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values):
        return
    raise ValueError(f"'anything-but' at {where} takes a string, a number, or a list of only strings or only numbers")


def _validate_numeric(arg: Any, where: str) -> None:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise ValueError(f"'numeric' at {where} takes a list of operator/number pairs, got {arg!r}")
    for op, num in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise ValueError(f"unknown numeric operator {op!r} at {where}; supported: {', '.join(_NUMERIC_OPS)}")
        if not _is_number(num):
            raise ValueError(f"'numeric' operand for {op!r} at {where} must be a number, got {num!r}")


# --------------------------------------------------------------------------- matching


def _match_object(pattern: Mapping[str, Any], node: Any) -> bool:
    # An array of objects matches if one element matches the whole sub-pattern.
    if isinstance(node, list):
        objects = [n for n in _flatten(node) if isinstance(n, Mapping)]
        return any(_match_fields(pattern, o) for o in objects) if objects else _match_fields(pattern, {})
    # Absent or scalar: none of its children exist (exists:false can still match).
    return _match_fields(pattern, node if isinstance(node, Mapping) else {})


def _match_fields(pattern: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    for key, spec in pattern.items():
        if key == "$or":
            if not any(_match_object(sub, obj) for sub in spec):
                return False
        elif isinstance(spec, Mapping):
            if not _match_object(spec, obj.get(key, _MISSING)):
                return False
        elif not _match_leaf(spec, obj.get(key, _MISSING)):
            return False
    return True


def _match_leaf(alternatives: list[Any], node: Any) -> bool:
    values = _leaf_values(node)
    return any(_match_alternative(alt, values) for alt in alternatives)


def _leaf_values(node: Any) -> list[Any]:
    """Leaf values at a field: none if absent or an object, each element if an array."""
    if node is _MISSING or isinstance(node, Mapping):
        return []
    if isinstance(node, list):
        return [v for v in _flatten(node) if not isinstance(v, Mapping)]
    return [node]


def _flatten(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _match_alternative(alt: Any, values: list[Any]) -> bool:
    if not isinstance(alt, Mapping):
        return any(_equals(alt, v) for v in values)
    ((op, arg),) = alt.items()
    if op == "exists":
        return bool(values) is arg
    return any(_apply(op, arg, v) for v in values)


def _apply(op: str, arg: Any, value: Any) -> bool:
    if op == "numeric":
        return _is_number(value) and all(_NUMERIC_OPS[o](value, n) for o, n in zip(arg[::2], arg[1::2], strict=True))
    if op == "cidr":
        return _in_cidr(value, arg)
    if op == "anything-but":
        return _anything_but(arg, value)
    return isinstance(value, str) and _string_op(op, arg, value)


def _string_op(op: str, arg: Any, value: str) -> bool:
    if op == "equals-ignore-case":
        return value.casefold() == arg.casefold()
    if op == "wildcard":
        return _wildcard_regex(arg, "").fullmatch(value) is not None
    if isinstance(arg, Mapping):  # prefix/suffix with equals-ignore-case
        value, arg = value.casefold(), arg["equals-ignore-case"].casefold()
    return value.startswith(arg) if op == "prefix" else value.endswith(arg)


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        ((op, inner),) = arg.items()
        inner_values = inner if isinstance(inner, list) else [inner]
        # Non-string values (numbers, null, bools) are never excluded by a string operator.
        return not (isinstance(value, str) and any(_string_op(op, i, value) for i in inner_values))
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_equals(e, value) for e in excluded)


def _in_cidr(value: Any, cidr: str) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


# --------------------------------------------------------------------------- helpers


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_literal(x: Any) -> bool:
    return x is None or isinstance(x, str | bool) or _is_number(x)


def _equals(expected: Any, actual: Any) -> bool:
    """JSON equality: numbers compare numerically, but true/false are not 1/0."""
    if _is_number(expected) or _is_number(actual):
        return _is_number(expected) and _is_number(actual) and expected == actual
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if expected is None or actual is None:
        return expected is actual
    return isinstance(actual, str) and isinstance(expected, str) and expected == actual


_WILDCARD_CACHE: dict[str, re.Pattern[str]] = {}


def _wildcard_regex(wildcard: str, where: str) -> re.Pattern[str]:
    """Compile an EventBridge wildcard: '*' is any run; '\\*' and '\\\\' are literals."""
    cached = _WILDCARD_CACHE.get(wildcard)
    if cached is not None:
        return cached
    parts: list[str] = []
    i, prev_star = 0, False
    while i < len(wildcard):
        ch = wildcard[i]
        if ch == "\\":
            nxt = wildcard[i + 1] if i + 1 < len(wildcard) else ""
            if nxt not in ("*", "\\"):
                raise ValueError(f"invalid escape in wildcard {wildcard!r} at {where}: only \\* and \\\\")
            parts.append(re.escape(nxt))
            i, prev_star = i + 2, False
            continue
        if ch == "*":
            if prev_star:
                raise ValueError(f"consecutive '*' not allowed in wildcard {wildcard!r} at {where}")
            parts.append(".*")
            prev_star = True
        else:
            parts.append(re.escape(ch))
            prev_star = False
        i += 1
    compiled = re.compile("".join(parts), re.DOTALL)
    _WILDCARD_CACHE[wildcard] = compiled
    return compiled
