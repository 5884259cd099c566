"""Shared pieces of the seed-case builders: identifiers, catalogue strings, the default key
policy, where builders act (`Env`), and the snapshots and images they start from.

Every builder works through the AWS API (boto3 against moto: in-process `mock_aws` or a
moto server, pass `endpoint_url`), with the gap layer installed (keyfix.sim.moto_gaps).
Accounts are chosen per request with moto's `x-moto-account-id` header
(keyfix.sim.accounts); MOTO_ACCOUNT_ID must not be set (it overrides the header).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyfix.sim import accounts

REGION = "us-east-1"
AZ = "us-east-1a"
ASG_ACCOUNT = "111122223333"
KEY_ACCOUNT = "444455556666"
GROUP = "web-asg"
TEMPLATE = "web-lt"

# Catalog strings (tests/fixtures/realevents/_strings-and-facts-catalog.md, entries 1 and 6).
INVALID_STATE_MESSAGE = (
    "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
    "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
)
CLIENT_ERROR_ON_LAUNCH = "Client.InternalError: Client error on launch"

# The five use actions and the grant statement of the Auto Scaling documentation
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def root_only_policy(account: str) -> dict[str, Any]:
    """The default key policy: the account root, i.e. delegation to IAM
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html)."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


@dataclass
class Env:
    """Where builders act: region and, for a moto server, its endpoint."""

    region: str = REGION
    endpoint_url: str | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, account: str) -> Any:
        found = self._clients.get((service, account))
        if found is None:
            kwargs = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
            found = self._clients[(service, account)] = accounts.client(service, account, self.region, **kwargs)
        return found



def make_snapshot(env: Env, account: str, *, key_arn: str | None) -> str:
    ec2 = env.client("ec2", account)
    params: dict[str, Any] = {"Size": 8, "AvailabilityZone": AZ}
    if key_arn:
        params.update(Encrypted=True, KmsKeyId=key_arn)
    volume = ec2.create_volume(**params)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, Description="web root")["SnapshotId"]
    ec2.delete_volume(VolumeId=volume)
    return snapshot


def register_image(env: Env, account: str, snapshot_id: str) -> str:
    return env.client("ec2", account).register_image(
        Name="web-ami",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        Architecture="x86_64",
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True},
            }
        ],
    )["ImageId"]


def plain_image(env: Env, account: str) -> str:
    """An AMI whose root snapshot (/dev/xvda) is unencrypted."""
    return register_image(env, account, make_snapshot(env, account, key_arn=None))

