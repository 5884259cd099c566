"""Evaluation order: explicit deny, organisation guardrails, boundaries, sessions.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
"""

import pytest
from kms_policy_fixtures import (
    ALICE,
    FULL_ACCESS,
    KEY,
    KEY_ACCOUNT,
    OTHER_ACCOUNT,
    RCP_FULL_ACCESS,
    a1_statements,
    decide,
    enable_iam,
    policy_doc,
    root,
    slr_session,
    stmt,
)

ROLE = f"arn:aws:iam::{KEY_ACCOUNT}:role/App"
SESSION = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/worker-1"
FEDERATED = f"arn:aws:sts::{KEY_ACCOUNT}:federated-user/Carlos"
USE_KEY = policy_doc(stmt("Allow", "kms:Decrypt", KEY, sid="UseKey"))
DENY_DECRYPT = policy_doc(stmt("Deny", "kms:Decrypt", "*", sid="NoDecrypt"))
ONLY_ENCRYPT = policy_doc(stmt("Allow", "kms:Encrypt", "*"))
DELEGATING = policy_doc(enable_iam())


def _allowed_setup(**overrides):
    layers = {"key_policy": DELEGATING, "identity": (USE_KEY,)}
    layers.update(overrides)
    return layers


# --- explicit deny anywhere wins ----------------------------------------------------


@pytest.mark.parametrize(
    "layer, value, policy_name",
    [
        ("identity", (USE_KEY, DENY_DECRYPT), "identity_policies[1]"),
        (
            "boundaries",
            (policy_doc(stmt("Allow", "*", "*"), stmt("Deny", "kms:Decrypt", "*", sid="NoDecrypt")),),
            "permission_boundaries[0]",
        ),
        (
            "scps",
            [[policy_doc(stmt("Allow", "*", "*"), stmt("Deny", "kms:Decrypt", "*", sid="NoDecrypt"))]],
            "scps[0][0]",
        ),
        (
            "rcps",
            [
                [
                    policy_doc(
                        stmt("Allow", "*", "*", principal="*"),
                        stmt("Deny", "kms:Decrypt", "*", principal="*", sid="NoDecrypt"),
                    )
                ]
            ],
            "rcps[0][0]",
        ),
        (
            "key_policy",
            policy_doc(enable_iam(), stmt("Deny", "kms:Decrypt", principal="*", sid="NoDecrypt")),
            "resource_policy",
        ),
    ],
)
def test_an_explicit_deny_in_any_layer_decides(layer, value, policy_name):
    assert decide(ALICE, "kms:Decrypt", **_allowed_setup()).decision == "Allowed"
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(**{layer: value}))
    assert d.decision == "ExplicitlyDenied"
    assert d.missing == []
    assert [(r.policy, r.sid) for r in d.decisive] == [(policy_name, "NoDecrypt")]


def test_a_deny_in_the_session_policy_decides():
    d = decide(
        SESSION,
        "kms:Decrypt",
        **_allowed_setup(session=policy_doc(stmt("Allow", "*", "*"), stmt("Deny", "kms:Decrypt", "*"))),
    )
    assert d.decision == "ExplicitlyDenied"


def test_a_deny_that_does_not_match_the_action_does_not_decide():
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(identity=(USE_KEY, policy_doc(stmt("Deny", "kms:Encrypt", "*")))))
    assert d.decision == "Allowed"


# --- SCPs and RCPs: every level must allow ------------------------------------------


def test_every_scp_level_must_allow():
    ok = decide(ALICE, "kms:Decrypt", **_allowed_setup(scps=[[FULL_ACCESS], [FULL_ACCESS]]))
    assert ok.decision == "Allowed"
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(scps=[[FULL_ACCESS], [ONLY_ENCRYPT]]))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["scp"])


def test_an_empty_scp_level_allows_nothing():
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(scps=[[FULL_ACCESS], []]))
    assert d.missing == ["scp"]


def test_rcp_level_without_allow_denies():
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(rcps=[[RCP_FULL_ACCESS], []]))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["rcp"])


def test_guardrail_and_path_failures_are_reported_together():
    d = decide(ALICE, "kms:Decrypt", key_policy=DELEGATING, scps=[[ONLY_ENCRYPT]])
    assert d.missing == ["identity_policy", "scp"]


