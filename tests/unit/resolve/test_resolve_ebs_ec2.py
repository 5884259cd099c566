"""resolve() for ebs-volume-failure and ec2-launch-failure (seed cases B and C)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from keyfix.resolve import resolve
from keyfix.sim import accounts, moto_gaps
from tests.support.accounts import ASG_ACCOUNT, AZ, REGION, Env, build_a1, build_b, build_c
from tests.support.faults import deny

pytestmark = pytest.mark.usefixtures("moto")

KEY_READS = [("kms", "DescribeKey"), ("kms", "GetKeyPolicy"), ("kms", "ListGrants")]  # tags only when needed (#14)
VIA_EC2 = "ec2.us-east-1.amazonaws.com"

# -- ebs-volume-failure -------------------------------------------------------------------


@pytest.mark.parametrize("state", ["Disabled", "PendingDeletion"])
def test_volume_failure_with_the_key_in_the_event(make_gateway, state):
    case = build_b(key_state=state)
    gw = make_gateway()

    situation = resolve(case.volume_incident(cause=f"{case.key_arn} is {state.lower()}."), gw)

    assert gw.calls == KEY_READS
    assert situation.needs == [] and situation.principals == {}
    assert situation.keys[case.key_arn].state == state


def test_volume_failure_key_found_through_the_volume(make_gateway):
    case = build_b()
    volume = accounts.client("ec2", ASG_ACCOUNT).create_volume(
        AvailabilityZone=AZ, SnapshotId=case.snapshot_id
    )["VolumeId"]
    gw = make_gateway()

    situation = resolve(case.volume_incident(key_arns=(), volume_id=volume), gw)

    assert gw.calls == [("ec2", "DescribeVolumes"), *KEY_READS]
    assert list(situation.keys) == [case.key_arn]  # the volume inherited the snapshot's key
    assert situation.needs == []


def test_volume_failure_for_a_volume_that_no_longer_exists(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(case.volume_incident(key_arns=()), gw)

    assert gw.calls == [("ec2", "DescribeVolumes")]
    assert situation.keys == {}
    assert situation.notes[0].startswith(f"volumes {case.volume_id}: ec2:DescribeVolumes failed: InvalidVolume.NotFound")
    assert situation.notes[-1] == "the KMS key of the failed volume operation is unknown"


def test_volume_failure_not_kms(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(dataclasses.replace(case.volume_incident(cause="Volume limit exceeded"), kms_related=False), gw)

    assert gw.calls == []
    assert situation.not_kms_reason == "Volume limit exceeded"


# -- ec2-launch-failure -------------------------------------------------------------------

C_CALLS = [
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeVolumes"),
    *KEY_READS,
    ("cloudtrail", "LookupEvents"),
    ("iam", "GetRole"),
    ("iam", "ListRolePolicies"),
    ("iam", "ListAttachedRolePolicies"),
    ("iam", "GetPolicy"),
    ("iam", "GetPolicyVersion"),
]


def test_c_role_starts_instance_with_encrypted_volume(make_gateway):
    case = build_c()
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert gw.calls == C_CALLS
    assert situation.not_kms_reason is None and situation.notes == []
    assert list(situation.keys) == [case.key_arn]
    (need,) = situation.needs
    assert need.principal == case.role_arn
    assert need.key_arn == case.key_arn
    assert need.operations == ("kms:CreateGrant",)
    assert need.context == {
        "kms:ViaService": VIA_EC2,
        "kms:CallerAccount": ASG_ACCOUNT,
        "kms:GrantIsForAWSResource": "true",
    }
    assert need.resource == f"arn:aws:ec2:{REGION}:{ASG_ACCOUNT}:instance/{case.instance_id}"
    role = situation.principals[case.role_arn]
    assert (role.kind, role.exists, role.unique_id) == ("role", True, case.role_id)
    assert role.identity_policy_names == (case.policy_arn,)
    assert role.identity_policies[0]["Statement"][0] == {"Action": "ec2:*", "Effect": "Allow", "Resource": "*"}


def test_c_invalid_kms_key_state_reason_is_kms_related(make_gateway):
    case = build_c(
        state_code="Client.InvalidKMSKey.InvalidState",
        state_message="Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state",
    )
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert situation.not_kms_reason is None
    assert [n.key_arn for n in situation.needs] == [case.key_arn]


def test_c_lookup_events_denied_keeps_the_keys(make_gateway):
    case = build_c()
    gw = make_gateway()
    deny(gw.session, "CloudTrail", "LookupEvents", code="AccessDeniedException")

    situation = resolve(case.incident(), gw)

    assert gw.calls == C_CALLS[:6]
    assert situation.needs == [] and situation.principals == {}
    assert list(situation.keys) == [case.key_arn]
    assert situation.notes == [
        f"who launched {case.instance_id} is unknown: cloudtrail:LookupEvents failed: AccessDeniedException "
        "(User is not authorized to perform: LookupEvents)"
    ]


def test_c_no_cloudtrail_event_yet(make_gateway):
    case = build_c(record_start=False)
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert situation.needs == []
    assert "no StartInstances/RunInstances event" in situation.notes[0]


def test_c_role_with_permissions_boundary_and_inline_policy(make_gateway):
    case = build_c()
    iam = accounts.client("iam", ASG_ACCOUNT)
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    boundary = iam.create_policy(PolicyName="ops-boundary", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="ec2-operator", PermissionsBoundary=boundary)
    iam.put_role_policy(RoleName="ec2-operator", PolicyName="tags", PolicyDocument=json.dumps(doc))
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    role = situation.principals[case.role_arn]
    assert role.identity_policy_names == ("inline:tags", case.policy_arn)
    assert role.permission_boundary_arn == boundary and role.permission_boundary == doc


def test_instance_stopped_by_its_user_is_not_kms(make_gateway):
    case = build_c()
    ec2 = accounts.client("ec2", ASG_ACCOUNT)
    ec2.start_instances(InstanceIds=[case.instance_id])
    ec2.stop_instances(InstanceIds=[case.instance_id])
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert gw.calls == [("ec2", "DescribeInstances")]
    assert situation.not_kms_reason == "Client.UserInitiatedShutdown: User initiated shutdown"
    assert situation.keys == {} and situation.needs == []


def test_server_internal_error_is_not_kms(make_gateway):
    case = build_c(state_code="Server.InternalError", state_message="Server.InternalError: Internal error on launch")
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert situation.not_kms_reason == "Server.InternalError: Internal error on launch"
    assert gw.calls == [("ec2", "DescribeInstances")]


def test_client_internal_error_without_encrypted_volume_is_not_kms(make_gateway):
    env = Env()
    ec2 = env.client("ec2", ASG_ACCOUNT)
    from tests.support.accounts import plain_image

    instance = ec2.run_instances(ImageId=plain_image(env, ASG_ACCOUNT), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    moto_gaps.fail_instance_launch(instance, account=ASG_ACCOUNT, region=REGION)
    gw = make_gateway()
    incident = dataclasses.replace(build_c_incident(), instance_id=instance)

    situation = resolve(incident, gw)

    assert situation.not_kms_reason == f"Client.InternalError: but no volume of {instance} is encrypted with a KMS key"
    assert gw.calls == [("ec2", "DescribeInstances"), ("ec2", "DescribeVolumes")]


def test_terminated_on_launch_keys_from_the_ami(make_gateway):
    """RunInstances from A1's AMI: the instance terminates at once and its volumes are gone;
    the keys come from the AMI's snapshots, the launcher's needs are a launch's."""
    case = build_a1()
    env = Env()
    ec2 = env.client("ec2", ASG_ACCOUNT)
    instance = ec2.run_instances(ImageId=case.image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    moto_gaps.fail_instance_launch(instance, account=ASG_ACCOUNT, region=REGION, terminate=True)
    user = f"arn:aws:iam::{ASG_ACCOUNT}:user/deployer"
    accounts.client("iam", ASG_ACCOUNT).create_user(UserName="deployer")
    moto_gaps.record_cloudtrail_event(
        {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "userIdentity": {"type": "IAMUser", "arn": user, "accountId": ASG_ACCOUNT, "userName": "deployer"},
        },
        account=ASG_ACCOUNT,
        region=REGION,
        resources=[("AWS::EC2::Instance", instance)],
    )
    gw = make_gateway()
    incident = dataclasses.replace(build_c_incident(), instance_id=instance, instance_state="terminated")

    situation = resolve(incident, gw)

    assert gw.calls == [
        ("ec2", "DescribeInstances"),
        ("ec2", "DescribeImages"),
        ("ec2", "DescribeSnapshots"),
        *KEY_READS,
        ("cloudtrail", "LookupEvents"),
        ("iam", "GetUser"),
        ("iam", "ListUserPolicies"),
        ("iam", "ListAttachedUserPolicies"),
        ("iam", "ListGroupsForUser"),
    ]
    assert situation.notes == [f"the volumes of {instance} no longer exist; keys inferred from its AMI"]
    assert list(situation.keys) == [case.key_arn]
    (need,) = situation.needs
    assert need.principal == user
    assert need.operations == (
        "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    )


def build_c_incident():
    from tests.support.accounts import InstanceCase

    return InstanceCase(ASG_ACCOUNT, REGION, "", "i-00000000", "", "", "", "").incident()


def test_one_key_named_two_ways_is_one_key_and_one_need(make_gateway):
    """Two volumes of one instance, one naming the key by alias, one by ARN."""
    case = build_c()
    kms = accounts.client("kms", ASG_ACCOUNT)
    kms.create_alias(AliasName="alias/ops", TargetKeyId=case.key_arn)
    ec2 = accounts.client("ec2", ASG_ACCOUNT)
    extra = ec2.create_volume(Size=1, AvailabilityZone=AZ, Encrypted=True, KmsKeyId="alias/ops")["VolumeId"]
    ec2.attach_volume(VolumeId=extra, InstanceId=case.instance_id, Device="/dev/sdf")
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert list(situation.keys) == [case.key_arn]
    assert [n.key_arn for n in situation.needs] == [case.key_arn]
    assert gw.calls.count(("kms", "GetKeyPolicy")) == 1
