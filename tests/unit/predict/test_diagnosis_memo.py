"""keyfix.predict.diagnosis_memo: one diagnosis per distinct question in a pass, and never a
different answer from diagnosing each subject afresh (issue #14, P6)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.arns import slr_arn
from keyfix.diagnose import diagnose
from keyfix.events.incident import Caller, Incident
from keyfix.predict.diagnosis_memo import MEMO_KEY, diagnose_once
from keyfix.report import Finding, Trigger
from keyfix.resolve.context import ALWAYS_UNKNOWN
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation
from keyfix.resolve.needs import launch_needs
from keyfix.sim.scenarios.common import root_only_policy
from keyfix.sim.scenarios.fleet import slr_key_policy

ACCOUNT, OTHER, REGION = "111122223333", "444455556666", "us-east-1"
SLR = slr_arn(ACCOUNT, REGION)


def _key(label: str, **kw) -> KeyFacts:
    return KeyFacts(arn=f"arn:aws:kms:{REGION}:{kw.pop('account', ACCOUNT)}:key/{label}", account=ACCOUNT,
                    region=REGION, **kw)


# What the gateway memoises for a pass: one object per key / principal.
KEYS = {
    "healthy": _key("00000000-0000-4000-8000-000000000000", state="Enabled", manager="CUSTOMER", policy=slr_key_policy(ACCOUNT, REGION),
                    grants=()),
    "broken": _key("11111111-1111-4111-8111-111111111111", state="Enabled", manager="CUSTOMER", policy=root_only_policy(ACCOUNT), grants=()),
    "disabled": _key("22222222-2222-4222-8222-222222222222", state="Disabled", manager="CUSTOMER", policy=slr_key_policy(ACCOUNT, REGION),
                     grants=()),
    "foreign": KeyFacts(arn=f"arn:aws:kms:{REGION}:{OTHER}:key/33333333-3333-4333-8333-333333333333", account=OTHER, region=REGION,
                        unreadable=("kms:DescribeKey failed: AccessDeniedException",)),
    "gone": _key("44444444-4444-4444-8444-444444444444", exists=False, unreadable=("kms:DescribeKey failed: NotFoundException",)),
}
PRINCIPALS = {
    "present": PrincipalFacts(arn=SLR, kind="service-linked-role", account=ACCOUNT, exists=True,
                              unique_id="AROAEXAMPLE"),
    "missing": PrincipalFacts(arn=SLR, kind="service-linked-role", account=ACCOUNT, exists=False),
}
# Group names: ordinary ones, and ones that also occur in findings' text (a key id, a cause,
# an action, a single letter): those must be diagnosed afresh, never rewritten.
ORDINARY = ["web", "api-prod", "batch_7"]
NAMES = ORDINARY + ["a", "kms", "Decrypt", "11111111-1111-4111-8111-111111111111", "slr-not-in-key-policy", "role"]


def group_arn(name: str) -> str:
    return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0f0e-{len(name)}:autoScalingGroupName/{name}"


def situation(name: str, key: str, principal: str = "present", *, resource: bool = True,
              failure: str | None = None, unknown: bool = True) -> Situation:
    facts = KEYS[key]
    need, = launch_needs(SLR, ACCOUNT, facts.arn, REGION, group_arn(name) if resource else None)
    if unknown:
        need = dataclasses.replace(need, unknown_keys=tuple(ALWAYS_UNKNOWN))
    incident = Incident(trigger=Trigger.SCHEDULED_SWEEP if failure is None else Trigger.ASG_LAUNCH_FAILURE,
                        event_id="scan-1", source="keyfix", detail_type="keyfix scan", account=ACCOUNT,
                        region=REGION, group_name=name, status_message=failure,
                        kms_related=None if failure is None else True)
    return Situation(incident=incident, needs=[need], keys={facts.arn: facts}, principals={SLR: PRINCIPALS[principal]})


def as_data(findings: list[Finding]) -> list[dict]:
    """Everything a finding carries, including what the report leaves out (write blockers)."""
    return [{**f.to_dict(), "blockers": [list(x.write_blockers) for x in f.fixes]} for f in findings]


def memoised(s: Situation, memo: dict, counter: list[int]) -> list[Finding]:
    def counted(sit: Situation) -> list[Finding]:
        counter.append(1)
        return diagnose(sit)

    name = s.incident.group_name or ""
    return diagnose_once(s, (name, group_arn(name)), memo, counted)


questions = st.tuples(st.sampled_from(sorted(KEYS)), st.sampled_from(sorted(PRINCIPALS)), st.booleans(),
                      st.sampled_from([None, "Client.InvalidKMSKey.InvalidState"]), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(questions, min_size=1, max_size=4, unique=True),
       st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3)), min_size=1, max_size=30))
def test_any_order_of_subjects_gets_exactly_the_findings_a_fresh_diagnosis_gives(pool, picks):
    """A few questions asked by many groups, in any order, under any names."""
    drawn = [(name, *pool[i % len(pool)]) for name, i in picks]
    memo: dict = {}
    diagnosed: list[int] = []
    for name, key, principal, resource, failure, unknown in drawn:
        s = situation(name, key, principal, resource=resource, failure=failure, unknown=unknown)
        got = memoised(s, memo, diagnosed)
        assert as_data(got) == as_data(diagnose(s))
        # what the caller does with its findings (check, remedies) reaches no later subject
        for finding in got:
            finding.explanation, finding.resource, finding.predicted = "changed", "changed", True
            for fix in finding.fixes:
                fix.cli.append("changed")
                fix.write_blockers.append("changed")
                if isinstance(fix.document, dict):
                    fix.document["changed"] = True
                elif isinstance(fix.document, list):
                    for item in fix.document:
                        if isinstance(item, dict):
                            item["changed"] = True
                    fix.document.append("changed")
    asked = {(key, principal, resource, failure, unknown) for _, key, principal, resource, failure, unknown in drawn}
    # At least one real diagnosis per distinct question, at most one per subject.
    assert len(asked) <= len(diagnosed) <= len(drawn)
    if all(name in ORDINARY for name, *_ in drawn):
        assert len(diagnosed) == len(asked)  # and exactly one when no name shows in the findings


def test_groups_on_the_same_key_are_one_question_and_each_gets_its_own_resource():
    memo: dict = {}
    diagnosed: list[int] = []
    names = ["web", "api-prod", "batch_7", "web-2", "web-3"]
    results = {n: memoised(situation(n, "broken"), memo, diagnosed) for n in names}

    assert len(diagnosed) == 1  # one model run for five groups
    for name, findings in results.items():
        (finding,) = findings
        assert finding.resource == group_arn(name)
        assert str(finding.cause) == "slr-not-in-key-policy" and finding.fixes
        assert as_data(findings) == as_data(diagnose(situation(name, "broken")))


def test_a_group_named_like_text_in_its_findings_is_diagnosed_afresh_every_time():
    memo: dict = {}
    diagnosed: list[int] = []
    for _ in range(3):
        memoised(situation("11111111-1111-4111-8111-111111111111", "broken"), memo, diagnosed)  # the key's id is in every CLI line
    assert len(diagnosed) == 3


def test_the_incident_group_stands_in_for_a_missing_resource_and_is_rewritten_too():
    memo: dict = {}
    diagnosed: list[int] = []
    first = memoised(situation("web", "gone", resource=False), memo, diagnosed)
    second = memoised(situation("api-prod", "gone", resource=False), memo, diagnosed)
    assert len(diagnosed) == 1
    assert [f.resource for f in first] == ["web"] and [f.resource for f in second] == ["api-prod"]


def test_equal_facts_read_again_are_a_new_question():
    """Facts count by identity: after the sweep forgets facts (a throttled read), the key is
    read again and its new facts are diagnosed, even when they look the same."""
    memo: dict = {}
    diagnosed: list[int] = []
    s1 = situation("web", "broken")
    memoised(s1, memo, diagnosed)
    again = dataclasses.replace(KEYS["broken"], policy=json.loads(json.dumps(KEYS["broken"].policy)))
    s2 = situation("api-prod", "broken")
    s2.keys = {again.arn: again}
    memoised(s2, memo, diagnosed)
    assert len(diagnosed) == 2


def test_a_changed_policy_is_a_new_question():
    memo: dict = {}
    diagnosed: list[int] = []
    broken = memoised(situation("web", "broken"), memo, diagnosed)
    repaired = dataclasses.replace(KEYS["broken"], policy=slr_key_policy(ACCOUNT, REGION))
    s = situation("api-prod", "broken")
    s.keys = {repaired.arn: repaired}
    after = memoised(s, memo, diagnosed)
    assert len(diagnosed) == 2
    assert [str(f.cause) for f in broken] == ["slr-not-in-key-policy"]
    assert [str(f.cause) for f in after] == ["no-missing-permission"]


def _other_value(value):
    """A value of the same kind that differs from `value`."""
    if isinstance(value, bool):
        return not value
    if value is None:
        return "x"
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, tuple):
        return value + ("kms:Other",)
    if isinstance(value, dict):
        return {**value, "aws:Other": "1"}
    if isinstance(value, list):
        return [*value, "other"]
    return None


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Incident) if f.name != "group_name"])
def test_every_field_of_the_incident_is_part_of_the_question(field):
    """A field added to Incident later is covered without a change to the memo (the group's
    own name is the one difference the memo is for: the tests above)."""
    memo: dict = {}
    diagnosed: list[int] = []
    memoised(situation("web", "broken"), memo, diagnosed)
    s2 = situation("web", "broken")
    changed = Caller("AWSService", None, None) if field == "caller" else _other_value(getattr(s2.incident, field))
    s2.incident = dataclasses.replace(s2.incident, **{field: changed})
    memoised(s2, memo, diagnosed)
    assert len(diagnosed) == 2


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(AccessNeed)])
def test_every_field_of_a_need_is_part_of_the_question(field):
    memo: dict = {}
    diagnosed: list[int] = []
    memoised(situation("web", "broken"), memo, diagnosed)
    s2 = situation("web", "broken")
    (need,) = s2.needs
    changed = _other_value(getattr(need, field))
    s2.needs = [dataclasses.replace(need, **{field: changed})]
    memoised(s2, memo, diagnosed)
    assert len(diagnosed) == 2


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Situation) if f.name != "incident"])
def test_every_field_of_the_situation_is_part_of_the_question(field):
    memo: dict = {}
    diagnosed: list[int] = []
    memoised(situation("web", "broken"), memo, diagnosed)
    s2 = situation("web", "broken")
    value = getattr(s2, field)
    if field == "keys":
        value = {**value, KEYS["healthy"].arn: KEYS["healthy"]}
    elif field == "principals":
        value = {SLR: PRINCIPALS["missing"]}
    elif field == "needs":
        value = value + value
    else:
        value = _other_value(value)
    setattr(s2, field, value)
    memoised(s2, memo, diagnosed)
    assert len(diagnosed) == 2


def test_a_value_it_cannot_compare_is_diagnosed_afresh():
    memo: dict = {}
    diagnosed: list[int] = []
    for name in ("web", "api-prod"):
        s = situation(name, "broken")
        s.notes.append(object())  # nothing keyfix puts there, but never guessed about
        memoised(s, memo, diagnosed)
    assert len(diagnosed) == 2 and MEMO_KEY not in memo


def test_a_name_inside_a_resource_is_not_rewritten_but_diagnosed_afresh():
    """Only a resource that is the subject's whole name or ARN is the subject's."""
    diagnosed: list[int] = []

    def volume_of_group(s: Situation) -> list[Finding]:
        diagnosed.append(1)
        return [Finding(diagnose(s)[0].cause, SLR, None, [], "x", resource=f"{s.incident.group_name}/vol-1")]

    memo: dict = {}
    for name in ("web", "api-prod"):
        (finding,) = diagnose_once(situation(name, "broken"), (name, group_arn(name)), memo, volume_of_group)
        assert finding.resource == f"{name}/vol-1"
    assert len(diagnosed) == 2


def test_a_subject_without_an_arn_shares_only_with_subjects_without_one():
    """An empty ARN is no name: the findings' resource still maps to the right subject."""
    memo: dict = {}
    diagnosed: list[int] = []

    def ask(name: str, arn: str) -> list[Finding]:
        s = situation(name, "gone", resource=False)
        return diagnose_once(s, (name, arn), memo, lambda sit: diagnosed.append(1) or diagnose(sit))

    assert [f.resource for f in ask("web", group_arn("web"))] == ["web"]
    assert [f.resource for f in ask("api-prod", "")] == ["api-prod"]
    assert [f.resource for f in ask("batch_7", "")] == ["batch_7"]
    assert [f.resource for f in ask("web-2", group_arn("web-2"))] == ["web-2"]
    assert len(diagnosed) == 2  # one with an ARN, one without


