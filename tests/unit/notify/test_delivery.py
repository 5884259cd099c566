"""Delivery on moto SNS: alarms reach a subscriber whose report subscription is filtered; a
burst is one digest; the owner's filtered subscription gets the proposal; e-mail, SQS and
filtered subscribers see what they should."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from keyfix.notify import DIGEST_SEPARATOR, publish, publish_digest
from keyfix.report import Cause, FixKind, FixStatus
from tests.unit.notify.reports import finding, fix, report
from tests.unit.test_template import load_template

REGION = "us-east-1"


class Gw:  # the one AwsGateway method notify uses
    def __init__(self):
        self.calls = []

    def client(self, service, **_):
        self.calls.append(service)
        return boto3.client(service, region_name=REGION)


def queue(sqs, sns, topic, name, filter_policy=None):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def received(sqs, url):
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)


def cloudwatch_alarm_message(name: str) -> str:
    # What CloudWatch publishes for an alarm: JSON with no message attributes
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html#alarm-sns).
    return json.dumps({"AlarmName": name, "NewStateValue": "ALARM", "OldStateValue": "OK"})


def test_every_alarm_reaches_a_subscriber_that_filters_reports(aws):
    sns, sqs = aws
    resources = load_template()["Resources"]
    topics = {name: sns.create_topic(Name=name)["TopicArn"] for name in ("NotificationTopic", "AlarmTopic")}
    # on-call as the README tells them: reports filtered to failures, alarms unfiltered
    reports_q = queue(sqs, sns, topics["NotificationTopic"], "failures", {"status": ["failed"]})
    alarms_q = queue(sqs, sns, topics["AlarmTopic"], "alarms")
    alarms = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 7
    for name, props in alarms.items():
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        sns.publish(TopicArn=topics[props["AlarmActions"][0]["Ref"]], Message=cloudwatch_alarm_message(name))
    got = sorted(json.loads(m["Message"])["AlarmName"] for m in received(sqs, alarms_q))
    got += sorted(json.loads(m["Message"])["AlarmName"] for m in received(sqs, alarms_q))
    assert sorted(got) == sorted(alarms)
    # The same alarm on the report topic would have been dropped by the filter: the old bug.
    sns.publish(TopicArn=topics["NotificationTopic"], Message=cloudwatch_alarm_message("FunctionErrorsAlarm"))
    assert received(sqs, reports_q) == []
    # a failed write does reach the filtered subscriber
    failed = report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(status=FixStatus.FAILED)))
    assert publish(failed, topics["NotificationTopic"], Gw(), account="111122223333")
    (message,) = received(sqs, reports_q)
    assert message["Subject"].startswith("[keyfix] FAILED key-policy-statement")
    assert message["MessageAttributes"]["severity"]["Value"] == "CRITICAL"


def test_a_burst_of_forty_groups_is_one_digest(aws):
    sns, sqs = aws
    topic = sns.create_topic(Name="keyfix")["TopicArn"]
    url = queue(sqs, sns, topic, "on-call")
    burst = [report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(), group=f"web-{i:02d}", predicted=True))
             for i in range(40)]
    burst += [report(finding(Cause.NOT_KMS, group="quota"))] * 3  # counted, not listed
    gw = Gw()
    assert publish_digest(burst, topic, gw, account="111122223333", title="key change 1234abcd")
    assert gw.calls == ["sns"]
    (message,) = received(sqs, url)
    assert message["Subject"] == "[keyfix] digest key change 1234abcd: 40 reports (40 medium)"
    text, _, json_part = message["Message"].partition(DIGEST_SEPARATOR)
    digest = json.loads(json_part)
    assert digest["schema"] == "keyfix.digest/1" and digest["count"] == 40
    assert [r["findings"][0]["resource"].rsplit("/", 1)[1] for r in digest["reports"]] == [f"web-{i:02d}" for i in range(40)]
    assert "3 more with nothing to act on" in text and text.count("\n- MEDIUM") == 40
    attributes = message["MessageAttributes"]
    assert attributes["kind"]["Value"] == "digest" and len(json.loads(attributes["group"]["Value"])) == 40


def test_a_digest_too_large_for_one_message_is_split_and_says_so(aws):
    sns, sqs = aws
    topic = sns.create_topic(Name="keyfix")["TopicArn"]
    url = queue(sqs, sns, topic, "on-call")
    burst = [report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(), group=f"g{i}", explanation="x" * 20_000))
             for i in range(12)]
    assert publish_digest(burst, topic, Gw(), account="111122223333", title="sweep")
    messages = received(sqs, url)
    subjects = sorted(m["Subject"] for m in messages)
    assert len(messages) >= 2 and all("part " in s for s in subjects)
    listed = [r["event"]["id"] for m in messages for r in json.loads(m["Message"].partition(DIGEST_SEPARATOR)[2])["reports"]]
    assert len(listed) == 12
    assert publish_digest([], topic, Gw(), account="1") and received(sqs, url) == []


def test_the_owner_tagged_on_the_principal_gets_the_proposal(aws, monkeypatch):
    sns, sqs = aws
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_user(UserName="dev-alice", Tags=[{"Key": "keyfix:owner", "Value": "alice@example.com bad@"}])["User"]["Arn"]
    topic = sns.create_topic(Name="keyfix")["TopicArn"]
    alice = queue(sqs, sns, topic, "alice", {"owner": ["alice@example.com"]})
    proposal = report(finding(Cause.PRINCIPAL_NOT_IN_KEY_POLICY, fix(), principal=arn))
    applied = report(finding(Cause.PRINCIPAL_NOT_IN_KEY_POLICY, fix(status=FixStatus.APPLIED), principal=arn))

    gw = Gw()
    publish(proposal, topic, gw, account="123456789012")  # off: no IAM read, nothing for alice
    assert gw.calls == ["sns"] and received(sqs, alice) == []

    monkeypatch.setenv("KEYFIX_NOTIFY_OWNERS", "true")
    gw = Gw()
    publish(proposal, topic, gw, account="123456789012")
    assert gw.calls == ["iam", "sns"]
    (message,) = received(sqs, alice)
    assert json.loads(message["MessageAttributes"]["owner"]["Value"]) == ["alice@example.com"]
    gw = Gw()
    publish(applied, topic, gw, account="123456789012")  # nothing to propose: the owner is not told
    assert gw.calls == ["sns"] and received(sqs, alice) == []


def test_kinds_of_fix_in_the_chat_next_steps_are_only_what_someone_must_run(aws):
    sns, sqs = aws
    topic = sns.create_topic(Name="keyfix")["TopicArn"]
    url = queue(sqs, sns, topic, "q")
    r = report(finding(Cause.SLR_GRANT_MISSING, fix(FixKind.GRANT, FixStatus.APPLIED), fix(FixKind.KEY_POLICY_STATEMENT)))
    assert publish(r, topic, Gw(), account="111122223333")
    (message,) = received(sqs, url)
    assert message["Subject"].startswith("[keyfix] applied grant for")
    assert json.loads(message["MessageAttributes"]["status"]["Value"]) == ["applied", "proposed"]
