"""The `predict` scenario: a healthy group, a person's key-policy edit that will break it, and
keyfix's warning before any launch fails (issue #11, item 4; keyfix.predict.keychange).

The other scenarios show a failure, keyfix, and a retry. This one has no failure to start
from, so it has its own play flow:

    a launch works          the group launches with its key (the key policy lets the
                            service-linked role in, as the Auto Scaling guide documents)
    the change              user alice calls PutKeyPolicy with a policy that drops the
                            role's statements; CloudTrail records it, and EventBridge
                            delivers the record as "AWS API Call via CloudTrail"
    keyfix                  the very Lambda handler gets that event (KeyChangeRule), checks
                            the groups the key serves and predicts: "alice made PutKeyPolicy
                            at ...: this change will break web-asg at its next launch". Even
                            in apply mode on an opted-in key it writes nothing: a person's
                            change is never reverted automatically; on-call gets the fix
    the next launch         fails, as predicted (its failure event is not handed to keyfix
                            here: that is scenario a1)

Key policy for the service-linked role:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
The CloudTrail record of PutKeyPolicy (requestParameters keyId, policyName, policy):
https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from keyfix.demo import cloudtrail, eventbridge
from keyfix.demo.asg_scenarios import SLR_NAME, AsgLaunch
from keyfix.demo.authorize import Authorizer
from keyfix.demo.scenario import Attempt, Expected, ExpectedFix, tag_for_keyfix
from keyfix.sim.scenarios import ASG_ACCOUNT, GROUP, REGION, Env, make_group, make_snapshot, register_image
from keyfix.sim.scenarios.common import root_only_policy
from keyfix.sim.scenarios.fleet import slr_key_policy

EDITOR = "alice"
PREDICTION = f"this change will break {GROUP} at its next launch"


class Predict(AsgLaunch):
    name, title, seed = "predict", "a key-policy edit that will break a healthy group, predicted", "A1 (000), issue #11"
    # How the text show names the two decisions it compares (keyfix.demo.show).
    decision_labels = ("before the change", "after the change")
    ending = "predicted before any launch failed; nothing written, the next launch fails as predicted"

    def build(self, env: Env) -> list[str]:
        kms = env.client("kms", ASG_ACCOUNT)
        key = kms.create_key(Policy=json.dumps(slr_key_policy(ASG_ACCOUNT, REGION)),
                             Description="web-asg EBS")["KeyMetadata"]
        kms.create_alias(AliasName="alias/web-ebs", TargetKeyId=key["KeyId"])
        image = register_image(env, ASG_ACCOUNT, make_snapshot(env, ASG_ACCOUNT, key_arn=key["Arn"]))
        _, self.group_arn, _ = make_group(env, ASG_ACCOUNT, image, key["Arn"])
        self.key_arn = self.snapshot_key_arn = key["Arn"]
        tag_for_keyfix(env, key["Arn"])
        env.client("iam", ASG_ACCOUNT).create_user(UserName=EDITOR)
        return [f"nothing yet: group {GROUP} launches {image}, encrypted with key {key['Arn']}, whose policy "
                f"lets {SLR_NAME} use the key and create grants for AWS resources",
                "the key is tagged keyfix:auto-remediate=true, so apply mode could change its policy",
                f"user {EDITOR} is about to replace the key policy with one that only delegates to IAM"]

    def change(self, env: Env) -> Attempt:
        """alice's PutKeyPolicy, as KMS takes it and CloudTrail records it."""
        policy = json.dumps(root_only_policy(ASG_ACCOUNT))
        env.client("kms", ASG_ACCOUNT).put_key_policy(KeyId=self.key_arn, PolicyName="default", Policy=policy)
        user = env.client("iam", ASG_ACCOUNT).get_user(UserName=EDITOR)["User"]
        identity = cloudtrail.user_identity(user["Arn"], user["UserId"])
        record = put_key_policy_record(identity, self.key_arn, policy, REGION)
        event = eventbridge.cloudtrail_api_call(record)
        return Attempt(f"{EDITOR} calls kms:PutKeyPolicy on {self.key_arn}", [], True,
                       "the key policy now only delegates to IAM (the service-linked role's two statements are gone)",
                       event, [f"CloudTrail: PutKeyPolicy by user/{EDITOR}, event {record['eventID']}"])

    def play(self, server: Any, mode: str, say: Callable[..., None], observer: Any = None) -> Any:
        """This scenario's own flow (keyfix.demo.run calls it instead of keyfix.demo.play.play)."""
        return play_prediction(self, server, mode, say, observer)

    def expected(self, mode: str) -> Expected:
        return Expected("slr-not-in-key-policy", (ExpectedFix("key-policy-statement", "proposed"),), False,
                        why="a person's change is never reverted automatically, even in apply mode on an opted-in "
                            "key: keyfix warns on-call with the exact fix")


