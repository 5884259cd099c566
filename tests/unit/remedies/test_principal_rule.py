"""The principal rule as properties: whatever the resolver reports and the allow-list says,
`check_principal` approves only a user or role of this account and partition that keyfix read
from IAM, and `check_fix` passes only a change naming exactly that principal."""

from __future__ import annotations

import fnmatch
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.arns import slr_service
from keyfix.config import Settings
from keyfix.remedies import documents as docs
from keyfix.remedies.safety import Refusal, check_fix, check_principal
from keyfix.report import Fix, FixKind, FixStatus
from keyfix.resolve.facts import KeyFacts, PrincipalFacts

ACCOUNT, OTHER = "111122223333", "999988887777"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OPTED_IN = KeyFacts(KEY, ACCOUNT, "us-east-1", state="Enabled", manager="CUSTOMER",
                    tags={"keyfix:auto-remediate": "true"})
SLR_TAIL = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

resources = st.sampled_from([
    "user/alice", "user/automation/alice", "user/automation/deep/alice", "role/ops", "role/team/ops",
    f"role/{SLR_TAIL}", f"role/{SLR_TAIL}/extra", f"role/x/{SLR_TAIL}", f"role/{SLR_TAIL}_custom",
    "role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot", "role/aws-service-role/spot.amazonaws.com/x",
    "role/AWSServiceRoleForAutoScaling", "root", "user/*", "role/*", "group/admins", "policy/p",
])
arns = st.one_of(
    st.builds(lambda partition, service, account, resource: f"arn:{partition}:{service}::{account}:{resource}",
              st.sampled_from(["aws", "aws-cn", "aws-us-gov"]), st.sampled_from(["iam", "iam", "iam", "sts"]),
              st.sampled_from([ACCOUNT, ACCOUNT, OTHER, "*"]), resources),
    st.sampled_from(["*", "ec2.amazonaws.com", f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/s"]),
)
facts = st.builds(
    lambda arn, kind, exists, name_mode: PrincipalFacts(
        arn=arn, kind=kind, account=ACCOUNT, exists=exists,
        iam_name={"last": arn.rsplit("/", 1)[-1], "other": "alice", "none": None}[name_mode]),
    arns, st.sampled_from(["user", "role", "service-linked-role", "root", "service", "unknown"]),
    st.sampled_from([True, True, False, None]), st.sampled_from(["last", "last", "other", "none"]))
# Consistent facts as the resolver reports a real principal, so that approvals are common too.
consistent = st.builds(
    lambda resource: PrincipalFacts(
        arn=f"arn:aws:iam::{ACCOUNT}:{resource}", account=ACCOUNT, exists=True, iam_name=resource.rsplit("/", 1)[-1],
        kind="user" if resource.startswith("user/") else
        "service-linked-role" if "aws-service-role" in resource else "role"),
    st.sampled_from(["user/alice", "user/automation/alice", "role/ops", "role/team/ops", f"role/{SLR_TAIL}",
                     f"role/{SLR_TAIL}/extra", f"role/{SLR_TAIL}_custom"]))
allowlists = st.lists(st.sampled_from([
    f"arn:aws:iam::{ACCOUNT}:user/automation/*", f"arn:aws:iam::{ACCOUNT}:role/*", f"arn:aws:iam::{OTHER}:*",
    f"arn:aws:iam::{ACCOUNT}:user/alice", "*", f"arn:aws-cn:iam::{ACCOUNT}:role/*"]), max_size=3)

SEEN: Counter[str] = Counter()


@settings(max_examples=600, deadline=None)
@given(st.one_of(consistent, facts), allowlists)
def test_property_only_a_principal_read_from_iam_of_this_account_is_approved(principal, allowlist):
    settings_ = Settings(principal_allowlist=tuple(allowlist))
    try:
        checked = check_principal(principal, ACCOUNT, "aws", settings_)
    except Refusal:
        SEEN["refused"] += 1
        return
    SEEN["approved"] += 1
    parts = principal.arn.split(":", 5)
    assert checked.arn == principal.arn and principal.exists is True
    assert parts[1] == "aws" and parts[2] == "iam" and parts[3] == "" and parts[4] == ACCOUNT
    assert parts[5].split("/")[0] in ("user", "role") and "*" not in principal.arn
    assert checked.name == principal.iam_name == principal.arn.rsplit("/", 1)[-1]
    by_construction = slr_service(principal.arn, account=ACCOUNT, partition="aws") is not None \
        and principal.kind == "service-linked-role"
    by_allowlist = any(fnmatch.fnmatchcase(principal.arn, p) for p in allowlist)
    assert by_construction or by_allowlist


def test_property_reached_both_outcomes():
    test_property_only_a_principal_read_from_iam_of_this_account_is_approved()
    assert SEEN["approved"] >= 20 and SEEN["refused"] >= 100, SEEN


def _facts(arn: str, kind: str) -> PrincipalFacts:
    return PrincipalFacts(arn=arn, kind=kind, account=ACCOUNT, exists=True, iam_name=arn.rsplit("/", 1)[-1])


OPS = f"arn:aws:iam::{ACCOUNT}:role/team/ops"
NAMED = [f"arn:aws:iam::{ACCOUNT}:role/ops", f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{OTHER}:role/team/ops",
         f"arn:aws-cn:iam::{ACCOUNT}:role/team/ops", f"arn:aws:iam::{ACCOUNT}:role/team/ops2", OPS]


@pytest.mark.parametrize("named", NAMED)
@pytest.mark.parametrize("kind", [FixKind.KEY_POLICY_STATEMENT, FixKind.IDENTITY_POLICY])
def test_a_fix_naming_anything_but_the_checked_principal_is_refused(named, kind):
    settings_ = Settings(principal_allowlist=(f"arn:aws:iam::{ACCOUNT}:role/team/*",))
    if kind == FixKind.KEY_POLICY_STATEMENT:
        fix = Fix(kind, FixStatus.PROPOSED, ACCOUNT, KEY, docs.key_policy_statements(named, ["kms:Decrypt"], []))
    else:
        fix = Fix(kind, FixStatus.PROPOSED, ACCOUNT, named,
                  {"PolicyName": "keyfix-kms-x", "PolicyDocument": docs.identity_policy(KEY, ["kms:Decrypt"], [])})
    run = lambda: check_fix(fix, principal=_facts(OPS, "role"), key=OPTED_IN, account=ACCOUNT,  # noqa: E731
                            partition="aws", settings=settings_)
    if named == OPS:
        assert run().arn == OPS
    else:
        with pytest.raises(Refusal, match="exactly the checked principal"):
            run()


def test_a_grant_to_anything_but_the_checked_service_linked_role_is_refused():
    slr = f"arn:aws:iam::{ACCOUNT}:role/{SLR_TAIL}"
    for grantee in (OPS, f"arn:aws:iam::{OTHER}:role/{SLR_TAIL}", f"arn:aws:iam::{ACCOUNT}:root"):
        fix = Fix(FixKind.GRANT, FixStatus.PROPOSED, ACCOUNT, KEY, docs.grant_parameters(KEY, grantee, ["Decrypt"]))
        with pytest.raises(Refusal):
            check_fix(fix, principal=_facts(slr, "service-linked-role"), key=OPTED_IN, account=ACCOUNT,
                      partition="aws", settings=Settings())


def test_a_fix_for_another_key_than_the_one_checked_is_refused():
    other = KEY.replace("1234abcd", "9999abcd")
    slr = f"arn:aws:iam::{ACCOUNT}:role/{SLR_TAIL}"
    policy_fix = Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, ACCOUNT, other,
                     docs.key_policy_statements(slr, ["kms:Decrypt"], []))
    grant_fix = Fix(FixKind.GRANT, FixStatus.PROPOSED, ACCOUNT, other, docs.grant_parameters(other, slr, ["Decrypt"]))
    for fix in (policy_fix, grant_fix):
        with pytest.raises(Refusal, match="not the key"):
            check_fix(fix, principal=_facts(slr, "service-linked-role"), key=OPTED_IN, account=ACCOUNT,
                      partition="aws", settings=Settings())
