"""Which KMS requests an EC2 / EBS operation makes, with whose authority and which context.

This is the demo's picture of AWS, written from AWS's documentation, independently of
keyfix's own idea of what an operation needs (keyfix.resolve.needs): the demo would
otherwise only confirm keyfix's assumptions.

- A launch that creates an encrypted volume: CreateGrant for the instance's EC2
  infrastructure principal, constrained to the volume, then GenerateDataKeyWithoutPlaintext
  with the encryption context aws:ebs:id; EC2 later decrypts under that grant
  (https://docs.aws.amazon.com/kms/latest/developerguide/ct-ec2two.html). A volume restored
  from an encrypted snapshot also decrypts the snapshot's data key, re-encrypted when the
  volume's key differs (https://docs.aws.amazon.com/ebs/latest/userguide/how-ebs-encryption-works.html).
  Auto Scaling makes these requests with its service-linked role
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
- StartInstances with encrypted volumes: the caller's CreateGrant, so that EC2 can decrypt
  the volumes' data keys (https://repost.aws/knowledge-center/kms-iam-ec2-permission).
- CreateVolume from an encrypted snapshot: GenerateDataKeyWithoutPlaintext first
  (https://docs.aws.amazon.com/kms/latest/developerguide/ct-ec2one.html), then the
  grant and decryption the user's permissions must cover
  (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html).
- AttachVolume: the caller's CreateGrant for the instance, then EC2 decrypts under it.

Every request EC2 makes for a principal carries kms:ViaService = ec2.<region>.amazonaws.com
and kms:CallerAccount; grant requests also kms:GrantIsForAWSResource = true and
kms:GranteePrincipal (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html).
"""

from __future__ import annotations

from keyfix.arns import account_of, via_service
from keyfix.demo.authorize import KmsCall


def _base(principal: str, region: str) -> dict[str, str | list[str]]:
    return {"kms:ViaService": via_service("ec2", region), "kms:CallerAccount": account_of(principal) or ""}


def ec2_infrastructure(account: str, instance_id: str) -> str:
    """The grantee EC2 names in the grants it makes for an instance (ct-ec2two.html)."""
    return f"{account}:aws:ec2-infrastructure:{instance_id}"


def grant_for_instance(principal: str, key_arn: str, instance_id: str, region: str) -> KmsCall:
    context = _base(principal, region)
    context["kms:GrantIsForAWSResource"] = "true"
    context["kms:GranteePrincipal"] = ec2_infrastructure(account_of(principal) or "", instance_id)
    return KmsCall(principal, "kms:CreateGrant", key_arn, context)


def _with_volume(principal: str, action: str, key_arn: str, volume_id: str, region: str) -> KmsCall:
    context = _base(principal, region)
    context["kms:EncryptionContext:aws:ebs:id"] = volume_id
    return KmsCall(principal, action, key_arn, context)


def launch(principal: str, key_arn: str, instance_id: str, volume_id: str, region: str,
           snapshot_key_arn: str | None = None) -> list[KmsCall]:
    """RunInstances / an Auto Scaling launch whose root volume is encrypted under `key_arn`,
    restored from a snapshot encrypted under `snapshot_key_arn` (None: not encrypted)."""
    calls = [grant_for_instance(principal, key_arn, instance_id, region),
             _with_volume(principal, "kms:GenerateDataKeyWithoutPlaintext", key_arn, volume_id, region),
             _with_volume(principal, "kms:Decrypt", key_arn, volume_id, region)]
    if snapshot_key_arn and snapshot_key_arn != key_arn:
        calls += [_with_volume(principal, "kms:ReEncryptFrom", snapshot_key_arn, volume_id, region),
                  _with_volume(principal, "kms:ReEncryptTo", key_arn, volume_id, region)]
    return calls


def start_instances(principal: str, key_arn: str, instance_id: str, region: str) -> list[KmsCall]:
    return [grant_for_instance(principal, key_arn, instance_id, region)]


def create_volume_from_snapshot(principal: str, key_arn: str, volume_id: str, region: str) -> list[KmsCall]:
    context = _base(principal, region)
    context["kms:GrantIsForAWSResource"] = "true"
    return [_with_volume(principal, "kms:GenerateDataKeyWithoutPlaintext", key_arn, volume_id, region),
            KmsCall(principal, "kms:CreateGrant", key_arn, context),
            _with_volume(principal, "kms:Decrypt", key_arn, volume_id, region)]


def attach_volume(principal: str, key_arn: str, instance_id: str, region: str) -> list[KmsCall]:
    return [grant_for_instance(principal, key_arn, instance_id, region)]
