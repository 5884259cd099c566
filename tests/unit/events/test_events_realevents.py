"""Every EventBridge event and CloudTrail record in tests/fixtures/realevents, parsed.

CloudTrail records are wrapped the way EventBridge delivers them
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html).
"""

from __future__ import annotations

import copy

import pytest
from _events_support import REALEVENTS, cloudtrail_records, denied, realevent, wrap_cloudtrail

from keyfix.events import EventError, parse
from keyfix.events.autoscaling import kms_related
from keyfix.events.cloudtrail import KmsCloudTrailEvent
from keyfix.events.incident import Denial
from keyfix.events.patterns import classify
from keyfix.report import Trigger

# file -> expected trigger of each event / record in it, in order.
EXPECTED = {
    "asg-describe-scaling-activities-kms-invalidstate-cancelled-1.json": None,  # API output, not an event
    "asg-launch-unsuccessful-docs-template-1.json": [Trigger.ASG_LAUNCH_FAILURE],
    "asg-launch-unsuccessful-rust-fixture-1.json": [Trigger.ASG_LAUNCH_FAILURE],
    "cloudtrail-ec2-runinstances-by-asg-slr-1.json": [Trigger.UNRECOGNISED],  # ec2, succeeded
    "cloudtrail-kms-creategrant-success-docs-1.json": [Trigger.UNRECOGNISED],  # no errorCode
    "cloudtrail-kms-decrypt-accessdenied-snippet-1.json": [Trigger.KMS_ACCESS_DENIED],
    "cloudtrail-kms-decrypt-failure-incorrectkey-docs-1.json": [Trigger.UNRECOGNISED],  # IncorrectKeyException
    "cloudtrail-kms-ec2-createvolume-flow-docs-1.json": [Trigger.UNRECOGNISED] * 2,
    "cloudtrail-kms-ec2-encrypted-volume-flow-docs-1.json": [Trigger.UNRECOGNISED] * 4,
    "ebs-volume-notification-attachvolume-failed-kms-pending-deletion-docs-1.json": [Trigger.EBS_VOLUME_FAILURE],
    "ebs-volume-notification-createvolume-available-docs-1.json": [Trigger.UNRECOGNISED],  # result available
    "ebs-volume-notification-createvolume-failed-kms-disabled-docs-1.json": [Trigger.EBS_VOLUME_FAILURE],
    "ebs-volume-notification-createvolume-failed-kms-pending-import-docs-1.json": [Trigger.EBS_VOLUME_FAILURE],
    "ebs-volume-notification-reattachvolume-failed-kms-pending-deletion-docs-1.json": [Trigger.EBS_VOLUME_FAILURE],
    "ec2-instance-state-change-pending-docs-1.json": [Trigger.UNRECOGNISED],  # state pending
}


def _events_in(name: str) -> list[dict]:
    raw = realevent(name)
    records = cloudtrail_records(raw)
    if records:
        return [wrap_cloudtrail(r, event_id=r.get("eventID", "x")) for r in records]
    return [raw] if "detail-type" in raw else []


def test_every_realevents_json_is_accounted_for():
    assert sorted(p.name for p in REALEVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_keeps_its_source(name):
    source = (REALEVENTS / name).with_suffix(".src.txt")
    assert source.is_file(), f"{name} has no {source.name}"
    assert source.read_text(encoding="utf-8").startswith("Source:")
    readme = (REALEVENTS / "README.md").read_text(encoding="utf-8")
    assert f"| `{name}` | " in readme, f"{name} is not listed with its source in README.md"


def test_a_missing_fixture_fails_never_skips():
    with pytest.raises(AssertionError, match="missing test fixture: .*no-such-event.json"):
        realevent("no-such-event.json")


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is not None))
def test_realevent_parses_to_expected_trigger(name):
    events = _events_in(name)
    assert [parse(e).trigger for e in events] == EXPECTED[name]


def test_asg_docs_template_keeps_placeholders_and_reads_fields():
    inc = parse(realevent("asg-launch-unsuccessful-docs-template-1.json"))
    assert inc.time == "yyyy-mm-ddThh:mm:ssZ"
    assert (inc.group_name, inc.status_code, inc.activity_id, inc.instance_id) == (
        "my-auto-scaling-group",
        "Failed",
        "87654321-4321-4321-4321-210987654321",
        "i-1234567890abcdef0",
    )
    assert inc.status_message == "message-text"
    assert inc.kms_related is None  # a placeholder says nothing


def test_rust_fixture_has_a_real_timestamp():
    assert parse(realevent("asg-launch-unsuccessful-rust-fixture-1.json")).time == "1970-01-01T00:00:00Z"


