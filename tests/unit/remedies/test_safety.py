"""The safety rules refuse every shape of change keyfix must never make."""

import pytest

from keyfix.config import Settings
from keyfix.remedies import documents as docs
from keyfix.remedies.safety import KEY_POLICY_MAX_BYTES, Refusal, check_fix, check_size, check_statement
from keyfix.report import Fix, FixKind, FixStatus
from keyfix.resolve.facts import KeyFacts, PrincipalFacts

ACCOUNT = "111122223333"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OPTED_IN = KeyFacts(KEY, ACCOUNT, "us-east-1", manager="CUSTOMER", tags={"keyfix:auto-remediate": "true"})
NOT_OPTED = KeyFacts(KEY, ACCOUNT, "us-east-1", manager="CUSTOMER")
AWS_MANAGED = KeyFacts(KEY, ACCOUNT, "us-east-1", manager="AWS", tags={"keyfix:auto-remediate": "true"})


def _facts(arn, kind=None, name=None, exists=True):
    """A principal as the resolver reports it after reading IAM."""
    if kind is None:
        kind = "service-linked-role" if "aws-service-role" in arn else ("user" if ":user/" in arn else "role")
    return PrincipalFacts(arn=arn, kind=kind, account=arn.split(":")[4] if arn.startswith("arn:") else None,
                          exists=exists, iam_name=name if name is not None else arn.rsplit("/", 1)[-1])


def _check(fix, principal, key, settings, account=ACCOUNT, partition="aws"):
    facts = principal if isinstance(principal, PrincipalFacts) else _facts(principal)
    return check_fix(fix, principal=facts, key=key, account=account, partition=partition, settings=settings)


def _policy_fix(principal=SLR):
    statements = docs.key_policy_statements(principal, ["kms:Decrypt"], ["kms:CreateGrant"])
    return Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, ACCOUNT, KEY, statements)


def test_slr_of_this_account_on_opted_in_key_passes():
    checked = _check(_policy_fix(), SLR, OPTED_IN, Settings())
    assert (checked.arn, checked.kind, checked.name) == (SLR, "service-linked-role", "AWSServiceRoleForAutoScaling")


def test_allowlisted_key_passes_without_tag():
    settings = Settings(key_allowlist=(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",))
    _check(_policy_fix(), SLR, NOT_OPTED, settings)


@pytest.mark.parametrize("principal", [
    f"arn:aws:iam::{ACCOUNT}:user/mallory",
    f"arn:aws:iam::{ACCOUNT}:role/anything",
    "arn:aws:iam::999988887777:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
    "*",
])
def test_other_principals_are_refused(principal):
    with pytest.raises(Refusal, match="KEYFIX_PRINCIPAL_ALLOWLIST|not a principal of account|not an IAM user"):
        fix = _policy_fix(principal) if principal.startswith("arn:") else _policy_fix()
        _check(fix, principal, OPTED_IN, Settings())


def test_principal_allowlist_admits_exactly_its_pattern():
    settings = Settings(principal_allowlist=(f"arn:aws:iam::{ACCOUNT}:role/ops-*",))
    ok = f"arn:aws:iam::{ACCOUNT}:role/ops-deployer"
    assert _check(_policy_fix(ok), ok, OPTED_IN, settings).approved_by.endswith("'arn:aws:iam::111122223333:role/ops-*'")
    with pytest.raises(Refusal):
        bad = f"arn:aws:iam::{ACCOUNT}:role/dev-ops"
        _check(_policy_fix(bad), bad, OPTED_IN, settings)


def test_key_not_opted_in_is_refused():
    with pytest.raises(Refusal, match="keyfix:auto-remediate"):
        _check(_policy_fix(), SLR, NOT_OPTED, Settings())


def test_aws_managed_key_is_refused_even_when_tagged():
    with pytest.raises(Refusal, match="AWS managed"):
        _check(_policy_fix(), SLR, AWS_MANAGED, Settings())


def test_change_in_another_account_is_refused():
    fix = _policy_fix()
    fix.target_account = "444455556666"
    with pytest.raises(Refusal, match="444455556666"):
        _check(fix, SLR, OPTED_IN, Settings())


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s.update(Sid="AllowAll"), "prefix"),
    (lambda s: s.update(Principal="*"), "specific principal"),
    (lambda s: s.update(Principal={"AWS": "*"}), "specific principal"),
    (lambda s: s.update(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"}), "specific principal"),
    (lambda s: s.update(Principal={"AWS": ACCOUNT}), "specific principal"),
    (lambda s: s.update(Action="kms:*"), "every action"),
    (lambda s: s.update(Action=["kms:Decrypt", "*"]), "every action"),
    (lambda s: s.update(Effect="Deny"), "plain Allow"),
    (lambda s: s.update(NotAction="kms:Decrypt"), "plain Allow"),
    (lambda s: s.pop("Condition"), "GrantIsForAWSResource"),
])
def test_statement_shape_rules(mutate, match):
    statement = docs.grant_statement(SLR, ["kms:CreateGrant"])
    check_statement(dict(statement))  # the shape keyfix builds passes
    mutate(statement)
    with pytest.raises(Refusal, match=match):
        check_statement(statement)


def test_policy_over_32kb_is_refused_not_truncated():
    check_size("x" * KEY_POLICY_MAX_BYTES)
    with pytest.raises(Refusal, match="limit"):
        check_size("x" * (KEY_POLICY_MAX_BYTES + 1))
    with pytest.raises(Refusal):  # the limit is in bytes, not characters
        check_size("é" * (KEY_POLICY_MAX_BYTES // 2 + 1))
