"""Builders for the broken accounts of the seed cases (../shared/seeds/README.md), on moto.

Every builder works through the AWS API (boto3 against moto, in-process `mock_aws` or a
moto server: pass `endpoint_url`), with the gap layer installed (keyfix.sim.moto_gaps),
and returns what it built plus the `Incident` the failure would produce.

Accounts are chosen per request with moto's `x-moto-account-id` header
(keyfix.sim.accounts); MOTO_ACCOUNT_ID must not be set (it overrides the header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.events.incident import Caller, Denial, Incident
from keyfix.report import Trigger
from keyfix.sim import accounts, moto_gaps

REGION = "us-east-1"
AZ = "us-east-1a"
ASG_ACCOUNT = "111122223333"
KEY_ACCOUNT = "444455556666"
GROUP = "web-asg"
TEMPLATE = "web-lt"

# Catalog strings (../shared/realevents/_strings-and-facts-catalog.md, entries 1 and 6).
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


def _snapshot(env: Env, account: str, *, key_arn: str | None) -> str:
    ec2 = env.client("ec2", account)
    params: dict[str, Any] = {"Size": 8, "AvailabilityZone": AZ}
    if key_arn:
        params.update(Encrypted=True, KmsKeyId=key_arn)
    volume = ec2.create_volume(**params)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, Description="web root")["SnapshotId"]
    ec2.delete_volume(VolumeId=volume)
    return snapshot


def _image(env: Env, account: str, snapshot_id: str) -> str:
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
    return _image(env, account, _snapshot(env, account, key_arn=None))


def _group(env: Env, account: str, image_id: str, key_arn: str, service_linked_role_arn: str | None = None) -> tuple[str, str, str]:
    ec2 = env.client("ec2", account)
    template = ec2.create_launch_template(
        LaunchTemplateName=TEMPLATE,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "Encrypted": True,
                        "KmsKeyId": key_arn,
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


def build_a1(env: Env | None = None, account: str = ASG_ACCOUNT) -> AsgCase:
    """A1: same-account CMK whose key policy is only root delegation; the AMI's snapshot and
    the launch template's root volume are encrypted with it; group "web-asg"."""
    env = env or Env()
    kms = env.client("kms", account)
    key = kms.create_key(Policy=json.dumps(root_only_policy(account)), Description="web-asg EBS")["KeyMetadata"]
    kms.create_alias(AliasName="alias/web-ebs", TargetKeyId=key["KeyId"])
    snapshot = _snapshot(env, account, key_arn=key["Arn"])
    image = _image(env, account, snapshot)
    template, group_arn, slr = _group(env, account, image, key["Arn"])
    activity = moto_gaps.record_scaling_activity(
        GROUP, account=account, region=env.region, status_code="Cancelled", status_message=INVALID_STATE_MESSAGE
    )
    return AsgCase(account, env.region, key["Arn"], key["KeyId"], image, snapshot, template, GROUP, group_arn, slr, activity)


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
) -> AsgCase:
    """A2: the CMK is in `key_account`, its policy shares it with `account` (the documented
    statements), but nobody created the grant for the ASG's service-linked role. The launch
    template (in the ASG account) encrypts the root volume with that key; the AMI is the
    ASG account's own, unencrypted."""
    env = env or Env()
    key = env.client("kms", key_account).create_key(
        Policy=json.dumps(a2_key_policy(key_account, account, list_grants=list_grants)), Description="shared EBS key"
    )["KeyMetadata"]
    snapshot = _snapshot(env, account, key_arn=None)
    image = _image(env, account, snapshot)
    template, group_arn, slr = _group(env, account, image, key["Arn"])
    if grant_for_slr:
        # The documented fix, made from the ASG account.
        env.client("kms", account).create_grant(
            KeyId=key["Arn"],
            GranteePrincipal=slr,
            Operations=["Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"],
        )
    activity = moto_gaps.record_scaling_activity(
        GROUP, account=account, region=env.region, status_code="Cancelled", status_message=INVALID_STATE_MESSAGE
    )
    return AsgCase(account, env.region, key["Arn"], key["KeyId"], image, snapshot, template, GROUP, group_arn, slr, activity)


@dataclass
class UserCase:
    account: str
    region: str
    key_arn: str
    snapshot_id: str
    user_arn: str
    user_id: str
    volume_id: str = "vol-0b1c2d3e4f5a6b7c8"  # the id EBS gave the volume that failed

    def denied_incident(self, action: str = "kms:CreateGrant") -> Incident:
        message = (
            f"User: {self.user_arn} is not authorized to perform: {action} on resource: {self.key_arn} "
            f"because no resource-based policy allows the {action} action"
        )
        return Incident(
            trigger=Trigger.KMS_ACCESS_DENIED,
            event_id="evt-kms-1",
            source="aws.kms",
            detail_type="AWS API Call via CloudTrail",
            account=self.account,
            region=self.region,
            caller=Caller(type="IAMUser", arn=self.user_arn, account=self.account, principal_id=self.user_id),
            action=action,
            error_code="AccessDenied",
            error_message=message,
            denial=Denial.NO_RESOURCE_POLICY,
            encryption_context={"aws:ebs:id": self.volume_id},
            key_arns=(self.key_arn,),
            kms_related=True,
        )

    def volume_incident(self, *, key_arns: tuple[str, ...] | None = None, volume_id: str | None = None, cause: str = "") -> Incident:
        return Incident(
            trigger=Trigger.EBS_VOLUME_FAILURE,
            event_id="evt-ebs-1",
            source="aws.ec2",
            detail_type="EBS Volume Notification",
            account=self.account,
            region=self.region,
            volume_id=volume_id or self.volume_id,
            ebs_operation="createVolume",
            ebs_cause=cause,
            key_arns=(self.key_arn,) if key_arns is None else key_arns,
            kms_related=True,
        )


