"""A matcher for EventBridge event patterns: `matches()` decides an event against a
pattern with EventBridge's semantics for the operators keyfix uses, so that classification
in the Lambda, in `keyfix handle` and in the tests agrees with what EventBridge delivers.
The rules themselves are data in keyfix.events.patterns.

Semantics implemented (EventBridge user guide, "Event patterns" and "Comparison
operators"):
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
and the reference implementation's README (aws/event-ruler), which states the corner
cases the guide leaves implicit (array matching, `exists` on non-leaf nodes, wildcard
escapes, `$or` recognition):
  https://github.com/aws/event-ruler/blob/main/README.md

- Every field named in a pattern must match ("and"); a field matches when any value in
  its list matches ("or"). A pattern object descends into the event object.
- If the event value is an array, the field matches when any element matches. An array
  of objects is matched element by element, each element against the whole sub-pattern
  (event-ruler's "array-consistent" matching).
- Exact values compare by JSON type and value: "1" does not match 1, true does not
  match 1; `null` matches a present null.
- `prefix`, `suffix`, `equals-ignore-case` (also nested in prefix/suffix) and
  `wildcard` only match strings. Wildcard: `*` matches any run of characters, `\\*` is
  a literal star, `\\\\` a literal backslash.
- `anything-but` (a value, a list of values, or {prefix|suffix|wildcard|
  equals-ignore-case}) matches a present leaf value that is not excluded; a missing
  field does not match it.
- `exists: true` matches a present leaf value; `exists: false` matches when there is
  no leaf value there (missing, an object, or an empty array - "exists only works on
  leaf nodes").
- `$or`: a list of two or more sub-patterns; matches when any matches.
- `numeric` and `cidr` are not implemented (keyfix's rules do not use them);
  `validate_pattern` rejects them, and `matches` raises PatternError for them.

Only the pattern can make `matches` raise (PatternError); any event value - wrong
types, missing fields, non-dicts - just fails to match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "PatternError",
    "matches",
    "matching_rules",
    "classify",
    "validate_pattern",
    "wildcard_match",
]


class PatternError(ValueError):
    """An event pattern that EventBridge would reject or that keyfix cannot evaluate."""


# -- matching -------------------------------------------------------------------------

_MISSING = object()
_STRING_OPS = ("prefix", "suffix", "equals-ignore-case", "wildcard")


def classify(event: Any, patterns: Mapping[str, Mapping[str, Any]] | None = None) -> str | None:
    """The name of the first rule whose pattern matches `event`, or None.

    Events whose `source` is not an AWS one ("aws." prefix) are never classified:
    keyfix reacts to AWS service events only.
    """
    if not isinstance(event, Mapping):
        return None
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith("aws."):
        return None
    for name in matching_rules(event, patterns):
        return name
    return None


def matching_rules(event: Any, patterns: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Names of every rule in `patterns` (default PATTERNS) that matches `event`."""
    if patterns is None:
        from keyfix.events.patterns import PATTERNS  # imported here: patterns.py imports this module

        patterns = PATTERNS
    return [name for name, pattern in patterns.items() if matches(pattern, event)]


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether `event` matches the EventBridge event `pattern` (see module docstring)."""
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    # An event is a JSON object; anything else has no fields at all.
    return _match_object(pattern, event if isinstance(event, Mapping) else {})


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    # An array of objects: some element must match the whole sub-pattern. An array
    # without objects has no fields below it, like a missing node.
    if isinstance(value, list):
        objects = _object_elements(value)
        if objects:
            return any(_match_object(pattern, item) for item in objects)
        value = {}
    obj: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    for key, sub in pattern.items():
        if key == "$or" and _is_or(sub):
            if not any(_match_object(alternative, obj) for alternative in sub):
                return False
            continue
        field = obj.get(key, _MISSING) if isinstance(key, str) else _MISSING
        if isinstance(sub, Mapping):
            if not _match_object(sub, {} if field is _MISSING else field):
                return False
        elif isinstance(sub, list):
            if not _match_leaf(sub, field):
                return False
        else:
            raise PatternError(f"pattern field {key!r} must be an array or an object, not {type(sub).__name__}")
    return True


def _object_elements(array: list[Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    stack = [array]
    while stack:
        for item in stack.pop():
            if isinstance(item, list):
                stack.append(item)
            elif isinstance(item, Mapping):
                out.append(item)
    return out


def _is_or(sub: Any) -> bool:
    # event-ruler recognises "$or" only as an array of 2+ objects.
    return isinstance(sub, list) and len(sub) >= 2 and all(isinstance(s, Mapping) for s in sub)


def _leaf_values(field: Any) -> list[Any]:
    """The leaf values at a field: scalars only; arrays are flattened; objects are not leaves."""
    if field is _MISSING:
        return []
    if isinstance(field, list):
        out: list[Any] = []
        stack = [field]
        while stack:
            for item in stack.pop():
                if isinstance(item, list):
                    stack.append(item)
                elif not isinstance(item, Mapping):
                    out.append(item)
        return out
    if isinstance(field, Mapping):
        return []
    return [field]


def _match_leaf(matchers: list[Any], field: Any) -> bool:
    if not matchers:
        raise PatternError("an array in an event pattern must not be empty")
    values = _leaf_values(field)
    for matcher in matchers:
        if isinstance(matcher, Mapping):
            if _match_operator(matcher, values):
                return True
        elif any(_json_equal(matcher, v) for v in values):
            return True
    return False


def _match_operator(op: Mapping[str, Any], values: list[Any]) -> bool:
    if len(op) != 1:
        raise PatternError(f"a comparison must have exactly one operator: {dict(op)!r}")
    ((name, arg),) = op.items()
    if name == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
        return bool(values) if arg else not values
    if name == "anything-but":
        return any(_anything_but(arg, v) for v in values)
    if name in _STRING_OPS:
        return any(isinstance(v, str) and _string_op(name, arg, v) for v in values)
    raise PatternError(f"unsupported event pattern operator: {name!r}")


def _string_op(name: str, arg: Any, value: str) -> bool:
    if name == "wildcard":
        if not isinstance(arg, str):
            raise PatternError("wildcard takes a string")
        return wildcard_match(arg, value)
    if name == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError("equals-ignore-case takes a string")
        return value.casefold() == arg.casefold()
    # prefix / suffix: a string, or {"equals-ignore-case": string}
    if isinstance(arg, Mapping):
        if set(arg) != {"equals-ignore-case"} or not isinstance(arg["equals-ignore-case"], str):
            raise PatternError(f"{name} takes a string or {{'equals-ignore-case': string}}")
        needle, value = arg["equals-ignore-case"].casefold(), value.casefold()
    elif isinstance(arg, str):
        needle = arg
    else:
        raise PatternError(f"{name} takes a string")
    return value.startswith(needle) if name == "prefix" else value.endswith(needle)


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError("anything-but takes one nested operator")
        ((name, inner),) = arg.items()
        if name not in _STRING_OPS:
            raise PatternError(f"unsupported operator inside anything-but: {name!r}")
        if not isinstance(value, str):
            # A non-string is not excluded by a string operator.
            return True
        inner_values = inner if isinstance(inner, list) and name in ("wildcard", "equals-ignore-case") else [inner]
        return not any(_string_op(name, i, value) for i in inner_values)
    excluded = arg if isinstance(arg, list) else [arg]
    if not excluded or any(isinstance(x, (Mapping, list)) for x in excluded):
        raise PatternError("anything-but takes a value, a list of values, or one nested operator")
    return not any(_json_equal(x, value) for x in excluded)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON scalars by JSON type: bools are not numbers, "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def wildcard_match(pattern: str, value: str) -> bool:
    """EventBridge wildcard matching: `*` any run (possibly empty), `\\*` a literal star,
    `\\\\` a literal backslash. Linear in len(value) per segment (no regex backtracking).
    """
    segments = _wildcard_segments(pattern)
    if len(segments) == 1:
        return value == segments[0]
    first, *middle, last = segments
    if not value.startswith(first):
        return False
    if len(value) < len(first) + len(last) or not value.endswith(last):
        return False
    pos, end = len(first), len(value) - len(last)
    for seg in middle:
        found = value.find(seg, pos, end)
        if found < 0:
            return False
        pos = found + len(seg)
    return True


def _wildcard_segments(pattern: str) -> list[str]:
    """Split a wildcard pattern into literal segments around unescaped stars."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in ("*", "\\"):
                raise PatternError("in a wildcard, a backslash may only escape '*' or '\\'")
            current.append(nxt)
            i += 2
            continue
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                raise PatternError("consecutive wildcard characters are not allowed")
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current))
    return segments


