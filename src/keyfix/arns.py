"""ARN arithmetic and the principal names keyfix reasons about; no AWS calls.

ARN format: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
IAM identifiers (paths, unique ids): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Auto Scaling's default service-linked role and its custom-suffix variants.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
ASG_SLR_NAME = "AWSServiceRoleForAutoScaling"
ASG_SLR_SERVICE = "autoscaling.amazonaws.com"
# Spot Instances requested through a launch configuration are launched by EC2 Spot's
# service-linked role, which the key policy must name instead.
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
SPOT_SLR_NAME = "AWSServiceRoleForEC2Spot"
SPOT_SLR_SERVICE = "spot.amazonaws.com"


class ArnError(ValueError):
    pass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str  # everything after the account, e.g. "key/1234", "role/path/name"

    @classmethod
    def parse(cls, text: str) -> Arn:
        parsed = parse_arn(text)
        if parsed is None:
            raise ArnError(f"not an ARN: {text!r}")
        return parsed

    @property
    def resource_type(self) -> str:
        return self.resource.split("/", 1)[0].split(":", 1)[0] if ("/" in self.resource or ":" in self.resource) else ""

    @property
    def resource_id(self) -> str:
        """What follows the resource type: a key id, a role's path and name."""
        return self.resource.split("/", 1)[1] if "/" in self.resource else self.resource

    @property
    def name(self) -> str:
        """Last path segment: the user, role, key or alias name without its path."""
        return self.resource.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(value: str | None) -> Arn | None:
    if not value or not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, region, account, resource = parts
    return Arn(partition, service, region, account, resource)


@functools.lru_cache(maxsize=64)
def partition_of(region: str | None) -> str:
    """The partition of a Region, from botocore's own endpoint data (aws, aws-cn,
    aws-us-gov, aws-iso, aws-iso-b, ...: https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html),
    matched by each partition's Region list and pattern. botocore is imported here, not at
    module import: the handler's cold start pays for it only when an ARN is built. A Region
    no partition knows (or none) is taken as "aws", the partition of the commercial Regions."""
    if not region:
        return "aws"
    import botocore.session
    from botocore.exceptions import UnknownRegionError

    try:
        return botocore.session.get_session().get_partition_for_region(region)
    except UnknownRegionError:
        return "aws"


def account_of(arn: str | None) -> str | None:
    parsed = parse_arn(arn)
    return parsed.account or None if parsed else None


# arn:PARTITION:autoscaling:REGION:ACCOUNT:autoScalingGroup:UUID:autoScalingGroupName/NAME
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html,
# resource type autoScalingGroup). A group name may itself hold "/" and ":", so the name is
# everything after the first marker.
GROUP_NAME_MARKER = ":autoScalingGroupName/"


def group_name_of(resource: str | None) -> str | None:
    """The Auto Scaling group name in a group ARN; None for any other resource."""
    if not resource or GROUP_NAME_MARKER not in resource:
        return None
    return resource.split(GROUP_NAME_MARKER, 1)[1] or None


def root_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:root"


def slr_arn(account: str, region: str | None, name: str = ASG_SLR_NAME, service: str = ASG_SLR_SERVICE) -> str:
    return f"arn:{partition_of(region)}:iam::{account}:role/aws-service-role/{service}/{name}"


def is_service_linked_role(arn: str | None) -> bool:
    """Service-linked roles live under the path /aws-service-role/<service>/
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html)."""
    parsed = parse_arn(arn)
    return bool(parsed and parsed.service == "iam" and parsed.resource.startswith("role/aws-service-role/"))


# A custom suffix is part of a role name: IAM role names are [\w+=,.@-], at most 64 characters.
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html (CustomSuffix)
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName)
_ROLE_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_ACCOUNT_ID_RE = re.compile(r"\d{12}", re.ASCII)


def slr_service(arn: str | None, *, account: str | None = None, partition: str | None = None) -> str | None:
    """The service of an Auto Scaling or EC2 Spot service-linked role ARN, else None:
    the only roles keyfix may grant to without an allow-list.

    Strict: exactly `arn:<partition>:iam::<12 digits>:role/aws-service-role/<service>/<name>`,
    nothing before or after, and - when given - this account and this partition. A
    look-alike (an extra path segment, another account or partition) is an ordinary role."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "iam" or parsed.region or not _ACCOUNT_ID_RE.fullmatch(parsed.account):
        return None
    if (account is not None and parsed.account != account) or (partition is not None and parsed.partition != partition):
        return None
    parts = parsed.resource.split("/")
    if len(parts) != 4 or parts[:2] != ["role", "aws-service-role"] or not _ROLE_NAME_RE.fullmatch(parts[3]):
        return None
    service, name = parts[2], parts[3]
    if service == ASG_SLR_SERVICE and (name == ASG_SLR_NAME or name.startswith(ASG_SLR_NAME + "_")):
        return service
    if service == SPOT_SLR_SERVICE and name == SPOT_SLR_NAME:
        return service
    return None


def default_slr_name(service: str) -> str | None:
    """The name CreateServiceLinkedRole gives without a custom suffix."""
    return {ASG_SLR_SERVICE: ASG_SLR_NAME, SPOT_SLR_SERVICE: SPOT_SLR_NAME}.get(service)


def iam_arn_for_session(session_arn: str) -> str:
    """The IAM role ARN behind an `assumed-role` session ARN; anything else unchanged.

    The session ARN carries no path (arn:aws:sts::A:assumed-role/NAME/SESSION); the
    Auto Scaling and EC2 Spot service-linked roles have fixed paths, so their ARN is exact.
    Other roles get a path-less ARN; `resolve.iam.read_principal` replaces it with IAM's.
    """
    parsed = parse_arn(session_arn)
    if parsed is None or parsed.service != "sts" or not parsed.resource.startswith("assumed-role/"):
        return session_arn
    role_name = parsed.resource.split("/")[1]
    if role_name == ASG_SLR_NAME or role_name.startswith(ASG_SLR_NAME + "_"):
        return f"arn:{parsed.partition}:iam::{parsed.account}:role/aws-service-role/{ASG_SLR_SERVICE}/{role_name}"
    if role_name == SPOT_SLR_NAME:
        return f"arn:{parsed.partition}:iam::{parsed.account}:role/aws-service-role/{SPOT_SLR_SERVICE}/{role_name}"
    return f"arn:{parsed.partition}:iam::{parsed.account}:role/{role_name}"


def identity_holder(arn: str) -> tuple[str, str]:
    """("role" | "user", name without path) of the identity an inline policy attaches to.
    Raises ArnError (a ValueError) for anything else."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "iam" or parsed.resource_type not in ("role", "user"):
        raise ArnError(f"identity policies attach to roles and users, not {arn}")
    return parsed.resource_type, parsed.name


def key_ref_account_region(key_ref: str) -> tuple[str | None, str | None]:
    """Account and region a key reference names, when it is an ARN (key or alias)."""
    parsed = parse_arn(key_ref)
    if parsed is None:
        return None, None
    return parsed.account, parsed.region


def via_service(service_host: str, region: str) -> str:
    """The kms:ViaService value for a service: `<service>.<region>.amazonaws.com`
    (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
    Amazon EBS calls KMS through EC2, so its value is ec2.<region>.amazonaws.com."""
    prefix = service_host.split(".", 1)[0]
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{prefix}.{region}.{suffix}"
