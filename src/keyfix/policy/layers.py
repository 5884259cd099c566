"""Which statements of which policies apply to a request, layer by layer.

A statement applies when its principal element (if any) covers the caller, its
Action/NotAction and Resource/NotResource match and every condition holds
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
Which layers apply to which callers:
- SCPs do not affect service-linked roles, and restrict only principals of the
  organisation's accounts, which a service principal is not
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html).
- RCPs restrict every principal calling on a member account's resource, AWS service
  principals included, except service-linked roles; they do not affect
  kms:RetireGrant (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps).
- The management account is not modelled: pass scps=None for its principals and
  rcps=None for its keys.
- Permissions boundaries apply to IAM users and roles (and so to their sessions), not
  to the root user or services (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
  A key-policy Deny with NotPrincipal applies to every caller with a boundary, whatever
  its NotPrincipal names (same page; Statement.principal_match).
- Session policies apply to role and federated-user sessions only.
- Identity policies do not exist for service principals.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfix.policy.decision import DecisiveRef
from keyfix.policy.grant import Grant
from keyfix.policy.policy import Policy
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.request import ResolvedRequest
from keyfix.policy.statement import Statement


@dataclass(frozen=True, slots=True)
class Hit:
    """A statement that applies to the request, and how it names the caller."""

    ref: DecisiveRef
    effect: str
    kinds: frozenset[str]


def statement_hits(policy: Policy, rr: ResolvedRequest, has_boundary: bool = False) -> list[Hit]:
    """`has_boundary`: the caller has a permissions boundary (see Statement.principal_match)."""
    hits = []
    resource = rr.request.resource
    context = rr.context
    for statement in policy.statements:
        if not statement.action_matches(rr.action_name, context):
            continue
        if not statement.resource_matches(resource, context):
            continue
        kinds = statement.principal_match(rr.caller, has_boundary)
        if not kinds:
            continue
        if statement.conditions and not statement.conditions_hold(context):
            continue
        hits.append(Hit(_ref(policy, statement), statement.effect, kinds))
    return hits


def _ref(policy: Policy, statement: Statement) -> DecisiveRef:
    return DecisiveRef(policy.name, statement.sid, statement.index)


@dataclass
class Layers:
    """The applicable policies for one request, with their matching statements."""

    key_policy: list[Hit]
    identity: list[Hit]
    boundaries: list[list[Hit]]  # one list per boundary
    session: list[Hit] | None  # None: no session policy applies
    scps: list[list[Hit]] | None  # one list per level (all its policies), None: not applied
    rcps: list[list[Hit]] | None
    grants: list[tuple[Grant, str]]  # grants allowing the operation, with grantee match kind
    unmet_grants: list[tuple[Grant, str]]  # grants for the caller whose constraint fails
    notes: list[str]

    def denies(self) -> list[DecisiveRef]:
        everything = [self.key_policy, self.identity, *self.boundaries]
        if self.session is not None:
            everything.append(self.session)
        everything += list(self.scps or ()) + list(self.rcps or ())
        return [hit.ref for hits in everything for hit in hits if hit.effect == "Deny"]


def _allows(hits: list[Hit]) -> list[Hit]:
    return [hit for hit in hits if hit.effect == "Allow"]


def collect(rr: ResolvedRequest, policies: PolicySet) -> Layers:
    caller = rr.caller
    notes: list[str] = []

    def hits_of(policy: Policy | None) -> list[Hit]:
        return statement_hits(policy, rr) if policy is not None else []

    boundary_applies = caller.kind in ("user", "role", "session", "federated")
    key_policy: list[Hit] = []
    if rr.action.key_policy:
        if policies.resource_policy is not None:
            # A NotPrincipal Deny applies to every principal with a permissions boundary.
            has_boundary = boundary_applies and bool(policies.permission_boundaries)
            key_policy = statement_hits(policies.resource_policy, rr, has_boundary)
    elif policies.resource_policy is not None:
        notes.append(f"{rr.action_name} is authorised by IAM policies only; the key policy does not apply.")

    identity: list[Hit] = []
    if caller.is_service:
        if policies.identity_policies:
            notes.append("Identity policies were ignored: an AWS service principal has none.")
    else:
        identity = [hit for policy in policies.identity_policies for hit in hits_of(policy)]

    boundaries: list[list[Hit]] = []
    if boundary_applies:
        boundaries = [hits_of(policy) for policy in policies.permission_boundaries]
    elif policies.permission_boundaries:
        notes.append(f"Permissions boundaries were ignored: they do not apply to {caller.arn}.")

    session: list[Hit] | None = None
    if policies.session_policy is not None:
        if caller.is_session:
            session = hits_of(policies.session_policy)
        else:
            notes.append(f"The session policy was ignored: {caller.arn} is not a session.")

    scps = None
    if policies.scps is not None:
        if caller.is_service or caller.is_service_linked_role:
            notes.append(f"SCPs were not applied: they do not restrict {_who(caller.is_service)}.")
        else:
            scps = [[hit for policy in level for hit in hits_of(policy)] for level in policies.scps]
    rcps = None
    if policies.rcps is not None:
        if caller.is_service_linked_role:
            notes.append("RCPs were not applied: they do not restrict service-linked roles.")
        elif rr.action.name == "RetireGrant":
            notes.append("RCPs were not applied: they do not affect kms:RetireGrant.")
        else:
            rcps = [[hit for policy in level for hit in hits_of(policy)] for level in policies.rcps]

    grants, unmet = _grant_hits(rr, policies.grants)
    return Layers(key_policy, identity, boundaries, session, scps, rcps, grants, unmet, notes)


def _who(service: bool) -> str:
    return "AWS service principals" if service else "service-linked roles"


def _grant_hits(
    rr: ResolvedRequest, grants: tuple[Grant, ...]
) -> tuple[list[tuple[Grant, str]], list[tuple[Grant, str]]]:
    operation = rr.action.name
    found: list[tuple[Grant, str]] = []
    unmet: list[tuple[Grant, str]] = []
    for grant in grants:
        kind = grant.match(operation, rr.caller) if grant.is_for_key(rr.request.resource) else None
        if kind is None:
            continue
        failed = grant.unmet_constraint(operation, rr.context)
        if failed is None:
            found.append((grant, kind))
        else:
            unmet.append((grant, failed))
    return found, unmet


def allows(hits: list[Hit]) -> list[DecisiveRef]:
    return [hit.ref for hit in _allows(hits)]


def key_policy_allows(layers: Layers, kinds: frozenset[str] | None) -> list[DecisiveRef]:
    """Key-policy Allow statements naming the caller in one of `kinds` (None: any)."""
    return [hit.ref for hit in _allows(layers.key_policy) if kinds is None or hit.kinds & kinds]


def level_failures(levels: list[list[Hit]] | None) -> list[int]:
    """Indexes of organisation levels with no applicable Allow (each must allow)."""
    return [i for i, hits in enumerate(levels or ()) if not _allows(hits)]
