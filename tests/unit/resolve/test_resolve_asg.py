"""resolve() for asg-launch-failure, on moto accounts built like the seed cases A1 and A2."""

from __future__ import annotations

import dataclasses
import json

import pytest

from keyfix.resolve import resolve
from keyfix.resolve.needs import LAUNCH_USE_OPERATIONS
from keyfix.sim import accounts
from tests.support.accounts import (
    ASG_ACCOUNT,
    AZ,
    AsgCase,
    GROUP,
    KEY_ACCOUNT,
    REGION,
    Env,
    build_a1,
    build_a2,
    plain_image,
    root_only_policy,
)
from tests.support.faults import deny, unreachable

pytestmark = pytest.mark.usefixtures("moto")

SLR = f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
VIA_EC2 = "ec2.us-east-1.amazonaws.com"

KEY_READS = [
    ("kms", "DescribeKey"),
    ("kms", "GetKeyPolicy"),
    ("kms", "ListGrants"),
]  # no ListResourceTags: the tags are read only when something needs them (issue #14, P2)
A1_CALLS = [
    ("autoscaling", "DescribeAutoScalingGroups"),
    ("ec2", "DescribeLaunchTemplateVersions"),
    ("ec2", "DescribeImages"),
    ("ec2", "DescribeSnapshots"),
    *KEY_READS,
    ("iam", "GetRole"),
]


def _expected_needs(principal: str, key_arn: str, group_arn: str, account: str = ASG_ACCOUNT) -> list[tuple]:
    """One need per principal x key: CreateGrant for the volume plus the data-key operations."""
    context = {"kms:ViaService": VIA_EC2, "kms:CallerAccount": account, "kms:GrantIsForAWSResource": "true"}
    return [(principal, key_arn, ("kms:CreateGrant", *LAUNCH_USE_OPERATIONS), context, group_arn)]


def _needs(situation) -> list[tuple]:
    return [(n.principal, n.key_arn, n.operations, n.context, n.resource) for n in situation.needs]


def test_a1_same_account_key(make_gateway):
    case = build_a1()
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert gw.calls == A1_CALLS
    assert situation.not_kms_reason is None
    assert situation.notes == []
    assert _needs(situation) == _expected_needs(SLR, case.key_arn, case.group_arn)
    assert list(situation.keys) == [case.key_arn]
    key = situation.keys[case.key_arn]
    assert (key.exists, key.state, key.manager, key.account) == (True, "Enabled", "CUSTOMER", ASG_ACCOUNT)
    assert key.policy == root_only_policy(ASG_ACCOUNT)
    assert key.grants == ()
    assert key.unreadable == ()
    slr = situation.principals[SLR]
    assert (slr.kind, slr.exists, slr.identity_policies) == ("service-linked-role", True, ())
    assert slr.unique_id and slr.unique_id.startswith("AROA")


def test_a1_reads_nothing_twice_when_resolved_again_on_the_same_gateway(make_gateway):
    case = build_a1()
    gw = make_gateway()
    first = resolve(case.incident(), gw)
    second = resolve(case.incident(), gw)
    assert gw.calls == A1_CALLS
    assert _needs(first) == _needs(second)


def test_a2_key_in_another_account(make_gateway):
    case = build_a2()
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    # The AMI is unencrypted and the template names the key: no DescribeSnapshots. The key
    # policy and tags of a foreign key cannot be read; ListGrants is tried across accounts
    # and refused, because the documented key policy does not give the ASG account kms:ListGrants.
    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("kms", "DescribeKey"),
        ("kms", "ListGrants"),
        ("iam", "GetRole"),
    ]
    key = situation.keys[case.key_arn]
    assert (key.account, key.state, key.manager) == (KEY_ACCOUNT, "Enabled", "CUSTOMER")
    assert key.policy is None and key.grants is None and key.tags == {}
    assert any("GetKeyPolicy" in r and KEY_ACCOUNT in r for r in key.unreadable)
    assert any("ListGrants failed: AccessDeniedException" in r for r in key.unreadable)
    assert any("ListResourceTags" in r for r in key.unreadable)
    # The same operations as in A1 (the role would use a grant there), caller account = the ASG's.
    assert _needs(situation) == _expected_needs(SLR, case.key_arn, case.group_arn)


def test_a2_grants_readable_when_the_key_policy_allows_list_grants(make_gateway):
    case = build_a2(list_grants=True, grant_for_slr=True)
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    key = situation.keys[case.key_arn]
    assert key.grants is not None and len(key.grants) == 1
    assert key.grants[0]["GranteePrincipal"] == SLR
    assert set(key.grants[0]["Operations"]) == {
        "Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"
    }


