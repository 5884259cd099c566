"""EBS and EC2 scenarios: b (a user not in the key policy creates a volume from an encrypted
snapshot), c (a role with full EC2 rights starts an instance and lacks kms:CreateGrant) and
pending-deletion (a volume whose key is scheduled for deletion cannot be attached).
"""

from __future__ import annotations

import json
import secrets

from keyfix.demo import aws_calls, cloudtrail, eventbridge
from keyfix.demo.authorize import Authorizer
from keyfix.demo.scenario import Attempt, Expected, ExpectedFix, Scenario, tag_for_keyfix
from keyfix.sim import moto_gaps
from keyfix.sim.scenarios import (
    ASG_ACCOUNT,
    AZ,
    CLIENT_ERROR_ON_LAUNCH,
    REGION,
    Env,
    build_b,
    build_c,
    plain_image,
    root_only_policy,
    start_instances_record,
)

OPERATOR_ROLE_ARN = f"arn:aws:iam::{ASG_ACCOUNT}:role/ec2-operator"


class B(Scenario):
    name, title, seed = "b", "user creates a volume from an encrypted snapshot", "B (002)"

    def build(self, env: Env) -> list[str]:
        case = build_b(env)
        self.key_arn, self.snapshot_id, self.user_arn, self.user_id = (case.key_arn, case.snapshot_id, case.user_arn,
                                                                        case.user_id)
        tag_for_keyfix(env, case.key_arn)
        return [f"snapshot {case.snapshot_id} is encrypted with key {case.key_arn}",
                "the key policy names only the KeyAdmin role: no key users, no delegation to IAM",
                f"user dev-alice may create volumes (ec2:CreateVolume) but is not in the key policy"]

    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        # EBS names the volume before it asks KMS for its data key (aws:ebs:id, ct-ec2one.html).
        volume_id = "vol-" + secrets.token_hex(9)[:17]
        calls = aws_calls.create_volume_from_snapshot(self.user_arn, self.key_arn, volume_id, REGION)
        verdicts = authorizer.until_refused(calls)
        operation = f"dev-alice creates a volume from {self.snapshot_id}"
        refused = next((v for v in verdicts if not v.allowed), None)
        if refused is None:
            volume = env.client("ec2", ASG_ACCOUNT).create_volume(SnapshotId=self.snapshot_id, AvailabilityZone=AZ)
            return Attempt(operation, verdicts, True, f"{volume['VolumeId']} is available")
        record = cloudtrail.kms_refused(refused.call, cloudtrail.user_identity(self.user_arn, self.user_id), REGION,
                                        refused.error()[1])
        record["requestParameters"]["encryptionContext"] = {"aws:ebs:id": volume_id}
        moto_gaps.record_cloudtrail_event(record, account=ASG_ACCOUNT, region=REGION,
                                          resources=[("AWS::KMS::Key", self.key_arn)])
        return Attempt(operation, verdicts, False, f"{volume_id} never becomes available: {refused.error()[1]}",
                       eventbridge.cloudtrail_api_call(record),
                       [f"CloudTrail: {refused.call.action} AccessDenied for dev-alice"])

    def expected(self, mode: str) -> Expected:
        if mode == "propose":
            return Expected("principal-not-in-key-policy", (ExpectedFix("key-policy-statement", "proposed"),), False)
        return Expected(
            "principal-not-in-key-policy", (ExpectedFix("key-policy-statement", "refused"),), False,
            why="dev-alice is not in KEYFIX_PRINCIPAL_ALLOWLIST: anyone can provoke an AccessDenied on purpose, so "
                "keyfix writes for a user only when someone allow-listed it; on-call gets the exact statement")


