"""EventBridge event patterns, matched the way EventBridge matches them.

The deployed tamper watch classifies every CloudTrail call with this module, and the local emulator routes
with it, so a rule in template.yaml gives the same answer in the emulator and in Lambda. It is keyguard's
own because nothing on PyPI fits: event-ruler (0.3.0, last released 2023-12) and
aws-eventbridge-rule-syncer (3.1.0, 2020-01) are unmaintained, and moto's matcher is a dev-only package that
differs from EventBridge (arrays of objects, `true` vs `1`, `300` vs `300.0`, nested arrays, empty arrays).
Standard library only: it ships in every function and stays off the cold-start path's heavy imports.

Semantics, from the Amazon EventBridge User Guide ("Event patterns", "Arrays in EventBridge event
patterns", "Matching null values and empty strings", "Content filtering in Amazon EventBridge event
patterns" with its table of comparison operators) and, where the guide is silent, the README of
aws/event-ruler, the library EventBridge matches with:

- A pattern is a JSON object. Its fields are ANDed; a field's value is either a nested object (the event
  must have the same nesting) or a non-empty array of conditions that are ORed. Fields of the event that
  the pattern does not name are ignored.
- A plain condition (string, number, true, false, null) matches a leaf of the same JSON value; strings
  exactly, without case folding; numbers by their JSON representation (300, 300.0 and 3.0e2 are not
  equal); true is not 1; null and "" are different values.
- If the event's value is an array, the condition matches when ANY element matches; arrays of arrays are
  flattened. An array of objects is "crushed": the nested pattern matches when ANY one element matches it
  as a whole (two fields are never matched from different elements of one array).
- `exists` looks at leaves only: `true` matches a field that has a leaf value (null included);
  `false` matches a field that is absent, an object (an intermediate node), or an empty array.
- `prefix`, `suffix` (each also with `{"equals-ignore-case": ...}`), `equals-ignore-case` and `wildcard`
  (`*` is any run of characters; `\\*` and `\\\\` escape; `**` and other escapes are invalid) match
  strings only.
- `numeric` matches JSON numbers only: `["=", n]`, or one lower bound (`>`, `>=`) and/or one upper bound
  (`<`, `<=`).
- `cidr` matches IPv4 and IPv6 addresses given as strings.
- `anything-but` takes a string, a number, a list of only strings or only numbers, or an object with
  `prefix`, `suffix`, `equals-ignore-case` or `wildcard`; it matches a present value that is none of
  them (a missing field never matches).
- `$or` takes an array of two or more pattern objects, at any level; at least one must match.

Anything else raises ValueError — an unknown operator ("contains", a typo), an empty array or object, a
scalar where an array belongs — so a broken rule never matches silently. Numeric ranges are compared as
Python floats; EventBridge's own limits on them (range and six decimal places) are not enforced.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["OPERATORS", "matches", "operators", "validate"]

# Every comparison operator this module implements (and so accepts in a pattern).
OPERATORS = frozenset(
    {"anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard"}
)
_ANYTHING_BUT_OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard"})
_LOWER_BOUNDS = {">": lambda v, n: v > n, ">=": lambda v, n: v >= n}
_UPPER_BOUNDS = {"<": lambda v, n: v < n, "<=": lambda v, n: v <= n}
_MISSING = object()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True if `event` matches the EventBridge `pattern`. Raises ValueError for a pattern EventBridge
    would reject or that uses an operator this module does not implement, and for an event that is not
    a JSON object."""
    if not isinstance(event, Mapping):
        raise ValueError(f"event must be a JSON object, got {type(event).__name__}")
    validate(pattern)
    return _match_object(pattern, event)


def validate(pattern: Any) -> None:
    """Raise ValueError unless `pattern` is an event pattern this module can match exactly."""
    if not isinstance(pattern, Mapping):
        raise ValueError(f"event pattern must be a JSON object, got {type(pattern).__name__}")
    _validate_object(pattern, "")


def operators(pattern: Any) -> Iterator[str]:
    """Every named operator a pattern uses (`prefix`, `exists`, ...), `$or` branches included."""
    if isinstance(pattern, Mapping):
        for key, value in pattern.items():
            if key == "$or" and isinstance(value, list):
                for branch in value:
                    yield from operators(branch)
            elif isinstance(value, Mapping):
                yield from operators(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping):
                        yield from item.keys()


# ------------------------------------------------------------------------------------------- checking


def _invalid(reason: str) -> ValueError:
    return ValueError(f"invalid event pattern: {reason}")


