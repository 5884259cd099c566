"""Grants: who they cover, which operations, and their constraints.

https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-constraints
"""

from kms_policy_fixtures import KEY, KEY_ACCOUNT, OTHER_ACCOUNT, OTHER_KEY, decide, enable_iam, policy_doc, stmt

EXAMPLE_USER = f"arn:aws:iam::{KEY_ACCOUNT}:user/exampleUser"
ADMIN_ROLE = f"arn:aws:iam::{KEY_ACCOUNT}:role/adminRole"
NO_DELEGATION = policy_doc(stmt("Allow", "kms:*", principal={"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:user/keyadmin"}))


def grant(grantee=EXAMPLE_USER, operations=("Decrypt",), constraints=None, **extra):
    return {
        "GrantId": "g-1",
        "GranteePrincipal": grantee,
        "Operations": list(operations),
        "Constraints": constraints,
        **extra,
    }


def by_grant(principal, action, context=None, key=KEY, **kwargs):
    g = kwargs.pop("grants", None) or (grant(**kwargs),)
    return decide(principal, action, key=key, context=context, key_policy=NO_DELEGATION, grants=g).decision


def test_grant_allows_its_operations_to_the_grantee_without_any_policy():
    assert by_grant(EXAMPLE_USER, "kms:Decrypt") == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:Encrypt") == "ImplicitlyDenied"
    assert by_grant(f"arn:aws:iam::{KEY_ACCOUNT}:user/other", "kms:Decrypt") == "ImplicitlyDenied"


def test_encryption_context_equals_requires_the_exact_context():
    equals = {"EncryptionContextEquals": {"Department": "IT"}}
    assert (
        by_grant(EXAMPLE_USER, "kms:Decrypt", {"kms:EncryptionContext:Department": "IT"}, constraints=equals)
        == "Allowed"
    )
    extra = {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Purpose": "Test"}
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", extra, constraints=equals) == "ImplicitlyDenied"
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", {}, constraints=equals) == "ImplicitlyDenied"


def test_encryption_context_subset_accepts_additional_pairs():
    subset = {"EncryptionContextSubset": {"Department": "IT"}}
    extra = {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Purpose": "Test"}
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", extra, constraints=subset) == "Allowed"
    assert (
        by_grant(EXAMPLE_USER, "kms:Decrypt", {"kms:EncryptionContext:Purpose": "Test"}, constraints=subset)
        == "ImplicitlyDenied"
    )


def test_constraint_keys_ignore_case_values_do_not():
    # API_GrantConstraints: "the key in each key-value pair is not case sensitive, but the value is".
    equals = {"EncryptionContextEquals": {"Department": "IT"}}
    assert (
        by_grant(EXAMPLE_USER, "kms:Decrypt", {"kms:EncryptionContext:DEPARTMENT": "IT"}, constraints=equals)
        == "Allowed"
    )
    assert (
        by_grant(EXAMPLE_USER, "kms:Decrypt", {"kms:EncryptionContext:Department": "it"}, constraints=equals)
        == "ImplicitlyDenied"
    )


def test_encryption_context_constraints_are_not_applied_to_describe_key_and_retire_grant():
    equals = {"EncryptionContextEquals": {"Department": "IT"}}
    ops = ("Decrypt", "DescribeKey", "RetireGrant")
    assert by_grant(EXAMPLE_USER, "kms:DescribeKey", operations=ops, constraints=equals) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:RetireGrant", operations=ops, constraints=equals) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", operations=ops, constraints=equals) == "ImplicitlyDenied"


def test_source_arn_constraint():
    volume = "arn:aws:ec2:us-west-2:111122223333:volume/vol-0abc"
    c = {"SourceArn": volume}
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", {"aws:SourceArn": volume}, constraints=c) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", {"aws:SourceArn": volume + "x"}, constraints=c) == "ImplicitlyDenied"


def test_grant_to_a_role_covers_its_sessions():
    session = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/adminRole/s1"
    assert by_grant(session, "kms:Decrypt", grantee=ADMIN_ROLE) == "Allowed"
    other = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/otherRole/s1"
    assert by_grant(other, "kms:Decrypt", grantee=ADMIN_ROLE) == "ImplicitlyDenied"


def test_grant_to_a_service_principal():
    # The DynamoDB grant of create-grant-overview.html (GranteePrincipal is the service).
    g = grant(
        grantee="dynamodb.us-west-2.amazonaws.com",
        operations=("Decrypt", "Encrypt", "DescribeKey"),
        constraints={
            "EncryptionContextSubset": {
                "aws:dynamodb:tableName": "Services",
                "aws:dynamodb:subscriberId": "111122223333",
            }
        },
    )
    ctx = {
        "kms:EncryptionContext:aws:dynamodb:tableName": "Services",
        "kms:EncryptionContext:aws:dynamodb:subscriberId": "111122223333",
    }
    assert by_grant("dynamodb.us-west-2.amazonaws.com", "kms:Decrypt", ctx, grants=(g,)) == "Allowed"
    assert by_grant("dynamodb.us-west-2.amazonaws.com", "kms:Decrypt", {}, grants=(g,)) == "ImplicitlyDenied"
    assert by_grant("s3.amazonaws.com", "kms:Decrypt", ctx, grants=(g,)) == "ImplicitlyDenied"


def test_grant_to_an_account_delegates_to_its_identity_policies():
    g = (grant(grantee=f"arn:aws:iam::{OTHER_ACCOUNT}:root"),)
    user = f"arn:aws:iam::{OTHER_ACCOUNT}:user/bob"
    d = decide(user, "kms:Decrypt", key=KEY, key_policy=NO_DELEGATION, grants=g)
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["resource_policy", "identity_policy"])
    iam = policy_doc(stmt("Allow", "kms:Decrypt", KEY))
    d = decide(user, "kms:Decrypt", key=KEY, key_policy=NO_DELEGATION, identity=(iam,), grants=g)
    assert d.decision == "Allowed"
    assert {r.policy for r in d.decisive} == {"grants[0]", "identity_policies[0]"}


def test_retiring_principal_may_retire_the_grant():
    g = grant(operations=("Decrypt",), RetiringPrincipal=ADMIN_ROLE)
    session = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/adminRole/s1"
    assert by_grant(session, "kms:RetireGrant", grants=(g,)) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:RetireGrant", grants=(g,)) == "ImplicitlyDenied"


def test_grant_key_id_may_be_an_arn_or_a_bare_id():
    key_id = KEY.rsplit("/", 1)[1]
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", KeyId=key_id) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", KeyId=KEY) == "Allowed"
    assert by_grant(EXAMPLE_USER, "kms:Decrypt", KeyId=OTHER_KEY) == "ImplicitlyDenied"


def test_unmet_constraint_is_explained():
    g = grant(constraints={"EncryptionContextEquals": {"Department": "IT"}})
    d = decide(EXAMPLE_USER, "kms:Decrypt", key_policy=policy_doc(enable_iam()), grants=(g,))
    assert d.decision == "ImplicitlyDenied"
    assert any("EncryptionContextEquals" in line for line in d.explanation)
