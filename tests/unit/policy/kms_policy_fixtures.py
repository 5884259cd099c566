"""Accounts, ARNs and policy documents shared by the policy-model tests.

Every document is taken from an AWS documentation page or from the seeds
(docs/seed-cases.md), with the source next to it.
"""

from __future__ import annotations

from typing import Any

from keyfix.policy import Grant, Policy, PolicySet, Request, evaluate

V = "2012-10-17"
KEY_ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:key/{KEY_ID}"
OTHER_KEY = f"arn:aws:kms:us-west-2:{OTHER_ACCOUNT}:key/1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"

ALICE = f"arn:aws:iam::{KEY_ACCOUNT}:user/Alice"
ASG_SLR_PATH = "aws-service-role/autoscaling.amazonaws.com/"


def slr(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ASG_SLR_PATH}AWSServiceRoleForAutoScaling"


def slr_session(account: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"


def root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def stmt(effect: str = "Allow", action: Any = "kms:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    for name, value in extra.items():
        doc[
            {"sid": "Sid", "principal": "Principal", "not_principal": "NotPrincipal", "condition": "Condition"}[name]
        ] = value
    return doc


def policy_doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": V, "Statement": list(statements)}


# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
def enable_iam(account: str = KEY_ACCOUNT) -> dict[str, Any]:
    return {
        "Sid": "Enable IAM policies",
        "Effect": "Allow",
        "Principal": {"AWS": root(account)},
        "Action": "kms:*",
        "Resource": "*",
    }


# Seeds 000/001, case A1: the two statements for the Auto Scaling service-linked role.
def a1_statements(account: str = KEY_ACCOUNT) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "Allow service-linked role use of the KMS",
            "Effect": "Allow",
            "Principal": {"AWS": [slr(account)]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": {"AWS": [slr(account)]},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
        },
    ]


# Seeds 000/001/004, case A2 step 1: the key owner allows the Auto Scaling account.
def a2_external_statements(external: str) -> list[dict[str, Any]]:
    return [
        {
            "Sid": f"Allow external account {external} use of the KMS",
            "Effect": "Allow",
            "Principal": {"AWS": [root(external)]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": f"Allow attachment of persistent resources in external account {external}",
            "Effect": "Allow",
            "Principal": {"AWS": [root(external)]},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
        },
    ]


# Seeds A2 step 2: `aws kms create-grant --grantee-principal <SLR> --operations ...`.
def a2_grant(key: str, account: str, grant_id: str = "g-asg") -> dict[str, Any]:
    return {
        "GrantId": grant_id,
        "KeyId": key,
        "GranteePrincipal": slr(account),
        "Operations": ["Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"],
        "Constraints": None,
    }


def policies(
    key_policy: dict[str, Any] | None = None,
    identity: tuple[dict[str, Any], ...] = (),
    boundaries: tuple[dict[str, Any], ...] = (),
    scps: list[list[dict[str, Any]]] | None = None,
    rcps: list[list[dict[str, Any]]] | None = None,
    session: dict[str, Any] | None = None,
    grants: tuple[dict[str, Any], ...] = (),
) -> PolicySet:
    return PolicySet(
        resource_policy=Policy.parse(key_policy, "resource_policy") if key_policy is not None else None,
        identity_policies=tuple(Policy.parse(d, f"identity_policies[{i}]") for i, d in enumerate(identity)),
        permission_boundaries=tuple(Policy.parse(d, f"permission_boundaries[{i}]") for i, d in enumerate(boundaries)),
        scps=None
        if scps is None
        else tuple(
            tuple(Policy.parse(d, f"scps[{i}][{j}]") for j, d in enumerate(level)) for i, level in enumerate(scps)
        ),
        rcps=None
        if rcps is None
        else tuple(
            tuple(Policy.parse(d, f"rcps[{i}][{j}]") for j, d in enumerate(level)) for i, level in enumerate(rcps)
        ),
        session_policy=Policy.parse(session, "session_policy") if session is not None else None,
        grants=tuple(Grant.from_aws(g) for g in grants),
    )


def decide(
    principal: str,
    action: str,
    key: str = KEY,
    context: dict[str, Any] | None = None,
    resource_account: str | None = None,
    **layers: Any,
):
    """Evaluate `principal` calling `action` on `key` with the layers given by name."""
    request = Request(principal, action, key, resource_account, context or {})
    return evaluate(request, policies(**layers))


# FullAWSAccess (SCP) and RCPFullAWSAccess, attached to every level by AWS:
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_syntax.html
FULL_ACCESS = policy_doc(stmt("Allow", "*", "*"))
RCP_FULL_ACCESS = policy_doc(stmt("Allow", "*", "*", principal="*"))
