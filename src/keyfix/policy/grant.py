"""A KMS grant, read from a ListGrants entry.

- What a grant allows, to whom, and that it cannot deny:
  https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
- Constraints: EncryptionContextEquals (exact pairs), EncryptionContextSubset (the
  pairs must be present); keys compare case-insensitively, values case-sensitively;
  not applied to operations without an encryption context (DescribeKey,
  RetireGrant, ...): https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-constraints
  and https://docs.aws.amazon.com/kms/latest/APIReference/API_GrantConstraints.html
  (SourceArn: as aws:SourceArn, not applied to RetireGrant).
- ListGrants entry fields: https://docs.aws.amazon.com/kms/latest/APIReference/API_GrantListEntry.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyfix.policy.errors import PolicyError
from keyfix.policy.kms_actions import ENCRYPTION_CONTEXT_OPERATIONS, GRANT_OPERATIONS
from keyfix.policy.patterns import Context
from keyfix.policy.unknowns import Unknowns
from keyfix.policy.principals import (
    DIRECT,
    FEDERATING_USER,
    ROLE,
    SERVICE,
    WILDCARD,
    Caller,
    PrincipalEntry,
    parse_entry,
)

_FIELDS = frozenset(
    {
        "GrantId",
        "GranteePrincipal",
        "Operations",
        "Constraints",
        "RetiringPrincipal",
        "Name",
        "KeyId",
        "IssuingAccount",
        "CreationDate",
        "GranteeServicePrincipal",
        "RetiringServicePrincipal",
    }
)
_CONSTRAINTS = frozenset({"EncryptionContextEquals", "EncryptionContextSubset", "SourceArn"})
_EC_PREFIX = "kms:encryptioncontext:"


@dataclass(frozen=True, slots=True)
class Grant:
    grantee: str
    operations: frozenset[str]
    grant_id: str | None = None
    encryption_context_equals: tuple[tuple[str, str], ...] | None = None  # keys lower-cased
    encryption_context_subset: tuple[tuple[str, str], ...] | None = None
    source_arn: str | None = None
    retiring_principal: str | None = None
    key_id: str | None = None
    name: str | None = None  # the grant's own Name
    ref: str = ""  # "grants[0]": how decisions refer to it, set by PolicySet
    _grantee: PrincipalEntry | None = field(default=None, repr=False, compare=False)
    _retiring: PrincipalEntry | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Grants built directly (not from_aws) still get their principals parsed.
        if self._grantee is None:
            object.__setattr__(self, "_grantee", _entry(self.grantee, "grant.GranteePrincipal"))
        if self._retiring is None and self.retiring_principal:
            object.__setattr__(self, "_retiring", _entry(self.retiring_principal, "grant.RetiringPrincipal"))

    @classmethod
    def from_aws(cls, entry: dict[str, Any], place: str = "grant") -> Grant:
        if not isinstance(entry, dict):
            raise PolicyError(place, "a grant must be an object (a ListGrants entry)")
        for name in entry:
            if name not in _FIELDS:
                raise PolicyError(f"{place}.{name}", "unknown ListGrants field")
        grantee = entry.get("GranteePrincipal") or entry.get("GranteeServicePrincipal")
        if not isinstance(grantee, str) or not grantee:
            raise PolicyError(f"{place}.GranteePrincipal", "a grant needs a GranteePrincipal string")
        operations = entry.get("Operations")
        if not isinstance(operations, list) or not operations:
            raise PolicyError(f"{place}.Operations", "a grant needs a non-empty list of operations")
        for i, op in enumerate(operations):
            if op not in GRANT_OPERATIONS:
                raise PolicyError(f"{place}.Operations[{i}]", f"{op!r} is not a grant operation")
        for optional in ("GrantId", "RetiringPrincipal", "Name", "KeyId"):
            if entry.get(optional) is not None and not isinstance(entry[optional], str):
                raise PolicyError(f"{place}.{optional}", f"{optional} must be a string")
        equals, subset, source_arn = _constraints(entry.get("Constraints"), f"{place}.Constraints")
        retiring = entry.get("RetiringPrincipal")
        return cls(
            grantee=grantee,
            operations=frozenset(operations),
            grant_id=entry.get("GrantId"),
            encryption_context_equals=equals,
            encryption_context_subset=subset,
            source_arn=source_arn,
            retiring_principal=retiring,
            key_id=entry.get("KeyId"),
            name=entry.get("Name"),
            _grantee=_entry(grantee, f"{place}.GranteePrincipal"),
            _retiring=_entry(retiring, f"{place}.RetiringPrincipal") if retiring else None,
        )

    def is_for_key(self, resource: str) -> bool:
        """A grant covers exactly one key; KeyId may be the key ARN or its id."""
        return not self.key_id or _key_id(self.key_id) == _key_id(resource)

    def match(self, operation: str, caller: Caller) -> str | None:
        """How this grant lets the caller perform `operation`: DIRECT (the grantee is
        the user, the session, the role of the session or the service), ACCOUNT (the
        grantee is the caller's account), or None.

        The retiring principal may also retire the grant
        (https://docs.aws.amazon.com/kms/latest/developerguide/grant-manage.html#grant-delete).
        """
        kind = None
        if operation in self.operations and self._grantee is not None:
            kind = _grant_kind(self._grantee.covers(caller))
        if kind is None and operation == "RetireGrant" and self._retiring is not None:
            kind = _grant_kind(self._retiring.covers(caller))
        return kind

    def unknown_atoms(self, operation: str, unknowns: Unknowns) -> tuple[str, ...]:
        """The unknown request keys this grant's constraints read (empty: decidable)."""
        atoms: list[str] = []
        if operation in ENCRYPTION_CONTEXT_OPERATIONS:
            for pairs in (self.encryption_context_equals, self.encryption_context_subset):
                for key, _ in pairs or ():
                    if unknowns.key_unknown(_EC_PREFIX + key):
                        atoms.append(f"kms:EncryptionContext:{key}")
        if self.source_arn is not None and operation != "RetireGrant" and unknowns.key_unknown("aws:sourcearn"):
            atoms.append("aws:SourceArn")
        return tuple(dict.fromkeys(atoms))

    def unmet_constraint(self, operation: str, context: Context) -> str | None:
        """Which constraint the request fails, or None if it meets them all."""
        if operation in ENCRYPTION_CONTEXT_OPERATIONS:
            pairs = _request_encryption_context(context)
            if pairs is None:
                if self.encryption_context_equals is not None or self.encryption_context_subset is not None:
                    return "encryption context (a multivalued kms:EncryptionContext key)"
            else:
                if self.encryption_context_equals is not None and dict(self.encryption_context_equals) != pairs:
                    return "EncryptionContextEquals"
                if self.encryption_context_subset is not None and not all(
                    pairs.get(k) == v for k, v in self.encryption_context_subset
                ):
                    return "EncryptionContextSubset"
        if self.source_arn is not None and operation != "RetireGrant":
            if context.get("aws:sourcearn") != (self.source_arn,):
                return "SourceArn"
        return None


def _key_id(key: str) -> str:
    return key.rsplit("key/", 1)[-1] if "key/" in key else key


def _entry(principal: str, place: str) -> PrincipalEntry:
    kind = "Service" if principal.endswith(".amazonaws.com") and not principal.startswith("arn:") else "AWS"
    return parse_entry(kind, principal, place)


def _pairs(value: Any, place: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PolicyError(place, "an encryption context constraint is an object of strings")
    return tuple(sorted((k.lower(), v) for k, v in value.items()))


def _constraints(raw: Any, place: str) -> tuple[Any, Any, str | None]:
    if raw is None:
        return None, None, None
    if not isinstance(raw, dict):
        raise PolicyError(place, "Constraints must be an object or null")
    for name in raw:
        if name not in _CONSTRAINTS:
            raise PolicyError(f"{place}.{name}", "unknown grant constraint")
    equals = (
        _pairs(raw["EncryptionContextEquals"], f"{place}.EncryptionContextEquals")
        if "EncryptionContextEquals" in raw
        else None
    )
    subset = (
        _pairs(raw["EncryptionContextSubset"], f"{place}.EncryptionContextSubset")
        if "EncryptionContextSubset" in raw
        else None
    )
    source = raw.get("SourceArn")
    if source is not None and not isinstance(source, str):
        raise PolicyError(f"{place}.SourceArn", "SourceArn must be a string")
    return equals, subset, source


def _request_encryption_context(context: Context) -> dict[str, str] | None:
    """The request's encryption context from its kms:EncryptionContext:<key> entries."""
    pairs: dict[str, str] = {}
    for key, values in context.items():
        if key.startswith(_EC_PREFIX):
            if len(values) != 1:
                return None
            pairs[key[len(_EC_PREFIX) :]] = values[0]
    return pairs


def _grant_kind(kind: str | None) -> str | None:
    """A grant names its grantee directly; an IAM user grantee is not documented to
    cover the user's federated user sessions, so it does not."""
    if kind == FEDERATING_USER:
        return None
    return DIRECT if kind in (ROLE, SERVICE, WILDCARD) else kind
