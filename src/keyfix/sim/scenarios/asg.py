"""Seed case A (docs/seed-cases.md, 000/001/004): an Auto Scaling group whose launches
need a customer managed key its service-linked role may not use.

A1: the key is in the group's account and its policy does not name the role. A2: the key
is in another account that shares it; nobody created the grant for the role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.events.incident import Incident
from keyfix.report import Trigger
from keyfix.sim import moto_gaps
from keyfix.sim.scenarios.common import (
    ASG_ACCOUNT,
    AZ,
    GROUP,
    INVALID_STATE_MESSAGE,
    KEY_ACCOUNT,
    TEMPLATE,
    USE_ACTIONS,
    Env,
    register_image,
    make_snapshot,
    root_only_policy,
)

@dataclass
class AsgCase:
    account: str
    region: str
    key_arn: str
    key_id: str
    image_id: str
    snapshot_id: str
    template_id: str
    group_name: str
    group_arn: str
    slr_arn: str
    activity: dict[str, Any] = field(default_factory=dict)

    def incident(self, *, kms_related: bool | None = True, status_message: str = INVALID_STATE_MESSAGE) -> Incident:
        return Incident(
            trigger=Trigger.ASG_LAUNCH_FAILURE,
            event_id="evt-asg-1",
            source="aws.autoscaling",
            detail_type="EC2 Instance Launch Unsuccessful",
            account=self.account,
            region=self.region,
            group_name=self.group_name,
            activity_id=self.activity.get("ActivityId"),
            status_code="Cancelled",
            status_message=status_message,
            kms_related=kms_related,
        )



def make_group(env: Env, account: str, image_id: str, key_arn: str | None,
               service_linked_role_arn: str | None = None) -> tuple[str, str, str]:
    """Launch template "web-lt" (root volume encrypted with `key_arn`; None: not encrypted)
    and group "web-asg" using it; returns (template id, group ARN, service-linked role ARN)."""
    ec2 = env.client("ec2", account)
    encryption = {"Encrypted": True, "KmsKeyId": key_arn} if key_arn else {"Encrypted": False}
    template = ec2.create_launch_template(
        LaunchTemplateName=TEMPLATE,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        **encryption,
                        "VolumeSize": 8,
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg = env.client("autoscaling", account)
    params: dict[str, Any] = {
        "AutoScalingGroupName": GROUP,
        "LaunchTemplate": {"LaunchTemplateName": TEMPLATE, "Version": "$Default"},
        "MinSize": 0,
        "MaxSize": 2,
        "DesiredCapacity": 0,
        "AvailabilityZones": [AZ],
    }
    if service_linked_role_arn:
        params["ServiceLinkedRoleARN"] = service_linked_role_arn
    asg.create_auto_scaling_group(**params)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return template, group["AutoScalingGroupARN"], group["ServiceLinkedRoleARN"]


def build_a1(env: Env | None = None, account: str = ASG_ACCOUNT, *, record_failure: bool = True) -> AsgCase:
    """A1: same-account CMK whose key policy is only root delegation; the AMI's snapshot and
    the launch template's root volume are encrypted with it; group "web-asg".
    `record_failure=False` builds the account only: no launch has failed yet (the demo makes
    the launch fail itself)."""
    env = env or Env()
    kms = env.client("kms", account)
    key = kms.create_key(Policy=json.dumps(root_only_policy(account)), Description="web-asg EBS")["KeyMetadata"]
    kms.create_alias(AliasName="alias/web-ebs", TargetKeyId=key["KeyId"])
    snapshot = make_snapshot(env, account, key_arn=key["Arn"])
    image = register_image(env, account, snapshot)
    template, group_arn, slr = make_group(env, account, image, key["Arn"])
    activity = _failed_launch(env, account) if record_failure else {}
    return AsgCase(account, env.region, key["Arn"], key["KeyId"], image, snapshot, template, GROUP, group_arn, slr, activity)


def _failed_launch(env: Env, account: str) -> dict[str, Any]:
    return moto_gaps.record_scaling_activity(
        GROUP, account=account, region=env.region, status_code="Cancelled", status_message=INVALID_STATE_MESSAGE
    )


def a2_key_policy(key_account: str, asg_account: str, *, list_grants: bool = False) -> dict[str, Any]:
    """The key owner's policy of the documented cross-account setup: the ASG account may use
    the key and create grants (no GrantIsForAWSResource condition, so a principal there can
    create the grant for the service-linked role)."""
    external = USE_ACTIONS + (["kms:ListGrants"] if list_grants else [])
    policy = root_only_policy(key_account)
    policy["Statement"] += [
        {
            "Sid": f"Allow external account {asg_account} use of the customer managed key",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{asg_account}:root"},
            "Action": external,
            "Resource": "*",
        },
        {
            "Sid": f"Allow attachment of persistent resources in external account {asg_account}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{asg_account}:root"},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
        },
    ]
    return policy


def build_a2(
    env: Env | None = None,
    account: str = ASG_ACCOUNT,
    key_account: str = KEY_ACCOUNT,
    *,
    list_grants: bool = False,
    grant_for_slr: bool = False,
    record_failure: bool = True,
) -> AsgCase:
    """A2: the CMK is in `key_account`, its policy shares it with `account` (the documented
    statements), but nobody created the grant for the ASG's service-linked role. The launch
    template (in the ASG account) encrypts the root volume with that key; the AMI is the
    ASG account's own, unencrypted."""
    env = env or Env()
    key = env.client("kms", key_account).create_key(
        Policy=json.dumps(a2_key_policy(key_account, account, list_grants=list_grants)), Description="shared EBS key"
    )["KeyMetadata"]
    snapshot = make_snapshot(env, account, key_arn=None)
    image = register_image(env, account, snapshot)
    template, group_arn, slr = make_group(env, account, image, key["Arn"])
    if grant_for_slr:
        # The documented fix, made from the ASG account.
        env.client("kms", account).create_grant(
            KeyId=key["Arn"],
            GranteePrincipal=slr,
            Operations=["Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"],
        )
    activity = _failed_launch(env, account) if record_failure else {}
    return AsgCase(account, env.region, key["Arn"], key["KeyId"], image, snapshot, template, GROUP, group_arn, slr, activity)

