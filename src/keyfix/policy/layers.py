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

Unknowns (unknowns.py): a statement whose match depends on an unknown key is a
"maybe" hit, carrying the names it depends on (`Hit.atoms`); an unknown policy layer
(`PolicySet.unknown_layers`) is a layer holding one maybe-Allow and one maybe-Deny.
`Layers.world(S)` is the two-valued situation in which the maybe-Allows depending only on
`S` hold and no maybe-Deny does; evaluate.py decides from such worlds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from keyfix.policy.decision import DecisiveRef
from keyfix.policy.grant import Grant
from keyfix.policy.policy import Policy
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.principals import WILDCARD
from keyfix.policy.request import ResolvedRequest
from keyfix.policy.statement import Statement
from keyfix.policy.unknowns import (
    NONE,
    READING_BOOL_VARIABLE,
    READING_GRANT_LIMITS,
    READING_NOTPRINCIPAL_SESSION,
    READING_WILDCARD_BOUNDARY,
    Unknowns,
)

_EVERYONE = frozenset({WILDCARD})


@dataclass(frozen=True, slots=True)
class Hit:
    """A statement that applies to the request, and how it names the caller.

    `atoms`: empty when it certainly applies; otherwise the unknown keys, layers or
    readings whose values decide whether it does."""

    ref: DecisiveRef
    effect: str
    kinds: frozenset[str]
    atoms: tuple[str, ...] = ()


def statement_hits(
    policy: Policy,
    rr: ResolvedRequest,
    has_boundary: bool = False,
    unknowns: Unknowns = NONE,
    shapes: set[str] | None = None,
    boundary_unknown: bool = False,
) -> list[Hit]:
    """`has_boundary`: the caller has a permissions boundary (see Statement.principal_match);
    `boundary_unknown`: whether it has one is unknown. `shapes` collects the project
    readings met (unknowns.py), so that evaluate.py reruns with them open."""
    statements = policy.statements_for(rr.action_name)  # Action/NotAction, indexed
    if not statements:
        return []  # most policies say nothing about a given action
    hits = []
    resource = rr.request.resource
    context = rr.context
    caller = rr.caller
    slow = unknowns.any_keys or unknowns.readings or boundary_unknown
    for statement in statements:
        if not slow:
            # The hot path: nothing unknown, two-valued as AWS evaluates.
            if not statement.resource_matches(resource, context):
                continue
            kinds = statement.principal_match(caller, has_boundary)
            if not kinds:
                if shapes is not None and statement.not_principals is not None and statement.names_part_of_session(caller):
                    shapes.add(READING_NOTPRINCIPAL_SESSION)
                continue
            if statement.bool_variable and shapes is not None:
                shapes.add(READING_BOOL_VARIABLE)
            if statement.conditions and not statement.conditions_hold(context):
                continue
            hits.append(Hit(_ref(policy, statement), statement.effect, kinds))
            continue
        atoms: list[str] = []
        if statement.resource_variables and unknowns.any_keys:
            atoms += [v for v in statement.resource_variables if unknowns.key_unknown(v.lower())]
        if not atoms and not statement.resource_matches(resource, context):
            continue
        kinds = statement.principal_match(caller, has_boundary)
        if not kinds:
            if statement.names_part_of_session(caller):
                if unknowns.readings:
                    kinds, atoms = _EVERYONE, [*atoms, READING_NOTPRINCIPAL_SESSION]
                elif shapes is not None:
                    shapes.add(READING_NOTPRINCIPAL_SESSION)
            if not kinds and boundary_unknown and statement.principal_match(caller, True):
                kinds, atoms = _EVERYONE, [*atoms, "permission_boundaries"]
            if not kinds:
                continue
        if statement.bool_variable and shapes is not None and not unknowns.readings:
            shapes.add(READING_BOOL_VARIABLE)
        if statement.conditions:
            unknown = _condition_atoms(statement, context, unknowns)
            if unknown is None:
                continue
            atoms += unknown
        hits.append(Hit(_ref(policy, statement), statement.effect, kinds, tuple(dict.fromkeys(atoms))))
    return hits


def _condition_atoms(statement: Statement, context, unknowns: Unknowns) -> list[str] | None:
    """Kleene AND of the conditions: None if one is certainly false, else the atoms of the
    unknown ones (empty: all hold)."""
    atoms: list[str] = []
    for condition in statement.conditions:
        unknown = condition.unknown_atoms(unknowns)
        if unknown:
            atoms += unknown
        elif not condition.evaluate(context):
            return None
    return atoms


