"""Properties of the three-valued evaluation (hypothesis), stated precisely.

Guarantee (soundness): for any request whose unknown keys and layers are resolved in
any concrete way (each key absent or given a value; each unknown layer absent or given
policies), the concrete decision is one of the three-valued result's possible decisions
(`Decision.possible_decisions`: the decision itself when decided). Hence a decided result
is the decision of every resolution, and when two resolutions differ the result is
Undetermined. The converse is not promised: Undetermined may be conservative (unknown
conditions are treated as independent, and a condition on an unknown key is unknown even
when every value would give the same answer).

Also: with nothing unknown the result is one of the three decisions; adding an Allow
never turns Allowed into anything else; statement order never matters, unknowns or not.
"""

from __future__ import annotations

import copy
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_policy_properties import ALLOW_ALL, _targets, documents, policy, statements

from keyfix.policy.simulate import decide

ORG = "o-a1b2c3d4e5"
# Each unknown key with the concrete values a resolution may give it (None: absent).
KEY_VALUES = {
    "aws:PrincipalOrgID": [None, ORG, "o-zzzzzzzzzz"],
    "aws:PrincipalTag/team": [None, "storage", "web"],
    "aws:PrincipalTag/via": [None, "ec2.us-west-2.amazonaws.com", "rds.us-west-2.amazonaws.com"],
    "kms:ViaService": [None, "ec2.us-west-2.amazonaws.com", "rds.us-west-2.amazonaws.com"],
    "kms:GrantIsForAWSResource": [None, "true", "false"],
}
# How a declared unknown_keys entry covers KEY_VALUES.
DECLARATIONS = {
    "aws:PrincipalOrgID": ["aws:PrincipalOrgID"],
    "aws:PrincipalTag/": ["aws:PrincipalTag/team", "aws:PrincipalTag/via"],
    "kms:ViaService": ["kms:ViaService"],
    "kms:GrantIsForAWSResource": ["kms:GrantIsForAWSResource"],
}
LAYER_VALUES = {
    "scps": st.one_of(st.just(None), st.lists(st.lists(policy("scp", 1), min_size=0, max_size=2), min_size=1, max_size=2)),
    "rcps": st.one_of(st.just(None), st.lists(st.lists(policy("rcp", 1), min_size=1, max_size=2), min_size=1, max_size=2)),
    "session_policy": st.one_of(st.just(None), policy("identity", 1)),
    "permission_boundaries": st.one_of(st.just([]), st.lists(policy("identity", 1), min_size=1, max_size=1)),
}


@st.composite
def uncertain_documents(draw):
    doc = draw(documents())
    declared = draw(st.lists(st.sampled_from(sorted(DECLARATIONS)), unique=True, max_size=3))
    layers = draw(st.lists(st.sampled_from(sorted(LAYER_VALUES)), unique=True, max_size=2))
    for name in declared:
        for key in DECLARATIONS[name]:
            doc["request"]["context"].pop(key, None)
    for layer in layers:
        doc.pop(layer, None)
        if layer == "permission_boundaries":
            doc[layer] = []
    if declared:
        doc["request"]["unknown_keys"] = declared
    if layers:
        doc["unknown_policies"] = layers
    return doc


def _resolve(doc, data):
    """One concrete resolution of every unknown of `doc`."""
    out = copy.deepcopy(doc)
    for name in out["request"].pop("unknown_keys", []):
        for key in DECLARATIONS[name]:
            value = data.draw(st.sampled_from(KEY_VALUES[key]), label=key)
            if value is not None:
                out["request"]["context"][key] = value
    for layer in out.pop("unknown_policies", []):
        value = data.draw(LAYER_VALUES[layer], label=layer)
        if value is None or value == []:
            out.pop(layer, None)
        else:
            out[layer] = value
    return out


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(uncertain_documents(), st.data())
def test_every_resolution_is_among_the_possible_decisions(doc, data):
    uncertain = decide(doc)
    possible = uncertain.get("possible") or [uncertain["decision"]]
    assert uncertain["decision"] != "Undetermined" or len(possible) >= 2
    seen = set()
    for _ in range(4):
        concrete = decide(_resolve(doc, data))
        assert concrete["decision"] in possible, (concrete, uncertain)
        seen.add(concrete["decision"])
    if len(seen) > 1:
        assert uncertain["decision"] == "Undetermined"
    if uncertain["decision"] == "Undetermined":
        # It names what it depends on, and only declared unknowns or layers.
        assert uncertain["undetermined_by"]
        declared = {k for name in doc["request"].get("unknown_keys", []) for k in DECLARATIONS[name]}
        for atom in uncertain["undetermined_by"]:
            assert atom in declared or atom.lower() in {k.lower() for k in declared} or atom in doc.get("unknown_policies", []), atom


@SETTINGS
@given(uncertain_documents(), st.data())
def test_adding_an_allow_never_turns_allowed_into_anything_else_with_unknowns(doc, data):
    if decide(doc)["decision"] != "Allowed":
        return
    changed = copy.deepcopy(doc)
    targets = _targets({**changed, "permission_boundaries": changed.get("permission_boundaries", [])})
    if not targets:
        return
    target, kind = targets[data.draw(st.integers(0, len(targets) - 1))]
    target["Statement"].append(data.draw(statements(kind, "Allow")))
    assert decide(changed)["decision"] == "Allowed"


@SETTINGS
@given(uncertain_documents(), st.randoms(use_true_random=False))
def test_order_never_matters_with_unknowns(doc, rnd: random.Random):
    before = decide(doc)
    shuffled = copy.deepcopy(doc)
    for target, _ in _targets({**shuffled, "permission_boundaries": shuffled.get("permission_boundaries", [])}):
        rnd.shuffle(target["Statement"])
    rnd.shuffle(shuffled["identity_policies"])
    after = decide(shuffled)
    assert (after["decision"], after.get("possible"), sorted(after.get("undetermined_by", []))) == (
        before["decision"], before.get("possible"), sorted(before.get("undetermined_by", [])))


def test_the_generator_meets_undetermined_and_decided_cases():
    # The properties above are only worth something if both kinds occur.
    from hypothesis import find

    find(uncertain_documents(), lambda d: decide(d)["decision"] == "Undetermined", settings=settings(max_examples=500, deadline=None))
    find(uncertain_documents(), lambda d: "unknown_keys" in d["request"] and decide(d)["decision"] == "Allowed",
         settings=settings(max_examples=500, deadline=None))


_ = ALLOW_ALL  # the biased documents() already add full allows