def test_scps_do_not_restrict_service_linked_roles():
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html
    key_policy = policy_doc(enable_iam(), *a1_statements())
    deny_all = policy_doc(stmt("Deny", "*", "*"))
    d = decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=key_policy, scps=[[deny_all]])
    assert d.decision == "Allowed"
    assert decide(ALICE, "kms:Decrypt", **_allowed_setup(scps=[[deny_all]])).decision == "ExplicitlyDenied"


def test_rcps_restrict_aws_service_principals_but_not_service_linked_roles():
    # "RCPs impact the effective permissions of principals ... regardless of whether the
    # principals belong to the same organizations or not ... The exception is when
    # principals are service-linked roles"
    # (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html).
    service_key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"Service": "cloudtrail.amazonaws.com"}))
    rcp_deny = policy_doc(stmt("Deny", "kms:*", "*", principal="*"))
    rcps = [[RCP_FULL_ACCESS, rcp_deny]]
    assert decide("cloudtrail.amazonaws.com", "kms:Decrypt", key_policy=service_key_policy).decision == "Allowed"
    assert decide("cloudtrail.amazonaws.com", "kms:Decrypt", key_policy=service_key_policy, rcps=rcps).decision == (
        "ExplicitlyDenied"
    )
    slr_key_policy = policy_doc(enable_iam(), *a1_statements())
    assert decide(slr_session(KEY_ACCOUNT), "kms:Decrypt", key_policy=slr_key_policy, rcps=rcps).decision == "Allowed"
    assert decide(ALICE, "kms:Decrypt", **_allowed_setup(rcps=rcps)).decision == "ExplicitlyDenied"


def test_rcps_do_not_affect_retire_grant():
    # "RCPs do not impact the kms:RetireGrant permission" (same page).
    key_policy = policy_doc(stmt("Allow", "kms:RetireGrant", principal={"AWS": ALICE}))
    rcps = [[RCP_FULL_ACCESS, policy_doc(stmt("Deny", "kms:*", "*", principal="*"))]]
    assert decide(ALICE, "kms:RetireGrant", key_policy=key_policy, rcps=rcps).decision == "Allowed"
    assert decide(
        ALICE, "kms:RetireGrant", key_policy=key_policy, scps=[[policy_doc(stmt("Deny", "kms:*", "*"))]]
    ).decision == ("ExplicitlyDenied")


def test_service_linked_role_denied_an_iam_only_action_is_missing_its_identity_policy():
    # kms:ListKeys is decided by IAM policies alone; the SLR's policy is AWS's (found by
    # the differential run: this used to raise).
    d = decide(slr_session(KEY_ACCOUNT), "kms:ListKeys", key="*", resource_account=KEY_ACCOUNT)
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["identity_policy"])


# --- permissions boundaries intersect identity permissions ----------------------------


def test_boundary_limits_identity_permissions():
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(boundaries=(ONLY_ENCRYPT,)))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["permission_boundary"])
    assert (
        decide(ALICE, "kms:Decrypt", **_allowed_setup(boundaries=(policy_doc(stmt("Allow", "kms:*", "*")),))).decision
        == "Allowed"
    )


def test_a_notprincipal_deny_denies_every_principal_with_a_boundary():
    # "The NotPrincipal element with a Deny effect will always deny any IAM principal that
    # has a permissions boundary policy attached, regardless of the values specified in the
    # NotPrincipal element." (access_policies_boundaries.html, reference_policies_elements_notprincipal.html)
    key_policy = policy_doc(
        enable_iam(), stmt("Deny", "kms:*", not_principal={"AWS": [ALICE, SESSION, ROLE]}, sid="OnlyThese")
    )
    allow_kms = policy_doc(stmt("Allow", "kms:*", "*"))
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy, identity=(allow_kms,)).decision == "Allowed"
    for caller in (ALICE, SESSION):
        d = decide(caller, "kms:Decrypt", key_policy=key_policy, identity=(allow_kms,), boundaries=(allow_kms,))
        assert (d.decision, [r.sid for r in d.decisive]) == ("ExplicitlyDenied", ["OnlyThese"])
    # A NotPrincipal Allow is not affected.
    allow_others = policy_doc(stmt("Allow", "kms:Decrypt", not_principal={"AWS": root(OTHER_ACCOUNT)}))
    assert decide(ALICE, "kms:Decrypt", key_policy=allow_others, boundaries=(allow_kms,)).decision == "Allowed"


