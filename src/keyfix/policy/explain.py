"""Human sentences for a decision: what decided it and what is missing where."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyfix.policy.decision import DecisiveRef
from keyfix.policy.unknowns import READINGS, how_to_decide

if TYPE_CHECKING:
    from keyfix.policy.evaluate import Requirement
    from keyfix.policy.layers import Hit, Layers
    from keyfix.policy.request import ResolvedRequest


def _refs(refs: Sequence[DecisiveRef]) -> str:
    return ", ".join(ref.describe() for ref in refs)


def _what(rr: ResolvedRequest) -> str:
    return f"{rr.caller.arn} to call {rr.action_name} on {rr.request.resource}"


def explain_explicit(rr: ResolvedRequest, denies: list[DecisiveRef]) -> list[str]:
    return [
        f"An explicit Deny in {ref.describe()} forbids {_what(rr)}; no Allow or grant can override it."
        for ref in denies
    ]


_ALLOWED = {
    "direct": "The key policy allows {who} directly ({refs}); no identity policy is needed in the key's account.",
    "role": "The key policy allows the role of {who} or everyone ({refs}); no boundary or session policy limits it.",
    "federating-user": (
        "The key policy allows the IAM user who federated {who} or everyone ({refs}); "
        "the session policy allows it and no boundary limits it."
    ),
    "account": "The key policy lets the account use IAM policies and an identity policy allows {who}: {refs}.",
    "cross-account": "The key's owner allows the caller's account and the caller's identity policy allows it: {refs}.",
    "service": "The key policy allows the service principal {who}: {refs}.",
    "identity": "This action is authorised by IAM policies alone, and they allow it: {refs}.",
    "grant": "A grant allows {who} to use the key: {refs}.",
    "grant-account": "A grant to the caller's account, delegated by its identity policy, allows it: {refs}.",
    "wildcard-unbounded": (
        'Under the other reading of "*" for a session, the key policy allows {who} whatever its '
        "permissions boundary: {refs}."
    ),
}


def explain_allowed(rr: ResolvedRequest, path: str, refs: list[DecisiveRef]) -> list[str]:
    return [f"Allowed: {_what(rr)}.", _ALLOWED[path].format(who=rr.caller.arn, refs=_refs(refs))]


def _resource_sentence(rr: ResolvedRequest, path: str) -> str:
    who = rr.caller.arn
    if path == "cross-account":
        return (
            f"The key policy of account {rr.resource_account} does not allow {who} or its account "
            f"{rr.caller.account} to call {rr.action_name}."
        )
    if path == "role":
        return f"No key policy statement allows the role of {who} (or the session itself) to call {rr.action_name}."
    if path == "federating-user":
        return (
            f"No key policy statement allows the IAM user who federated {who} (or the federated user "
            f"itself) to call {rr.action_name}."
        )
    if path == "account":
        account = rr.caller.account
        return f"The key policy neither allows {who} nor lets account {account} delegate {rr.action_name} to IAM."
    if path == "service":
        return f"No key policy statement allows the service principal {who} to call {rr.action_name}."
    return f"No key policy statement allows {who} to call {rr.action_name}."


def explain_denied(
    rr: ResolvedRequest,
    path: str,
    requirements: tuple[Requirement, ...],
    guardrails: list[tuple[str, int]],
    layers: Layers,
) -> list[str]:
    out = [f"Implicitly denied: nothing allows {_what(rr)}."]
    for req in requirements:
        if req.ok:
            if req.layer == "resource_policy" and path in ("account", "cross-account"):
                out.append(f"The key policy opens the way for the account ({_refs(req.refs)}), so IAM policies decide.")
            continue
        out.append(_failing_sentence(rr, path, req.layer))
    for layer, level in guardrails:
        kind = "SCP" if layer == "scp" else "RCP"
        where = f"organisation level {level} ({layer}s[{level}])"
        out.append(f"No {kind} at {where} allows {rr.action_name}; every level must allow.")
    for grant, constraint in layers.unmet_grants:
        out.append(f"{grant.ref} (grant {grant.grant_id}) would allow it but its {constraint} constraint is not met.")
    return out


def _failing_sentence(rr: ResolvedRequest, path: str, layer: str) -> str:
    who = rr.caller.arn
    if layer == "resource_policy":
        return _resource_sentence(rr, path)
    if layer == "identity_policy":
        return f"No identity policy of {who} allows {rr.action_name} on {rr.request.resource}."
    if layer == "permission_boundary":
        return f"A permissions boundary of {who} does not allow {rr.action_name}; each boundary must allow."
    if layer == "session_policy":
        return f"The session policy of {who} does not allow {rr.action_name} (or the federated session has none)."
    return (
        f"{who} is a service-linked role whose permissions policy is fixed by AWS, so on a key in "
        f"account {rr.resource_account} only a grant can let it call {rr.action_name}; no grant does."
    )


def explain_undetermined(
    rr: ResolvedRequest, possible: Sequence[str], by: Sequence[str], maybe: Sequence[Hit]
) -> list[str]:
    out = [
        f"Undetermined: the decision for {_what(rr)} depends on what keyfix could not read; "
        f"it is one of {', '.join(possible)}. Nothing should be written on it."
    ]
    for atom in by:
        if atom in READINGS:
            continue
        out.append(f"Unknown: {atom}; it would be decided by {how_to_decide(atom)}.")
    for hit in maybe:
        verb = "would deny" if hit.effect == "Deny" else "would allow"
        out.append(f"{hit.ref.describe()} {verb} if its unknown part ({', '.join(hit.atoms)}) holds.")
    out.append("If none of the unknown statements applies:")
    return out


def explain_readings(readings: Sequence[str], possible: Sequence[str]) -> list[str]:
    return [
        f"This decision rests on keyfix's reading '{name}', which AWS's documentation does not decide; "
        f"under the other reading it could be {' or '.join(possible)}. keyfix explains with it but never writes on it."
        for name in readings
    ]
