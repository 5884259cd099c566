"""KMS alias resources, and decisions resting on a project reading.

Aliases: https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html —
kms:CreateAlias (and UpdateAlias, DeleteAlias) is needed "for the alias. Provide this
permission in an IAM policy", and, separately, for the KMS key, in "the key policy or in
an IAM policy delegated from the key policy". The statements below are the page's.

Readings: unknowns.py and tests/differential/known_differences.py (PROJECT_READINGS).
"""

from __future__ import annotations

import pytest
from kms_policy_fixtures import KEY, KEY_ACCOUNT, OTHER_ACCOUNT, enable_iam, policy_doc, stmt

from keyfix.policy import PolicyError
from keyfix.policy.simulate import decide, load
from keyfix.policy.unknowns import (
    READING_BOOL_VARIABLE,
    READING_GRANT_LIMITS,
    READING_NOTPRINCIPAL_SESSION,
    READING_WILDCARD_BOUNDARY,
)

ADMIN = f"arn:aws:iam::{KEY_ACCOUNT}:user/KMSAdminUser"
ALIAS = f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:alias/test-key"
# alias-access.html, "IAMPolicyForAnAlias".
IAM_FOR_ALIAS = policy_doc({"Sid": "IAMPolicyForAnAlias", "Effect": "Allow",
                            "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"], "Resource": ALIAS})
# alias-access.html, "Key policy for 1234abcd-...".
KEY_POLICY_FOR_ALIAS = policy_doc(enable_iam(), {
    "Sid": "Key policy for 1234abcd-12ab-34cd-56ef-1234567890ab", "Effect": "Allow",
    "Principal": {"AWS": ADMIN}, "Action": ["kms:CreateAlias", "kms:DescribeKey"], "Resource": "*"})


def _doc(action, resource, principal=ADMIN, **rest):
    return {"request": {"principal": principal, "action": action, "resource": resource}, **rest}