def test_every_boundary_must_allow():
    allow = policy_doc(stmt("Allow", "kms:*", "*"))
    assert decide(ALICE, "kms:Decrypt", **_allowed_setup(boundaries=(allow, ONLY_ENCRYPT))).missing == [
        "permission_boundary"
    ]


def test_key_policy_naming_the_user_is_not_limited_by_the_boundary():
    # "resource-based policies that grant permissions to an IAM user ARN ... are not
    # limited by an implicit deny in an identity-based policy or permissions boundary"
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": ALICE}))
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy, boundaries=(ONLY_ENCRYPT,)).decision == "Allowed"


def test_key_policy_naming_the_role_is_limited_by_the_boundary_but_not_identity():
    # "Resource-based policies that grant permissions to an IAM role ARN are limited by
    # an implicit deny in a permissions boundary or session policy."
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": ROLE}))
    assert decide(SESSION, "kms:Decrypt", key_policy=key_policy).decision == "Allowed"
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, boundaries=(ONLY_ENCRYPT,))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["permission_boundary"])
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, session=ONLY_ENCRYPT)
    assert d.missing == ["session_policy"]


def test_key_policy_naming_the_session_is_not_limited_by_boundary_or_session_policy():
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": SESSION}))
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, boundaries=(ONLY_ENCRYPT,), session=ONLY_ENCRYPT)
    assert d.decision == "Allowed"
    other = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/worker-2"
    assert decide(other, "kms:Decrypt", key_policy=key_policy).decision == "ImplicitlyDenied"


STAR_IN_ACCOUNT = policy_doc(
    stmt("Allow", "kms:Decrypt", principal="*", condition={"StringEquals": {"kms:CallerAccount": KEY_ACCOUNT}})
)


def test_principal_star_in_the_same_account_needs_no_identity_policy():
    # "For IAM users and role principals within your account, no other permissions are required."
    assert decide(ALICE, "kms:Decrypt", key_policy=STAR_IN_ACCOUNT).decision == "Allowed"
    assert decide(SESSION, "kms:Decrypt", key_policy=STAR_IN_ACCOUNT).decision == "Allowed"


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_principal_star_is_limited_by_the_session_policy_and_the_role_boundary(principal):
    # Only a resource policy naming the session's ARN "grant[s] permissions directly to the
    # session", which then is "not limited by an implicit deny in an identity-based policy,
    # a permissions boundary, or session policy"; one naming the role is limited by both
    # (access_policies.html#policies_session, reference_policies_evaluation-logic.html).
    # "*" does not name the session: it is limited as the role ARN is (project decision).
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal=principal))
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, session=ONLY_ENCRYPT)
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["session_policy"])
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, boundaries=(ONLY_ENCRYPT,))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["permission_boundary"])
    allow_kms = policy_doc(stmt("Allow", "kms:*", "*"))
    d = decide(SESSION, "kms:Decrypt", key_policy=key_policy, session=allow_kms, boundaries=(allow_kms,))
    assert d.decision == "Allowed"
    # A federated user session: limited by its session policy and boundary too.
    assert decide(FEDERATED, "kms:Decrypt", key_policy=key_policy, session=ONLY_ENCRYPT).missing == ["session_policy"]
    assert decide(FEDERATED, "kms:Decrypt", key_policy=key_policy, session=allow_kms).decision == "Allowed"
    # An IAM user (no session) stays allowed within its boundary.
    assert decide(ALICE, "kms:Decrypt", key_policy=key_policy, boundaries=(ONLY_ENCRYPT,)).decision == "Allowed"


# --- session policies ----------------------------------------------------------------


def test_session_policy_intersects_the_role_identity_policy():
    assert (
        decide(SESSION, "kms:Decrypt", **_allowed_setup(session=policy_doc(stmt("Allow", "kms:*", "*")))).decision
        == "Allowed"
    )
    d = decide(SESSION, "kms:Decrypt", **_allowed_setup(session=ONLY_ENCRYPT))
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["session_policy"])


def test_federated_user_without_session_policy_is_denied_on_the_identity_path():
    # "If there is no session policy ... If the principal is a role session, then the request
    # is Allowed. Otherwise, the request is implicitly denied."
    d = decide(FEDERATED, "kms:Decrypt", **_allowed_setup())
    assert d.missing == ["session_policy"]
    assert (
        decide(FEDERATED, "kms:Decrypt", **_allowed_setup(session=policy_doc(stmt("Allow", "kms:*", "*")))).decision
        == "Allowed"
    )


