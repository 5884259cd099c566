"""keyfix.names accepts exactly what AWS documents and refuses the rest, naming the part.

The oracles here are written differently from the module (character sets and lengths spelled
out, not its regular expressions), from the same API parameters the module cites.
"""

from __future__ import annotations

import json
import string
import uuid
from pathlib import Path

import botocore
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keyfix import names
from keyfix.names import InvalidName

# CreateUser UserName / CreateRole RoleName / AssumeRole RoleSessionName: "upper and lowercase
# alphanumeric characters with no spaces ... _+=,.@-" (ASCII: AWS's \w is Java's).
IAM_NAME_CHARS = string.ascii_letters + string.digits + "_+=,.@-"
# CreateUser / CreateRole Path: "/" alone, or "/" ... "/" of ! (0x21) to ~ (0x7E).
PATH_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))
ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

iam_names = st.text(IAM_NAME_CHARS, min_size=1, max_size=64)
paths = st.one_of(st.just("/"), st.text(PATH_CHARS, min_size=1, max_size=510).map(lambda s: f"/{s}/"))
# Characters a name may not hold: shell syntax, whitespace, controls, non-ASCII look-alikes.
FORBIDDEN_IN_NAMES = "".join(sorted(set(PATH_CHARS) - set(IAM_NAME_CHARS))) + " \t\n\r\x00\x7f\u00e9\u0430\uff04"


def is_iam_name(value: str, max_len: int, min_len: int = 1) -> bool:
    return min_len <= len(value) <= max_len and all(c in IAM_NAME_CHARS for c in value)


def is_iam_path(value: str) -> bool:
    return value == "/" or (3 <= len(value) <= 512 and value[0] == value[-1] == "/"
                            and all(c in PATH_CHARS for c in value))


@settings(max_examples=300, deadline=None)
@given(iam_names)
def test_every_documented_user_role_and_policy_name_is_accepted(name):
    assert names.user_name(name) == name and names.role_name(name) == name and names.policy_name(name) == name


@settings(max_examples=300, deadline=None)
@given(paths)
def test_every_documented_path_is_accepted(path):
    assert names.iam_path(path) == path


@settings(max_examples=300, deadline=None)
@given(iam_names, paths, st.sampled_from(["user", "role"]), st.sampled_from(["aws", "aws-cn", "aws-us-gov"]))
def test_every_documented_user_and_role_arn_is_accepted(name, path, kind, partition):
    # Roles under /aws-service-role/ are service-linked: AWS makes them, at /aws-service-role/SERVICE/,
    # and keyfix checks that shape (test_principal_arn_refusal_names_the_offending_part).
    assume(not (kind == "role" and path.startswith("/aws-service-role/")))
    arn = f"arn:{partition}:iam::{ACCOUNT}:{kind}{path}{name}"
    assert names.principal_arn(arn) == arn


@settings(max_examples=300, deadline=None)
@given(iam_names, st.text(IAM_NAME_CHARS, min_size=2, max_size=64))
def test_every_documented_assumed_role_session_is_accepted(role, session):
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"
    assert names.principal_arn(arn) == arn


@settings(max_examples=500, deadline=None)
@given(st.text(IAM_NAME_CHARS + FORBIDDEN_IN_NAMES, min_size=0, max_size=70))
def test_names_are_accepted_exactly_when_the_documented_rule_says(name):
    for check, max_len in ((names.user_name, 64), (names.role_name, 64), (names.policy_name, 128)):
        if is_iam_name(name, max_len):
            assert check(name) == name
        else:
            with pytest.raises(InvalidName):
                check(name)


@settings(max_examples=500, deadline=None)
@given(st.text(PATH_CHARS + " \t\n\x7f\u00e9", min_size=0, max_size=20).map(lambda s: s if s[:1] == "/" else "/" + s))
def test_paths_are_accepted_exactly_when_the_documented_rule_says(path):
    if is_iam_path(path):
        assert names.iam_path(path) == path
    else:
        with pytest.raises(InvalidName):
            names.iam_path(path)


def test_length_limits_are_the_documented_ones():
    assert names.role_name("r" * 64) and names.user_name("u" * 64)
    for check in (names.role_name, names.user_name):
        with pytest.raises(InvalidName):
            check("r" * 65)
    assert names.iam_path("/" + "p" * 510 + "/")
    with pytest.raises(InvalidName):
        names.iam_path("/" + "p" * 511 + "/")
    assert names.session_name("ab") and names.session_name("s" * 64)
    for bad in ("a", "s" * 65):
        with pytest.raises(InvalidName):
            names.session_name(bad)
    assert names.grant_name("g" * 256)
    with pytest.raises(InvalidName):
        names.grant_name("g" * 257)


def test_the_issue_examples_are_refused():
    with pytest.raises(InvalidName, match="IAM user name"):
        names.principal_arn(f"arn:aws:iam::{ACCOUNT}:user/x;touch${{IFS}}PWNED;#")
    with pytest.raises(InvalidName, match="IAM role name"):
        names.principal_arn(f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
                            "AWSServiceRoleForAutoScaling_$(touch${IFS}PWNED)")
    with pytest.raises(InvalidName, match="IAM role name"):
        names.principal_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling_$(touch${{IFS}}PWNED)/s")


