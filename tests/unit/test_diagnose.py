"""The diagnosis on plain data: every cause the contract names that the seed scenarios
do not already reach end to end, each from the AWS page that defines it."""

from __future__ import annotations

import json

import pytest

from keyfix.diagnose import diagnose
from keyfix.events.incident import Denial, Incident
from keyfix.policy import Grant, Policy, PolicySet, Request, evaluate
from keyfix.report import Cause, FixKind, FixStatus, Trigger
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation

HERE, OWNER = "111122223333", "444455556666"
KEY = f"arn:aws:kms:us-east-1:{HERE}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FOREIGN_KEY = f"arn:aws:kms:us-east-1:{OWNER}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
SLR = f"arn:aws:iam::{HERE}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ALICE = f"arn:aws:iam::{HERE}:user/dev-alice"
OPERATOR = f"arn:aws:iam::{HERE}:role/ec2-operator"
EBS_CONTEXT = {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "kms:GrantIsForAWSResource": "true"}
OPS = ("kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext")


def root_policy(account: str = HERE, *extra: dict) -> dict:
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}, *extra]}


def situation(principal: str, key: KeyFacts, identity: tuple = (), denial: Denial | None = None) -> Situation:
    incident = Incident(Trigger.KMS_ACCESS_DENIED, "evt-1", "aws.kms", "AWS API Call via CloudTrail", HERE,
                        "us-east-1", action="kms:CreateGrant", denial=denial)
    kind = "service-linked-role" if "aws-service-role" in principal else principal.split(":")[5].split("/")[0]
    facts = PrincipalFacts(principal, kind, principal.split(":")[4], exists=True, identity_policies=identity)
    return Situation(incident, needs=[AccessNeed(principal, key.arn, OPS, dict(EBS_CONTEXT))],
                     keys={key.arn: key}, principals={principal: facts})


def key(policy: dict | None = None, **kw) -> KeyFacts:
    arn = kw.pop("arn", KEY)
    return KeyFacts(arn, arn.split(":")[4], "us-east-1", state=kw.pop("state", "Enabled"),
                    manager=kw.pop("manager", "CUSTOMER"), policy=policy, grants=kw.pop("grants", ()), **kw)


def only(findings):
    (finding,) = findings
    return finding


def allowed_after(finding, principal: str, base_policy: dict) -> bool:
    """Re-decide every operation with the finding's key-policy statements added."""
    statements = next(f.document for f in finding.fixes if f.kind == FixKind.KEY_POLICY_STATEMENT)
    policy = Policy.parse({**base_policy, "Statement": base_policy["Statement"] + statements}, "resource_policy")
    return all(evaluate(Request(principal, op, KEY, context=dict(EBS_CONTEXT)),
                        PolicySet(resource_policy=policy)).decision == "Allowed" for op in OPS)


@pytest.mark.parametrize("state,cause,first_cli", [
    ("Disabled", Cause.KEY_DISABLED, "enable-key"),
    ("PendingDeletion", Cause.KEY_PENDING_DELETION, "cancel-key-deletion"),
    ("PendingImport", Cause.KEY_PENDING_IMPORT, "get-parameters-for-import"),
])
def test_key_state_blocks_before_any_permission(state, cause, first_cli):
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
    finding = only(diagnose(situation(SLR, key(root_policy(), state=state))))
    assert finding.cause == cause
    (fix,) = finding.fixes
    assert (fix.kind, fix.status) == (FixKind.KEY_STATE, FixStatus.PROPOSED)
    assert fix.cli[0].split()[2] == first_cli


def test_missing_key_is_key_not_found():
    finding = only(diagnose(situation(SLR, key(exists=False, unreadable=("DescribeKey: NotFoundException",)))))
    assert finding.cause == Cause.KEY_NOT_FOUND and "NotFoundException" in finding.explanation


def test_aws_managed_key_from_another_account_needs_re_encryption():
    # https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
    managed = key(None, arn=FOREIGN_KEY, manager="AWS")
    finding = only(diagnose(situation(SLR, managed)))
    assert finding.cause == Cause.AWS_MANAGED_KEY_CROSS_ACCOUNT
    (fix,) = finding.fixes
    assert fix.kind == FixKind.RE_ENCRYPT and "--encrypted" in fix.cli[0]


