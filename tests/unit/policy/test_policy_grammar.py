"""Strict parsing: a malformed policy or grant is a PolicyError naming the place.

Grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
"""

import pytest
from kms_policy_fixtures import ALICE, V, enable_iam, policy_doc, stmt

from keyfix.policy import Grant, Policy, PolicyError, PolicySet


def place_of(doc, name="resource_policy"):
    with pytest.raises(PolicyError) as err:
        Policy.parse(doc, name)
    assert err.value.place in str(err.value)
    return err.value.place


def test_statement_may_be_a_single_object_or_a_list():
    single = Policy.parse({"Version": V, "Statement": enable_iam()}, "resource_policy")
    listed = Policy.parse(policy_doc(enable_iam()), "resource_policy")
    assert len(single.statements) == len(listed.statements) == 1
    assert single.statements[0].sid == listed.statements[0].sid == "Enable IAM policies"


def test_json_text_is_accepted_and_bad_json_named():
    assert Policy.parse('{"Statement": []}', "identity_policies[0]").statements == ()
    assert place_of('{"Statement": [}', "identity_policies[0]") == "identity_policies[0]"


@pytest.mark.parametrize(
    "doc, place",
    [
        ({"Version": V, "Statement": [], "Extra": 1}, "resource_policy.Extra"),
        ({"Version": "2020-01-01", "Statement": []}, "resource_policy.Version"),
        ({"Version": V}, "resource_policy"),
        ({"Version": V, "Statement": "Allow"}, "resource_policy.Statement"),
        ({"Version": V, "Id": 7, "Statement": []}, "resource_policy.Id"),
        (policy_doc(enable_iam(), {**enable_iam(), "Effect": "allow"}), "resource_policy.Statement[1].Effect"),
        (policy_doc(enable_iam(), {**enable_iam(), "Actions": "kms:*"}), "resource_policy.Statement[1].Actions"),
        (policy_doc({**enable_iam(), "Sid": 3}), "resource_policy.Statement[0].Sid"),
        (policy_doc({**enable_iam(), "NotAction": "kms:Decrypt"}), "resource_policy.Statement[0]"),
        (policy_doc({k: v for k, v in enable_iam().items() if k != "Resource"}), "resource_policy.Statement[0]"),
        (policy_doc({**enable_iam(), "Action": "Decrypt"}), "resource_policy.Statement[0].Action"),
        (policy_doc({**enable_iam(), "Action": []}), "resource_policy.Statement[0].Action"),
        (policy_doc({**enable_iam(), "Action": ["kms:Decrypt", 5]}), "resource_policy.Statement[0].Action"),
        (policy_doc({**enable_iam(), "Resource": "key/1234"}), "resource_policy.Statement[0].Resource"),
        (policy_doc({**enable_iam(), "Principal": {"IAM": "x"}}), "resource_policy.Statement[0].Principal.IAM"),
        (
            policy_doc({**enable_iam(), "Principal": {"AWS": "arn:aws:iam::111122223333:role/*"}}),
            "resource_policy.Statement[0].Principal.AWS",
        ),
        (policy_doc({**enable_iam(), "Principal": {"AWS": "bob"}}), "resource_policy.Statement[0].Principal.AWS"),
        (policy_doc({**enable_iam(), "Principal": "everyone"}), "resource_policy.Statement[0].Principal"),
        (policy_doc({**enable_iam(), "NotPrincipal": {"AWS": ALICE}}), "resource_policy.Statement[0]"),
        (policy_doc([1]), "resource_policy.Statement[0]"),
    ],
)
def test_malformed_policies_name_the_place(doc, place):
    assert place_of(doc) == place


@pytest.mark.parametrize(
    "condition, place",
    [
        ({"StringEquality": {"kms:ViaService": "x"}}, "Condition.StringEquality"),
        ({"ForSomeValues:StringEquals": {"kms:ViaService": "x"}}, "Condition.ForSomeValues:StringEquals"),
        ({"NullIfExists": {"kms:ViaService": "true"}}, "Condition.NullIfExists"),
        ({"Null": {"kms:ViaService": "maybe"}}, "Condition.Null.kms:ViaService"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "Condition.Bool.aws:SecureTransport"),
        ({"NumericLessThan": {"s3:max-keys": "ten"}}, "Condition.NumericLessThan.s3:max-keys"),
        ({"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}, "Condition.DateGreaterThan.aws:CurrentTime"),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/33"}}, "Condition.IpAddress.aws:SourceIp"),
        ({"BinaryEquals": {"aws:PrincipalTag/b": "not base64!"}}, "Condition.BinaryEquals.aws:PrincipalTag/b"),
        ({"StringEquals": {"ViaService": "x"}}, "Condition.StringEquals.ViaService"),
        ({"StringEquals": {"kms:ViaService": []}}, "Condition.StringEquals.kms:ViaService"),
        ({"StringEquals": {"kms:ViaService": {"a": "b"}}}, "Condition.StringEquals.kms:ViaService"),
        ({"StringEquals": {"kms:ViaService": None}}, "Condition.StringEquals.kms:ViaService"),
        ({"StringEquals": {"aws:PrincipalTag/x": "${aws:username"}}, "Condition.StringEquals.aws:PrincipalTag/x"),
        ({"StringEquals": {}}, "Condition.StringEquals"),
        ({"StringEquals": "kms:ViaService"}, "Condition.StringEquals"),
        ("kms:ViaService", "Condition"),
    ],
)
def test_malformed_conditions_name_the_place(condition, place):
    doc = policy_doc(stmt(condition=condition))
    assert place_of(doc, "identity_policies[0]") == f"identity_policies[0].Statement[0].{place}"