def test_a2_with_a_cross_account_role_reads_the_policy_in_the_key_account(make_gateway):
    case = build_a2()
    gw = make_gateway(cross_account_role="KeyfixReader")

    situation = resolve(case.incident(), gw)

    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("kms", "DescribeKey"),
        ("sts", "AssumeRole"),
        ("kms", "GetKeyPolicy"),
        ("kms", "ListGrants"),
        ("iam", "GetRole"),
    ]
    key = situation.keys[case.key_arn]
    assert key.unreadable == ()
    assert key.grants == ()
    statements = {s.get("Sid") for s in key.policy["Statement"]}
    assert f"Allow external account {ASG_ACCOUNT} use of the customer managed key" in statements


def test_not_kms_related_reads_nothing(make_gateway):
    case = build_a1()
    gw = make_gateway()
    message = "Instance became unhealthy ... Termination Reason: Client.VolumeLimitExceeded: Volume limit exceeded"

    situation = resolve(case.incident(kms_related=False, status_message=message), gw)

    assert gw.calls == []
    assert situation.not_kms_reason == message
    assert situation.needs == [] and situation.keys == {} and situation.principals == {}


def test_group_vanished(make_gateway):
    case = build_a1()
    accounts.client("autoscaling", ASG_ACCOUNT).delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert gw.calls == [("autoscaling", "DescribeAutoScalingGroups")]
    assert situation.needs == [] and situation.keys == {}
    assert situation.notes == [f"Auto Scaling group {GROUP} not found (deleted since the event?)"]


def test_launch_template_vanished(make_gateway):
    case = build_a1()
    accounts.client("ec2", ASG_ACCOUNT).delete_launch_template(LaunchTemplateId=case.template_id)
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    assert gw.calls == [("autoscaling", "DescribeAutoScalingGroups"), ("ec2", "DescribeLaunchTemplateVersions")]
    assert situation.needs == []
    assert len(situation.notes) == 1
    assert f"launch template {case.template_id} version $Default" in situation.notes[0]
    assert "InvalidLaunchTemplateId.NotFound" in situation.notes[0]


def test_access_denied_on_get_key_policy(make_gateway):
    case = build_a1()
    gw = make_gateway()
    refused = deny(gw.session, "KMS", "GetKeyPolicy")

    situation = resolve(case.incident(), gw)

    assert refused == ["GetKeyPolicy"]
    assert gw.calls == A1_CALLS  # the refused call is still counted, nothing is retried or skipped
    key = situation.keys[case.key_arn]
    assert key.policy is None
    assert key.grants == () and key.state == "Enabled"
    assert key.unreadable == (
        "kms:GetKeyPolicy failed: AccessDeniedException (User is not authorized to perform: GetKeyPolicy)",
    )
    assert len(situation.needs) == 1


def test_key_not_found(make_gateway):
    """The template names a key id that does not exist (deleted long ago)."""
    case = build_a1()
    ghost = f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
    ec2 = accounts.client("ec2", ASG_ACCOUNT)
    ec2.create_launch_template_version(
        LaunchTemplateId=case.template_id,
        LaunchTemplateData={
            "ImageId": case.image_id,
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "KmsKeyId": ghost}}],
        },
    )
    ec2.modify_launch_template(LaunchTemplateId=case.template_id, DefaultVersion="2")
    gw = make_gateway()

    situation = resolve(case.incident(), gw)

    # The AMI's snapshot key (real) is re-encrypted to the ghost key: both are involved.
    assert set(situation.keys) == {ghost, case.key_arn}
    assert situation.keys[ghost].exists is False
    assert situation.keys[ghost].state is None
    assert situation.keys[case.key_arn].exists is True
    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("ec2", "DescribeSnapshots"),
        ("kms", "DescribeKey"),
        *KEY_READS,
        ("iam", "GetRole"),
    ]
    assert {n.key_arn for n in situation.needs} == {ghost, case.key_arn}


def test_endpoint_unreachable_becomes_a_note(make_gateway):
    build_a1()
    gw = make_gateway()
    unreachable(gw.session, "Auto Scaling", "DescribeAutoScalingGroups")

    situation = resolve(group_incident(), gw)

    assert situation.needs == []
    assert len(situation.notes) == 1 and "EndpointConnectionError" in situation.notes[0]


