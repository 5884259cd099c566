"""The key owner's side (issue #15), end to end on moto, through the Lambda handler.

keyfix runs in the key's account (the organisation's management account here, so that
organizations:DescribeAccount answers). Each proposal arrives as EventBridge delivers a
cross-account PutEvents: the envelope's `account` is the sender's, as AWS sets it. Every test
judges by the key policy read back from KMS, the audit record, the SNS message on-call got and
the outcome put back on the sender's bus - never by moto refusing a call (moto enforces no
key policy, bus policy or Organizations permission).
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from keyfix.org import bus, messages
from keyfix.org.owner_side import owner_statements
from keyfix.remedies.documents import EBS_USE_ACTIONS
from keyfix.sim import accounts, moto_gaps
from tests.integration.conftest import drain

OWNER = "444455556666"
OUTSIDER = "999988887777"
REGION = "us-east-1"
SLR_PATH = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
DENIED = ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
          "kms:DescribeKey", "kms:CreateGrant"]


def slr(account: str) -> str:
    return f"arn:aws:iam::{account}:{SLR_PATH}"


@dataclass
class Org:
    member: str  # on the allow-list
    other_member: str  # in the organisation, not on the allow-list
    key: str  # opted in (tag)
    plain_key: str  # not opted in
    queue_url: str
    table: str
    sent: list = field(default_factory=list)  # every PutEvents entry keyfix made

    def client(self, service: str, account: str = OWNER):
        return accounts.client(service, account, REGION)

    def policy(self, key: str) -> dict:
        return json.loads(self.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])

    def on_call(self) -> list[dict]:
        return drain(self.client("sqs"), self.queue_url)

    def changes(self) -> list[dict]:
        items = self.client("dynamodb").scan(TableName=self.table)["Items"]
        return [i for i in items if i["id"]["S"].startswith("change#")]


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "1",
                        "POWERTOOLS_SERVICE_NAME": "keyfix", "POWERTOOLS_METRICS_NAMESPACE": "keyfix"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_ACCOUNT_ID", "KEYFIX_KEY_ALLOWLIST",
                 "KEYFIX_PRINCIPAL_ALLOWLIST", "KEYFIX_CENTRAL_BUS_ARN", "KEYFIX_KEY_OWNER_BUS_ARNS",
                 "KEYFIX_SWITCH_PARAMETER", "KEYFIX_AUDIT_KEY_ARN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), moto_gaps.installed():
        organizations = accounts.client("organizations", OWNER, REGION)
        organizations.create_organization(FeatureSet="ALL")
        member, other = (organizations.create_account(AccountName=n, Email=f"{n}@example.com")
                         ["CreateAccountStatus"]["AccountId"] for n in ("web", "batch"))
        kms = accounts.client("kms", OWNER, REGION)
        key = kms.create_key(Description="shared AMIs", Tags=[{"TagKey": "keyfix:auto-remediate",
                                                               "TagValue": "true"}])["KeyMetadata"]["Arn"]
        plain = kms.create_key(Description="not opted in")["KeyMetadata"]["Arn"]
        sns, sqs = accounts.client("sns", OWNER, REGION), accounts.client("sqs", OWNER, REGION)
        topic = sns.create_topic(Name="keyfix")["TopicArn"]
        queue = sqs.create_queue(QueueName="on-call")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        accounts.client("dynamodb", OWNER, REGION).create_table(
            TableName="keyfix", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        monkeypatch.setenv("KEYFIX_MODE", "apply")
        monkeypatch.setenv("KEYFIX_SNS_TOPIC_ARN", topic)
        monkeypatch.setenv("KEYFIX_TABLE_NAME", "keyfix")
        monkeypatch.setenv("KEYFIX_PROPOSAL_ACCOUNTS", f"{member},{OUTSIDER}")  # the outsider is listed on purpose
        world = Org(member, other, key, plain, queue, "keyfix")
        real_put = bus.put

        def recording_put(gw, entry):
            world.sent.append(entry)
            return real_put(gw, entry)

        monkeypatch.setattr(bus, "put", recording_put)
        yield world


def delivered(sender: str, *, key: str, principal: str | None = None, claimed: str | None = None,
              operations: list[str] | None = None, reply_bus: str | None = None) -> dict:
    """A proposal as EventBridge delivers it in the owner's account: `account` is the sender's."""
    entry = messages.proposal_entry(
        bus_arn=f"arn:aws:events:{REGION}:{OWNER}:event-bus/keyfix-org", sender_account=claimed or sender,
        key_arn=key, principal=principal or slr(claimed or sender), operations=operations or DENIED,
        statements=[{"Sid": "whatever-the-sender-says", "Effect": "Allow", "Principal": "*", "Action": "kms:*",
                     "Resource": "*"}],
        report_event_id="evt-1", reply_bus=reply_bus)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
            "account": sender, "time": "2026-01-01T00:00:00Z", "region": REGION, "resources": [],
            "detail": json.loads(entry["Detail"])}


class OwnerContext:
    function_name = "keyfix"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{OWNER}:function:keyfix"
    log_group_name = "/aws/lambda/keyfix"
    log_stream_name = "test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@contextmanager
def as_owner(monkeypatch):
    """keyfix's own calls land in the owner's account (moto: MOTO_ACCOUNT_ID wins over all)."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OWNER)
    try:
        yield
    finally:
        monkeypatch.delenv("MOTO_ACCOUNT_ID")