def _ref(policy: Policy, statement: Statement) -> DecisiveRef:
    return policy.ref(statement)


def _unknown_layer(name: str) -> list[Hit]:
    """A layer keyfix could not read: it may allow, and it may deny."""
    ref = DecisiveRef(name, "unknown")
    return [Hit(ref, "Allow", _EVERYONE, (name,)), Hit(ref, "Deny", _EVERYONE, (name,))]


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
    maybe_grants: list[tuple[Grant, str, tuple[str, ...]]] = field(default_factory=list)
    shapes: set[str] = field(default_factory=set)  # project readings met (first pass)
    readings_open: bool = False  # the second pass: readings are unknowns
    assumed: frozenset[str] = frozenset()  # in a world: the atoms assumed to allow
    uncertain: bool = False  # something unknown was in play when collecting (else: no maybe anywhere)

    def _all(self) -> list[list[Hit]]:
        everything = [self.key_policy, self.identity, *self.boundaries]
        if self.session is not None:
            everything.append(self.session)
        return everything + list(self.scps or ()) + list(self.rcps or ())

    def denies(self) -> list[DecisiveRef]:
        """The Deny statements that certainly apply."""
        return [hit.ref for hits in self._all() for hit in hits if hit.effect == "Deny" and not hit.atoms]

    def maybe_hits(self) -> list[Hit]:
        return [hit for hits in self._all() for hit in hits if hit.atoms]

    @property
    def has_maybe(self) -> bool:
        if not self.uncertain:
            return False  # the hot path: no scan
        return bool(self.maybe_grants) or any(hit.atoms for hits in self._all() for hit in hits) or bool(
            self.readings_open and self.path_atoms()
        )

    def path_atoms(self) -> tuple[str, ...]:
        """Readings that change the allow paths themselves (evaluate._paths), when open."""
        if not self.readings_open:
            return ()
        return tuple(a for a in (READING_WILDCARD_BOUNDARY, READING_GRANT_LIMITS) if a in self.shapes)

    def world(self, assumed: frozenset[str]) -> Layers:
        """Certain hits, plus the maybe-Allows (and maybe-grants) whose atoms are all in
        `assumed`; no maybe-Deny."""

        def keep(hits: list[Hit]) -> list[Hit]:
            return [h for h in hits if not h.atoms or (h.effect == "Allow" and assumed.issuperset(h.atoms))]

        grants = self.grants + [(g, kind) for g, kind, atoms in self.maybe_grants if assumed.issuperset(atoms)]
        return replace(
            self,
            key_policy=keep(self.key_policy),
            identity=keep(self.identity),
            boundaries=[keep(b) for b in self.boundaries],
            session=None if self.session is None else keep(self.session),
            scps=None if self.scps is None else [keep(level) for level in self.scps],
            rcps=None if self.rcps is None else [keep(level) for level in self.rcps],
            grants=grants,
            maybe_grants=[],
            assumed=assumed,
        )


def _allows(hits: list[Hit]) -> list[Hit]:
    return [hit for hit in hits if hit.effect == "Allow"]