@pytest.mark.parametrize("arn,part", [
    (f"arn:aws:iam::{ACCOUNT}:user/a b", "IAM user name"),
    (f"arn:aws:iam::{ACCOUNT}:user/te am/alice", "IAM path"),
    (f"arn:aws:iam::{ACCOUNT}:role/", "IAM role name"),
    (f"arn:aws:iam::12345:role/r", "account id"),
    (f"arn:aws;x:iam::{ACCOUNT}:role/r", "partition"),
    (f"arn:aws:iam:us-east-1:{ACCOUNT}:role/r", "principal ARN Region"),
    (f"arn:aws:iam::{ACCOUNT}:group/devs", "IAM principal"),
    (f"arn:aws:s3::{ACCOUNT}:role/r", "principal ARN"),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/r", "assumed-role session"),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s`id`", "role session name"),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/x", "federated user name"),
    (f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/$(id)/AWSServiceRoleForAutoScaling", "service principal"),
    ("ec2.amazonaws.com", "principal ARN"),
    ("", "principal ARN"),
])
def test_principal_arn_refusal_names_the_offending_part(arn, part):
    with pytest.raises(InvalidName) as caught:
        names.principal_arn(arn)
    assert str(caught.value).startswith(part + " ")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("arn", [
    f"arn:aws:iam::{ACCOUNT}:root",
    f"arn:aws:iam::{ACCOUNT}:user/dev-alice",
    f"arn:aws:iam::{ACCOUNT}:role/team/ec2-operator",
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/jane.doe@example.com",
    f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
    f"arn:aws-us-gov:iam::{ACCOUNT}:role/r",
])
def test_real_principal_shapes_are_accepted(arn):
    assert names.principal_arn(arn) == arn


def _botocore_data(name: str) -> dict:
    return json.loads((Path(botocore.__file__).parent / "data" / name).read_text())


def test_every_region_and_partition_botocore_knows_is_accepted():
    endpoints = _botocore_data("endpoints.json")
    regions = [r for p in endpoints["partitions"] for r in p["regions"]]
    partitions = [p["partition"] for p in endpoints["partitions"]]
    partitions += [p["id"] for p in _botocore_data("partitions.json")["partitions"]]
    assert len(regions) > 30 and len(set(partitions)) >= 5
    for region in regions:
        assert names.region(region) == region
    for partition in partitions:
        assert names.partition(partition) == partition


@pytest.mark.parametrize("region", ["", "us-east-1 ", "us-east-1;id", "US-EAST-1", "us-east", "$(id)", "us-east-1\n"])
def test_regions_not_shaped_like_one_are_refused(region):
    with pytest.raises(InvalidName, match="Region"):
        names.region(region)


@settings(max_examples=200, deadline=None)
@given(st.uuids(), st.sampled_from(["us-east-1", "eu-west-2", "cn-north-1"]), st.booleans())
def test_every_key_id_shape_is_accepted(key_uuid, region, multi_region):
    key_id = f"mrk-{key_uuid.hex}" if multi_region else str(key_uuid)
    arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"
    assert names.kms_key_id(key_id) == key_id and names.key_arn(arn) == arn


@pytest.mark.parametrize("arn,part", [
    (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/$(touch CANARY)", "KMS key id"),
    (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID};id", "KMS key id"),
    (f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/ebs", "KMS key ARN resource"),
    (f"arn:aws:kms::{ACCOUNT}:key/{KEY_ID}", "Region"),
    (f"arn:aws:kms:us-east-1`id`:{ACCOUNT}:key/{KEY_ID}", "Region"),
    (f"arn:aws:kms:us-east-1:{ACCOUNT}1:key/{KEY_ID}", "account id"),
    (f"arn:aws:iam::{ACCOUNT}:key/{KEY_ID}", "KMS key ARN"),
    (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/mrk-{uuid.uuid4().hex}x", "KMS key id"),
])
def test_key_arn_refusal_names_the_offending_part(arn, part):
    with pytest.raises(InvalidName) as caught:
        names.key_arn(arn)
    assert str(caught.value).startswith(part + " ")


def test_grant_names_service_principals_group_names_and_ec2_ids():
    assert names.grant_name("keyfix-AWSServiceRoleForAutoScaling_x-0a1b2c3d")
    for bad in ("keyfix-a.b", "a b", "", "a@b"):
        with pytest.raises(InvalidName):
            names.grant_name(bad)
    for good in ("autoscaling.amazonaws.com", "spot.amazonaws.com", "ec2.amazonaws.com.cn"):
        assert names.service_principal(good) == good
    for bad in ("amazonaws", "a..b", "ec2.amazonaws.com;id", "$(id).amazonaws.com", "a." + "b" * 130):
        with pytest.raises(InvalidName):
            names.service_principal(bad)
    assert names.group_name("my-asg$(x)") and names.group_name("!" * 255)
    for bad in ("a:b", "a b", "", "g" * 256, "a\nb"):
        with pytest.raises(InvalidName):
            names.group_name(bad)
    assert names.snapshot_id("snap-0123456789abcdef0") and names.image_id("ami-12345678")
    for bad in ("snap-1234", "snap-0123456789ABCDEF0", "snap-$(id)"):
        with pytest.raises(InvalidName):
            names.snapshot_id(bad)
    assert names.grant_operation("Decrypt")
    with pytest.raises(InvalidName):
        names.grant_operation("Decrypt;id")


@pytest.mark.parametrize("value", [None, 12, b"role", ["r"]])
def test_non_strings_are_refused_not_crashed_on(value):
    for check in (names.role_name, names.iam_path, names.principal_arn, names.key_arn, names.region):
        with pytest.raises(InvalidName):
            check(value)


def test_message_quotes_and_truncates_the_value():
    with pytest.raises(InvalidName) as caught:
        names.role_name("x\n" * 100)
    message = str(caught.value)
    assert "\n" not in message and "..." in message and len(message) < 300
