"""Auto Scaling scenarios: a1 (same-account key), a2 (key shared by another account) and
not-kms (a launch failure that has nothing to do with KMS).

Auto Scaling launches with its service-linked role; its session is
assumed-role/AWSServiceRoleForAutoScaling/AutoScaling (strings catalogue, item 10). A
launch whose KMS requests are refused ends as AWS reports it: the instance is terminated
with a Client.* state reason and the scaling activity is Cancelled with "Instance became
unhealthy ... Termination Reason: ..." (strings catalogue, items 1-4).
"""

from __future__ import annotations

import json

from keyfix.demo import aws_calls, cloudtrail, eventbridge
from keyfix.demo.authorize import Authorizer
from keyfix.demo.scenario import Attempt, Expected, ExpectedFix, Scenario, role_id, tag_for_keyfix
from keyfix.sim import moto_gaps
from keyfix.sim.scenarios import (
    ASG_ACCOUNT,
    GROUP,
    KEY_ACCOUNT,
    REGION,
    TEMPLATE,
    Env,
    build_a1,
    build_a2,
    make_group,
    plain_image,
)

SLR_NAME = "AWSServiceRoleForAutoScaling"
SLR_SESSION = f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/{SLR_NAME}/AutoScaling"
UNHEALTHY = "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
INVALID_KMS_STATE = "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
VOLUME_LIMIT = "Client.VolumeLimitExceeded: Volume limit exceeded"


class AsgLaunch(Scenario):
    """A group whose launch template encrypts the root volume with `key_arn`."""

    key_arn: str | None = None
    snapshot_key_arn: str | None = None
    group_arn = ""

    def _start_instance(self, env: Env) -> tuple[str, str]:
        """The instance Auto Scaling starts from the group's launch template, and its root volume."""
        ec2 = env.client("ec2", ASG_ACCOUNT)
        instance = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": TEMPLATE, "Version": "$Default"},
                                     MinCount=1, MaxCount=1)["Instances"][0]
        mappings = instance.get("BlockDeviceMappings") or ec2.describe_instances(
            InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0].get("BlockDeviceMappings", [])
        volume = mappings[0]["Ebs"]["VolumeId"] if mappings else "vol-00000000000000000"
        return instance["InstanceId"], volume

    def _launch_failure(self, reason: str) -> str | None:
        """Why the launch fails apart from KMS (None: it does not)."""
        return None

    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        instance_id, volume_id = self._start_instance(env)
        calls = (aws_calls.launch(SLR_SESSION, self.key_arn, instance_id, volume_id, REGION, self.snapshot_key_arn)
                 if self.key_arn else [])
        verdicts = authorizer.until_refused(calls)
        operation = f"Auto Scaling launches an instance for {GROUP} (as {SLR_NAME})"
        refused = next((v for v in verdicts if not v.allowed), None)
        reason = INVALID_KMS_STATE if refused else self._launch_failure(instance_id)
        if reason is None:
            env.client("autoscaling", ASG_ACCOUNT).attach_instances(InstanceIds=[instance_id],
                                                                    AutoScalingGroupName=GROUP)
            moto_gaps.record_scaling_activity(
                GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Successful",
                description=f"Launching a new EC2 instance: {instance_id}")
            return Attempt(operation, verdicts, True, f"{instance_id} is InService in {GROUP}")
        code = reason.split(": ", 1)[0]
        moto_gaps.fail_instance_launch(instance_id, account=ASG_ACCOUNT, region=REGION, code=code, message=reason,
                                       terminate=True)
        message = UNHEALTHY + reason
        # Catalogue item 3: "Launching a new EC2 instance: <id>.  Status Reason: <message>".
        activity = moto_gaps.record_scaling_activity(
            GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Cancelled", status_message=message,
            description=f"Launching a new EC2 instance: {instance_id}.  Status Reason: {message}")
        records = [f"scaling activity {activity['ActivityId']}: Cancelled",
                   f"instance {instance_id}: terminated, StateReason {code}"]
        if refused:
            identity = cloudtrail.user_identity(SLR_SESSION, role_id(env, SLR_NAME), self._slr_arn(env))
            identity["invokedBy"] = "autoscaling.amazonaws.com"
            moto_gaps.record_cloudtrail_event(
                cloudtrail.kms_refused(refused.call, identity, REGION, refused.error()[1]),
                account=ASG_ACCOUNT, region=REGION, resources=[("AWS::KMS::Key", refused.call.key_arn)])
            records.append(f"CloudTrail: {refused.call.action} AccessDenied for {SLR_NAME}")
        event = eventbridge.asg_launch_unsuccessful(ASG_ACCOUNT, REGION, self.group_arn, activity, instance_id)
        return Attempt(operation, verdicts, False, f"Cancelled: {message}", event, records)

    def _slr_arn(self, env: Env) -> str:
        return env.client("iam", ASG_ACCOUNT).get_role(RoleName=SLR_NAME)["Role"]["Arn"]


