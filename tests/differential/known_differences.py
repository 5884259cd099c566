"""Where keyfix and the iam-simulate oracle disagree, and who is right.

Every disagreement the differential test meets must be explained by an entry here.
An entry is not a free pass: it names the AWS documentation that decides the
question, recognises its cases structurally (`applies`), lists the (keyfix, oracle)
decision pairs it can produce, and *removes* the difference from one side (a
`view`, see case_views.py): the explanation only holds when, after the rewrite, the
two engines agree exactly. A disagreement with any other cause therefore stays
unexplained.

- `oracle_view` rewrites the case so that iam-simulate is asked what AWS would
  really decide (e.g. drop the SCPs for a service-linked role, which SCPs do not
  affect); keyfix(case) must then equal oracle(oracle_view(case)).
- `keyfix_view` removes from the case what iam-simulate cannot model (grants);
  keyfix(keyfix_view(case)) must then equal oracle(case).
- For KEYFIX_BUGS the oracle_view does the opposite: it makes iam-simulate read the
  case the way keyfix (wrongly) does, so that agreement pins the cause.

KNOWN_DIFFERENCES are the cases where keyfix is right (documented, intended).
UNDECIDED are disagreements the documentation does not settle; they are isolated and
counted like the others, and listed for the policy author to decide.
PROJECT_READINGS are the classes AWS's pages do not decide and keyfix decides by a
reading of its own (issue #10, 4). keyfix keeps the reading for its explanations but
marks every decision resting on it (`Decision.project_readings`, unknowns.READINGS), and
`apply` must not write on such a decision. A Difference whose class is one of them names
it in `project_reading`.
KEYFIX_BUGS are disagreements where the documentation says iam-simulate is right and
keyfix is wrong; they fail the differential run until fixed, and each has a
strict-xfail test (test_known_differences.py) that turns red once keyfix is fixed.
Fixed bugs move to regressions.py, where their examples are kept as tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from keyfix.policy.unknowns import (
    READING_BOOL_VARIABLE,
    READING_GRANT_LIMITS,
    READING_NOTPRINCIPAL_SESSION,
    READING_WILDCARD_BOUNDARY,
)

from case_views import (
    ALLOWED,
    CROSS_ACCOUNT_OPERATIONS,
    EXPLICIT,
    IMPLICIT,
    KEY,
    A,
    B,
    V,
    action_name,
    empty_session_policy,
    is_cross_account,
    is_federated_user,
    is_root_user,
    is_service_linked_role,
    key_policy_allows_everyone,
    key_policy_denies_only,
    key_policy_names_session,
    literal_variables_in_old_policies,
    old_version_policy_with_variable,
    resolve_arn_condition_prefix_variables,
    root_user_full_identity,
    session_issuer_arn,
    session_policy_unlimited,
    variable_in_arn_condition_prefix,
    wildcard_allows_name_the_session_issuer,
    without,
)

__all__ = [
    "ALL_DIFFERENCES",
    "KEYFIX_BUGS",
    "KNOWN_DIFFERENCES",
    "PROJECT_READINGS",
    "ProjectReading",
    "UNDECIDED",
    "Difference",
    "is_cross_account",  # facts the differential test reads, re-exported
    "is_service_linked_role",
]


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    name: str
    docs: tuple[str, ...]
    why: str
    applies: Callable[[dict], bool]
    decisions: frozenset[tuple[str, str]]  # (keyfix, oracle) pairs it explains
    oracle_view: Callable[[dict], dict] | None = None
    keyfix_view: Callable[[dict], dict] | None = None
    # keyfix's decision must cite one of these policies (e.g. "grants[") to be explained
    keyfix_cites: str | None = None
    # A minimal case; the tests check both engines answer `example_decisions` on it.
    example: dict = field(default_factory=dict)
    example_decisions: tuple[str, str] = (ALLOWED, IMPLICIT)
    # The project reading (PROJECT_READINGS) this class rests on, if any.
    project_reading: str | None = None

    def relevant(self, case: dict, keyfix: dict) -> bool:
        """The case has this difference's shape (whatever the decisions)."""
        if not self.applies(case):
            return False
        if self.keyfix_cites is not None:
            return any(d.get("policy", "").startswith(self.keyfix_cites) for d in keyfix.get("decisive", []))
        return True

    def admits(self, case: dict, keyfix: dict, oracle_decision: str) -> bool:
        """This difference alone can explain these decisions on this case."""
        return (keyfix["decision"], oracle_decision) in self.decisions and self.relevant(case, keyfix)


