"""A parser model without pydantic, for the one trigger whose cold start must stay cheap.

The EC2 state-change rule fires for every stop and termination in the account, and most of
those are ordinary (keyfix.irrelevant, issue #14 P1b). Importing pydantic and Powertools'
parser models costs about 55 ms of CPU on a cold start: a fifth of that first invocation's
budget. So that trigger's model (keyfix.events.ec2) is declared with the small field types
below, which validate as the pydantic models of the other triggers do, with the same
tolerance (extra fields ignored; a field given by its alias or, failing that, by its name,
as `populate_by_name=True`) and the same error locations and wording, so `keyfix.events`
reports a malformed event in one voice. tests/unit/events/test_plain_model.py checks that,
over generated events, against the pydantic model it replaces.

Only what that model needs is here: strings (with length bounds), one-value literals,
optional strings, lists of strings and nested objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


class Invalid(ValueError):
    """The input does not fit the model; `errors()` in pydantic's shape (loc, msg)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self._errors = errors

    def errors(self, **_ignored: Any) -> list[dict[str, Any]]:
        return list(self._errors)


@dataclass(frozen=True)
class Str:
    min_length: int = 0
    max_length: int | None = None

    def check(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "Input should be a valid string"
        if len(value) < self.min_length:
            unit = "character" if self.min_length == 1 else "characters"
            return f"String should have at least {self.min_length} {unit}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"String should have at most {self.max_length} characters"
        return None


@dataclass(frozen=True)
class Const:
    value: str

    def check(self, value: Any) -> str | None:
        return None if isinstance(value, str) and value == self.value else f"Input should be {self.value!r}"


@dataclass(frozen=True)
class OptionalStr:
    def check(self, value: Any) -> str | None:
        return None if value is None or isinstance(value, str) else "Input should be a valid string"


@dataclass(frozen=True)
class StrList:
    pass


@dataclass(frozen=True)
class Field:
    name: str
    kind: Any  # Str | Const | OptionalStr | StrList | Model
    alias: str | None = None
    default: Any = _MISSING  # _MISSING: required


@dataclass(frozen=True)
class Model:
    """An object's fields, in the order errors are reported. `validate` returns a dict by name."""

    title: str
    fields: tuple[Field, ...]

    def validate(self, raw: Any) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        values = _value(self, raw, (), errors)
        if errors:
            raise Invalid(errors)
        return values

    def _validate(self, raw: Mapping[str, Any], loc: tuple, errors: list[dict[str, Any]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field in self.fields:
            key = field.alias if field.alias is not None and field.alias in raw else field.name
            if key not in raw:
                if field.default is _MISSING:
                    errors.append({"loc": (*loc, field.alias or field.name), "msg": "Field required"})
                else:
                    values[field.name] = field.default() if callable(field.default) else field.default
                continue
            values[field.name] = _value(field.kind, raw[key], (*loc, key), errors)
        return values


def _value(kind: Any, value: Any, loc: tuple, errors: list[dict[str, Any]]) -> Any:
    if isinstance(kind, Model):
        if not isinstance(value, Mapping):
            errors.append({"loc": loc, "msg": f"Input should be a valid dictionary or instance of {kind.title}"})
            return None
        return kind._validate(value, loc, errors)
    if isinstance(kind, StrList):
        if not isinstance(value, list):
            errors.append({"loc": loc, "msg": "Input should be a valid list"})
            return None
        for i, item in enumerate(value):
            if not isinstance(item, str):
                errors.append({"loc": (*loc, i), "msg": "Input should be a valid string"})
        return list(value)
    problem = kind.check(value)
    if problem is not None:
        errors.append({"loc": loc, "msg": problem})
    return value
