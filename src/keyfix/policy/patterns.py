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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    if not ((wildcards and ("*" in text or "?" in text)) or (variables and "${" in text)):
        return (("lit", text),) if text else ()  # the common case: plain text, one piece
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


# ---- matchers: one callable per wildcard string, built on first use --------------------------
#
# Most policy strings have one of a few shapes: plain text, "*", "prefix*", "*suffix",
# "prefix*suffix", "*infix*". Those are matched with str methods; anything else falls back to
# the regular expression (compiled once, cached). An ARN pattern with all six segments is
# matched segment by segment: a wildcard cannot cross a colon in the first five, so the
# value's first five colons line up with the pattern's (the rule in _regex_source), and each
# segment is a plain glob again.

Matcher = Callable[[str], bool]


def _always(value: str) -> bool:
    return True


def _regex_matcher(pieces: tuple[Piece, ...], arn: bool, ignore_case: bool) -> Matcher:
    fullmatch = _compile(_pattern_source(pieces, arn), ignore_case).fullmatch
    return lambda value: fullmatch(value) is not None


def _glob(pieces: tuple[Piece, ...], ignore_case: bool) -> Matcher:
    """A matcher for `pieces` against a whole string (wildcards may match anything)."""
    shape = "".join("l" if p[0] == "lit" else p[0] for p in pieces)
    lits = [p[1] for p in pieces if p[0] == "lit"]
    if ignore_case:
        if not all(text.isascii() for text in lits):
            return _regex_matcher(pieces, False, True)
        # str.lower() agrees with re.IGNORECASE on ASCII only ("K" is Kelvin under
        # IGNORECASE), so a non-ASCII value goes to the regex.
        lits = [text.lower() for text in lits]
        exact = _glob_shape(shape, lits)
        if exact is None:
            return _regex_matcher(pieces, False, True)
        slow = _regex_matcher(pieces, False, True)
        return lambda value: exact(value.lower()) if value.isascii() else slow(value)
    exact = _glob_shape(shape, lits)
    return exact if exact is not None else _regex_matcher(pieces, False, False)


def _glob_shape(shape: str, lits: list[str]) -> Matcher | None:
    if shape == "":
        return lambda value: value == ""
    if shape == "l":
        text = lits[0]
        return text.__eq__
    if shape == "*":
        return _always
    if shape == "l*":
        prefix = lits[0]
        return lambda value: value.startswith(prefix)
    if shape == "*l":
        suffix = lits[0]
        return lambda value: value.endswith(suffix)
    if shape == "l*l":
        prefix, suffix = lits
        least = len(prefix) + len(suffix)
        return lambda value: len(value) >= least and value.startswith(prefix) and value.endswith(suffix)
    if shape == "*l*":
        infix = lits[0]
        return lambda value: infix in value
    return None


def _split_segments(pieces: tuple[Piece, ...]) -> list[list[Piece]]:
    """The pieces of each of the first five colon-separated segments and of the rest."""
    segments: list[list[Piece]] = [[]]
    for piece in pieces:
        if piece[0] != "lit" or len(segments) == 6:
            segments[-1].append(piece)
            continue
        parts = piece[1].split(":", 6 - len(segments))
        for i, part in enumerate(parts):
            if i:
                segments.append([])
            if part:
                segments[-1].append(("lit", part))
    return segments


@lru_cache(maxsize=16384)
def _matcher(pieces: tuple[Piece, ...], arn: bool, ignore_case: bool) -> Matcher:
    if not (arn and _segment_count(pieces) >= 6):
        return _glob(pieces, ignore_case)
    matchers = [_glob(tuple(segment), ignore_case) for segment in _split_segments(pieces)]
    # Segments that match anything ("*") are skipped; a plain segment is one comparison.
    checks = [(i, m) for i, m in enumerate(matchers) if m is not _always]

    def match(value: str) -> bool:
        parts = value.split(":", 5)
        if len(parts) != 6:
            return False
        for i, m in checks:
            if not m(parts[i]):
                return False
        return True

    return match


@dataclass(frozen=True, slots=True)
class Pattern:
    """One policy string used as a wildcard pattern (Action, Resource, *Like values).

    `arn=True` applies ARN segment rules when the pattern has all six segments;
    a shorter pattern (such as "*") is matched as a whole string. The matcher is built
    on first use: a statement whose action never comes up never compiles its patterns.
    """

    raw: str
    pieces: tuple[Piece, ...]
    ignore_case: bool = False
    arn: bool = False
    has_variables: bool = False
    _match: Matcher | None = field(default=None, compare=False, repr=False)

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
        return _pattern(raw, variables, ignore_case, arn, resource_part_only)

    def matches(self, value: str, context: Context) -> bool:
        match = self._match
        if match is None:
            if self.has_variables:
                resolved = resolve(self.pieces, context)
                if resolved is None:
                    return False
                return _matcher(resolved, self.arn, self.ignore_case)(value)
            match = _matcher(self.pieces, self.arn, self.ignore_case)
            object.__setattr__(self, "_match", match)
        return match(value)


@lru_cache(maxsize=16384)
def _pattern(raw: str, variables: bool, ignore_case: bool, arn: bool, resource_part_only: bool) -> Pattern:
    # Interned: policies repeat the same few strings ("*", "kms:Decrypt", an account's
    # key ARNs), so each is split once and its matcher built once.
    pieces = split_pieces(raw, wildcards=True, variables=variables, resource_part_only=resource_part_only)
    return Pattern(raw, pieces, ignore_case, arn, any(p[0] == "var" for p in pieces))


class PatternSet:
    """Several patterns of one element (an Action or Resource list) OR'ed.

    Without variables the answer depends on the value alone, so it is remembered per value
    (a bounded memo: the values are the few actions and key ARNs of the requests)."""

    __slots__ = ("patterns", "_memo")
    _MEMO_SIZE = 256

    def __init__(self, patterns: tuple[Pattern, ...]) -> None:
        self.patterns = patterns
        self._memo: dict[str, bool] | None = None if any(p.has_variables for p in patterns) else {}

    def matches(self, value: str, context: Context) -> bool:
        memo = self._memo
        if memo is None:
            return any(p.matches(value, context) for p in self.patterns)
        hit = memo.get(value)
        if hit is None:
            hit = any(p.matches(value, context) for p in self.patterns)
            if len(memo) >= self._MEMO_SIZE:
                memo.clear()
            memo[value] = hit
        return hit


def _pattern_source(pieces: tuple[Piece, ...], arn: bool) -> str:
    return _regex_source(pieces, arn_segments=arn and _segment_count(pieces) >= 6)


@dataclass(frozen=True, slots=True)
class Text:
    """One policy string compared literally (StringEquals, Bool, ...), with variables."""

    raw: str
    pieces: tuple[Piece, ...]
    plain: str | None = None  # the text itself when it has no variable

    @classmethod
    def compile(cls, raw: str, *, variables: bool) -> Text:
        pieces = split_pieces(raw, wildcards=False, variables=variables)
        plain = None if any(p[0] == "var" for p in pieces) else literal_text(pieces)
        return cls(raw, pieces, plain)

    @property
    def has_variables(self) -> bool:
        return self.plain is None

    def value(self, context: Context) -> str | None:
        if self.plain is not None:
            return self.plain
        resolved = resolve(self.pieces, context)
        return None if resolved is None else literal_text(resolved)
