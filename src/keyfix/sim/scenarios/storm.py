"""Storms (issue #16): many Auto Scaling groups of seed case A1 sharing a few broken keys.

Every group launches from a template whose root volume (and the AMI's snapshot) is
encrypted with one of the keys; a key's policy is root delegation only, so the group's
service-linked role may not use it. `extra_key` gives a group a second encrypted volume
with another key, to show that a group broken for another reason is not hidden.
`launch_failure_event` is the EventBridge event one failed launch of a group sends, shaped
like events/asg-launch-cancelled-a1.json (Auto Scaling's "EC2 Instance Launch Unsuccessful":
https://docs.aws.amazon.com/autoscaling/ec2/userguide/automating-ec2-auto-scaling-with-eventbridge.html).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.sim.scenarios.common import (
    ASG_ACCOUNT,
    AZ,
    INVALID_STATE_MESSAGE,
    Env,
    make_snapshot,
    register_image,
    root_only_policy,
)

OPT_IN_TAG = {"TagKey": "keyfix:auto-remediate", "TagValue": "true"}


@dataclass
class StormGroup:
    name: str
    keys: list[str]  # the root volume's key first


@dataclass
class Storm:
    account: str
    region: str
    keys: list[str]
    groups: list[StormGroup] = field(default_factory=list)
    _images: dict[str, str] = field(default_factory=dict, repr=False)


def make_key(env: Env, account: str, name: str, *, opt_in: bool = True) -> str:
    """A customer managed key whose policy is root delegation only (seed case A1's)."""
    kms = env.client("kms", account)
    key = kms.create_key(Policy=json.dumps(root_only_policy(account)), Description=f"{name} EBS")["KeyMetadata"]
    if opt_in:
        kms.tag_resource(KeyId=key["Arn"], Tags=[OPT_IN_TAG])
    return key["Arn"]


def add_group(env: Env, storm: Storm, name: str, key_arn: str, extra_key: str | None = None) -> StormGroup:
    """Group `name` with launch template `name`-lt: root volume (and the AMI's snapshot) with
    `key_arn`, and, with `extra_key`, a second volume encrypted with it."""
    image = storm._images.get(key_arn)
    if image is None:
        image = storm._images[key_arn] = register_image(env, storm.account,
                                                        make_snapshot(env, storm.account, key_arn=key_arn))
    ebs = {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}
    mappings = [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "KmsKeyId": key_arn, **ebs}}]
    if extra_key:
        mappings.append({"DeviceName": "/dev/xvdb", "Ebs": {"Encrypted": True, "KmsKeyId": extra_key, **ebs}})
    ec2 = env.client("ec2", storm.account)
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro", "BlockDeviceMappings": mappings})
    env.client("autoscaling", storm.account).create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Default"},
        MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=[AZ])
    group = StormGroup(name, [key_arn] + ([extra_key] if extra_key else []))
    storm.groups.append(group)
    return group


def build_storm(env: Env, *, groups: int, keys: int, account: str = ASG_ACCOUNT) -> Storm:
    """`groups` groups over `keys` opted-in broken keys, group i on key i mod `keys`."""
    storm = Storm(account, env.region, [make_key(env, account, f"storm-{k}") for k in range(keys)])
    for i in range(groups):
        add_group(env, storm, f"storm-asg-{i:03d}", storm.keys[i % keys])
    return storm


def launch_failure_event(account: str, region: str, group_name: str, event_id: str,
                         status_message: str = INVALID_STATE_MESSAGE) -> dict[str, Any]:
    """One failed launch of `group_name`, as EventBridge delivers it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "EC2 Instance Launch Unsuccessful",
        "source": "aws.autoscaling",
        "account": account,
        "time": "2025-03-14T09:13:20Z",
        "region": region,
        "resources": [
            f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:5f6e7d8c-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
            f":autoScalingGroupName/{group_name}",
            f"arn:aws:ec2:{region}:{account}:instance/i-0a1b2c3d4e5f6a7b9",
        ],
        "detail": {
            "StatusCode": "Cancelled",
            "AutoScalingGroupName": group_name,
            "ActivityId": "b2e4d3c5-1c6f-7a8b-9c0d-1e2f3a4b5c6d",
            "Details": {"Availability Zone": AZ, "Subnet ID": "subnet-0a1b2c3d4e5f60718"},
            "RequestId": "b2e4d3c5-1c6f-7a8b-9c0d-1e2f3a4b5c6d",
            "StatusMessage": status_message,
            "EndTime": "2025-03-14T09:13:20Z",
            "EC2InstanceId": "i-0a1b2c3d4e5f6a7b9",
            "StartTime": "2025-03-14T09:12:44.102Z",
            "Cause": "At 2025-03-14T09:12:03Z an instance was started in response to a difference between "
                     "desired and actual capacity, increasing the capacity from 0 to 2.",
        },
    }
