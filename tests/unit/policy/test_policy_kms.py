"""KMS key-policy semantics, from the KMS developer guide and the seeds."""

from kms_policy_fixtures import (
    ALICE,
    KEY,
    KEY_ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_KEY,
    V,
    a1_statements,
    a2_external_statements,
    a2_grant,
    decide,
    enable_iam,
    policy_doc,
    root,
    slr,
    slr_session,
    stmt,
)

ASG_CONTEXT = {"kms:GrantIsForAWSResource": "true", "kms:ViaService": "ec2.us-west-2.amazonaws.com"}


# --- the key policy is required ---------------------------------------------------
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
# "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access."


def test_identity_policy_alone_does_not_open_a_key():
    allow_all = policy_doc(stmt("Allow", "kms:*", "*"))
    d = decide(ALICE, "kms:Decrypt", key_policy=policy_doc_key_only(), identity=(allow_all,))
    assert d.decision == "ImplicitlyDenied"
    assert d.missing == ["resource_policy"]


def policy_doc_key_only():
    # A key policy that names only some other user: no root delegation.
    return policy_doc(stmt("Allow", "kms:*", "*", principal={"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:user/Bob"}))


def test_no_key_policy_at_all_denies_even_with_identity_allow():
    d = decide(ALICE, "kms:Decrypt", key_policy=None, identity=(policy_doc(stmt()),))
    assert d.decision == "ImplicitlyDenied"
    assert "resource_policy" in d.missing


# --- default key policy: root delegation -----------------------------------------
# https://docs.aws.amazon.com/kms/latest/developerguide/policy-evaluation.html#example-no-iam


def test_doc_example_1_alice_denied_with_default_key_policy_and_no_iam_policy():
    d = decide(ALICE, "kms:Decrypt", key_policy=policy_doc(enable_iam()))
    assert d.decision == "ImplicitlyDenied"
    assert d.missing == ["identity_policy"]
    assert [(r.policy, r.sid) for r in d.decisive] == [("resource_policy", "Enable IAM policies")]


def test_default_key_policy_delegates_to_an_identity_policy_that_allows():
    identity = policy_doc(stmt("Allow", "kms:Decrypt", KEY, sid="UseKey"))
    d = decide(ALICE, "kms:Decrypt", key_policy=policy_doc(enable_iam()), identity=(identity,))
    assert d.decision == "Allowed"
    assert {(r.policy, r.sid) for r in d.decisive} == {
        ("resource_policy", "Enable IAM policies"),
        ("identity_policies[0]", "UseKey"),
    }


def test_identity_policy_for_another_key_does_not_count():
    identity = policy_doc(stmt("Allow", "kms:Decrypt", KEY.replace(KEY[-4:], "ffff")))
    d = decide(ALICE, "kms:Decrypt", key_policy=policy_doc(enable_iam()), identity=(identity,))
    assert d.missing == ["identity_policy"]


def test_key_policy_naming_the_user_needs_no_identity_policy():
    # Seed 002 (case B): "Allow use of the keys" names arn:aws:iam::111111111111:user/UserA.
    user_a = f"arn:aws:iam::{KEY_ACCOUNT}:user/UserA"
    key_policy = policy_doc(
        enable_iam(),
        stmt(
            "Allow",
            ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            principal={"AWS": user_a},
            sid="Allow use of the keys",
        ),
        stmt(
            "Allow",
            ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            principal={"AWS": user_a},
            sid="Allow attachment of persistent resources",
            condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
    )
    assert decide(user_a, "kms:ReEncryptFrom", key_policy=key_policy).decision == "Allowed"
    assert decide(user_a, "kms:GenerateDataKeyWithoutPlaintext", key_policy=key_policy).decision == "Allowed"
    grant = decide(user_a, "kms:CreateGrant", key_policy=key_policy, context={"kms:GrantIsForAWSResource": "true"})
    assert grant.decision == "Allowed"
    assert [r.sid for r in grant.decisive] == ["Allow attachment of persistent resources"]
    # Without an AWS service behind the call, only the delegation path remains.
    direct = decide(user_a, "kms:CreateGrant", key_policy=key_policy)
    assert direct.decision == "ImplicitlyDenied"
    assert direct.missing == ["identity_policy"]


def test_seed_003_user_needs_create_grant_in_identity_policy():
    # Seed 003 (case C): key policy "Enable IAM User Permissions"; the user lacked
    # kms:CreateGrant; the fix is an identity policy with GrantIsForAWSResource.
    user = f"arn:aws:iam::{KEY_ACCOUNT}:user/test"
    key_policy = policy_doc(
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": root(KEY_ACCOUNT)},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    fix = {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant"],
                "Resource": [KEY],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
            }
        ],
    }
    before = decide(user, "kms:CreateGrant", key_policy=key_policy, context={"kms:GrantIsForAWSResource": "true"})
    assert (before.decision, before.missing) == ("ImplicitlyDenied", ["identity_policy"])
    after = decide(
        user, "kms:CreateGrant", key_policy=key_policy, identity=(fix,), context={"kms:GrantIsForAWSResource": "true"}
    )
    assert after.decision == "Allowed"
    # The condition keeps the user from granting to another principal directly.
    assert decide(user, "kms:CreateGrant", key_policy=key_policy, identity=(fix,)).missing == ["identity_policy"]


