"""Action, Resource and Principal matching, and the request keys derived from the principal."""

import pytest
from kms_policy_fixtures import (
    ALICE,
    KEY,
    KEY_ACCOUNT,
    OTHER_ACCOUNT,
    V,
    decide,
    enable_iam,
    policy_doc,
    root,
    slr,
    slr_session,
    stmt,
)

from keyfix.policy import PolicyError, Request
from keyfix.policy.patterns import Pattern
from keyfix.policy.request import resolve_request

DELEGATING = policy_doc(enable_iam())


def _identity_decision(statement, action="kms:Decrypt", key=KEY, context=None, principal=ALICE):
    return decide(
        principal, action, key=key, context=context, key_policy=DELEGATING, identity=(policy_doc(statement),)
    ).decision


# --- Action ---------------------------------------------------------------------------
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
# "The prefix and the action name are case insensitive."


@pytest.mark.parametrize(
    "pattern", ["kms:Decrypt", "KMS:decrypt", "kms:*", "kms:De*", "kms:Decr?pt", "*", "kms:*crypt"]
)
def test_action_patterns_that_match_decrypt(pattern):
    assert _identity_decision(stmt("Allow", pattern, KEY)) == "Allowed"


@pytest.mark.parametrize("pattern", ["kms:Encrypt", "kms:Decrypt?", "kms:ReEncrypt*", "s3:*", "kms:D?crypt?"])
def test_action_patterns_that_do_not_match_decrypt(pattern):
    assert _identity_decision(stmt("Allow", pattern, KEY)) == "ImplicitlyDenied"


def test_reencrypt_star_covers_both_reencrypt_permissions():
    for action in ("kms:ReEncryptFrom", "kms:ReEncryptTo"):
        assert _identity_decision(stmt("Allow", "kms:ReEncrypt*", KEY), action=action) == "Allowed"


def test_not_action_allows_everything_else():
    s = {"Effect": "Allow", "NotAction": ["kms:ScheduleKeyDeletion", "kms:Disable*"], "Resource": "*"}
    assert _identity_decision(s, action="kms:Decrypt") == "Allowed"
    assert _identity_decision(s, action="kms:DisableKey") == "ImplicitlyDenied"


# --- Resource ---------------------------------------------------------------------------
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html


