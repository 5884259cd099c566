"""The runtime switch (keyfix.switch): flipped in SSM, it changes what keyfix does within its
cache lifetime, is in every report, and a value nobody can read never lets keyfix write."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from keyfix.config import Settings
from keyfix.pipeline import process_event
from keyfix.report import Mode
from keyfix.switch import STATES, current_switch

NAME = "/keyfix/test/switch"
EVENT = {"version": "0", "id": "e-1", "detail-type": "Something Else", "source": "aws.autoscaling",
         "account": "111122223333", "time": "2025-03-14T09:12:41Z", "region": "us-east-1", "resources": [],
         "detail": {}}


@pytest.fixture
def ssm(monkeypatch):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    monkeypatch.setenv("KEYFIX_SWITCH_PARAMETER", NAME)
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=NAME, Value="normal", Type="String")
        yield client
    parameters.clear_caches()


def test_a_flip_takes_effect_within_the_cache_lifetime_and_not_before(ssm):
    assert current_switch(max_age=1).state == "normal"
    ssm.put_parameter(Name=NAME, Value="pause", Type="String", Overwrite=True)
    assert current_switch(max_age=1).state == "normal"  # cached: a burst costs one read
    time.sleep(1.2)
    assert current_switch(max_age=1).state == "pause"
    ssm.put_parameter(Name=NAME, Value="propose", Type="String", Overwrite=True)
    time.sleep(1.2)
    switch = current_switch(max_age=1)
    assert (switch.state, switch.source, switch.reason) == ("propose", NAME, None)
    assert switch.apply(Settings(mode=Mode.APPLY)).mode == Mode.PROPOSE
    assert current_switch(max_age=1).apply(Settings(mode=Mode.PROPOSE)).mode == Mode.PROPOSE


@pytest.mark.parametrize("value", ["", "off", "PAUSED", "normal;pause", "x" * 300])
def test_an_unknown_value_is_taken_as_propose_and_says_so(ssm, value):
    if value:
        ssm.put_parameter(Name=NAME, Value=value, Type="String", Overwrite=True)
    else:
        ssm.delete_parameter(Name=NAME)
    switch = current_switch(max_age=0)
    assert switch.state == "propose" and switch.reason and switch.apply(Settings(mode=Mode.APPLY)).mode == Mode.PROPOSE


def test_no_parameter_configured_means_normal_and_no_read(monkeypatch):
    monkeypatch.delenv("KEYFIX_SWITCH_PARAMETER", raising=False)
    switch = current_switch()
    assert (switch.state, switch.source) == ("normal", "none")


@pytest.mark.parametrize("state", STATES)
def test_every_report_carries_the_switch_and_pause_handles_nothing(ssm, state):
    ssm.put_parameter(Name=NAME, Value=state, Type="String", Overwrite=True)
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()

    class NoAws:  # a paused or unrecognised run makes no AWS call through the gateway
        def client(self, *a, **k):
            raise AssertionError("AWS call while paused")

    event = dict(EVENT, **{"detail-type": "EC2 Instance Launch Unsuccessful"},
                 detail={"AutoScalingGroupName": "web", "StatusCode": "Failed", "StatusMessage": "x"})
    if state == "pause":
        report = process_event(event, Settings(mode=Mode.APPLY), NoAws())
        assert report.findings == [] and report.to_dict()["switch"] == {"state": "pause", "source": NAME, "reason": None}
    report = process_event(EVENT, Settings(mode=Mode.APPLY), NoAws())  # unrecognised: no AWS call either way
    assert report.to_dict()["switch"]["state"] == state