# --- seeds case A1: the Auto Scaling service-linked role, same account -------------


def test_a1_slr_session_may_use_the_key_and_create_grants_for_aws_resources():
    key_policy = policy_doc(enable_iam(), *a1_statements())
    session = slr_session(KEY_ACCOUNT)
    for action in ("kms:Decrypt", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"):
        assert decide(session, action, key_policy=key_policy).decision == "Allowed", action
    d = decide(session, "kms:CreateGrant", key_policy=key_policy, context=ASG_CONTEXT)
    assert d.decision == "Allowed"
    assert [r.sid for r in d.decisive] == ["Allow attachment of persistent resources"]


def test_a1_create_grant_needs_grant_is_for_aws_resource():
    key_policy = policy_doc(enable_iam(), *a1_statements())
    d = decide(
        slr_session(KEY_ACCOUNT),
        "kms:CreateGrant",
        key_policy=key_policy,
        context={"kms:GrantIsForAWSResource": "false"},
    )
    assert d.decision == "ImplicitlyDenied"
    # The SLR's own permissions policy cannot be edited, so the fix is the key policy.
    assert d.missing == ["resource_policy"]


def test_a1_without_the_statements_the_slr_is_missing_from_the_key_policy():
    d = decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=policy_doc(enable_iam()))
    assert d.decision == "ImplicitlyDenied"
    assert d.missing == ["resource_policy"]


def test_a1_custom_suffix_slr_is_a_different_role():
    key_policy = policy_doc(enable_iam(), *a1_statements())
    other = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling_custom/AutoScaling"
    assert decide(other, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"


# --- cross account ------------------------------------------------------------------
# https://docs.aws.amazon.com/kms/latest/developerguide/policy-evaluation.html#example-cross-acct


def _bob_key_policy():
    return {
        "Id": "key-policy-acct-2",
        "Version": V,
        "Statement": [
            {
                "Sid": "Permission to use IAM policies",
                "Effect": "Allow",
                "Principal": {"AWS": root(OTHER_ACCOUNT)},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow account 1 to use this KMS key",
                "Effect": "Allow",
                "Principal": {"AWS": root(KEY_ACCOUNT)},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
            },
        ],
    }


ENGINEERING = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/Engineering/bob"


def test_doc_example_2_engineering_role_in_account_1_uses_key_in_account_2():
    iam = policy_doc(
        stmt(
            "Allow",
            ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            OTHER_KEY,
        )
    )
    d = decide_cross(ENGINEERING, "kms:Decrypt", key_policy=_bob_key_policy(), identity=(iam,))
    assert d.decision == "Allowed"


def decide_cross(principal, action, **layers):
    return decide(principal, action, key=OTHER_KEY, **layers)


def test_cross_account_needs_the_callers_identity_policy_too():
    d = decide_cross(ENGINEERING, "kms:Decrypt", key_policy=_bob_key_policy())
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["identity_policy"])


def test_cross_account_with_neither_side():
    d = decide_cross(ENGINEERING, "kms:Decrypt", key_policy=policy_doc(enable_iam(OTHER_ACCOUNT)))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["resource_policy", "identity_policy"])


def test_cross_account_key_policy_naming_the_role_still_needs_identity_policy():
    # "Neither the key policy nor the IAM policy alone is sufficient" (key-policy-modifying-external-accounts.html).
    role = f"arn:aws:iam::{KEY_ACCOUNT}:role/Engineering"
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": role}))
    assert decide_cross(ENGINEERING, "kms:Decrypt", key_policy=key_policy).missing == ["identity_policy"]
    iam = policy_doc(stmt("Allow", "kms:Decrypt", OTHER_KEY))
    assert decide_cross(ENGINEERING, "kms:Decrypt", key_policy=key_policy, identity=(iam,)).decision == "Allowed"