def test_operator_names_and_set_operators_are_read_case_insensitively():
    doc = policy_doc(stmt(condition={"forallvalues:stringequalsifexists": {"kms:GrantOperations": "Decrypt"}}))
    condition = Policy.parse(doc, "p").statements[0].conditions[0]
    assert (condition.base, condition.qualifier, condition.if_exists) == ("StringEquals", "ForAllValues", True)


@pytest.mark.parametrize(
    "kwargs, place",
    [
        ({"identity_policies": [policy_doc(stmt(principal="*"))]}, "identity_policies[0].Statement[0].Principal"),
        (
            {"permission_boundaries": [policy_doc(stmt(not_principal={"AWS": ALICE}))]},
            "permission_boundaries[0].Statement[0].NotPrincipal",
        ),
        ({"scps": [[policy_doc(stmt(principal="*"))]]}, "scps[0][0].Statement[0].Principal"),
        ({"rcps": [[policy_doc(stmt())]]}, "rcps[0][0].Statement[0].Principal"),
        ({"rcps": [[policy_doc(stmt(principal={"AWS": ALICE}))]]}, "rcps[0][0].Statement[0].Principal"),
        ({"resource_policy": policy_doc(stmt())}, "resource_policy.Statement[0]"),
    ],
)
def test_policy_types_restrict_principal_elements(kwargs, place):
    parsed = {}
    for key, value in kwargs.items():
        if key in ("scps", "rcps"):
            parsed[key] = [[Policy.parse(d, f"{key}[0][0]") for d in level] for level in value]
        elif key == "resource_policy":
            parsed[key] = Policy.parse(value, key)
        else:
            parsed[key] = [Policy.parse(d, f"{key}[{i}]") for i, d in enumerate(value)]
    parsed.setdefault("resource_policy", None)
    with pytest.raises(PolicyError) as err:
        PolicySet(**parsed)
    assert err.value.place == place


def test_rcp_with_principal_star_is_accepted():
    rcp = Policy.parse(policy_doc(stmt("Deny", "kms:*", "*", principal="*")), "rcps[0][0]")
    assert PolicySet(None, rcps=[[rcp]]).rcps == ((rcp,),)


@pytest.mark.parametrize(
    "entry, place",
    [
        ({"Operations": ["Decrypt"]}, "grants[0].GranteePrincipal"),
        ({"GranteePrincipal": ALICE}, "grants[0].Operations"),
        ({"GranteePrincipal": ALICE, "Operations": ["Decrypt", "ScheduleKeyDeletion"]}, "grants[0].Operations[1]"),
        ({"GranteePrincipal": ALICE, "Operations": ["Decrypt"], "Grantee": "x"}, "grants[0].Grantee"),
        (
            {"GranteePrincipal": ALICE, "Operations": ["Decrypt"], "Constraints": {"EncryptionContextLike": {}}},
            "grants[0].Constraints.EncryptionContextLike",
        ),
        (
            {
                "GranteePrincipal": ALICE,
                "Operations": ["Decrypt"],
                "Constraints": {"EncryptionContextEquals": {"a": 1}},
            },
            "grants[0].Constraints.EncryptionContextEquals",
        ),
        ({"GranteePrincipal": "nobody", "Operations": ["Decrypt"]}, "grants[0].GranteePrincipal"),
        ({"GranteePrincipal": ALICE, "Operations": ["Decrypt"], "GrantId": 5}, "grants[0].GrantId"),
    ],
)
def test_malformed_grants_name_the_place(entry, place):
    with pytest.raises(PolicyError) as err:
        Grant.from_aws(entry, "grants[0]")
    assert err.value.place == place


def test_a_full_list_grants_entry_is_read():
    # The ListGrants output in create-grant-overview.html.
    entry = {
        "Name": "",
        "IssuingAccount": "arn:aws:iam::111122223333:root",
        "GrantId": "abcde1237f76e4ba7987489ac329fbfba6ad343d6f7075dbd1ef191f0120514a",
        "Operations": ["Decrypt"],
        "GranteePrincipal": "arn:aws:iam::111122223333:user/exampleUser",
        "Constraints": {"EncryptionContextEquals": {"Department": "IT"}},
        "CreationDate": 1568565290.0,
        "KeyId": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "RetiringPrincipal": "arn:aws:iam::111122223333:role/adminRole",
    }
    grant = Grant.from_aws(entry)
    assert grant.operations == frozenset({"Decrypt"})
    assert grant.encryption_context_equals == (("department", "IT"),)
