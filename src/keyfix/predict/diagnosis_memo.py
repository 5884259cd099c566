"""One diagnosis per distinct question in a pass (issue #14, P6).

A scan of 1,000 groups on 200 launch templates and 50 keys asks the model 50 distinct
questions, not 1,000: groups on the same key differ only in their own name and ARN. The
diagnosis (keyfix.diagnose) is a pure function of the Situation, so its findings for one
group are the findings for every group whose Situation is the same apart from the group.

"The same apart from the group" is checked, never assumed:
- the fingerprint covers every field of the Situation, its Incident and its AccessNeeds,
  walked generically (a field added later is covered without a change here); a value
  equal to the subject's name or ARN stands for "this subject";
- KeyFacts and PrincipalFacts count by identity: the gateway memoises them for the pass
  (keyfix.resolve.kms / iam), so the same key is the same object, and facts re-read after
  a throttled read (the sweep clears `gw.memo`) are a new question. The memo lives in
  `gw.memo` too, so it is cleared with them, and it holds the facts it was keyed on, so
  their ids cannot be reused while it lives;
- a diagnosis is reused only when the subject's name appears nowhere in its findings,
  in any form keyfix shows a value in (as written; quoted and cut as keyfix.names.InvalidName
  shows one: a diagnosis that rejects the name holds for that name alone), except as a
  finding's whole `resource` (where keyfix.diagnose puts `need.resource` or the
  incident's group); on reuse that field is the new subject's. Anything else (a group
  name inside a CLI line, a name too short to tell apart from other text) is diagnosed
  afresh.
Findings are mutable (the check, the remedies and the notification change them), so the
memo keeps its own deep copy and hands out fresh copies.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

from keyfix.names import _MAX_SHOWN
from keyfix.report import Finding
from keyfix.resolve.facts import KeyFacts, PrincipalFacts, Situation

MEMO_KEY = ("predict.diagnoses",)
_SUBJECT = "\x00subject"  # stands for the subject's own name or ARN in a fingerprint
# Facts the gateway memoises for the pass: compared by identity.
_BY_IDENTITY = (KeyFacts, PrincipalFacts)


class _Unfrozen(Exception):
    """A value the fingerprint does not know how to compare: never reuse then."""


def diagnose_once(situation: Situation, subject_names: tuple[str, ...], memo: dict[Any, Any],
                  diagnose: Callable[[Situation], list[Finding]]) -> list[Finding]:
    """`diagnose(situation)`, or a copy of the findings of an earlier subject whose situation
    differed only in the subject (`subject_names`: its name and ARN, empty strings ignored)."""
    # An empty name or ARN is no name (None), kept in its place: the findings' resource maps
    # position to position, and only subjects with the same names present share a diagnosis.
    names = tuple(n or None for n in subject_names)
    held: list[Any] = []
    try:
        fingerprint = (tuple(n is None for n in names), _freeze(situation, names, held))
    except _Unfrozen:
        return diagnose(situation)
    entries: dict[Any, _Entry] = memo.setdefault(MEMO_KEY, {})
    entry = entries.get(fingerprint)
    if entry is not None:
        return entry.findings_for(names)
    findings = diagnose(situation)
    if _reusable(findings, names):
        entries[fingerprint] = _Entry(copy.deepcopy(findings), names, held)
    return findings


@dataclasses.dataclass
class _Entry:
    findings: list[Finding]
    names: tuple[str | None, ...]  # the subject they were diagnosed for
    held: list[Any]  # the facts the fingerprint names by id: kept alive with it

    def findings_for(self, names: tuple[str | None, ...]) -> list[Finding]:
        findings = [_copy(f) for f in self.findings]
        for finding in findings:
            if finding.resource in self.names:
                finding.resource = names[self.names.index(finding.resource)]
        return findings


def _copy(value: Any) -> Any:
    """A deep copy of a Finding (and its Fixes) that shares only immutable values: as
    copy.deepcopy, without its bookkeeping for the common fields (strings, lists of strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for name in _field_names(type(value)):
            field = getattr(value, name)
            if field is None or isinstance(field, (str, bool, int, float, Enum)):
                continue  # immutable: shared
            if type(field) is list and all(type(v) is str for v in field):
                changes[name] = list(field)
            elif type(field) is list:
                changes[name] = [_copy(v) for v in field]
            else:
                changes[name] = copy.deepcopy(field)
        try:
            return dataclasses.replace(value, **changes)
        except (TypeError, ValueError):  # a field replace() cannot set: the slow way
            return copy.deepcopy(value)
    return copy.deepcopy(value)


def _freeze(value: Any, names: tuple[str, ...], held: list[Any]) -> Any:
    """A hashable stand-in for `value` that is equal for equal situations (types kept apart:
    True is not 1, a list is not a tuple)."""
    kind = type(value)
    if kind is str:
        return _SUBJECT + str(names.index(value)) if value in names else value
    if value is None:
        return None
    if kind is tuple and all(type(v) is str for v in value) and names_absent(value, names):
        return ("strs", value)  # the common case (operations, unknown keys), without a walk
    if isinstance(value, (bool, int, float, Enum)):
        return (kind.__name__, value)
    if isinstance(value, str):
        return (kind.__name__, _freeze(str(value), names, held))
    if isinstance(value, _BY_IDENTITY):
        held.append(value)
        return (kind.__name__, id(value))
    if isinstance(value, dict):
        return ("dict",) + tuple((_freeze(k, names, held), _freeze(v, names, held)) for k, v in value.items())
    if isinstance(value, (list, tuple, frozenset, set)):
        try:
            items = sorted(value) if isinstance(value, (set, frozenset)) else value
        except TypeError as exc:  # a set of values that do not order
            raise _Unfrozen(kind.__name__) from exc
        return (kind.__name__,) + tuple(_freeze(v, names, held) for v in items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: list[Any] = [kind.__name__]
        for name in _field_names(kind):
            field = getattr(value, name)
            if field is None or (type(field) is str and field not in names):  # most fields: inline, no call
                out.append(field)
            else:
                out.append(_freeze(field, names, held))
        return tuple(out)
    raise _Unfrozen(kind.__name__)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    found = _FIELD_NAMES.get(kind)
    if found is None:
        found = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return found


def names_absent(values: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return not any(name in values for name in names)


def _reusable(findings: list[Finding], names: tuple[str | None, ...]) -> bool:
    names = tuple(n for n in names if n is not None)
    if not names:
        return True
    shown = {form for name in names for form in _shown(name)}
    for finding in findings:
        for place, text in _strings(finding):
            if place == "resource" and text in names:
                continue
            if any(form in text for form in shown):
                return False
    return True


def _shown(name: str) -> set[str]:
    """Every form a finding can show `name` in: as written, and as keyfix.names.InvalidName
    quotes an offending value (repr, cut to _MAX_SHOWN characters; either quote)."""
    cut = name[:_MAX_SHOWN]
    return {cut, repr(cut)[1:-1], repr(name)[1:-1], repr(cut + '"')[1:-2], repr(cut + "'")[1:-2]}


def _strings(value: Any, place: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside `value` (dataclasses, dicts, lists), with the field it sits in
    when that field is a direct field of a Finding."""
    if isinstance(value, str):
        yield place, value
    elif isinstance(value, Finding):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name), f.name)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name), "")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, "")
            yield from _strings(v, "")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v, "")
