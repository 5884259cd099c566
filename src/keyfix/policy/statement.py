"""One policy statement: parsed strictly, matched against a request.

Grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
- Action/NotAction: service prefix and name are case-insensitive, `*`/`?` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
- Resource/NotResource: case-sensitive, wildcards within ARN segments, variables only
  in the resource part, after the fifth colon (reference_policies_elements_resource.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-resourceelement).
- Principal/NotPrincipal: reference_policies_elements_principal.html and
  reference_policies_elements_notprincipal.html.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keyfix.policy.conditions import Condition, parse_condition_block, variable_names
from keyfix.policy.content import content_key
from keyfix.policy.errors import PolicyError
from keyfix.policy.patterns import Context, Pattern, PatternSet, VariableError
from keyfix.policy.principals import (
    ACCOUNT,
    DIRECT,
    FEDERATING_USER,
    ROLE,
    WILDCARD,
    Caller,
    PrincipalEntry,
    parse_entry,
)

_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_EVERYONE = frozenset({WILDCARD})
_STAR_PRINCIPAL = ((PrincipalEntry("*", "any"),), True)


@dataclass(frozen=True, slots=True)
class Statement:
    index: int  # position in the policy's Statement list (0 when it is a single object)
    sid: str | None
    effect: str  # "Allow" | "Deny"
    principals: tuple[PrincipalEntry, ...] | None  # None: no Principal element
    not_principals: tuple[PrincipalEntry, ...] | None
    actions: PatternSet
    not_action: bool
    resources: PatternSet
    not_resource: bool
    conditions: tuple[Condition, ...]
    principal_is_star: bool = False  # Principal: "*" or {"AWS": "*"} only
    resource_variables: tuple[str, ...] = ()  # keys of the variables in Resource/NotResource, as written
    bool_variable: bool = False  # a Bool condition takes a policy variable (a project reading)

    @property
    def has_principal_element(self) -> bool:
        return self.principals is not None or self.not_principals is not None

    def principal_match(self, caller: Caller, has_boundary: bool = False) -> frozenset[str]:
        """How the Principal/NotPrincipal element covers the caller (empty: not at all).

        A statement without either element (identity policies, SCPs) applies to the
        principal it is attached to. NotPrincipal excludes whoever any listed entry
        would cover, the account entry included; the rest are covered as by "*".
        `has_boundary`: a permissions boundary is in force for the caller; then "the
        NotPrincipal element with a Deny effect will always deny any IAM principal that
        has a permissions boundary policy attached, regardless of the values specified in
        the NotPrincipal element"
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html,
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
        """
        if self.principals is not None:
            return frozenset(k for e in self.principals if (k := e.covers(caller)) is not None)
        if self.not_principals is not None:
            if has_boundary and self.effect == "Deny":
                return _EVERYONE
            if any(e.covers(caller) is not None for e in self.not_principals):
                return frozenset()
            return _EVERYONE
        return _EVERYONE

    def names_part_of_session(self, caller: Caller) -> bool:
        """A NotPrincipal Deny that leaves out a session (role session or federated user
        session) by naming some but not all of its ARNs: the account, the role (or the IAM
        user who federated) and the session itself. keyfix reads any one of them as
        excluding the session (principal_match); AWS's page only advises listing the
        account and role ARNs too ("AWS might validate the account first and then the
        user", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html)
        and does not decide the partial case: a project reading (unknowns.py)."""
        if self.not_principals is None or self.effect != "Deny" or caller.kind not in ("session", "federated"):
            return False
        kinds = {k for e in self.not_principals if (k := e.covers(caller)) is not None}
        if not kinds or WILDCARD in kinds:
            return False
        return not ({ACCOUNT, DIRECT} <= kinds and (ROLE in kinds or FEDERATING_USER in kinds))

    def action_matches(self, action: str, context: Context) -> bool:
        return self.actions.matches(action, context) != self.not_action

    def resource_matches(self, resource: str, context: Context) -> bool:
        return self.resources.matches(resource, context) != self.not_resource

    def conditions_hold(self, context: Context) -> bool:
        return all(c.evaluate(context) for c in self.conditions)


def _strings(value: Any, place: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(place, "needs at least one value")
    for item in items:
        if not isinstance(item, str) or not item:
            raise PolicyError(place, f"values must be non-empty strings, not {item!r}")
    return items


def _list_key(value: Any) -> tuple[Any, ...] | None:
    """An Action/Resource value as a key of the validated lists (None: not a string or list)."""
    if type(value) is str:
        return (value,)
    if type(value) is list:
        return tuple(value)
    return None


def _parse_actions(value: Any, place: str) -> PatternSet:
    key = _list_key(value)
    try:
        found = _action_sets.get(key)
    except TypeError:  # an unhashable item: the checks below name it
        found = None
    if found is not None:
        return found  # this very list was checked before
    texts = _strings(value, place)
    for text in texts:
        if text != "*":
            prefix, sep, name = text.partition(":")
            if not sep or not prefix or not name or "*" in prefix or "?" in prefix:
                raise PolicyError(place, f"{text!r} is not an action (want service:Action or *)")
    found = _action_set(tuple(texts))
    _remember(_action_sets, tuple(texts), found)
    return found


def _parse_resources(value: Any, place: str, variables: bool) -> tuple[PatternSet, tuple[str, ...]]:
    """The Resource/NotResource patterns and the keys of the policy variables in them."""
    key = _list_key(value)
    try:
        found = _resource_sets.get((key, variables))
    except TypeError:
        found = None
    if found is not None:
        return found
    texts = _strings(value, place)
    for text in texts:
        if text != "*" and not (text.startswith("arn:") and text.count(":") >= 5):
            raise PolicyError(place, f'{text!r} must be an ARN or "*"')
    try:
        patterns = _resource_set(tuple(texts), variables)
    except VariableError as err:
        raise PolicyError(place, str(err)) from None
    found = (patterns, variable_names(patterns.patterns))
    _remember(_resource_sets, (tuple(texts), variables), found)
    return found


# Action and Resource lists are interned: policies repeat the same few lists, and a shared
# PatternSet remembers its answers per value (patterns.PatternSet).
@lru_cache(maxsize=8192)
def _action_set(texts: tuple[str, ...]) -> PatternSet:
    return PatternSet(tuple(Pattern.compile(text, ignore_case=True) for text in texts))


@lru_cache(maxsize=8192)
def _resource_set(texts: tuple[str, ...], variables: bool) -> PatternSet:
    # Variables before the fifth colon stay literal text (policy-vars-resourceelement).
    return PatternSet(
        tuple(Pattern.compile(text, variables=variables, arn=True, resource_part_only=True) for text in texts)
    )


# Principal elements and Condition blocks are remembered by their content (policy.content_key):
# a corpus of 10,000 policies names about 70 distinct Principal elements and half its
# Condition blocks recur, and parsing them was a third of compiling a new policy. Only
# successful parses are kept (an error names its own place); bounded, emptied when full.
_ELEMENT_CACHE_SIZE = 8192
_principal_cache: dict[bytes, tuple[tuple[PrincipalEntry, ...], bool]] = {}
_condition_cache: dict[tuple[bytes, bool], tuple[tuple[Condition, ...], bool]] = {}  # with bool_variable
# Action and Resource values already checked, by the list itself (the element is a string
# or a list of strings, so the value is its own key).
_action_sets: dict[tuple[str, ...], PatternSet] = {}
_resource_sets: dict[tuple[tuple[str, ...], bool], tuple[PatternSet, tuple[str, ...]]] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _ELEMENT_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _principal_element(value: Any, place: str) -> tuple[tuple[PrincipalEntry, ...], bool]:
    if value == "*":
        return _STAR_PRINCIPAL
    key = content_key(value)
    if key is None:
        return _parse_principal(value, place)
    found = _principal_cache.get(key)
    if found is None:
        found = _parse_principal(value, place)
        _remember(_principal_cache, key, found)
    return found


def _condition_block(value: Any, place: str, variables: bool) -> tuple[tuple[Condition, ...], bool]:
    """The conditions, and whether a Bool condition takes a policy variable (a project reading)."""
    key = content_key(value)
    found = None if key is None else _condition_cache.get((key, variables))
    if found is None:
        conditions = parse_condition_block(value, place, variables)
        found = conditions, any(c.family.kind == "bool" and c.variables for c in conditions)
        if key is not None:
            _remember(_condition_cache, (key, variables), found)
    return found


def clear_element_caches() -> None:
    for cache in (_principal_cache, _condition_cache, _action_sets, _resource_sets):
        cache.clear()


def _parse_principal(value: Any, place: str) -> tuple[tuple[PrincipalEntry, ...], bool]:
    if value == "*":
        return _STAR_PRINCIPAL
    if not isinstance(value, dict) or not value:
        raise PolicyError(place, 'must be "*" or an object such as {"AWS": ...}')
    entries: list[PrincipalEntry] = []
    for ptype, raw in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise PolicyError(f"{place}.{ptype}", f"unknown principal type (one of {', '.join(_PRINCIPAL_TYPES)})")
        for text in _strings(raw, f"{place}.{ptype}"):
            entries.append(parse_entry(ptype, text, f"{place}.{ptype}"))
    star = list(value) == ["AWS"] and all(e.kind == "any" for e in entries)
    return tuple(entries), star


def parse_statement(raw: Any, index: int, place: str, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(place, "a statement must be an object")
    for element in raw:
        if element not in _ELEMENTS:
            raise PolicyError(f"{place}.{element}", "unknown statement element")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{place}.Sid", "Sid must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{place}.Effect", f'Effect must be "Allow" or "Deny", not {effect!r}')

    principals = not_principals = None
    star = False
    if "Principal" in raw and "NotPrincipal" in raw:
        raise PolicyError(place, "a statement cannot have both Principal and NotPrincipal")
    if "Principal" in raw:
        principals, star = _principal_element(raw["Principal"], f"{place}.Principal")
    if "NotPrincipal" in raw:
        not_principals, _ = _principal_element(raw["NotPrincipal"], f"{place}.NotPrincipal")

    action_key = _exactly_one(raw, "Action", "NotAction", place)
    resource_key = _exactly_one(raw, "Resource", "NotResource", place)
    conditions: tuple[Condition, ...] = ()
    bool_variable = False
    if "Condition" in raw:
        conditions, bool_variable = _condition_block(raw["Condition"], f"{place}.Condition", variables)
    resources, resource_variables = _parse_resources(raw[resource_key], f"{place}.{resource_key}", variables)
    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        principals=principals,
        not_principals=not_principals,
        actions=_parse_actions(raw[action_key], f"{place}.{action_key}"),
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=resource_key == "NotResource",
        conditions=conditions,
        principal_is_star=star,
        resource_variables=resource_variables,
        bool_variable=bool_variable,
    )


def _exactly_one(raw: dict[str, Any], first: str, second: str, place: str) -> str:
    if first in raw and second in raw:
        raise PolicyError(place, f"a statement cannot have both {first} and {second}")
    if first not in raw and second not in raw:
        raise PolicyError(place, f"a statement needs {first} or {second}")
    return first if first in raw else second
