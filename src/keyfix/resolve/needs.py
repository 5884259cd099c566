"""Which KMS permissions a failed operation needed: `AccessNeed` builders.

One need per principal x key (the report contract has one finding per principal x key).
A launch's need mixes the grant operation and the data-key operations under one context;
kms:GrantIsForAWSResource in that context is only meaningful for grant operations
(CreateGrant, ListGrants, RevokeGrant: AWS sends it on no other request,
https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource).
"""

from __future__ import annotations

from keyfix.arns import via_service
from keyfix.resolve.facts import AccessNeed

# A launch (Auto Scaling or RunInstances) creates volumes: the launching principal lets
# EC2 use the key through a grant and has EBS describe the key and generate / re-encrypt the
# volume's data key. The set is EBS's own list of what a principal must be allowed
# (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html#ebs-encryption-permissions:
# CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext, ReEncrypt), with
# ReEncrypt spelled out as ReEncryptFrom/ReEncryptTo. The Auto Scaling guide's key-policy
# statement for the service-linked role also includes DescribeKey
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html);
# its Encrypt and GenerateDataKey are not in EBS's list and are left out (least privilege).
LAUNCH_USE_OPERATIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
GRANT_OPERATIONS = ("kms:CreateGrant",)

# What a user or role needs for EBS to use a customer managed key on its behalf (create a
# volume from an encrypted snapshot, attach it, start an instance with it). One denied
# action in CloudTrail is only the first of these to fail; a fix for it alone would just
# move the failure to the next one (seed 002).
# https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html#ebs-encryption-permissions
EBS_CALLER_OPERATIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)

# Operations whose request carries an encryption context
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context).
CRYPTO_OPERATIONS = frozenset(
    {
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
    }
)


def ec2_context(principal_account: str | None, region: str) -> dict[str, str | list[str]]:
    """Context of a KMS request EC2/EBS makes for a principal: kms:ViaService is
    ec2.<region>.amazonaws.com for Amazon EBS
    (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service),
    kms:CallerAccount the principal's account."""
    context: dict[str, str | list[str]] = {"kms:ViaService": via_service("ec2", region)}
    if principal_account:
        context["kms:CallerAccount"] = principal_account
    return context


def grant_need(principal: str, principal_account: str | None, key_arn: str, region: str, resource: str | None) -> AccessNeed:
    """kms:CreateGrant made by EC2 for an AWS resource (the volume)."""
    context = ec2_context(principal_account, region)
    context["kms:GrantIsForAWSResource"] = "true"
    return AccessNeed(principal=principal, key_arn=key_arn, operations=GRANT_OPERATIONS, context=context, resource=resource)


def launch_needs(
    principal: str, principal_account: str | None, key_arn: str, region: str, resource: str | None
) -> list[AccessNeed]:
    """A launch that creates volumes under `key_arn`: CreateGrant (for the volume, an AWS
    resource) plus the data-key operations, all through EC2."""
    context = ec2_context(principal_account, region)
    context["kms:GrantIsForAWSResource"] = "true"
    return [
        AccessNeed(
            principal=principal,
            key_arn=key_arn,
            operations=GRANT_OPERATIONS + LAUNCH_USE_OPERATIONS,
            context=context,
            resource=resource,
        )
    ]


def start_needs(
    principal: str, principal_account: str | None, key_arn: str, region: str, resource: str | None
) -> list[AccessNeed]:
    """StartInstances with existing encrypted volumes: the caller needs kms:CreateGrant so that
    EC2 can decrypt the volumes' data keys
    (https://repost.aws/knowledge-center/kms-iam-ec2-permission;
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#encrypted-ebs-volume-missing-permissions)."""
    return [grant_need(principal, principal_account, key_arn, region, resource)]
