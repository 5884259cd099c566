"""keyfix.resolve.context remembers two pure answers for a scan's many groups (issue #14, P6):
the lower-cased text of the policies in force per pair of facts, and which unknown keys are
not given. Neither may ever change an answer: every ordering, a key whose policy changed
(new facts), and facts re-read after the memo was cleared give what no memo gives."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.resolve import context
from keyfix.resolve.facts import KeyFacts, PrincipalFacts
from keyfix.resolve.gateway import AwsGateway

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE_ARN = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
CONDITION_KEYS = ["aws:PrincipalOrgID", "aws:PrincipalTag/team", "aws:ResourceTag/env", "kms:ViaService",
                  "aws:SourceIp", "aws:userid", "aws:RequestedRegion"]


def _policy(keys: list[str]) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {k: "x"}}} for k in keys]}


def _key(keys: list[str] | None) -> KeyFacts:
    return KeyFacts(arn=KEY_ARN, account="111122223333", region="us-east-1", state="Enabled",
                    policy=None if keys is None else _policy(keys))


def _principal(keys: list[str] | None) -> PrincipalFacts:
    return PrincipalFacts(arn=ROLE_ARN, kind="service-linked-role", account="111122223333",
                          identity_policies=None if keys is None else (_policy(keys),))


policies = st.none() | st.lists(st.sampled_from(CONDITION_KEYS), max_size=3)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(policies, min_size=1, max_size=4), principals=st.lists(policies, min_size=1, max_size=3),
       order=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()), min_size=1, max_size=30))
def test_mentioned_once_is_the_text_of_the_facts_asked_about_in_any_order(keys, principals, order):
    gw = AwsGateway(account="111122223333", region="us-east-1")
    key_facts = [_key(k) for k in keys]  # same ARN, different policies: a key whose policy changed
    principal_facts = [_principal(p) for p in principals] + [None]
    asked = 0
    for k, p, clear in order:
        key, principal = key_facts[k % len(key_facts)], principal_facts[p % len(principal_facts)]
        if clear:
            gw.memo.clear()  # the sweep after a throttled read: facts are read again
        assert context._mentioned_once(gw, key, principal) == context._mentioned(key, principal)
        asked += 1
    assert asked == len(order)


def test_a_changed_key_policy_is_read_as_changed():
    gw = AwsGateway(account="111122223333", region="us-east-1")
    before, after = _key([]), _key(["aws:PrincipalOrgID"])
    assert "aws:principalorgid" not in context._mentioned_once(gw, before, None)
    assert "aws:principalorgid" in context._mentioned_once(gw, after, None)
    assert "aws:principalorgid" not in context._mentioned_once(gw, before, None)


def _not_given_uncached(unknown: list[str], given_context: dict) -> tuple[str, ...]:
    """The same computation without lru_cache (functools keeps the undecorated function)."""
    return context._not_given_names.__wrapped__(tuple(unknown), tuple(given_context))


def test_not_given_keeps_what_the_context_lacks_and_drops_what_it_gives():
    unknown = ["aws:PrincipalOrgID", "AWS:SourceIp", "aws:PrincipalTag/", "aws:PrincipalOrgID"]
    given = {"aws:sourceip": "v", "aws:PrincipalTag/team": "v"}
    assert context._not_given(unknown, given) == ("aws:PrincipalOrgID",)


names = st.sampled_from(CONDITION_KEYS + ["aws:PrincipalTag/", "aws:ResourceTag/", "AWS:SourceIP", "aws:TagKeys"])


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.tuples(st.lists(names, max_size=8), st.dictionaries(names, st.just("v"), max_size=4)),
                      min_size=1, max_size=6))
def test_not_given_remembered_is_not_given_computed(calls):
    for unknown, given_context in calls:
        assert context._not_given(unknown, given_context) == _not_given_uncached(unknown, given_context)


def test_mentioned_is_json_of_the_documents():
    key, principal = _key(["aws:ResourceTag/env"]), _principal(["aws:PrincipalTag/team"])
    expected = json.dumps([key.policy, *principal.identity_policies], default=str).lower()
    assert context._mentioned_once(AwsGateway(account="111122223333"), key, principal) == expected
