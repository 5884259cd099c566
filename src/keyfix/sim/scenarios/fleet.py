"""A simulated account with many groups, for `keyfix scan`, the sweep and key-change checks.

Each group has its own launch template whose root volume uses the group's key (or none).
`slr_key_policy` is the documented key policy that lets the Auto Scaling service-linked
role launch with the key
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.arns import slr_arn
from keyfix.sim.scenarios.common import ASG_ACCOUNT, AZ, Env, plain_image, root_only_policy


def slr_key_policy(account: str, region: str) -> dict[str, Any]:
    """Root delegation plus the two statements of the Auto Scaling user guide for the
    service-linked role: use of the key, and grants for AWS resources."""
    role = slr_arn(account, region)
    policy = root_only_policy(account)
    policy["Statement"] += [
        {"Sid": "Allow service-linked role use of the customer managed key", "Effect": "Allow",
         "Principal": {"AWS": role},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*"},
        {"Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": role},
         "Action": ["kms:CreateGrant"], "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}},
    ]
    return policy


@dataclass
class Fleet:
    account: str
    region: str
    image_id: str
    keys: dict[str, str] = field(default_factory=dict)  # label -> key ARN
    groups: dict[str, str] = field(default_factory=dict)  # group name -> group ARN
    templates: dict[str, str] = field(default_factory=dict)  # group name -> launch template id


def make_key(env: Env, account: str, *, healthy: bool, description: str = "fleet key") -> str:
    policy = slr_key_policy(account, env.region) if healthy else root_only_policy(account)
    return env.client("kms", account).create_key(Policy=json.dumps(policy), Description=description)["KeyMetadata"]["Arn"]


def add_group(env: Env, fleet: Fleet, name: str, key_arn: str | None) -> str:
    ec2 = env.client("ec2", fleet.account)
    encryption = {"Encrypted": True, "KmsKeyId": key_arn} if key_arn else {"Encrypted": False}
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": fleet.image_id, "InstanceType": "t3.micro", "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {**encryption, "VolumeSize": 8, "VolumeType": "gp3"}}]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg = env.client("autoscaling", fleet.account)
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=0,
                                  AvailabilityZones=[AZ],
                                  LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"})
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["AutoScalingGroupARN"]
    fleet.groups[name], fleet.templates[name] = arn, template
    return arn


def build_mixed(env: Env | None = None, account: str = ASG_ACCOUNT) -> Fleet:
    """Four groups: `healthy-asg` (its key lets the role in), `broken-asg` (root-only key
    policy: seed A1), `disabled-asg` (a healthy policy on a disabled key), `plain-asg`
    (no encryption)."""
    env = env or Env()
    fleet = Fleet(account, env.region, plain_image(env, account))
    fleet.keys["healthy"] = make_key(env, account, healthy=True)
    fleet.keys["broken"] = make_key(env, account, healthy=False)
    fleet.keys["disabled"] = make_key(env, account, healthy=True)
    env.client("kms", account).disable_key(KeyId=fleet.keys["disabled"].rsplit("/", 1)[-1])  # moto takes ids only
    add_group(env, fleet, "healthy-asg", fleet.keys["healthy"])
    add_group(env, fleet, "broken-asg", fleet.keys["broken"])
    add_group(env, fleet, "disabled-asg", fleet.keys["disabled"])
    add_group(env, fleet, "plain-asg", None)
    return fleet


def build_many(env: Env | None = None, account: str = ASG_ACCOUNT, *, count: int = 300,
               broken_every: int = 50) -> Fleet:
    """`count` groups "g-0000"... sharing two keys and one launch template per group; every
    `broken_every`-th group uses the root-only key."""
    env = env or Env()
    fleet = Fleet(account, env.region, plain_image(env, account))
    fleet.keys["healthy"] = make_key(env, account, healthy=True)
    fleet.keys["broken"] = make_key(env, account, healthy=False)
    for i in range(count):
        add_group(env, fleet, f"g-{i:04d}", fleet.keys["broken" if i % broken_every == 0 else "healthy"])
    return fleet