@pytest.mark.parametrize("first", ["snap-" + "0" * 100, "snap-a\\b", "snap-x'y\"z"])
def test_a_name_the_findings_show_quoted_or_cut_is_never_shared(first):
    """keyfix.names.InvalidName quotes an offending value with repr, cut to 80 characters: a
    group with no ARN named like a bad snapshot id is diagnosed as "a resource AWS would never
    accept" (the re-encrypt fix reads its resource). That diagnosis shows the name only quoted
    or cut, and holds only for that name: another group gets its own (here an AWS managed key
    of another account: re-encrypt), never the first one's, nor its name."""
    foreign_aws = KeyFacts(arn=f"arn:aws:kms:{REGION}:{OTHER}:key/55555555-5555-4555-8555-555555555555",
                           account=OTHER, region=REGION, state="Enabled", manager="AWS")
    memo: dict = {}
    for name in (first, "web"):
        s = situation(name, "healthy", resource=False)
        s.keys = {foreign_aws.arn: foreign_aws}
        s.needs = [dataclasses.replace(s.needs[0], key_arn=foreign_aws.arn)]
        fresh = diagnose(dataclasses.replace(s))
        assert as_data(diagnose_once(s, (name, ""), memo, diagnose)) == as_data(fresh)
    assert [str(f.cause) for f in fresh] == ["aws-managed-key-cross-account"]
