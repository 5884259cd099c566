"""What a decision reports: decisive statements, missing layers, sentences, JSON."""

from kms_policy_fixtures import (
    ALICE,
    FULL_ACCESS,
    KEY,
    KEY_ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_KEY,
    a1_statements,
    decide,
    enable_iam,
    policy_doc,
    slr_session,
    stmt,
)

from keyfix.policy import Decision, DecisiveRef

DELEGATING = policy_doc(enable_iam())
USE_KEY = policy_doc(stmt("Allow", "kms:Decrypt", KEY, sid="UseKey"))


def test_json_shape_for_statements_and_grants():
    d = Decision("Allowed", [DecisiveRef("resource_policy", "S", 0), DecisiveRef("grants[0]", grant_id="g-1")], [])
    assert d.to_json() == {
        "schema": "keyfix.decision/1",
        "decision": "Allowed",
        "decisive": [
            {"policy": "resource_policy", "sid": "S", "statement": 0},
            {"policy": "grants[0]", "grant_id": "g-1"},
        ],
        "missing": [],
    }


def test_statement_without_sid_is_referenced_by_index():
    key_policy = policy_doc(enable_iam(), stmt("Deny", "kms:Decrypt", principal="*"))
    d = decide(ALICE, "kms:Decrypt", key_policy=key_policy, identity=(USE_KEY,))
    assert d.to_json()["decisive"] == [{"policy": "resource_policy", "sid": None, "statement": 1}]


def test_single_object_statement_is_statement_zero():
    key_policy = {
        "Version": "2012-10-17",
        "Statement": stmt("Allow", "kms:Decrypt", principal={"AWS": ALICE}, sid="Only"),
    }
    d = decide(ALICE, "kms:Decrypt", key_policy=key_policy)
    assert d.to_json()["decisive"] == [{"policy": "resource_policy", "sid": "Only", "statement": 0}]


def test_all_matching_denies_are_decisive():
    key_policy = policy_doc(
        enable_iam(), stmt("Deny", "kms:*", principal="*", sid="A"), stmt("Deny", "kms:Decrypt", principal="*", sid="B")
    )
    identity = policy_doc(stmt("Deny", "kms:Decrypt", "*", sid="C"))
    d = decide(ALICE, "kms:Decrypt", key_policy=key_policy, identity=(identity,))
    assert [(r.policy, r.sid) for r in d.decisive] == [
        ("resource_policy", "A"),
        ("resource_policy", "B"),
        ("identity_policies[0]", "C"),
    ]
    assert d.missing == []
    assert any("explicit Deny" in line for line in d.explanation)


def test_nearest_path_prefers_a_key_policy_that_already_delegates():
    # Boundary fails on the delegation path; naming the user in the key policy would
    # also work, but the key policy already opens the way for the account.
    d = decide(
        ALICE,
        "kms:Decrypt",
        key_policy=DELEGATING,
        identity=(USE_KEY,),
        boundaries=(policy_doc(stmt("Allow", "kms:Encrypt", "*")),),
    )
    assert d.missing == ["permission_boundary"]
    assert {r.sid for r in d.decisive} == {"Enable IAM policies", "UseKey"}


def test_nearest_path_without_any_allow_is_the_key_policy():
    d = decide(
        ALICE,
        "kms:Decrypt",
        key_policy=policy_doc(stmt("Allow", "kms:*", principal={"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:user/Bob"})),
    )
    assert d.missing == ["resource_policy"]
    assert d.decisive == []
    assert any("No key policy statement allows" in line for line in d.explanation)


def test_denial_explanations_name_the_layers():
    d = decide(
        ALICE, "kms:Decrypt", key_policy=DELEGATING, scps=[[FULL_ACCESS], [policy_doc(stmt("Allow", "s3:*", "*"))]]
    )
    text = " ".join(d.explanation)
    assert "No identity policy" in text and "organisation level 1" in text
    assert d.missing == ["identity_policy", "scp"]


def test_cross_account_explanations():
    d = decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key=OTHER_KEY, key_policy=policy_doc(enable_iam(OTHER_ACCOUNT)))
    assert d.missing == ["grant"]
    assert any("only a grant" in line for line in d.explanation)


def test_allowed_decision_has_no_missing_and_explains_the_path():
    d = decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=policy_doc(enable_iam(), *a1_statements()))
    assert d.allowed and d.missing == []
    assert any("role of" in line for line in d.explanation)
