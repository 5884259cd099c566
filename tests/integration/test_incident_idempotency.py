"""One incident never hides another; a duplicate returns the first run's report (issue #9 s. 7).

Every test runs keyfix on a moto account WITH the idempotency table (`KEYFIX_TABLE_NAME`), as
deployed, through the Lambda handler and through `keyfix handle`."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout

import pytest

from keyfix.demo.runtime import FakeLambdaContext
from tests.integration.conftest import assert_valid_report, load_event, run_cli, run_lambda
from tests.support.accounts import build_a1

A1_EVENT = "asg-launch-unsuccessful-a1.json"
SLR_EVENT = "cloudtrail-kms-accessdenied-slr.json"
CAPACITY = ("We currently do not have sufficient m5.large capacity in the Availability Zone you requested "
            "(us-east-1a). Launching EC2 instance failed. Status Reason: Server.InsufficientInstanceCapacity")
OPT_IN = [{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}]
SAMPLE_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"  # in SLR_EVENT


@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch):
    """moto builds ~1,300 public AMIs per EC2 backend otherwise; these tests register theirs."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def a1(world, monkeypatch):
    """Seed A1 in apply mode, key opted in: the genuine failure is repaired when keyfix runs."""
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=OPT_IN)
    return case


def renamed(event: dict, n: int) -> dict:
    """Another event of the same failure: a new EventBridge id."""
    again = copy.deepcopy(event)
    again["id"] = f"00000000-0000-4000-8000-{n:012d}"
    return again


def slr_statements(world, case) -> list[dict]:
    return [s for s in world.key_policy(case.key_arn)["Statement"] if s.get("Sid", "").startswith("keyfix-")]


def incident_records(world) -> list[dict]:
    items = world.client("dynamodb").scan(TableName=world.table_name, ConsistentRead=True)["Items"]
    return [i for i in items if i["id"]["S"].startswith("incident#")]


@pytest.fixture(params=["lambda", "cli"])
def run(request, tmp_path, world):
    """Runs an event through the Lambda handler or `keyfix handle`; returns the report and the
    SNS messages this run sent (several runs per test, so each run's messages are its own)."""
    def run_one(event: dict) -> tuple[dict, list[dict]]:
        report = run_lambda(event) if request.param == "lambda" else run_cli(event, tmp_path)
        messages, world.seen = world.notifications(), []
        for message in messages:
            assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == report
        return report, messages

    return run_one


# ---- the first example ----------------------------------------------------------------

def test_a_capacity_failure_does_not_hide_the_same_groups_kms_failure(world, a1, run):
    capacity = load_event("asg-launch-unsuccessful-not-kms.json")
    capacity["detail"]["StatusMessage"] = CAPACITY

    first, quiet = run(capacity)
    assert [f["cause"] for f in first["findings"]] == ["not-kms"] and first["duplicate_of"] is None
    assert quiet == []  # not keyfix's business

    kms, told = run(load_event(A1_EVENT))  # minutes later, same group "web-asg"

    assert kms["duplicate_of"] is None and len(told) == 1
    (finding,) = kms["findings"]
    assert (finding["cause"], finding["key_arn"]) == ("slr-not-in-key-policy", a1.key_arn)
    assert [f["status"] for f in finding["fixes"]] == ["applied"]
    assert slr_statements(world, a1) == finding["fixes"][0]["document"]
    assert len(incident_records(world)) == 2


# ---- the second example ---------------------------------------------------------------

def slr_denial(case) -> dict:
    """The Auto Scaling SLR's CreateGrant denied on the case's key (CloudTrail via EventBridge)."""
    return load_event(SLR_EVENT, {SAMPLE_KEY: case.key_arn})


def forged_slr_denial(case) -> dict:
    """A role named like the Auto Scaling SLR in another path, session "AutoScaling": CloudTrail
    shows the genuine session ARN; this record carries no sessionContext and no invokedBy."""
    event = slr_denial(case)
    event["id"] = "f0f0f0f0-0000-4000-8000-000000000001"
    identity = event["detail"]["userIdentity"]
    del identity["sessionContext"], identity["invokedBy"]
    identity["principalId"] = "AROAFORGED0000000001:AutoScaling"
    return event


def test_a_forged_slr_denial_keyfix_cannot_fix_does_not_block_the_genuine_one(world, monkeypatch, run):
    """The forged denial arrives while the key is not opted in: its fix is refused. On-call opts
    the key in; the genuine denial minutes later must be repaired, not answered from the
    forged run's record."""
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    before = world.key_policy(case.key_arn)

    forged, _ = run(forged_slr_denial(case))

    assert forged["duplicate_of"] is None
    assert [fix["status"] for f in forged["findings"] for fix in f["fixes"]] == ["refused"]
    assert world.key_policy(case.key_arn) == before
    assert incident_records(world) == []  # a refusal answers for no later event
    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=OPT_IN)

    genuine, told = run(slr_denial(case))

    assert genuine["duplicate_of"] is None, "the genuine denial was dropped as already handled"
    assert len(told) == 1, "on-call was not told about the genuine denial's repair"
    (finding,) = genuine["findings"]
    assert (finding["cause"], finding["principal"]) == ("slr-not-in-key-policy", case.slr_arn)
    assert [f["status"] for f in finding["fixes"]] == ["applied"]
    assert slr_statements(world, case) == finding["fixes"][0]["document"]
    assert len(incident_records(world)) == 1


