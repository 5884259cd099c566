"""The moto gap layer: what moto 5.2 lacks for keyfix's failures, filled on moto's own models.

Each gap below was observed on moto 5.2.5 before it was filled (tests/unit/resolve/
test_resolve_moto_gaps.py asserts both the raw gap and the fill, so a moto upgrade that
closes a gap shows up as a failing "gap still present" test; then delete the fill).
Every fill patches moto's backend models or response classes, not botocore, so it works
the same in-process (`mock_aws`) and in a `ThreadedMotoServer` in this process.

| gap in moto 5.2.5 | fill | shaped after |
|---|---|---|
| RegisterImage drops BlockDeviceMappings / RootDeviceName; CreateImage ignores the instance's volumes; DescribeImages has no `Encrypted` | `_register_image`, `_create_image`, `_ami_block_device_mappings` | DescribeImages |
| CreateSnapshot of an encrypted volume loses its KmsKeyId | `_create_snapshot` | DescribeSnapshots |
| CreateVolume from an encrypted snapshot loses the key; encryption by default is ignored | `_create_volume` | CreateVolume |
| GetEbsDefaultKmsKeyId, ResetEbsDefaultKmsKeyId not implemented | `_get_ebs_default_kms_key_id`, `_reset_ebs_default_kms_key_id` | GetEbsDefaultKmsKeyId |
| DescribeScalingActivities always returns [] | `_describe_scaling_activities` + `record_scaling_activity` | DescribeScalingActivities |
| CreateAutoScalingGroup never creates AWSServiceRoleForAutoScaling and ignores ServiceLinkedRoleARN | `_create_auto_scaling_group` | autoscaling-service-linked-role |
| CreateServiceLinkedRole(spot.amazonaws.com) names the role AWSServiceRoleForspot | SERVICE_NAME_CONVERSION entry | CreateServiceLinkedRole |
| AWS managed keys (alias/aws/*) report KeyManager CUSTOMER; aws/ebs has the default policy | `_create_alias` | DescribeKey, GetKeyPolicy |
| KMS ignores the account in a key ARN: DescribeKey/ListGrants/CreateGrant... on another account's key say NotFound | `_kms_backend` | KMS cross-account use |
| CloudTrail LookupEvents not implemented | `_lookup_events` + `record_cloudtrail_event` | LookupEvents |

Not filled (documented, not needed by keyfix's resolver): CopySnapshot/CopyImage key rules,
RunInstances ignoring the AMI's mappings, AMIs and snapshots shared across accounts, IAM
policy evaluation (moto does not enforce IAM unless asked), UpdateAutoScalingGroup's
ServiceLinkedRoleARN, pagination of the filled Describe/Lookup calls.

`install()` / `uninstall()` are idempotent; `installed()` is a context manager.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

_PATCHES: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, original, existed)
_in_ami_init: contextvars.ContextVar[bool] = contextvars.ContextVar("keyfix_in_ami_init", default=False)

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


def _patch(owner: Any, name: str, value: Any) -> None:
    existed = name in vars(owner) if isinstance(owner, type) else name in owner
    original = (vars(owner).get(name) if isinstance(owner, type) else owner.get(name)) if existed else None
    _PATCHES.append((owner, name, original, existed))
    if isinstance(owner, type):
        setattr(owner, name, value)
    else:
        owner[name] = value


def is_installed() -> bool:
    return bool(_PATCHES)


def install() -> None:
    """Fill the gaps (idempotent)."""
    if _PATCHES:
        return
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.ec2.models.amis import Ami, AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.amis import AmisResponse
    from moto.iam import models as iam_models
    from moto.kms.models import KmsBackend
    from moto.kms.responses import KmsResponse

    # -- EC2: AMIs keep their block device mappings --------------------------------
    _patch(AmisResponse, "register_image", _wrap_register_image(AmisResponse.register_image))
    _patch(AmiBackend, "create_image", _wrap_create_image(AmiBackend.create_image))
    _patch(Ami, "block_device_mappings", property(_wrap_ami_mappings(Ami.block_device_mappings.fget)))
    _patch(Ami, "__init__", _wrap_ami_init(Ami.__init__))
    # -- EBS: snapshots and volumes keep their key ------------------------------------
    _patch(EBSBackend, "create_snapshot", _wrap_create_snapshot(EBSBackend.create_snapshot))
    _patch(EBSBackend, "create_volume", _wrap_create_volume(EBSBackend.create_volume))
    if not hasattr(EC2Response, "get_ebs_default_kms_key_id"):
        _patch(EC2Response, "get_ebs_default_kms_key_id", _get_ebs_default_kms_key_id)
    if not hasattr(EC2Response, "reset_ebs_default_kms_key_id"):
        _patch(EC2Response, "reset_ebs_default_kms_key_id", _reset_ebs_default_kms_key_id)
    # -- Auto Scaling -------------------------------------------------------------------
    _patch(AutoScalingResponse, "describe_scaling_activities", _describe_scaling_activities)
    _patch(
        AutoScalingResponse,
        "create_auto_scaling_group",
        _wrap_create_auto_scaling_group(AutoScalingResponse.create_auto_scaling_group),
    )
    # -- IAM -------------------------------------------------------------------------------
    if iam_models.SERVICE_NAME_CONVERSION.get("spot") is None:
        _patch(iam_models.SERVICE_NAME_CONVERSION, "spot", "EC2Spot")
    # -- KMS -------------------------------------------------------------------------------
    _patch(KmsBackend, "create_alias", _wrap_create_alias(KmsBackend.create_alias))
    _patch(KmsResponse, "kms_backend", property(_wrap_kms_backend(KmsResponse.kms_backend.fget)))
    # -- CloudTrail ---------------------------------------------------------------------------
    if not hasattr(CloudTrailResponse, "lookup_events"):
        _patch(CloudTrailResponse, "lookup_events", _lookup_events)


def uninstall() -> None:
    while _PATCHES:
        owner, name, original, existed = _PATCHES.pop()
        if isinstance(owner, type):
            if existed:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
        elif existed:
            owner[name] = original
        else:
            owner.pop(name, None)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    already = is_installed()
    install()
    try:
        yield
    finally:
        if not already:
            uninstall()


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
# Auto Scaling


def _activities(backend: Any) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault("_keyfix_activities", [])


def _describe_scaling_activities(self: Any) -> Any:
    """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html:
    Activities, newest first, filtered by AutoScalingGroupName / ActivityIds, at most MaxRecords
    (default 100)."""
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("ActivityIds", []) or []
    limit = self._get_int_param("MaxRecords") or 100
    found = [
        a
        for a in reversed(_activities(self.autoscaling_backend))
        if (not name or a["AutoScalingGroupName"] == name) and (not ids or a["ActivityId"] in ids)
    ]
    return ActionResult({"Activities": found[:limit]})


def record_scaling_activity(
    group_name: str,
    *,
    account: str,
    region: str,
    status_code: str = "Failed",
    status_message: str = "",
    description: str | None = None,
    cause: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store one activity, shaped like API_Activity
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html)."""
    from moto.autoscaling.models import autoscaling_backends

    backend = autoscaling_backends[account][region]
    group = backend.autoscaling_groups.get(group_name)
    now = datetime.now(UTC)
    activity = {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group_name,
        "Description": description or "Launching a new EC2 instance.  Status Reason: " + status_message,
        "Cause": cause
        or f"At {now:%Y-%m-%dT%H:%M:%SZ} an instance was started in response to a difference between desired "
        "and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": now,
        "EndTime": now,
        "StatusCode": status_code,
        "StatusMessage": status_message,
        "Progress": 100,
        "Details": json.dumps(details or {"Subnet ID": "", "Availability Zone": f"{region}a"}),
    }
    if group is not None:
        activity["AutoScalingGroupARN"] = group.arn
    _activities(backend).append(activity)
    return activity


