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
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfix.policy.decision import (
    ALLOWED,
    EXPLICITLY_DENIED,
    IMPLICITLY_DENIED,
    LAYERS,
    Decision,
    DecisiveRef,
)
from keyfix.policy.explain import explain_allowed, explain_denied, explain_explicit
from keyfix.policy.grant import Grant
from keyfix.policy.layers import Layers, allows, collect, key_policy_allows, level_failures
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.principals import ACCOUNT, DIRECT, FEDERATING_USER, ROLE, SERVICE, WILDCARD
from keyfix.policy.request import Request, ResolvedRequest, resolve_request


@dataclass(frozen=True)
class Requirement:
    layer: str  # one of decision.LAYERS
    refs: tuple[DecisiveRef, ...]  # the statements/grants that allow, if any
    ok: bool


@dataclass(frozen=True)
class Path:
    name: str  # direct | role | federating-user | account | cross-account | service | identity | grant | grant-account
    requirements: tuple[Requirement, ...]

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(r.layer for r in self.requirements if not r.ok)

    @property
    def refs(self) -> list[DecisiveRef]:
        return [ref for r in self.requirements for ref in r.refs]


def evaluate(request: Request, policies: PolicySet) -> Decision:
    rr = resolve_request(request)
    layers = collect(rr, policies)

    denies = layers.denies()
    if denies:
        return Decision(EXPLICITLY_DENIED, denies, [], explain_explicit(rr, denies) + layers.notes)

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
    if not rr.action.key_policy:
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

    direct_grants = tuple(g for g, kind in layers.grants if kind != ACCOUNT)
    account_grants = tuple(g for g, kind in layers.grants if kind == ACCOUNT)
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