def b_key_policy(account: str) -> dict[str, Any]:
    """Key administrators only: no root delegation, no key users."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:role/KeyAdmin"},
                "Action": [
                    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                    "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
                ],
                "Resource": "*",
            }
        ],
    }


def build_b(env: Env | None = None, account: str = ASG_ACCOUNT, *, key_state: str = "Enabled") -> UserCase:
    """B: user dev-alice may create volumes, the snapshot is encrypted with a CMK whose key
    policy does not name her (and does not delegate to IAM)."""
    env = env or Env()
    iam = env.client("iam", account)
    iam.create_role(
        RoleName="KeyAdmin",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
        ),
    )
    user = iam.create_user(UserName="dev-alice")["User"]
    iam.put_user_policy(
        UserName="dev-alice",
        PolicyName="ebs-volumes",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["ec2:CreateVolume", "ec2:AttachVolume", "ec2:Describe*"], "Resource": "*"}
                ],
            }
        ),
    )
    kms = env.client("kms", account)
    key = kms.create_key(Policy=json.dumps(b_key_policy(account)), Description="team snapshots")["KeyMetadata"]
    snapshot = _snapshot(env, account, key_arn=key["Arn"])
    if key_state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    elif key_state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    return UserCase(account, env.region, key["Arn"], snapshot, user["Arn"], user["UserId"])


@dataclass
class InstanceCase:
    account: str
    region: str
    key_arn: str
    instance_id: str
    volume_id: str
    role_arn: str
    role_id: str
    policy_arn: str

    def incident(self, state: str = "stopped") -> Incident:
        return Incident(
            trigger=Trigger.EC2_LAUNCH_FAILURE,
            event_id="evt-ec2-1",
            source="aws.ec2",
            detail_type="EC2 Instance State-change Notification",
            account=self.account,
            region=self.region,
            instance_id=self.instance_id,
            instance_state=state,
        )


def ec2_full_access_document() -> dict[str, Any]:
    """AmazonEC2FullAccess as AWS publishes it (moto's copy); attached as a customer managed
    policy so the IAM backend need not load every AWS managed policy."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)["AmazonEC2FullAccess"]["Document"]


def build_c(
    env: Env | None = None,
    account: str = ASG_ACCOUNT,
    *,
    record_start: bool = True,
    state_code: str = "Client.InternalError",
    state_message: str = CLIENT_ERROR_ON_LAUNCH,
) -> InstanceCase:
    """C: role ec2-operator (full EC2 rights, nothing on KMS) starts an instance whose volume
    is encrypted with a CMK (default key policy: root delegation); the instance goes
    pending -> stopped with Client.InternalError; CloudTrail has the StartInstances call."""
    env = env or Env()
    iam = env.client("iam", account)
    role = iam.create_role(
        RoleName="ec2-operator",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
        ),
    )["Role"]
    policy = iam.create_policy(PolicyName="EC2FullAccess", PolicyDocument=json.dumps(ec2_full_access_document()))["Policy"]
    iam.attach_role_policy(RoleName="ec2-operator", PolicyArn=policy["Arn"])
    key = env.client("kms", account).create_key(Policy=json.dumps(root_only_policy(account)))["KeyMetadata"]
    ec2 = env.client("ec2", account)
    instance = ec2.run_instances(
        ImageId=plain_image(env, account),
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "KmsKeyId": key["Arn"], "VolumeSize": 8, "DeleteOnTermination": True}}
        ],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    volume_id = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    moto_gaps.fail_instance_launch(instance_id, account=account, region=env.region, code=state_code, message=state_message)
    if record_start:
        moto_gaps.record_cloudtrail_event(
            start_instances_record(account, env.region, role["Arn"], role["RoleId"], instance_id),
            account=account,
            region=env.region,
            resources=[("AWS::EC2::Instance", instance_id)],
        )
    return InstanceCase(account, env.region, key["Arn"], instance_id, volume_id, role["Arn"], role["RoleId"], policy["Arn"])


def start_instances_record(account: str, region: str, role_arn: str, role_id: str, instance_id: str) -> dict[str, Any]:
    """A StartInstances CloudTrail record made by an assumed-role session
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)."""
    session = "operator-session"
    return {
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StartInstances",
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/ec2-operator/{session}",
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": "ec2-operator",
                },
                "attributes": {"mfaAuthenticated": "false", "creationDate": "2024-01-01T00:00:00Z"},
            },
        },
        "requestParameters": {"instancesSet": {"items": [{"instanceId": instance_id}]}},
        "responseElements": {
            "instancesSet": {
                "items": [
                    {
                        "instanceId": instance_id,
                        "currentState": {"code": 0, "name": "pending"},
                        "previousState": {"code": 80, "name": "stopped"},
                    }
                ]
            }
        },
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }
