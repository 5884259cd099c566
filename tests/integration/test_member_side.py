"""A member's side (issue #15): its report goes to the central bus, the owner's half of an A2
fix goes to the key owner's bus as a proposal, the owner's answer reaches on-call - and with
no central stack or owner bus at all, the member's own report and work are unchanged."""

from __future__ import annotations

import json

import pytest

from keyfix.org import bus, messages
from tests.integration.conftest import load_event, run_lambda
from tests.support.accounts import ASG_ACCOUNT, KEY_ACCOUNT, REGION, build_a2

CENTRAL = f"arn:aws:events:{REGION}:{ASG_ACCOUNT}:event-bus/keyfix-central"  # moto: same account, so it delivers
OWNER_BUS = f"arn:aws:events:{REGION}:{KEY_ACCOUNT}:event-bus/keyfix-org"


@pytest.fixture
def sent(monkeypatch):
    entries: list[dict] = []
    real_put = bus.put

    def recording_put(gw, entry):
        entries.append(entry)
        return real_put(gw, entry)

    monkeypatch.setattr(bus, "put", recording_put)
    return entries


def central_queue(world) -> str:
    """The central stack's stand-in: a bus whose rule copies every keyfix report to a queue."""
    events, sqs = world.client("events"), world.client("sqs")
    events.create_event_bus(Name="keyfix-central")
    queue = sqs.create_queue(QueueName="central")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="reports", EventBusName="keyfix-central",
                    EventPattern=json.dumps({"source": [messages.SOURCE], "detail-type": ["keyfix report"]}))
    events.put_targets(Rule="reports", EventBusName="keyfix-central", Targets=[{"Id": "q", "Arn": arn}])
    return queue


def test_a2_report_goes_central_and_the_owner_half_to_the_owners_bus(world, monkeypatch, sent):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    monkeypatch.setenv("KEYFIX_CENTRAL_BUS_ARN", CENTRAL)
    monkeypatch.setenv("KEYFIX_KEY_OWNER_BUS_ARNS", OWNER_BUS)
    queue = central_queue(world)
    case = build_a2(world.env)

    report = run_lambda(load_event("asg-launch-unsuccessful-a2.json"))

    (central,) = [json.loads(m["Body"]) for m in world.client("sqs").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    detail = central["detail"]  # moto delivers the event; its envelope fields vary by version
    assert detail["report"] == report and detail["account"] == ASG_ACCOUNT and detail["region"] == REGION
    assert detail["attention"] is True and detail["causes"] == ["slr-grant-missing"]
    assert detail["statuses"] == ["proposed"]
    (proposal,) = [e for e in sent if e["DetailType"] == messages.PROPOSAL]
    assert proposal["EventBusName"] == OWNER_BUS
    detail = json.loads(proposal["Detail"])
    owner_fix = next(f for f in report["findings"][0]["fixes"] if f["kind"] == "key-policy-statement")
    assert (detail["sender_account"], detail["key_arn"], detail["principal"]) == (
        ASG_ACCOUNT, case.key_arn, case.slr_arn)
    assert detail["statements"] == owner_fix["document"]
    assert detail["reply_bus"] == f"arn:aws:events:{REGION}:{ASG_ACCOUNT}:event-bus/keyfix-org"
    # What the owner's keyfix parses is what was sent (the envelope is AWS's).
    parsed = messages.parse_proposal({"id": "e", "source": proposal["Source"], "detail-type": proposal["DetailType"],
                                      "account": ASG_ACCOUNT, "region": REGION, "detail": detail})
    assert parsed.operations == tuple(report["findings"][0]["operations"])


def test_without_central_stack_or_owner_bus_the_member_works_alone(world, monkeypatch, sent):
    """Configured, but neither bus exists: the same report as an unconfigured run, SNS as usual."""
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    monkeypatch.delenv("KEYFIX_TABLE_NAME")  # no incident idempotency: the second run is handled in full
    build_a2(world.env)
    alone = run_lambda(load_event("asg-launch-unsuccessful-a2.json", {"a2-": "a2-alone-"}))
    world.notifications()
    assert sent == []
    monkeypatch.setenv("KEYFIX_CENTRAL_BUS_ARN", CENTRAL)  # no such bus
    monkeypatch.setenv("KEYFIX_KEY_OWNER_BUS_ARNS", OWNER_BUS)  # moto has no cross-account delivery either
    configured = run_lambda(load_event("asg-launch-unsuccessful-a2.json", {"a2-": "a2-configured-"}))
    assert [e["DetailType"] for e in sent] == ["keyfix report", messages.PROPOSAL]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("event",)}  # noqa: E731
    assert strip(configured) == strip(alone)
    assert len(world.notifications()) == 1


def test_the_owners_outcome_reaches_on_call_only_from_the_keys_account(world, monkeypatch):
    def outcome(sender: str) -> dict:
        entry = messages.outcome_entry(bus_arn="arn:aws:events:us-east-1:111122223333:event-bus/keyfix-org",
                                       proposal_id="p-1", key_arn=f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:key/k-1",
                                       status="applied", reason="applied for the role")
        return {"id": "o-1", "source": entry["Source"], "detail-type": entry["DetailType"], "account": sender,
                "region": REGION, "detail": json.loads(entry["Detail"])}

    from keyfix.demo.runtime import FakeLambdaContext
    from keyfix.handler import lambda_handler

    result = lambda_handler(outcome(KEY_ACCOUNT), FakeLambdaContext())
    assert (result["status"], result["notified"]) == ("applied", True)
    (message,) = world.notifications()
    assert KEY_ACCOUNT in message["Subject"] and "applied" in message["Message"]
    impostor = lambda_handler(outcome("999988887777"), FakeLambdaContext())
    assert impostor["status"] == "ignored" and world.notifications() == []