# -- validation -----------------------------------------------------------------------


def validate_pattern(pattern: Any, _path: str = "") -> None:
    """Raise PatternError if `pattern` is not a pattern this module can evaluate."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise PatternError(f"{_path or 'pattern'}: must be a non-empty JSON object")
    for key, sub in pattern.items():
        where = f"{_path}.{key}" if _path else str(key)
        if not isinstance(key, str):
            raise PatternError(f"{where}: field names must be strings")
        if key == "$or" and _is_or(sub):
            for i, alternative in enumerate(sub):
                validate_pattern(alternative, f"{where}[{i}]")
        elif isinstance(sub, Mapping):
            validate_pattern(sub, where)
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"{where}: must not be an empty array")
            for matcher in sub:
                if isinstance(matcher, Mapping):
                    _validate_operator(matcher, where)
                elif isinstance(matcher, list):
                    raise PatternError(f"{where}: nested arrays are not allowed")
        else:
            raise PatternError(f"{where}: must be an array or an object")


def _validate_operator(op: Mapping[str, Any], where: str) -> None:
    # Evaluate the operator once against a probe value: every malformed argument raises.
    probes: Iterable[list[Any]] = (["probe"], [1], [])
    for values in probes:
        try:
            _match_operator(op, values)
        except PatternError as exc:
            raise PatternError(f"{where}: {exc}") from None
