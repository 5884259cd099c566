"""Who is asking (the caller) and whom a policy names (principal entries).

- Principal forms: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
  An account ARN and a bare account id both name the account, not only its root user;
  a role ARN covers the role's sessions; a session must be named exactly; no partial
  wildcards; `"*"` and `{"AWS": "*"}` name everyone.
- A user ARN also covers the user's federated user sessions (GetFederationToken):
  "If a resource-based policy grants permission to the ARN of the IAM user who
  federated, then requests made by the federated user during the session are limited by
  an implicit deny in a permission boundary or session policy"; a Deny naming the user
  applies to them too
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).
  The federated user ARN does not carry the IAM user: the session's name is taken as the
  user's name (IAM user names are unique in an account, whatever their path).
- A deleted-and-recreated user or role shows in a policy as its unique id (AIDA.../
  AROA...), which no longer maps to any principal (same page, "IAM role principals").
- Service-linked roles live under the path `aws-service-role/`:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from keyfix.policy.errors import PolicyError
from keyfix.policy.kms_actions import (
    SERVICE_LINKED_ROLE_PATH,
    SERVICE_LINKED_ROLE_PREFIX,
    service_linked_role_path,
)

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_IAM_ARN = re.compile(rf"^arn:({_PARTITION}):iam::(\d{{12}}):(root|user/.+|role/.+)$")
_STS_ARN = re.compile(rf"^arn:({_PARTITION}):sts::(\d{{12}}):(assumed-role/.+|federated-user/.+)$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?$")
# Unique ids of users (AIDA) and roles (AROA); what a policy shows for a deleted entity.
UNIQUE_ID = re.compile(r"^(AIDA|AROA)[A-Z0-9]{12,}$")

# How a statement's principal covers the caller; evaluate.py decides what each needs.
WILDCARD = "wildcard"  # "*": everyone, no identity policy needed in the same account; limited like ROLE for a session
ACCOUNT = "account"  # the caller's account: delegates to the account's IAM policies
ROLE = "role"  # the role of a role session: limited by boundary and session policy
FEDERATING_USER = "federating_user"  # the IAM user of a federated user session: limited like ROLE
DIRECT = "direct"  # the user, session or federated user itself
SERVICE = "service"  # an AWS service principal


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of a request, parsed once."""

    arn: str  # as given
    kind: str  # user | role | session | federated | root | service
    account: str | None  # None for service principals
    name: str  # user name, role name, federated user name, service name, "root"
    session: str | None = None
    path: str = "/"  # user or role path, when known
    partition: str = "aws"

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def is_session(self) -> bool:
        return self.kind in ("session", "role", "federated")

    @property
    def is_service_linked_role(self) -> bool:
        # A session ARN carries no path, so a session is told by the role name.
        if self.kind not in ("role", "session"):
            return False
        return self.path.startswith(SERVICE_LINKED_ROLE_PATH) or self.name.startswith(SERVICE_LINKED_ROLE_PREFIX)

    @property
    def role_arn(self) -> str | None:
        if self.kind not in ("role", "session"):
            return None
        path = self.path
        if self.kind == "session" and path == "/":
            path = "/" + (service_linked_role_path(self.name) or "")
        return f"arn:{self.partition}:iam::{self.account}:role{path}{self.name}"

    @property
    def principal_arn(self) -> str | None:
        """aws:PrincipalArn: a session reports its role's ARN
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn)."""
        if self.kind == "service":
            return None
        if self.kind in ("role", "session"):
            return self.role_arn
        return self.arn


