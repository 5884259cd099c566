"""Each seed case end to end: broken account -> event -> handler / `keyfix handle` -> report,
AWS state after, and the SNS message on-call receives."""

from __future__ import annotations

import json

import pytest

from keyfix.policy import Grant, Policy, PolicySet, Request, evaluate
from tests.integration.conftest import load_event
from tests.support.accounts import ASG_ACCOUNT, KEY_ACCOUNT, build_a1, build_a2, build_b, build_c

A1_EVENT = "asg-launch-cancelled-a1.json"
LAUNCH_CONTEXT = {"kms:GrantIsForAWSResource": "true", "kms:ViaService": "ec2.us-east-1.amazonaws.com"}


def opt_in(world, key_arn: str, account: str = ASG_ACCOUNT) -> None:
    world.client("kms", account).tag_resource(
        KeyId=key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])


def only_finding(report: dict) -> dict:
    assert len(report["findings"]) == 1, report["findings"]
    return report["findings"][0]


def slr_may_launch(world, case) -> bool:
    """The model's verdict on the SLR's CreateGrant, from the key policy now in force."""
    policy = Policy.parse(world.key_policy(case.key_arn, case.key_arn.split(":")[4]), "resource_policy")
    grants = world.client("kms", ASG_ACCOUNT).list_grants(KeyId=case.key_arn)["Grants"]
    decision = evaluate(
        Request(case.slr_arn, "kms:CreateGrant", case.key_arn, context=LAUNCH_CONTEXT),
        PolicySet(resource_policy=policy, grants=tuple(Grant.from_aws(g) for g in grants)),
    )
    return decision.decision == "Allowed"


# ---- A1: same-account key, SLR not in the key policy ------------------------------------