def test_resource_is_case_sensitive():
    assert (
        _identity_decision(stmt("Allow", "kms:Decrypt", KEY.upper().replace("ARN:AWS:KMS", "arn:aws:kms")))
        == "ImplicitlyDenied"
    )


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (f"arn:aws:kms:*:{KEY_ACCOUNT}:key/*", "Allowed"),
        (f"arn:aws:kms:us-west-?:{KEY_ACCOUNT}:key/*", "Allowed"),
        ("arn:aws:kms:*:*:*", "Allowed"),
        (f"arn:aws:kms:*:{OTHER_ACCOUNT}:key/*", "ImplicitlyDenied"),
        (f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:alias/*", "ImplicitlyDenied"),
        (f"arn:aws:kms:*:{KEY_ACCOUNT}:*", "Allowed"),
    ],
)
def test_resource_wildcards_work_within_arn_segments(pattern, expected):
    assert _identity_decision(stmt("Allow", "kms:Decrypt", pattern)) == expected


def test_not_resource_excludes_the_named_key():
    s = {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": KEY}
    assert _identity_decision(s) == "ImplicitlyDenied"
    assert _identity_decision(s, key=KEY.replace("1234abcd", "9999abcd")) == "Allowed"


# Variables in Resource: "only in the resource portion of the ARN. This portion of the ARN
# appears after the fifth colon (:). You can't use a variable to replace parts of the ARN
# before the fifth colon, such as the service or account."
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-resourceelement


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:kms:*:${aws:PrincipalAccount}:key/*",
        "arn:aws:kms:us-west-2:${aws:PrincipalAccount}:key/*",
        "arn:aws:kms:*:${kms:CallerAccount, '111122223333'}:key/*",
    ],
)
def test_a_variable_before_the_fifth_colon_of_a_resource_is_not_substituted(pattern):
    assert _identity_decision(stmt("Allow", "kms:Decrypt", pattern)) == "ImplicitlyDenied"
    # ... so a NotResource with it excludes nothing, and a Deny with it denies nothing.
    not_resource = {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": pattern}
    assert _identity_decision(not_resource) == "Allowed"
    deny = policy_doc(stmt("Allow", "kms:Decrypt", "*"), stmt("Deny", "kms:Decrypt", pattern))
    assert decide(ALICE, "kms:Decrypt", key_policy=DELEGATING, identity=(deny,)).decision == "Allowed"


def test_a_variable_before_the_fifth_colon_is_literal_text():
    pattern = "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"
    literal_key = "arn:aws:kms:us-west-2:${aws:PrincipalAccount}:key/k"
    compiled = Pattern.compile(pattern, variables=True, arn=True, resource_part_only=True)
    assert not compiled.has_variables
    assert compiled.matches(literal_key, {"aws:principalaccount": (KEY_ACCOUNT,)})
    assert not compiled.matches(KEY, {"aws:principalaccount": (KEY_ACCOUNT,)})


def test_a_variable_after_the_fifth_colon_of_a_resource_is_substituted():
    pattern = f"arn:aws:kms:*:{KEY_ACCOUNT}:key/${{aws:PrincipalTag/key-id}}"
    key_id = KEY.rsplit("/", 1)[1]
    assert _identity_decision(stmt("Allow", "kms:Decrypt", pattern), context={"aws:PrincipalTag/key-id": key_id}) == (
        "Allowed"
    )
    assert _identity_decision(stmt("Allow", "kms:Decrypt", pattern), context={"aws:PrincipalTag/key-id": "x"}) == (
        "ImplicitlyDenied"
    )


def test_arn_condition_values_substitute_variables_anywhere():
    # "You can use a policy variable for Condition values in any condition that involves
    # the string operators or the ARN operators" (policy-vars-conditionelement): no
    # fifth-colon rule there.
    condition = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}
    assert _identity_decision(stmt("Allow", "kms:Decrypt", KEY, condition=condition)) == "Allowed"


# --- Principal ----------------------------------------------------------------------------
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html


def _key_policy_decision(principal_element, caller, action="kms:Decrypt"):
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal=principal_element))
    identity = policy_doc(stmt("Allow", "kms:Decrypt", "*"))
    return decide(caller, action, key_policy=key_policy, identity=(identity,)).decision


@pytest.mark.parametrize("element", [{"AWS": KEY_ACCOUNT}, {"AWS": root(KEY_ACCOUNT)}, {"AWS": [root(KEY_ACCOUNT)]}])
def test_account_id_and_account_arn_both_delegate_to_the_account(element):
    # "The account ARN and the shortened account ID behave the same way."
    assert _key_policy_decision(element, ALICE) == "Allowed"
    assert decide(
        ALICE, "kms:Decrypt", key_policy=policy_doc(stmt("Allow", "kms:Decrypt", principal=element))
    ).missing == ["identity_policy"]


def test_role_arn_with_path_covers_sessions_of_that_role():
    # A session ARN carries no path; the statement names the role with its path.
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": slr(KEY_ACCOUNT)}))
    assert decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=key_policy).decision == "Allowed"
    other_account = slr_session(OTHER_ACCOUNT)
    assert decide(other_account, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"


def test_a_role_arn_does_not_cover_another_role_or_a_user_of_the_same_name():
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:role/Alice"}))
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"
    bob = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/Bob/Alice"
    assert decide(bob, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"


def test_service_principal_matches_only_a_service_element_or_star():
    ec2 = "ec2.amazonaws.com"
    assert _key_policy_decision({"Service": ec2}, ec2) == "Allowed"
    assert _key_policy_decision({"Service": ["cloudtrail.amazonaws.com"]}, ec2) == "ImplicitlyDenied"
    assert _key_policy_decision({"AWS": root(KEY_ACCOUNT)}, ec2) == "ImplicitlyDenied"
    assert _key_policy_decision("*", ec2) == "Allowed"
    # A service element never covers an IAM principal.
    assert _key_policy_decision({"Service": ec2}, ALICE) == "ImplicitlyDenied"


def test_not_principal_deny_spares_only_the_listed_principals():
    # reference_policies_elements_notprincipal.html: deny everyone except Bob (and his account).
    bob = f"arn:aws:iam::{OTHER_ACCOUNT}:user/Bob"
    deny = {"Effect": "Deny", "NotPrincipal": {"AWS": [bob, root(OTHER_ACCOUNT)]}, "Action": "kms:*", "Resource": "*"}
    allow = stmt("Allow", "kms:Decrypt", principal="*")
    key_policy = policy_doc(allow, deny)
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy).decision == "ExplicitlyDenied"
    bob_iam = policy_doc(stmt("Allow", "kms:Decrypt", "*"))
    assert decide(bob, "kms:Decrypt", key_policy=key_policy, identity=(bob_iam,)).decision == "Allowed"


def test_not_principal_allow_covers_everyone_but_the_listed():
    key_policy = policy_doc(
        {"Effect": "Allow", "NotPrincipal": {"AWS": ALICE}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"
    assert decide(f"arn:aws:iam::{KEY_ACCOUNT}:user/Bob", "kms:Decrypt", key_policy=key_policy).decision == "Allowed"


@pytest.mark.parametrize(
    "principal",
    ["111122223333", "arn:aws:iam::111122223333:group/Admins", "arn:aws:kms:us-east-1:111122223333:key/x", "Alice", ""],
)
def test_a_request_principal_must_be_an_identity_arn_or_a_service(principal):
    with pytest.raises(PolicyError) as err:
        resolve_request(Request(principal, "kms:Decrypt", KEY))
    assert err.value.place == "request.principal"


# --- derived request context --------------------------------------------------------------
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html


def _context(principal, **given):
    return resolve_request(Request(principal, "kms:Decrypt", KEY, context=given)).context


def test_keys_derived_for_a_user():
    ctx = _context(ALICE)
    assert ctx["aws:principalarn"] == (ALICE,)
    assert ctx["aws:principalaccount"] == (KEY_ACCOUNT,)
    assert ctx["kms:calleraccount"] == (KEY_ACCOUNT,)
    assert ctx["aws:principaltype"] == ("User",)
    assert ctx["aws:username"] == ("Alice",)
    assert ctx["aws:principalisawsservice"] == ("false",)


def test_session_reports_its_role_arn_with_the_service_linked_role_path():
    ctx = _context(slr_session(KEY_ACCOUNT))
    assert ctx["aws:principalarn"] == (slr(KEY_ACCOUNT),)
    assert ctx["aws:principaltype"] == ("AssumedRole",)
    assert "aws:username" not in ctx


def test_given_context_wins_over_derived_keys():
    role = f"arn:aws:iam::{KEY_ACCOUNT}:role/team/App"
    ctx = _context(f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/s", **{"aws:PrincipalArn": role})
    assert ctx["aws:principalarn"] == (role,)


@pytest.mark.parametrize("action", ["kms:ListKeys", "kms:ListAliases", "kms:ListRetirableGrants", "kms:GenerateRandom"])
def test_no_caller_account_for_actions_without_it(action):
    # kms:CallerAccount is there for "KMS key resource operations" and "custom key store
    # operations" (conditions-kms.html#conditions-kms-caller-account); the Service
    # Authorization Reference lists no kms:CallerAccount for these four.
    ctx = resolve_request(Request(ALICE, action, "*", KEY_ACCOUNT)).context
    assert "kms:calleraccount" not in ctx
    assert ctx["aws:principalaccount"] == (KEY_ACCOUNT,)


@pytest.mark.parametrize("action", ["kms:CreateKey", "kms:CreateCustomKeyStore", "kms:DescribeCustomKeyStores"])
def test_caller_account_for_create_key_and_custom_key_store_operations(action):
    ctx = resolve_request(Request(ALICE, action, "*", KEY_ACCOUNT)).context
    assert ctx["kms:calleraccount"] == (KEY_ACCOUNT,)


def test_a_caller_account_condition_does_not_match_list_keys():
    identity = policy_doc(
        stmt("Allow", "kms:ListKeys", "*"),
        stmt("Deny", "kms:List*", "*", condition={"StringEquals": {"kms:CallerAccount": KEY_ACCOUNT}}),
    )
    d = decide(ALICE, "kms:ListKeys", key="*", resource_account=KEY_ACCOUNT, identity=(identity,))
    assert d.decision == "Allowed"
    own_account = {"StringEquals": {"kms:CallerAccount": KEY_ACCOUNT}}
    only_own = policy_doc(stmt("Allow", "kms:ListKeys", "*", condition=own_account))
    d = decide(ALICE, "kms:ListKeys", key="*", resource_account=KEY_ACCOUNT, identity=(only_own,))
    assert d.decision == "ImplicitlyDenied"


def test_service_principal_context():
    ctx = _context("ec2.amazonaws.com")
    assert ctx["aws:principalisawsservice"] == ("true",)
    assert ctx["aws:principalservicename"] == ("ec2.amazonaws.com",)
    assert "aws:principalaccount" not in ctx and "kms:calleraccount" not in ctx


def test_encryption_context_keys_are_derived_with_their_case():
    ctx = _context(ALICE, **{"kms:EncryptionContext:AppName": "ExampleApp", "kms:EncryptionContext:Team": "x"})
    assert ctx["kms:encryptioncontextkeys"] == ("AppName", "Team")


def test_principal_arn_condition_names_the_role_of_a_session():
    # Seeds: the SLR statement could equally be written with aws:PrincipalArn.
    key_policy = {
        "Version": V,
        "Statement": [
            stmt("Allow", "kms:Decrypt", principal="*", condition={"ArnEquals": {"aws:PrincipalArn": slr(KEY_ACCOUNT)}})
        ],
    }
    assert decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=key_policy).decision == "Allowed"


def test_principal_type_and_userid_for_root_and_federated_users():
    # reference_policies_variables.html#principaltable
    root_ctx = _context(root(KEY_ACCOUNT))
    assert root_ctx["aws:principaltype"] == ("Account",)
    assert root_ctx["aws:userid"] == (KEY_ACCOUNT,)
    fed = _context(f"arn:aws:sts::{KEY_ACCOUNT}:federated-user/Carlos")
    assert fed["aws:principaltype"] == ("FederatedUser",)
    assert fed["aws:userid"] == (f"{KEY_ACCOUNT}:Carlos",)


def test_source_account_guards_a_service_principal_statement():
    # The confused-deputy pattern: a service principal allowed only for one source account
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
    key_policy = policy_doc(
        stmt(
            "Allow",
            "kms:GenerateDataKey*",
            principal={"Service": "cloudtrail.amazonaws.com"},
            condition={"StringEquals": {"aws:SourceAccount": KEY_ACCOUNT}},
        )
    )
    ours = decide(
        "cloudtrail.amazonaws.com",
        "kms:GenerateDataKey",
        key_policy=key_policy,
        context={"aws:SourceAccount": KEY_ACCOUNT},
    )
    assert ours.decision == "Allowed"
    theirs = decide(
        "cloudtrail.amazonaws.com",
        "kms:GenerateDataKey",
        key_policy=key_policy,
        context={"aws:SourceAccount": OTHER_ACCOUNT},
    )
    assert (theirs.decision, theirs.missing) == ("ImplicitlyDenied", ["resource_policy"])
