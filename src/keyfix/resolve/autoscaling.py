"""Auto Scaling reads: the group, what it launches from, and who launches for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyfix.arns import SPOT_SLR_NAME, SPOT_SLR_SERVICE, slr_arn
from keyfix.resolve.gateway import AwsError, AwsGateway


@dataclass(frozen=True)
class LaunchSource:
    """One thing a group launches from: a launch template version or a launch configuration."""

    template: dict[str, Any] | None = None  # LaunchTemplateSpecification
    configuration: str | None = None  # LaunchConfigurationName

    def key(self) -> tuple[Any, ...]:
        if self.template is not None:
            t = self.template
            return ("lt", t.get("LaunchTemplateId") or t.get("LaunchTemplateName"), str(t.get("Version") or "$Default"))
        return ("lc", self.configuration)


def describe_group(gw: AwsGateway, region: str, name: str, notes: list[str]) -> dict[str, Any] | None:
    """DescribeAutoScalingGroups (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html)."""
    try:
        groups = gw.read("autoscaling", "DescribeAutoScalingGroups", region=region, AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
    except AwsError as err:
        notes.append(f"Auto Scaling group {name}: {err.reason()}")
        return None
    for group in groups:
        if group.get("AutoScalingGroupName") == name:
            return group
    notes.append(f"Auto Scaling group {name} not found (deleted since the event?)")
    return None


def launch_sources(group: dict[str, Any]) -> list[LaunchSource]:
    """LaunchTemplate, LaunchConfigurationName, or MixedInstancesPolicy's template and the
    per-instance-type template overrides
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_MixedInstancesPolicy.html,
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateOverrides.html)."""
    sources: list[LaunchSource] = []
    if group.get("LaunchTemplate"):
        sources.append(LaunchSource(template=group["LaunchTemplate"]))
    if group.get("LaunchConfigurationName"):
        sources.append(LaunchSource(configuration=group["LaunchConfigurationName"]))
    mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    if mixed.get("LaunchTemplateSpecification"):
        sources.append(LaunchSource(template=mixed["LaunchTemplateSpecification"]))
    for override in mixed.get("Overrides") or []:
        if override.get("LaunchTemplateSpecification"):
            sources.append(LaunchSource(template=override["LaunchTemplateSpecification"]))
    unique: dict[tuple[Any, ...], LaunchSource] = {}
    for source in sources:
        unique.setdefault(source.key(), source)
    return list(unique.values())


def launch_configuration(gw: AwsGateway, region: str, name: str, notes: list[str]) -> dict[str, Any] | None:
    """DescribeLaunchConfigurations. Its BlockDeviceMappings carry Encrypted but never a key
    (a launch configuration cannot name a KMS key:
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Ebs.html)."""
    try:
        found = gw.read(
            "autoscaling", "DescribeLaunchConfigurations", region=region, LaunchConfigurationNames=[name]
        )["LaunchConfigurations"]
    except AwsError as err:
        notes.append(f"launch configuration {name}: {err.reason()}")
        return None
    if not found:
        notes.append(f"launch configuration {name} not found")
        return None
    return found[0]


def service_linked_role(group: dict[str, Any], account: str, region: str, spot_launch_configuration: bool) -> str:
    """The role Auto Scaling launches with: the group's ServiceLinkedRoleARN (default or a
    custom suffix AWSServiceRoleForAutoScaling_<suffix>), or AWSServiceRoleForEC2Spot for
    Spot Instances requested through a launch configuration
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html,
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html)."""
    if spot_launch_configuration:
        return slr_arn(account, region, SPOT_SLR_NAME, SPOT_SLR_SERVICE)
    return group.get("ServiceLinkedRoleARN") or slr_arn(account, region)
