"""Key-change checks on moto (issue #11, item 4): a key-policy edit predicted to break the group
that uses the key, before any launch, with nothing written even in apply mode on an opted-in
key; only the groups the change touches; keyfix's own change ignored; a change keyfix cannot
relate to a group ends in a short report."""

from __future__ import annotations

import json

import pytest

from keyfix.sim.scenarios.common import root_only_policy
from keyfix.sim.scenarios.fleet import build_mixed
from tests.integration.conftest import load_event, run_lambda
from tests.support.accounts import ASG_ACCOUNT, REGION

SAMPLE_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def apply_on_every_key(monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.setenv("KEYFIX_KEY_ALLOWLIST", f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/*")


def edit_breaks_healthy_key(world) -> tuple:
    fleet = build_mixed(world.env)
    key = fleet.keys["healthy"]
    world.client("kms").put_key_policy(KeyId=key.rsplit("/", 1)[-1], PolicyName="default",
                                       Policy=json.dumps(root_only_policy(ASG_ACCOUNT)))  # alice's edit
    return fleet, key


def test_a_key_policy_edit_is_predicted_to_break_the_group_and_nothing_is_written(world, apply_on_every_key):
    fleet, key = edit_breaks_healthy_key(world)
    before = {k: world.key_policy(a) for k, a in fleet.keys.items()}
    event = load_event("cloudtrail-kms-putkeypolicy-change.json", {SAMPLE_KEY: key})

    report = run_lambda(event)

    assert report["event"]["trigger"] == "key-change" and report["mode"] == "apply"
    (finding,) = report["findings"]  # healthy-asg only: broken-asg and disabled-asg use other keys
    assert finding["resource"] == fleet.groups["healthy-asg"]
    assert finding["cause"] == "slr-not-in-key-policy" and finding["key_arn"] == key
    assert finding["predicted"] is True
    assert finding["explanation"].startswith(
        "arn:aws:iam::111122223333:user/alice made PutKeyPolicy at 2025-03-04T02:58:11Z: "
        "this change will break healthy-asg at its next launch: ")
    assert finding["fixes"] and {fix["status"] for fix in finding["fixes"]} == {"proposed"}
    assert all("never reverts a person's change" in fix["reason"] for fix in finding["fixes"])
    assert {k: world.key_policy(a) for k, a in fleet.keys.items()} == before  # nothing written
    (message,) = world.notifications()
    assert "alice" in message["Message"] and "healthy-asg" in message["Message"]


def test_carry_out_refuses_key_change_findings_even_when_handed_them(world, apply_on_every_key):
    """Defence in depth: the fixes carry a write blocker, so carry_out refuses them."""
    from keyfix.config import Settings
    from keyfix.predict.act import proposals_only
    from keyfix.predict.check import check
    from keyfix.predict.subjects import group_page
    from keyfix.remedies.apply import carry_out
    from keyfix.report import Trigger
    from keyfix.resolve.gateway import AwsGateway

    fleet, key = edit_breaks_healthy_key(world)
    gw = AwsGateway(region=REGION)
    gw.home_account()
    (subject,) = [s for s in group_page(gw, REGION, None).subjects if s.name == "healthy-asg"]
    checked = check(subject, gw, trigger=Trigger.KEY_CHANGE, event_id="e", source="aws.kms",
                    detail_type="AWS API Call via CloudTrail", account=ASG_ACCOUNT, region=REGION)
    proposals_only(checked.findings, "proposed only: a person's change")
    before = world.key_policy(key)

    changes = carry_out(checked.findings, checked.situation, Settings.from_env(), gw)

    assert changes == []
    assert world.key_policy(key) == before
    statuses = {fix.status for f in checked.findings for fix in f.fixes}
    assert statuses == {"refused"}


def test_keyfix_own_change_is_ignored(world, apply_on_every_key):
    fleet, key = edit_breaks_healthy_key(world)
    event = load_event("cloudtrail-kms-putkeypolicy-change.json", {SAMPLE_KEY: key})
    event["detail"]["userIdentity"] = {
        "type": "AssumedRole", "arn": f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/keyfix-KeyfixRole-X/fn",
        "accountId": ASG_ACCOUNT, "principalId": "AROAEXAMPLE:fn",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ASG_ACCOUNT}:role/keyfix/keyfix-KeyfixRole-X",
                                             "accountId": ASG_ACCOUNT, "userName": "keyfix-KeyfixRole-X"}}}

    report = run_lambda(event)

    assert report["findings"] == [] and world.notifications() == []


def test_a_change_to_a_key_no_group_uses_ends_in_a_short_report(world):
    build_mixed(world.env)
    other = world.client("kms").create_key(Description="unrelated")["KeyMetadata"]["Arn"]
    event = load_event("cloudtrail-kms-putkeypolicy-change.json", {SAMPLE_KEY: other})

    report = run_lambda(event)

    assert report["event"]["trigger"] == "key-change" and report["findings"] == []
    assert world.notifications() == []


def test_a_launch_template_change_checks_the_groups_using_it(world):
    fleet = build_mixed(world.env)
    template = fleet.templates["disabled-asg"]
    event = load_event("cloudtrail-kms-putkeypolicy-change.json")
    event["source"] = "aws.ec2"
    event["detail"].update(eventSource="ec2.amazonaws.com", eventName="CreateLaunchTemplateVersion", resources=None,
                           requestParameters={"CreateLaunchTemplateVersionRequest": {"LaunchTemplateId": template}})

    report = run_lambda(event)

    (finding,) = report["findings"]
    assert finding["resource"] == fleet.groups["disabled-asg"] and finding["cause"] == "key-disabled"


def test_a_group_change_checks_that_group(world):
    fleet = build_mixed(world.env)
    event = load_event("cloudtrail-kms-putkeypolicy-change.json")
    event["source"] = "aws.autoscaling"
    event["detail"].update(eventSource="autoscaling.amazonaws.com", eventName="UpdateAutoScalingGroup", resources=None,
                           requestParameters={"autoScalingGroupName": "broken-asg"})

    report = run_lambda(event)

    (finding,) = report["findings"]
    assert finding["resource"] == fleet.groups["broken-asg"] and finding["cause"] == "slr-not-in-key-policy"