def _wrap_create_auto_scaling_group(original: Any) -> Any:
    """AWS creates AWSServiceRoleForAutoScaling the first time a group is created without a
    ServiceLinkedRoleARN; a given ServiceLinkedRoleARN is kept on the group
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html)."""

    def create_auto_scaling_group(self: Any) -> Any:
        result = original(self)
        group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
        role_arn = self._get_param("ServiceLinkedRoleARN")
        if group is not None and role_arn:
            group.service_linked_role_arn = role_arn
        elif group is not None:
            ensure_service_linked_role(self.current_account, "autoscaling.amazonaws.com", region=self.region)
        return result

    return create_auto_scaling_group


def ensure_service_linked_role(account: str, service: str, *, region: str = "us-east-1", suffix: str = "") -> Any:
    """Create a service-linked role the way AWS does on first use, unless it exists."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    iam = iam_backends[account][get_partition(region)]
    expected_path = f"/aws-service-role/{service}/"
    for existing in iam.roles.values():
        if existing.path != expected_path:
            continue
        if (suffix and existing.name.endswith("_" + suffix)) or (not suffix and "_" not in existing.name):
            return existing
    return iam.create_service_linked_role(service, f"Service-linked role for {service}", suffix)


# ---------------------------------------------------------------------------------------
# KMS


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


# ---------------------------------------------------------------------------------------
# CloudTrail event history
# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html and
# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_Event.html: Events
# [{EventId, EventName, ReadOnly, AccessKeyId, EventTime, EventSource, Username,
# Resources [{ResourceType, ResourceName}], CloudTrailEvent (the record as a JSON string)}],
# newest first, at most MaxResults (default and maximum 50).

_LOOKUP_KEYS = {
    "EventId": lambda e: [e["EventId"]],
    "EventName": lambda e: [e["EventName"]],
    "ReadOnly": lambda e: [e["ReadOnly"]],
    "Username": lambda e: [e.get("Username")],
    "ResourceType": lambda e: [r["ResourceType"] for r in e["Resources"]],
    "ResourceName": lambda e: [r["ResourceName"] for r in e["Resources"]],
    "EventSource": lambda e: [e["EventSource"]],
    "AccessKeyId": lambda e: [e.get("AccessKeyId")],
}


def _events(backend: Any) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault("_keyfix_events", [])


def _lookup_events(self: Any) -> str:
    body = json.loads(self.body or "{}")
    events = sorted(_events(self.cloudtrail_backend), key=lambda e: e["EventTime"], reverse=True)
    for attribute in body.get("LookupAttributes") or []:
        pick = _LOOKUP_KEYS.get(attribute.get("AttributeKey"))
        if pick is not None:
            events = [e for e in events if attribute.get("AttributeValue") in pick(e)]
    if body.get("StartTime") is not None:
        events = [e for e in events if e["EventTime"] >= float(body["StartTime"])]
    if body.get("EndTime") is not None:
        events = [e for e in events if e["EventTime"] <= float(body["EndTime"])]
    limit = min(int(body.get("MaxResults") or 50), 50)
    return json.dumps({"Events": [{k: v for k, v in e.items() if v is not None} for e in events[:limit]]})


def record_cloudtrail_event(
    record: dict[str, Any],
    *,
    account: str,
    region: str,
    resources: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Store one CloudTrail record (the `CloudTrailEvent` document) in the event history of
    `account`/`region`, with the LookupEvents summary fields derived from it."""
    from moto.cloudtrail.models import cloudtrail_backends

    record = dict(record)
    record.setdefault("eventVersion", "1.08")
    record.setdefault("eventID", str(uuid.uuid4()))
    record.setdefault("eventTime", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    record.setdefault("awsRegion", region)
    record.setdefault("recipientAccountId", account)
    identity = record.get("userIdentity") or {}
    when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    username = identity.get("userName") or (
        identity.get("arn", "").rsplit("/", 1)[-1] if identity.get("type") == "AssumedRole" else None
    )
    event = {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": str(bool(record.get("readOnly", False))).lower(),
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": when.timestamp(),
        "EventSource": record.get("eventSource"),
        "Username": username,
        "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
        "CloudTrailEvent": json.dumps(record),
    }
    _events(cloudtrail_backends[account][region]).append(event)
    return event


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