class A1(AsgLaunch):
    name, title, seed = "a1", "Auto Scaling group, customer managed key of the same account", "A1 (000, 001)"

    def build(self, env: Env) -> list[str]:
        case = build_a1(env, record_failure=False)
        self.key_arn = self.snapshot_key_arn = case.key_arn
        self.group_arn = case.group_arn
        tag_for_keyfix(env, case.key_arn)
        return [f"group {GROUP} launches {case.image_id}, whose snapshot {case.snapshot_id} is encrypted with "
                f"key {case.key_arn}",
                "the key policy only delegates to IAM (account root); the service-linked role "
                f"{SLR_NAME} has no IAM policy for KMS and AWS does not let anyone give it one",
                "the key is tagged keyfix:auto-remediate=true, so apply mode may change its policy"]

    def expected(self, mode: str) -> Expected:
        status = "applied" if mode == "apply" else "proposed"
        return Expected("slr-not-in-key-policy", (ExpectedFix("key-policy-statement", status),), mode == "apply")


class A2(AsgLaunch):
    name, title, seed = "a2", "Auto Scaling group, key shared by another account", "A2 (001, 004)"
    admin_role = "platform-admin"

    def build(self, env: Env) -> list[str]:
        case = build_a2(env, record_failure=False)
        self.key_arn, self.group_arn = case.key_arn, case.group_arn
        iam = env.client("iam", ASG_ACCOUNT)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{ASG_ACCOUNT}:root"}}]}
        iam.create_role(RoleName=self.admin_role, AssumeRolePolicyDocument=json.dumps(trust))
        # Seed 004: the engineer's own role may use the shared key (an identity policy naming it).
        iam.put_role_policy(RoleName=self.admin_role, PolicyName="use-shared-ebs-key", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*",
                                               "kms:DescribeKey"], "Resource": case.key_arn},
                {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": case.key_arn,
                 "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]}))
        return [f"key {case.key_arn} belongs to account {KEY_ACCOUNT}, whose key policy lets account "
                f"{ASG_ACCOUNT} use it and create grants",
                f"group {GROUP} in {ASG_ACCOUNT} encrypts its root volume with that key; nobody created the grant "
                f"its service-linked role needs",
                f"role {self.admin_role} of {ASG_ACCOUNT} has an identity policy allowing the key"]

    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        if "admin_run_instances" not in self.extra:
            self._admin_launch(env, authorizer)
        attempt = super().attempt(env, authorizer)
        if "asg_launch" not in self.extra and attempt.verdicts:
            # The other half of seed 004's story: the same launch, by the group's role.
            self.extra["asg_launch"] = {**(attempt.refused or attempt.verdicts[0]).to_dict(),
                                        "succeeded": attempt.succeeded}
        return attempt

    def _admin_launch(self, env: Env, authorizer: Authorizer) -> None:
        """Seed 004: a plain RunInstances from the same template, by the admin role, works."""
        instance_id, volume_id = self._start_instance(env)
        session = f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/{self.admin_role}/engineer"
        verdicts = authorizer.until_refused(aws_calls.launch(session, self.key_arn, instance_id, volume_id, REGION))
        first = verdicts[0]
        ok = all(v.allowed for v in verdicts)
        if not ok:
            moto_gaps.fail_instance_launch(instance_id, account=ASG_ACCOUNT, region=REGION, terminate=True)
        self.extra["admin_run_instances"] = {**first.to_dict(), "succeeded": ok}
        self.notes.append(f"RunInstances by {self.admin_role} from {TEMPLATE}: {first.call.action} -> "
                          f"{first.describe()}; instance {instance_id} {'running' if ok else 'failed'}")

    def expected(self, mode: str) -> Expected:
        status = "applied" if mode == "apply" else "proposed"
        # Once keyfix could create the grant, the owner's side evidently was in place.
        prerequisite = "already-present" if mode == "apply" else "proposed"
        return Expected("slr-grant-missing", (
            ExpectedFix("grant", status),
            ExpectedFix("key-policy-statement", prerequisite, KEY_ACCOUNT),
            ExpectedFix("identity-policy", prerequisite),
        ), mode == "apply")


class NotKms(AsgLaunch):
    name, title, seed = "not-kms", "Auto Scaling launch failure that is not about KMS", "catalogue item 4"

    def build(self, env: Env) -> list[str]:
        image = plain_image(env, ASG_ACCOUNT)
        _, self.group_arn, _ = make_group(env, ASG_ACCOUNT, image, None)
        return [f"group {GROUP} launches {image}; no volume is encrypted",
                "the account has used up its EBS volume quota (simulated), so every launch fails"]

    def _launch_failure(self, instance_id: str) -> str | None:
        return VOLUME_LIMIT

    def expected(self, mode: str) -> Expected:
        return Expected("not-kms", (), False, why="keyfix has nothing to repair: raise the EBS quota instead",
                        notifies=False)