def test_operations_kms_does_not_allow_across_accounts_are_denied_whatever_the_policies():
    key_policy = policy_doc(stmt("Allow", "kms:*", principal={"AWS": root(KEY_ACCOUNT)}))
    iam = policy_doc(stmt("Allow", "kms:*", "*"))
    d = decide_cross(ENGINEERING, "kms:ScheduleKeyDeletion", key_policy=key_policy, identity=(iam,))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", [])
    assert decide_cross(ENGINEERING, "kms:DescribeKey", key_policy=key_policy, identity=(iam,)).decision == "Allowed"


# --- seeds case A2: Auto Scaling SLR on a key in another account ---------------------


def test_a2_slr_without_grant_is_missing_a_grant():
    key_policy = policy_doc(enable_iam(OTHER_ACCOUNT), *a2_external_statements(KEY_ACCOUNT))
    d = decide_cross(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=key_policy)
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["grant"])


def test_a2_grant_lets_the_slr_use_the_foreign_key_without_identity_policy():
    key_policy = policy_doc(enable_iam(OTHER_ACCOUNT), *a2_external_statements(KEY_ACCOUNT))
    grant = a2_grant(OTHER_KEY, KEY_ACCOUNT)
    session = slr_session(KEY_ACCOUNT)
    d = decide_cross(session, "kms:GenerateDataKeyWithoutPlaintext", key_policy=key_policy, grants=(grant,))
    assert d.decision == "Allowed"
    assert [r.to_json() for r in d.decisive] == [{"policy": "grants[0]", "grant_id": "g-asg"}]
    # The grant does not list Encrypt.
    assert decide_cross(session, "kms:Encrypt", key_policy=key_policy, grants=(grant,)).missing == ["grant"]


def test_a2_admin_in_asg_account_may_create_the_grant():
    # The seeds' identity policy "AllowCreationOfGrantForTheKMSinExternalAccount444455556666".
    admin = f"arn:aws:iam::{KEY_ACCOUNT}:user/admin"
    key_policy = policy_doc(enable_iam(OTHER_ACCOUNT), *a2_external_statements(KEY_ACCOUNT))
    iam = {
        "Version": V,
        "Statement": [
            {
                "Sid": "AllowCreationOfGrantForTheKMSinExternalAccount444455556666",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": OTHER_KEY,
            }
        ],
    }
    d = decide_cross(
        admin,
        "kms:CreateGrant",
        key_policy=key_policy,
        identity=(iam,),
        context={"kms:GranteePrincipal": slr(KEY_ACCOUNT)},
    )
    assert d.decision == "Allowed"
    assert decide_cross(admin, "kms:CreateGrant", key_policy=key_policy).missing == ["identity_policy"]


def test_explicit_deny_in_the_key_policy_beats_a_grant():
    key_policy = policy_doc(stmt("Deny", "kms:Decrypt", principal={"AWS": root(KEY_ACCOUNT)}, sid="NoDecrypt"))
    d = decide_cross(
        slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=key_policy, grants=(a2_grant(OTHER_KEY, KEY_ACCOUNT),)
    )
    assert d.decision == "ExplicitlyDenied"
    assert [r.to_json() for r in d.decisive] == [{"policy": "resource_policy", "sid": "NoDecrypt", "statement": 0}]


def test_explicit_deny_in_an_identity_policy_beats_a_grant():
    deny = policy_doc(stmt("Deny", "kms:*", "*"))
    d = decide_cross(
        slr_session(KEY_ACCOUNT),
        "kms:Decrypt",
        key_policy=policy_doc(enable_iam(OTHER_ACCOUNT)),
        identity=(deny,),
        grants=(a2_grant(OTHER_KEY, KEY_ACCOUNT),),
    )
    assert d.decision == "ExplicitlyDenied"


def test_grant_for_another_key_does_not_apply():
    d = decide_cross(
        slr_session(KEY_ACCOUNT),
        "kms:Decrypt",
        key_policy=policy_doc(enable_iam(OTHER_ACCOUNT)),
        grants=(a2_grant(KEY, KEY_ACCOUNT),),
    )
    assert d.decision == "ImplicitlyDenied"


# --- unique ids: deleted and re-created principals ---------------------------------


