"""After a fix, end to end on moto through the Lambda handler (issue #11, items 5-6): the
durable follow-up (SQS delay queue), confirmed recovery with time-to-repair, one escalation.

"Time passing" is the only thing simulated: each test reads the follow-up queue's delayed
messages from moto's model, checks their DelaySeconds, makes them visible, and hands them to
the handler as Lambda's SQS event source mapping would. Everything else is the real path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from keyfix.followup.schedule import DELAYS_SECONDS
from keyfix.sim import moto_gaps
from tests.integration.conftest import load_event, run_lambda
from tests.support.accounts import ASG_ACCOUNT, GROUP, REGION, build_a1, build_c, start_instances_record

A1_EVENT = "asg-launch-cancelled-a1.json"
KMS_FAILURE = ("Instance became unhealthy while waiting for instance to be in InService state. Termination "
               "Reason: Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class FollowUps:
    """keyfix's follow-up queue on moto, and Lambda's SQS event source standing in."""

    def __init__(self, world, monkeypatch) -> None:
        self.sqs = world.client("sqs")
        self.url = self.sqs.create_queue(QueueName="keyfix-followup")["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        monkeypatch.setenv("KEYFIX_FOLLOWUP_QUEUE_URL", self.url)
        self.delays: list[int] = []  # DelaySeconds of every message taken, in order

    def _queue(self):
        from moto.sqs.models import sqs_backends

        return sqs_backends[ASG_ACCOUNT][REGION].queues["keyfix-followup"]

    def pending(self) -> int:
        return len(self._queue()._messages)

    def take(self) -> list[dict]:
        """Every message waiting, made due now, as one SQS batch event each."""
        import time

        for m in self._queue()._messages:
            assert m.delayed, "a follow-up must be delayed, never due at once"
            self.delays.append(round((m.delayed_until - time.time() * 1000) / 1000))
            m.delayed_until = 0
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", [])
        events = []
        for m in got:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            events.append(self.batch(m["Body"], message_id=m["MessageId"], attributes=m["Attributes"]))
        return events

    def batch(self, body: str, *, message_id: str = "m-1", attributes: dict | None = None, arn: str | None = None) -> dict:
        attributes = attributes or {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000",
                                    "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1700000000000"}
        keep = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
        return {"Records": [{
            "messageId": message_id, "receiptHandle": "rh", "body": body,
            "attributes": {k: attributes[k] for k in keep}, "messageAttributes": {}, "md5OfBody": "0" * 32,
            "eventSource": "aws:sqs", "eventSourceARN": arn or self.arn, "awsRegion": REGION}]}

    def run_one(self) -> dict:
        (event,) = self.take()
        return run_lambda(event)


@pytest.fixture
def followups(world, monkeypatch):
    return FollowUps(world, monkeypatch)


def opt_in(world, key_arn: str) -> None:
    world.client("kms").tag_resource(KeyId=key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])


def a1_failure(first_failure: datetime, event_id: str = "8e2b6f13-5a4c-4d9e-b7f0-3c1a2d4e5f60") -> dict:
    event = load_event(A1_EVENT, {"2025-03-14T09:13:20Z": _iso(first_failure),
                                  "8e2b6f13-5a4c-4d9e-b7f0-3c1a2d4e5f60": event_id})
    return event


def launch_successful(ended: datetime, event_id: str = "5d1e0f2a-0000-4000-8000-000000000001") -> dict:
    """AWS's example of the event ("Successful scaling events",
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html)."""
    return {"version": "0", "id": event_id, "detail-type": "EC2 Instance Launch Successful",
            "source": "aws.autoscaling", "account": ASG_ACCOUNT, "time": _iso(ended), "region": REGION,
            "resources": [f"arn:aws:autoscaling:{REGION}:{ASG_ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/{GROUP}"],
            "detail": {"StatusCode": "InProgress", "Description": "Launching a new EC2 instance: i-0123456789abcdef0",
                       "AutoScalingGroupName": GROUP, "ActivityId": "87654321-4321-4321-4321-210987654321",
                       "Details": {"Availability Zone": "us-east-1a", "Subnet ID": "subnet-12345678"},
                       "RequestId": "12345678-1234-1234-1234-123456789012", "StatusMessage": "",
                       "EndTime": _iso(ended), "EC2InstanceId": "i-0123456789abcdef0",
                       "StartTime": _iso(ended - timedelta(seconds=30)), "Cause": "description-text"}}


def applied_a1(world, monkeypatch, followups, first_failure: datetime):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    opt_in(world, case.key_arn)
    report = run_lambda(a1_failure(first_failure))
    (finding,) = report["findings"]
    assert [f["status"] for f in finding["fixes"]] == ["applied"]
    assert followups.pending() == 1
    (message,) = world.notifications()
    assert "applied" in message["Subject"]
    return case


def by_kind(messages: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in messages:
        kind = (m.get("MessageAttributes", {}).get("followup") or {}).get("Value", "finding")
        out.setdefault(kind, []).append(m)
    return out


def emf_metrics(text: str) -> list[dict]:
    """Powertools' Embedded Metric Format documents printed by the handler."""
    out = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            out.append(doc)
    return out