class C(Scenario):
    name, title, seed = "c", "role with full EC2 rights starts an instance with an encrypted volume", "C (003)"
    session = f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/ec2-operator/operator-session"

    def build(self, env: Env) -> list[str]:
        case = build_c(env, launch_failed=False)
        self.case = case
        return [f"instance {case.instance_id} (stopped) has volume {case.volume_id} encrypted with key {case.key_arn}",
                "the key policy delegates to IAM (account root)",
                "role ec2-operator has AmazonEC2FullAccess and nothing on KMS"]

    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        case = self.case
        # StartInstances itself succeeds (and is logged); the instance then fails to start.
        moto_gaps.record_cloudtrail_event(
            start_instances_record(ASG_ACCOUNT, REGION, case.role_arn, case.role_id, case.instance_id),
            account=ASG_ACCOUNT, region=REGION, resources=[("AWS::EC2::Instance", case.instance_id)])
        verdicts = authorizer.until_refused(aws_calls.start_instances(self.session, case.key_arn, case.instance_id,
                                                                      REGION))
        operation = f"ec2-operator starts {case.instance_id}"
        refused = next((v for v in verdicts if not v.allowed), None)
        if refused is None:
            env.client("ec2", ASG_ACCOUNT).start_instances(InstanceIds=[case.instance_id])
            return Attempt(operation, verdicts, True, f"{case.instance_id} is running")
        moto_gaps.fail_instance_launch(case.instance_id, account=ASG_ACCOUNT, region=REGION,
                                       code="Client.InternalError", message=CLIENT_ERROR_ON_LAUNCH)
        identity = cloudtrail.user_identity(self.session, case.role_id, case.role_arn)
        moto_gaps.record_cloudtrail_event(cloudtrail.kms_refused(refused.call, identity, REGION, refused.error()[1]),
                                          account=ASG_ACCOUNT, region=REGION,
                                          resources=[("AWS::KMS::Key", case.key_arn)])
        return Attempt(operation, verdicts, False,
                       f"{case.instance_id} pending -> stopped, StateReason {CLIENT_ERROR_ON_LAUNCH}",
                       eventbridge.ec2_state_change(ASG_ACCOUNT, REGION, case.instance_id, "stopped"),
                       ["CloudTrail: StartInstances by ec2-operator",
                        "CloudTrail: kms:CreateGrant AccessDenied for ec2-operator"])

    def expected(self, mode: str) -> Expected:
        status = "applied" if mode == "apply" else "proposed"
        return Expected("identity-policy-missing", (ExpectedFix("identity-policy", status),), mode == "apply")


class PendingDeletion(Scenario):
    name, title, seed = "pending-deletion", "volume whose key is pending deletion", "catalogue item 18"
    role = "storage-admin"

    def build(self, env: Env) -> list[str]:
        iam, kms, ec2 = (env.client(s, ASG_ACCOUNT) for s in ("iam", "kms", "ec2"))
        key = kms.create_key(Policy=json.dumps(root_only_policy(ASG_ACCOUNT)), Description="data volumes")
        self.key_arn = key["KeyMetadata"]["Arn"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{ASG_ACCOUNT}:root"}}]}
        iam.create_role(RoleName=self.role, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=self.role, PolicyName="volumes", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["ec2:*Volume*", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
                {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": self.key_arn,
                 "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]}))
        self.volume_id = ec2.create_volume(Size=8, AvailabilityZone=AZ, Encrypted=True,
                                           KmsKeyId=self.key_arn)["VolumeId"]
        self.instance_id = ec2.run_instances(ImageId=plain_image(env, ASG_ACCOUNT), InstanceType="t3.micro",
                                             MinCount=1, MaxCount=1, Placement={"AvailabilityZone": AZ}
                                             )["Instances"][0]["InstanceId"]
        # https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-scheduling-key-deletion.html
        # (moto 5.2.5's ScheduleKeyDeletion fails with a 500 when given the key ARN: pass the id.)
        kms.schedule_key_deletion(KeyId=key["KeyMetadata"]["KeyId"], PendingWindowInDays=7)
        return [f"volume {self.volume_id} is encrypted with key {self.key_arn}",
                "someone scheduled the key for deletion (7 days); permissions are all in place",
                f"role {self.role} attaches the volume to {self.instance_id}"]

    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        session = f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/{self.role}/ops"
        verdicts = authorizer.until_refused(aws_calls.attach_volume(session, self.key_arn, self.instance_id, REGION))
        operation = f"{self.role} attaches {self.volume_id} to {self.instance_id}"
        refused = next((v for v in verdicts if not v.allowed), None)
        if refused is None:
            env.client("ec2", ASG_ACCOUNT).attach_volume(VolumeId=self.volume_id, InstanceId=self.instance_id,
                                                         Device="/dev/sdf")
            return Attempt(operation, verdicts, True, f"{self.volume_id} is attached")
        cause = refused.error()[1]  # "<key-arn> is pending deletion." (catalogue item 18)
        return Attempt(operation, verdicts, False, f"attachVolume failed: {cause}",
                       eventbridge.ebs_volume_notification(ASG_ACCOUNT, REGION, "attachVolume", self.volume_id,
                                                           self.key_arn, cause),
                       ["EBS: attachVolume failed"])

    def expected(self, mode: str) -> Expected:
        return Expected("key-pending-deletion", (ExpectedFix("key-state", "proposed"),), False,
                        why="keyfix never changes a key's state: cancelling a deletion is a person's decision")
