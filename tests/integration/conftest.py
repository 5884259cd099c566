"""An AWS account on moto, as keyfix would find it, and two ways to run keyfix on it.

keyfix runs with credentials of an IAM user of the workload account (moto maps access
keys to their account), so its calls land where the broken resources are; the builders
act in any account through moto's account header.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keyfix.demo.runtime import FakeLambdaContext  # the demo's stand-in for Lambda's context
from keyfix.sim import moto_gaps
from tests.support.accounts import ASG_ACCOUNT, REGION, Env

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REPORT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/report.schema.json").read_text())


@dataclass
class World:
    env: Env
    topic_arn: str
    queue_url: str
    table_name: str
    seen: list = field(default_factory=list)  # messages `run` drained and checked

    def client(self, service: str, account: str = ASG_ACCOUNT) -> Any:
        return self.env.client(service, account)

    def key_policy(self, key_arn: str, account: str = ASG_ACCOUNT) -> dict:
        return json.loads(self.client("kms", account).get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])

    def notifications(self) -> list[dict]:
        """SNS messages delivered to the subscribed queue (raw delivery off: SNS's JSON envelope)
        since the last call, including those `run` already checked."""
        out, self.seen = list(self.seen), []
        return out + drain(self.client("sqs"), self.queue_url)


def drain(sqs: Any, queue_url: str) -> list[dict]:
    """Every message on the queue, oldest first, each JSON body parsed and the message deleted."""
    out: list[dict] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def load_event(name: str, replace: dict[str, str] | None = None) -> dict:
    text = (EVENTS / name).read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return json.loads(text)


def assert_valid_report(report: dict) -> dict:
    jsonschema.validate(report, REPORT_SCHEMA)
    return report


def build_world(env: Env) -> World:
    iam = env.client("iam", ASG_ACCOUNT)
    iam.create_user(UserName="keyfix-runner")
    key = iam.create_access_key(UserName="keyfix-runner")["AccessKey"]
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = key["AccessKeyId"], key["SecretAccessKey"]
    sns, sqs = env.client("sns", ASG_ACCOUNT), env.client("sqs", ASG_ACCOUNT)
    topic = sns.create_topic(Name="keyfix")["TopicArn"]
    queue = sqs.create_queue(QueueName="on-call")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    ddb = env.client("dynamodb", ASG_ACCOUNT)
    ddb.create_table(TableName="keyfix", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    return World(env, topic, queue, "keyfix")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "keyfix",
        "POWERTOOLS_METRICS_NAMESPACE": "keyfix", "POWERTOOLS_DEV": "false",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_ACCOUNT_ID", "KEYFIX_MODE",
                 "KEYFIX_KEY_ALLOWLIST", "KEYFIX_PRINCIPAL_ALLOWLIST", "KEYFIX_SNS_TOPIC_ARN", "KEYFIX_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), moto_gaps.installed():
        world = build_world(Env())
        # build_world switched the credentials to keyfix's own user; undo that at teardown.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["AWS_ACCESS_KEY_ID"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"])
        monkeypatch.setenv("KEYFIX_SNS_TOPIC_ARN", world.topic_arn)
        monkeypatch.setenv("KEYFIX_TABLE_NAME", world.table_name)
        yield world


def run_lambda(event: dict) -> dict:
    from keyfix.handler import lambda_handler

    return assert_valid_report(lambda_handler(event, FakeLambdaContext()))


def run_cli(event: dict, tmp_path: Path, *args: str) -> dict:
    from keyfix.cli import main

    path = tmp_path / f"event-{event.get('id', 'x')}.json"
    path.write_text(json.dumps(event))
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["handle", str(path), "--format", "json", *args])
    assert status == 0, out.getvalue()
    return assert_valid_report(json.loads(out.getvalue()))


def assert_notification_matches(world: World, report: dict) -> None:
    """What on-call receives is this report: its JSON, and attributes to filter on. keyfix
    stays quiet about failures that are not about KMS and about events it does not handle."""
    messages = world.notifications()
    world.seen = messages
    causes = sorted({f["cause"] for f in report["findings"]})
    if not report["findings"] or causes == ["not-kms"]:
        assert messages == [], "keyfix paged on-call about something that is not its business"
        return
    (message,) = messages
    assert message["Subject"].startswith("[keyfix] ") and len(message["Subject"]) <= 100
    body, _, json_part = message["Message"].partition("----- keyfix.report/1 (JSON) -----\n")
    assert json.loads(json_part) == report
    assert report["findings"][0]["cause"] in body  # the readable part names the finding
    attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
    assert json.loads(attributes["cause"]) == causes
    statuses = sorted({x["status"] for f in report["findings"] for x in f["fixes"]}) or ["none"]
    assert json.loads(attributes["status"]) == statuses
    assert attributes["account"] == ASG_ACCOUNT


@pytest.fixture(params=["lambda", "cli"])
def run(request: pytest.FixtureRequest, tmp_path: Path, world: World):
    """Runs an event through the real Lambda handler, or through `keyfix handle`, and checks
    the SNS message on-call receives against the report."""
    def run_and_check(event: dict) -> dict:
        report = run_lambda(event) if request.param == "lambda" else run_cli(event, tmp_path)
        assert_notification_matches(world, report)
        return report

    return run_and_check


@pytest.fixture
def gateway_calls(monkeypatch):
    """Every call keyfix makes through its gateway: (service, operation)."""
    from keyfix.resolve.gateway import AwsGateway

    calls: list[tuple[str, str]] = []
    real = AwsGateway.call

    def counted(self, service, operation, *args, **kwargs):
        calls.append((service, operation))
        return real(self, service, operation, *args, **kwargs)

    monkeypatch.setattr(AwsGateway, "call", counted)
    return calls