@pytest.mark.parametrize("action", ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"])
def test_an_iam_allow_on_the_alias_allows_the_alias_side(action):
    out = decide(_doc(action, ALIAS, identity_policies=[IAM_FOR_ALIAS]))
    assert out["decision"] == "Allowed"
    assert out["decisive"] == [{"policy": "identity_policies[0]", "sid": "IAMPolicyForAnAlias", "statement": 0}]


def test_a_principal_named_only_in_the_key_policy_cannot_create_the_alias():
    out = decide(_doc("kms:CreateAlias", ALIAS, resource_policy=KEY_POLICY_FOR_ALIAS))
    assert (out["decision"], out["missing"]) == ("ImplicitlyDenied", ["identity_policy"])


def test_the_key_side_is_the_key_policy_as_for_any_key_operation():
    assert decide(_doc("kms:CreateAlias", KEY, resource_policy=KEY_POLICY_FOR_ALIAS))["decision"] == "Allowed"
    assert decide(_doc("kms:CreateAlias", KEY, identity_policies=[IAM_FOR_ALIAS]))["decision"] == "ImplicitlyDenied"


def test_the_key_policy_neither_allows_nor_denies_on_an_alias():
    deny_all = policy_doc(stmt("Deny", "kms:*", "*", principal="*"))
    out = decide(_doc("kms:CreateAlias", ALIAS, resource_policy=deny_all, identity_policies=[IAM_FOR_ALIAS]))
    assert out["decision"] == "Allowed"


def test_guardrails_still_apply_to_an_alias():
    deny = policy_doc(stmt("Deny", "kms:CreateAlias", "*"))
    out = decide(_doc("kms:CreateAlias", ALIAS, identity_policies=[IAM_FOR_ALIAS],
                      scps=[[policy_doc(stmt("Allow", "*", "*")), deny]]))
    assert out["decision"] == "ExplicitlyDenied"


def test_an_alias_in_another_account_cannot_be_managed():
    # CreateAlias is not a cross-account operation (kms-api-permissions-reference.html).
    bob = f"arn:aws:iam::{OTHER_ACCOUNT}:user/Bob"
    out = decide(_doc("kms:CreateAlias", ALIAS, principal=bob,
                      identity_policies=[policy_doc(stmt("Allow", "kms:*", "*"))]))
    assert out["decision"] == "ImplicitlyDenied"


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"])
def test_other_actions_on_an_alias_arn_are_refused_as_input(action):
    with pytest.raises(PolicyError) as err:
        load(_doc(action, ALIAS))
    assert err.value.place == "request.resource"


# --- project readings ---------------------------------------------------------------------

SESSION = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/s1"
ROLE = f"arn:aws:iam::{KEY_ACCOUNT}:role/App"
DECRYPT_ONLY = policy_doc(stmt("Allow", "kms:Decrypt", "*"))
S3_ONLY = policy_doc(stmt("Allow", "s3:GetObject", "*"))


def _session(**rest):
    return {"request": {"principal": SESSION, "action": "kms:Decrypt", "resource": KEY}, **rest}


def test_wildcard_principal_and_a_session_boundary_is_a_reading():
    wildcard = policy_doc(stmt("Allow", "kms:Decrypt", "*", principal="*"))
    out = decide(_session(resource_policy=wildcard, permission_boundaries=[S3_ONLY]))
    assert out["decision"] == "ImplicitlyDenied"
    assert out["project_readings"] == [READING_WILDCARD_BOUNDARY]
    # A boundary that allows leaves nothing to read.
    assert "project_readings" not in decide(_session(resource_policy=wildcard, permission_boundaries=[DECRYPT_ONLY]))


def test_a_grant_and_a_session_policy_is_a_reading():
    grant = {"GrantId": "g-1", "GranteePrincipal": ROLE, "Operations": ["Decrypt"], "Constraints": None}
    out = decide(_session(resource_policy=policy_doc(enable_iam()), grants=[grant], session_policy=S3_ONLY))
    assert (out["decision"], out["project_readings"]) == ("Allowed", [READING_GRANT_LIMITS])
    out = decide(_session(resource_policy=policy_doc(enable_iam()), grants=[grant], session_policy=DECRYPT_ONLY))
    assert out["decision"] == "Allowed" and "project_readings" not in out


def test_notprincipal_deny_naming_part_of_a_session_is_a_reading():
    allow_role = stmt("Allow", "kms:Decrypt", "*", principal={"AWS": ROLE})
    partial = {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "kms:*", "Resource": "*"}
    out = decide(_session(resource_policy=policy_doc(allow_role, partial)))
    assert (out["decision"], out["project_readings"]) == ("Allowed", [READING_NOTPRINCIPAL_SESSION])
    # Account, role and session all named: the session is left out on every reading.
    full = {**partial, "NotPrincipal": {"AWS": [ROLE, SESSION, f"arn:aws:iam::{KEY_ACCOUNT}:root"]}}
    out = decide(_session(resource_policy=policy_doc(allow_role, full)))
    assert out["decision"] == "Allowed" and "project_readings" not in out


def test_a_policy_variable_in_a_bool_condition_is_a_reading():
    bool_var = stmt("Allow", "kms:Decrypt", "*", principal={"AWS": ROLE},
                    condition={"Bool": {"kms:GrantIsForAWSResource": "${aws:PrincipalIsAWSService}"}})
    doc = _session(resource_policy=policy_doc(bool_var))
    doc["request"]["context"] = {"kms:GrantIsForAWSResource": "false"}
    out = decide(doc)
    assert (out["decision"], out["project_readings"]) == ("Allowed", [READING_BOOL_VARIABLE])


def test_decisions_resting_on_a_reading_are_not_decided_for_writing():
    from keyfix.policy import evaluate

    wildcard = policy_doc(stmt("Allow", "kms:Decrypt", "*", principal="*"))
    request, policies = load(_session(resource_policy=wildcard, permission_boundaries=[S3_ONLY]))
    decision = evaluate(request, policies)
    assert decision.decision == "ImplicitlyDenied" and not decision.decided_for_writing
    request, policies = load(_session(resource_policy=wildcard, permission_boundaries=[DECRYPT_ONLY]))
    assert evaluate(request, policies).decided_for_writing
