"""Unknown is not denied, end to end on moto through the Lambda handler (issue #10, 1 and 6).

- An Auto Scaling group whose key is shared with the organisation (`Principal: "*"` limited
  by aws:PrincipalOrgID, the usual way organisations share keys,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid):
  keyfix reads the organisation (DescribeOrganization) because the key policy conditions on it,
  and never writes a statement the share already covers, nor one it cannot show is needed.
- The service-linked role denied, in CloudTrail, on another account's key keyfix cannot
  DescribeKey: AWS's own record names the key; the grant is created from this account.
Every run is checked against the report schema and counted (every AWS call keyfix's
clients make, and which are writes).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import load_event, run_lambda
from tests.support import faults
from tests.support.accounts import ASG_ACCOUNT, KEY_ACCOUNT, build_a1, build_a2
from tests.support.gateway_hooks import WriteCounter, gateway_session, no_retry_sleep

A1_EVENT = "asg-launch-cancelled-a1.json"
OPT_IN = [{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}]
DESCRIBE_ORG = ("organizations", "DescribeOrganization")


@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch):
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def hooks(world, monkeypatch):
    no_retry_sleep(monkeypatch)
    session = gateway_session(monkeypatch)
    return session, WriteCounter(session)


def key_and_iam_writes(counter: WriteCounter) -> list[tuple[str, str]]:
    """The writes that could change who may use a key (bookkeeping in the table aside)."""
    return [call for call in counter.writes if call[0] in ("kms", "iam")]


def only(report: dict) -> dict:
    assert len(report["findings"]) == 1, report["findings"]
    return report["findings"][0]


def share_with(org_id: str) -> dict:
    return {"Sid": "OrgMayUseForEbs", "Effect": "Allow", "Principal": "*",
            "Action": ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*", "kms:CreateGrant",
                       "kms:DescribeKey"],
            "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}}


def org_shared_a1(world, monkeypatch, *, organisation: bool, share_org: str | None = None):
    """Seed A1 in apply mode, key opted in, its policy sharing the key with an organisation
    (this account's own, or `share_org`)."""
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    org_id = None
    if organisation:
        org_id = world.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
    kms = world.client("kms")
    kms.tag_resource(KeyId=case.key_arn, Tags=OPT_IN)
    policy = world.key_policy(case.key_arn)
    policy["Statement"].append(share_with(share_org or org_id or "o-a1b2c3d4e5"))
    kms.put_key_policy(KeyId=case.key_arn, PolicyName="default", Policy=json.dumps(policy))
    return case, policy


def test_org_shared_key_of_this_account_needs_nothing_when_the_org_matches(world, hooks, monkeypatch):
    _, counter = hooks
    case, policy = org_shared_a1(world, monkeypatch, organisation=True)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "no-missing-permission" and finding["fixes"] == []
    assert "OrgMayUseForEbs" in finding["explanation"]
    assert world.key_policy(case.key_arn) == policy
    assert counter.count(*DESCRIBE_ORG) == 1 and key_and_iam_writes(counter) == []


def test_org_shared_key_with_the_org_unreadable_is_undetermined_and_writes_nothing(world, hooks, monkeypatch):
    session, counter = hooks
    case, policy = org_shared_a1(world, monkeypatch, organisation=True)
    denied = faults.deny(session, "Organizations", "DescribeOrganization")

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert denied == ["DescribeOrganization"]
    assert finding["cause"] == "undetermined" and finding["fixes"] == []
    assert "aws:PrincipalOrgID" in finding["explanation"]
    assert world.key_policy(case.key_arn) == policy and key_and_iam_writes(counter) == []


def test_org_shared_key_of_another_organisation_gets_the_normal_fix(world, hooks, monkeypatch):
    _, counter = hooks
    case, policy = org_shared_a1(world, monkeypatch, organisation=True, share_org="o-zzzzzzzzzz")

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "slr-not-in-key-policy"
    (fix,) = finding["fixes"]
    assert fix["status"] == "applied"
    after = world.key_policy(case.key_arn)
    assert [s for s in after["Statement"] if s not in policy["Statement"]] == fix["document"]
    assert counter.count(*DESCRIBE_ORG) == 1 and key_and_iam_writes(counter) == [("kms", "PutKeyPolicy")]


def test_account_in_no_organisation_is_decided_and_fixed(world, hooks, monkeypatch):
    # moto answers AWSOrganizationsNotInUseException, as AWS does for an account in no organisation:
    # then no request carries aws:PrincipalOrgID, so the share cannot apply.
    _, counter = hooks
    case, _ = org_shared_a1(world, monkeypatch, organisation=False)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "slr-not-in-key-policy" and finding["fixes"][0]["status"] == "applied"
    assert counter.count(*DESCRIBE_ORG) == 1


def test_seed_a1_reads_no_organisation(world, hooks, monkeypatch):
    """No policy in force mentions the organisation or any tag: nothing more is read."""
    _, counter = hooks
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    build_a1(world.env)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "slr-not-in-key-policy"
    assert not [c for c in counter.calls if c[0] == "organizations" or c[1] in ("ListUserTags", "ListRoleTags")]


# ---- issue #10, 6 ---------------------------------------------------------------------------------


def slr_denied_on(key_arn: str) -> dict:
    """The SLR's CloudTrail AccessDenied (events/cloudtrail-kms-accessdenied-slr.json) on `key_arn`."""
    event = load_event("cloudtrail-kms-accessdenied-slr.json",
                       {"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab": key_arn})
    event["detail"]["resources"][0]["accountId"] = key_arn.split(":")[4]
    return event


def test_unreadable_foreign_key_in_the_slrs_denial_gets_the_grant_from_here(world, hooks, monkeypatch):
    session, counter = hooks
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a2(world.env)
    owner_policy = world.key_policy(case.key_arn, KEY_ACCOUNT)
    denied = faults.deny(session, "KMS", "DescribeKey")

    finding = only(run_lambda(slr_denied_on(case.key_arn)))

    assert denied == ["DescribeKey"]
    assert finding["cause"] == "slr-grant-missing" and finding["key_arn"] == case.key_arn
    assert "could not read the key itself" in finding["explanation"]
    assert "AccessDeniedException" in finding["explanation"]
    by_kind = {f["kind"]: f for f in finding["fixes"]}
    assert (by_kind["grant"]["status"], by_kind["grant"]["target_account"]) == ("applied", ASG_ACCOUNT)
    assert by_kind["key-policy-statement"]["target_account"] == KEY_ACCOUNT
    assert by_kind["key-policy-statement"]["status"] != "applied"
    grants = world.client("kms", KEY_ACCOUNT).list_grants(KeyId=case.key_arn)["Grants"]
    assert [g["GranteePrincipal"] for g in grants] == [case.slr_arn]
    assert set(grants[0]["Operations"]) == set(by_kind["grant"]["document"]["Operations"])
    assert world.key_policy(case.key_arn, KEY_ACCOUNT) == owner_policy, "keyfix wrote in another account"
    assert key_and_iam_writes(counter) == [("kms", "CreateGrant")]


def test_unknown_foreign_key_in_the_slrs_denial_is_proposed_in_propose_mode(world, hooks, monkeypatch):
    _, counter = hooks
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    build_a2(world.env)  # the service-linked role exists; this key does not exist anywhere keyfix can see
    missing = f"arn:aws:kms:us-east-1:{KEY_ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"

    finding = only(run_lambda(slr_denied_on(missing)))

    assert finding["cause"] == "slr-grant-missing" and "NotFoundException" in finding["explanation"]
    assert {f["kind"]: f["status"] for f in finding["fixes"]} == {
        "grant": "proposed", "key-policy-statement": "proposed", "identity-policy": "proposed"}
    grant = next(f for f in finding["fixes"] if f["kind"] == "grant")
    assert grant["document"]["KeyId"] == missing
    assert key_and_iam_writes(counter) == []
