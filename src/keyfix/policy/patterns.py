"""Wildcard patterns and policy variables, compiled once.

A policy string is split into pieces: literal text, `*` / `?` wildcards, and
`${key}` / `${key, 'default'}` variables. Strings without variables are compiled to a
regex at parse time; strings with variables are resolved against the request
context and compiled through a cache, so thousands of evaluations stay cheap.

- Wildcards: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards
- Variables, `${*}` `${?}` `${$}`, defaults:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
  (only in policies with "Version": "2012-10-17"; elsewhere `${...}` is literal text).
- In the Resource element a variable works "only in the resource portion of the ARN",
  after the fifth colon; "you can't use a variable to replace parts of the ARN before
  the fifth colon, such as the service or account"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-resourceelement).
  There `${...}` stays literal text, so `arn:aws:kms:*:${aws:PrincipalAccount}:key/*`
  matches no key (as in AWS). ARN condition values have no such limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

# Pieces: ("lit", text) | ("var", lower-cased key, default or None) | ("*",) | ("?",)
Piece = tuple[str, ...]
Context = Mapping[str, tuple[str, ...]]

_SPECIAL = {"*": "*", "?": "?", "$": "$"}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")


class VariableError(ValueError):
    """A `${...}` that is not a valid policy variable."""


def split_pieces(
    text: str, wildcards: bool, variables: bool, resource_part_only: bool = False
) -> tuple[Piece, ...]:
    """`resource_part_only`: variables before the fifth colon of the ARN are literal text
    (the Resource element, see the module docstring); colons inside a `${...}` do not count."""
    pieces: list[Piece] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            pieces.append(("lit", "".join(literal)))
            literal.clear()

    i = 0
    colons = 0
    while i < len(text):
        ch = text[i]
        if variables and text.startswith("${", i):
            m = _VARIABLE.match(text, i)
            if m is None:
                raise VariableError(f"unterminated policy variable in {text!r}")
            body = m.group(1)
            if body in _SPECIAL:
                literal.append(_SPECIAL[body])  # a literal *, ? or $, never a wildcard
            elif resource_part_only and colons < 5:
                literal.append(m.group(0))  # before the fifth colon: text, not a variable
            else:
                flush()
                pieces.append(_variable_piece(body))
            i = m.end()
            continue
        colons += ch == ":"
        if wildcards and ch in "*?":
            flush()
            pieces.append((ch,))
        else:
            literal.append(ch)
        i += 1
    flush()
    return tuple(pieces)


def _variable_piece(body: str) -> Piece:
    m = _DEFAULT.match(body)
    if m:
        key, default = m.group(1), m.group(2)
    else:
        key, default = body.strip(), None
    if ":" not in key or not key.split(":", 1)[0] or not key.split(":", 1)[1]:
        raise VariableError(f"${{{body}}} is not a policy variable (want ${{service:key}})")
    # Condition key names are case-insensitive.
    return ("var", key.lower(), default) if default is not None else ("var", key.lower())


def resolve(pieces: tuple[Piece, ...], context: Context) -> tuple[Piece, ...] | None:
    """Replace variables with their (single) context value; None if one has no value.

    A multivalued key cannot be a variable, and a missing key without a default makes
    the string match nothing (reference_policies_variables.html#policy-vars-no-value).
    """
    out: list[Piece] = []
    for piece in pieces:
        if piece[0] != "var":
            out.append(piece)
            continue
        values = context.get(piece[1])
        if values is not None and len(values) == 1:
            out.append(("lit", values[0]))
        elif len(piece) == 3:
            out.append(("lit", piece[2]))
        else:
            return None
    return tuple(out)


def literal_text(pieces: tuple[Piece, ...]) -> str:
    """The text of resolved pieces, wildcards read literally (for *Equals operators)."""
    return "".join(p[1] if p[0] == "lit" else p[0] for p in pieces)


def _regex_source(pieces: tuple[Piece, ...], arn_segments: bool) -> str:
    # In ARN matching a wildcard stays inside one of the first five colon-separated
    # segments; after the fifth colon (the resource part) it may span anything.
    out: list[str] = []
    colons = 0
    for piece in pieces:
        kind = piece[0]
        if kind == "lit":
            out.append(re.escape(piece[1]))
            colons += piece[1].count(":")
        else:
            bounded = arn_segments and colons < 5
            if kind == "*":
                out.append("[^:]*" if bounded else ".*")
            else:
                out.append("[^:]" if bounded else ".")
    return "".join(out)


@lru_cache(maxsize=16384)
def _compile(source: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _segment_count(pieces: tuple[Piece, ...]) -> int:
    return 1 + sum(p[1].count(":") for p in pieces if p[0] == "lit")


@dataclass(frozen=True, slots=True)
class Pattern:
    """One policy string used as a wildcard pattern (Action, Resource, *Like values).

    `arn=True` applies ARN segment rules when the pattern has all six segments;
    a shorter pattern (such as "*") is matched as a whole string.
    """

    raw: str
    pieces: tuple[Piece, ...]
    ignore_case: bool = False
    arn: bool = False
    regex: re.Pattern[str] | None = None  # precompiled when there are no variables

    @classmethod
    def compile(
        cls,
        raw: str,
        *,
        variables: bool = False,
        ignore_case: bool = False,
        arn: bool = False,
        resource_part_only: bool = False,
    ) -> Pattern:
        pieces = split_pieces(raw, wildcards=True, variables=variables, resource_part_only=resource_part_only)
        regex = None
        if not any(p[0] == "var" for p in pieces):
            regex = _compile(_pattern_source(pieces, arn), ignore_case)
        return cls(raw, pieces, ignore_case, arn, regex)

    @property
    def has_variables(self) -> bool:
        return self.regex is None

    def matches(self, value: str, context: Context) -> bool:
        regex = self.regex
        if regex is None:
            resolved = resolve(self.pieces, context)
            if resolved is None:
                return False
            regex = _compile(_pattern_source(resolved, self.arn), self.ignore_case)
        return regex.fullmatch(value) is not None


class PatternSet:
    """Several patterns of one element (an Action or Resource list) OR'ed.

    When none has a variable they are joined into one regex, so matching a statement
    is one regex call however long its lists are."""

    __slots__ = ("patterns", "_joined")

    def __init__(self, patterns: tuple[Pattern, ...]) -> None:
        self.patterns = patterns
        self._joined: re.Pattern[str] | None = None
        if patterns and all(p.regex is not None for p in patterns):
            flags = {p.ignore_case for p in patterns}
            if len(flags) == 1:
                source = "|".join(f"(?:{p.regex.pattern})" for p in patterns if p.regex is not None)
                self._joined = _compile(source, flags.pop())

    def matches(self, value: str, context: Context) -> bool:
        if self._joined is not None:
            return self._joined.fullmatch(value) is not None
        return any(p.matches(value, context) for p in self.patterns)


def _pattern_source(pieces: tuple[Piece, ...], arn: bool) -> str:
    return _regex_source(pieces, arn_segments=arn and _segment_count(pieces) >= 6)


@dataclass(frozen=True, slots=True)
class Text:
    """One policy string compared literally (StringEquals, Bool, ...), with variables."""

    raw: str
    pieces: tuple[Piece, ...]

    @classmethod
    def compile(cls, raw: str, *, variables: bool) -> Text:
        return cls(raw, split_pieces(raw, wildcards=False, variables=variables))

    def value(self, context: Context) -> str | None:
        resolved = resolve(self.pieces, context)
        return None if resolved is None else literal_text(resolved)