def test_partial_accessdenied_snippet_derives_the_caller_from_the_message():
    (event,) = _events_in("cloudtrail-kms-decrypt-accessdenied-snippet-1.json")
    inc = parse(event)
    assert inc.action == "kms:Decrypt"
    assert inc.error_code == "AccessDenied"
    assert inc.denial is Denial.NO_RESOURCE_POLICY
    assert inc.kms_related is True
    c = inc.caller
    assert c.type == "AssumedRole"
    assert c.session_arn == (
        "arn:aws:sts::000000000000:assumed-role/aws-controltower-ConfigRecorderRole/LambdaDescribeHandlerSession"
    )
    # No sessionIssuer in the record: a path-less role ARN from the session ARN.
    assert c.arn == "arn:aws:iam::000000000000:role/aws-controltower-ConfigRecorderRole"
    assert c.account == "000000000000"
    assert c.invoked_by == "config.amazonaws.com"
    assert c.principal_id == "XXXXXXXXXXXXXXXXXXXXX:LambdaDescribeHandlerSession"
    # No resources / requestParameters: the key comes from "on resource: <arn>".
    assert inc.key_arns == ("arn:aws:kms:ap-northeast-1:000000000000:key/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",)


@pytest.mark.parametrize(
    ("name", "operation", "state", "key_in_resources"),
    [
        ("ebs-volume-notification-attachvolume-failed-kms-pending-deletion-docs-1.json", "attachVolume", "PendingDeletion", True),
        ("ebs-volume-notification-reattachvolume-failed-kms-pending-deletion-docs-1.json", "reattachVolume", "PendingDeletion", True),
        ("ebs-volume-notification-createvolume-failed-kms-disabled-docs-1.json", "createVolume", "Disabled", False),
        ("ebs-volume-notification-createvolume-failed-kms-pending-import-docs-1.json", "createVolume", "PendingImport", False),
    ],
)
def test_ebs_docs_examples(name, operation, state, key_in_resources):
    raw = realevent(name)
    inc = parse(raw)
    key = raw["detail"]["cause"].split(" ")[0]
    assert inc.key_arns == (key,)
    assert (key in raw["resources"]) is key_in_resources
    assert inc.key_state_hint == state
    assert inc.ebs_operation == operation
    assert inc.volume_id == "vol-01234567"
    assert inc.ebs_cause == raw["detail"]["cause"]
    assert inc.kms_related is True


def test_ec2_docs_example_without_version_parses_when_stopped():
    raw = realevent("ec2-instance-state-change-pending-docs-1.json")
    assert "version" not in raw
    assert classify(raw) is None  # pending is not a failure
    stopped = copy.deepcopy(raw)
    stopped["detail"]["state"] = "stopped"
    inc = parse(stopped)
    assert (inc.trigger, inc.instance_id, inc.instance_state, inc.kms_related) == (
        Trigger.EC2_LAUNCH_FAILURE,
        "i-abcd1111",
        "stopped",
        None,
    )
    assert (inc.event_id, inc.account, inc.region, inc.time) == (
        "7bf73129-1428-4cd3-a780-95db273d1602",
        "123456789012",
        "us-east-1",
        "2021-11-11T21:29:54Z",
    )


def test_describe_scaling_activities_sample_reads_as_kms():
    (activity,) = realevent("asg-describe-scaling-activities-kms-invalidstate-cancelled-1.json")["Activities"]
    assert kms_related(activity["StatusMessage"]) is True
    assert kms_related(activity["Description"]) is True
    assert kms_related(activity["Cause"]) is None  # "At ... an instance was started ..."
    # The same activity delivered as an event (no EC2InstanceId: taken from Description).
    event = {
        "version": "0",
        "id": "e",
        "detail-type": "EC2 Instance Launch Unsuccessful",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2024-10-04T18:06:40Z",
        "region": "us-west-2",
        "resources": [],
        "detail": {k: v for k, v in activity.items()},
    }
    inc = parse(event)
    assert (inc.status_code, inc.kms_related, inc.instance_id) == ("Cancelled", True, "i-1234abcd1234abcd1")
    assert inc.group_name == "eks-new_nodegroup_1-abcd1234-1234-abcd-1234-1234abcd1234"
    assert "Client.InvalidKMSKey.InvalidState" in inc.status_message
    assert inc.key_state_hint is None  # InvalidState never implies a key state


# -- the successful KMS records, as the AccessDenied records of the same calls ---------------