def test_in_propose_mode_the_genuine_denial_after_a_forged_one_gets_its_own_report(world, monkeypatch, run):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    case = build_a1(world.env)

    forged, _ = run(forged_slr_denial(case))
    genuine, _ = run(slr_denial(case))

    assert forged["duplicate_of"] is None and genuine["duplicate_of"] is None
    (finding,) = genuine["findings"]
    assert (finding["cause"], [f["status"] for f in finding["fixes"]]) == ("slr-not-in-key-policy", ["proposed"])
    assert len(incident_records(world)) == 2
    again, told = run(renamed(slr_denial(case), 8))
    assert (again["duplicate_of"], again["findings"], told) == (genuine["event"]["id"], genuine["findings"], [])


# ---- a duplicate's report ---------------------------------------------------------------------

def cli_text(event: dict, tmp_path) -> str:
    from keyfix.cli import main

    path = tmp_path / "event-text.json"
    path.write_text(json.dumps(event))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["handle", str(path)]) == 0
    return out.getvalue()


@pytest.mark.parametrize("first_by", ["lambda", "cli"])
def test_a_duplicate_returns_the_first_runs_findings_with_duplicate_of(world, a1, tmp_path, first_by):
    first_event = load_event(A1_EVENT)
    first = run_lambda(first_event) if first_by == "lambda" else run_cli(first_event, tmp_path)
    assert first["duplicate_of"] is None and first["findings"]
    assert len(world.notifications()) == 1
    policy_after_first = world.key_policy(a1.key_arn)

    by_lambda = run_lambda(renamed(first_event, 2))
    by_cli = run_cli(renamed(first_event, 3), tmp_path)
    same_event_again = run_lambda(first_event)  # a re-delivery of the first event itself

    for n, duplicate in ((2, by_lambda), (3, by_cli)):
        assert duplicate["duplicate_of"] == first_event["id"]
        assert duplicate["findings"] == first["findings"]
        assert duplicate["event"] == {**first["event"], "id": renamed(first_event, n)["id"]}
        assert duplicate["mode"] == first["mode"] == "apply"
    assert same_event_again == {**first, "duplicate_of": first_event["id"]}
    assert world.notifications() == [], "a duplicate paged on-call again"
    assert world.key_policy(a1.key_arn) == policy_after_first
    assert len(incident_records(world)) == 1

    text = cli_text(renamed(first_event, 4), tmp_path)
    assert f"Duplicate of event {first_event['id']}, handled at 20" in text
    assert "Finding 1: slr-not-in-key-policy" in text and "fix [applied] key-policy-statement" in text
    assert "No finding" not in text


def test_a_first_run_that_settled_nothing_does_not_answer_for_the_next_event(world, a1):
    from keyfix.handler import lambda_handler

    # Less Lambda time left than a write needs: the fix is not attempted.
    hurried = assert_valid_report(lambda_handler(load_event(A1_EVENT), FakeLambdaContext(timeout_seconds=5)))
    (fix,) = hurried["findings"][0]["fixes"]
    assert fix["status"] == "proposed" and fix["reason"].startswith("not attempted:")
    assert incident_records(world) == []

    again = run_lambda(renamed(load_event(A1_EVENT), 5))

    assert again["duplicate_of"] is None
    assert [f["status"] for f in again["findings"][0]["fixes"]] == ["applied"]
    assert len(incident_records(world)) == 1
    assert run_lambda(renamed(load_event(A1_EVENT), 6))["duplicate_of"] == again["event"]["id"]


def test_a_refused_fix_is_not_remembered_so_the_next_event_applies_once_the_key_is_opted_in(world, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    refused = run_lambda(load_event(A1_EVENT))
    (fix,) = refused["findings"][0]["fixes"]
    assert fix["status"] == "refused" and "keyfix:auto-remediate" in fix["reason"]
    assert incident_records(world) == []

    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=OPT_IN)  # what the refusal asked for
    applied = run_lambda(renamed(load_event(A1_EVENT), 9))

    assert applied["duplicate_of"] is None
    assert [f["status"] for f in applied["findings"][0]["fixes"]] == ["applied"]
    assert slr_statements(world, case) == applied["findings"][0]["fixes"][0]["document"]
