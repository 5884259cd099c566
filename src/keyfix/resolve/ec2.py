"""EC2/EBS reads and the one piece of EBS reasoning the resolver does: which KMS keys a
launch will use.

Which key encrypts a volume at launch
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/AMIEncryption.html#AMI-encryption-launch,
https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html):

* `Encrypted` + `KmsKeyId` in the block device mapping: that key (an encrypted snapshot
  is re-encrypted to it);
* an encrypted snapshot you own, no `KmsKeyId`: the snapshot's key (`Encrypted` has no
  effect);
* an encrypted snapshot you do not own (shared AMI), no `KmsKeyId`: the account's default
  EBS key;
* an unencrypted snapshot or a new blank volume with `Encrypted` true, or with encryption by
  default on: the account's default EBS key (GetEbsDefaultKmsKeyId);
* otherwise unencrypted.

DescribeImages does not return KmsKeyId for an AMI's mappings (EbsBlockDevice.KmsKeyId
"is only supported on BlockDeviceMapping objects called by CreateFleet,
RequestSpotInstances, and RunInstances",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html), so the
key and owner of an encrypted AMI snapshot come from DescribeSnapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyfix.resolve.gateway import AwsError, AwsGateway

DEFAULT_KEY = "<ebs-default-key>"  # placeholder until GetEbsDefaultKmsKeyId is read


@dataclass(frozen=True)
class VolumeKeys:
    """The keys one launched volume involves."""

    device: str
    key: str | None  # key reference the new volume is encrypted under (None: unencrypted)
    source_key: str | None = None  # the snapshot's key, when it differs from `key`
    snapshot_id: str | None = None


def launch_template_data(
    gw: AwsGateway, region: str, spec: dict[str, Any], notes: list[str]
) -> dict[str, Any] | None:
    """LaunchTemplateData of the version an Auto Scaling group uses.

    `spec` is a LaunchTemplateSpecification: LaunchTemplateId or LaunchTemplateName, and
    Version: a number, "$Latest" or "$Default"; omitted means the default version
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateSpecification.html,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html).
    """
    params: dict[str, Any] = {"Versions": [str(spec.get("Version") or "$Default")]}
    if spec.get("LaunchTemplateId"):
        params["LaunchTemplateId"] = spec["LaunchTemplateId"]
    elif spec.get("LaunchTemplateName"):
        params["LaunchTemplateName"] = spec["LaunchTemplateName"]
    else:
        notes.append("launch template specification names no template")
        return None
    label = params.get("LaunchTemplateId") or params.get("LaunchTemplateName")
    try:
        versions = gw.read("ec2", "DescribeLaunchTemplateVersions", region=region, **params)["LaunchTemplateVersions"]
    except AwsError as err:
        notes.append(f"launch template {label} version {params['Versions'][0]}: {err.reason()}")
        return None
    if not versions:
        notes.append(f"launch template {label} has no version {params['Versions'][0]}")
        return None
    data = versions[0].get("LaunchTemplateData", {})
    image = data.get("ImageId", "")
    if image.startswith("resolve:ssm:"):
        # The AMI is an SSM parameter; ask EC2 to resolve it (needs ssm:GetParameters).
        try:
            resolved = gw.read(
                "ec2", "DescribeLaunchTemplateVersions", region=region, ResolveAlias=True, **params
            )["LaunchTemplateVersions"]
            data = resolved[0].get("LaunchTemplateData", data) if resolved else data
        except AwsError as err:
            notes.append(f"launch template {label}: AMI parameter {image} not resolved: {err.reason()}")
    return data


def describe_images(gw: AwsGateway, region: str, image_ids: list[str], notes: list[str]) -> dict[str, dict[str, Any]]:
    ids = sorted({i for i in image_ids if i and i.startswith("ami-")})
    if not ids:
        return {}
    try:
        images = gw.read("ec2", "DescribeImages", region=region, ImageIds=ids)["Images"]
    except AwsError as err:
        notes.append(f"AMI {', '.join(ids)}: {err.reason()}")
        return {}
    found = {img["ImageId"]: img for img in images}
    for missing in set(ids) - set(found):
        notes.append(f"AMI {missing} not found (deregistered, or not shared with this account)")
    return found


def describe_snapshots(
    gw: AwsGateway, region: str, snapshot_ids: list[str], notes: list[str]
) -> dict[str, dict[str, Any]]:
    return _describe_by_ids(gw, region, "Snapshot", snapshot_ids, notes)


def describe_volumes(gw: AwsGateway, region: str, volume_ids: list[str], notes: list[str]) -> dict[str, dict[str, Any]]:
    return _describe_by_ids(gw, region, "Volume", volume_ids, notes)


def _describe_by_ids(
    gw: AwsGateway, region: str, noun: str, resource_ids: list[str], notes: list[str]
) -> dict[str, dict[str, Any]]:
    """Describe<noun>s by <noun>Ids, keyed by <noun>Id; a failed read is one note and {}."""
    ids = sorted(set(resource_ids))
    if not ids:
        return {}
    try:
        found = gw.read("ec2", f"Describe{noun}s", region=region, **{f"{noun}Ids": ids})[f"{noun}s"]
    except AwsError as err:
        notes.append(f"{noun.lower()}s {', '.join(ids)}: {err.reason()}")
        return {}
    return {item[f"{noun}Id"]: item for item in found}


def describe_instance(gw: AwsGateway, region: str, instance_id: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        reservations = gw.read("ec2", "DescribeInstances", region=region, InstanceIds=[instance_id])["Reservations"]
    except AwsError as err:
        notes.append(f"instance {instance_id}: {err.reason()}")
        return None
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                return instance
    notes.append(f"instance {instance_id} not found")
    return None


def encryption_by_default(gw: AwsGateway, region: str, notes: list[str]) -> bool | None:
    """GetEbsEncryptionByDefault (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetEbsEncryptionByDefault.html)."""
    try:
        return bool(gw.read("ec2", "GetEbsEncryptionByDefault", region=region)["EbsEncryptionByDefault"])
    except AwsError as err:
        notes.append(f"encryption by default: {err.reason()}")
        return None


def default_ebs_key(gw: AwsGateway, region: str, notes: list[str]) -> str | None:
    """GetEbsDefaultKmsKeyId (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetEbsDefaultKmsKeyId.html):
    the key new volumes get when none is named; the AWS managed key (alias/aws/ebs) unless changed."""
    try:
        return gw.read("ec2", "GetEbsDefaultKmsKeyId", region=region).get("KmsKeyId") or "alias/aws/ebs"
    except AwsError as err:
        notes.append(f"default EBS key: {err.reason()}")
        return None


def plan_launch_keys(
    gw: AwsGateway,
    region: str,
    account: str,
    image: dict[str, Any] | None,
    overrides: list[dict[str, Any]],
    notes: list[str],
) -> list[VolumeKeys]:
    """The keys each EBS volume of a launch will use: the AMI's mappings merged with the
    launch's own (`overrides`: launch template / launch configuration / RunInstances
    BlockDeviceMappings; same device name overrides the AMI's, NoDevice suppresses it,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/block-device-mapping-concepts.html)."""
    image_owner = (image or {}).get("OwnerId")
    devices: dict[str, dict[str, Any]] = {}
    for mapping in (image or {}).get("BlockDeviceMappings", []):
        if "Ebs" in mapping:
            devices[mapping["DeviceName"]] = {"ami": mapping["Ebs"], "launch": None}
    for mapping in overrides:
        name = mapping.get("DeviceName")
        if not name:
            continue
        no_device = mapping.get("NoDevice")
        # EC2 mappings: NoDevice is a string (present = suppress); Auto Scaling: a boolean.
        if no_device is True or isinstance(no_device, str) and no_device.lower() != "false":
            devices.pop(name, None)
            continue
        if "Ebs" not in mapping:
            continue  # instance store
        devices.setdefault(name, {"ami": None, "launch": None})["launch"] = mapping["Ebs"]

    # Snapshots whose key (and owner) must come from DescribeSnapshots: encrypted or unknown.
    snapshot_ids = []
    for dev in devices.values():
        snap = (dev["launch"] or {}).get("SnapshotId") or (dev["ami"] or {}).get("SnapshotId")
        ami_encrypted = (dev["ami"] or {}).get("Encrypted") if dev["ami"] else None
        if snap and ami_encrypted is not False:
            snapshot_ids.append(snap)
    snapshots = describe_snapshots(gw, region, snapshot_ids, notes)

    plans: list[tuple[str, str | None, str | None, str | None]] = []  # device, target, source, snapshot
    needs_ebd = False
    for device in sorted(devices):
        dev = devices[device]
        launch = dev["launch"] or {}
        ami = dev["ami"] or {}
        snap_id = launch.get("SnapshotId") or ami.get("SnapshotId")
        snap = snapshots.get(snap_id) if snap_id else None
        if snap is not None:
            src_encrypted = bool(snap.get("Encrypted"))
            src_key = snap.get("KmsKeyId") if src_encrypted else None
            owned = snap.get("OwnerId") in (None, account)
        else:
            src_encrypted = bool(ami.get("Encrypted")) if snap_id else False
            src_key = None
            owned = image_owner in (None, account)  # a shared AMI's snapshots are not ours
            if snap_id and src_encrypted:
                notes.append(f"{device}: snapshot {snap_id} is encrypted but its key could not be read")
        if launch.get("KmsKeyId"):
            target: str | None = launch["KmsKeyId"]
            if not _truthy(launch.get("Encrypted")):
                notes.append(f"{device}: KmsKeyId given without Encrypted=true; the launch is rejected")
        elif src_encrypted:
            # Owned: the snapshot's key (None when it could not be read, noted above).
            target = src_key if owned else DEFAULT_KEY
        elif _truthy(launch.get("Encrypted")):
            target = DEFAULT_KEY
        else:
            target = None
            needs_ebd = True
        source = src_key if (src_encrypted and src_key and src_key != target) else None
        plans.append((device, target, source, snap_id))

    if needs_ebd and encryption_by_default(gw, region, notes):
        plans = [(d, DEFAULT_KEY if t is None else t, s, sn) for d, t, s, sn in plans]

    if any(t == DEFAULT_KEY for _, t, _, _ in plans):
        default = default_ebs_key(gw, region, notes)
        plans = [(d, default if t == DEFAULT_KEY else t, s, sn) for d, t, s, sn in plans]

    return [VolumeKeys(device=d, key=t, source_key=s, snapshot_id=sn) for d, t, s, sn in plans]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
