"""Unknown is not a denial: context keys and policy layers keyfix could not read.

The organisation-shared key is the example of the aws:PrincipalOrgID page
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid:
a resource policy with Principal "*" limited by StringEquals aws:PrincipalOrgID), as a key
policy. What AWS does with a key absent from the request (which an unknown key may be):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
and the IfExists / Null sections of
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html.
"""

from __future__ import annotations

import copy

import pytest
from kms_policy_fixtures import ALICE, KEY, KEY_ACCOUNT, OTHER_ACCOUNT, enable_iam, policy_doc, slr_session, stmt

from keyfix.policy import PolicyError
from keyfix.policy.simulate import decide, load

ORG = "o-a1b2c3d4e5"
BOB = f"arn:aws:iam::{OTHER_ACCOUNT}:user/Bob"
ORG_SHARE = {
    "Sid": "AllowOrganization",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
    "Resource": "*",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
}
BOB_IDENTITY = policy_doc(stmt("Allow", ["kms:Decrypt", "kms:DescribeKey"], "*"))


def _doc(principal=BOB, action="kms:Decrypt", context=None, unknown=None, **rest):
    request = {"principal": principal, "action": action, "resource": KEY, "context": context or {}}
    if unknown is not None:
        request["unknown_keys"] = unknown
    return {"request": request, **rest}


def _org_doc(**kw):
    return _doc(resource_policy=policy_doc(enable_iam(), ORG_SHARE), identity_policies=[BOB_IDENTITY], **kw)


# --- the organisation-shared key ----------------------------------------------------------


def test_org_shared_key_with_an_unknown_org_is_undetermined_not_denied():
    out = decide(_org_doc(unknown=["aws:PrincipalOrgID"]))
    assert out["decision"] == "Undetermined"
    assert out["possible"] == ["Allowed", "ImplicitlyDenied"]
    assert out["undetermined_by"] == ["aws:PrincipalOrgID"]
    assert out["decisive"] == [{"policy": "resource_policy", "sid": "AllowOrganization", "statement": 1}]
    assert out["missing"] == ["resource_policy"]  # what would be missing if the org does not match


@pytest.mark.parametrize(
    "context, expected",
    [
        ({"aws:PrincipalOrgID": ORG}, "Allowed"),
        ({"aws:PrincipalOrgID": "o-0000000000"}, "ImplicitlyDenied"),
        ({}, "ImplicitlyDenied"),  # not in an organisation: the key is absent
    ],
)
def test_each_resolution_of_the_org_is_one_of_the_possible_decisions(context, expected):
    known = decide(_org_doc(context=context))
    assert known["decision"] == expected
    assert expected in decide(_org_doc(unknown=["aws:PrincipalOrgID"]))["possible"]


def test_without_unknowns_the_org_shared_key_still_reads_an_absent_key_as_absent():
    # Nothing declared unknown: the three existing values, unchanged output shape.
    assert decide(_org_doc()) == {
        "schema": "keyfix.decision/1",
        "decision": "ImplicitlyDenied",
        "decisive": [{"policy": "identity_policies[0]", "sid": None, "statement": 0}],
        "missing": ["resource_policy"],
    }


def test_an_explicit_deny_elsewhere_decides_whatever_the_org():
    deny = stmt("Deny", "kms:Decrypt", "*", principal={"AWS": BOB})
    doc = _doc(resource_policy=policy_doc(enable_iam(), ORG_SHARE, deny), identity_policies=[BOB_IDENTITY],
               unknown=["aws:PrincipalOrgID"])
    out = decide(doc)
    assert out["decision"] == "ExplicitlyDenied"
    assert "possible" not in out and "undetermined_by" not in out


def test_an_allow_that_holds_either_way_stays_allowed():
    # Same account: root delegation plus Alice's identity policy allow whatever the org.
    doc = _doc(principal=ALICE, resource_policy=policy_doc(enable_iam(), ORG_SHARE),
               identity_policies=[policy_doc(stmt("Allow", "kms:Decrypt", "*"))], unknown=["aws:PrincipalOrgID"])
    out = decide(doc)
    assert out["decision"] == "Allowed"
    assert out["decisive"] == [
        {"policy": "resource_policy", "sid": "Enable IAM policies", "statement": 0},
        {"policy": "identity_policies[0]", "sid": None, "statement": 0},
    ]


def test_a_deny_outside_the_organisation_makes_an_allowed_decision_undetermined():
    # The usual guard: deny anyone outside the organisation (StringNotEquals on the org id).
    guard = stmt("Deny", "kms:*", "*", principal="*", condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}})
    doc = _doc(principal=ALICE, resource_policy=policy_doc(enable_iam(), guard),
               identity_policies=[policy_doc(stmt("Allow", "kms:Decrypt", "*"))], unknown=["aws:PrincipalOrgID"])
    out = decide(doc)
    assert (out["decision"], out["possible"], out["undetermined_by"]) == (
        "Undetermined", ["Allowed", "ExplicitlyDenied"], ["aws:PrincipalOrgID"])
    assert decide({**doc, "request": {**doc["request"], "unknown_keys": [], "context": {"aws:PrincipalOrgID": ORG}}})[
        "decision"] == "Allowed"


