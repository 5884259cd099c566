"""AWS KMS actions and grant operations, as data.

Sources (read 2026, botocore `kms/2014-11-01/service-2.json` documentation strings and):
- Required permissions / policy type and cross-account use per operation:
  https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html
- Cross-account use is effective only for the operations marked below:
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
- Grant operations (the `GrantOperation` enum) and which of them take an encryption
  context: https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#terms-grant-operations
  and https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-constraints
"""

from __future__ import annotations

from dataclasses import dataclass


# Actions whose request has no kms:CallerAccount. The key exists for "KMS key resource
# operations" and "custom key store operations"
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account),
# and the Service Authorization Reference lists it for CreateKey too; these four are none
# of those and list no kms:CallerAccount
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html).
_NO_CALLER_ACCOUNT = frozenset({"GenerateRandom", "ListAliases", "ListKeys", "ListRetirableGrants"})


@dataclass(frozen=True, slots=True)
class KmsAction:
    name: str  # the IAM action name without the "kms:" prefix, AWS's spelling
    key_policy: bool  # authorised on a KMS key, so the key policy must allow it
    cross_account: bool  # usable on a key in another account
    caller_account: bool = True  # the request context carries kms:CallerAccount


def _a(name: str, key_policy: bool = True, cross_account: bool = False) -> KmsAction:
    return KmsAction(name, key_policy, cross_account, name not in _NO_CALLER_ACCOUNT)


# "IAM policy" actions have no key resource: only identity-based policies decide.
# The alias operations need permission on the alias (IAM) and on the key (key policy);
# as a request on a key ARN they are key-policy actions.
_ACTIONS = (
    _a("CancelKeyDeletion"),
    _a("ConnectCustomKeyStore", key_policy=False),
    _a("CreateAlias"),
    _a("CreateCustomKeyStore", key_policy=False),
    _a("CreateGrant", cross_account=True),
    _a("CreateKey", key_policy=False),
    _a("Decapsulate", cross_account=True),
    _a("Decrypt", cross_account=True),
    _a("DeleteAlias"),
    _a("DeleteCustomKeyStore", key_policy=False),
    _a("DeleteImportedKeyMaterial"),
    _a("DeriveSharedSecret", cross_account=True),
    _a("DescribeCustomKeyStores", key_policy=False),
    _a("DescribeKey", cross_account=True),
    _a("DisableKey"),
    _a("DisableKeyRotation"),
    _a("DisconnectCustomKeyStore", key_policy=False),
    _a("EnableKey"),
    _a("EnableKeyRotation"),
    _a("Encapsulate", cross_account=True),
    _a("Encrypt", cross_account=True),
    _a("GenerateDataKey", cross_account=True),
    _a("GenerateDataKeyPair", cross_account=True),
    _a("GenerateDataKeyPairWithoutPlaintext", cross_account=True),
    _a("GenerateDataKeyWithoutPlaintext", cross_account=True),
    _a("GenerateMac", cross_account=True),
    _a("GenerateRandom", key_policy=False),
    _a("GetKeyLastUsage"),
    _a("GetKeyPolicy"),
    _a("GetKeyRotationStatus", cross_account=True),
    _a("GetParametersForImport"),
    _a("GetPublicKey", cross_account=True),
    _a("ImportKeyMaterial"),
    _a("ListAliases", key_policy=False),
    _a("ListGrants", cross_account=True),
    _a("ListKeyPolicies"),
    _a("ListKeyRotations"),
    _a("ListKeys", key_policy=False),
    _a("ListResourceTags"),
    _a("ListRetirableGrants", key_policy=False),
    _a("PutKeyPolicy"),
    _a("ReEncryptFrom", cross_account=True),
    _a("ReEncryptTo", cross_account=True),
    _a("ReplicateKey"),
    _a("RetireGrant", cross_account=True),
    _a("RevokeGrant", cross_account=True),
    _a("RotateKeyOnDemand"),
    _a("ScheduleKeyDeletion"),
    _a("Sign", cross_account=True),
    _a("SynchronizeMultiRegionKey"),
    _a("TagResource"),
    _a("UntagResource"),
    _a("UpdateAlias"),
    _a("UpdateCustomKeyStore", key_policy=False),
    _a("UpdateKeyDescription"),
    _a("UpdatePrimaryRegion"),
    _a("Verify", cross_account=True),
    _a("VerifyMac", cross_account=True),
)

# Lower-case "kms:name" -> action; IAM action names are case-insensitive
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
KMS_ACTIONS: dict[str, KmsAction] = {f"kms:{a.name.lower()}": a for a in _ACTIONS}

# What a grant may allow (CreateGrant fails with ValidationError on anything else).
GRANT_OPERATIONS: frozenset[str] = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)

# Grant operations whose request carries an encryption context; encryption-context
# grant constraints are not applied to the others (DescribeKey, RetireGrant, Sign, ...).
# For CreateGrant the constraint binds the grant being created.
ENCRYPTION_CONTEXT_OPERATIONS: frozenset[str] = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "CreateGrant",
    }
)

# Service-linked roles whose path can be told from the name, so that a session of
# one (arn:aws:sts::A:assumed-role/NAME/SESSION, which carries no path) gets the
# right aws:PrincipalArn. Name prefix -> path.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
SERVICE_LINKED_ROLE_PATHS: tuple[tuple[str, str], ...] = (
    ("AWSServiceRoleForAutoScaling", "aws-service-role/autoscaling.amazonaws.com/"),
    ("AWSServiceRoleForEC2SpotFleet", "aws-service-role/spotfleet.amazonaws.com/"),
    ("AWSServiceRoleForEC2Spot", "aws-service-role/spot.amazonaws.com/"),
    ("AWSServiceRoleForEC2Fleet", "aws-service-role/ec2fleet.amazonaws.com/"),
)
SERVICE_LINKED_ROLE_PREFIX = "AWSServiceRoleFor"
SERVICE_LINKED_ROLE_PATH = "aws-service-role/"


def service_linked_role_path(role_name: str) -> str | None:
    """The path of a known service-linked role (custom suffixes `NAME_suffix` too)."""
    for name, path in SERVICE_LINKED_ROLE_PATHS:
        if role_name == name or role_name.startswith(name + "_"):
            return path
    return None
