"""The write rule, end to end: keyfix writes only for the exact principal it checked.

Each test is one of the outside review's attacks (issue "Trust", section 1), run through the
Lambda handler in apply mode on moto, judged by the write calls keyfix's clients made and by
the IAM and KMS state afterwards - never by moto refusing a call.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import run_lambda
from tests.integration.test_safety_provocation import (  # noqa: F401 - `fleet` and its fixtures
    OTHER_ACCOUNT,
    SLR_NAME,
    SLR_PATH,
    Fleet,
    _no_default_amis,
    _quiet_reports,
    fleet,
    provoked_event,
    role,
    session,
    user,
)
from tests.support.accounts import ASG_ACCOUNT


def _user_policies(fleet: Fleet, name: str) -> list[str]:
    return fleet.world.client("iam").list_user_policies(UserName=name)["PolicyNames"]


def test_allow_list_is_matched_against_iams_arn_not_the_events(fleet: Fleet, monkeypatch):
    """Allow-list user/automation/*; the event names automation/alice; the real alice lives at
    path /. keyfix used to match the event's ARN and write by name onto the real alice."""
    fleet.world.client("iam").create_user(UserName="alice")
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", f"arn:aws:iam::{ASG_ACCOUNT}:user/automation/*")
    forged = user(f"arn:aws:iam::{ASG_ACCOUNT}:user/automation/alice")
    before = fleet.state()

    report = run_lambda(provoked_event(forged, fleet.b_key, "GenerateDataKeyWithoutPlaintext"))

    assert fleet.writes.writes == []
    assert _user_policies(fleet, "alice") == []
    assert fleet.state() == before
    statuses = [fix["status"] for finding in report["findings"] for fix in finding["fixes"]]
    assert all(status in ("proposed", "refused") for status in statuses), statuses


def test_allow_listed_user_with_a_path_gets_the_write_by_iams_name(fleet: Fleet, monkeypatch):
    """The positive control of the test above: the real automation/bob is written, by IAM's name."""
    iam = fleet.world.client("iam")
    iam.create_user(UserName="bob", Path="/automation/")
    bob = f"arn:aws:iam::{ASG_ACCOUNT}:user/automation/bob"
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", f"arn:aws:iam::{ASG_ACCOUNT}:user/automation/*")
    key = fleet.b_key
    # Let the key policy delegate to IAM for bob's account, so the fix is an identity policy.
    report = run_lambda(provoked_event(user(bob), key, "GenerateDataKeyWithoutPlaintext"))

    (finding,) = report["findings"]
    assert finding["principal"] == bob
    applied = [fix for fix in finding["fixes"] if fix["status"] == "applied"]
    assert len(applied) == 1, finding["fixes"]
    if applied[0]["kind"] == "key-policy-statement":
        added = [s for s in fleet.world.key_policy(key)["Statement"] if s["Sid"].startswith("keyfix-")]
        assert added and {json.dumps(s["Principal"]) for s in added} == {json.dumps({"AWS": bob})}
    else:
        assert iam.list_user_policies(UserName="bob")["PolicyNames"]


def test_role_whose_getrole_is_denied_is_never_written(fleet: Fleet, monkeypatch):
    """keyfix cannot resolve the role from IAM: whatever the allow-list says, no write."""
    from tests.support.faults import deny
    from tests.support.gateway_hooks import WriteCounter, gateway_session

    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", f"arn:aws:iam::{ASG_ACCOUNT}:role/*")
    denied_session = gateway_session(monkeypatch)
    writes = WriteCounter(denied_session)
    refusals = deny(denied_session, "IAM", "GetRole", "AccessDenied")

    report = run_lambda(provoked_event(session(role(ASG_ACCOUNT, "ops-admin")), fleet.b_key,
                                       "GenerateDataKeyWithoutPlaintext"))

    assert refusals, "GetRole was never asked"
    assert writes.writes == []
    reasons = [fix["reason"] or "" for finding in report["findings"] for fix in finding["fixes"]
               if fix["status"] == "refused"]
    assert reasons and all("could not resolve" in r for r in reasons), report["findings"]


def test_foreign_slr_on_our_key_is_a_proposal_naming_it_exactly(fleet: Fleet, monkeypatch):
    """Allow-list exactly one foreign principal (another account's Auto Scaling SLR) and forge
    its CreateGrant denial on one of our opted-in keys: keyfix used to write two statements
    naming that whole account's root. Now: a proposal naming the SLR itself, never written."""
    foreign_slr = role(OTHER_ACCOUNT, f"{SLR_PATH}{SLR_NAME}")
    monkeypatch.setenv("KEYFIX_PRINCIPAL_ALLOWLIST", foreign_slr)
    forged = session(foreign_slr, "AutoScaling", OTHER_ACCOUNT, invokedBy="autoscaling.amazonaws.com")
    before = fleet.state()

    report = run_lambda(provoked_event(forged, fleet.a1_key, "CreateGrant"))

    assert fleet.writes.writes == [] and fleet.state() == before
    (finding,) = report["findings"]
    assert finding["cause"] == "account-not-in-key-policy", finding["explanation"]
    assert {fix["status"] for fix in finding["fixes"]} <= {"proposed", "refused"}, finding["fixes"]
    # Its permissions are fixed by AWS: what it needs is the documented cross-account pattern,
    # addressed to whoever decides (this account for the key policy, its own for the grant).
    grant = next(fix for fix in finding["fixes"] if fix["kind"] == "grant")
    assert grant["target_account"] == OTHER_ACCOUNT and grant["document"]["GranteePrincipal"] == foreign_slr


@pytest.mark.parametrize("identity", [
    {"type": "AWSAccount", "principalId": f"AIDAOUTSIDER:{OTHER_ACCOUNT}", "accountId": OTHER_ACCOUNT},
    {"type": "Root", "principalId": OTHER_ACCOUNT, "arn": f"arn:aws:iam::{OTHER_ACCOUNT}:root",
     "accountId": OTHER_ACCOUNT},
], ids=["AWSAccount", "Root"])
def test_outsider_denied_on_our_key_gets_a_report_not_a_crash(fleet: Fleet, identity):
    """How the key owner's trail records other accounts' callers; this used to raise ArnError."""
    report = run_lambda(provoked_event(identity, fleet.b_key, "Decrypt"))

    assert fleet.writes.writes == []
    assert report["findings"], report
    for finding in report["findings"]:
        assert all(fix["status"] in ("proposed", "refused") for fix in finding["fixes"])
        assert all(fix["kind"] != "identity-policy" or fix["target_account"] == OTHER_ACCOUNT
                   for fix in finding["fixes"])
