"""The follow-up path (SQS batches from keyfix's own queue) honours on-call's runtime switch as
every other path does (keyfix.switch, keyfix.followup.recheck.handle_batch): paused, a
follow-up reads, writes and sends nothing and its report says so; force-propose makes a
re-check that would write propose instead. Each test then flips the switch back and shows the
very same message acting, so what stopped it is the switch and nothing else."""

from __future__ import annotations

import pytest

from keyfix.sim import moto_gaps
from tests.integration.conftest import assert_valid_report, load_event, run_lambda
from tests.integration.test_followup import FollowUps
from tests.integration.test_sweep_switch import SWITCH, table_items
from tests.support.accounts import ASG_ACCOUNT, REGION, build_c, start_instances_record


@pytest.fixture
def followups(world, monkeypatch):
    return FollowUps(world, monkeypatch)


@pytest.fixture
def flip(world, monkeypatch):
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("KEYFIX_SWITCH_PARAMETER", SWITCH)
    ssm = world.client("ssm")

    def set_to(value: str) -> None:
        ssm.put_parameter(Name=SWITCH, Value=value, Type="String", Overwrite=True)
        parameters.clear_caches()  # as the cache lifetime running out would

    set_to("normal")
    yield set_to
    parameters.clear_caches()


def _evidence_chain(world, monkeypatch, followups):
    """Case C in apply mode with the role allow-listed, its CloudTrail record late: the first run
    is undetermined and schedules a follow-up that, with the record in hand, would write."""
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_c(world.env, record_start=False)
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", case.role_arn)
    first = run_lambda(load_event("ec2-instance-stopped.json", {"i-0c3d4e5f6a7b8c9d0": case.instance_id}))
    assert [f["cause"] for f in first["findings"]] == ["undetermined"]
    assert first["switch"]["state"] == "normal"
    moto_gaps.record_cloudtrail_event(start_instances_record(ASG_ACCOUNT, REGION, case.role_arn, case.role_id,
                                                             case.instance_id),
                                      account=ASG_ACCOUNT, region=REGION,
                                      resources=[("AWS::EC2::Instance", case.instance_id)])
    world.notifications()  # the first run's message: not what these tests count
    (event,) = followups.take()
    return case, event


def _inline_policies(world) -> list[str]:
    return world.client("iam").list_role_policies(RoleName="ec2-operator")["PolicyNames"]


def test_a_paused_follow_up_does_nothing_but_say_so(world, monkeypatch, followups, flip, gateway_calls):
    case, event = _evidence_chain(world, monkeypatch, followups)
    before = table_items(world)
    gateway_calls.clear()
    flip("pause")

    report = assert_valid_report(run_lambda(event))

    assert report["switch"] == {"state": "pause", "source": SWITCH, "reason": None}
    assert report["event"]["trigger"] == "follow-up" and report["findings"] == []
    assert gateway_calls == []  # nothing read through keyfix's gateway
    assert table_items(world) == before  # the chain not claimed, nothing recorded
    assert world.notifications() == [] and _inline_policies(world) == [] and followups.pending() == 0

    # Resumed, the same message is the follow-up keyfix scheduled: claimed and acted on.
    flip("normal")
    report = assert_valid_report(run_lambda(event))
    assert report["switch"]["state"] == "normal"
    (finding,) = report["findings"]
    assert finding["cause"] == "identity-policy-missing" and finding["principal"] == case.role_arn
    assert [f["status"] for f in finding["fixes"]] == ["applied"]
    assert len(_inline_policies(world)) == 1


def test_force_propose_makes_a_follow_up_that_would_write_propose(world, monkeypatch, followups, flip):
    case, event = _evidence_chain(world, monkeypatch, followups)
    flip("propose")

    report = assert_valid_report(run_lambda(event))

    assert report["switch"] == {"state": "propose", "source": SWITCH, "reason": None}
    assert report["mode"] == "propose"
    (finding,) = report["findings"]
    assert finding["cause"] == "identity-policy-missing" and finding["principal"] == case.role_arn
    assert [f["status"] for f in finding["fixes"]] == ["proposed"]
    assert _inline_policies(world) == []
    (message,) = world.notifications()  # the settled finding is still told
    assert '"state": "propose"' in message["Message"]


def test_an_ignored_follow_up_carries_the_switch_too(world, monkeypatch, followups, flip):
    flip("propose")
    report = assert_valid_report(run_lambda(followups.batch("{not json")))
    assert report["switch"]["state"] == "propose"
    (finding,) = report["findings"]
    assert finding["cause"] == "undetermined" and "ignored" in finding["explanation"]