def _validate_object(pattern: Mapping[str, Any], path: str) -> None:
    if not pattern:
        raise _invalid(f"empty object at {path or 'the top level'}")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str):
            raise _invalid(f"field name {key!r} is not a string")
        if key == "$or":
            # event-ruler reads a malformed `$or` as a field named "$or"; keyguard's rules never mean that,
            # so it is refused rather than silently never matching.
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(b, Mapping) for b in value):
                raise _invalid(f"{where} must be an array of at least two objects")
            for branch in value:
                _validate_object(branch, path)
        elif isinstance(value, Mapping):
            _validate_object(value, where)
        elif isinstance(value, list):
            if not value:
                raise _invalid(f"empty array at {where}")
            for condition in value:
                _validate_condition(condition, where)
        else:
            raise _invalid(f"{where} must be an object or an array")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_condition(condition: Any, where: str) -> None:
    if condition is None or isinstance(condition, str | bool) or _is_number(condition):
        return
    if isinstance(condition, list):
        raise _invalid(f"nested array at {where}")
    if not isinstance(condition, Mapping):
        raise _invalid(f"unsupported value {condition!r} at {where}")
    unknown = sorted(k for k in condition if k not in OPERATORS)
    if unknown:
        raise ValueError(f"unknown operator {unknown[0]!r} in the event pattern (at {where})")
    if len(condition) != 1:
        raise _invalid(f"one operator per condition at {where}, got {sorted(condition)}")
    ((name, arg),) = condition.items()
    _ARGUMENT_CHECKS[name](arg, f"{where} {name}")


def _check_string(arg: Any, where: str) -> None:
    if not isinstance(arg, str):
        raise _invalid(f"{where} takes a string, got {arg!r}")


def _check_affix(arg: Any, where: str) -> None:
    if isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}:
        _check_string(arg["equals-ignore-case"], where)
    else:
        _check_string(arg, where)


def _check_wildcard(arg: Any, where: str) -> None:
    _check_string(arg, where)
    _wildcard_regex(arg, where)


def _check_exists(arg: Any, where: str) -> None:
    if not isinstance(arg, bool):
        raise _invalid(f"{where} takes true or false, got {arg!r}")


def _check_cidr(arg: Any, where: str) -> None:
    _check_string(arg, where)
    _network(arg, where)


def _check_numeric(arg: Any, where: str) -> None:
    _numeric_tests(arg, where)


def _check_anything_but(arg: Any, where: str) -> None:
    if isinstance(arg, str) or _is_number(arg):
        return
    if isinstance(arg, list):
        if arg and (all(isinstance(v, str) for v in arg) or all(_is_number(v) for v in arg)):
            return
        raise _invalid(f"{where} takes a non-empty list of only strings or only numbers, got {arg!r}")
    if isinstance(arg, Mapping) and len(arg) == 1:
        ((name, inner),) = arg.items()
        if name not in _ANYTHING_BUT_OPERATORS:
            raise ValueError(f"unknown operator {name!r} in the event pattern (at {where})")
        values = inner if isinstance(inner, list) and name in ("equals-ignore-case", "wildcard") else [inner]
        if not values:
            raise _invalid(f"{where} {name} takes a string or a non-empty list of strings")
        for v in values:
            _check_string(v, f"{where} {name}")
            if name == "wildcard":
                _wildcard_regex(v, where)
        return
    raise _invalid(f"{where} takes a string, a number, a list or one operator, got {arg!r}")


_ARGUMENT_CHECKS = {
    "prefix": _check_affix,
    "suffix": _check_affix,
    "equals-ignore-case": _check_string,
    "wildcard": _check_wildcard,
    "exists": _check_exists,
    "cidr": _check_cidr,
    "numeric": _check_numeric,
    "anything-but": _check_anything_but,
}