def test_key_policy_naming_the_federated_user_grants_the_session_directly():
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": FEDERATED}))
    assert decide(FEDERATED, "kms:Decrypt", key_policy=key_policy).decision == "Allowed"


CARLOS = f"arn:aws:iam::{KEY_ACCOUNT}:user/Carlos"


def test_key_policy_naming_the_iam_user_covers_its_federated_sessions_within_the_session_policy():
    # "If a resource-based policy grants permission to the ARN of the IAM user who federated,
    # then requests made by the federated user during the session are limited by an implicit
    # deny in a permission boundary or session policy" (reference_policies_evaluation-logic.html).
    key_policy = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": CARLOS}))
    allow_kms = policy_doc(stmt("Allow", "kms:*", "*"))
    d = decide(FEDERATED, "kms:Decrypt", key_policy=key_policy, session=allow_kms)
    assert d.decision == "Allowed"
    assert [r.policy for r in d.decisive] == ["resource_policy", "session_policy"]
    assert decide(FEDERATED, "kms:Decrypt", key_policy=key_policy, session=ONLY_ENCRYPT).missing == ["session_policy"]
    d = decide(FEDERATED, "kms:Decrypt", key_policy=key_policy, session=allow_kms, boundaries=(ONLY_ENCRYPT,))
    assert d.missing == ["permission_boundary"]
    # Without a session policy a federated session has no permissions but those of a
    # resource policy naming the session itself (API_GetFederationToken.html).
    assert decide(FEDERATED, "kms:Decrypt", key_policy=key_policy).missing == ["session_policy"]
    # Another user's ARN does not cover the session.
    other = policy_doc(stmt("Allow", "kms:Decrypt", principal={"AWS": ALICE}))
    assert decide(FEDERATED, "kms:Decrypt", key_policy=other, session=allow_kms).missing == ["resource_policy"]


def test_a_deny_naming_the_iam_user_applies_to_its_federated_sessions():
    key_policy = policy_doc(
        stmt("Allow", "kms:Decrypt", principal={"AWS": FEDERATED}),
        stmt("Deny", "kms:Decrypt", principal={"AWS": CARLOS}, sid="NoCarlos"),
    )
    d = decide(FEDERATED, "kms:Decrypt", key_policy=key_policy)
    assert (d.decision, [r.sid for r in d.decisive]) == ("ExplicitlyDenied", ["NoCarlos"])


def test_a_grant_to_the_iam_user_does_not_cover_its_federated_sessions():
    grant = {"GrantId": "g-1", "GranteePrincipal": CARLOS, "Operations": ["Decrypt"]}
    assert decide(FEDERATED, "kms:Decrypt", grants=(grant,)).decision == "ImplicitlyDenied"
    assert decide(CARLOS, "kms:Decrypt", grants=(grant,)).decision == "Allowed"


def test_session_policy_does_not_apply_to_a_user():
    d = decide(ALICE, "kms:Decrypt", **_allowed_setup(session=ONLY_ENCRYPT))
    assert d.decision == "Allowed"
    assert any("session policy was ignored" in line for line in d.explanation)


# --- root user -------------------------------------------------------------------------


def test_root_user_needs_the_key_policy_to_name_the_account():
    # "No AWS principal, including the account root user ... has any permissions to a KMS
    # key unless they are explicitly allowed ... in a key policy" (key-policies.html).
    root_user = f"arn:aws:iam::{KEY_ACCOUNT}:root"
    assert decide(root_user, "kms:ScheduleKeyDeletion", key_policy=DELEGATING).decision == "Allowed"
    only_alice = policy_doc(stmt("Allow", "kms:*", principal={"AWS": ALICE}))
    assert decide(root_user, "kms:ScheduleKeyDeletion", key_policy=only_alice).missing == ["resource_policy"]


# --- IAM-only actions --------------------------------------------------------------------


def test_iam_only_actions_are_decided_by_identity_policies():
    # kms:CreateKey is an "IAM policy" permission (kms-api-permissions-reference.html).
    allow = policy_doc(stmt("Allow", "kms:CreateKey", "*"))
    assert (
        decide(ALICE, "kms:CreateKey", key="*", resource_account=KEY_ACCOUNT, identity=(allow,)).decision == "Allowed"
    )
    d = decide(ALICE, "kms:CreateKey", key="*", resource_account=KEY_ACCOUNT, key_policy=DELEGATING)
    assert (d.decision, d.missing) == ("ImplicitlyDenied", ["identity_policy"])
