"""How the simulated AWS decides a KMS request: moto stores policies but never enforces KMS,
so the demo asks keyfix's authorisation model, on the state in force right now.

For each request the key's facts (state, key policy, grants) are read in the key's own
account and the principal's facts (identity policies, boundary) in the principal's
account, through keyfix's own readers (keyfix.resolve.read_key / read_principal), and
turned into a PolicySet exactly as keyfix.remedies.plan.Model does. That is AWS's view,
not keyfix's: keyfix, running in one account, cannot read another account's key policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyfix.arns import account_of
from keyfix.policy import Decision, Request, evaluate
from keyfix.policy.decision import EXPLICITLY_DENIED
from keyfix.remedies.plan import Model
from keyfix.resolve import AccessNeed, AwsGateway, read_key, read_principal
from keyfix.sim import accounts

# A key in any of these states refuses every cryptographic request, whatever the
# permissions, with KMSInvalidStateException "<key ARN> is <state phrase>."
# https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
BLOCKING_STATES = {"Disabled": "disabled", "PendingDeletion": "pending deletion", "PendingImport": "pending import",
                   "Unavailable": "unavailable"}


@dataclass(frozen=True)
class KmsCall:
    """One request AWS makes to KMS with a principal's authority. `principal` is the caller
    as the request is made: a user ARN or an assumed-role session ARN."""

    principal: str
    action: str
    key_arn: str
    context: dict[str, str | list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "action": self.action, "resource": self.key_arn,
                "context": dict(self.context)}


@dataclass(frozen=True)
class Verdict:
    """AWS's answer to one KmsCall: the model's decision, and the key's state."""

    call: KmsCall
    decision: Decision
    key_state: str | None

    @property
    def blocked_by_state(self) -> bool:
        return self.key_state in BLOCKING_STATES

    @property
    def allowed(self) -> bool:
        return self.decision.allowed and not self.blocked_by_state

    def error(self) -> tuple[str, str] | None:
        """(error code, message) as KMS returns it, or None when the request succeeds."""
        if self.blocked_by_state:
            return "KMSInvalidStateException", f"{self.call.key_arn} is {BLOCKING_STATES[self.key_state]}."
        if not self.decision.allowed:
            return "AccessDeniedException", access_denied_message(self.call, self.decision)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.call.to_dict(), **self.decision.to_json(), "key_state": self.key_state,
                "succeeded": self.allowed}

    def describe(self) -> str:
        d = self.decision
        refs = ", ".join(ref.describe() for ref in d.decisive)
        text = d.decision
        if refs:
            text += f" by {refs}" if d.allowed else f" (found: {refs})"
        if d.missing and not d.allowed:
            text += f"; missing: {', '.join(d.missing)}"
        if self.blocked_by_state:
            text += f"; but the key is {self.key_state}"
        return text


def access_denied_message(call: KmsCall, decision: Decision) -> str:
    """AWS's wording for a denied request
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_access-denied-error-messages.html)."""
    head = f"User: {call.principal} is not authorized to perform: {call.action} on resource: {call.key_arn}"
    if decision.decision == EXPLICITLY_DENIED:
        where = ("a resource-based policy" if any(r.policy == "resource_policy" for r in decision.decisive)
                 else "an identity-based policy")
        return f"{head} with an explicit deny in {where}"
    for layer, phrase in (("resource_policy", "resource-based policy"), ("identity_policy", "identity-based policy"),
                          ("permission_boundary", "permissions boundary"), ("session_policy", "session policy")):
        if layer in decision.missing:
            return f"{head} because no {phrase} allows the {call.action} action"
    return head


class Authorizer:
    """Decides KmsCalls on the state in force at construction time (one read per account,
    key and principal: a new Authorizer sees later changes)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._gateways: dict[str, AwsGateway] = {}

    def _gateway(self, account: str) -> AwsGateway:
        found = self._gateways.get(account)
        if found is None:
            found = self._gateways[account] = AwsGateway(accounts.session(account, self.region), account=account,
                                                         region=self.region)
        return found

    def decide(self, call: KmsCall) -> Verdict:
        key_account = account_of(call.key_arn) or ""
        key = read_key(self._gateway(key_account), call.key_arn, self.region)
        principal_account = account_of(call.principal) or key_account
        principal = read_principal(self._gateway(principal_account), call.principal)
        need = AccessNeed(principal=call.principal, key_arn=key.arn, operations=(call.action,),
                          context=dict(call.context))
        policies = Model(need, key, principal).policies()
        request = Request(principal=call.principal, action=call.action, resource=key.arn,
                          resource_account=key.account, context=dict(call.context))
        return Verdict(call, evaluate(request, policies), key.state)

    def until_refused(self, calls: list[KmsCall]) -> list[Verdict]:
        """AWS makes the calls in order and stops at the first one refused."""
        verdicts = []
        for call in calls:
            verdict = self.decide(call)
            verdicts.append(verdict)
            if not verdict.allowed:
                break
        return verdicts
