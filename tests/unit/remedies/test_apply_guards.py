"""Guards around writes: the deadline, and the lockout check."""

import pytest

from keyfix.config import Settings
from keyfix.events.incident import Incident
from keyfix.remedies import documents as docs
from keyfix.remedies.apply import WRITE_BUDGET_SECONDS, carry_out
from keyfix.remedies.safety import Refusal, check_no_lockout
from keyfix.report import Cause, Finding, Fix, FixKind, FixStatus, Mode, Trigger
from keyfix.resolve.facts import KeyFacts, Situation

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
ROOT_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": ["kms:PutKeyPolicy"], "Resource": "*"},
]}


class NoWritesGateway:
    def client(self, service):
        raise AssertionError(f"keyfix asked for a {service} client with no time left to write")


def _situation_and_finding():
    incident = Incident(Trigger.ASG_LAUNCH_FAILURE, "evt-1", "aws.autoscaling", "EC2 Instance Launch Unsuccessful",
                        ACCOUNT, "us-east-1", group_name="web-asg")
    key = KeyFacts(KEY, ACCOUNT, "us-east-1", manager="CUSTOMER", state="Enabled",
                   tags={"keyfix:auto-remediate": "true"}, policy=ROOT_ONLY)
    statements = docs.key_policy_statements(SLR, ["kms:Decrypt"], ["kms:CreateGrant"])
    fix = Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, ACCOUNT, KEY, statements)
    finding = Finding(Cause.SLR_NOT_IN_KEY_POLICY, SLR, KEY, ["kms:Decrypt"], "x", fixes=[fix])
    return Situation(incident, keys={KEY: key}), finding


@pytest.mark.parametrize("seconds_left", [0.5, WRITE_BUDGET_SECONDS - 0.01])
def test_no_write_starts_when_lambda_time_is_nearly_out(seconds_left):
    situation, finding = _situation_and_finding()
    changes = carry_out([finding], situation, Settings(mode=Mode.APPLY), NoWritesGateway(),
                        time_left=lambda: seconds_left)
    (fix,) = finding.fixes
    assert changes == [] and fix.status == FixStatus.PROPOSED
    assert "not attempted" in fix.reason and "Lambda time" in fix.reason


def test_adding_allow_statements_keeps_every_manager():
    after = {"Version": "2012-10-17", "Statement": ROOT_ONLY["Statement"] +
             docs.key_policy_statements(SLR, ["kms:Decrypt"], ["kms:CreateGrant"])}
    check_no_lockout(ROOT_ONLY, after, KEY)


@pytest.mark.parametrize("dropped", [0, 1])
def test_a_policy_that_drops_a_manager_is_refused(dropped):
    after = {"Version": "2012-10-17",
             "Statement": [s for i, s in enumerate(ROOT_ONLY["Statement"]) if i != dropped]}
    with pytest.raises(Refusal, match="managing the key"):
        check_no_lockout(ROOT_ONLY, after, KEY)


def test_no_write_when_keyfix_could_not_confirm_its_own_account():
    situation, finding = _situation_and_finding()
    situation.account_confirmed = False  # sts:GetCallerIdentity failed: only the event named the account
    changes = carry_out([finding], situation, Settings(mode=Mode.APPLY), NoWritesGateway())
    (fix,) = finding.fixes
    assert changes == [] and fix.status == FixStatus.PROPOSED
    assert "could not confirm which account" in fix.reason
