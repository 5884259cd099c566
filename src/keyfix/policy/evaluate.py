"""KMS authorisation: explicit deny, organisation guardrails, then the allow paths.

1. An explicit Deny in any applicable policy decides (grants cannot deny)
   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html).
2. Every SCP level and every RCP level must allow (same page).
3. Then one of the allow paths must hold. KMS key policies are the exception to
   "identity OR resource policy": the key policy must allow, directly or by
   delegating to the account's IAM policies
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html,
   https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam).
   Same account (reference_policies_evaluation-logic.html, "Resource-based policies"):
   - direct: the key policy names the user or the session itself (role session or
     federated user session): nothing else needed; for an IAM user or the root user
     "*" does too ("For IAM users and role principals within your account, no other
     permissions are required", reference_policies_elements_principal.html);
   - role: it names the role of a role session, or "*": boundary and session policy
     must allow;
   - federating-user: it names the IAM user who federated a federated user session,
     or "*": boundary and session policy must allow;
   - account: it names the account: identity policy, boundary, session policy must allow
     (the root user has full access to its account, so needs no identity policy).
   Only a resource policy naming the session's own ARN is exempt from the session
   policy and the permissions boundary ("Permissions granted directly to a session are
   not limited by an implicit deny in an identity-based policy, a permissions boundary,
   or session policy"; one naming the role or the user who federated is limited:
   https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session,
   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
   "*" does not name the session, so for a session it counts as naming its role (or
   its federating user): limited by both (the project's reading of these pages).
   Other account: the key policy must name the caller or its account AND the caller's
   identity policy (with boundary and session policy) must allow
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html,
   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
   only the operations KMS allows across accounts can succeed.
   Grants allow their operations to the grantee without any policy, across accounts
   too (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html); a grant
   to an account delegates to that account's IAM policies, like a key policy does.
4. For a denial, `missing` lists the layers that fail on the nearest path: the
   fewest failing layers, preferring a path the key policy already opens, then
   role (or federating-user) < direct < account. "grant" is only listed when no policy
   edit can open a path: a service-linked role (its permissions policy is fixed by AWS)
   on a key in another account, the seeds' case A2. `decisive` then lists the allows found on
   that path (e.g. the key policy's delegation statement).
5. Unknowns (unknowns.py): statements whose match depends on an unknown key, and layers
   keyfix could not read, are "maybe" (layers.Hit.atoms). The two-valued steps above are
   monotone: an extra Allow never removes a path. So with no Deny certain to apply:
   - pessimistic world: no maybe-Allow holds; optimistic world: every one does;
   - the possible decisions are those two worlds' decisions, plus ExplicitlyDenied if
     some maybe-Deny exists; one possible decision is the decision, several are
     `Undetermined`, naming the atoms that can change it (`undetermined_by`).
   Guarantee (tests/unit/policy/test_policy_unknowns.py): a decided result is the
   decision of every way of resolving the unknowns (sound). Each unknown condition is
   treated as free, even where two conditions read the same key, so Undetermined can be
   conservative: the resolutions may all agree on a decision after all.
6. Project readings (unknowns.READINGS): where AWS's pages do not decide, keyfix's reading
   makes the decision; the evaluation is repeated with those readings open (the NotPrincipal
   and Bool readings as maybe-statements, the wildcard and grant readings as maybe-paths)
   and a decision that then becomes undetermined carries `project_readings`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from keyfix.policy.decision import (
    ALLOWED,
    EXPLICITLY_DENIED,
    IMPLICITLY_DENIED,
    LAYERS,
    UNDETERMINED,
    Decision,
    DecisiveRef,
)
from keyfix.policy.explain import (
    explain_allowed,
    explain_denied,
    explain_explicit,
    explain_readings,
    explain_undetermined,
)
from keyfix.policy.grant import Grant
from keyfix.policy.layers import Layers, allows, collect, key_policy_allows, level_failures
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.principals import ACCOUNT, DIRECT, FEDERATING_USER, ROLE, SERVICE, WILDCARD
from keyfix.policy.request import Request, ResolvedRequest, resolve_request
from keyfix.policy.unknowns import READING_GRANT_LIMITS, READING_WILDCARD_BOUNDARY, READINGS


class Requirement(NamedTuple):
    # A named tuple, not a frozen dataclass: several are built per decision, and a frozen
    # dataclass's __init__ (object.__setattr__ per field) was a visible part of a warm one.
    layer: str  # one of decision.LAYERS
    refs: tuple[DecisiveRef, ...]  # the statements/grants that allow, if any
    ok: bool


class Path:
    """An allow path and the requirements on it; `failing` (the layers that do not allow) is
    computed once, as choosing the nearest path reads it for every path."""

    __slots__ = ("failing", "name", "requirements")

    def __init__(self, name: str, requirements: tuple[Requirement, ...]) -> None:
        self.name = name  # direct | role | federating-user | account | cross-account | service | identity | grant | grant-account
        self.requirements = requirements
        self.failing = tuple(r.layer for r in requirements if not r.ok)

    def __repr__(self) -> str:
        return f"Path({self.name!r}, {self.requirements!r})"

    @property
    def refs(self) -> list[DecisiveRef]:
        return [ref for r in self.requirements for ref in r.refs]


def evaluate(request: Request, policies: PolicySet) -> Decision:
    return evaluate_resolved(resolve_request(request), policies)


def evaluate_resolved(rr: ResolvedRequest, policies: PolicySet) -> Decision:
    """`evaluate` for a request already resolved (its derived context built once)."""
    layers = collect(rr, policies, rr.unknowns)
    decision = _decide(rr, layers)
    if layers.shapes:
        # A project reading was met: decide again with the readings left open.
        opened = _decide(rr, collect(rr, policies, rr.unknowns.with_readings()))
        if set(opened.possible_decisions) != set(decision.possible_decisions):
            readings = tuple(a for a in opened.undetermined_by if a in READINGS) or tuple(sorted(layers.shapes))
            decision = replace(
                decision,
                project_readings=readings,
                explanation=decision.explanation + explain_readings(readings, opened.possible_decisions),
            )
    return decision


def _decide(rr: ResolvedRequest, layers: Layers) -> Decision:
    denies = layers.denies()
    if denies:
        return Decision(EXPLICITLY_DENIED, denies, [], explain_explicit(rr, denies) + layers.notes)
    if not layers.has_maybe:
        return _two_valued(rr, layers)  # the hot path: nothing unknown

    maybe = layers.maybe_hits()
    maybe_denies = [h for h in maybe if h.effect == "Deny"]
    allow_atoms = frozenset(
        [a for h in maybe if h.effect == "Allow" for a in h.atoms]
        + [a for _, _, atoms in layers.maybe_grants for a in atoms]
        + list(layers.path_atoms())
    )
    pessimistic = _two_valued(rr, layers.world(frozenset()))
    optimistic = _two_valued(rr, layers.world(allow_atoms)) if allow_atoms else pessimistic
    possible = [d for d in (ALLOWED, IMPLICITLY_DENIED) if d in (pessimistic.decision, optimistic.decision)]
    if maybe_denies:
        possible.append(EXPLICITLY_DENIED)
    if len(possible) == 1:
        return pessimistic  # the unknowns cannot change it

    by = [a for h in maybe_denies for a in h.atoms]
    if pessimistic.decision != optimistic.decision:
        by += _deciding_atoms(rr, layers, allow_atoms, pessimistic.decision, optimistic.decision)
    undetermined_by = tuple(dict.fromkeys(by))
    deciding = set(undetermined_by)
    decisive = [h.ref for h in maybe if deciding & set(h.atoms)]
    decisive += [DecisiveRef(g.ref, grant_id=g.grant_id) for g, _, atoms in layers.maybe_grants if deciding & set(atoms)]
    explanation = explain_undetermined(rr, possible, undetermined_by, [h for h in maybe if deciding & set(h.atoms)])
    return Decision(
        UNDETERMINED,
        list(dict.fromkeys(decisive)),
        list(pessimistic.missing),
        explanation + pessimistic.explanation,
        possible=tuple(possible),
        undetermined_by=undetermined_by,
    )


def _deciding_atoms(
    rr: ResolvedRequest, layers: Layers, atoms: frozenset[str], pessimistic: str, optimistic: str
) -> list[str]:
    """The allow atoms that can change the decision alone: assumed on their own they
    change the pessimistic world, or dropped on their own they change the optimistic one.
    A decision that only a combination changes names every atom (never none)."""
    found = [
        a
        for a in sorted(atoms)
        if _two_valued(rr, layers.world(frozenset({a}))).decision != pessimistic
        or _two_valued(rr, layers.world(atoms - {a})).decision != optimistic
    ]
    return found or sorted(atoms)


def _two_valued(rr: ResolvedRequest, layers: Layers) -> Decision:
    """Steps 2-4 of the module docstring, on a situation with nothing unknown."""
    if rr.cross_account and not rr.action.cross_account:
        sentence = (
            f"{rr.action_name} cannot be used on a key in another account "
            "(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html); "
            "no policy can allow it."
        )
        return Decision(IMPLICITLY_DENIED, [], [], [sentence, *layers.notes])

    guardrails = _guardrail_failures(layers)
    paths = _paths(rr, layers)
    open_paths = [p for p in paths if not p.failing]
    if open_paths and not guardrails:
        path = open_paths[0]
        return Decision(ALLOWED, path.refs, [], explain_allowed(rr, path.name, path.refs) + layers.notes)

    nearest = _nearest(rr, paths)
    failing = set(nearest.failing) | {layer for layer, _ in guardrails}
    missing = [layer for layer in LAYERS if layer in failing]
    decisive = [ref for r in nearest.requirements if r.ok for ref in r.refs]
    explanation = explain_denied(rr, nearest.name, nearest.requirements, guardrails, layers)
    return Decision(IMPLICITLY_DENIED, decisive, missing, explanation + layers.notes)


def _guardrail_failures(layers: Layers) -> list[tuple[str, int]]:
    return [("scp", i) for i in level_failures(layers.scps)] + [("rcp", i) for i in level_failures(layers.rcps)]


def _paths(rr: ResolvedRequest, layers: Layers) -> list[Path]:
    caller = rr.caller
    identity = Requirement(
        "identity_policy", tuple(allows(layers.identity)), bool(allows(layers.identity)) or caller.kind == "root"
    )
    limits = _limits(rr, layers)

    def key(kinds: frozenset[str] | None) -> Requirement:
        refs = tuple(key_policy_allows(layers, kinds))
        return Requirement("resource_policy", refs, bool(refs))

    paths: list[Path] = []
    if not rr.key_policy:
        paths.append(Path("identity", (identity, *limits)))
        return paths
    if caller.is_service:
        paths.append(Path("service", (key(frozenset({SERVICE, WILDCARD})),)))
    elif rr.cross_account:
        paths.append(Path("cross-account", (key(None), identity, *limits)))
    else:
        # A session is usually named through its role (or the IAM user who federated) or
        # "*", both limited by boundary and session policy: try that path first. Only
        # a statement naming the session itself is not limited (module docstring, 3.).
        if caller.kind in ("role", "session"):
            paths.append(Path("role", (key(frozenset({ROLE, WILDCARD})), *limits)))
            paths.append(Path("direct", (key(frozenset({DIRECT})),)))
        elif caller.kind == "federated":
            paths.append(Path("federating-user", (key(frozenset({FEDERATING_USER, WILDCARD})), *limits)))
            paths.append(Path("direct", (key(frozenset({DIRECT})),)))
        else:
            paths.append(Path("direct", (key(frozenset({DIRECT, WILDCARD})),)))
        paths.append(Path("account", (key(frozenset({ACCOUNT})), identity, *limits)))
        if READING_WILDCARD_BOUNDARY in layers.assumed:
            # The other reading (readings open): "*" exempts a session from its boundary,
            # though not from its session policy (unknowns.py).
            session_only = tuple(r for r in limits if r.layer != "permission_boundary")
            paths.append(Path("wildcard-unbounded", (key(frozenset({WILDCARD})), *session_only)))

    direct_grants = tuple(g for g, kind in layers.grants if kind != ACCOUNT)
    account_grants = tuple(g for g, kind in layers.grants if kind == ACCOUNT)
    if layers.readings_open and READING_GRANT_LIMITS in layers.shapes and READING_GRANT_LIMITS not in layers.assumed:
        # The other reading: a grant is limited by the session policy and boundary.
        paths.append(Path("grant", (_grant_requirement(direct_grants), *limits)))
    else:
        paths.append(Path("grant", (_grant_requirement(direct_grants),)))
    if account_grants:
        paths.append(Path("grant-account", (_grant_requirement(account_grants), identity, *limits)))
    return paths


def _grant_requirement(grants: tuple[Grant, ...]) -> Requirement:
    refs = tuple(DecisiveRef(g.ref, grant_id=g.grant_id) for g in grants)
    return Requirement("grant", refs, bool(refs))


def _limits(rr: ResolvedRequest, layers: Layers) -> tuple[Requirement, ...]:
    """Permissions boundary (each must allow) and session policy, where they apply.

    A federated-user session with no session policy is denied on this path
    (reference_policies_evaluation-logic.html, "Session policies")."""
    out = []
    if layers.boundaries:
        refs = tuple(ref for hits in layers.boundaries for ref in allows(hits))
        out.append(Requirement("permission_boundary", refs, all(allows(h) for h in layers.boundaries)))
    if layers.session is not None:
        refs = tuple(allows(layers.session))
        out.append(Requirement("session_policy", refs, bool(refs)))
    elif rr.caller.kind == "federated":
        out.append(Requirement("session_policy", (), False))
    return tuple(out)


def _nearest(rr: ResolvedRequest, paths: list[Path]) -> Path:
    """The path a fix is closest to (see the module docstring)."""
    policy_paths = [p for p in paths if not p.name.startswith("grant")]
    if rr.caller.is_service_linked_role:
        # Its permissions policy is AWS's and cannot be edited: on a key-policy action a
        # grant is the way left; on an IAM-only action nothing else can help.
        fixable = [p for p in policy_paths if "identity_policy" not in p.failing]
        grant = [p for p in paths if p.name == "grant"]
        policy_paths = fixable or grant or policy_paths
    order = {p.name: i for i, p in enumerate(policy_paths)}
    return min(policy_paths, key=lambda p: (len(p.failing), "resource_policy" in p.failing, order[p.name]))
