"""ARN parsing and the principal names keyfix reasons about.

ARN format: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
"""

from __future__ import annotations

from dataclasses import dataclass

# Service-linked roles EC2 Auto Scaling uses; a group may name a custom suffix.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
ASG_SERVICE = "autoscaling.amazonaws.com"
ASG_SLR_NAME = "AWSServiceRoleForAutoScaling"
# Spot Instances requested through a launch configuration use the EC2 Spot SLR.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
SPOT_SERVICE = "spot.amazonaws.com"
SPOT_SLR_NAME = "AWSServiceRoleForEC2Spot"


class ArnError(ValueError):
    pass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn:
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ArnError(f"not an ARN: {text!r}")
        return cls(*parts[1:])

    @property
    def resource_type(self) -> str:
        return self.resource.split("/", 1)[0] if "/" in self.resource else ""

    @property
    def resource_id(self) -> str:
        return self.resource.split("/", 1)[1] if "/" in self.resource else self.resource

    @property
    def name(self) -> str:
        """Last path element: the user, role or key name without its path."""
        return self.resource.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def account_of(arn: str) -> str | None:
    try:
        return Arn.parse(arn).account or None
    except ArnError:
        return None


def slr_arn(account: str, service: str = ASG_SERVICE, name: str = ASG_SLR_NAME, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/aws-service-role/{service}/{name}"


def slr_service(arn: str) -> str | None:
    """The service of an Auto Scaling or EC2 Spot service-linked role ARN, else None."""
    try:
        parsed = Arn.parse(arn)
    except ArnError:
        return None
    if parsed.service != "iam" or not parsed.resource.startswith("role/aws-service-role/"):
        return None
    _, _, service, name = (parsed.resource.split("/") + ["", "", "", ""])[:4]
    if service == ASG_SERVICE and (name == ASG_SLR_NAME or name.startswith(ASG_SLR_NAME + "_")):
        return service
    if service == SPOT_SERVICE and name == SPOT_SLR_NAME:
        return service
    return None


def root_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:root"
