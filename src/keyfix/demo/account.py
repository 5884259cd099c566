"""The simulated workload account keyfix is deployed in, as `sam deploy` would leave it:
the function's execution role, its SNS topic (with on-call's SQS queue subscribed), its
DynamoDB table, and the settings the template passes to the function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.sim.scenarios import ASG_ACCOUNT, Env

TOPIC_NAME = "keyfix-notifications"
QUEUE_NAME = "on-call"
TABLE_NAME = "keyfix"
EXECUTION_ROLE = "keyfix-function"


@dataclass
class OnCallMessage:
    """One SNS notification as the subscribed queue receives it. Without raw message
    delivery SNS wraps it in its JSON envelope (Type, MessageId, Subject, Message,
    MessageAttributes {name: {Type, Value}}):
    https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html"""

    subject: str
    body: str
    attributes: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> OnCallMessage:
        raw = envelope.get("MessageAttributes") or {}
        attributes = {name: _attribute_value(value) for name, value in raw.items()}
        return cls(envelope.get("Subject") or "", envelope.get("Message") or "", attributes)


def _attribute_value(value: dict[str, Any]) -> Any:
    text = value.get("Value")
    if value.get("Type") == "String.Array" and isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


@dataclass
class Deployment:
    """keyfix deployed in the workload account of the simulated AWS."""

    env: Env
    topic_arn: str
    queue_url: str
    table_name: str
    credentials: dict[str, str] = field(repr=False)

    def function_environment(self, mode: str, principal_allowlist: list[str]) -> dict[str, str | None]:
        """The function's environment variables (template.yaml, KeyfixFunction) and the
        credentials Lambda would give it from its execution role."""
        return {
            "AWS_ACCESS_KEY_ID": self.credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.credentials["SessionToken"],
            "KEYFIX_MODE": mode,
            "KEYFIX_KEY_ALLOWLIST": "",  # the demo's keys opt in by tag instead
            "KEYFIX_PRINCIPAL_ALLOWLIST": ",".join(principal_allowlist),
            "KEYFIX_SNS_TOPIC_ARN": self.topic_arn,
            "KEYFIX_TABLE_NAME": self.table_name,
        }

    def on_call_messages(self) -> list[OnCallMessage]:
        sqs = self.env.client("sqs", ASG_ACCOUNT)
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(OnCallMessage.from_envelope(json.loads(message["Body"])))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def history(self) -> list[dict[str, Any]]:
        """What `keyfix history` lists: the audit records of the writes keyfix made."""
        from keyfix.remedies.history import history
        from keyfix.store import Store

        return history(Store(self.table_name, self.env.client("dynamodb", ASG_ACCOUNT)))


def deploy(env: Env) -> Deployment:
    """Create what template.yaml creates that the function uses at run time."""
    iam = env.client("iam", ASG_ACCOUNT)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    # Lambda hands the function temporary credentials of its execution role; moto maps
    # them to the role's account, so the function's calls land in the workload account.
    credentials = env.client("sts", ASG_ACCOUNT).assume_role(
        RoleArn=role["Arn"], RoleSessionName=EXECUTION_ROLE)["Credentials"]

    sns, sqs = env.client("sns", ASG_ACCOUNT), env.client("sqs", ASG_ACCOUNT)
    topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    queue = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # template.yaml KeyfixTable: partition key `id` (S), TTL attribute `expiration`, and the
    # by-change index audit records are listed through (keyfix.store.audit).
    ddb = env.client("dynamodb", ASG_ACCOUNT)
    ddb.create_table(TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                                           for name in ("id", "change_list", "change_at")],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by-change", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "change_list", "KeyType": "HASH"},
                                                            {"AttributeName": "change_at", "KeyType": "RANGE"}]}])
    ddb.update_time_to_live(TableName=TABLE_NAME,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    return Deployment(env, topic, queue, TABLE_NAME, {k: credentials[k] for k in
                                                      ("AccessKeyId", "SecretAccessKey", "SessionToken")})
