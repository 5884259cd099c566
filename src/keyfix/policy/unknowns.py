"""What the model is told it does not know: context keys, whole policy layers, readings.

An unknown is not a denial. A condition on a context key whose value keyfix could not
read (`aws:PrincipalOrgID`, `aws:PrincipalTag/team`, ...) is neither true nor false; a
policy layer keyfix could not read (the SCPs of the caller's account) may allow or deny.
evaluate.py carries these "maybe"s through the decision and reports `Undetermined` only
when they could change it.

Why unknown is the honest value: AWS evaluates a condition on a key absent from the
request as documented per operator (false for a positive operator, true for a negated
one or `...IfExists`, `ForAllValues`; `Null` tests presence:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Null).
So a key keyfix did not read is not the same as a key absent from the request: the real
request may carry it, with any value, or not carry it. Every operator can then come out
either way, so a condition on an unknown key is unknown (conservative: a tautology such
as `ForAllValues:StringLike "*"` is also reported unknown).

Project readings (issue #10, 4): cases AWS's pages do not decide. keyfix keeps one
reading for its explanations; `evaluate` reruns with the reading left open and marks a
decision that depends on it (`Decision.project_readings`), so that nothing is written on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfix.policy.errors import PolicyError

# Policy layers that can be declared unknown (simulate input `unknown_policies`), named as
# the simulate document names them.
UNKNOWN_LAYERS = ("permission_boundaries", "scps", "rcps", "session_policy")

# The four readings (names are stable: the remedies and known_differences.py use them).
READING_WILDCARD_BOUNDARY = "wildcard-principal-and-session-permissions-boundary"
READING_GRANT_LIMITS = "grant-and-session-policy-or-permissions-boundary"
READING_NOTPRINCIPAL_SESSION = "notprincipal-deny-naming-part-of-a-session"
READING_BOOL_VARIABLE = "policy-variable-in-bool-condition"
READINGS = (READING_WILDCARD_BOUNDARY, READING_GRANT_LIMITS, READING_NOTPRINCIPAL_SESSION, READING_BOOL_VARIABLE)

# What the diagnosis cannot read today (the lead wires it): pass as Request.unknown_keys.
DIAGNOSIS_UNKNOWN_KEYS = (
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalTag/",
    "aws:ResourceTag/",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:SourceIp",
    "aws:VpcSourceIp",
)

# What would decide an unknown, for the explanation (prefixes end with "/").
_HOW_TO_DECIDE = {
    "aws:principalorgid": "the organization of the caller's account (organizations:DescribeOrganization from that account)",
    "aws:principalorgpaths": "the organizational unit path of the caller's account (organizations:ListParents)",
    "aws:principaltag/": "the tags of the calling user or role, and any session tags (iam:ListRoleTags / iam:ListUserTags)",
    "aws:resourcetag/": "the key's tags (kms:ListResourceTags)",
    "aws:sourcevpc": "the VPC the request came through, which the event does not carry",
    "aws:sourcevpce": "the VPC endpoint the request came through, which the event does not carry",
    "aws:sourceip": "the caller's IP address, which the event does not always carry",
    "aws:vpcsourceip": "the caller's IP address within its VPC, which the event does not carry",
    "permission_boundaries": "the caller's permissions boundary (iam:GetRole / iam:GetUser PermissionsBoundary)",
    "scps": "the SCPs in force for the caller's account (organizations:ListPoliciesForTarget, management account)",
    "rcps": "the RCPs in force for the key's account (organizations:ListPoliciesForTarget, management account)",
    "session_policy": "the session policy passed when the session was created (not readable afterwards)",
}


def how_to_decide(atom: str) -> str:
    lowered = atom.lower()
    if lowered in _HOW_TO_DECIDE:
        return _HOW_TO_DECIDE[lowered]
    for prefix, text in _HOW_TO_DECIDE.items():
        if prefix.endswith("/") and lowered.startswith(prefix):
            return text
    if atom in READINGS:
        return "a reading of AWS's documentation that the pages do not decide (see tests/differential/known_differences.py)"
    return f"the value of {atom} in the real request"


@dataclass(frozen=True, slots=True)
class Unknowns:
    """Lower-cased exact keys and prefixes (ending with "/"), unknown layers, open readings."""

    keys: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    layers: frozenset[str] = frozenset()
    readings: bool = False  # the project readings are left open (the second pass)

    @property
    def any_keys(self) -> bool:
        return bool(self.keys or self.prefixes)

    def key_unknown(self, key: str) -> bool:
        """`key` lower-cased."""
        return key in self.keys or any(key.startswith(p) for p in self.prefixes)

    def with_readings(self) -> Unknowns:
        return Unknowns(self.keys, self.prefixes, self.layers, True)


NONE = Unknowns()


def parse_unknown_keys(raw: object, place: str = "request.unknown_keys") -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact keys ("aws:PrincipalOrgID") and prefixes ending with "/" ("aws:PrincipalTag/")."""
    if not isinstance(raw, (list, tuple)):
        raise PolicyError(place, "must be a list of condition keys")
    keys: set[str] = set()
    prefixes: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or ":" not in item or item.startswith(":") or item.endswith(":"):
            raise PolicyError(f"{place}[{i}]", f"{item!r} is not a condition key (service:key, or a prefix ending in /)")
        lowered = item.lower()
        if lowered.endswith("/"):
            prefixes.append(lowered)
        else:
            keys.add(lowered)
    return frozenset(keys), tuple(prefixes)