def run(monkeypatch, event: dict) -> dict:
    from keyfix.handler import lambda_handler

    with as_owner(monkeypatch):
        return lambda_handler(event, OwnerContext())


def outcome_of(org: Org, sender: str) -> dict:
    """The one outcome keyfix put back, on the sender's organisation bus."""
    replies = [e for e in org.sent if e["DetailType"] == messages.OUTCOME]
    assert len(replies) == 1, replies
    assert replies[0]["EventBusName"] == f"arn:aws:events:{REGION}:{sender}:event-bus/keyfix-org"
    return json.loads(replies[0]["Detail"])


def assert_refused_untouched(org: Org, monkeypatch, event: dict, key: str, rule: str, sender: str) -> dict:
    before = json.dumps(org.policy(key), sort_keys=True)
    result = run(monkeypatch, event)
    assert result["status"] == "refused", result
    assert result["checks"][rule] != "passed" and rule in result["checks"], result["checks"]
    assert json.dumps(org.policy(key), sort_keys=True) == before
    assert org.changes() == []  # not even an intent record: nothing was attempted
    (message,) = org.on_call()
    assert message["MessageAttributes"]["status"]["Value"] == "refused"
    assert result["reason"] in message["Message"]
    reply = outcome_of(org, sender)
    assert (reply["status"], reply["reason"], reply["statements"]) == ("refused", result["reason"], [])
    return result


def test_member_on_the_allow_list_gets_exactly_keyfixs_statements(org: Org, monkeypatch):
    before = org.policy(org.key)
    result = run(monkeypatch, delivered(org.member, key=org.key))

    assert result["status"] == "applied", result
    assert set(result["checks"].values()) == {"passed"}
    expected = owner_statements(slr(org.member), [a for a in EBS_USE_ACTIONS if a in DENIED], True)
    assert {a for s in expected for a in s["Action"]} == set(DENIED)  # every denied operation, nothing else
    after = org.policy(org.key)
    assert after["Statement"] == before["Statement"] + expected  # nothing else changed, nothing removed
    assert all(s["Principal"] == {"AWS": slr(org.member)} for s in expected)
    grant = next(s for s in expected if "kms:CreateGrant" in s["Action"])
    assert grant["Condition"] == {"StringEquals": {"kms:GranteePrincipal": slr(org.member)}}
    assert all("*" not in json.dumps(s["Principal"]) and "kms:*" not in s["Action"] for s in after["Statement"][-2:])
    assert len(org.changes()) == 1
    from keyfix.store import Store

    record = Store(org.table, org.client("dynamodb"), mac=None).get_change(result["change_id"])
    assert record["status"] == "applied", record
    assert record["change"]["principal"] == slr(org.member) and record["change"]["added_statements"] == expected
    (message,) = org.on_call()
    assert message["MessageAttributes"]["status"]["Value"] == "applied"
    reply = outcome_of(org, org.member)
    assert (reply["status"], reply["statements"]) == ("applied", expected)

    # EventBridge delivers at least once: the same proposal again writes nothing.
    org.sent.clear()
    again = run(monkeypatch, delivered(org.member, key=org.key))
    assert again["status"] == "already-present"
    assert org.policy(org.key) == after and len(org.changes()) == 1