def test_unknown_keys_no_policy_reads_change_nothing():
    doc = _org_doc(context={"aws:PrincipalOrgID": ORG})
    with_unknown = copy.deepcopy(doc)
    with_unknown["request"]["unknown_keys"] = ["aws:SourceVpce", "aws:ResourceTag/", "aws:PrincipalTag/"]
    assert decide(with_unknown) == decide(doc)


def test_only_the_keys_that_can_change_the_outcome_are_named():
    # Two maybe-allows on different keys, but only one can open the (cross-account) path:
    # the identity side is certain, and the Via-service statement names another account.
    other = stmt("Allow", "kms:Decrypt", "*", principal={"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/Nobody"},
                 condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})
    doc = _doc(resource_policy=policy_doc(enable_iam(), ORG_SHARE, other), identity_policies=[BOB_IDENTITY],
               unknown=["aws:PrincipalOrgID", "aws:SourceVpce"])
    out = decide(doc)
    assert out["undetermined_by"] == ["aws:PrincipalOrgID"]


# --- prefixes, variables, operators ----------------------------------------------------------


def test_a_prefix_makes_every_tag_key_unknown_and_names_the_tag_read():
    tagged = stmt("Allow", "kms:Decrypt", "*", principal="*",
                  condition={"StringEquals": {"aws:PrincipalTag/team": "storage", "aws:PrincipalAccount": OTHER_ACCOUNT}})
    out = decide(_doc(resource_policy=policy_doc(enable_iam(), tagged), identity_policies=[BOB_IDENTITY],
                      unknown=["aws:PrincipalTag/"]))
    assert (out["decision"], out["undetermined_by"]) == ("Undetermined", ["aws:PrincipalTag/team"])


def test_a_condition_false_on_a_known_key_is_false_whatever_the_unknown_one():
    # Kleene AND: StringEquals on a known key that fails decides the statement.
    tagged = stmt("Allow", "kms:Decrypt", "*", principal="*",
                  condition={"StringEquals": {"aws:PrincipalTag/team": "storage", "aws:PrincipalAccount": "999999999999"}})
    out = decide(_doc(resource_policy=policy_doc(enable_iam(), tagged), identity_policies=[BOB_IDENTITY],
                      unknown=["aws:PrincipalTag/"]))
    assert out["decision"] == "ImplicitlyDenied"


def test_a_variable_naming_an_unknown_key_makes_its_condition_unknown():
    # ABAC: the caller's team tag must equal the key's: both unknown here.
    abac = stmt("Allow", "kms:Decrypt", "*", principal="*",
                condition={"StringEquals": {"aws:PrincipalAccount": OTHER_ACCOUNT,
                                            "kms:ViaService": "${aws:PrincipalTag/viaservice}"}})
    out = decide(_doc(resource_policy=policy_doc(enable_iam(), abac), identity_policies=[BOB_IDENTITY],
                      context={"kms:ViaService": "ec2.us-west-2.amazonaws.com"}, unknown=["aws:PrincipalTag/"]))
    assert (out["decision"], out["undetermined_by"]) == ("Undetermined", ["aws:PrincipalTag/viaservice"])


def test_a_resource_variable_naming_an_unknown_key_makes_the_statement_maybe():
    scoped = {"Effect": "Allow", "Action": "kms:Decrypt",
              "Resource": f"arn:aws:kms:us-west-2:{KEY_ACCOUNT}:key/${{aws:PrincipalTag/key-id}}"}
    out = decide(_doc(principal=ALICE, resource_policy=policy_doc(enable_iam()),
                      identity_policies=[policy_doc(scoped)], unknown=["aws:PrincipalTag/"]))
    assert (out["decision"], out["undetermined_by"]) == ("Undetermined", ["aws:PrincipalTag/key-id"])