def group_incident(group: str = GROUP, **changes):
    base = AsgCase(ASG_ACCOUNT, REGION, "", "", "", "", "", group, "", "").incident()
    return dataclasses.replace(base, **changes)


def test_custom_suffix_service_linked_role_missing(make_gateway):
    """A group launching with AWSServiceRoleForAutoScaling_web, which does not exist."""
    env = Env()
    kms = env.client("kms", ASG_ACCOUNT)
    key = kms.create_key(Policy=json.dumps(root_only_policy(ASG_ACCOUNT)))["KeyMetadata"]
    ec2 = env.client("ec2", ASG_ACCOUNT)
    ec2.create_launch_template(
        LaunchTemplateName="blank-lt",
        LaunchTemplateData={
            "ImageId": plain_image(env, ASG_ACCOUNT),
            "BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {"Encrypted": True, "KmsKeyId": key["KeyId"], "VolumeSize": 20}}],
        },
    )
    custom = SLR + "_web"
    env.client("autoscaling", ASG_ACCOUNT).create_auto_scaling_group(
        AutoScalingGroupName="custom-asg",
        LaunchTemplate={"LaunchTemplateName": "blank-lt"},
        ServiceLinkedRoleARN=custom,
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=[AZ],
    )
    gw = make_gateway()
    incident = group_incident("custom-asg")

    situation = resolve(incident, gw)

    # The template names the key by id: DescribeKey resolves it to its ARN.
    assert list(situation.keys) == [key["Arn"]]
    assert situation.principals[custom].exists is False
    assert situation.principals[custom].kind == "service-linked-role"
    assert {n.principal for n in situation.needs} == {custom}
    # The AMI's unencrypted root (/dev/xvda) is not mentioned by the template: whether
    # encryption by default applies to it is asked, once.
    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("ec2", "GetEbsEncryptionByDefault"),
        *KEY_READS,
        ("iam", "GetRole"),
    ]


def test_spot_launch_configuration_uses_the_ec2_spot_role_and_the_default_key(make_gateway):
    """A launch configuration cannot name a key: Encrypted=true uses the default EBS key,
    here a customer managed key; Spot via a launch configuration launches as AWSServiceRoleForEC2Spot."""
    env = Env()
    key = env.client("kms", ASG_ACCOUNT).create_key(Policy=json.dumps(root_only_policy(ASG_ACCOUNT)))["KeyMetadata"]
    ec2 = env.client("ec2", ASG_ACCOUNT)
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["Arn"])
    asg = env.client("autoscaling", ASG_ACCOUNT)
    asg.create_launch_configuration(
        LaunchConfigurationName="spot-lc",
        ImageId=plain_image(env, ASG_ACCOUNT),
        InstanceType="t3.micro",
        SpotPrice="0.05",
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "Encrypted": True}}],
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="spot-asg", LaunchConfigurationName="spot-lc", MinSize=0, MaxSize=1, AvailabilityZones=[AZ]
    )
    gw = make_gateway()
    incident = group_incident("spot-asg")

    situation = resolve(incident, gw)

    spot = f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("autoscaling", "DescribeLaunchConfigurations"),
        ("ec2", "DescribeImages"),
        ("ec2", "GetEbsEncryptionByDefault"),
        ("ec2", "GetEbsDefaultKmsKeyId"),
        *KEY_READS,
        ("iam", "GetRole"),
    ]
    assert list(situation.keys) == [key["Arn"]]
    assert {n.principal for n in situation.needs} == {spot}
    assert situation.principals[spot].exists is False


def test_encryption_by_default_with_the_aws_managed_key(make_gateway):
    """Unencrypted AMI, no encryption in the template, encryption by default on with the
    AWS managed key: one key, read with DescribeKey only."""
    env = Env()
    ec2 = env.client("ec2", ASG_ACCOUNT)
    ec2.create_launch_template(LaunchTemplateName="plain-lt", LaunchTemplateData={"ImageId": plain_image(env, ASG_ACCOUNT)})
    ec2.enable_ebs_encryption_by_default()
    env.client("autoscaling", ASG_ACCOUNT).create_auto_scaling_group(
        AutoScalingGroupName="plain-asg", LaunchTemplate={"LaunchTemplateName": "plain-lt"}, MinSize=0, MaxSize=1,
        AvailabilityZones=[AZ],
    )
    gw = make_gateway()
    incident = group_incident("plain-asg")

    situation = resolve(incident, gw)

    assert gw.calls == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("ec2", "GetEbsEncryptionByDefault"),
        ("ec2", "GetEbsDefaultKmsKeyId"),
        ("kms", "DescribeKey"),
        ("kms", "GetKeyPolicy"),
        ("iam", "GetRole"),
    ]
    (key,) = situation.keys.values()
    assert key.manager == "AWS" and key.aliases == ("alias/aws/ebs",)
    # AWS's own policy for aws/ebs: everyone in the account, through EC2.
    (through_ebs, _) = key.policy["Statement"]
    assert through_ebs["Principal"] == {"AWS": "*"}
    assert through_ebs["Condition"] == {
        "StringEquals": {"kms:CallerAccount": ASG_ACCOUNT, "kms:ViaService": VIA_EC2}
    }
    assert key.grants is None and key.tags == {}
    assert key.unreadable == (
        "kms:ListGrants not read: AWS managed key (never changed by keyfix)",
        "kms:ListResourceTags not read: AWS managed key (never changed by keyfix)",
    )
    assert {n.key_arn for n in situation.needs} == {key.arn}


