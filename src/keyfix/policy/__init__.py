"""The KMS authorisation model: who may do what with a KMS key, and why not.

Pure and stdlib-only (it runs on the Lambda cold path): no boto3, no AWS calls.
`evaluate(request, policies)` returns the decision, the statements that decided it
and, for a denial, the layers that would have to allow.
"""

from keyfix.policy.decision import Decision, DecisiveRef
from keyfix.policy.errors import PolicyError
from keyfix.policy.evaluate import evaluate
from keyfix.policy.grant import Grant
from keyfix.policy.policy import Policy, stale_principals
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.request import Request

__all__ = [
    "Decision",
    "DecisiveRef",
    "Grant",
    "Policy",
    "PolicyError",
    "PolicySet",
    "Request",
    "evaluate",
    "stale_principals",
]
