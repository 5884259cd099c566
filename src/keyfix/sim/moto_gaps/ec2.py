"""EC2 gaps: AMIs keep their block device mappings, snapshots and volumes keep their key,
GetEbsDefaultKmsKeyId / ResetEbsDefaultKmsKeyId, and simulated launch failures."""

from __future__ import annotations

import contextvars
from typing import Any

_in_ami_init: contextvars.ContextVar[bool] = contextvars.ContextVar("keyfix_in_ami_init", default=False)


# ---------------------------------------------------------------------------------------
# EC2 images
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html: each
# BlockDeviceMapping has DeviceName and Ebs {DeleteOnTermination, SnapshotId, VolumeSize,
# VolumeType, Encrypted, Iops, Throughput}; KmsKeyId is not returned for images
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html), so the
# key comes from DescribeSnapshots.


def _wrap_register_image(original: Any) -> Any:
    def register_image(self: Any) -> Any:
        result = original(self)
        image = self.ec2_backend.amis[result.result["ImageId"]]
        mappings = self._get_param("BlockDeviceMappings", []) or []
        root = self._get_param("RootDeviceName")
        if mappings:
            image._keyfix_mappings = [dict(m) for m in mappings]
            image.root_device_type = "ebs"
        if root:
            image.root_device_name = root
        return result

    return register_image


def _wrap_create_image(original: Any) -> Any:
    """CreateImage snapshots every EBS volume attached to the instance
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html)."""

    def create_image(self: Any, instance_id: str, name: str, description: str, *args: Any, **kwargs: Any) -> Any:
        image = original(self, instance_id, name, description, *args, **kwargs)
        instance = self.get_instance(instance_id)
        mappings = []
        for device, block in instance.get_block_device_mapping:
            volume = self.get_volume(block.volume_id)
            snapshot = self.create_snapshot(
                volume.id, f"Created by CreateImage({instance_id}) for {image.id}", from_ami=image.id
            )
            mappings.append(
                {
                    "DeviceName": device,
                    "Ebs": {
                        "SnapshotId": snapshot.id,
                        "VolumeSize": volume.size,
                        "VolumeType": volume.volume_type,
                        "DeleteOnTermination": bool(getattr(block, "delete_on_termination", True)),
                    },
                }
            )
        if mappings:
            image._keyfix_mappings = mappings
            image.root_device_name = instance.root_device_name
            image.root_device_type = "ebs"
        return image

    return create_image


def _wrap_ami_mappings(original_getter: Any) -> Any:
    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        stored = getattr(self, "_keyfix_mappings", None)
        snapshots = self.ec2_backend.snapshots
        if stored is None:
            mappings = original_getter(self)
            for mapping in mappings:
                ebs = mapping.get("Ebs") or {}
                snap = snapshots.get(ebs.get("SnapshotId"))
                ebs["Encrypted"] = bool(snap.encrypted) if snap is not None else False
            return mappings
        out = []
        for mapping in stored:
            entry: dict[str, Any] = {"DeviceName": mapping.get("DeviceName")}
            if mapping.get("VirtualName"):
                entry["VirtualName"] = mapping["VirtualName"]
            if "NoDevice" in mapping:
                entry["NoDevice"] = mapping["NoDevice"]
            ebs = mapping.get("Ebs")
            if ebs is not None:
                snap = snapshots.get(ebs.get("SnapshotId"))
                shaped = {
                    "DeleteOnTermination": ebs.get("DeleteOnTermination", True),
                    "SnapshotId": ebs.get("SnapshotId"),
                    "VolumeSize": ebs.get("VolumeSize") or (snap.volume.size if snap is not None else None),
                    "VolumeType": ebs.get("VolumeType") or "standard",
                    # An AMI's volume is encrypted exactly when its snapshot is.
                    "Encrypted": bool(snap.encrypted) if snap is not None else bool(ebs.get("Encrypted", False)),
                    "Iops": ebs.get("Iops"),
                    "Throughput": ebs.get("Throughput"),
                }
                entry["Ebs"] = {k: v for k, v in shaped.items() if v is not None}
            out.append(entry)
        return out

    return block_device_mappings


def _wrap_ami_init(original: Any) -> Any:
    # moto creates a throw-away volume for an AMI's placeholder snapshot; encryption by
    # default must not apply to it (it is not a volume anyone created).
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        token = _in_ami_init.set(True)
        try:
            original(self, *args, **kwargs)
        finally:
            _in_ami_init.reset(token)

    return __init__


# ---------------------------------------------------------------------------------------
# EBS snapshots and volumes
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html: KmsKeyId "The
# Amazon Resource Name (ARN) of the KMS key that was used to protect the volume encryption
# key for the parent volume." Snapshots of encrypted volumes are encrypted with the same key
# (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html).


def _wrap_create_snapshot(original: Any) -> Any:
    def create_snapshot(self: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        snapshot = original(self, volume_id, *args, **kwargs)
        volume = self.get_volume(volume_id)
        if snapshot.encrypted and not snapshot.kms_key_id:
            snapshot.kms_key_id = volume.kms_key_id
        return snapshot

    return create_snapshot


def _wrap_create_volume(original: Any) -> Any:
    """A volume from an encrypted snapshot you own is encrypted with the snapshot's key; one you
    do not own, with your default key; with encryption by default on, every new volume is
    encrypted (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html,
    https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html)."""

    def create_volume(
        self: Any,
        size: int | None,
        zone_name: str,
        snapshot_id: str | None = None,
        encrypted: bool = False,
        kms_key_id: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if snapshot_id and not kms_key_id:
            snap = self.snapshots.get(snapshot_id)
            if snap is not None and snap.encrypted:
                encrypted = True
                if snap.owner_id == self.account_id and snap.kms_key_id:
                    kms_key_id = snap.kms_key_id
        if not encrypted and not _in_ami_init.get() and getattr(self, "ebs_encryption_by_default", False):
            encrypted = True
        return original(self, size, zone_name, snapshot_id, encrypted, kms_key_id, *args, **kwargs)

    return create_volume


def _get_ebs_default_kms_key_id(self: Any) -> Any:
    """https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetEbsDefaultKmsKeyId.html:
    {"KmsKeyId": ...}; the AWS managed key for EBS (alias/aws/ebs) until changed."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": self.ec2_backend.default_kms_key_id or "alias/aws/ebs"})


def _reset_ebs_default_kms_key_id(self: Any) -> Any:
    """https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ResetEbsDefaultKmsKeyId.html"""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": self.ec2_backend._create_default_encryption_key()})


# ---------------------------------------------------------------------------------------
# Simulated failures (moto never fails a launch)


def fail_instance_launch(
    instance_id: str,
    *,
    account: str,
    region: str,
    code: str = "Client.InternalError",
    message: str = "Client.InternalError: Client error on launch",
    terminate: bool = False,
) -> None:
    """Leave an instance the way EC2 does when it cannot use an attached volume's KMS key:
    pending -> stopped (StartInstances) or terminated (RunInstances), with StateReason
    {Code, Message} (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#encrypted-ebs-volume-missing-permissions,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import StateReason

    instance = ec2_backends[account][region].get_instance(instance_id)
    if terminate:
        instance.terminate()
    else:
        instance.stop()
    instance._reason = ""
    instance.state_reason = StateReason(message, code)