def _doc(request: dict, **rest) -> dict:
    return {"request": request, **rest}


_ROOT_DELEGATION = {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}
_SLR_SESSION = f"arn:aws:sts::{A}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
_SLR_ARN = f"arn:aws:iam::{A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
_SLR_KEY_POLICY = {
    "Version": V,
    "Statement": [
        _ROOT_DELEGATION,
        {"Effect": "Allow", "Principal": {"AWS": _SLR_ARN}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
    ],
}
_RCP_FULL = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
_ALL_DECISION_PAIRS = frozenset(
    (k, o) for k in (ALLOWED, IMPLICIT, EXPLICIT) for o in (ALLOWED, IMPLICIT, EXPLICIT) if k != o
)

KNOWN_DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        name="root-user-needs-no-identity-policy",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html",
        ),
        why=(
            "A key policy statement naming the account (arn:aws:iam::A:root) gives the account full "
            "access to the key, its root user included, and enables IAM policies for everyone else. "
            "The root user has no identity policies (none can be attached) and needs none: it has "
            "full access to its account. iam-simulate treats the root ARN like any IAM principal "
            "and demands an identity-policy Allow, which a root user can never have."
        ),
        applies=is_root_user,
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        oracle_view=root_user_full_identity,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:root", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
        ),
    ),
    Difference(
        name="scps-do-not-affect-service-linked-roles",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html",
        ),
        why=(
            "\"SCPs do not affect any service-linked role.\" The Auto Scaling service-linked role "
            "(and its sessions) is not restricted by any SCP, neither by a Deny nor by a level that "
            "allows nothing. iam-simulate applies the SCPs to every principal."
        ),
        applies=lambda c: is_service_linked_role(c) and c.get("scps") is not None,
        decisions=frozenset({(ALLOWED, IMPLICIT), (ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("scps"),
        example=_doc(
            {"principal": _SLR_SESSION, "action": "kms:Decrypt", "resource": KEY, "context": {"aws:PrincipalArn": _SLR_ARN}},
            resource_policy=_SLR_KEY_POLICY,
            scps=[[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
    Difference(
        name="grants-are-not-modelled-by-iam-simulate",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/grants.html",
            "https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html",
        ),
        why=(
            "A KMS grant allows its grantee principal the grant's operations on the key without any "
            "policy naming it, across accounts too; AWS KMS authorises a request from the key policy, "
            "IAM policies and grants together. iam-simulate has no notion of grants. The difference "
            "only counts when keyfix allows because of a grant and keyfix agrees with the oracle once "
            "the grants are removed."
        ),
        applies=lambda c: bool(c.get("grants")),
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        keyfix_view=without("grants"),
        keyfix_cites="grants[",
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            grants=[{"GrantId": "g-1", "GranteePrincipal": f"arn:aws:iam::{A}:user/alice", "Operations": ["Decrypt"], "Constraints": None}],
        ),
    ),
    Difference(
        name="operation-not-available-across-accounts",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html",
            "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html",
        ),
        why=(
            "Only some KMS operations work on a key in another account (the \"Cross-account use\" "
            "column); for the others (PutKeyPolicy, ScheduleKeyDeletion, TagResource, ...) no key "
            "policy or IAM policy can allow a caller from another account. iam-simulate allows them "
            "like any cross-account request both policies allow."
        ),
        applies=lambda c: is_cross_account(c) and action_name(c) not in CROSS_ACCOUNT_OPERATIONS,
        decisions=frozenset({(IMPLICIT, ALLOWED)}),
        oracle_view=key_policy_denies_only,
        example=_doc(
            {"principal": f"arn:aws:iam::{B}:user/alice", "action": "kms:PutKeyPolicy", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION, {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "kms:*", "Resource": "*"}]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="federated-user-session-without-session-policy-has-no-permissions",
        docs=(
            "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
        ),
        why=(
            "GetFederationToken: \"if you do not pass a policy, then the resulting federated user "
            "session has no permissions. The only exception is when the credentials are used to access "
            "a resource that has a resource-based policy that specifically references the federated "
            "user session in the Principal element\". iam-simulate lets the IAM user's identity "
            "policies act for the federated user session when no session policy is given."
        ),
        applies=lambda c: is_federated_user(c) and c.get("session_policy") is None,
        decisions=frozenset({(IMPLICIT, ALLOWED)}),
        oracle_view=empty_session_policy,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:federated-user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="policy-variables-in-arn-condition-values",
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-conditionelement",),
        why=(
            "\"You can use a policy variable for Condition values in any condition that involves the "
            "string operators or the ARN operators\" (unlike the Resource element, with no restriction "
            "to the resource portion). iam-simulate splits an ArnLike/ArnEquals value at its colons "
            "before substituting, so arn:aws:iam::${aws:PrincipalAccount}:role/* (the variable's own "
            "colon) never matches; StringLike with the same value works in both engines."
        ),
        applies=variable_in_arn_condition_prefix,
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=resolve_arn_condition_prefix_variables,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:role/AppRole", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:role/AppRole"}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/*"}},
            }]},
        ),
    ),
    Difference(
        name="no-policy-variables-before-version-2012-10-17",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html",
        ),
        why=(
            "Policy variables exist only in the 2012-10-17 policy language; in a policy with "
            "\"Version\": \"2008-10-17\" (or none) ${...} is literal text. iam-simulate resolves "
            "variables whatever the version."
        ),
        applies=old_version_policy_with_variable,
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=literal_variables_in_old_policies,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "${aws:PrincipalAccount}"}}}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="session-arn-in-key-policy-is-not-limited-by-session-policy",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
        ),
        why=(
            "Role sessions and federated user sessions alike: resource-based policies that grant "
            "permissions to the session ARN \"grant permissions directly to the session. Permissions "
            "granted directly to a session are not limited by an implicit deny in an identity-based "
            "policy, a permissions boundary, or session policy.\" "
            "\"A resource-based policy can specify the ARN of the session as a principal. In that "
            "case, the permissions from the resource-based policy are added after the session is "
            "created. The resource-based policy permissions are not limited by the session policy.\" "
            "iam-simulate denies whenever the session policy does not allow."
        ),
        applies=lambda c: c.get("session_policy") is not None and key_policy_names_session(c),
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        oracle_view=session_policy_unlimited,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        ),
    ),
    Difference(
        name="rcps-do-not-affect-service-linked-roles",
        docs=("https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",),
        why=(
            "\"RCPs do not impact the effective permissions of any service-linked role.\" iam-simulate "
            "applies an RCP Deny to the Auto Scaling service-linked role like to any principal."
        ),
        applies=lambda c: is_service_linked_role(c) and c.get("rcps") is not None,
        decisions=frozenset({(ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("rcps"),
        example=_doc(
            {"principal": _SLR_SESSION, "action": "kms:Decrypt", "resource": KEY, "context": {"aws:PrincipalArn": _SLR_ARN}},
            resource_policy=_SLR_KEY_POLICY,
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
    Difference(
        name="rcps-do-not-affect-retiregrant",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",
            "https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html",
        ),
        why=(
            "\"RCPs do not impact the kms:RetireGrant permission\"; it \"is not effective in an RCP, even "
            "if the Action element specifies an asterisk\". iam-simulate applies the RCP Deny to it."
        ),
        applies=lambda c: action_name(c) == "retiregrant" and c.get("rcps") is not None,
        decisions=frozenset({(ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("rcps"),
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:RetireGrant", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:RetireGrant", "Resource": "*"}]},
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
    Difference(
        name="wildcard-principal-does-not-exempt-a-session-from-its-permissions-boundary",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html",
        ),
        why=(
            "Same account, a key-policy Allow with Principal \"*\", and a role session (or role, or "
            "federated user session) whose permissions boundary does not allow the action. The "
            "documentation exempts from the permissions boundary and the session policy only a "
            "resource-based policy naming the session's own ARN (\"Permissions granted directly to a "
            "session are not limited by an implicit deny in an identity-based policy, a permissions "
            "boundary, or session policy\"); one naming the role ARN, or the ARN of the IAM user who "
            "federated, is limited by both. \"*\" does not name the session, so keyfix limits it as it "
            "limits the role ARN (the project lead's decision on the former undecided class "
            "\"wildcard-principal-vs-session-policy\"): the boundary applies, denied. iam-simulate "
            "applies the session policy to \"*\" (agreeing with keyfix there) but lets \"*\" bypass "
            "the boundary: allowed. The view names the role (or the federating user) instead of "
            "\"*\", which iam-simulate then limits by the boundary."
        ),
        applies=lambda c: (
            bool(c.get("permission_boundaries"))
            and not is_cross_account(c)
            and session_issuer_arn(c) is not None
            and key_policy_allows_everyone(c)
        ),
        decisions=frozenset({(IMPLICIT, ALLOWED)}),
        oracle_view=wildcard_allows_name_the_session_issuer,
        project_reading=READING_WILDCARD_BOUNDARY,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]},
            permission_boundaries=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
)


# Disagreements the documentation does not decide. The cause is isolated as for the
# other entries (the view must make the engines agree), the differential run counts
# them separately, and test_known_differences.py pins both engines' answers so that
# a change on either side is noticed. Each needs a decision by the policy author.
# (The last one, "wildcard-principal-vs-session-policy", was decided: a session policy
# limits an Allow through Principal "*"; iam-simulate agrees, see regressions.py.)
UNDECIDED: tuple[Difference, ...] = ()


# Disagreements where the documentation says iam-simulate is right and keyfix is wrong.
# The differential run fails on them (reported as "known keyfix bug"), and each gets a
# strict-xfail test of keyfix's correct answer, which turns red once keyfix is fixed so
# that the entry moves to regressions.py. Their oracle_view makes iam-simulate reproduce
# keyfix's reading, so agreement after it pins the cause.
KEYFIX_BUGS: tuple[Difference, ...] = ()

ALL_DIFFERENCES = KNOWN_DIFFERENCES + UNDECIDED + KEYFIX_BUGS


# --- project readings -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectReading:
    """A case AWS's documentation does not decide, and keyfix's reading of it.

    `example`: a simulate document whose decision rests on the reading: keyfix must give
    `keyfix_decision` and mark it with `name` (test_known_differences.py)."""

    name: str  # as in keyfix.policy.unknowns.READINGS
    docs: tuple[str, ...]
    reading: str  # what keyfix decides, and what the pages leave open
    example: dict
    keyfix_decision: str


_SESSION = f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123"
_ROLE = f"arn:aws:iam::{A}:role/AppRole"
_S3_ONLY = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}

PROJECT_READINGS: tuple[ProjectReading, ...] = (
    ProjectReading(
        name=READING_WILDCARD_BOUNDARY,
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html",
        ),
        reading=(
            'A key-policy Allow with Principal "*" counts, for a session, as naming its role (or the IAM '
            "user who federated): limited by the permissions boundary. The pages exempt only a policy "
            'naming the session ARN and say nothing of "*". iam-simulate reads it the other way (the '
            "known difference wildcard-principal-does-not-exempt-a-session-from-its-permissions-boundary)."
        ),
        example=_doc(
            {"principal": _SESSION, "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]},
            permission_boundaries=[_S3_ONLY],
        ),
        keyfix_decision=IMPLICIT,
    ),
    ProjectReading(
        name=READING_GRANT_LIMITS,
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/grants.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
        ),
        reading=(
            "A grant allows its grantee without any policy, so keyfix lets a grant to a role allow the "
            "role's sessions whatever their session policy or permissions boundary. The KMS pages do not "
            "say whether session policies or boundaries limit grants; the IAM pages do not mention grants."
        ),
        example=_doc(
            {"principal": _SESSION, "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            session_policy=_S3_ONLY,
            grants=[{"GrantId": "g-1", "GranteePrincipal": _ROLE, "Operations": ["Decrypt"], "Constraints": None}],
        ),
        keyfix_decision=ALLOWED,
    ),
    ProjectReading(
        name=READING_NOTPRINCIPAL_SESSION,
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html",),
        reading=(
            "A Deny with NotPrincipal naming some but not all of a session's ARNs (account, role, session): "
            "keyfix reads any of them as leaving the session out. The page only recommends naming the "
            "account and the role too (\"AWS might validate the account first\") and does not say what "
            "happens otherwise."
        ),
        example=_doc(
            {"principal": _SESSION, "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": _ROLE}, "Action": "kms:Decrypt", "Resource": "*"},
                {"Effect": "Deny", "NotPrincipal": {"AWS": _ROLE}, "Action": "kms:*", "Resource": "*"},
            ]},
        ),
        keyfix_decision=ALLOWED,
    ),
    ProjectReading(
        name=READING_BOOL_VARIABLE,
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-conditionelement",),
        reading=(
            "A policy variable as the value of a Bool condition: keyfix substitutes it. The variables page "
            "names string and ARN operators for variables in condition values and does not decide Bool."
        ),
        example=_doc(
            {"principal": _SESSION, "action": "kms:Decrypt", "resource": KEY, "context": {"kms:GrantIsForAWSResource": "false"}},
            resource_policy={"Version": V, "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": _ROLE}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "${aws:PrincipalIsAWSService}"}},
            }]},
        ),
        keyfix_decision=ALLOWED,
    ),
)
