"""The new shapes of issue #11: "EC2 Instance Launch Successful" (trigger `recovery`) and the
follow-up message keyfix sends itself (`keyfix.followup/1`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from keyfix.events import parse
from keyfix.events.followup import MAX_ATTEMPTS, FollowUpMessage
from keyfix.followup import is_sqs_batch
from keyfix.report import Trigger

# AWS's example ("Successful scaling events",
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html),
# with its placeholders filled in.
LAUNCH_SUCCESSFUL = {
    "version": "0", "id": "12345678-1234-1234-1234-123456789012", "detail-type": "EC2 Instance Launch Successful",
    "source": "aws.autoscaling", "account": "123456789012", "time": "yyyy-mm-ddThh:mm:ssZ", "region": "us-west-2",
    "resources": ["auto-scaling-group-arn", "instance-arn"],
    "detail": {"StatusCode": "InProgress", "Description": "Launching a new EC2 instance: i-12345678",
               "AutoScalingGroupName": "my-auto-scaling-group", "ActivityId": "87654321-4321-4321-4321-210987654321",
               "Details": {"Availability Zone": "us-west-2b", "Subnet ID": "subnet-12345678"},
               "RequestId": "12345678-1234-1234-1234-123456789012", "StatusMessage": "",
               "EndTime": "yyyy-mm-ddThh:mm:ssZ", "EC2InstanceId": "i-1234567890abcdef0",
               "StartTime": "yyyy-mm-ddThh:mm:ssZ", "Cause": "description-text"}}


def test_launch_successful_is_the_recovery_trigger():
    incident = parse(LAUNCH_SUCCESSFUL)
    assert incident.trigger == Trigger.RECOVERY
    assert (incident.group_name, incident.instance_id) == ("my-auto-scaling-group", "i-1234567890abcdef0")
    assert incident.time == "yyyy-mm-ddThh:mm:ssZ"  # the placeholder parses; recovery then uses "now"


def test_launch_successful_takes_the_activity_end_time():
    event = json.loads(json.dumps(LAUNCH_SUCCESSFUL))
    event["time"], event["detail"]["EndTime"] = "2025-01-01T00:00:00Z", "2025-01-01T00:00:42Z"
    assert parse(event).time == "2025-01-01T00:00:42Z"


def test_launch_successful_without_a_group_is_malformed():
    from keyfix.events import EventError

    event = json.loads(json.dumps(LAUNCH_SUCCESSFUL))
    del event["detail"]["AutoScalingGroupName"]
    with pytest.raises(EventError, match="AutoScalingGroupName"):
        parse(event)


GOOD = {"schema": "keyfix.followup/1", "chain": "a" * 64, "token": "b" * 32, "attempt": 1, "reason": "applied",
        "first_failure_at": "2025-01-01T00:00:00Z", "change_ids": ["3a933dfd-16c6-4cb5-9dc9-8a66aca97f13"],
        "group": "web-asg", "incident_key": {"k": "v"}, "original_event": {"id": "x"}}


def test_a_good_message_validates():
    msg = FollowUpMessage.model_validate_json(json.dumps(GOOD))
    assert (msg.attempt, msg.reason, msg.group) == (1, "applied", "web-asg")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(GOOD)), value=json_values)
def test_any_changed_field_is_either_still_valid_or_rejected_cleanly(field, value):
    """Every mutation of one field either validates to exactly what was sent or raises
    ValidationError: never another exception, never a silently coerced value."""
    body = {**GOOD, field: value}
    try:
        msg = FollowUpMessage.model_validate_json(json.dumps(body))
    except ValidationError:
        return
    dumped = msg.model_dump(by_alias=True)
    assert dumped[field] == value
    assert 1 <= msg.attempt <= MAX_ATTEMPTS


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_body_is_rejected_or_valid_never_a_crash(text):
    try:
        FollowUpMessage.model_validate_json(text)
    except ValidationError:
        return
    raise AssertionError("arbitrary text validated as a follow-up message")


@pytest.mark.parametrize("attempt", [0, MAX_ATTEMPTS + 1, -1, True, 1.0, "1"])
def test_attempts_outside_the_bound_or_not_integers_are_rejected(attempt):
    with pytest.raises(ValidationError):
        FollowUpMessage.model_validate_json(json.dumps({**GOOD, "attempt": attempt}))


@pytest.mark.parametrize("raw, expected", [
    ({"Records": [{"eventSource": "aws:sqs"}]}, True),
    ({"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:sns"}]}, False),
    ({"Records": []}, False),
    ({"Records": [{"eventSource": "aws:sqs"}], "id": "x"}, False),
    (LAUNCH_SUCCESSFUL, False),
    ([], False),
])
def test_sqs_batches_are_told_apart_from_events(raw, expected):
    assert is_sqs_batch(raw) is expected
