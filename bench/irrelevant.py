"""P1b: an irrelevant event, counted call by call (issue #14).

    python bench/irrelevant.py        # one JSON object on stdout

The EC2 state-change rule fires for every stop in the account. Here one instance is started
and stopped by its user (StateReason Client.UserInitiatedShutdown) on in-process moto, with
the function's table and topic, and `keyfix.handler.lambda_handler` gets the stop's event
(events/ec2-instance-stopped.json with this instance). Every AWS API call of any client
(keyfix's gateway, Powertools' idempotency and parameters, boto3 clients made anywhere) is
counted at botocore's BaseClient._make_api_call, and keyfix's own signed Query requests
(keyfix.ec2_query.SENT: in the Lambda runtime an ordinary stop is read without boto3), so
nothing escapes the count. Here moto is in-process, which the quick read treats as a doubt
(moto intercepts botocore only), so this counts the fallback path; the cold-start rows run
against a moto server and take the quick read. Its CPU time
is measured by bench/coldstart.py (row "1st invocation: ordinary EC2 stop").
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
MINIMUM = ["ec2:DescribeInstances"]  # the StateReason is not in the event


@contextlib.contextmanager
def every_api_call():
    """Yields a list that receives "service:Operation" for every API call made inside."""
    import botocore.client

    from keyfix import ec2_query

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call
    quick_before = len(ec2_query.SENT)  # keyfix's signed Query requests, which bypass botocore

    def counting(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}:{operation_name}")
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original
        calls.extend(ec2_query.SENT[quick_before:])


def stopped_instance(session, endpoint_url: str | None = None) -> str:
    """An instance started and then stopped by its user: an ordinary stop."""
    ec2 = session.client("ec2", region_name=REGION, endpoint_url=endpoint_url)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    return instance


def stop_event(instance_id: str, account: str) -> dict:
    doc = json.loads((ROOT / "events" / "ec2-instance-stopped.json").read_text())
    doc["detail"]["instance-id"] = instance_id
    doc["resources"] = [f"arn:aws:ec2:{REGION}:{account}:instance/{instance_id}"]
    doc["account"] = account
    return doc


def run() -> dict:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_REGION": REGION, "POWERTOOLS_SERVICE_NAME": "keyfix", "POWERTOOLS_METRICS_NAMESPACE": "keyfix",
           "POWERTOOLS_TRACE_DISABLED": "1", "KEYFIX_MODE": "propose",
           "MOTO_ACCOUNT_ID": "111122223333"}  # the account of FakeLambdaContext's function ARN
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL", "KEYFIX_TABLE_NAME", "KEYFIX_SNS_TOPIC_ARN"]}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        import boto3
        from moto import mock_aws

        from keyfix.demo.runtime import FakeLambdaContext
        from keyfix.sim import moto_gaps

        with moto_gaps.installed(), mock_aws():
            session = boto3.session.Session(region_name=REGION)
            account = session.client("sts").get_caller_identity()["Account"]
            instance = stopped_instance(session)
            ddb = session.client("dynamodb")
            ddb.create_table(TableName="keyfix", BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
            topic = session.client("sns").create_topic(Name="keyfix")["TopicArn"]
            os.environ.update(KEYFIX_TABLE_NAME="keyfix", KEYFIX_SNS_TOPIC_ARN=topic)
            from keyfix.handler import lambda_handler

            with every_api_call() as calls:
                report = lambda_handler(stop_event(instance, account), FakeLambdaContext())
            items = ddb.scan(TableName="keyfix")["Count"]
        return {
            "calls": calls,
            "count": len(calls),
            "minimum": MINIMUM,
            "causes": [f.get("cause") for f in report.get("findings", [])],
            "table_items_written": items,
        }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):  # the handler's EMF and log lines
        result = run()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