def test_stale_principal_is_named_and_only_proposed():
    # A role deleted and re-created shows in old policies as its unique id.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles
    stale = {"Sid": "ops", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEDELETEDROLE"},
             "Action": "kms:*", "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [stale]}
    finding = only(diagnose(situation(OPERATOR, key(policy))))
    assert finding.cause == Cause.STALE_PRINCIPAL
    assert "AROAEXAMPLEDELETEDROLE" in finding.explanation
    assert all(f.status == FixStatus.PROPOSED for f in finding.fixes)
    assert "AROAEXAMPLEDELETEDROLE" in finding.fixes[0].reason


def test_explicit_deny_in_identity_policy_is_named():
    deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "NoKms", "Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}
    finding = only(diagnose(situation(OPERATOR, key(root_policy()), identity=(deny,))))
    assert finding.cause == Cause.EXPLICIT_DENY and "NoKms" in finding.explanation
    (fix,) = finding.fixes
    assert fix.kind == FixKind.IDENTITY_POLICY and fix.target == OPERATOR
    assert fix.document["DenyingStatements"][0]["sid"] == "NoKms"


def test_same_account_user_without_key_policy_access_gets_key_user_statements():
    no_root = {"Version": "2012-10-17", "Statement": [
        {"Sid": "admins", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HERE}:role/KeyAdmin"},
         "Action": "kms:*", "Resource": "*"}]}
    finding = only(diagnose(situation(ALICE, key(no_root))))
    assert finding.cause == Cause.PRINCIPAL_NOT_IN_KEY_POLICY
    assert allowed_after(finding, ALICE, no_root)
    assert "kms:*" not in json.dumps(finding.fixes[0].document)


def test_root_delegation_without_identity_policy_is_identity_policy_missing():
    finding = only(diagnose(situation(OPERATOR, key(root_policy()))))
    assert finding.cause == Cause.IDENTITY_POLICY_MISSING
    (fix,) = finding.fixes
    assert fix.kind == FixKind.IDENTITY_POLICY and fix.target == OPERATOR
    statements = fix.document["PolicyDocument"]["Statement"]
    assert all(s["Resource"] == KEY for s in statements)


def test_permissions_in_force_mean_no_missing_permission():
    grant = {"GrantId": "g-1", "GranteePrincipal": SLR, "KeyId": KEY,
             "Operations": ["CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext"]}
    finding = only(diagnose(situation(SLR, key(root_policy(), grants=(grant,)))))
    assert finding.cause == Cause.NO_MISSING_PERMISSION and finding.fixes == []
    assert "grant g-1" in finding.explanation
    Grant.from_aws(grant)  # the shape is one AWS's ListGrants returns


def test_user_on_foreign_key_whose_owner_does_not_allow_is_account_not_in_key_policy():
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
    allow_all_kms = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": FOREIGN_KEY}]}
    foreign = key(None, arn=FOREIGN_KEY, grants=None, unreadable=("GetKeyPolicy: cross-account",))
    s = situation(ALICE, foreign, identity=(allow_all_kms,), denial=Denial.NO_RESOURCE_POLICY)
    finding = only(diagnose(s))
    assert finding.cause == Cause.ACCOUNT_NOT_IN_KEY_POLICY
    owner_fix = next(f for f in finding.fixes if f.kind == FixKind.KEY_POLICY_STATEMENT)
    assert owner_fix.target_account == OWNER and owner_fix.status == FixStatus.PROPOSED
    assert all(st["Principal"] == {"AWS": ALICE} for st in owner_fix.document)


def test_malformed_key_policy_is_undetermined_naming_the_place():
    broken = root_policy(HERE, {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                                "Condition": {"StringEqualz": {"kms:CallerAccount": HERE}}})
    finding = only(diagnose(situation(SLR, key(broken))))
    assert finding.cause == Cause.UNDETERMINED
    assert "Statement[1]" in finding.explanation and finding.fixes == []
