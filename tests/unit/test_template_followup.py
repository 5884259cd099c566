"""The template's follow-up queue, its event source and the recovery rule (issue #11)."""

from __future__ import annotations

import pytest

from keyfix.events.followup import MAX_ATTEMPTS
from keyfix.events.patterns import PATTERNS
from keyfix.followup.schedule import DELAYS_SECONDS, QUEUE_ENV
from tests.unit.test_template import actions_of, as_list, effective_allows, load_template, of_type, rule_events

QUEUE_ARN = {"Fn::GetAtt": ["FollowUpQueue", "Arn"]}


@pytest.fixture(scope="module")
def tpl():
    return load_template()


@pytest.fixture(scope="module")
def resources(tpl):
    return tpl["Resources"]


def test_follow_up_queue_is_encrypted_and_drains_to_the_dead_letter_queue(resources):
    props = resources["FollowUpQueue"]["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert 1 <= props["RedrivePolicy"]["maxReceiveCount"] <= 5
    # Lambda: the queue's visibility timeout at least six times the function's timeout.
    assert props["VisibilityTimeout"] >= 6 * resources["KeyfixFunction"]["Properties"]["Timeout"]
    # A chain lasts minutes; its messages must outlive every delay, and the DLQ must outlive them.
    assert props["MessageRetentionPeriod"] > sum(DELAYS_SECONDS)
    assert resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] > props["MessageRetentionPeriod"]


def test_follow_up_queue_delivers_one_record_per_invocation(resources):
    mappings = of_type(resources, "AWS::Lambda::EventSourceMapping")
    (mapping,) = mappings.values()
    assert mapping["Properties"]["EventSourceArn"] == QUEUE_ARN
    assert mapping["Properties"]["FunctionName"] == {"Ref": "KeyfixFunction"}
    assert mapping["Properties"]["BatchSize"] == 1


def test_delays_are_bounded_by_sqs(resources):
    assert len(DELAYS_SECONDS) == MAX_ATTEMPTS == 3
    assert all(0 < d <= 900 for d in DELAYS_SECONDS)  # SendMessage DelaySeconds range
    # +2, +5, +10 minutes: the last attempt after the five-minute grant-consistency window.
    assert [sum(DELAYS_SECONDS[:i + 1]) for i in range(3)] == [120, 300, 600]


def test_only_keyfix_role_may_send_follow_ups(resources):
    policy = resources["FollowUpQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "FollowUpQueue"}]
    (stmt,) = policy["PolicyDocument"]["Statement"]
    assert stmt["Effect"] == "Deny" and stmt["Principal"] == "*" and stmt["Action"] == "sqs:SendMessage"
    assert stmt["Resource"] == QUEUE_ARN
    assert stmt["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["KeyfixRole", "Arn"]}}}


@pytest.mark.parametrize("mode", ["propose", "apply"])
def test_function_may_use_the_follow_up_queue_and_nothing_more(tpl, mode):
    allows = effective_allows(tpl, Mode=mode)
    on_queue = [s for s in allows if QUEUE_ARN in as_list(s["Resource"])]
    assert actions_of(on_queue) == {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                    "sqs:GetQueueAttributes"}
    for stmt in allows:
        if set(as_list(stmt["Action"])) & {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}:
            assert as_list(stmt["Resource"]) == [QUEUE_ARN], stmt
        if "sqs:SendMessage" in as_list(stmt["Action"]):
            assert all(r in (QUEUE_ARN, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}) for r in as_list(stmt["Resource"]))


def test_function_is_told_its_follow_up_queue(resources):
    env = resources["KeyfixFunction"]["Properties"]["Environment"]["Variables"]
    assert env[QUEUE_ENV] == {"Ref": "FollowUpQueue"}


def test_recovery_rule_matches_launch_successful_only(resources):
    rule = rule_events(resources)["AsgLaunchSuccessfulRule"]
    assert rule["Pattern"] == PATTERNS["AsgLaunchSuccessfulRule"] == {
        "source": ["aws.autoscaling"], "detail-type": ["EC2 Instance Launch Successful"]}
    assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    # EventBridge may put its undeliverable events into the dead-letter queue (SAM names the
    # rule KeyfixFunction<event name>).
    dlq_policy = resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert {"Fn::GetAtt": ["KeyfixFunctionAsgLaunchSuccessfulRule", "Arn"]} in \
        dlq_policy["Condition"]["ArnEquals"]["aws:SourceArn"]
