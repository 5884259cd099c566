"""The scheduled sweep on moto (issue #11, item 3): a broken group that emitted no event, a
sweep and an event of the same failure (one fix, one notification, in either order), a large
account swept over several invocations with a tiny time budget (no group twice, none left
out), throttling back-off, and a group keyfix cannot read."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jsonschema
import pytest

from keyfix.config import Settings
from keyfix.demo.runtime import FakeLambdaContext
from keyfix.predict.cursor import Cursor, MemoryCursorStore, TableCursorStore
from keyfix.predict.scan import scan
from keyfix.resolve.gateway import AwsGateway
from keyfix.sim.scenarios.asg import build_a1
from keyfix.sim.scenarios.fleet import build_many, build_mixed
from tests.integration.conftest import REPORT_SCHEMA, load_event
from tests.integration.test_scan import SCAN_SCHEMA
from tests.support.accounts import ASG_ACCOUNT, REGION
from tests.support.faults import _Http

SCHEDULED = {"version": "0", "id": "sweep-0001", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": ASG_ACCOUNT, "time": "2025-01-01T03:00:00Z", "region": REGION,
             "resources": [f"arn:aws:events:{REGION}:{ASG_ACCOUNT}:rule/keyfix-SweepRule"], "detail": {}}


def sweep_lambda(event_id: str = "sweep-0001") -> dict:
    from keyfix.handler import lambda_handler

    doc = lambda_handler({**SCHEDULED, "id": event_id}, FakeLambdaContext())
    jsonschema.validate(doc, SCAN_SCHEMA)
    for report in doc["reports"]:
        jsonschema.validate(report, REPORT_SCHEMA)
    return doc


def keyfix_statements(world, key_arn: str) -> list[dict]:
    return [s for s in world.key_policy(key_arn)["Statement"] if s.get("Sid", "").startswith("keyfix-")]


def test_a_sweep_finds_a_failing_group_that_emitted_no_event(world):
    case = build_a1(world.env)  # the launch failed (a Cancelled scaling activity); no event arrived

    doc = sweep_lambda()

    assert doc["checked"]["groups"] == 1 and doc["complete"] is True
    (report,) = doc["reports"]
    (finding,) = report["findings"]
    assert report["event"] == {"id": "sweep-0001", "source": "aws.events", "detail_type": "Scheduled Event",
                               "trigger": "scheduled-sweep"}
    assert finding["cause"] == "slr-not-in-key-policy" and finding["key_arn"] == case.key_arn
    assert finding["resource"] == case.group_arn
    assert finding["predicted"] is False  # it has failed already: the activity says so
    (message,) = world.notifications()
    assert json.loads(message["Message"].partition("----- keyfix.report/1 (JSON) -----\n")[2]) == report
    assert keyfix_statements(world, case.key_arn) == []  # propose mode


def test_a_broken_group_that_has_not_failed_is_predicted_and_paged_once_per_window(world):
    case = build_a1(world.env, record_failure=False)

    first, second = sweep_lambda("sweep-1"), sweep_lambda("sweep-2")

    for doc in (first, second):
        (report,) = doc["reports"]
        (finding,) = report["findings"]
        assert finding["predicted"] is True
        assert finding["explanation"].startswith("web-asg will fail at its next launch: ")
        assert finding["resource"] == case.group_arn
    assert len(world.notifications()) == 1  # the finding's notification window (pipeline._worth_notifying)


@pytest.fixture
def apply_mode(monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.setenv("KEYFIX_KEY_ALLOWLIST", f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/*")


@pytest.mark.parametrize("order", ["event-first", "sweep-first"])
def test_a_sweep_and_an_event_of_the_same_failure_give_one_fix_and_one_notification(world, apply_mode, order):
    from keyfix.handler import lambda_handler

    case = build_a1(world.env)
    event = load_event("asg-launch-cancelled-a1.json")
    runs = [lambda: lambda_handler(event, FakeLambdaContext()), sweep_lambda]
    if order == "sweep-first":
        runs.reverse()

    first, second = runs[0](), runs[1]()

    assert len(keyfix_statements(world, case.key_arn)) == 2  # the A1 fix: two statements, written once
    assert len(world.notifications()) == 1
    event_report = first if order == "event-first" else second
    sweep_doc = second if order == "event-first" else first
    (sweep_report,) = sweep_doc["reports"]
    if order == "event-first":
        assert sweep_report["duplicate_of"] == event["id"]
        applied = event_report
    else:
        assert event_report["duplicate_of"] == "sweep-0001"
        applied = sweep_report
    statuses = [fix["status"] for f in applied["findings"] for fix in f["fixes"]]
    assert statuses.count("applied") == 1


def _fake_clock(per_invocation: float):
    """time_left() that loses a second per call, reset per invocation."""
    state = {"left": per_invocation, "calls": 0}

    def time_left() -> float:
        state["calls"] += 1
        state["left"] -= 1.0
        return state["left"]

    return state, time_left


def test_a_large_account_is_swept_over_several_invocations_without_a_group_twice(world):
    fleet = build_many(world.env, count=300, broken_every=50)
    settings = Settings.from_env().with_mode("propose")
    checked: list[str] = []
    reported: list[str] = []
    cursor, invocations = None, 0
    while True:
        invocations += 1
        assert invocations < 40, "the sweep makes no progress"
        state, time_left = _fake_clock(45.0)  # ~40 subjects per invocation over the 5 s reserve
        outcome, _, _ = scan(settings, AwsGateway(region=REGION), time_left=time_left, start=cursor)
        checked += outcome.checked_groups
        reported += [r.findings[0].resource.rsplit("/", 1)[-1] for r in outcome.reports]
        cursor = outcome.cursor
        if cursor is None:
            assert outcome.unchecked == []
            break
        assert any("time ran out" in u for u in outcome.unchecked)
    assert invocations >= 7
    assert len(checked) == len(set(checked)) == 300
    assert sorted(checked) == sorted(fleet.groups)
    assert sorted(reported) == [f"g-{i:04d}" for i in range(0, 300, 50)]


def test_the_lambda_sweep_keeps_its_place_in_the_table(world, monkeypatch):
    build_many(world.env, count=120, broken_every=1000)
    from keyfix.predict import lambda_sweep

    store = TableCursorStore(world.client("dynamodb"), world.table_name, REGION)
    settings = Settings.from_env()
    seen: list[int] = []
    for _ in range(10):
        state, time_left = _fake_clock(60.0)
        doc = lambda_sweep.sweep(dict(SCHEDULED), settings, AwsGateway(region=REGION), time_left=time_left)
        seen.append(doc["checked"]["groups"])
        if doc["carry_on_from"] is None:
            break
        assert Cursor.from_json(doc["carry_on_from"]) == store.load()
    assert sum(seen) == 120 and len(seen) >= 3
    assert store.load() is None  # a complete pass leaves no cursor


def _throttle(session: Any, event_name: str, times: int) -> list[int]:
    hits: list[int] = []

    def answer(**_: Any) -> Any:
        if len(hits) >= times:
            return None  # let the call through
        hits.append(1)
        return _Http(400), {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "fault-injected"}}

    session.events.register(event_name, answer)
    return hits


def test_throttled_reads_are_backed_off_and_asked_again(world):
    fleet = build_mixed(world.env)
    session = boto3.session.Session()
    listing = _throttle(session, "before-call.auto-scaling.DescribeAutoScalingGroups", 2)
    policy = _throttle(session, "before-call.kms.GetKeyPolicy", 1)
    sleeps: list[float] = []
    gw = AwsGateway(session, region=REGION, max_attempts=1)  # no botocore retries: keyfix's own back-off

    outcome, _, _ = scan(Settings.from_env(), gw, sleep=sleeps.append)

    assert (len(listing), len(policy)) == (2, 1)
    assert sleeps == [1.0, 2.0, 1.0]  # listing: two back-offs; the group whose policy read was throttled: one
    assert outcome.unchecked == [] and len(outcome.checked_groups) == 4
    assert sorted(r.findings[0].resource.rsplit("/", 1)[-1] for r in outcome.reports) == ["broken-asg", "disabled-asg"]
    assert fleet.keys


def test_what_stays_throttled_is_reported_not_skipped(world):
    build_mixed(world.env)
    session = boto3.session.Session()
    _throttle(session, "before-call.auto-scaling.DescribeAutoScalingGroups", 100)
    sleeps: list[float] = []

    outcome, _, _ = scan(Settings.from_env(), AwsGateway(session, region=REGION, max_attempts=1), sleep=sleeps.append)

    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert outcome.checked_groups == [] and outcome.cursor is not None
    assert any("AWS kept throttling" in u for u in outcome.unchecked)
    from keyfix.predict.scan import exit_status

    assert exit_status(outcome) == 3


def test_a_group_keyfix_cannot_read_is_reported_as_such(world):
    fleet = build_mixed(world.env)
    session = boto3.session.Session()
    from tests.support.faults import deny

    deny(session, "EC2", "DescribeLaunchTemplateVersions", "UnauthorizedOperation")

    outcome, _, _ = scan(Settings.from_env(), AwsGateway(session, region=REGION, max_attempts=1))

    from keyfix.predict.scan import exit_status

    assert len(outcome.checked_groups) == 4
    reported = {r.findings[0].resource: r for r in outcome.reports}
    assert sorted(reported) == sorted(fleet.groups.values())  # every group: none could be decided
    for report in reported.values():
        (finding,) = report.findings
        assert finding.cause == "undetermined" and "DescribeLaunchTemplateVersions" in finding.explanation
    assert len(outcome.unchecked) == 4 and exit_status(outcome) == 3