# ---- recovery -------------------------------------------------------------------------------

def test_recovery_is_detected_once_with_time_to_repair_in_notification_and_metric(world, monkeypatch, followups,
                                                                                   capsys):
    now = datetime.now(UTC).replace(microsecond=0)
    first_failure = now - timedelta(seconds=90)
    applied_a1(world, monkeypatch, followups, first_failure)
    capsys.readouterr()

    launched = now + timedelta(seconds=60)
    report = run_lambda(launch_successful(launched))

    assert report["event"]["trigger"] == "recovery" and report["findings"] == []
    assert report["recovery"] == {"first_failure_at": _iso(first_failure), "recovered_at": _iso(launched),
                                  "time_to_repair_seconds": 150.0}
    (message,) = world.notifications()
    assert message["Subject"].startswith(f"[keyfix] resolved: {GROUP} launches again (2.5 min")
    assert message["MessageAttributes"]["followup"]["Value"] == "resolved"
    assert "Time to repair:  150 s" in message["Message"]
    assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == report
    metrics = [d for d in emf_metrics(capsys.readouterr().out) if "TimeToRepair" in d]
    (doc,) = metrics
    assert doc["TimeToRepair"] == [150.0]  # EMF carries a metric's values as a list
    assert {"Name": "TimeToRepair", "Unit": "Seconds"} in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]

    # A second instance of the same group: already recovered, quiet.
    again = run_lambda(launch_successful(launched + timedelta(seconds=5), event_id="5d1e0f2a-0000-4000-8000-000000000002"))
    assert again["recovery"] is None and again["findings"] == [] and world.notifications() == []
    # The follow-up still pending sees the recovery on record and ends without a word.
    report = followups.run_one()
    assert report["event"]["trigger"] == "follow-up" and report["recovery"] is None
    assert world.notifications() == [] and followups.pending() == 0


def test_follow_up_notices_recovery_from_the_scaling_activities(world, monkeypatch, followups, capsys):
    now = datetime.now(UTC).replace(microsecond=0)
    applied_a1(world, monkeypatch, followups, now - timedelta(seconds=60))
    activity = moto_gaps.record_scaling_activity(GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Successful",
                                                 description="Launching a new EC2 instance: i-0123456789abcdef0")
    activity["StartTime"] = activity["EndTime"] = now + timedelta(seconds=30)
    capsys.readouterr()

    report = followups.run_one()

    assert report["recovery"]["time_to_repair_seconds"] == 90.0
    assert [m["MessageAttributes"]["followup"]["Value"] for m in world.notifications()] == ["resolved"]
    assert [d["TimeToRepair"] for d in emf_metrics(capsys.readouterr().out) if "TimeToRepair" in d] == [[90.0]]
    assert followups.pending() == 0


def test_launch_of_a_group_keyfix_never_repaired_costs_one_get_item(world, monkeypatch):
    import botocore.client

    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        calls.append((self.meta.service_model.service_name, operation))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    report = run_lambda(launch_successful(datetime.now(UTC)))

    assert report["event"]["trigger"] == "recovery"
    assert report["findings"] == [] and report["recovery"] is None
    assert calls == [("dynamodb", "GetItem")]
    assert world.notifications() == []


# ---- escalation and bounds -------------------------------------------------------------------

def test_a_fix_that_does_not_take_effect_escalates_exactly_once(world, monkeypatch, followups):
    now = datetime.now(UTC).replace(microsecond=0)
    case = applied_a1(world, monkeypatch, followups, now - timedelta(seconds=60))
    policy_after_fix = world.key_policy(case.key_arn)
    # The group keeps failing after the fix (still within the consistency window at first).
    moto_gaps.record_scaling_activity(GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Cancelled",
                                      status_message=KMS_FAILURE)

    reports = []
    while followups.pending():
        (event,) = followups.take()
        reports.append(run_lambda(event))
        last_event = event

    assert len(reports) == 3 and followups.delays == list(DELAYS_SECONDS)
    assert all(r["event"]["trigger"] == "follow-up" for r in reports)
    messages = by_kind(world.notifications())
    (escalation,) = messages.pop("escalation")
    assert messages == {}, "only the escalation is sent during the chain"
    assert escalation["Subject"].startswith(f"[keyfix] ESCALATION: Auto Scaling group {GROUP} still fails")
    text = escalation["Message"]
    assert "keyfix change " in text and "key-policy-statement" in text  # the fix and when
    assert "launch cancelled at" in text and "Re-diagnosis:" in text
    assert json.loads(text.split("(JSON) -----\n", 1)[1]) == reports[-1]
    # keyfix wrote nothing more, and nothing further is scheduled.
    assert world.key_policy(case.key_arn) == policy_after_fix and followups.pending() == 0

    # The last message delivered again (SQS is at-least-once): changes nothing.
    again = run_lambda(last_event)
    assert "ignored" in again["findings"][0]["explanation"]
    # The same incident failing again later: no new chain, no second escalation.
    run_lambda(a1_failure(now, event_id="8e2b6f13-5a4c-4d9e-b7f0-3c1a2d4e5f61"))
    assert followups.pending() == 0
    assert "escalation" not in by_kind(world.notifications())


