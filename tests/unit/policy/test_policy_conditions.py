"""Condition operators, set operators, IfExists, Null and policy variables.

Cases follow the examples of
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html and
https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html.
"""

import pytest
from kms_policy_fixtures import ALICE, KEY, KEY_ACCOUNT, decide, enable_iam, policy_doc, stmt

DELEGATING = policy_doc(enable_iam())


def holds(condition, context=None, principal=ALICE, version="2012-10-17", resource=KEY):
    """Whether an identity-policy Allow with this condition applies to the request."""
    identity = {"Version": version, "Statement": [stmt("Allow", "kms:Decrypt", resource, condition=condition)]}
    if version is None:
        del identity["Version"]
    d = decide(principal, "kms:Decrypt", context=context, key_policy=DELEGATING, identity=(identity,))
    return d.decision == "Allowed"


# --- string ------------------------------------------------------------------------------


def test_string_equals_principal_tag_example():
    cond = {"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}
    assert holds(cond, {"aws:PrincipalTag/job-category": "iamuser-admin"})
    assert not holds(cond, {"aws:PrincipalTag/job-category": "IAMUSER-ADMIN"})
    # "If a user without the tag attempts ... the condition returns false".
    assert not holds(cond)


def test_string_equals_ignore_case_and_not_equals():
    assert holds({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "Blue"}}, {"aws:PrincipalTag/team": "BLUE"})
    assert not holds(
        {"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "Blue"}}, {"aws:PrincipalTag/team": "bLUE"}
    )
    assert holds({"StringNotEquals": {"aws:PrincipalTag/team": "Blue"}}, {"aws:PrincipalTag/team": "BLUE"})


def test_string_like_wildcards():
    cond = {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}
    assert holds(cond, {"kms:ViaService": "ec2.us-west-2.amazonaws.com"})
    assert not holds(cond, {"kms:ViaService": "rds.us-west-2.amazonaws.com"})
    assert holds(
        {"StringLike": {"kms:ViaService": "ec2.us-west-?.amazonaws.com"}},
        {"kms:ViaService": "ec2.us-west-1.amazonaws.com"},
    )
    assert not holds({"StringNotLike": {"kms:ViaService": "ec2.*"}}, {"kms:ViaService": "ec2.us-west-1.amazonaws.com"})


def test_string_equals_takes_wildcards_literally():
    assert not holds({"StringEquals": {"kms:ViaService": "ec2.*"}}, {"kms:ViaService": "ec2.us-west-2.amazonaws.com"})
    assert holds({"StringEquals": {"kms:ViaService": "ec2.*"}}, {"kms:ViaService": "ec2.*"})


def test_condition_key_names_are_case_insensitive():
    assert holds(
        {"StringEquals": {"KMS:VIASERVICE": "ec2.us-west-2.amazonaws.com"}},
        {"kms:ViaService": "ec2.us-west-2.amazonaws.com"},
    )


def test_multiple_values_are_ored_keys_and_operators_anded():
    # The multi-value-conditions example: department in (finance, hr, legal) AND role in
    # (audit, security) AND the account.
    cond = {
        "StringEqualsIgnoreCase": {
            "aws:PrincipalTag/department": ["finance", "hr", "legal"],
            "aws:PrincipalTag/role": ["audit", "security"],
        },
        "StringEquals": {"aws:PrincipalAccount": KEY_ACCOUNT},
    }
    ok = {"aws:PrincipalTag/department": "HR", "aws:PrincipalTag/role": "audit"}
    assert holds(cond, ok)
    assert not holds(cond, {**ok, "aws:PrincipalTag/role": "dev"})
    assert not holds(cond, {**ok, "aws:PrincipalAccount": "999999999999"})


def test_negated_operator_with_several_values_must_match_none():
    cond = {"StringNotEquals": {"aws:PrincipalAccount": ["111111111111", "222222222222"]}}
    assert holds(cond, {"aws:PrincipalAccount": "333333333333"})
    assert not holds(cond, {"aws:PrincipalAccount": "222222222222"})


# --- missing keys, IfExists, Null ------------------------------------------------------


def test_missing_key_fails_positive_and_passes_negated_operators():
    assert not holds({"StringLike": {"aws:PrincipalTag/x": "*"}})
    assert holds({"StringNotLike": {"aws:PrincipalTag/x": "a*"}})
    assert holds({"ArnNotLike": {"aws:SourceArn": "arn:aws:ec2:*:*:instance/*"}})


def test_if_exists_treats_a_missing_key_as_true_but_checks_a_present_one():
    cond = {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}
    assert holds(cond)
    assert holds(cond, {"ec2:InstanceType": "t2.micro"})
    assert not holds(cond, {"ec2:InstanceType": "c5.large"})


def test_null_checks_presence():
    # "the key must not exist": {"Null": {"aws:TokenIssueTime": "true"}}.
    assert holds({"Null": {"aws:TokenIssueTime": "true"}})
    assert not holds({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"})
    assert holds({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"})


# --- numeric, date, bool, binary, ip, arn -------------------------------------------------


def test_numeric_less_than_equals_max_keys_example():
    cond = {"NumericLessThanEquals": {"s3:max-keys": "10"}}
    assert holds(cond, {"s3:max-keys": "10"}) and holds(cond, {"s3:max-keys": "9.5"})
    assert not holds(cond, {"s3:max-keys": "11"})
    assert not holds(cond, {"s3:max-keys": "ten"})
    assert holds({"NumericNotEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "11"})
    assert holds({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"})


def test_date_greater_than_token_issue_time_example():
    cond = {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}
    assert holds(cond, {"aws:TokenIssueTime": "2020-06-01T00:00:00Z"})
    assert not holds(cond, {"aws:TokenIssueTime": "2019-12-31T23:59:59Z"})
    # Epoch seconds compare with ISO dates.
    assert holds({"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, {"aws:CurrentTime": "1700000000"})
    assert holds(
        {"DateEquals": {"aws:CurrentTime": "2020-01-01T00:00:00+00:00"}}, {"aws:CurrentTime": "2020-01-01T00:00:00Z"}
    )


def test_bool_secure_transport_and_json_boolean_values():
    assert holds({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"})
    assert not holds({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"})
    # The seeds write the value as a JSON boolean.
    assert holds({"Bool": {"kms:GrantIsForAWSResource": True}}, {"kms:GrantIsForAWSResource": "True"})
    assert not holds({"Bool": {"kms:GrantIsForAWSResource": True}})


def test_binary_equals_compares_bytes():
    cond = {"BinaryEquals": {"aws:PrincipalTag/blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}
    assert holds(cond, {"aws:PrincipalTag/blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="})
    assert not holds(cond, {"aws:PrincipalTag/blob": "QmluYXJ5"})


def test_ip_address_mixes_ipv4_and_ipv6_ranges():
    cond = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}
    assert holds(cond, {"aws:SourceIp": "203.0.113.7"})
    assert holds(cond, {"aws:SourceIp": "2001:db8:1234:5678::1"})
    assert not holds(cond, {"aws:SourceIp": "198.51.100.1"})
    assert holds({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "198.51.100.1"})
    assert holds({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}, {"aws:SourceIp": "203.0.113.7"})


def test_arn_like_matches_segment_by_segment_unlike_string_like():
    # The documented pair: StringLike matches, ArnLike does not.
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    assert holds({"StringLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})
    assert not holds({"ArnLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})
    assert holds(
        {"ArnEquals": {"aws:SourceArn": pattern}},
        {"aws:SourceArn": "arn:aws:someservice:us-east-2:111122223333:finance/a:b"},
    )
    assert holds({"ArnNotEquals": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})


# --- set operators --------------------------------------------------------------------------


def test_for_all_values_encryption_context_keys_limits_the_keys():
    # conditions-kms.html: ForAllValues limits the keys, and alone allows no context at all.
    cond = {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]}}
    assert holds(cond, {"kms:EncryptionContext:AppName": "ExampleApp"})
    assert not holds(cond, {"kms:EncryptionContext:AppName": "ExampleApp", "kms:EncryptionContext:Team": "x"})
    assert holds(cond)
    # Case-sensitive keys with StringEquals.
    assert not holds(cond, {"kms:EncryptionContext:appname": "ExampleApp"})


def test_for_any_value_encryption_context_keys_requires_one():
    cond = {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}
    assert holds(cond, {"kms:EncryptionContext:AppName": "x", "kms:EncryptionContext:Other": "y"})
    assert not holds(cond, {"kms:EncryptionContext:Other": "y"})
    # "If the request has no encryption context, the condition is not satisfied."
    assert not holds(cond)


def test_encryption_context_pair_and_keys_together():
    # conditions-kms.html: require Department=IT and Project=Alpha, forbid other pairs.
    cond = {
        "StringEquals": {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"},
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]},
    }
    pairs = {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"}
    assert holds(cond, pairs)
    assert not holds(cond, {**pairs, "kms:EncryptionContext:Stage": "Restricted"})
    assert not holds(cond, {"kms:EncryptionContext:Department": "IT"})


def test_grant_operations_set_operators():
    any_value = {"ForAnyValue:StringEquals": {"kms:GrantOperations": ["Decrypt"]}}
    all_values = {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "Encrypt"]}}
    ops = {"kms:GrantOperations": ["Decrypt", "RetireGrant"]}
    assert holds(any_value, ops)
    assert not holds(all_values, ops)
    assert holds(all_values, {"kms:GrantOperations": ["Encrypt"]})


def test_negated_operator_under_set_operators():
    # ForAllValues:StringNotEquals: no request value may equal a listed value.
    cond = {"ForAllValues:StringNotEquals": {"kms:GrantOperations": ["CreateGrant"]}}
    assert holds(cond, {"kms:GrantOperations": ["Decrypt", "Encrypt"]})
    assert not holds(cond, {"kms:GrantOperations": ["Decrypt", "CreateGrant"]})
    any_not = {"ForAnyValue:StringNotEquals": {"kms:GrantOperations": ["CreateGrant"]}}
    assert holds(any_not, {"kms:GrantOperations": ["Decrypt", "CreateGrant"]})
    assert not holds(any_not, {"kms:GrantOperations": ["CreateGrant"]})


# --- policy variables ---------------------------------------------------------------------


def test_username_variable_in_resource_and_condition():
    user_key = f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:key/Alice"
    identity = policy_doc(stmt("Allow", "kms:Decrypt", f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:key/${{aws:username}}"))
    assert decide(ALICE, "kms:Decrypt", key=user_key, key_policy=DELEGATING, identity=(identity,)).decision == "Allowed"
    bob = f"arn:aws:iam::{KEY_ACCOUNT}:user/Bob"
    assert (
        decide(bob, "kms:Decrypt", key=user_key, key_policy=DELEGATING, identity=(identity,)).decision
        == "ImplicitlyDenied"
    )
    assert holds({"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}, {"aws:PrincipalTag/owner": "Alice"})


def test_variable_default_value():
    cond = {"StringEquals": {"aws:PrincipalTag/bucket": "${aws:PrincipalTag/team, 'company-wide'}"}}
    assert holds(cond, {"aws:PrincipalTag/bucket": "company-wide"})
    assert holds(cond, {"aws:PrincipalTag/bucket": "yellow", "aws:PrincipalTag/team": "yellow"})
    assert not holds(cond, {"aws:PrincipalTag/bucket": "company-wide", "aws:PrincipalTag/team": "yellow"})


def test_variable_without_value_matches_nothing():
    assert not holds({"StringLike": {"aws:PrincipalTag/x": "${aws:PrincipalTag/absent}"}}, {"aws:PrincipalTag/x": ""})


def test_special_character_variables_are_literal():
    cond = {"StringLike": {"aws:PrincipalTag/note": "a${*}b${?}c${$}"}}
    assert holds(cond, {"aws:PrincipalTag/note": "a*b?c$"})
    assert not holds(cond, {"aws:PrincipalTag/note": "aXXbYc$"})


def test_variables_are_literal_text_in_2008_policies():
    cond = {"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}
    assert holds(cond, {"aws:PrincipalTag/owner": "${aws:username}"}, version="2008-10-17")
    assert not holds(cond, {"aws:PrincipalTag/owner": "Alice"}, version=None)


@pytest.mark.parametrize("operator", ["NumericEquals", "DateEquals"])
def test_variables_do_not_work_with_numeric_or_date_operators(operator):
    from keyfix.policy import Policy, PolicyError

    with pytest.raises(PolicyError):
        Policy.parse(policy_doc(stmt(condition={operator: {"aws:PrincipalTag/n": "${aws:username}"}})), "p")
