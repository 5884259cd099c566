"""A request to authorise, and the request context the conditions read.

Keys the request implies are derived from the principal unless the caller gives
them (given values win):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
(aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:username, aws:userid,
aws:PrincipalIsAWSService, aws:PrincipalServiceName) and
https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
(kms:CallerAccount, only for the actions that have it: not ListKeys, ListAliases,
ListRetirableGrants or GenerateRandom, see kms_actions._NO_CALLER_ACCOUNT;
kms:EncryptionContextKeys = the keys of the request's kms:EncryptionContext:<key> pairs).

`unknown_keys` names the keys whose value keyfix could not read (exact names, or
prefixes ending with "/", such as "aws:PrincipalTag/"): conditions on them are unknown,
not false (unknowns.py). A key cannot be both given and unknown; an unknown key is never
derived.

Alias resources: kms:CreateAlias, kms:DeleteAlias and kms:UpdateAlias on an alias ARN
(arn:aws:kms:R:A:alias/NAME) are authorised by IAM policies alone; permission on the key is
a separate request on the key ARN, which the key policy governs
(https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html). No other action
is authorised on an alias: "When an alias is the value of a resource element, the policy
applies to the alias resource, not to any KMS key that might be associated with it"
(https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html), so a
request for one on an alias ARN is refused as input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from dataclasses import dataclass, field

from keyfix.policy.errors import PolicyError
from keyfix.policy.kms_actions import KMS_ACTIONS, KmsAction
from keyfix.policy.principals import Caller, parse_caller
from keyfix.policy.unknowns import NONE, Unknowns, parse_unknown_keys

_ACCOUNT = re.compile(r"^\d{12}$")
_EC_PREFIX = "kms:encryptioncontext:"
_ALIAS_ACTIONS = frozenset({"CreateAlias", "DeleteAlias", "UpdateAlias"})
_ALIAS_ARN = re.compile(r"^arn:[^:]+:kms:[^:]*:[^:]*:alias/.+$")

# aws:PrincipalType values by caller kind (reference_policies_variables.html#principaltable).
_PRINCIPAL_TYPE = {
    "user": "User",
    "role": "AssumedRole",
    "session": "AssumedRole",
    "federated": "FederatedUser",
    "root": "Account",
}


@dataclass(frozen=True)
class Request:
    principal: str
    action: str
    resource: str
    resource_account: str | None = None
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    unknown_keys: tuple[str, ...] = ()  # keys whose value keyfix could not read


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """A validated request: the parsed caller, the KMS action, the full context."""

    request: Request
    caller: Caller
    action: KmsAction
    action_name: str  # "kms:Decrypt", AWS's spelling
    resource_account: str
    context: dict[str, tuple[str, ...]]  # lower-cased keys
    unknowns: Unknowns = NONE
    key_policy: bool = True  # the key policy governs this request (False: IAM policies alone)

    @property
    def cross_account(self) -> bool:
        return self.caller.account is not None and self.caller.account != self.resource_account


def resolve_request(request: Request) -> ResolvedRequest:
    caller = parse_caller(request.principal)
    if not isinstance(request.action, str):
        raise PolicyError("request.action", "the action must be a string")
    action = KMS_ACTIONS.get(request.action.lower())
    if action is None:
        raise PolicyError("request.action", f"{request.action!r} is not an AWS KMS action (kms:Name)")
    resource = request.resource
    if not isinstance(resource, str) or not (
        resource == "*" or (resource.startswith("arn:") and resource.count(":") >= 5)
    ):
        raise PolicyError("request.resource", f'{resource!r} must be an ARN or "*"')
    account = request.resource_account
    if account is None:
        account = resource.split(":")[4] if resource != "*" else ""
        if not _ACCOUNT.match(account):
            raise PolicyError("request.resource_account", "needed: the resource names no account")
    elif not isinstance(account, str) or not _ACCOUNT.match(account):
        raise PolicyError("request.resource_account", f"{account!r} is not a 12-digit account id")
    is_alias = ":alias/" in resource and _ALIAS_ARN.match(resource) is not None
    if is_alias and action.name not in _ALIAS_ACTIONS:
        raise PolicyError(
            "request.resource",
            f"kms:{action.name} is authorised on a KMS key, not on an alias: give the key ARN "
            "(https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html)",
        )
    unknowns = NONE
    if request.unknown_keys:
        keys, prefixes = parse_unknown_keys(request.unknown_keys)
        unknowns = Unknowns(keys, prefixes)
    context = _context(request.context, caller, action, unknowns)
    key_policy = action.key_policy and not is_alias
    return ResolvedRequest(request, caller, action, f"kms:{action.name}", account, context, unknowns, key_policy)


def _context(
    given: Mapping[str, str | list[str]], caller: Caller, action: KmsAction, unknowns: Unknowns = NONE
) -> dict[str, tuple[str, ...]]:
    if not isinstance(given, Mapping):
        raise PolicyError("request.context", "the context must be an object")
    context: dict[str, tuple[str, ...]] = {}
    # The encryption context keys keep their case: StringEquals on
    # kms:EncryptionContextKeys is case-sensitive (conditions-kms.html).
    ec_found: list[str] = []
    for key, value in given.items():
        if not isinstance(key, str) or ":" not in key:
            raise PolicyError(f"request.context.{key}", "a context key is service:name")
        if isinstance(value, str):
            values: tuple[str, ...] = (value,)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            values = tuple(value)
        else:
            raise PolicyError(f"request.context.{key}", "a context value is a string or a list of strings")
        lower = key.lower()
        if unknowns.any_keys and unknowns.key_unknown(lower):
            raise PolicyError(f"request.context.{key}", "a key cannot be both given and listed in request.unknown_keys")
        context[lower] = values
        if lower.startswith(_EC_PREFIX):
            ec_found.append(key[len(_EC_PREFIX) :])
    ec_keys = tuple(ec_found)
    derived = _derived(caller, ec_keys, action.caller_account)
    if unknowns.any_keys:
        derived = {k: v for k, v in derived.items() if not unknowns.key_unknown(k)}  # declared unknown: not derived
    if not context:
        return dict(derived)
    for derived_key, values in derived.items():
        context.setdefault(derived_key, values)
    return context


@lru_cache(maxsize=4096)
def _derived(caller: Caller, ec_keys: tuple[str, ...], caller_account: bool) -> dict[str, tuple[str, ...]]:
    """The keys the request implies; computed once per caller, shape and encryption context
    keys (the callers' dict is copied or merged, never changed)."""
    derived: dict[str, tuple[str, ...]] = {}
    if caller.is_service:
        derived["aws:principalisawsservice"] = ("true",)
        derived["aws:principalservicename"] = (caller.name,)
    else:
        derived["aws:principalisawsservice"] = ("false",)
        derived["aws:principalarn"] = (caller.principal_arn or caller.arn,)
        derived["aws:principalaccount"] = (caller.account or "",)
        if caller_account:
            # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account
            derived["kms:calleraccount"] = (caller.account or "",)
        derived["aws:principaltype"] = (_PRINCIPAL_TYPE[caller.kind],)
        if caller.kind == "user":
            derived["aws:username"] = (caller.name,)
        elif caller.kind == "root":
            derived["aws:userid"] = (caller.account or "",)
        elif caller.kind == "federated":
            derived["aws:userid"] = (f"{caller.account}:{caller.name}",)
    if ec_keys:
        derived["kms:encryptioncontextkeys"] = ec_keys
    return derived
