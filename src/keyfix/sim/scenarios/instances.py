"""Seed cases B (002) and C (003): a user who may not use a snapshot's key, and a role with
full EC2 rights whose instance stops on start because it may not create a grant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keyfix.events.incident import Caller, Denial, Incident
from keyfix.report import Trigger
from keyfix.sim import moto_gaps
from keyfix.sim.scenarios.common import (
    ASG_ACCOUNT,
    CLIENT_ERROR_ON_LAUNCH,
    Env,
    make_snapshot,
    plain_image,
    root_only_policy,
)

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
    snapshot = make_snapshot(env, account, key_arn=key["Arn"])
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
    launch_failed: bool = True,
) -> InstanceCase:
    """C: role ec2-operator (full EC2 rights, nothing on KMS) starts an instance whose volume
    is encrypted with a CMK (default key policy: root delegation); the instance goes
    pending -> stopped with Client.InternalError; CloudTrail has the StartInstances call.
    `launch_failed=False` builds the account only: the instance is simply stopped and nobody
    has started it yet (the demo makes the start fail itself)."""
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
    if not launch_failed:
        ec2.stop_instances(InstanceIds=[instance_id])
        return InstanceCase(account, env.region, key["Arn"], instance_id, volume_id, role["Arn"], role["RoleId"], policy["Arn"])
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