@lru_cache(maxsize=4096)
def parse_caller(principal: str, place: str = "request.principal") -> Caller:
    if not isinstance(principal, str) or not principal:
        raise PolicyError(place, "the principal must be a non-empty string")
    m = _IAM_ARN.match(principal)
    if m:
        partition, account, rest = m.groups()
        if rest == "root":
            return Caller(principal, "root", account, "root", partition=partition)
        kind, _, path_name = rest.partition("/")
        path, name = _split_path(path_name)
        if not name:
            raise PolicyError(place, f"{principal!r} has no {kind} name")
        return Caller(principal, kind, account, name, path=path, partition=partition)
    m = _STS_ARN.match(principal)
    if m:
        partition, account, rest = m.groups()
        if rest.startswith("assumed-role/"):
            parts = rest.split("/")
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise PolicyError(place, f"{principal!r}: want assumed-role/ROLE/SESSION")
            return Caller(principal, "session", account, parts[1], parts[2], partition=partition)
        name = rest.split("/", 1)[1]
        return Caller(principal, "federated", account, name, partition=partition)
    if _SERVICE.match(principal):
        return Caller(principal, "service", None, principal)
    raise PolicyError(
        place,
        f"{principal!r} is not a user, role, assumed-role session, federated user, "
        "account root ARN or AWS service principal",
    )


def _split_path(path_name: str) -> tuple[str, str]:
    path, _, name = path_name.rpartition("/")
    return ("/" + path + "/" if path else "/"), name


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    """One value of a Principal/NotPrincipal element."""

    raw: str
    kind: str  # any | account | user | role | session | federated_user | service | provider | canonical | unique_id
    account: str | None = None
    name: str | None = None
    session: str | None = None

    def covers(self, caller: Caller) -> str | None:
        """How this entry names the caller (WILDCARD, ACCOUNT, ...) or None."""
        kind = self.kind
        if kind == "any":
            return WILDCARD
        if kind == "service":
            return SERVICE if caller.is_service and caller.name == self.name else None
        if kind in ("provider", "canonical"):
            return DIRECT if caller.arn == self.raw else None
        if kind == "unique_id" or caller.is_service or caller.account != self.account:
            return None  # a stale unique id matches nobody
        if kind == "account":
            return ACCOUNT
        if kind == "user":
            if caller.name != self.name:
                return None
            return DIRECT if caller.kind == "user" else FEDERATING_USER if caller.kind == "federated" else None
        if kind == "role":
            return ROLE if caller.kind in ("role", "session") and caller.name == self.name else None
        if kind == "session":
            same = caller.kind == "session" and (caller.name, caller.session) == (self.name, self.session)
            return DIRECT if same else None
        if kind == "federated_user":
            return DIRECT if caller.kind == "federated" and caller.name == self.name else None
        return None


def parse_entry(principal_type: str, value: str, place: str) -> PrincipalEntry:
    if principal_type == "AWS":
        return _parse_aws_entry(value, place)
    if principal_type == "Service":
        if value == "*":
            return PrincipalEntry(value, "any")
        if "*" in value or "?" in value:
            raise PolicyError(place, f"{value!r}: wildcards cannot name part of a principal")
        return PrincipalEntry(value, "service", name=value)
    if principal_type == "Federated":
        return PrincipalEntry(value, "provider")
    return PrincipalEntry(value, "canonical")


def _parse_aws_entry(value: str, place: str) -> PrincipalEntry:
    if value == "*":
        return PrincipalEntry(value, "any")
    if _ACCOUNT_ID.match(value):
        return PrincipalEntry(value, "account", account=value)
    if UNIQUE_ID.match(value):
        return PrincipalEntry(value, "unique_id")
    if "*" in value or "?" in value:
        raise PolicyError(place, f"{value!r}: wildcards cannot name part of a principal")
    try:
        caller = parse_caller(value, place)
    except PolicyError:
        raise PolicyError(place, f"{value!r} is not an account, user, role or session ARN") from None
    if caller.kind == "service":
        raise PolicyError(place, f'{value!r} is a service principal: use {{"Service": ...}}')
    kind = {"root": "account", "federated": "federated_user"}.get(caller.kind, caller.kind)
    return PrincipalEntry(value, kind, caller.account, caller.name, caller.session)