def test_statement_naming_a_unique_id_matches_nobody_and_is_reported_stale():
    from keyfix.policy import Policy, stale_principals

    doc = policy_doc(
        enable_iam(),
        stmt("Allow", "kms:Decrypt", principal={"AWS": ["AROA1234567890EXAMPLE", ALICE]}),
        stmt("Allow", "kms:Encrypt", principal={"AWS": "AIDACKCEVSQ6C2EXAMPLE"}),
    )
    assert stale_principals(Policy.parse(doc, "resource_policy")) == ["AROA1234567890EXAMPLE", "AIDACKCEVSQ6C2EXAMPLE"]
    role_session = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/Deleted/s"
    assert decide(role_session, "kms:Decrypt", key_policy=doc).missing == ["identity_policy"]
    assert decide(ALICE, "kms:Decrypt", key_policy=doc).decision == "Allowed"
    assert stale_principals(Policy.parse(policy_doc(enable_iam()), "p")) == []


# --- KMS and global condition keys in key policies ------------------------------------


def test_principal_star_with_org_id_opens_the_key_to_the_organisation():
    # A key policy shared with an organisation: Principal "*" limited by aws:PrincipalOrgID
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid).
    key_policy = policy_doc(
        enable_iam(OTHER_ACCOUNT),
        stmt(
            "Allow",
            "kms:Decrypt",
            principal="*",
            sid="Org",
            condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        ),
    )
    iam = policy_doc(stmt("Allow", "kms:Decrypt", OTHER_KEY))
    member = {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}
    assert (
        decide_cross(ENGINEERING, "kms:Decrypt", key_policy=key_policy, identity=(iam,), context=member).decision
        == "Allowed"
    )
    outsider = decide_cross(
        ENGINEERING, "kms:Decrypt", key_policy=key_policy, identity=(iam,), context={"aws:PrincipalOrgID": "o-other"}
    )
    assert outsider.missing == ["resource_policy"]


def test_grantee_principal_condition_limits_who_grants_may_name():
    # conditions-kms.html#conditions-kms-grantee-principal
    admin = f"arn:aws:iam::{KEY_ACCOUNT}:role/admin"
    key_policy = policy_doc(
        stmt(
            "Allow",
            "kms:CreateGrant",
            principal={"AWS": admin},
            condition={"StringEquals": {"kms:GranteePrincipal": slr(KEY_ACCOUNT)}},
        )
    )
    session = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/admin/s"
    ok = decide(session, "kms:CreateGrant", key_policy=key_policy, context={"kms:GranteePrincipal": slr(KEY_ACCOUNT)})
    assert ok.decision == "Allowed"
    other = decide(session, "kms:CreateGrant", key_policy=key_policy, context={"kms:GranteePrincipal": ALICE})
    assert other.decision == "ImplicitlyDenied"


def test_via_service_condition():
    # conditions-kms.html#conditions-kms-via-service: only through EBS in us-west-2.
    key_policy = policy_doc(
        enable_iam(),
        stmt(
            "Allow",
            "kms:Decrypt",
            principal={"AWS": ALICE},
            condition={"StringEquals": {"kms:ViaService": "ec2.us-west-2.amazonaws.com"}},
        ),
    )
    assert (
        decide(
            ALICE, "kms:Decrypt", key_policy=key_policy, context={"kms:ViaService": "ec2.us-west-2.amazonaws.com"}
        ).decision
        == "Allowed"
    )
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy).missing == ["identity_policy"]


def test_data_perimeter_deny_spares_aws_services_and_own_account():
    # Deny everyone outside the account unless an AWS service calls (aws:PrincipalIsAWSService).
    perimeter = stmt(
        "Deny",
        "kms:*",
        principal="*",
        sid="Perimeter",
        condition={
            "StringNotEqualsIfExists": {"aws:PrincipalAccount": KEY_ACCOUNT},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    )
    key_policy = policy_doc(
        enable_iam(),
        stmt("Allow", "kms:Decrypt", principal={"Service": "ec2.amazonaws.com"}),
        stmt("Allow", "kms:Decrypt", principal={"AWS": root(OTHER_ACCOUNT)}),
        perimeter,
    )
    outsider = f"arn:aws:iam::{OTHER_ACCOUNT}:user/Bob"
    assert (
        decide(outsider, "kms:Decrypt", key_policy=key_policy, identity=(policy_doc(stmt()),)).decision
        == "ExplicitlyDenied"
    )
    assert decide("ec2.amazonaws.com", "kms:Decrypt", key_policy=key_policy).decision == "Allowed"
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy, identity=(policy_doc(stmt()),)).decision == "Allowed"