def collect(rr: ResolvedRequest, policies: PolicySet, unknowns: Unknowns = NONE) -> Layers:
    caller = rr.caller
    notes: list[str] = []
    shapes: set[str] = set()
    unknown_layers = policies.unknown_layers

    def hits_of(policy: Policy | None) -> list[Hit]:
        return statement_hits(policy, rr, False, unknowns, shapes) if policy is not None else []

    boundary_applies = caller.kind in ("user", "role", "session", "federated")
    boundary_unknown = boundary_applies and "permission_boundaries" in unknown_layers
    key_policy: list[Hit] = []
    if rr.key_policy:
        if policies.resource_policy is not None:
            # A NotPrincipal Deny applies to every principal with a permissions boundary.
            has_boundary = boundary_applies and bool(policies.permission_boundaries)
            key_policy = statement_hits(
                policies.resource_policy, rr, has_boundary, unknowns, shapes, boundary_unknown and not has_boundary
            )
    elif policies.resource_policy is not None:
        notes.append(f"{rr.action_name} on {rr.request.resource} is authorised by IAM policies only; the key policy does not apply.")

    identity: list[Hit] = []
    if caller.is_service:
        if policies.identity_policies:
            notes.append("Identity policies were ignored: an AWS service principal has none.")
    else:
        identity = [hit for policy in policies.identity_policies for hit in hits_of(policy)]

    boundaries: list[list[Hit]] = []
    if boundary_applies:
        boundaries = [hits_of(policy) for policy in policies.permission_boundaries]
        if boundary_unknown:
            boundaries.append(_unknown_layer("permission_boundaries"))
    elif policies.permission_boundaries:
        notes.append(f"Permissions boundaries were ignored: they do not apply to {caller.arn}.")

    session: list[Hit] | None = None
    if policies.session_policy is not None:
        if caller.is_session:
            session = hits_of(policies.session_policy)
        else:
            notes.append(f"The session policy was ignored: {caller.arn} is not a session.")
    elif "session_policy" in unknown_layers and caller.is_session:
        session = _unknown_layer("session_policy")

    scps = None
    if policies.scps is not None or "scps" in unknown_layers:
        if caller.is_service or caller.is_service_linked_role:
            notes.append(f"SCPs were not applied: they do not restrict {_who(caller.is_service)}.")
        elif policies.scps is not None:
            scps = [[hit for policy in level for hit in hits_of(policy)] for level in policies.scps]
        else:
            scps = [_unknown_layer("scps")]
    rcps = None
    if policies.rcps is not None or "rcps" in unknown_layers:
        if caller.is_service_linked_role:
            notes.append("RCPs were not applied: they do not restrict service-linked roles.")
        elif rr.action.name == "RetireGrant":
            notes.append("RCPs were not applied: they do not affect kms:RetireGrant.")
        elif policies.rcps is not None:
            rcps = [[hit for policy in level for hit in hits_of(policy)] for level in policies.rcps]
        else:
            rcps = [_unknown_layer("rcps")]

    grants, unmet, maybe_grants = _grant_hits(rr, policies.grants, unknowns)
    layers = Layers(key_policy, identity, boundaries, session, scps, rcps, grants, unmet, notes, maybe_grants)
    if caller.kind in ("role", "session", "federated"):
        _reading_shapes(rr, layers, shapes, bool(policies.permission_boundaries) or boundary_unknown)
    layers.shapes = shapes
    layers.readings_open = unknowns.readings
    layers.uncertain = unknowns.any_keys or unknowns.readings or bool(unknown_layers)
    return layers


def _reading_shapes(rr: ResolvedRequest, layers: Layers, shapes: set[str], has_boundary: bool) -> None:
    """The two readings about allow paths (unknowns.py; evaluate._paths uses them), for a
    role, role session or federated user session."""
    if has_boundary and not rr.cross_account and any(WILDCARD in h.kinds for h in _allows(layers.key_policy)):
        shapes.add(READING_WILDCARD_BOUNDARY)
    if (layers.grants or layers.maybe_grants) and (has_boundary or layers.session is not None or rr.caller.kind == "federated"):
        shapes.add(READING_GRANT_LIMITS)


def _who(service: bool) -> str:
    return "AWS service principals" if service else "service-linked roles"


def _grant_hits(
    rr: ResolvedRequest, grants: tuple[Grant, ...], unknowns: Unknowns
) -> tuple[list[tuple[Grant, str]], list[tuple[Grant, str]], list[tuple[Grant, str, tuple[str, ...]]]]:
    operation = rr.action.name
    found: list[tuple[Grant, str]] = []
    unmet: list[tuple[Grant, str]] = []
    maybe: list[tuple[Grant, str, tuple[str, ...]]] = []
    for grant in grants:
        kind = grant.match(operation, rr.caller) if grant.is_for_key(rr.request.resource) else None
        if kind is None:
            continue
        atoms = grant.unknown_atoms(operation, unknowns) if unknowns.any_keys else ()
        if atoms:
            maybe.append((grant, kind, atoms))
            continue
        failed = grant.unmet_constraint(operation, rr.context)
        if failed is None:
            found.append((grant, kind))
        else:
            unmet.append((grant, failed))
    return found, unmet, maybe


def allows(hits: list[Hit]) -> list[DecisiveRef]:
    return [hit.ref for hit in _allows(hits)]


def key_policy_allows(layers: Layers, kinds: frozenset[str] | None) -> list[DecisiveRef]:
    """Key-policy Allow statements naming the caller in one of `kinds` (None: any)."""
    return [hit.ref for hit in _allows(layers.key_policy) if kinds is None or hit.kinds & kinds]


def level_failures(levels: list[list[Hit]] | None) -> list[int]:
    """Indexes of organisation levels with no applicable Allow (each must allow)."""
    return [i for i, hits in enumerate(levels or ()) if not _allows(hits)]
