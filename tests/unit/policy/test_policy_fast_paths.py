"""The fast paths of the model give the answers of the plain implementation (issue #14).

- Each wildcard string is matched by str methods when its shape allows (plain, "*",
  "prefix*", "*suffix", "prefix*suffix", "*infix*") and ARN patterns segment by segment;
  the reference is the regular expression the model used before (patterns._regex_source:
  wildcards stay inside the first five ARN segments,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards;
  actions case-insensitive,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
- Caches (parsed policies by JSON text, interned patterns, per-value answers, the action
  index) never change a decision: a cold model and a warm one decide alike, and a document
  met under another name is reported under that name.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kms_policy_fixtures import ALICE, KEY, KEY_ACCOUNT, root

from keyfix.policy import Policy, PolicyError, caches
from keyfix.policy.patterns import Pattern, _pattern_source, split_pieces
from keyfix.policy.simulate import decide

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small alphabets so that patterns and values collide often; ":" makes ARN segments, and
# "K", "k", "\u212a" (Kelvin sign), "s", "\u017f" (long s) are where ASCII lower-casing and
# re.IGNORECASE part ways.
_PATTERN_CHARS = st.sampled_from(list("ab:*?/kKs") + ["\u212a", "\u017f", "\n"])
_VALUE_CHARS = st.sampled_from(list("ab:/kKsS") + ["\u212a", "\u017f", "\n"])
patterns = st.text(_PATTERN_CHARS, max_size=12)
values = st.text(_VALUE_CHARS, max_size=14)
arn_like = st.builds(lambda parts, tail: ":".join(parts) + tail, st.lists(values, min_size=5, max_size=7), values)


def _reference(raw: str, value: str, *, arn: bool, ignore_case: bool) -> bool:
    pieces = split_pieces(raw, wildcards=True, variables=False)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(_pattern_source(pieces, arn), flags).fullmatch(value) is not None


@st.composite
def pattern_and_value(draw, arn_parts: bool = False):
    """A pattern, and a value built from it (each wildcard filled in, sometimes with colons),
    sometimes changed by one character: matches and near misses, not random noise."""
    if arn_parts:
        parts = draw(st.lists(st.sampled_from(["arn", "aws", "kms", "*", "?", "us-*-1", "1111", "key/*", "k*y/a",
                                               "a:b", "*:*", ""]), min_size=5, max_size=8))
        raw = ":".join(parts)
    else:
        raw = draw(patterns)
    out = []
    for ch in raw:
        if ch == "*":
            out.append(draw(st.text(_VALUE_CHARS, max_size=4)))
        elif ch == "?":
            out.append(draw(_VALUE_CHARS))
        else:
            out.append(ch)
    value = "".join(out)
    if value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        value = value[:i] + draw(st.sampled_from(["", ":", "a", "K", "\u212a", "::"])) + value[i + 1:]
    return raw, value


@SETTINGS
@given(case=st.one_of(pattern_and_value(), st.tuples(patterns, st.one_of(values, arn_like))),
       arn=st.booleans(), ignore_case=st.booleans())
@example(case=("*a", ""), arn=False, ignore_case=False)
@example(case=("a*", ""), arn=False, ignore_case=True)
@example(case=("*a*", "a"), arn=False, ignore_case=False)
@example(case=("ab*ba", "aba"), arn=False, ignore_case=False)
@example(case=("kms:desk*", "kms:Des\u212ay"), arn=False, ignore_case=True)  # Kelvin sign: re's IGNORECASE
@example(case=("s", "\u017f"), arn=False, ignore_case=True)
@example(case=("a*\n", "ab\n"), arn=False, ignore_case=False)
@example(case=("a:b:c:d:e:*", "a:b:c:d:e:f:g"), arn=True, ignore_case=False)
@example(case=("a:b:c:d:*:f", "a:b:c:d:x:y:f"), arn=True, ignore_case=False)
def test_a_pattern_matches_exactly_what_its_regular_expression_matches(case, arn, ignore_case):
    raw, value = case
    pattern = Pattern.compile(raw, arn=arn, ignore_case=ignore_case)
    expected = _reference(raw, value, arn=arn, ignore_case=ignore_case)
    assert pattern.matches(value, {}) is expected
    assert pattern.matches(value, {}) is expected  # the memoised matcher too


@SETTINGS
@given(case=pattern_and_value(arn_parts=True))
def test_arn_patterns_keep_wildcards_inside_the_first_five_segments(case):
    raw, value = case
    assert Pattern.compile(raw, arn=True).matches(value, {}) is _reference(raw, value, arn=True, ignore_case=False)


def test_the_generated_cases_both_match_and_miss():
    # Guards the two properties above against a strategy that only ever draws misses.
    import random

    rng = random.Random(14)
    outcomes = {True: 0, False: 0}
    for _ in range(400):
        raw = ":".join(rng.choice(["arn", "aws", "*", "?", "key/*", "a:b"]) for _ in range(rng.randint(5, 8)))
        value = "".join("x:y" if ch == "*" else "z" if ch == "?" else ch for ch in raw)
        if rng.random() < 0.5:
            value = value.replace("a", ":", 1)
        outcomes[_reference(raw, value, arn=True, ignore_case=False)] += 1
    assert outcomes[True] > 50 and outcomes[False] > 50, outcomes


def test_the_shapes_with_a_fast_path_on_key_arns():
    key = "arn:aws:kms:us-east-1:111122223333:key/1234"
    cases = {
        "*": True,
        key: True,
        "arn:aws:kms:us-east-1:111122223333:key/*": True,
        "*:key/1234": True,
        "arn:aws:kms:*:111122223333:key/*": True,
        "arn:aws:kms:*:*:key/*": True,
        "arn:aws:kms:*:444455556666:key/*": False,
        "arn:aws:kms:us-east-1:111122223333:alias/*": False,
        "arn:aws:kms:us-*-1:111122223333:key/12?4": True,
        "arn:aws:kms*": True,  # fewer than six segments: one whole string, "*" spans colons
        "arn:aws:*:key/1234": True,
        "arn:aws:kms:us-east-1:111122223333:KEY/1234": False,  # resources are case-sensitive
    }
    got = {raw: Pattern.compile(raw, arn=True).matches(key, {}) for raw in cases}
    assert got == cases
    assert got == {raw: _reference(raw, key, arn=True, ignore_case=False) for raw in cases}


def test_actions_match_case_insensitively_on_every_path():
    for raw, action, expected in [
        ("kms:decrypt", "kms:Decrypt", True),
        ("KMS:Generate*", "kms:GenerateDataKey", True),
        ("kms:*key", "kms:DescribeKey", True),
        ("kms:*Grant*", "kms:ListRetirableGrants", True),
        ("kms:?ecrypt", "kms:Decrypt", True),
        ("kms:Re*ypt*", "kms:ReEncryptFrom", True),
        ("kms:Encrypt", "kms:ReEncryptFrom", False),
        ("kms:*", "ec2:RunInstances", False),
    ]:
        assert Pattern.compile(raw, ignore_case=True).matches(action, {}) is expected, raw


def _case(resource_policy, *, principal=ALICE, action="kms:Decrypt", identity=()):
    return {
        "request": {"principal": principal, "action": action, "resource": KEY},
        "resource_policy": resource_policy,
        "identity_policies": list(identity),
    }


_DELEGATING = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": root(KEY_ACCOUNT)}, "Action": "kms:*", "Resource": "*"}]}
_USER_ALLOW = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Use", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": KEY}]}
_USER_DENY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "No", "Effect": "Deny", "Action": "kms:*crypt", "Resource": "arn:aws:kms:*:*:key/*"}]}


def test_a_document_met_under_another_name_is_reported_under_that_name():
    caches.clear()
    first = decide(_case(_DELEGATING, identity=[_USER_ALLOW]))
    # The same text as the second identity policy, after an unrelated first one.
    second = decide(_case(_DELEGATING, identity=[_USER_DENY, _USER_ALLOW]))
    assert first["decision"] == "Allowed"
    assert {"policy": "identity_policies[0]", "sid": "Use", "statement": 0} in first["decisive"]
    assert second == {"schema": "keyfix.decision/1", "decision": "ExplicitlyDenied",
                      "decisive": [{"policy": "identity_policies[0]", "sid": "No", "statement": 0}], "missing": []}
    # And the identity policy's text used as a key policy is refused there, naming that place.
    try:
        decide(_case(_USER_ALLOW))
    except PolicyError as err:
        assert err.place == "resource_policy.Statement[0]"
    else:
        raise AssertionError("a key policy statement without Principal was accepted")


def test_the_action_index_follows_each_action():
    policy = Policy.parse(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
            {"Effect": "Allow", "NotAction": "kms:Decrypt", "Resource": "*"},
            {"Effect": "Deny", "Action": ["kms:*crypt*", "ec2:*"], "Resource": "*"},
        ]},
        "identity_policies[0]",
    )
    assert [s.index for s in policy.statements_for("kms:Decrypt")] == [0, 2]
    assert [s.index for s in policy.statements_for("kms:Encrypt")] == [1, 2]
    assert [s.index for s in policy.statements_for("kms:DescribeKey")] == [1]
    assert [s.index for s in policy.named("other").statements_for("kms:DescribeKey")] == [1]


def test_cold_and_warm_caches_decide_every_corpus_case_alike():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "differential"))
    try:
        import strategies
    finally:
        sys.path.pop(0)
    cases = strategies.random_cases(300, seed="fast-paths")
    caches.clear()
    cold = [_outcome(c) for c in cases]
    warm = [_outcome(c) for c in cases]
    caches.clear()
    reversed_cold = [_outcome(c) for c in reversed(cases)][::-1]
    assert len(cold) == 300
    assert cold == warm == reversed_cold
    # Not a corpus of errors: most cases are decided.
    assert sum(1 for o in cold if o.startswith("{")) >= 250


def _outcome(case) -> str:
    try:
        return json.dumps(decide(case), sort_keys=True)
    except PolicyError as err:
        return f"error {err.place}: {err.message}"