def test_a_failure_after_the_consistency_window_escalates_at_once(world, monkeypatch, followups):
    now = datetime.now(UTC).replace(microsecond=0)
    applied_a1(world, monkeypatch, followups, now - timedelta(seconds=60))
    activity = moto_gaps.record_scaling_activity(GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Cancelled",
                                                 status_message=KMS_FAILURE)
    activity["StartTime"] = now + timedelta(seconds=360)  # past the repair + 300 s window

    followups.run_one()

    assert list(by_kind(world.notifications())) == ["escalation"] and followups.pending() == 0


def test_attempts_are_bounded_and_a_quiet_group_ends_quietly(world, monkeypatch, followups):
    applied_a1(world, monkeypatch, followups, datetime.now(UTC) - timedelta(seconds=30))

    count = 0
    while followups.pending():
        report = followups.run_one()
        count += 1
        assert report["recovery"] is None
        assert [f["cause"] for f in report["findings"]] == ["no-missing-permission"]  # the fix is in force

    assert count == 3 and followups.delays == [120, 180, 300]
    assert world.notifications() == []


# ---- evidence that arrives late --------------------------------------------------------------

def test_undetermined_ec2_finding_is_settled_once_cloudtrail_has_the_record(world, monkeypatch, followups):
    case = build_c(world.env, record_start=False)
    event = load_event("ec2-instance-stopped.json", {"i-0c3d4e5f6a7b8c9d0": case.instance_id})

    first = run_lambda(event)
    assert [f["cause"] for f in first["findings"]] == ["undetermined"]
    assert len(world.notifications()) == 1

    # Attempt 1 (+2 min): CloudTrail still has nothing; the finding stays undetermined.
    report = followups.run_one()
    assert [f["cause"] for f in report["findings"]] == ["undetermined"] and world.notifications() == []
    # The record arrives; attempt 2 (+5 min) settles it.
    moto_gaps.record_cloudtrail_event(start_instances_record(ASG_ACCOUNT, REGION, case.role_arn, case.role_id,
                                                             case.instance_id),
                                      account=ASG_ACCOUNT, region=REGION,
                                      resources=[("AWS::EC2::Instance", case.instance_id)])
    report = followups.run_one()

    assert report["event"]["trigger"] == "follow-up"
    (finding,) = report["findings"]
    assert finding["cause"] == "identity-policy-missing" and finding["principal"] == case.role_arn
    assert [f["status"] for f in finding["fixes"]] == ["proposed"]  # propose mode: nothing written
    assert world.client("iam").list_role_policies(RoleName="ec2-operator")["PolicyNames"] == []
    (message,) = world.notifications()
    assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == report
    assert followups.pending() == 0 and followups.delays == [120, 180]


# ---- forged and malformed follow-ups ---------------------------------------------------------

def _forgeries(genuine: dict, followups: FollowUps) -> dict[str, dict]:
    body = json.loads(genuine["Records"][0]["body"])

    def with_body(**changes) -> dict:
        return followups.batch(json.dumps({**body, **changes}))

    other_event = json.loads(json.dumps(body["original_event"]))
    other_event["detail"]["AutoScalingGroupName"] = "other-asg"
    return {
        "wrong token": with_body(token="0" * 32),
        "attempt beyond the bound": with_body(attempt=4),
        "attempt not yet due": with_body(attempt=2),
        "unknown field": with_body(extra="x"),
        "attempt as text": with_body(attempt="1"),
        "edited original event": with_body(original_event=other_event),
        "not JSON": followups.batch("{not json"),
        "another queue": followups.batch(genuine["Records"][0]["body"],
                                         arn=f"arn:aws:sqs:{REGION}:{ASG_ACCOUNT}:someone-elses"),
        "not an SQS record Lambda sends": {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]},
    }


def test_forged_or_malformed_follow_ups_change_nothing_and_are_reported(world, monkeypatch, followups):
    case = applied_a1(world, monkeypatch, followups, datetime.now(UTC) - timedelta(seconds=30))
    policy = world.key_policy(case.key_arn)
    (genuine,) = followups.take()
    moto_gaps.record_scaling_activity(GROUP, account=ASG_ACCOUNT, region=REGION, status_code="Cancelled",
                                      status_message=KMS_FAILURE)  # would escalate if acted on at the end

    forged = _forgeries(genuine, followups)
    for label, event in forged.items():
        report = run_lambda(event)
        assert report["event"]["trigger"] == "follow-up", label
        (finding,) = report["findings"]
        assert finding["cause"] == "undetermined", label
        assert finding["explanation"].startswith("Follow-up message ignored, nothing was changed"), label
        assert world.key_policy(case.key_arn) == policy, label
        assert world.notifications() == [] and followups.pending() == 0, label
    assert len(forged) == 9

    # The genuine message still works afterwards: attempt 1 schedules attempt 2.
    report = run_lambda(genuine)
    assert [f["cause"] for f in report["findings"]] == ["no-missing-permission"]
    assert followups.pending() == 1