def _wildcard_regex(text: str, where: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ("*", "\\"):
                raise _invalid(f"{where}: a backslash escapes only '*' or '\\' in {text!r}")
            out.append(re.escape(nxt))
            i += 2
        elif c == "*":
            if text[i + 1 : i + 2] == "*":
                raise _invalid(f"{where}: consecutive wildcard characters in {text!r}")
            out.append(".*")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _network(text: str, where: str) -> Any:
    import ipaddress  # only patterns with `cidr` pay for it

    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise _invalid(f"{where}: {e}") from None


def _numeric_tests(arg: Any, where: str) -> list[tuple[Any, float]]:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise _invalid(f"{where} takes [op, number] or [op, number, op, number], got {arg!r}")
    tests: list[tuple[Any, float]] = []
    sides: set[str] = set()
    for op, number in zip(arg[::2], arg[1::2], strict=True):
        if not _is_number(number):
            raise _invalid(f"{where}: {number!r} is not a number")
        if op == "=" and len(arg) == 2:
            tests.append((lambda v, n: v == n, number))
        elif op in _LOWER_BOUNDS and "lower" not in sides:
            sides.add("lower")
            tests.append((_LOWER_BOUNDS[op], number))
        elif op in _UPPER_BOUNDS and "upper" not in sides:
            sides.add("upper")
            tests.append((_UPPER_BOUNDS[op], number))
        else:
            raise _invalid(f"{where}: {arg!r} is not '=' alone, or one lower and one upper bound")
    return tests


# ------------------------------------------------------------------------------------------- matching


def _match_object(pattern: Mapping[str, Any], node: Any) -> bool:
    """`node` is the event's value where `pattern` applies: an object, or anything else (no fields)."""
    for key, value in pattern.items():
        if key == "$or":
            if not any(_match_object(branch, node) for branch in value):
                return False
            continue
        child = node.get(key, _MISSING) if isinstance(node, Mapping) else _MISSING
        if isinstance(value, Mapping):
            if not _match_nested(value, child):
                return False
        elif not _match_conditions(value, _leaves(child)):
            return False
    return True


def _match_nested(pattern: Mapping[str, Any], child: Any) -> bool:
    if isinstance(child, list):
        elements = list(_flatten(child))
        if elements:
            # An array of objects: ANY one element must match the whole nested pattern.
            return any(_match_object(pattern, element) for element in elements)
        child = _MISSING
    return _match_object(pattern, child)


def _flatten(values: list[Any]) -> Iterator[Any]:
    for v in values:
        if isinstance(v, list):
            yield from _flatten(v)
        else:
            yield v


def _leaves(child: Any) -> list[Any]:
    if child is _MISSING or isinstance(child, Mapping):
        return []  # absent, or an intermediate node: not a leaf
    if isinstance(child, list):
        return [v for v in _flatten(child) if not isinstance(v, Mapping)]
    return [child]


def _match_conditions(conditions: list[Any], leaves: list[Any]) -> bool:
    for condition in conditions:
        if isinstance(condition, Mapping):
            ((name, arg),) = condition.items()
            if name == "exists":
                if bool(leaves) is arg:
                    return True
            elif any(_OPERATOR_TESTS[name](arg, leaf) for leaf in leaves):
                return True
        elif any(_same_value(condition, leaf) for leaf in leaves):
            return True
    return False


def _same_value(expected: Any, leaf: Any) -> bool:
    if isinstance(expected, str) or isinstance(leaf, str):
        return expected == leaf and type(expected) is type(leaf)
    # Numbers by their JSON text (300 is not 300.0), and true is not 1.
    return json.dumps(expected) == json.dumps(leaf)


def _fold(arg: Any) -> tuple[str, bool]:
    if isinstance(arg, Mapping):
        return arg["equals-ignore-case"], True
    return arg, False


def _prefix(arg: Any, leaf: Any) -> bool:
    if not isinstance(leaf, str):
        return False
    text, fold = _fold(arg)
    return leaf.lower().startswith(text.lower()) if fold else leaf.startswith(text)


def _suffix(arg: Any, leaf: Any) -> bool:
    if not isinstance(leaf, str):
        return False
    text, fold = _fold(arg)
    return leaf.lower().endswith(text.lower()) if fold else leaf.endswith(text)


def _equals_ignore_case(arg: str, leaf: Any) -> bool:
    return isinstance(leaf, str) and leaf.lower() == arg.lower()


def _wildcard(arg: str, leaf: Any) -> bool:
    return isinstance(leaf, str) and _compiled_wildcard(arg).fullmatch(leaf) is not None


@functools.lru_cache(maxsize=256)
def _compiled_wildcard(text: str) -> re.Pattern[str]:
    return _wildcard_regex(text, "wildcard")


def _cidr(arg: str, leaf: Any) -> bool:
    import ipaddress

    if not isinstance(leaf, str):
        return False
    try:
        address = ipaddress.ip_address(leaf)
    except ValueError:
        return False
    network = _network(arg, "cidr")
    return address.version == network.version and address in network


def _numeric(arg: list[Any], leaf: Any) -> bool:
    return _is_number(leaf) and all(test(leaf, n) for test, n in _numeric_tests(arg, "numeric"))


def _anything_but(arg: Any, leaf: Any) -> bool:
    if isinstance(arg, Mapping):
        ((name, inner),) = arg.items()
        values = inner if isinstance(inner, list) else [inner]
        test = _OPERATOR_TESTS[name]
        # "anything but a string that ...": a value of another type is not excluded.
        return not any(test(v, leaf) for v in values)
    excluded = arg if isinstance(arg, list) else [arg]
    if _is_number(leaf):
        # A number is excluded by an equal number (EventBridge compares anything-but numbers as numbers).
        return not any(_is_number(v) and v == leaf for v in excluded)
    return not any(isinstance(v, str) and v == leaf for v in excluded)


_OPERATOR_TESTS = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "cidr": _cidr,
    "numeric": _numeric,
    "anything-but": _anything_but,
}
