"""The readers on their own (read_key, read_principal), launch sources, and triggers
resolve does not handle."""

from __future__ import annotations

import dataclasses
import json

import pytest

from keyfix.report import Trigger
from keyfix.resolve import read_key, read_principal, resolve
from keyfix.resolve.kms import read_tags
from keyfix.arns import iam_arn_for_session
from keyfix.sim import accounts
from tests.support.accounts import ASG_ACCOUNT, AZ, GROUP, KEY_ACCOUNT, REGION, AsgCase, Env, plain_image, root_only_policy
from tests.support.faults import deny

pytestmark = pytest.mark.usefixtures("moto")


def _key(account: str = ASG_ACCOUNT, **kwargs) -> dict:
    return accounts.client("kms", account).create_key(Policy=json.dumps(root_only_policy(account)), **kwargs)[
        "KeyMetadata"
    ]


def test_read_key_by_alias_name(make_gateway):
    key = _key(Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])
    accounts.client("kms", ASG_ACCOUNT).create_alias(AliasName="alias/app", TargetKeyId=key["KeyId"])
    gw = make_gateway()

    facts = read_key(gw, "alias/app", REGION)

    assert (facts.arn, facts.account, facts.region) == (key["Arn"], ASG_ACCOUNT, REGION)
    assert facts.aliases == ("alias/app",)
    assert facts.tags == {} and facts.tags_unread  # not read until something needs them (issue #14, P2)
    assert read_key(gw, key["Arn"], REGION) is facts
    assert gw.calls == [("kms", "DescribeKey"), ("kms", "GetKeyPolicy"), ("kms", "ListGrants")]

    tagged = read_tags(gw, facts)
    assert tagged.tags == {"keyfix:auto-remediate": "true"} and not tagged.tags_unread
    assert read_tags(gw, facts) is tagged and read_tags(gw, tagged) is tagged  # once per gateway
    assert read_key(gw, key["Arn"], REGION) is tagged
    assert gw.calls[3:] == [("kms", "ListResourceTags")]


def test_tags_that_cannot_be_read_stay_empty_with_the_reason(make_gateway):
    key = _key(Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])
    gw = make_gateway()
    deny(gw.session, "KMS", "ListResourceTags", code="AccessDeniedException")

    tagged = read_tags(gw, read_key(gw, key["Arn"], REGION))

    assert tagged.tags == {} and not tagged.tags_unread
    assert any("ListResourceTags failed: AccessDeniedException" in r for r in tagged.unreadable)
    assert gw.calls.count(("kms", "ListResourceTags")) == 1


def test_read_key_pending_deletion_and_missing_alias(make_gateway):
    key = _key()
    accounts.client("kms", ASG_ACCOUNT).schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    gw = make_gateway()

    assert read_key(gw, key["Arn"], REGION).state == "PendingDeletion"
    missing = read_key(gw, "alias/nothing", REGION)
    assert missing.exists is False and missing.arn == f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:alias/nothing"


def test_read_key_denied_describe_key(make_gateway):
    from tests.support.faults import deny

    key = _key()
    gw = make_gateway()
    deny(gw.session, "KMS", "DescribeKey")

    facts = read_key(gw, key["Arn"], REGION)

    assert facts.state is None and facts.policy is None and facts.grants is None
    assert facts.unreadable == ("kms:DescribeKey failed: AccessDeniedException (User is not authorized to perform: DescribeKey)",)
    assert gw.calls == [("kms", "DescribeKey")]


def test_read_principal_kinds_without_reads(make_gateway):
    gw = make_gateway()
    root = read_principal(gw, f"arn:aws:iam::{ASG_ACCOUNT}:root")
    service = read_principal(gw, "ec2.amazonaws.com")
    foreign = read_principal(gw, f"arn:aws:iam::{KEY_ACCOUNT}:user/x")
    assert (root.kind, root.exists, root.identity_policies) == ("root", True, None)
    assert (service.kind, service.account) == ("service", None)
    assert (foreign.kind, foreign.exists, foreign.identity_policies) == ("user", None, None)
    assert gw.calls == []


def test_read_principal_from_a_session_arn_finds_the_role_path(make_gateway):
    iam = accounts.client("iam", ASG_ACCOUNT)
    role = iam.create_role(RoleName="deployer", Path="/ops/", AssumeRolePolicyDocument="{}")["Role"]
    gw = make_gateway()

    facts = read_principal(gw, f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/deployer/ci-run-7")

    assert facts.arn == role["Arn"] == f"arn:aws:iam::{ASG_ACCOUNT}:role/ops/deployer"
    assert facts.kind == "role" and facts.identity_policies == ()
    missing = read_principal(gw, f"arn:aws:iam::{ASG_ACCOUNT}:role/gone")
    assert missing.exists is False


def test_session_arns_of_service_linked_roles_get_their_path():
    assert iam_arn_for_session(f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling_web/AutoScaling") == (
        f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_web"
    )
    assert iam_arn_for_session(f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/AWSServiceRoleForEC2Spot/Spot") == (
        f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    )


def test_mixed_instances_policy_reads_every_template_once(make_gateway):
    """Base template at $Latest, an override template at version 1 with another key, and
    another override naming the base template again: two templates read, one DescribeImages."""
    env = Env()
    key_a, key_b = _key(), _key()
    image = plain_image(env, ASG_ACCOUNT)
    ec2 = env.client("ec2", ASG_ACCOUNT)

    def template(name: str, key: str) -> None:
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={
                "ImageId": image,
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "KmsKeyId": key}}],
            },
        )

    template("base-lt", key_a["Arn"])
    template("arm-lt", key_b["Arn"])
    env.client("autoscaling", ASG_ACCOUNT).create_auto_scaling_group(
        AutoScalingGroupName="mixed-asg",
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=[AZ],
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "base-lt", "Version": "$Latest"},
                "Overrides": [
                    {"InstanceType": "m6g.large", "LaunchTemplateSpecification": {"LaunchTemplateName": "arm-lt", "Version": "1"}},
                    {"InstanceType": "t3.micro"},
                ],
            }
        },
    )
    gw = make_gateway()
    incident = dataclasses.replace(AsgCase(ASG_ACCOUNT, REGION, "", "", "", "", "", GROUP, "", "").incident(), group_name="mixed-asg")

    situation = resolve(incident, gw)

    assert list(situation.keys) == [key_a["Arn"], key_b["Arn"]]
    assert gw.calls[:4] == [
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
    ]
    assert gw.calls.count(("iam", "GetRole")) == 1
    assert [n.key_arn for n in situation.needs] == [key_a["Arn"], key_b["Arn"]]


# scheduled-sweep and key-change name a group and resolve it like a launch failure
# (keyfix.predict; tests/unit/predict).
@pytest.mark.parametrize("trigger", [Trigger.UNRECOGNISED])
def test_other_triggers_resolve_to_an_empty_situation(make_gateway, trigger):
    gw = make_gateway()
    incident = dataclasses.replace(AsgCase(ASG_ACCOUNT, REGION, "", "", "", "", "", GROUP, "", "").incident(), trigger=trigger)

    situation = resolve(incident, gw)

    assert (situation.needs, situation.keys, situation.principals, situation.notes) == ([], {}, {}, [])
    assert situation.not_kms_reason is None
    assert gw.calls == [] and gw.created_clients == []
