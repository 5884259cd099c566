"""keyfix bugs the differential harness found, fixed since: their examples stay tests.

test_known_differences.test_regression_stays_fixed checks that keyfix gives AWS's
decision on each example, and whether iam-simulate does too (`oracle_agrees`).
A KEYFIX_BUGS entry of known_differences.py moves here once keyfix is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

from case_views import ALLOWED, EXPLICIT, IMPLICIT, KEY, A, V
from known_differences import KNOWN_DIFFERENCES, _doc, _RCP_FULL, _ROOT_DELEGATION, _SLR_SESSION


@dataclass(frozen=True)
class Regression:
    """A keyfix bug this harness found and that has been fixed: the example keeps it fixed."""

    name: str
    docs: tuple[str, ...]
    why: str
    example: dict
    aws_decision: str
    oracle_agrees: bool  # iam-simulate gives aws_decision too


_STAR_DECRYPT = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}
_ONLY_S3 = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}

REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        name="rcps-apply-to-service-principals",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#rcp-effects-on-permissions",
            "https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html",
        ),
        why=(
            "RCPs restrict every principal that accesses a resource in a member account, \"regardless of "
            "whether the principals belong to the same organizations or not. This includes root users. "
            "The exception is when principals are service-linked roles\": AWS service principals are not "
            "exempt (the KMS guide's example RCP restricts service principals with aws:SourceAccount). "
            "keyfix used to skip RCPs for service principals."
        ),
        example=_doc(
            {"principal": "ec2.amazonaws.com", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}]],
        ),
        aws_decision=EXPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="slr-asking-for-an-iam-only-action-does-not-crash",
        docs=("https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html",),
        why=(
            "A service-linked role asking for an action authorised by IAM policies alone (kms:ListKeys), "
            "which its identity policy does not allow: keyfix raised StopIteration in "
            "evaluate._nearest() instead of answering ImplicitlyDenied."
        ),
        example=_doc({"principal": _SLR_SESSION, "action": "kms:ListKeys", "resource": "*", "resource_account": A}),
        aws_decision=IMPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="rcps-do-not-affect-service-linked-roles",
        docs=("https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",),
        why="keyfix used to apply RCPs to service-linked roles (now a known difference: iam-simulate still does).",
        example=next(d.example for d in KNOWN_DIFFERENCES if d.name == "rcps-do-not-affect-service-linked-roles"),
        aws_decision=ALLOWED,
        oracle_agrees=False,
    ),
    Regression(
        name="no-kms-calleraccount-for-listkeys-listaliases-generaterandom",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account",
            "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html",
        ),
        why=(
            "kms:CallerAccount is available for \"KMS key resource operations\" and \"custom key store "
            "operations\" (and CreateKey, per the Service Authorization Reference); ListKeys, ListAliases, "
            "ListRetirableGrants and GenerateRandom have no such key. keyfix used to derive it for every "
            "action, so a Deny conditioned on it applied to ListKeys (and an Allow conditioned on it "
            "allowed); now kms_actions marks which actions carry it."
        ),
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:ListKeys", "resource": "*", "resource_account": A},
            identity_policies=[{"Version": V, "Statement": [
                {"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:List*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": A}}},
            ]}],
        ),
        aws_decision=ALLOWED,
        oracle_agrees=True,
    ),
    Regression(
        name="a-policy-naming-an-iam-user-covers-its-federated-user-sessions",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
        ),
        why=(
            "\"If a resource-based policy grants permission to the ARN of the IAM user who federated, "
            "then requests made by the federated user during the session are limited by an implicit "
            "deny in a permission boundary or session policy\": the statement applies to the "
            "GetFederationToken session (within the session policy), and so does a Deny naming the "
            "user. keyfix used to match a user entry only against IAM users."
        ),
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:federated-user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]},
        ),
        aws_decision=ALLOWED,
        oracle_agrees=True,
    ),
    Regression(
        name="a-deny-naming-an-iam-user-applies-to-its-federated-user-sessions",
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html",),
        why="The Deny half of the previous entry: keyfix used to ignore it for the federated user session.",
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:federated-user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:sts::{A}:federated-user/alice"}, "Action": "kms:Decrypt", "Resource": "*"},
                {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:Decrypt", "Resource": "*"},
            ]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]},
        ),
        aws_decision=EXPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="no-policy-variables-before-the-fifth-colon-of-a-resource-arn",
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-resourceelement",),
        why=(
            "\"You can use a policy variable in the Resource element, but only in the resource portion "
            "of the ARN. This portion of the ARN appears after the fifth colon (:). You can't use a "
            "variable to replace parts of the ARN before the fifth colon, such as the service or "
            "account.\" keyfix used to substitute variables anywhere in a Resource/NotResource ARN, so "
            "arn:aws:kms:*:${aws:PrincipalAccount}:key/* matched the caller's keys; now a variable "
            "there is literal text and the pattern matches no key."
        ),
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"}]}],
        ),
        aws_decision=IMPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="notprincipal-deny-always-denies-principals-with-a-permissions-boundary",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html",
        ),
        why=(
            "\"The NotPrincipal element with a Deny effect will always deny any IAM principal that has a "
            "permissions boundary policy attached, regardless of the values specified in the "
            "NotPrincipal element.\" keyfix used to let NotPrincipal exclude the caller even when a "
            "permissions boundary was in force."
        ),
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [
                _ROOT_DELEGATION,
                {"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:*", "Resource": "*"},
            ]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
            permission_boundaries=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        aws_decision=EXPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="wildcard-principal-is-limited-by-the-session-policy",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html",
        ),
        why=(
            "Formerly the undecided class \"wildcard-principal-vs-session-policy\". The documentation "
            "exempts from the session policy only a resource-based policy naming the session's own "
            "ARN; Principal \"*\" does not name the session, so (project lead's decision) a same-account "
            "Allow through \"*\" is limited by the session policy, as one naming the role ARN is. keyfix "
            "used to treat \"*\" as naming the session directly; iam-simulate agrees with the decision. "
            "(For the permissions boundary it does not: see the known difference "
            "wildcard-principal-does-not-exempt-a-session-from-its-permissions-boundary.)"
        ),
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123", "action": "kms:Decrypt", "resource": KEY},
            resource_policy=_STAR_DECRYPT,
            session_policy=_ONLY_S3,
        ),
        aws_decision=IMPLICIT,
        oracle_agrees=True,
    ),
)
