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
| Security Hub BatchUpdateFindings not implemented (no route either) | `securityhub._batch_update_findings` | BatchUpdateFindings |

Not filled (documented, not needed by keyfix's resolver): CopySnapshot/CopyImage key rules,
RunInstances ignoring the AMI's mappings, AMIs and snapshots shared across accounts, IAM
policy evaluation (moto does not enforce IAM unless asked), UpdateAutoScalingGroup's
ServiceLinkedRoleARN, pagination of the filled Describe/Lookup calls.

`install()` / `uninstall()` are idempotent; `installed()` is a context manager. The fills live
one module per service: `ec2` (AMI mappings, snapshots, volumes, EBS default key, launch
failures), `autoscaling`, `kms`, `cloudtrail`, `iam` (service-linked roles).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from keyfix.sim.moto_gaps.autoscaling import (
    _describe_scaling_activities,
    _wrap_create_auto_scaling_group,
    record_scaling_activity,
)
from keyfix.sim.moto_gaps.cloudtrail import _lookup_events, record_cloudtrail_event
from keyfix.sim.moto_gaps.ec2 import (
    _get_ebs_default_kms_key_id,
    _reset_ebs_default_kms_key_id,
    _wrap_ami_init,
    _wrap_ami_mappings,
    _wrap_create_image,
    _wrap_create_snapshot,
    _wrap_create_volume,
    _wrap_register_image,
    fail_instance_launch,
)
from keyfix.sim.moto_gaps.iam import ensure_service_linked_role
from keyfix.sim.moto_gaps.kms import (
    KMS_CROSS_ACCOUNT_OPERATIONS,
    _wrap_create_alias,
    _wrap_kms_backend,
    aws_ebs_key_policy,
)

__all__ = [
    "KMS_CROSS_ACCOUNT_OPERATIONS",
    "aws_ebs_key_policy",
    "ensure_service_linked_role",
    "fail_instance_launch",
    "install",
    "installed",
    "is_installed",
    "record_cloudtrail_event",
    "record_scaling_activity",
    "uninstall",
]

_PATCHES: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, original, existed)


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
    # -- Security Hub -------------------------------------------------------------------------
    from moto.securityhub import urls as securityhub_urls
    from moto.securityhub.responses import SecurityHubResponse

    from keyfix.sim.moto_gaps import securityhub

    if not hasattr(SecurityHubResponse, "batch_update_findings"):
        _patch(SecurityHubResponse, "batch_update_findings", securityhub._batch_update_findings)
        _patch(securityhub_urls.url_paths, securityhub.URL_PATH, SecurityHubResponse.dispatch)


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