def put_key_policy_record(identity: dict[str, Any], key_arn: str, policy: str, region: str) -> dict[str, Any]:
    """A successful PutKeyPolicy as CloudTrail records it (no errorCode: KeyChangeRule takes
    only successful calls)."""
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": eventbridge.now(),
        "eventSource": "kms.amazonaws.com",
        "eventName": "PutKeyPolicy",
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"keyId": key_arn, "policyName": "default", "policy": policy,
                              "bypassPolicyLockoutSafetyCheck": False},
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"accountId": ASG_ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId") or ASG_ACCOUNT,
        "eventCategory": "Management",
    }


def play_prediction(scenario: Predict, server: Any, mode: str, say: Callable[..., None],
                    observer: Any = None) -> Any:
    """A launch that works, the change, keyfix on the change's event, the next launch."""
    from keyfix.demo.account import deploy
    from keyfix.demo.play import Outcome, _run_keyfix, check

    server.reset()
    env = Env(endpoint_url=server.url)
    deployment = deploy(env)
    outcome = Outcome(scenario, mode, scenario.build(env), Attempt("", [], False, ""))
    say("broken", outcome)

    works = scenario.attempt(env, Authorizer(REGION))  # before the change: the launch works
    original = scenario.original_request(works)
    scenario.extra["launch_before_change"] = {**works.verdicts[0].to_dict(), "succeeded": works.succeeded} \
        if works.verdicts else {"succeeded": works.succeeded}
    scenario.notes.append(f"before the change: {works.operation}: {'OK' if works.succeeded else 'FAIL'} "
                          f"({works.outcome})")
    outcome.before = Authorizer(REGION).decide(original) if original is not None else None

    outcome.first = scenario.change(env)
    say("failure", outcome)
    _run_keyfix(outcome, env, deployment, mode, observer)
    say("keyfix", outcome)

    outcome.retry = scenario.attempt(env, Authorizer(REGION))  # the next launch, as predicted
    if original is not None:
        outcome.after = Authorizer(REGION).decide(original)
    say("retry", outcome)
    outcome.problems = check(scenario.expected(mode), outcome) + prediction_problems(outcome, works)
    return outcome


def prediction_problems(outcome: Any, works: Attempt) -> list[str]:
    """What the generic check does not ask of a prediction."""
    problems = []
    if not works.succeeded:
        problems.append(f"the launch before the change failed: {works.outcome}")
    report = outcome.report or {}
    if (report.get("event") or {}).get("trigger") != "key-change":
        problems.append(f"the handler did not take the change as a key-change: {report.get('event')}")
    for finding in report.get("findings") or []:
        if finding.get("predicted") is not True:
            problems.append("the finding is not marked predicted")
        if PREDICTION not in (finding.get("explanation") or "") or EDITOR not in (finding.get("explanation") or ""):
            problems.append(f"the finding does not say who will break what: {finding.get('explanation')}")
    if outcome.messages and PREDICTION not in outcome.messages[0].body:
        problems.append("on-call's message does not carry the prediction")
    return problems
