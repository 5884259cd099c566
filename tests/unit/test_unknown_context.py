"""Unknown is not denied (issue #10, 1 and 6), on hand-built situations.

The resolver's context step (keyfix.resolve.context) runs against a scripted gateway that
answers only the reads it is given and counts every call; the diagnosis then decides. Policies:
an organisation sharing a key with `Principal: "*"` limited by aws:PrincipalOrgID
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid),
and principal-tag (ABAC) statements
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principaltag).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.diagnose import diagnose
from keyfix.events.incident import Caller, Incident
from keyfix.policy import Policy, PolicySet, Request, evaluate
from keyfix.report import Cause, FixKind, FixStatus, Trigger
from keyfix.resolve.context import ALWAYS_UNKNOWN, resolve_context
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation
from keyfix.resolve.gateway import AwsError
from keyfix.resolve.needs import launch_needs
from keyfix.resolve.principal_tags import READING_SLR_TAGS

HERE, OWNER = "111122223333", "444455556666"
REGION = "us-east-1"
ORG, OTHER_ORG = "o-a1b2c3d4e5", "o-zzzzzzzzzz"
KEY = f"arn:aws:kms:{REGION}:{HERE}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FOREIGN_KEY = f"arn:aws:kms:{REGION}:{OWNER}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
SLR = f"arn:aws:iam::{HERE}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ALICE = f"arn:aws:iam::{HERE}:user/dev-alice"
OPERATOR = f"arn:aws:iam::{HERE}:role/ec2-operator"
USER_OPS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom", "kms:ReEncryptTo")
USER_CONTEXT = {"kms:ViaService": f"ec2.{REGION}.amazonaws.com", "kms:GrantIsForAWSResource": "true",
                "kms:CallerAccount": HERE}
NOT_IN_USE = AwsError("organizations", "DescribeOrganization", "AWSOrganizationsNotInUseException",
                      "Your account is not a member of an organization.")
ORG_DENIED = AwsError("organizations", "DescribeOrganization", "AccessDeniedException", "not authorized")


class ScriptedGateway:
    """The part of AwsGateway the context step uses; answers only what it is given."""

    def __init__(self, answers: dict[tuple[str, str], Any], account: str = HERE) -> None:
        self.account = account
        self.answers = answers
        self.memo: dict[tuple[Any, ...], Any] = {}
        self.calls: list[tuple[str, str]] = []

    def home_account(self) -> str:
        return self.account

    def _answer(self, service: str, operation: str) -> Any:
        self.calls.append((service, operation))
        answer = self.answers[(service, operation)]  # an unscripted call is a test failure
        if isinstance(answer, AwsError):
            raise answer
        return answer

    def read(self, service: str, operation: str, **_: Any) -> Any:
        return self._answer(service, operation)

    def read_all(self, service: str, operation: str, result_key: str, **_: Any) -> list[Any]:
        return self._answer(service, operation)[result_key]


def org_answer(org_id: str | AwsError) -> dict:
    if isinstance(org_id, AwsError):
        return {("organizations", "DescribeOrganization"): org_id}
    return {("organizations", "DescribeOrganization"): {"Organization": {"Id": org_id, "MasterAccountId": OWNER}}}


def org_statement(condition: dict | None = None) -> dict:
    """The organisation-wide share: anyone in the organisation, through EC2, for AWS resources."""
    return {"Sid": "OrgMayUseForEbs", "Effect": "Allow", "Principal": "*",
            "Action": ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*", "kms:CreateGrant",
                       "kms:DescribeKey"],
            "Resource": "*",
            "Condition": condition or {"StringEquals": {"aws:PrincipalOrgID": ORG}}}


def key_policy(account: str, *extra: dict) -> dict:
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"}, *extra]}


def key(arn: str = KEY, policy: dict | None = None, **kw: Any) -> KeyFacts:
    return KeyFacts(arn, arn.split(":")[4], REGION, state=kw.pop("state", "Enabled"), manager=kw.pop("manager", "CUSTOMER"),
                    policy=policy, grants=kw.pop("grants", ()), **kw)


def principal(arn: str, identity: tuple = (), **kw: Any) -> PrincipalFacts:
    kind = "service-linked-role" if "aws-service-role" in arn else arn.split(":")[5].split("/")[0]
    name = arn.rsplit("/", 1)[1]
    return PrincipalFacts(arn, kind, arn.split(":")[4], exists=True, identity_policies=identity, iam_name=name,
                          unique_id=kw.pop("unique_id", "AIDAEXAMPLE"), **kw)


def asg_situation(k: KeyFacts, p: PrincipalFacts | None = None) -> Situation:
    incident = Incident(Trigger.ASG_LAUNCH_FAILURE, "evt-1", "aws.autoscaling", "EC2 Instance Launch Unsuccessful",
                        HERE, REGION, group_name="web-asg", kms_related=True)
    p = p or principal(SLR)
    return Situation(incident, needs=launch_needs(SLR, HERE, k.arn, REGION, None), keys={k.arn: k},
                     principals={SLR: p})


def user_situation(who: str, k: KeyFacts, p: PrincipalFacts | None = None, error_code: str = "AccessDenied") -> Situation:
    incident = Incident(Trigger.KMS_ACCESS_DENIED, "evt-2", "aws.kms", "AWS API Call via CloudTrail", HERE, REGION,
                        caller=Caller("IAMUser", who, HERE), action="kms:CreateGrant", error_code=error_code)
    return Situation(incident, needs=[AccessNeed(who, k.arn, USER_OPS, dict(USER_CONTEXT))], keys={k.arn: k},
                     principals={who: p or principal(who)})


def decide(s: Situation, answers: dict | None = None) -> tuple[Any, list[tuple[str, str]], Situation]:
    gw = ScriptedGateway(answers or {})
    resolve_context(gw, s)
    (finding,) = diagnose(s)
    return finding, gw.calls, s


def identity_allowing_kms(key_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": key_arn}]}


# ---- the organisation-shared key: Auto Scaling's service-linked role ------------------------------------


def test_slr_on_an_org_shared_key_of_this_account_is_undetermined_when_the_org_cannot_be_read():
    finding, calls, s = decide(asg_situation(key(policy=key_policy(HERE, org_statement()))), org_answer(ORG_DENIED))

    assert calls == [("organizations", "DescribeOrganization")]
    assert "aws:PrincipalOrgID" in s.needs[0].unknown_keys
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == []
    assert "aws:PrincipalOrgID" in finding.explanation and "organizations:DescribeOrganization" not in calls[1:]


def test_slr_on_an_org_shared_key_of_this_account_is_allowed_when_the_org_matches():
    finding, calls, s = decide(asg_situation(key(policy=key_policy(HERE, org_statement()))), org_answer(ORG))

    assert s.needs[0].context["aws:PrincipalOrgID"] == ORG
    assert "aws:PrincipalOrgID" not in s.needs[0].unknown_keys
    assert calls == [("organizations", "DescribeOrganization")]
    assert finding.cause == Cause.NO_MISSING_PERMISSION and finding.fixes == []
    assert "OrgMayUseForEbs" in finding.explanation


def test_slr_in_another_organisation_is_a_decided_denial_with_the_normal_fix():
    policy = key_policy(HERE, org_statement())
    finding, _, s = decide(asg_situation(key(policy=policy)), org_answer(OTHER_ORG))

    assert finding.cause == Cause.SLR_NOT_IN_KEY_POLICY
    (fix,) = finding.fixes
    assert (fix.kind, fix.status, fix.write_blockers) == (FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, [])
    # the fix alone lets the role in, with the same request context
    after = Policy.parse({**policy, "Statement": policy["Statement"] + fix.document}, "resource_policy")
    need = s.needs[0]
    for op in need.operations:
        request = Request(SLR, op, KEY, context=need.context if op == "kms:CreateGrant" else
                          {k: v for k, v in need.context.items() if k != "kms:GrantIsForAWSResource"},
                          unknown_keys=need.unknown_keys)
        assert evaluate(request, PolicySet(resource_policy=after)).decision == "Allowed", op


def test_account_in_no_organisation_sends_no_org_id_so_the_denial_is_decided():
    # aws:PrincipalOrgID "is included in the request context only if the principal is a member of an
    # organization" (reference_policies_condition-keys.html#condition-keys-principalorgid): known absent.
    finding, calls, s = decide(asg_situation(key(policy=key_policy(HERE, org_statement()))), org_answer(NOT_IN_USE))

    assert calls == [("organizations", "DescribeOrganization")]
    assert "aws:PrincipalOrgID" not in s.needs[0].unknown_keys and "aws:PrincipalOrgID" not in s.needs[0].context
    assert finding.cause == Cause.SLR_NOT_IN_KEY_POLICY and len(finding.fixes) == 1


def test_slr_on_an_org_shared_foreign_key_gets_the_grant_and_no_statement_for_this_account():
    # The owner's policy is readable here (a role in the owner's account); the organisation share cannot
    # let a service-linked role in across accounts: its permissions policy is AWS's, so only a grant does.
    foreign = key(FOREIGN_KEY, key_policy(OWNER, org_statement()))
    finding, _, _ = decide(asg_situation(foreign), org_answer(ORG_DENIED))

    assert finding.cause == Cause.SLR_GRANT_MISSING
    kinds = {(f.kind, f.target_account) for f in finding.fixes}
    assert (FixKind.GRANT, HERE) in kinds
    assert all(f.target_account == OWNER for f in finding.fixes if f.kind == FixKind.KEY_POLICY_STATEMENT)


# ---- the organisation-shared key: a user -------------------------------------------------------------------


@pytest.mark.parametrize("foreign", [False, True], ids=["same-account", "cross-account"])
def test_user_denied_on_an_org_shared_key_gets_no_key_policy_proposal(foreign):
    k = key(FOREIGN_KEY, key_policy(OWNER, org_statement())) if foreign else key(policy=key_policy(HERE, org_statement()))
    # Across accounts the user's own identity policy must allow too: give it one, so that only the
    # organisation condition is left to decide.
    p = principal(ALICE, (identity_allowing_kms(k.arn),) if foreign else ())
    finding, calls, _ = decide(user_situation(ALICE, k, p), org_answer(ORG_DENIED))

    assert calls == [("organizations", "DescribeOrganization")]
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == []
    assert "aws:PrincipalOrgID" in finding.explanation


def test_user_of_the_organisation_is_allowed_and_of_another_gets_the_normal_fix():
    k = key(policy=key_policy(HERE, org_statement()))
    allowed, _, _ = decide(user_situation(ALICE, k), org_answer(ORG))
    denied, _, _ = decide(user_situation(ALICE, k), org_answer(OTHER_ORG))

    assert allowed.cause == Cause.NO_MISSING_PERMISSION and allowed.fixes == []
    # root delegation: the identity policy is the nearest fix, the key policy is not touched
    assert denied.cause == Cause.IDENTITY_POLICY_MISSING
    assert [f.kind for f in denied.fixes] == [FixKind.IDENTITY_POLICY]


def test_another_accounts_principal_has_an_unknown_org_and_nothing_is_read():
    outsider = f"arn:aws:iam::{OWNER}:user/bob"
    k = key(policy=key_policy(HERE, org_statement()))
    facts = PrincipalFacts(outsider, "user", OWNER, unreadable=("another account",))
    finding, calls, s = decide(user_situation(outsider, k, facts))

    assert calls == []
    assert "aws:PrincipalOrgID" in s.needs[0].unknown_keys
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == []


# ---- principal tags ------------------------------------------------------------------------------------------

TAG_STATEMENT = org_statement({"StringEquals": {"aws:PrincipalTag/team": "web"}})


def tags(**pairs: str) -> dict:
    return {"Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}


def test_user_tags_are_read_and_decide():
    k = key(policy=key_policy(HERE, TAG_STATEMENT))
    web, calls, s = decide(user_situation(ALICE, k), {("iam", "ListUserTags"): tags(team="web")})
    db, _, _ = decide(user_situation(ALICE, k), {("iam", "ListUserTags"): tags(team="db")})
    untagged, _, _ = decide(user_situation(ALICE, k), {("iam", "ListUserTags"): tags()})

    assert calls == [("iam", "ListUserTags")]
    assert s.needs[0].context["aws:PrincipalTag/team"] == "web"
    assert web.cause == Cause.NO_MISSING_PERMISSION
    assert db.cause == untagged.cause == Cause.IDENTITY_POLICY_MISSING  # decided: the tag is known


def test_unreadable_user_tags_leave_the_decision_undetermined():
    k = key(policy=key_policy(HERE, TAG_STATEMENT))
    denied = AwsError("iam", "ListUserTags", "AccessDenied", "no")
    finding, calls, s = decide(user_situation(ALICE, k), {("iam", "ListUserTags"): denied})

    assert calls == [("iam", "ListUserTags")]
    assert "aws:PrincipalTag/" in s.needs[0].unknown_keys
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == [] and "aws:PrincipalTag/team" in finding.explanation


def test_a_role_sessions_tags_are_unknown_without_any_call():
    # Session tags add to and override the role's tags (id_session-tags.html); the event has none of them.
    k = key(policy=key_policy(HERE, TAG_STATEMENT))
    finding, calls, s = decide(user_situation(OPERATOR, k))

    assert calls == [] and "aws:PrincipalTag/" in s.needs[0].unknown_keys
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == []


def test_service_linked_role_tags_are_a_reading_never_written_on():
    k = key(policy=key_policy(HERE, TAG_STATEMENT))
    finding, calls, s = decide(asg_situation(k), {("iam", "ListRoleTags"): tags(team="db")})

    assert calls == [("iam", "ListRoleTags")] and s.needs[0].readings == (READING_SLR_TAGS,)
    assert finding.cause == Cause.SLR_NOT_IN_KEY_POLICY
    (fix,) = finding.fixes
    assert any(READING_SLR_TAGS in blocker for blocker in fix.write_blockers)


# ---- only what a policy in force mentions is read ------------------------------------------------------------


def test_nothing_is_read_when_no_policy_mentions_what_could_be_read():
    finding, calls, s = decide(asg_situation(key(policy=key_policy(HERE))))

    assert calls == []
    need = s.needs[0]
    for name in ("aws:PrincipalOrgID", "aws:PrincipalTag/", "aws:ResourceTag/", *ALWAYS_UNKNOWN):
        assert name in need.unknown_keys, name
    # the keys the model derives itself are never declared unknown
    assert not {"aws:PrincipalArn", "aws:PrincipalAccount", "kms:CallerAccount"} & set(need.unknown_keys)
    assert finding.cause == Cause.SLR_NOT_IN_KEY_POLICY  # the seed A1 outcome is unchanged


def test_key_tags_read_in_its_own_account_decide_resource_tag_conditions():
    statement = org_statement({"StringEquals": {"aws:ResourceTag/shared": "org"}})
    tagged = key(policy=key_policy(HERE, statement), tags={"shared": "org"})
    foreign = key(FOREIGN_KEY, key_policy(OWNER, statement), tags={})

    ok, calls, s = decide(asg_situation(tagged))
    assert calls == [] and s.needs[0].context["aws:ResourceTag/shared"] == "org"
    assert ok.cause == Cause.NO_MISSING_PERMISSION

    _, _, s = decide(asg_situation(foreign))
    assert "aws:ResourceTag/" in s.needs[0].unknown_keys  # another account's tags cannot be listed


@settings(max_examples=60, deadline=None)
@given(org=st.sampled_from([ORG, OTHER_ORG, ORG_DENIED, NOT_IN_USE]),
       team=st.one_of(st.none(), st.sampled_from(["web", "db"])),
       negate=st.booleans())
def test_nothing_is_ever_fixed_on_an_unknown(org, team, negate):
    """Property: whatever the organisation read gives and however the statement conditions, a fix is
    only offered on a decided denial, and an undetermined finding offers nothing."""
    op = "StringNotEquals" if negate else "StringEquals"
    statement = org_statement({op: {"aws:PrincipalOrgID": ORG, **({"aws:PrincipalTag/team": team} if team else {})}})
    answers = {**org_answer(org), ("iam", "ListUserTags"): tags(team="web")}
    finding, calls, s = decide(user_situation(ALICE, key(policy=key_policy(HERE, statement))), answers)

    unknown = set(s.needs[0].unknown_keys)
    org_known = not isinstance(org, AwsError) or org is NOT_IN_USE
    assert ("aws:PrincipalOrgID" in unknown) is (not org_known)
    assert len(calls) == len(set(calls)) <= 2
    if finding.cause == Cause.UNDETERMINED:
        assert finding.fixes == [] and not org_known
    else:
        assert finding.cause in (Cause.NO_MISSING_PERMISSION, Cause.IDENTITY_POLICY_MISSING)


# ---- issue #10, 6: the service-linked role denied on a foreign key keyfix cannot read ------------------------


def unread_foreign(error: str = "NotFoundException", arn: str = FOREIGN_KEY) -> KeyFacts:
    reason = f"kms:DescribeKey failed: {error}"
    return KeyFacts(arn, OWNER, REGION, exists=error != "NotFoundException", unreadable=(reason,))


def slr_denial(k: KeyFacts, error_code: str = "AccessDenied") -> Situation:
    s = user_situation(SLR, k, principal(SLR), error_code)
    s.incident = replace(s.incident, caller=Caller("AssumedRole", SLR, HERE, invoked_by="autoscaling.amazonaws.com"))
    s.needs = [AccessNeed(SLR, k.arn, ("kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext",
                                       "kms:ReEncryptFrom", "kms:ReEncryptTo"), dict(USER_CONTEXT))]
    return s


@pytest.mark.parametrize("error", ["NotFoundException", "AccessDeniedException"])
def test_unreadable_foreign_key_named_by_cloudtrail_is_case_a2(error):
    finding, _, _ = decide(slr_denial(unread_foreign(error)))

    assert finding.cause == Cause.SLR_GRANT_MISSING and finding.key_arn == FOREIGN_KEY
    by_kind = {f.kind: f for f in finding.fixes}
    grant = by_kind[FixKind.GRANT]
    assert (grant.target_account, grant.document["KeyId"], grant.document["GranteePrincipal"]) == (HERE, FOREIGN_KEY, SLR)
    assert by_kind[FixKind.KEY_POLICY_STATEMENT].target_account == OWNER
    assert "could not read the key itself" in finding.explanation and error in finding.explanation


def test_a_not_found_error_in_the_record_itself_stays_key_not_found():
    finding, _, _ = decide(slr_denial(unread_foreign(), error_code="NotFoundException"))
    assert finding.cause == Cause.KEY_NOT_FOUND and finding.fixes == []


def test_a_user_on_an_unreadable_foreign_key_stays_key_not_found():
    finding, _, _ = decide(user_situation(ALICE, unread_foreign()))
    assert finding.cause == Cause.KEY_NOT_FOUND and finding.fixes == []


def test_an_alias_is_no_key_arn_for_a_grant():
    alias = f"arn:aws:kms:{REGION}:{OWNER}:alias/shared-ebs"
    finding, _, _ = decide(slr_denial(unread_foreign("AccessDeniedException", arn=alias)))
    assert finding.cause == Cause.UNDETERMINED and finding.fixes == [] and "key ARN" in finding.explanation


def test_the_asg_failure_on_an_unreadable_foreign_key_is_case_a2():
    finding, _, _ = decide(asg_situation(unread_foreign("AccessDeniedException")))
    assert finding.cause == Cause.SLR_GRANT_MISSING
    assert "launch configuration or template" in finding.explanation