OPERATORS = [
    {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    {"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
    {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
    {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
    {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    {"Null": {"aws:PrincipalOrgID": "true"}},
    {"Null": {"aws:PrincipalOrgID": "false"}},
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/r-ab12/*"}},
    {"ForAllValues:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/r-ab12/*"}},
]
RESOLUTIONS = [{}, {"aws:PrincipalOrgID": ORG, "aws:PrincipalOrgPaths": [f"{ORG}/r-ab12/ou-1/"]},
               {"aws:PrincipalOrgID": "o-zzzzzzzzzz", "aws:PrincipalOrgPaths": ["o-zzzzzzzzzz/r-9/"]}]


@pytest.mark.parametrize("condition", OPERATORS, ids=lambda c: next(iter(c)))
@pytest.mark.parametrize("effect", ["Allow", "Deny"])
def test_every_operator_on_an_unknown_key_covers_each_resolution(condition, effect):
    # For every operator (IfExists, Null, set operators, negated ones), the three-valued
    # decision must cover what each concrete resolution decides; absent included.
    key_policy = policy_doc(enable_iam(), stmt(effect, "kms:Decrypt", "*", principal="*", condition=condition))
    identity = [policy_doc(stmt("Allow", "kms:Decrypt", "*"))]
    concrete = {decide(_doc(principal=ALICE, context=ctx, resource_policy=key_policy, identity_policies=identity))["decision"]
                for ctx in RESOLUTIONS}
    out = decide(_doc(principal=ALICE, resource_policy=key_policy, identity_policies=identity,
                      unknown=["aws:PrincipalOrgID", "aws:PrincipalOrgPaths"]))
    if out["decision"] == "Undetermined":
        assert concrete <= set(out["possible"])
    else:
        assert concrete == {out["decision"]}
    if len(concrete) > 1:
        assert out["decision"] == "Undetermined"


# --- unknown layers -------------------------------------------------------------------------


def _alice_allowed(**rest):
    return _doc(principal=ALICE, resource_policy=policy_doc(enable_iam()),
                identity_policies=[policy_doc(stmt("Allow", "kms:Decrypt", "*"))], **rest)


def test_unknown_scps_may_allow_and_may_deny():
    out = decide(_alice_allowed(unknown_policies=["scps"]))
    assert out["decision"] == "Undetermined"
    assert out["possible"] == ["Allowed", "ImplicitlyDenied", "ExplicitlyDenied"]
    assert out["undetermined_by"] == ["scps"]


def test_unknown_scps_do_not_matter_to_a_service_linked_role():
    slr_allow = stmt("Allow", "kms:Decrypt", "*", principal={"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"})
    doc = _doc(principal=slr_session(KEY_ACCOUNT), resource_policy=policy_doc(slr_allow), unknown_policies=["scps"])
    assert decide(doc)["decision"] == "Allowed"


@pytest.mark.parametrize("layer", ["session_policy", "permission_boundaries"])
def test_unknown_session_policy_or_boundary_of_a_role_session(layer):
    session = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/s1"
    doc = _doc(principal=session, resource_policy=policy_doc(enable_iam()),
               identity_policies=[policy_doc(stmt("Allow", "kms:Decrypt", "*"))], unknown_policies=[layer])
    out = decide(doc)
    assert out["decision"] == "Undetermined" and out["undetermined_by"] == [layer]
    # For a user, a session policy does not apply: unknown or not, nothing changes.
    if layer == "session_policy":
        assert decide(_alice_allowed(unknown_policies=[layer]))["decision"] == "Allowed"


def test_an_unknown_boundary_may_make_a_notprincipal_deny_apply():
    # "The NotPrincipal element with a Deny effect will always deny any IAM principal that has
    # a permissions boundary policy attached" (access_policies_boundaries.html).
    deny = {"Effect": "Deny", "NotPrincipal": {"AWS": [ALICE, f"arn:aws:iam::{KEY_ACCOUNT}:root"]},
            "Action": "kms:*", "Resource": "*"}
    doc = _doc(principal=ALICE, resource_policy=policy_doc(enable_iam(), deny),
               identity_policies=[policy_doc(stmt("Allow", "kms:Decrypt", "*"))], unknown_policies=["permission_boundaries"])
    out = decide(doc)
    assert "ExplicitlyDenied" in out["possible"] and "Allowed" in out["possible"]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc, place",
    [
        (_org_doc(context={"aws:PrincipalOrgID": ORG}, unknown=["aws:PrincipalOrgID"]), "request.context.aws:PrincipalOrgID"),
        (_org_doc(context={"aws:PrincipalTag/team": "x"}, unknown=["aws:PrincipalTag/"]), "request.context.aws:PrincipalTag/team"),
        (_org_doc(unknown="aws:PrincipalOrgID"), "request.unknown_keys"),
        (_org_doc(unknown=["PrincipalOrgID"]), "request.unknown_keys[0]"),
        (_org_doc(unknown=[7]), "request.unknown_keys[0]"),
        ({**_org_doc(), "unknown_policies": ["identity_policies"]}, "unknown_policies[0]"),
        ({**_org_doc(), "unknown_policies": "scps"}, "unknown_policies"),
        ({**_org_doc(), "scps": [[]], "unknown_policies": ["scps"]}, "unknown_policies[0]"),
    ],
)
def test_bad_unknowns_are_refused_naming_the_place(doc, place):
    with pytest.raises(PolicyError) as err:
        load(doc)
        decide(doc)
    assert err.value.place == place
