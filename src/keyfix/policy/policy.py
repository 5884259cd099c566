"""A policy document: Version, Id, Statement (object or list), parsed strictly.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
Policy variables are only read in "Version": "2012-10-17" policies; in older or
unversioned ones `${...}` is literal text
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from keyfix.policy.content import content_key
from keyfix.policy.decision import DecisiveRef
from keyfix.policy.errors import PolicyError
from keyfix.policy.statement import Statement, parse_statement

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_CACHE_SIZE = 16384
_cache: OrderedDict[bytes, Policy] = OrderedDict()  # by the document's content (content.content_key)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str  # how decisions refer to it: "resource_policy", "identity_policies[0]", ...
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    statement_is_list: bool = True
    # Built on use, shared by the copies of one parsed document under other names:
    # the statements whose Action/NotAction covers an action, and the kinds checked.
    _by_action: dict[str, tuple[Statement, ...]] = field(default_factory=dict, compare=False, repr=False)
    _kinds_ok: set[str] = field(default_factory=set, compare=False, repr=False)
    _named: dict[str, Policy] = field(default_factory=dict, compare=False, repr=False)
    # This name's DecisiveRef per statement index (a ref names the policy: not shared).
    _refs: dict[int, DecisiveRef] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, doc: dict[str, Any] | str, name: str) -> Policy:
        """Validate and compile a policy; raise PolicyError naming the place.

        Parsed policies are cached by their content (LRU, _CACHE_SIZE documents), so the
        same document met again (thousands of simulations, or under another name) is
        validated and compiled once.
        """
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError as err:
                raise PolicyError(name, f"not valid JSON: {err}") from None
        if not isinstance(doc, dict):
            raise PolicyError(name, "a policy must be a JSON object")
        key = content_key(doc)
        if key is None:
            return cls._parse(doc, name)  # not plain JSON data: parsed every time, the parser says where
        base = _cache.get(key)
        if base is None:
            base = cls._parse(doc, name)  # a failed parse is not cached: its error names this place
            _cache[key] = base
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        return base.named(name)

    def named(self, name: str) -> Policy:
        """This policy under another name (how decisions refer to it); the statements, the
        action index and the checks are shared."""
        if name == self.name:
            return self
        copy = self._named.get(name)
        if copy is None:
            copy = replace(self, name=name, _refs={})
            object.__setattr__(copy, "_by_action", self._by_action)
            object.__setattr__(copy, "_kinds_ok", self._kinds_ok)
            object.__setattr__(copy, "_named", self._named)
            self._named[name] = copy
        return copy

    def ref(self, statement: Statement) -> DecisiveRef:
        """How a decision refers to one of this policy's statements, built once."""
        found = self._refs.get(statement.index)
        if found is None:
            found = self._refs[statement.index] = DecisiveRef(self.name, statement.sid, statement.index)
        return found

    def statements_for(self, action: str) -> tuple[Statement, ...]:
        """The statements whose Action (or NotAction) covers `action`, in order. Actions take
        no policy variables, so this depends on the action alone: indexed per action."""
        found = self._by_action.get(action)
        if found is None:
            found = tuple(s for s in self.statements if s.action_matches(action, _NO_CONTEXT))
            self._by_action[action] = found
        return found

    @classmethod
    def _parse(cls, doc: dict[str, Any], name: str) -> Policy:
        for element in doc:
            if element not in _TOP_LEVEL:
                raise PolicyError(f"{name}.{element}", "unknown policy element (Version, Id, Statement)")
        version = doc.get("Version")
        if version is not None and version not in VERSIONS:
            raise PolicyError(f"{name}.Version", f"Version must be one of {', '.join(VERSIONS)}, not {version!r}")
        policy_id = doc.get("Id")
        if policy_id is not None and not isinstance(policy_id, str):
            raise PolicyError(f"{name}.Id", "Id must be a string")
        if "Statement" not in doc:
            raise PolicyError(name, "a policy needs a Statement element")
        raw = doc["Statement"]
        variables = version == "2012-10-17"
        if isinstance(raw, dict):
            single = (parse_statement(raw, 0, f"{name}.Statement", variables),)
            return cls(name, version, policy_id, single, statement_is_list=False)
        if not isinstance(raw, list):
            raise PolicyError(f"{name}.Statement", "Statement must be an object or a list of objects")
        statements = tuple(parse_statement(item, i, f"{name}.Statement[{i}]", variables) for i, item in enumerate(raw))
        return cls(name, version, policy_id, statements)

    def place(self, statement: Statement) -> str:
        return f"{self.name}.Statement[{statement.index}]" if self.statement_is_list else f"{self.name}.Statement"

    def check_kind(self, kind: str) -> None:
        if kind in self._kinds_ok:
            return  # checked before (the statements are immutable)
        self._check_kind(kind)
        self._kinds_ok.add(kind)

    def _check_kind(self, kind: str) -> None:
        """Enforce what each policy type may say about principals.

        - Key policies name their principals: every statement has Principal or
          NotPrincipal (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
        - Identity policies, boundaries, session policies and SCPs cannot
          (reference_policies_elements_principal.html; SCP syntax:
          https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_syntax.html).
        - RCPs take only Principal "*"
          (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_syntax.html).
        """
        for statement in self.statements:
            place = self.place(statement)
            if kind == "resource":
                if not statement.has_principal_element:
                    raise PolicyError(place, "a key policy statement needs Principal or NotPrincipal")
            elif kind == "rcp":
                if statement.not_principals is not None:
                    raise PolicyError(f"{place}.NotPrincipal", "RCPs do not support NotPrincipal")
                if statement.principals is None or not statement.principal_is_star:
                    raise PolicyError(f"{place}.Principal", 'an RCP statement takes Principal "*"')
            elif statement.has_principal_element:
                element = "Principal" if statement.principals is not None else "NotPrincipal"
                raise PolicyError(f"{place}.{element}", f"a {kind} policy cannot name a principal")


_NO_CONTEXT: dict[str, tuple[str, ...]] = {}  # actions take no policy variables




def stale_principals(policy: Policy) -> list[str]:
    """Unique ids (AIDA.../AROA...) a policy names instead of an ARN.

    AWS shows these when the user or role was deleted (and perhaps re-created): the
    statement no longer applies to anyone, which the diagnosis reports as
    "stale-principal" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles).
    """
    found: list[str] = []
    for statement in policy.statements:
        for entries in (statement.principals, statement.not_principals):
            for entry in entries or ():
                if entry.kind == "unique_id" and entry.raw not in found:
                    found.append(entry.raw)
    return found
