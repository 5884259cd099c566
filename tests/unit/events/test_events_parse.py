"""parse(): the sample events, unrecognised events, malformed recognised events,
the kms_related classifier, and the cold-start import budget."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
from _events_support import ROOT, SAMPLES, sample

from keyfix.events import EventError, parse, parse_json
from keyfix.events.autoscaling import kms_related
from keyfix.events.incident import Denial, Incident
from keyfix.report import Trigger

A = "111122223333"
SLR = f"arn:aws:iam::{A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

# -- every sample event ----------------------------------------------------------------------


def test_asg_a1_failed():
    inc = parse(sample("asg-launch-unsuccessful-a1.json"))
    assert inc.trigger is Trigger.ASG_LAUNCH_FAILURE
    assert (inc.account, inc.region, inc.group_name, inc.status_code) == (A, "us-east-1", "web-asg", "Failed")
    assert inc.instance_id == "i-0a1b2c3d4e5f6a7b8"
    assert inc.kms_related is True
    assert "Client.InvalidKMSKey.InvalidState" in inc.status_message
    assert inc.key_state_hint is None and inc.key_arns == ()  # never inferred from InvalidState


def test_asg_a1_cancelled():
    inc = parse(sample("asg-launch-cancelled-a1.json"))
    assert (inc.status_code, inc.kms_related, inc.instance_id) == ("Cancelled", True, "i-0a1b2c3d4e5f6a7b9")
    assert inc.activity_id == "b2e4d3c5-1c6f-7a8b-9c0d-1e2f3a4b5c6d"


def test_asg_a2_foreign_key_internal_error():
    inc = parse(sample("asg-launch-unsuccessful-a2.json"))
    assert inc.kms_related is True
    assert inc.status_message.endswith("Client.InternalError: Client error on launch")
    assert inc.key_arns == ()  # the event does not name the key; the resolver finds it


def test_asg_not_kms():
    inc = parse(sample("asg-launch-unsuccessful-not-kms.json"))
    assert (inc.trigger, inc.kms_related) == (Trigger.ASG_LAUNCH_FAILURE, False)


def test_asg_terminate_successful():
    inc = parse(sample("asg-terminate-successful-a1.json"))
    assert (inc.trigger, inc.detail_type, inc.status_code, inc.kms_related) == (
        Trigger.ASG_LAUNCH_FAILURE,
        "EC2 Instance Terminate Successful",
        "InProgress",
        True,
    )
    assert inc.instance_id == "i-0a1b2c3d4e5f6a7b9"


def test_terminate_with_reason_only_in_cause_reports_the_cause():
    event = sample("asg-terminate-successful-a1.json")
    reason = event["detail"]["StatusMessage"]
    event["detail"]["StatusMessage"] = ""
    event["detail"]["Cause"] = reason
    inc = parse(event)
    assert (inc.status_message, inc.kms_related) == (reason, True)


def test_cloudtrail_b_user():
    inc = parse(sample("cloudtrail-kms-accessdenied-b-user-createvolume.json"))
    assert inc.trigger is Trigger.KMS_ACCESS_DENIED
    assert (inc.caller.type, inc.caller.arn, inc.caller.account) == ("IAMUser", f"arn:aws:iam::{A}:user/dev-alice", A)
    assert inc.action == "kms:GenerateDataKeyWithoutPlaintext"
    assert inc.denial is Denial.NO_RESOURCE_POLICY
    assert inc.encryption_context == {"aws:ebs:id": "vol-0b1b2b3b4b5b6b7b8"}
    assert inc.key_arns == (f"arn:aws:kms:us-east-1:{A}:key/0987dcba-09fe-87dc-65ba-ab0987654321",)


def test_cloudtrail_c_role():
    inc = parse(sample("cloudtrail-kms-accessdenied-c-role-creategrant.json"))
    assert (inc.caller.type, inc.caller.arn, inc.caller.session_arn) == (
        "AssumedRole",
        f"arn:aws:iam::{A}:role/ec2-operator",
        f"arn:aws:sts::{A}:assumed-role/ec2-operator/bob",
    )
    assert inc.caller.invoked_by is None
    assert inc.caller.principal_id == "AROAEXAMPLEEC2OPERAT:bob"
    assert (inc.action, inc.denial) == ("kms:CreateGrant", Denial.NO_IDENTITY_POLICY)
    assert inc.encryption_context == {}  # CreateGrant has constraints, not an encryptionContext


def test_cloudtrail_slr():
    inc = parse(sample("cloudtrail-kms-accessdenied-slr.json"))
    assert inc.caller.arn == SLR
    assert inc.caller.session_arn == f"arn:aws:sts::{A}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
    assert inc.caller.invoked_by == "autoscaling.amazonaws.com"
    assert inc.key_arns == (f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab",)
    assert (inc.error_code, inc.kms_related) == ("AccessDenied", True)


@pytest.mark.parametrize(
    ("name", "operation", "state", "volume"),
    [
        ("ebs-volume-failed-pending-deletion.json", "attachVolume", "PendingDeletion", "vol-0e1e2e3e4e5e6e7e8"),
        ("ebs-volume-failed-disabled.json", "createVolume", "Disabled", "vol-0d1d2d3d4d5d6d7d8"),
    ],
)
def test_ebs_samples(name, operation, state, volume):
    raw = sample(name)
    inc = parse(raw)
    assert (inc.trigger, inc.ebs_operation, inc.key_state_hint, inc.volume_id) == (
        Trigger.EBS_VOLUME_FAILURE,
        operation,
        state,
        volume,
    )
    key = raw["detail"]["cause"].split(" ")[0]
    assert key.startswith(f"arn:aws:kms:us-east-1:{A}:key/")
    assert inc.key_arns == (key,)


def test_ebs_cause_without_a_key():
    event = sample("ebs-volume-failed-disabled.json")
    event["detail"]["cause"] = "Source snapshot ID is not valid"
    inc = parse(event)
    assert (inc.key_arns, inc.key_state_hint, inc.kms_related) == ((), None, None)
    assert inc.ebs_cause == "Source snapshot ID is not valid"


def test_ec2_stopped():
    inc = parse(sample("ec2-instance-stopped.json"))
    assert (inc.trigger, inc.instance_id, inc.instance_state, inc.kms_related) == (
        Trigger.EC2_LAUNCH_FAILURE,
        "i-0c3d4e5f6a7b8c9d0",
        "stopped",
        None,
    )


def test_unrecognised_sample():
    inc = parse(sample("unrecognised.json"))
    assert inc == Incident(
        trigger=Trigger.UNRECOGNISED,
        event_id="b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
        source="my.app",
        detail_type="Order Placed",
        account=A,
        region="us-east-1",
        time="2025-03-20T10:00:00Z",
    )


def test_samples_use_the_agreed_identifiers():
    for path in SAMPLES.glob("*.json"):
        event = json.loads(path.read_text())
        assert (event["account"], event["region"], event["version"]) == (A, "us-east-1", "0"), path.name
        text = path.read_text()
        if "444455556666" in text:
            raise AssertionError(f"{path.name}: the key owner account appears in an event of the workload account")


def test_readme_lists_every_sample():
    readme = (SAMPLES / "README.md").read_text()
    for path in SAMPLES.glob("*.json"):
        assert f"`{path.name}`" in readme, path.name


# -- unrecognised and malformed --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"id": 5, "source": ["aws.ec2"], "detail-type": None, "account": {}, "region": 1.5, "time": 0},
        # (Launch Successful is keyfix's recovery trigger now: tests/unit/events/test_events_followup.py)
        {"source": "aws.autoscaling", "detail-type": "EC2 Instance Detach Successful", "detail": {}},
        {"source": "my.app", "detail-type": "EC2 Instance Launch Unsuccessful", "detail": {}},
        {"source": "aws.ec2", "detail-type": "EBS Volume Notification", "detail": "failed"},
    ],
)
def test_unrecognised_reads_only_what_is_safe(raw):
    inc = parse(raw)
    assert inc.trigger is Trigger.UNRECOGNISED
    for field in ("event_id", "source", "detail_type", "account", "region"):
        assert isinstance(getattr(inc, field), str)
    assert inc.source == (raw["source"] if isinstance(raw.get("source"), str) else "")
    assert inc.time is None or isinstance(inc.time, str)


@pytest.mark.parametrize("raw", [None, [], ["x"], "event", 3, 2.5, True])
def test_non_objects_raise_event_error(raw):
    with pytest.raises(EventError, match="must be a JSON object"):
        parse(raw)


@pytest.mark.parametrize(
    ("name", "mutate", "field"),
    [
        ("asg-launch-unsuccessful-a1.json", lambda e: e["detail"].pop("AutoScalingGroupName"), "detail.AutoScalingGroupName"),
        ("asg-launch-unsuccessful-a1.json", lambda e: e["detail"].update(AutoScalingGroupName=""), "detail.AutoScalingGroupName"),
        ("asg-launch-unsuccessful-a1.json", lambda e: e["detail"].update(StatusMessage=7), "detail.StatusMessage"),
        ("asg-launch-unsuccessful-a1.json", lambda e: e.pop("account"), "account"),
        ("asg-launch-unsuccessful-a1.json", lambda e: e.update(time=1700000000), "time"),
        ("asg-launch-unsuccessful-a1.json", lambda e: e.update(detail=[]), "detail"),
        ("cloudtrail-kms-accessdenied-slr.json", lambda e: e["detail"].pop("eventName"), "detail.eventName"),
        ("cloudtrail-kms-accessdenied-slr.json", lambda e: e["detail"].update(userIdentity="root"), "detail.userIdentity"),
        (
            "cloudtrail-kms-accessdenied-b-user-createvolume.json",
            lambda e: e["detail"]["requestParameters"]["encryptionContext"].update({"aws:ebs:id": 1}),
            "detail.requestParameters.encryptionContext.aws:ebs:id",
        ),
        ("cloudtrail-kms-accessdenied-slr.json", lambda e: e["detail"].update(resources=[{"ARN": 3}]), "detail.resources.0.ARN"),
        ("ebs-volume-failed-disabled.json", lambda e: e["detail"].pop("event"), "detail.event"),
        ("ebs-volume-failed-disabled.json", lambda e: e.update(resources="vol"), "resources"),
        ("ec2-instance-stopped.json", lambda e: e["detail"].pop("instance-id"), "detail.instance-id"),
        ("ec2-instance-stopped.json", lambda e: e.update(region=None), "region"),
    ],
)
def test_recognised_but_malformed_names_the_field(name, mutate, field):
    event = sample(name)
    mutate(event)
    with pytest.raises(EventError) as info:
        parse(event)
    message = str(info.value)
    assert f"{field}:" in message
    assert "malformed" in message and event["detail-type"] in message


def test_docs_placeholder_time_and_missing_version_are_accepted():
    event = sample("ebs-volume-failed-disabled.json")
    event["time"] = "yyyy-mm-ddThh:mm:ssZ"
    del event["version"]
    assert parse(event).time == "yyyy-mm-ddThh:mm:ssZ"


def test_extra_fields_are_ignored():
    event = sample("asg-launch-cancelled-a1.json")
    event["replay-name"] = "replay"
    event["detail"]["SomethingNew"] = {"x": [1, 2]}
    event["unexpected"] = True
    assert parse(event).kms_related is True


def test_parse_json():
    text = (SAMPLES / "asg-launch-cancelled-a1.json").read_text()
    assert parse_json(text).trigger is Trigger.ASG_LAUNCH_FAILURE
    assert parse_json(text.encode()).trigger is Trigger.ASG_LAUNCH_FAILURE
    for bad in (text[: len(text) // 2], "", "{", b"\xff\xfe\x00", "[" * 100_000 + "]" * 100_000):
        with pytest.raises(EventError):
            parse_json(bad)


# -- kms_related -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # strings catalog 1, 2, 5, 7: KMS
        (
            "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
            "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state",
            True,
        ),
        (
            "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
            "Client.InternalError: Client error on launch",
            True,
        ),
        (
            "Instance failed to launch\nCause: One or more of the attached Amazon EBS volumes are encrypted with an "
            "inaccessible AWS KMS key.\n\nResolution:\nEnsure that the KMS keys are in the enabled state.",
            True,
        ),
        ("Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state", True),
        # catalog 4: look-alikes that are not KMS
        (
            "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
            "Server.InternalError: Internal error on launch",
            False,
        ),
        (
            "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
            "Client.VolumeLimitExceeded: Volume limit exceeded",
            False,
        ),
        (
            "We currently do not have sufficient t3.large capacity in the Availability Zone you requested "
            "(us-east-1a). Launching EC2 instance failed.",
            False,
        ),
        ("InsufficientInstanceCapacity", False),
        ("You have requested more vCPU capacity than your current vCPU limit of 32 allows", False),
        # unknown
        ("message-text", None),
        ("description-text", None),
        ("", None),
        (None, None),
        ("At 2024-10-04T18:06:36Z an instance was started in response to a difference between desired and actual capacity", None),
    ],
)
def test_kms_related_from_one_text(text, expected):
    assert kms_related(text) is expected


def test_kms_reason_wins_over_a_non_kms_one():
    assert kms_related("Server.InternalError: Internal error on launch", "Client.InternalError: Client error on launch") is True
    assert kms_related("message-text", "Client.VolumeLimitExceeded: Volume limit exceeded") is False


# -- cold start ----------------------------------------------------------------------------------


def test_importing_events_and_parsing_an_unrecognised_event_loads_no_pydantic():
    code = (
        "import sys, json\n"
        "from keyfix.events import parse\n"
        "assert 'pydantic' not in sys.modules, 'import'\n"
        f"parse(json.load(open({str(SAMPLES / 'unrecognised.json')!r})))\n"
        "assert 'pydantic' not in sys.modules, 'unrecognised'\n"
        f"parse(json.load(open({str(SAMPLES / 'ec2-instance-stopped.json')!r})))\n"
        "assert 'keyfix.events.ec2' in sys.modules\n"
        "assert 'keyfix.events.cloudtrail' not in sys.modules, 'only the trigger module'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_parse_does_not_mutate_its_input():
    event = sample("cloudtrail-kms-accessdenied-c-role-creategrant.json")
    before = copy.deepcopy(event)
    parse(event)
    assert event == before
