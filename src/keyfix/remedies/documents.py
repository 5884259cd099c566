"""The exact documents keyfix proposes or writes, and the AWS CLI that does the same.

Pure functions of ARNs and action lists. Every statement keyfix adds to a key policy
has a `keyfix-` Sid, names one specific principal, lists only the actions needed and
puts `kms:GrantIsForAWSResource` on grant actions, so that it can be recognised,
audited and removed later.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from keyfix.arns import Arn, identity_holder

SID_PREFIX = "keyfix-"

# The actions EC2 Auto Scaling's service-linked role needs on a customer managed key
# that encrypts the volumes it launches, spelled out instead of `kms:ReEncrypt*` and
# `kms:GenerateDataKey*` so that nothing beyond them (e.g. GenerateDataKeyPair) is allowed.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
EBS_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)
# Key users manage the grants AWS services make for them (seed 002).
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-service-integration
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
# Grant operations for a service-linked role on a key in another account (seed 001/004).
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access
SLR_GRANT_OPERATIONS = ("Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant")
OPTIONAL_GRANT_OPERATIONS = ("Encrypt", "GenerateDataKey", "DescribeKey")

_FOR_AWS_RESOURCE = {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def _tag(principal_arn: str) -> str:
    # Sids must be unique within a policy; the principal's name plus a short hash keeps
    # two principals with the same name in different paths or accounts apart.
    name = principal_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    digest = hashlib.sha256(principal_arn.encode()).hexdigest()[:8]
    return f"{name}-{digest}"


def use_statement(principal_arn: str, actions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "Sid": f"{SID_PREFIX}use-{_tag(principal_arn)}",
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": list(actions),
        "Resource": "*",
    }


def grant_statement(principal_arn: str, actions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "Sid": f"{SID_PREFIX}grant-{_tag(principal_arn)}",
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": list(actions),
        "Resource": "*",
        "Condition": json.loads(json.dumps(_FOR_AWS_RESOURCE)),
    }


def key_policy_statements(
    principal_arn: str, use_actions: list[str], grant_actions: list[str]
) -> list[dict[str, Any]]:
    """The one or two statements that let `principal_arn` use a key through AWS services."""
    statements = []
    if use_actions:
        statements.append(use_statement(principal_arn, use_actions))
    if grant_actions:
        statements.append(grant_statement(principal_arn, grant_actions))
    return statements


def grant_parameters(key_arn: str, grantee: str, operations: list[str]) -> dict[str, Any]:
    """CreateGrant parameters. https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html"""
    return {
        "KeyId": key_arn,
        "GranteePrincipal": grantee,
        "Operations": list(operations),
        "Name": f"{SID_PREFIX}{_tag(grantee)}",
    }


def identity_policy(key_arn: str, actions: list[str], grant_actions: list[str]) -> dict[str, Any]:
    """An inline identity policy on one key. IAM Sids allow only [A-Za-z0-9], hence no hyphen.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html"""
    statements: list[dict[str, Any]] = []
    if actions:
        statements.append({"Sid": "KeyfixUseKey", "Effect": "Allow", "Action": list(actions), "Resource": key_arn})
    if grant_actions:
        statements.append(
            {
                "Sid": "KeyfixGrantForAwsResources",
                "Effect": "Allow",
                "Action": list(grant_actions),
                "Resource": key_arn,
                "Condition": json.loads(json.dumps(_FOR_AWS_RESOURCE)),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def identity_policy_name(key_arn: str) -> str:
    return f"keyfix-kms-{Arn.parse(key_arn).resource_id}"


# ---- AWS CLI ---------------------------------------------------------------------------

def _j(doc: Any) -> str:
    return shlex.quote(json.dumps(doc, separators=(",", ":")))


def cli_add_key_policy_statements(key_arn: str, statements: list[dict[str, Any]]) -> list[str]:
    """Merges with the policy in force when run, so nobody's later edit is overwritten."""
    region = Arn.parse(key_arn).region
    return [
        f"aws kms get-key-policy --region {region} --key-id {key_arn} --policy-name default "
        "--query Policy --output text > keyfix-policy.json",
        f"jq --argjson add {_j(statements)} '.Statement += $add' keyfix-policy.json > keyfix-policy.new.json",
        f"aws kms put-key-policy --region {region} --key-id {key_arn} --policy-name default "
        "--policy file://keyfix-policy.new.json",
    ]


def cli_create_grant(params: dict[str, Any]) -> list[str]:
    region = Arn.parse(params["KeyId"]).region
    return [
        f"aws kms create-grant --region {region} --key-id {params['KeyId']} "
        f"--grantee-principal {params['GranteePrincipal']} --operations {' '.join(params['Operations'])} "
        f"--name {params['Name']}"
    ]


def cli_put_identity_policy(principal_arn: str, policy_name: str, document: dict[str, Any]) -> list[str]:
    kind, name = identity_holder(principal_arn)
    return [
        f"aws iam put-{kind}-policy --{kind}-name {name} --policy-name {policy_name} "
        f"--policy-document {_j(document)}"
    ]


def cli_key_state(key_arn: str, state: str) -> list[str]:
    # https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-scheduling-key-deletion.html
    # A key whose deletion is cancelled comes back Disabled, hence enable-key after it.
    region = Arn.parse(key_arn).region
    base = f"--region {region} --key-id {key_arn}"
    if state == "PendingDeletion":
        return [f"aws kms cancel-key-deletion {base}", f"aws kms enable-key {base}"]
    if state == "Disabled":
        return [f"aws kms enable-key {base}"]
    if state == "PendingImport":
        # https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html
        return [
            f"aws kms get-parameters-for-import {base} --wrapping-algorithm RSAES_OAEP_SHA_256 "
            "--wrapping-key-spec RSA_4096",
            f"aws kms import-key-material {base} --encrypted-key-material fileb://EncryptedKeyMaterial.bin "
            "--import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE",
        ]
    return []


def cli_create_service_linked_role(service: str) -> list[str]:
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html
    return [f"aws iam create-service-linked-role --aws-service-name {service}"]