def test_a1_apply_adds_the_two_slr_statements_and_tells_on_call(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    opt_in(world, case.key_arn)
    before = world.key_policy(case.key_arn)
    assert not slr_may_launch(world, case)

    report = run(load_event(A1_EVENT))

    finding = only_finding(report)
    assert finding["cause"] == "slr-not-in-key-policy"
    assert finding["principal"] == case.slr_arn and finding["key_arn"] == case.key_arn
    (fix,) = finding["fixes"]
    assert (fix["kind"], fix["status"], fix["target_account"]) == ("key-policy-statement", "applied", ASG_ACCOUNT)
    after = world.key_policy(case.key_arn)
    assert all(s in after["Statement"] for s in before["Statement"]), "a statement was lost"
    added = [s for s in after["Statement"] if s not in before["Statement"]]
    assert added == fix["document"] and all(s["Sid"].startswith("keyfix-") for s in added)
    assert {json.dumps(s["Principal"]) for s in added} == {json.dumps({"AWS": case.slr_arn})}
    # EBS's permission list, DescribeKey included, and CreateGrant for AWS resources
    # (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html)
    actions = sorted(a for s in added for a in s["Action"])
    assert actions == ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                       "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    assert slr_may_launch(world, case)

    (message,) = world.notifications()
    assert message["Subject"].startswith("[keyfix] applied key-policy-statement for AWSServiceRoleForAutoScaling")
    attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
    assert json.loads(attributes["cause"]) == ["slr-not-in-key-policy"]
    assert json.loads(attributes["status"]) == ["applied"]
    assert attributes["account"] == ASG_ACCOUNT and json.loads(attributes["key"]) == [case.key_arn]
    assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == report


def test_a1_propose_writes_nothing_and_hands_over_the_cli(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    case = build_a1(world.env)
    opt_in(world, case.key_arn)
    before = world.key_policy(case.key_arn)

    (fix,) = only_finding(run(load_event(A1_EVENT)))["fixes"]

    assert fix["status"] == "proposed" and world.key_policy(case.key_arn) == before
    assert any("put-key-policy" in c for c in fix["cli"])
    assert len(world.notifications()) == 1


def test_a1_key_not_opted_in_is_refused_with_reason(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    before = world.key_policy(case.key_arn)

    (fix,) = only_finding(run(load_event(A1_EVENT)))["fixes"]

    assert fix["status"] == "refused" and "keyfix:auto-remediate" in fix["reason"]
    assert fix["document"] and fix["cli"], "a refused fix still tells a person what to do"
    assert world.key_policy(case.key_arn) == before


def test_a1_second_delivery_of_a_fixed_failure_changes_nothing(world, tmp_path, monkeypatch):
    from tests.integration.conftest import run_cli

    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.delenv("KEYFIX_TABLE_NAME")  # no idempotency: the second run must see the fix in place
    case = build_a1(world.env)
    opt_in(world, case.key_arn)
    run_cli(load_event(A1_EVENT), tmp_path)
    fixed = world.key_policy(case.key_arn)

    again = load_event(A1_EVENT, {"8e2b6f13-": "8e2b6f14-"})
    finding = only_finding(run_cli(again, tmp_path))

    assert finding["cause"] == "no-missing-permission" and finding["fixes"] == []
    assert world.key_policy(case.key_arn) == fixed


# ---- A2: key in another account, SLR has no grant ----------------------------------------

def test_a2_apply_creates_the_grant_here_and_never_writes_in_the_owner_account(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a2(world.env)
    owner_policy = world.key_policy(case.key_arn, KEY_ACCOUNT)

    finding = only_finding(run(load_event("asg-launch-unsuccessful-a2.json")))

    assert finding["cause"] == "slr-grant-missing" and finding["key_arn"] == case.key_arn
    by_kind = {f["kind"]: f for f in finding["fixes"]}
    grant = by_kind["grant"]
    assert (grant["status"], grant["target_account"]) == ("applied", ASG_ACCOUNT)
    assert grant["document"]["Operations"] == ["Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"]
    owner = by_kind["key-policy-statement"]
    # The grant could be created, so the owner's side was evidently in place already.
    assert (owner["status"], owner["target_account"]) == ("already-present", KEY_ACCOUNT)
    assert by_kind["identity-policy"]["status"] == "already-present"
    assert world.key_policy(case.key_arn, KEY_ACCOUNT) == owner_policy, "keyfix wrote in another account"
    grants = world.client("kms", KEY_ACCOUNT).list_grants(KeyId=case.key_arn)["Grants"]
    assert [g["GranteePrincipal"] for g in grants] == [case.slr_arn]
    assert set(grants[0]["Operations"]) == set(grant["document"]["Operations"])


def test_a2_propose_addresses_the_owner_side_to_the_key_account(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    case = build_a2(world.env)

    finding = only_finding(run(load_event("asg-launch-unsuccessful-a2.json")))

    by_kind = {f["kind"]: f for f in finding["fixes"]}
    assert {k: f["status"] for k, f in by_kind.items()} == {
        "grant": "proposed", "key-policy-statement": "proposed", "identity-policy": "proposed"}
    owner = by_kind["key-policy-statement"]
    assert owner["target_account"] == KEY_ACCOUNT
    assert all(s["Principal"] == {"AWS": f"arn:aws:iam::{ASG_ACCOUNT}:root"} for s in owner["document"])
    assert "kms:*" not in json.dumps(owner["document"])
    assert world.client("kms", KEY_ACCOUNT).list_grants(KeyId=case.key_arn)["Grants"] == []


# ---- B: a user not in the key policy -------------------------------------------------------

def b_event(case) -> dict:
    return load_event("cloudtrail-kms-accessdenied-b-user-createvolume.json", {
        "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321": case.key_arn})


def test_b_user_gets_a_proposal_not_a_write_unless_allow_listed(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_b(world.env)
    opt_in(world, case.key_arn)
    before = world.key_policy(case.key_arn)

    finding = only_finding(run(b_event(case)))

    assert finding["cause"] == "principal-not-in-key-policy" and finding["principal"] == case.user_arn
    (fix,) = finding["fixes"]
    assert fix["status"] == "refused" and "KEYFIX_PRINCIPAL_ALLOWLIST" in fix["reason"]
    assert world.key_policy(case.key_arn) == before


def test_b_allow_listed_user_is_added_as_key_user(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", "arn:aws:iam::111122223333:user/dev-*")
    case = build_b(world.env)
    opt_in(world, case.key_arn)

    finding = only_finding(run(b_event(case)))

    (fix,) = finding["fixes"]
    assert fix["status"] == "applied"
    added = [s for s in world.key_policy(case.key_arn)["Statement"] if s.get("Sid", "").startswith("keyfix-")]
    assert added == fix["document"]
    assert all(s["Principal"] == {"AWS": case.user_arn} for s in added)
    assert "kms:*" not in json.dumps(added)
    # seed 002: the use actions EBS needs, and CreateGrant for AWS resources only -- not just
    # the one action CloudTrail showed denied, and nothing that was not denied (ListGrants,
    # RevokeGrant: EBS does not call them)
    use, grant = added
    assert set(use["Action"]) == {"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                                  "kms:ReEncryptFrom", "kms:ReEncryptTo"}
    assert grant["Action"] == ["kms:CreateGrant"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


# ---- C: a role without kms:CreateGrant starts an encrypted instance --------------------------

def c_event(case) -> dict:
    return load_event("ec2-instance-stopped.json", {"i-0c3d4e5f6a7b8c9d0": case.instance_id})


def test_c_identity_policy_for_allow_listed_role(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", "arn:aws:iam::111122223333:role/ec2-operator")
    case = build_c(world.env)

    finding = only_finding(run(c_event(case)))

    assert finding["cause"] == "identity-policy-missing" and finding["principal"] == case.role_arn
    (fix,) = finding["fixes"]
    assert (fix["kind"], fix["status"], fix["target"]) == ("identity-policy", "applied", case.role_arn)
    stored = world.client("iam").get_role_policy(RoleName="ec2-operator", PolicyName=fix["document"]["PolicyName"])
    document = stored["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == fix["document"]["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Action"] == ["kms:CreateGrant"] and statement["Resource"] == case.key_arn
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_c_role_not_allow_listed_is_refused(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_c(world.env)

    (fix,) = only_finding(run(c_event(case)))["fixes"]

    assert fix["status"] == "refused"
    assert world.client("iam").list_role_policies(RoleName="ec2-operator")["PolicyNames"] == []


# ---- propose-only outcomes -------------------------------------------------------------------

def test_key_pending_deletion_is_only_ever_proposed(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_b(world.env, key_state="PendingDeletion")
    event = load_event("ebs-volume-failed-pending-deletion.json", {
        "arn:aws:kms:us-east-1:111122223333:key/2d3e4f5a-6b7c-8d9e-0f1a-2b3c4d5e6f7a": case.key_arn})

    finding = only_finding(run(event))

    assert finding["cause"] == "key-pending-deletion"
    (fix,) = finding["fixes"]
    assert (fix["kind"], fix["status"]) == ("key-state", "proposed")
    assert [c.split()[2] for c in fix["cli"]] == ["cancel-key-deletion", "enable-key"]
    state = world.client("kms").describe_key(KeyId=case.key_arn)["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"


def test_explicit_deny_names_the_statement_and_writes_nothing(world, run, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    opt_in(world, case.key_arn)
    policy = world.key_policy(case.key_arn)
    policy["Statement"].append({"Sid": "NoAutoScaling", "Effect": "Deny", "Principal": {"AWS": case.slr_arn},
                                "Action": "kms:CreateGrant", "Resource": "*"})
    world.client("kms").put_key_policy(KeyId=case.key_arn, PolicyName="default", Policy=json.dumps(policy))

    finding = only_finding(run(load_event(A1_EVENT)))

    assert finding["cause"] == "explicit-deny" and "NoAutoScaling" in finding["explanation"]
    assert all(f["status"] == "proposed" for f in finding["fixes"])
    assert world.key_policy(case.key_arn) == policy


def test_not_kms_launch_failure_is_quiet(world, run):
    build_a1(world.env)
    finding = only_finding(run(load_event("asg-launch-unsuccessful-not-kms.json")))
    assert finding["cause"] == "not-kms" and finding["fixes"] == []


def test_unrecognised_event_reports_and_does_nothing(world, run):
    report = run(load_event("unrecognised.json"))
    assert report["event"]["trigger"] == "unrecognised" and report["findings"] == []
    assert world.notifications() == []