def test_creategrant_docs_record_denied():
    record = realevent("cloudtrail-kms-creategrant-success-docs-1.json")
    msg = (
        "User: arn:aws:iam::111122223333:user/Alice is not authorized to perform: kms:CreateGrant on resource: "
        "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
        "because no identity-based policy allows the kms:CreateGrant action"
    )
    event = wrap_cloudtrail(denied(record, msg))
    inc = parse(event)
    assert inc.trigger is Trigger.KMS_ACCESS_DENIED
    assert inc.action == "kms:CreateGrant"
    assert inc.denial is Denial.NO_IDENTITY_POLICY
    assert (inc.caller.type, inc.caller.arn, inc.caller.session_arn, inc.caller.account) == (
        "IAMUser",
        "arn:aws:iam::111122223333:user/Alice",
        None,
        "111122223333",
    )
    assert inc.key_arns == ("arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",)
    # CreateGrant parameters, read by the model (the Incident has no field for them yet).
    model = KmsCloudTrailEvent.model_validate(event)
    assert model.detail.request_parameters.grantee_principal == "EX_PRINCIPAL_ID"
    assert model.detail.request_parameters.operations == ["Encrypt", "RetireGrant"]
    assert model.detail.request_parameters.constraints == {"encryptionContextSubset": {"ContextKey1": "Value1"}}


def test_ec2_infrastructure_decrypt_denied_uses_session_issuer():
    records = realevent("cloudtrail-kms-ec2-encrypted-volume-flow-docs-1.json")["Records"]
    record = next(r for r in records if r["eventName"] == "Decrypt")
    msg = (
        "User: arn:aws:sts::111122223333:assumed-role/aws:ec2-infrastructure/i-81e2f56c is not authorized to "
        "perform: kms:Decrypt on resource: arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    inc = parse(wrap_cloudtrail(denied(record, msg)))
    assert inc.caller.arn == "arn:aws:iam::111122223333:role/aws:ec2-infrastructure"
    assert inc.caller.session_arn == "arn:aws:sts::111122223333:assumed-role/aws:ec2-infrastructure/i-81e2f56c"
    assert inc.encryption_context == {"aws:ebs:id": "vol-f67bafb2"}
    assert inc.denial is Denial.UNSPECIFIED  # old form, no reason


def test_ec2_flow_creategrant_denied_reads_the_caller_not_the_grantee():
    records = realevent("cloudtrail-kms-ec2-encrypted-volume-flow-docs-1.json")["Records"]
    record = next(r for r in records if r["eventName"] == "CreateGrant")
    msg = (
        "User: arn:aws:iam::111122223333:user/Alice is not authorized to perform: kms:CreateGrant on resource: "
        "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    inc = parse(wrap_cloudtrail(denied(record, msg, code="AccessDeniedException")))
    assert inc.caller.arn == "arn:aws:iam::111122223333:user/Alice"
    assert inc.caller.invoked_by is None  # the 2014 doc record has none
    assert inc.error_code == "AccessDeniedException"


def test_generate_data_key_key_fallbacks():
    records = realevent("cloudtrail-kms-ec2-createvolume-flow-docs-1.json")["Records"]
    record = next(r for r in records if r["eventSource"] == "kms.amazonaws.com")
    key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    msg = (
        "User: arn:aws:iam::111122223333:user/Alice is not authorized to perform: "
        f"kms:GenerateDataKeyWithoutPlaintext on resource: {key} because no resource-based policy allows the "
        "kms:GenerateDataKeyWithoutPlaintext action"
    )
    with_resources = denied(record, msg)
    assert parse(wrap_cloudtrail(with_resources)).key_arns == (key,)
    no_resources = copy.deepcopy(with_resources)
    del no_resources["resources"]
    inc = parse(wrap_cloudtrail(no_resources))
    assert inc.key_arns == ("alias/aws/ebs",)  # keyId kept as given; the resolver resolves it
    assert inc.encryption_context == {"aws:ebs:id": "vol-13439757"}
    no_key_id = copy.deepcopy(no_resources)
    del no_key_id["requestParameters"]["keyId"]
    assert parse(wrap_cloudtrail(no_key_id)).key_arns == (key,)


def test_incorrect_key_record_is_not_an_access_denial_even_if_forced_through_the_model():
    record = realevent("cloudtrail-kms-decrypt-failure-incorrectkey-docs-1.json")
    assert parse(wrap_cloudtrail(record)).trigger is Trigger.UNRECOGNISED
    record["errorCode"] = "AccessDenied"
    del record["userIdentity"]
    with pytest.raises(EventError, match="detail.userIdentity"):
        parse(wrap_cloudtrail(record))