def test_unencrypted_launch_is_not_kms(make_gateway):
    env = Env()
    env.client("ec2", ASG_ACCOUNT).create_launch_template(
        LaunchTemplateName="plain-lt", LaunchTemplateData={"ImageId": plain_image(env, ASG_ACCOUNT)}
    )
    env.client("autoscaling", ASG_ACCOUNT).create_auto_scaling_group(
        AutoScalingGroupName="plain-asg", LaunchTemplate={"LaunchTemplateName": "plain-lt"}, MinSize=0, MaxSize=1,
        AvailabilityZones=[AZ],
    )
    gw = make_gateway()
    incident = group_incident("plain-asg", kms_related=None)

    situation = resolve(incident, gw)

    assert situation.not_kms_reason == "no volume launched by plain-asg is encrypted with a KMS key"
    assert situation.keys == {} and situation.needs == []
    assert gw.calls[-1] == ("ec2", "GetEbsEncryptionByDefault")


def test_a2_cross_account_role_refused_is_asked_once(make_gateway):
    case = build_a2()
    gw = make_gateway(cross_account_role="KeyfixReader")
    deny(gw.session, "STS", "AssumeRole", code="AccessDenied")

    situation = resolve(case.incident(), gw)

    assert gw.calls.count(("sts", "AssumeRole")) == 1
    assert ("kms", "GetKeyPolicy") not in gw.calls
    key = situation.keys[case.key_arn]
    assert key.state == "Enabled" and key.policy is None and key.grants is None
    # The key policy and grants; the tags are not asked for (nothing needs them: issue #14, P2).
    assert len(key.unreadable) == 2 and all("sts:AssumeRole failed: AccessDenied" in r for r in key.unreadable)
    assert key.tags_unread
    assert len(situation.needs) == 1


def test_shared_ami_snapshot_is_restored_under_the_default_key(make_gateway):
    """An encrypted snapshot this account does not own is restored under this account's
    default EBS key when the launch names no key (AMIEncryption.html, launch scenarios)."""
    env = Env()
    foreign_key = env.client("kms", KEY_ACCOUNT).create_key(Policy=json.dumps(root_only_policy(KEY_ACCOUNT)))["KeyMetadata"]
    foreign_ec2 = env.client("ec2", KEY_ACCOUNT)
    volume = foreign_ec2.create_volume(Size=8, AvailabilityZone=AZ, Encrypted=True, KmsKeyId=foreign_key["Arn"])
    snapshot = foreign_ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    image = {"ImageId": "ami-0shared", "OwnerId": KEY_ACCOUNT, "BlockDeviceMappings": [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot, "Encrypted": True}}]}
    gw = make_gateway()
    notes: list[str] = []

    from keyfix.resolve.ec2 import plan_launch_keys

    # moto keeps AMIs and snapshots per account (sharing is not simulated): the snapshot is
    # not visible from the ASG account, exactly like an unshared snapshot in AWS.
    (volume_keys,) = plan_launch_keys(gw, REGION, ASG_ACCOUNT, image, [], notes)

    assert volume_keys.key == "alias/aws/ebs" and volume_keys.source_key is None
    assert gw.calls == [("ec2", "DescribeSnapshots"), ("ec2", "GetEbsDefaultKmsKeyId")]
    assert notes[0].startswith(f"snapshots {snapshot}: ec2:DescribeSnapshots failed: InvalidSnapshot.NotFound")
    assert notes[1] == f"/dev/xvda: snapshot {snapshot} is encrypted but its key could not be read"