def test_outsider_is_refused_even_on_the_allow_list(org: Org, monkeypatch):
    assert_refused_untouched(org, monkeypatch, delivered(OUTSIDER, key=org.key), org.key, "organisation", OUTSIDER)


def test_member_not_on_the_allow_list_is_refused(org: Org, monkeypatch):
    result = assert_refused_untouched(org, monkeypatch, delivered(org.other_member, key=org.key), org.key,
                                      "allow-list", org.other_member)
    assert "organisation" not in result["checks"]  # stopped before any Organizations call


def test_forged_account_claim_is_refused(org: Org, monkeypatch):
    """The outsider puts a proposal that claims to be the allow-listed member, for its role."""
    event = delivered(org.other_member, key=org.key, claimed=org.member)
    assert event["detail"]["sender_account"] == org.member and event["detail"]["principal"] == slr(org.member)
    assert_refused_untouched(org, monkeypatch, event, org.key, "claims", org.other_member)


def test_another_accounts_role_in_an_honest_envelope_is_refused(org: Org, monkeypatch):
    """The member itself asks for another member's role (or a look-alike path): not its SLR."""
    for principal in (slr(org.other_member), f"arn:aws:iam::{org.member}:role/x/{SLR_PATH}",
                      f"arn:aws:iam::{org.member}:role/admin"):
        org.sent.clear()
        assert_refused_untouched(org, monkeypatch, delivered(org.member, key=org.key, principal=principal),
                                 org.key, "principal", org.member)


def test_key_not_opted_in_is_refused(org: Org, monkeypatch):
    result = assert_refused_untouched(org, monkeypatch, delivered(org.member, key=org.plain_key), org.plain_key,
                                      "opt-in", org.member)
    assert "keyfix:auto-remediate" in result["reason"]


def test_operations_beyond_ebs_are_refused(org: Org, monkeypatch):
    event = delivered(org.member, key=org.key, operations=["kms:Decrypt", "kms:PutKeyPolicy"])
    result = assert_refused_untouched(org, monkeypatch, event, org.key, "operations", org.member)
    assert "kms:PutKeyPolicy" in result["reason"]


def test_propose_mode_notifies_with_the_statements_and_writes_nothing(org: Org, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    before = org.policy(org.key)
    result = run(monkeypatch, delivered(org.member, key=org.key))
    assert result["status"] == "proposed" and org.policy(org.key) == before and org.changes() == []
    (message,) = org.on_call()
    assert "put-key-policy" in message["Message"] and slr(org.member) in message["Message"]
    assert outcome_of(org, org.member)["status"] == "proposed"


def test_reply_goes_only_to_a_bus_of_the_sender(org: Org, monkeypatch):
    """A detail naming someone else's bus for the reply is ignored: the sender's own bus gets it."""
    event = delivered(org.member, key=org.key, reply_bus=f"arn:aws:events:{REGION}:{OUTSIDER}:event-bus/loot")
    run(monkeypatch, event)
    assert outcome_of(org, org.member)["status"] == "applied"


@pytest.mark.parametrize("mangle", [
    lambda e: e.pop("account"),
    lambda e: e.update(account="12345"),
    lambda e: e["detail"].update(schema="keyfix.proposal/9"),
    lambda e: e["detail"].update(operations="kms:Decrypt"),
    lambda e: e["detail"].update(key_arn=None),
    lambda e: e.update(detail="{}"),
])
def test_malformed_proposals_change_nothing_and_are_reported(org: Org, monkeypatch, mangle):
    event = delivered(org.member, key=org.key)
    mangle(event)
    before = org.policy(org.key)
    result = run(monkeypatch, event)
    assert result["status"] == "refused" and result["reason"].startswith("malformed proposal")
    assert org.policy(org.key) == before and org.changes() == []
    assert len(org.on_call()) == 1
    assert [e for e in org.sent if e["DetailType"] == messages.OUTCOME] == []
