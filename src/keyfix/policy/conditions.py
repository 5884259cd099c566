"""The Condition element: every IAM condition operator, parsed and evaluated.

- Operators, negated operators with a missing key, `...IfExists`, `Null`:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- Several values OR'ed, several keys and operators AND'ed, `ForAnyValue:` /
  `ForAllValues:`: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
- Key names are case-insensitive:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyfix.policy.errors import PolicyError
from keyfix.policy.patterns import Context, Pattern, Text, VariableError
from keyfix.policy.unknowns import READING_BOOL_VARIABLE, Unknowns


@dataclass(frozen=True, slots=True)
class _Family:
    negated: bool
    kind: str  # string | string_ic | like | numeric | date | bool | binary | ip | arn | null
    compare: str = "eq"  # numeric/date: eq | lt | le | gt | ge


_BASE: dict[str, _Family] = {
    "StringEquals": _Family(False, "string"),
    "StringNotEquals": _Family(True, "string"),
    "StringEqualsIgnoreCase": _Family(False, "string_ic"),
    "StringNotEqualsIgnoreCase": _Family(True, "string_ic"),
    "StringLike": _Family(False, "like"),
    "StringNotLike": _Family(True, "like"),
    "Bool": _Family(False, "bool"),
    "BinaryEquals": _Family(False, "binary"),
    "IpAddress": _Family(False, "ip"),
    "NotIpAddress": _Family(True, "ip"),
    "ArnEquals": _Family(False, "arn"),
    "ArnLike": _Family(False, "arn"),
    "ArnNotEquals": _Family(True, "arn"),
    "ArnNotLike": _Family(True, "arn"),
    "Null": _Family(False, "null"),
}
for _kind, _prefix in (("numeric", "Numeric"), ("date", "Date")):
    _BASE[f"{_prefix}Equals"] = _Family(False, _kind, "eq")
    _BASE[f"{_prefix}NotEquals"] = _Family(True, _kind, "eq")
    _BASE[f"{_prefix}LessThan"] = _Family(False, _kind, "lt")
    _BASE[f"{_prefix}LessThanEquals"] = _Family(False, _kind, "le")
    _BASE[f"{_prefix}GreaterThan"] = _Family(False, _kind, "gt")
    _BASE[f"{_prefix}GreaterThanEquals"] = _Family(False, _kind, "ge")

_BY_LOWER = {name.lower(): name for name in _BASE}
_QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}
# Policy variables work in string, ARN and Bool comparisons only.
_VARIABLE_KINDS = frozenset({"string", "string_ic", "like", "arn", "bool"})
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def parse_operator(name: str, place: str) -> tuple[str, str | None, bool]:
    """ "ForAnyValue:StringLikeIfExists" -> ("StringLike", "ForAnyValue", True)."""
    qualifier = None
    rest = name
    if ":" in name:
        prefix, rest = name.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise PolicyError(place, f"unknown set operator {prefix!r} (ForAnyValue or ForAllValues)")
    base = _BY_LOWER.get(rest.lower())
    if_exists = False
    if base is None and rest.lower().endswith("ifexists"):
        base = _BY_LOWER.get(rest[: -len("IfExists")].lower())
        if_exists = True
    if base is None:
        raise PolicyError(place, f"unknown condition operator {name!r}")
    if base == "Null" and (if_exists or qualifier):
        raise PolicyError(place, "Null takes neither IfExists nor a set operator")
    return base, qualifier, if_exists


def _scalar(value: Any, place: str) -> str:
    # JSON booleans and numbers are accepted and read as their text, as AWS does
    # (the seeds write `"kms:GrantIsForAWSResource": true`).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise PolicyError(place, f"condition values must be strings, numbers or booleans, not {type(value).__name__}")


_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def parse_number(text: str) -> float | None:
    # Plain decimal notation only: float() would also take "nan", "inf" and "1_000".
    return float(text) if _NUMBER.match(text) else None


def parse_date(text: str) -> float | None:
    """ISO 8601 (date, date-time, with or without zone; UTC assumed) or epoch seconds."""
    number = parse_number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One (operator, key) pair of a Condition block with its values."""

    operator: str  # as written
    base: str
    qualifier: str | None
    if_exists: bool
    key: str  # lower-cased
    values: tuple[Any, ...]  # compiled per family
    family: _Family
    key_raw: str = ""  # as written, for explanations
    variables: tuple[str, ...] = ()  # the keys of the policy variables in the values, as written

    def unknown_atoms(self, unknowns: Unknowns) -> tuple[str, ...]:
        """What makes this condition unknown: the unknown keys it reads (its own key or
        a variable in its values) and, when the readings are open, a policy variable in a
        Bool condition (a project reading: AWS's pages list Bool among the operators that
        take variables only in passing, unknowns.py). Empty: the condition is decided."""
        atoms: list[str] = []
        if unknowns.any_keys:
            if unknowns.key_unknown(self.key):
                atoms.append(self.key_raw or self.key)
            atoms += [v for v in self.variables if unknowns.key_unknown(v.lower())]
        if unknowns.readings and self.variables and self.family.kind == "bool":
            atoms.append(READING_BOOL_VARIABLE)
        return tuple(atoms)

    def evaluate(self, context: Context) -> bool:
        present = context.get(self.key)
        if self.family.kind == "null":
            # "true": the key must be absent; "false": it must be present.
            return any(wanted == (not present) for wanted in self.values)
        if not present:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.family.negated
        negated = self.family.negated
        if self.qualifier == "ForAllValues":
            return all(self._matches_any(v, context) != negated for v in present)
        if self.qualifier == "ForAnyValue":
            return any(self._matches_any(v, context) != negated for v in present)
        # No set operator: a positive operator needs one value to match; a negated one
        # needs none to match (the negation of the positive operator).
        hit = any(self._matches_any(v, context) for v in present)
        return hit != negated

    def _matches_any(self, actual: str, context: Context) -> bool:
        kind = self.family.kind
        if kind in ("like", "arn"):
            return any(p.matches(actual, context) for p in self.values)
        if kind in ("string", "string_ic", "bool"):
            if kind != "string":
                actual = actual.lower()
            for text in self.values:
                wanted = text.value(context)
                if wanted is not None and (wanted if kind == "string" else wanted.lower()) == actual:
                    return True
            return False
        if kind in ("numeric", "date"):
            number = parse_number(actual) if kind == "numeric" else parse_date(actual)
            compare = _COMPARE[self.family.compare]
            return number is not None and any(compare(number, v) for v in self.values)
        if kind == "ip":
            try:
                address = ipaddress.ip_address(actual.strip())
            except ValueError:
                return False
            return any(address.version == net.version and address in net for net in self.values)
        if kind == "binary":
            data = _binary(actual)
            data = actual.encode() if data is None else data
            return data in self.values
        raise AssertionError(kind)


