"""Properties of the evaluation that hold for every policy set (hypothesis).

- Adding an Allow never turns Allowed into a denial: allows only open paths; denials
  come from Deny statements or from missing allows
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html).
- Adding an explicit Deny never turns a denial into Allowed ("An explicit deny in any
  policy overrides any allows").
- Statement and policy order does not matter: AWS evaluates all applicable policies.
"""

from __future__ import annotations

import copy
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kms_policy_fixtures import ALICE, KEY, KEY_ACCOUNT, OTHER_ACCOUNT, root, slr, slr_session

from keyfix.policy.simulate import decide

ROLE = f"arn:aws:iam::{KEY_ACCOUNT}:role/App"
SESSION = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/App/s1"
OUTSIDER = f"arn:aws:iam::{OTHER_ACCOUNT}:user/Bob"
CALLERS = [
    ALICE,
    SESSION,
    slr_session(KEY_ACCOUNT),
    OUTSIDER,
    root(KEY_ACCOUNT),
    f"arn:aws:sts::{KEY_ACCOUNT}:federated-user/Carlos",
    "ec2.amazonaws.com",
    slr_session(OTHER_ACCOUNT),
]
ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:CreateGrant", "kms:DescribeKey", "kms:ScheduleKeyDeletion"]

action_element = st.sampled_from(
    [
        "kms:*",
        "kms:Decrypt",
        "kms:De*",
        "kms:*crypt",
        "*",
        "kms:CreateGrant",
        ["kms:Encrypt", "kms:Decrypt"],
        "kms:Describe*",
    ]
)
resource_element = st.sampled_from(["*", KEY, f"arn:aws:kms:*:{KEY_ACCOUNT}:key/*", KEY + "0"])
principal_element = st.sampled_from(
    [
        "*",
        {"AWS": root(KEY_ACCOUNT)},
        {"AWS": OTHER_ACCOUNT},
        {"AWS": ALICE},
        {"AWS": ROLE},
        {"AWS": SESSION},
        {"AWS": slr(KEY_ACCOUNT)},
        {"Service": "ec2.amazonaws.com"},
        {"AWS": [ALICE, root(OTHER_ACCOUNT)]},
        {"AWS": "AROA1234567890EXAMPLE"},
    ]
)
condition_element = st.sampled_from(
    [
        None,
        {"Bool": {"kms:GrantIsForAWSResource": True}},
        {"StringEquals": {"kms:CallerAccount": KEY_ACCOUNT}},
        {"StringNotEquals": {"aws:PrincipalAccount": OTHER_ACCOUNT}},
        {"StringLikeIfExists": {"kms:ViaService": "ec2.*"}},
        {"Null": {"kms:ViaService": "false"}},
        {"ForAnyValue:StringEquals": {"kms:GrantOperations": ["Decrypt"]}},
        {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "Encrypt"]}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{KEY_ACCOUNT}:role/*"}},
        # Organisation-shared keys and ABAC (test_policy_unknowns.py declares these unknown).
        {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"Null": {"aws:PrincipalOrgID": "true"}},
        {"StringEquals": {"aws:PrincipalTag/team": "storage", "aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringEquals": {"kms:ViaService": "${aws:PrincipalTag/via}"}},
    ]
)


@st.composite
def statements(draw, kind: str, effect=None):
    s = {"Effect": effect or draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"]))}
    s["NotAction" if draw(st.integers(0, 5)) == 0 else "Action"] = draw(action_element)
    s["NotResource" if draw(st.integers(0, 7)) == 0 else "Resource"] = draw(resource_element)
    if kind == "resource":
        s["NotPrincipal" if draw(st.integers(0, 7)) == 0 else "Principal"] = draw(principal_element)
    elif kind == "rcp":
        s["Principal"] = "*"
    condition = draw(condition_element)
    if condition is not None:
        s["Condition"] = condition
    if draw(st.booleans()):
        s["Sid"] = f"S{draw(st.integers(0, 99))}"
    return s


def policy(kind: str, min_size: int = 0):
    return st.builds(
        lambda stmts: {"Version": "2012-10-17", "Statement": stmts},
        st.lists(statements(kind), min_size=min_size, max_size=4),
    )


grant_entry = st.builds(
    lambda grantee, ops, constraint: {
        "GrantId": "g",
        "GranteePrincipal": grantee,
        "Operations": ops,
        "Constraints": constraint,
    },
    st.sampled_from([slr(KEY_ACCOUNT), slr(OTHER_ACCOUNT), ALICE, ROLE, root(OTHER_ACCOUNT)]),
    st.lists(
        st.sampled_from(["Decrypt", "Encrypt", "CreateGrant", "DescribeKey", "RetireGrant"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.sampled_from([None, {"EncryptionContextSubset": {"Dept": "IT"}}]),
)

context = st.fixed_dictionaries(
    {},
    optional={
        "kms:GrantIsForAWSResource": st.sampled_from(["true", "false"]),
        "kms:ViaService": st.sampled_from(["ec2.us-west-2.amazonaws.com", "rds.us-west-2.amazonaws.com"]),
        "kms:GrantOperations": st.lists(
            st.sampled_from(["Decrypt", "Encrypt", "CreateGrant"]), min_size=1, max_size=3, unique=True
        ),
        "kms:EncryptionContext:Dept": st.sampled_from(["IT", "HR"]),
    },
)


DELEGATE = {"Effect": "Allow", "Principal": {"AWS": root(KEY_ACCOUNT)}, "Action": "kms:*", "Resource": "*"}
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@st.composite
def documents(draw):
    doc = {
        "request": {
            "principal": draw(st.sampled_from(CALLERS)),
            "action": draw(st.sampled_from(ACTIONS)),
            "resource": KEY,
            "context": draw(context),
        },
        "resource_policy": draw(st.one_of(st.none(), policy("resource"))),
        "identity_policies": draw(st.lists(policy("identity"), max_size=2)),
        "permission_boundaries": draw(st.lists(policy("identity", 1), max_size=1)),
        "grants": draw(st.lists(grant_entry, max_size=2)),
    }
    biased = draw(st.booleans())
    if biased:
        # Bias towards requests that some path allows, so the properties meet Allowed often.
        doc["resource_policy"] = doc["resource_policy"] or {"Version": "2012-10-17", "Statement": []}
        doc["resource_policy"]["Statement"].insert(0, dict(DELEGATE))
        doc["identity_policies"].append({"Version": "2012-10-17", "Statement": [dict(ALLOW_ALL)]})
        for boundary in doc["permission_boundaries"]:
            boundary["Statement"].append(dict(ALLOW_ALL))
    if draw(st.booleans()):
        doc["scps"] = draw(st.lists(st.lists(policy("scp", 1), min_size=1, max_size=2), min_size=1, max_size=2))
    if draw(st.booleans()):
        doc["rcps"] = draw(st.lists(st.lists(policy("rcp", 1), min_size=1, max_size=2), min_size=1, max_size=2))
    if draw(st.booleans()):
        doc["session_policy"] = draw(policy("identity", 1))
    if biased:
        for name, extra in (("scps", ALLOW_ALL), ("rcps", {**ALLOW_ALL, "Principal": "*"})):
            for level in doc.get(name, []):
                level.append({"Version": "2012-10-17", "Statement": [dict(extra)]})
        if "session_policy" in doc:
            doc["session_policy"]["Statement"].append(dict(ALLOW_ALL))
    return doc


def _targets(doc):
    """Every policy of the document with the kind of statement it takes."""
    out = []
    if doc.get("resource_policy") is not None:
        out.append((doc["resource_policy"], "resource"))
    out += [(p, "identity") for p in doc["identity_policies"] + doc["permission_boundaries"]]
    if doc.get("session_policy") is not None:
        out.append((doc["session_policy"], "identity"))
    out += [(p, "scp") for level in doc.get("scps", []) for p in level]
    out += [(p, "rcp") for level in doc.get("rcps", []) for p in level]
    return out


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(documents(), st.data())
def test_adding_an_allow_never_turns_allowed_into_a_denial(doc, data):
    before = decide(doc)
    if before["decision"] != "Allowed":
        return
    changed = copy.deepcopy(doc)
    targets = _targets(changed)
    index = data.draw(st.integers(0, len(targets)))  # len(targets): a new identity policy
    if index == len(targets):
        changed["identity_policies"].append(
            {"Version": "2012-10-17", "Statement": [data.draw(statements("identity", "Allow"))]}
        )
    else:
        target, kind = targets[index]
        target["Statement"].append(data.draw(statements(kind, "Allow")))
    assert decide(changed)["decision"] == "Allowed"


@SETTINGS
@given(documents(), st.data())
def test_adding_a_deny_never_turns_a_denial_into_allowed(doc, data):
    before = decide(doc)
    if before["decision"] == "Allowed":
        return
    changed = copy.deepcopy(doc)
    targets = _targets(changed)
    if not targets:
        changed["identity_policies"].append({"Version": "2012-10-17", "Statement": []})
        targets = _targets(changed)
    target, kind = targets[data.draw(st.integers(0, len(targets) - 1))]
    target["Statement"].append(data.draw(statements(kind, "Deny")))
    assert decide(changed)["decision"] != "Allowed"


@SETTINGS
@given(documents(), st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_statement_or_policy_order(doc, rnd: random.Random):
    before = decide(doc)
    shuffled = copy.deepcopy(doc)
    for target, _ in _targets(shuffled):
        rnd.shuffle(target["Statement"])
    rnd.shuffle(shuffled["identity_policies"])
    rnd.shuffle(shuffled["grants"])
    for level in shuffled.get("scps", []) + shuffled.get("rcps", []):
        rnd.shuffle(level)
    after = decide(shuffled)
    assert (after["decision"], after["missing"]) == (before["decision"], before["missing"])


@settings(max_examples=200, deadline=None)
@given(documents())
def test_decisions_are_well_formed(doc):
    out = decide(doc)
    # Nothing declared unknown: never Undetermined.
    assert out["decision"] in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied")
    if out["decision"] == "ExplicitlyDenied":
        assert out["decisive"] and out["missing"] == []
    if out["decision"] == "Allowed":
        assert out["decisive"] and out["missing"] == []
