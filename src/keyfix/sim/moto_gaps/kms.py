"""KMS gaps: AWS managed keys behind alias/aws/*, and cross-account use of a key by ARN."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

# KMS operations that accept a key in another account (key ARN / alias ARN), per their
# API reference "Cross-account use: Yes"
# (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
KMS_CROSS_ACCOUNT_OPERATIONS = frozenset(
    {
        "DescribeKey",
        "ListGrants",
        "CreateGrant",
        "RetireGrant",
        "RevokeGrant",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "GetPublicKey",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
    }
)


def aws_ebs_key_policy(account: str, region: str) -> dict[str, Any]:
    """The key policy AWS gives the AWS managed key aws/ebs (GetKeyPolicy, Id "auto-ebs-2"):
    every principal of the account may use the key through EC2; the account may read its
    metadata. AWS managed key policies are AWS's and can be viewed, not changed
    (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return {
        "Version": "2012-10-17",
        "Id": "auto-ebs-2",
        "Statement": [
            {
                "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"ec2.{region}.{suffix}"}
                },
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    }


def _wrap_create_alias(original: Any) -> Any:
    """Keys behind alias/aws/* are AWS managed keys: DescribeKey says KeyManager AWS
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html); aws/ebs
    carries AWS's key policy for it."""

    def create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
        alias = original(self, target_key_id, alias_name)
        if alias_name.startswith("alias/aws/"):
            key = self.keys[self.get_key_id(target_key_id)]
            key.key_manager = "AWS"
            if alias_name == "alias/aws/ebs":
                key.policy = json.dumps(aws_ebs_key_policy(self.account_id, self.region_name))
        return alias

    return create_alias


def _wrap_kms_backend(original_getter: Any) -> Any:
    """Route a request naming another account's key (key ARN or alias ARN) to that account,
    for the operations KMS allows across accounts, after checking that the key policy lets
    the calling account do it. Only the key policy is evaluated (Allow/Deny statements whose
    principal is the calling account, its root, any of its principals, or "*"; conditions are
    not evaluated); IAM policies of the caller are not (moto does not enforce IAM)."""

    def kms_backend(self: Any) -> Any:
        own = original_getter(self)
        try:
            action = self._get_action()
            key_ref = self._get_param("KeyId")
        except Exception:  # noqa: BLE001 - no JSON body etc.: nothing to route
            return own
        if action not in KMS_CROSS_ACCOUNT_OPERATIONS or not isinstance(key_ref, str) or not key_ref.startswith("arn:"):
            return own
        parts = key_ref.split(":", 5)
        if len(parts) != 6 or parts[4] == self.current_account:
            return own
        from moto.kms.models import kms_backends

        foreign = kms_backends[parts[4]][parts[3]]
        if ":alias/" in key_ref:
            key_id = foreign.get_key_id_from_alias("alias/" + key_ref.split(":alias/", 1)[1])
        else:
            key_id = foreign.get_key_id(key_ref)
        key = foreign.keys.get(key_id) if key_id else None
        if key is not None:
            _authorize_cross_account(key, action, self.current_account)
        return foreign

    return kms_backend


def _authorize_cross_account(key: Any, action: str, caller_account: str) -> None:
    # moto's kms AccessDeniedException drops its message; JsonRESTError keeps it.
    from moto.core.exceptions import JsonRESTError

    try:
        policy = json.loads(key.policy or "{}")
    except ValueError:
        policy = {}
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not _principal_matches(statement.get("Principal"), caller_account):
            continue
        if not any(fnmatch.fnmatchcase(f"kms:{action}".lower(), a.lower()) for a in _as_list(statement.get("Action"))):
            continue
        if statement.get("Effect") == "Deny":
            allowed = False
            break
        if statement.get("Effect") == "Allow":
            allowed = True
    if not allowed:
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: arn:aws:iam::{caller_account}:root is not authorized to perform: kms:{action} on resource: "
            f"{key.arn} because no resource-based policy allows the kms:{action} action"
        )


def _principal_matches(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _as_list(principal.get("AWS")):
        if value == "*" or value == account or f":{account}:" in str(value):
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