_VARIABLE_NAME = re.compile(r"\$\{\s*([^},\s]+)")


def variable_names(values: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys policy variables name in compiled values (Text/Pattern), as written."""
    if not any(getattr(value, "has_variables", False) for value in values):
        return ()  # the common case: no variable anywhere
    names: dict[str, None] = {}
    for value in values:
        keys = {p[1] for p in getattr(value, "pieces", ()) if p[0] == "var"}
        if keys:
            # The raw text gives the spelling; only the ones parsed as variables count (not
            # ${*}, nor text before an ARN's fifth colon).
            for name in _VARIABLE_NAME.findall(value.raw):
                if name.lower() in keys:
                    names[name] = None
    return tuple(names)


def parse_condition_block(block: Any, place: str, variables: bool) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError(place, "Condition must be an object of operators")
    conditions: list[Condition] = []
    for operator, keys in block.items():
        op_place = f"{place}.{operator}"
        base, qualifier, if_exists = parse_operator(operator, op_place)
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(op_place, "an operator takes an object of condition keys and values")
        for key, raw in keys.items():
            key_place = f"{op_place}.{key}"
            if not isinstance(key, str) or ":" not in key or key.startswith(":") or key.endswith(":"):
                raise PolicyError(key_place, f"{key!r} is not a condition key (want service:key)")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise PolicyError(key_place, "a condition key needs at least one value")
            texts = [_scalar(v, key_place) for v in items]
            family = _BASE[base]
            values = tuple(_compile_value(family, t, key_place, variables) for t in texts)
            names = variable_names(values)
            conditions.append(
                Condition(operator, base, qualifier, if_exists, key.lower(), values, family, key, names)
            )
    return tuple(conditions)


def _compile_value(family: _Family, text: str, place: str, variables: bool) -> Any:
    kind = family.kind
    use_vars = variables and kind in _VARIABLE_KINDS
    try:
        if kind == "like":
            return Pattern.compile(text, variables=use_vars)
        if kind == "arn":
            return Pattern.compile(text, variables=use_vars, arn=True)
        if kind in ("string", "string_ic"):
            return Text.compile(text, variables=use_vars)
        if kind == "bool":
            value = Text.compile(text, variables=use_vars)
            literal = all(p[0] == "lit" for p in value.pieces)
            if literal and text.lower() not in ("true", "false"):
                raise PolicyError(place, f"Bool takes true or false, not {text!r}")
            return value
    except VariableError as err:
        raise PolicyError(place, str(err)) from None
    if kind == "null":
        if text.lower() not in ("true", "false"):
            raise PolicyError(place, f"Null takes true or false, not {text!r}")
        return text.lower() == "true"
    if kind in ("numeric", "date"):
        number = parse_number(text) if kind == "numeric" else parse_date(text)
        if number is None:
            raise PolicyError(place, f"{text!r} is not a valid {'number' if kind == 'numeric' else 'date'}")
        return number
    if kind == "ip":
        network = _ip_network(text)
        if network is None:
            raise PolicyError(place, f"{text!r} is not an IP address or CIDR range")
        return network
    if kind == "binary":
        data = _binary(text)
        if data is None:
            raise PolicyError(place, f"{text!r} is not base64")
        return data
    raise AssertionError(kind)
