"""Federated user sessions (STS GetFederationToken): what keyfix may conclude about them.

- The session's permissions are "the intersection of the IAM user policies and the session
  policies that you pass"; with no session policy it has none
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html).
- CloudTrail names the IAM user (or root) who federated in `sessionContext.sessionIssuer`
  ("The sessionIssuer element indicates if the API was called with root or IAM user
  credentials") and never records the session policy
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
  The session's NAME (federated-user/NAME) is whatever the caller passed and identifies no IAM
  user: without an issuer the federating user is unknown.
- A resource-based policy naming the session itself
  (`"Principal": {"AWS": "arn:aws:sts::A:federated-user/NAME"}`,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#sts-session-principals)
  grants "in addition to the permissions granted by the session policies" (GetFederationToken
  page); one naming the federating user or the account is limited by the session policy
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).

So when a federated session is denied, keyfix asks the model what-if: with the two layers it
cannot see (the session policy, and the identity policies behind the session) allowing
everything, would the key policy, grants and boundaries let the request through? If yes, the
denial may come from what keyfix cannot see: undetermined, and no fix. If no, the key policy
is what denies, and a key-policy statement naming the session itself is a fix that works
whatever the session policy says (the ordinary diagnosis then proposes it). An identity policy
is never proposed: none attaches to a federated session, and one on the federating user
would still be cut by the session policy.
"""

from __future__ import annotations

from keyfix.arns import parse_arn
from keyfix.events.incident import Incident
from keyfix.policy import Decision, Policy, PolicySet, evaluate
from keyfix.remedies import plan
from keyfix.report import Cause, Finding
from keyfix.resolve.facts import AccessNeed, KeyFacts

# Stand-ins for the layers keyfix cannot read: allow every action on every resource.
_ALLOW_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def is_federated_session(arn: str | None) -> bool:
    parsed = parse_arn(arn)
    return bool(parsed and parsed.service == "sts" and parsed.resource.startswith("federated-user/"))


def unseen_layers_could_deny(need: AccessNeed, model: plan.Model, denied: dict[str, Decision]) -> list[str]:
    """The denied operations the session policy or the identity policies behind the session
    could be denying: those the model allows once both allow everything."""
    if model.key_policy is None:
        return sorted(denied)  # an unread key policy says nothing about which layer denies
    base = model.policies()
    what_if = PolicySet(
        resource_policy=base.resource_policy,
        identity_policies=(Policy.parse(_ALLOW_EVERYTHING, "identity_policies[0]"),),
        permission_boundaries=base.permission_boundaries,
        session_policy=Policy.parse(_ALLOW_EVERYTHING, "session_policy"),
        grants=base.grants,
    )
    return sorted(op for op in denied if evaluate(model.request(op), what_if).decision == "Allowed")


def undetermined_federated(need: AccessNeed, key: KeyFacts, incident: Incident, model: plan.Model,
                           denied: dict[str, Decision]) -> Finding | None:
    """The finding for a denied federated user session whose denial may come from its
    session policy; None when the key policy itself denies (the ordinary diagnosis follows)."""
    if not is_federated_session(need.principal):
        return None
    maybe = unseen_layers_could_deny(need, model, denied)
    if not maybe:
        return None
    issuer = incident.caller.session_issuer_arn if incident.caller else None
    name = parse_arn(need.principal).resource.split("/", 1)[1]
    if issuer:
        who = (f"It was federated by {issuer} (CloudTrail's sessionIssuer); its permissions are that "
               "identity's policies intersected with the session policy passed to GetFederationToken, "
               "which CloudTrail does not record.")
    else:
        who = (f"The event does not say who federated it (no sessionIssuer), and the name {name!r} is "
               "whatever was passed to GetFederationToken: keyfix does not take it for an IAM user of "
               "that name. Its permissions are the federating user's policies intersected with a "
               "session policy CloudTrail does not record.")
    return Finding(
        Cause.UNDETERMINED, need.principal, key.arn, sorted(denied),
        f"{need.principal} is a federated user session denied {', '.join(maybe)} on {key.arn}. {who} "
        "The key policy would let the session in if those allowed it, so the denial may come from the "
        "session policy: keyfix cannot tell, and proposes no identity policy (none attaches to a "
        "federated session, and one on the federating user would still be cut by the session policy). "
        "Check the session policy the federating application passes, or name the session itself in the "
        "key policy.",
        resource=need.resource,
    )
