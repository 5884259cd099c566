"""The moto gap layer: each gap exists in raw moto, and is filled the way AWS answers,
in-process (mock_aws) and in a moto server on 127.0.0.1 (ThreadedMotoServer).

When a `test_raw_moto_*` test fails after a moto upgrade, moto closed that gap: remove the
fill from keyfix.sim.moto_gaps.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from keyfix.sim import moto_gaps
from keyfix.sim.server import LocalMoto
from tests.support.accounts import ASG_ACCOUNT, AZ, KEY_ACCOUNT, REGION, Env, a2_key_policy, root_only_policy

SLR = f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalMoto]:
    local = LocalMoto()
    local.start()
    moto_gaps.uninstall()  # installed per test below
    yield local
    local.stop()


@pytest.fixture(params=["in-process", pytest.param("server", marks=pytest.mark.server)])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if request.param == "in-process":
        from moto import mock_aws

        with moto_gaps.installed(), mock_aws():
            yield Env()
    else:
        local: LocalMoto = request.getfixturevalue("server")
        with moto_gaps.installed():
            try:
                yield Env(endpoint_url=local.url)
            finally:
                request_reset = urllib.request.Request(f"{local.url}/moto-api/reset", method="POST")
                urllib.request.urlopen(request_reset, timeout=10).read()


@pytest.fixture
def raw() -> Iterator[Env]:
    """moto without the gap layer."""
    from moto import mock_aws

    assert not moto_gaps.is_installed()
    with mock_aws():
        yield Env()


def _encrypted_snapshot(env: Env, account: str = ASG_ACCOUNT) -> tuple[str, str]:
    key = env.client("kms", account).create_key(Policy=json.dumps(root_only_policy(account)))["KeyMetadata"]["Arn"]
    ec2 = env.client("ec2", account)
    volume = ec2.create_volume(Size=8, AvailabilityZone=AZ, Encrypted=True, KmsKeyId=key)["VolumeId"]
    return key, ec2.create_snapshot(VolumeId=volume)["SnapshotId"]


def _register(env: Env, snapshot: str) -> str:
    return env.client("ec2", ASG_ACCOUNT).register_image(
        Name="img",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot, "VolumeType": "gp3"}}],
    )["ImageId"]


# -- DescribeImages / DescribeSnapshots / CreateVolume ---------------------------------------


def test_raw_moto_drops_image_mappings_and_snapshot_keys(raw):
    key, snapshot = _encrypted_snapshot(raw)
    ec2 = raw.client("ec2", ASG_ACCOUNT)
    assert "KmsKeyId" not in ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
    image = _register(raw, snapshot)
    (mapping,) = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/sda1" and mapping["Ebs"]["SnapshotId"] != snapshot
    assert "Encrypted" not in mapping["Ebs"]
    volume = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snapshot)
    assert volume["Encrypted"] is True and "KmsKeyId" not in volume


def test_images_snapshots_and_volumes_keep_their_key(env):
    key, snapshot = _encrypted_snapshot(env)
    ec2 = env.client("ec2", ASG_ACCOUNT)

    snap = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
    assert (snap["Encrypted"], snap["KmsKeyId"], snap["OwnerId"]) == (True, key, ASG_ACCOUNT)

    image = ec2.describe_images(ImageIds=[_register(env, snapshot)])["Images"][0]
    assert image["RootDeviceName"] == "/dev/xvda" and image["RootDeviceType"] == "ebs"
    assert image["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "SnapshotId": snapshot, "VolumeSize": 8, "VolumeType": "gp3", "Encrypted": True},
        }
    ]

    volume = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snapshot)
    assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, key)


def test_create_image_snapshots_the_instance_volumes(env):
    key, snapshot = _encrypted_snapshot(env)
    ec2 = env.client("ec2", ASG_ACCOUNT)
    instance = ec2.run_instances(
        ImageId=_register(env, snapshot), MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 4, "Encrypted": True, "KmsKeyId": key}}],
    )["Instances"][0]["InstanceId"]

    image = ec2.describe_images(ImageIds=[ec2.create_image(InstanceId=instance, Name="copy")["ImageId"]])["Images"][0]

    (mapping,) = image["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/xvdb" and mapping["Ebs"]["Encrypted"] is True
    snap = ec2.describe_snapshots(SnapshotIds=[mapping["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert snap["KmsKeyId"] == key


def test_encryption_by_default_applies_to_new_volumes(env):
    ec2 = env.client("ec2", ASG_ACCOUNT)
    assert "KmsKeyId" not in ec2.create_volume(Size=1, AvailabilityZone=AZ)
    ec2.enable_ebs_encryption_by_default()
    volume = ec2.create_volume(Size=1, AvailabilityZone=AZ)
    assert volume["Encrypted"] is True
    key = env.client("kms", ASG_ACCOUNT).describe_key(KeyId=volume["KmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "AWS"


# -- GetEbsDefaultKmsKeyId ----------------------------------------------------------------------


def test_raw_moto_lacks_get_ebs_default_kms_key_id(raw):
    with pytest.raises(NotImplementedError):
        raw.client("ec2", ASG_ACCOUNT).get_ebs_default_kms_key_id()


def test_get_and_reset_ebs_default_kms_key_id(env):
    ec2 = env.client("ec2", ASG_ACCOUNT)
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    key = env.client("kms", ASG_ACCOUNT).create_key()["KeyMetadata"]["Arn"]
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key)
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key
    reset = ec2.reset_ebs_default_kms_key_id()["KmsKeyId"]
    assert reset != key and ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == reset
    kms = env.client("kms", ASG_ACCOUNT)
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"] == reset


# -- KMS ------------------------------------------------------------------------------------------


def test_raw_moto_aws_managed_key_and_cross_account(raw):
    kms = raw.client("kms", ASG_ACCOUNT)
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    foreign = raw.client("kms", KEY_ACCOUNT).create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=foreign)


def test_aws_managed_key(env):
    kms = env.client("kms", ASG_ACCOUNT)
    meta = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    assert policy == moto_gaps.aws_ebs_key_policy(ASG_ACCOUNT, REGION)
    assert policy["Statement"][0]["Condition"]["StringEquals"]["kms:ViaService"] == "ec2.us-east-1.amazonaws.com"


def test_cross_account_key_use_follows_the_key_policy(env):
    owner = env.client("kms", KEY_ACCOUNT)
    shared = owner.create_key(Policy=json.dumps(a2_key_policy(KEY_ACCOUNT, ASG_ACCOUNT)))["KeyMetadata"]
    private = owner.create_key(Policy=json.dumps(root_only_policy(KEY_ACCOUNT)))["KeyMetadata"]
    owner.create_alias(AliasName="alias/shared", TargetKeyId=shared["KeyId"])
    kms = env.client("kms", ASG_ACCOUNT)

    assert kms.describe_key(KeyId=shared["Arn"])["KeyMetadata"]["AWSAccountId"] == KEY_ACCOUNT
    alias_arn = f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:alias/shared"
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["Arn"] == shared["Arn"]
    grant = kms.create_grant(KeyId=shared["Arn"], GranteePrincipal=SLR, Operations=["Decrypt", "CreateGrant"])
    assert [g["GrantId"] for g in owner.list_grants(KeyId=shared["KeyId"])["Grants"]] == [grant["GrantId"]]

    for denied in (
        lambda: kms.list_grants(KeyId=shared["Arn"]),  # kms:ListGrants not given to the ASG account
        lambda: kms.describe_key(KeyId=private["Arn"]),
    ):
        with pytest.raises(kms.exceptions.ClientError) as caught:
            denied()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "is not authorized to perform" in caught.value.response["Error"]["Message"]
    # Not a cross-account operation: answered in the caller's account, where the key is not.
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.get_key_policy(KeyId=shared["Arn"], PolicyName="default")


# -- Auto Scaling / IAM -------------------------------------------------------------------------------


def _group(env: Env, **extra) -> None:
    ec2 = env.client("ec2", ASG_ACCOUNT)
    ec2.create_launch_template(LaunchTemplateName="gap-lt", LaunchTemplateData={"InstanceType": "t3.micro"})
    env.client("autoscaling", ASG_ACCOUNT).create_auto_scaling_group(
        AutoScalingGroupName="gap-asg", LaunchTemplate={"LaunchTemplateName": "gap-lt"}, MinSize=0, MaxSize=1,
        AvailabilityZones=[AZ], **extra,
    )


def test_raw_moto_auto_scaling_gaps(raw):
    _group(raw, ServiceLinkedRoleARN=SLR + "_web")
    asg, iam = raw.client("autoscaling", ASG_ACCOUNT), raw.client("iam", ASG_ACCOUNT)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["ServiceLinkedRoleARN"] == SLR
    assert asg.describe_scaling_activities(AutoScalingGroupName="gap-asg")["Activities"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="AWSServiceRoleForAutoScaling")
    spot = iam.create_service_linked_role(AWSServiceName="spot.amazonaws.com")["Role"]["RoleName"]
    assert spot == "AWSServiceRoleForspot"


def test_group_creation_creates_the_service_linked_role(env):
    _group(env)
    iam = env.client("iam", ASG_ACCOUNT)
    role = iam.get_role(RoleName="AWSServiceRoleForAutoScaling")["Role"]
    assert role["Arn"] == SLR and role["Path"] == "/aws-service-role/autoscaling.amazonaws.com/"
    group = env.client("autoscaling", ASG_ACCOUNT).describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["ServiceLinkedRoleARN"] == SLR


def test_custom_service_linked_role_is_kept_and_not_created(env):
    _group(env, ServiceLinkedRoleARN=SLR + "_web")
    group = env.client("autoscaling", ASG_ACCOUNT).describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["ServiceLinkedRoleARN"] == SLR + "_web"
    assert env.client("iam", ASG_ACCOUNT).list_roles()["Roles"] == []


def test_spot_service_linked_role_name(env):
    role = env.client("iam", ASG_ACCOUNT).create_service_linked_role(AWSServiceName="spot.amazonaws.com")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ASG_ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"


def test_scaling_activities(env):
    _group(env)
    older = moto_gaps.record_scaling_activity("gap-asg", account=ASG_ACCOUNT, region=REGION, status_message="first")
    newer = moto_gaps.record_scaling_activity(
        "gap-asg", account=ASG_ACCOUNT, region=REGION, status_code="Cancelled", status_message="second"
    )
    asg = env.client("autoscaling", ASG_ACCOUNT)
    activities = asg.describe_scaling_activities(AutoScalingGroupName="gap-asg")["Activities"]
    assert [a["ActivityId"] for a in activities] == [newer["ActivityId"], older["ActivityId"]]
    assert activities[0]["StatusCode"] == "Cancelled" and activities[0]["StatusMessage"] == "second"
    assert activities[0]["Description"] == "Launching a new EC2 instance.  Status Reason: second"
    assert activities[0]["AutoScalingGroupARN"].endswith(":autoScalingGroupName/gap-asg")
    assert json.loads(activities[0]["Details"])["Availability Zone"] == AZ
    only = asg.describe_scaling_activities(ActivityIds=[older["ActivityId"]])["Activities"]
    assert [a["StatusMessage"] for a in only] == ["first"]
    assert asg.describe_scaling_activities(AutoScalingGroupName="other")["Activities"] == []


# -- CloudTrail ---------------------------------------------------------------------------------------


def test_raw_moto_lacks_lookup_events(raw):
    with pytest.raises(NotImplementedError):
        raw.client("cloudtrail", ASG_ACCOUNT).lookup_events()


def test_lookup_events(env):
    identity = {"type": "IAMUser", "arn": f"arn:aws:iam::{ASG_ACCOUNT}:user/u", "userName": "u", "accountId": ASG_ACCOUNT}
    moto_gaps.record_cloudtrail_event(
        {"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-05-01T10:00:00Z", "userIdentity": identity},
        account=ASG_ACCOUNT, region=REGION, resources=[("AWS::EC2::Instance", "i-1")],
    )
    moto_gaps.record_cloudtrail_event(
        {"eventName": "StartInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-05-01T11:00:00Z", "userIdentity": identity},
        account=ASG_ACCOUNT, region=REGION, resources=[("AWS::EC2::Instance", "i-1")],
    )
    moto_gaps.record_cloudtrail_event(
        {"eventName": "StartInstances", "eventSource": "ec2.amazonaws.com", "userIdentity": identity},
        account=ASG_ACCOUNT, region=REGION, resources=[("AWS::EC2::Instance", "i-2")],
    )
    trail = env.client("cloudtrail", ASG_ACCOUNT)
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "i-1"}])["Events"]
    assert [e["EventName"] for e in events] == ["StartInstances", "RunInstances"]  # newest first
    assert events[0]["Username"] == "u" and events[0]["Resources"] == [{"ResourceType": "AWS::EC2::Instance", "ResourceName": "i-1"}]
    assert json.loads(events[0]["CloudTrailEvent"])["userIdentity"] == identity
    assert events[0]["EventTime"].year == 2024
    names = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "RunInstances"}])
    assert len(names["Events"]) == 1
    assert env.client("cloudtrail", KEY_ACCOUNT).lookup_events()["Events"] == []


# -- simulated launch failure ---------------------------------------------------------------------------


def test_fail_instance_launch(env):
    ec2 = env.client("ec2", ASG_ACCOUNT)
    instance = ec2.run_instances(ImageId=_register(env, _encrypted_snapshot(env)[1]), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    moto_gaps.fail_instance_launch(instance, account=ASG_ACCOUNT, region=REGION)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert described["State"]["Name"] == "stopped"
    assert described["StateReason"] == {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}


def test_install_is_reversible():
    from moto.ec2.responses import EC2Response

    assert not moto_gaps.is_installed() and not hasattr(EC2Response, "get_ebs_default_kms_key_id")
    with moto_gaps.installed():
        with moto_gaps.installed():  # nested: idempotent
            assert hasattr(EC2Response, "get_ebs_default_kms_key_id")
        assert moto_gaps.is_installed()
    assert not moto_gaps.is_installed() and not hasattr(EC2Response, "get_ebs_default_kms_key_id")


# -- the resolver against a moto server, found through AWS_ENDPOINT_URL ------------------------------


@pytest.mark.server
def test_resolve_against_a_moto_server_through_aws_endpoint_url(server, monkeypatch):
    from keyfix.resolve import AwsGateway, resolve
    from tests.support.accounts import build_a1

    default_account = "123456789012"  # what moto serves to the plain "testing" credentials
    with moto_gaps.installed():
        try:
            case = build_a1(Env(endpoint_url=server.url), account=default_account)
            monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
            gw = AwsGateway()  # default boto3 session: environment credentials and endpoint

            situation = resolve(case.incident(), gw)
        finally:
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST"), timeout=10).read()

    assert gw.account == default_account and gw.region == REGION
    assert gw.calls == [
        ("sts", "GetCallerIdentity"),  # this account is keyfix's own, not the event's
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeLaunchTemplateVersions"),
        ("ec2", "DescribeImages"),
        ("ec2", "DescribeSnapshots"),
        ("kms", "DescribeKey"),
        ("kms", "GetKeyPolicy"),
        ("kms", "ListGrants"),
        ("iam", "GetRole"),
    ]
    assert {n.key_arn for n in situation.needs} == {case.key_arn}
    assert situation.principals[case.slr_arn].exists is True
