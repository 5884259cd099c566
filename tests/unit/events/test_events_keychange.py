"""The key-change parser (keyfix.events.keychange): what each change names, and hostile input.

Examples first (one per event name, the documented record shapes), then hypothesis:
- any key-change event, mutated or built from hostile parts, gives an Incident or an
  EventError with a short message, never another exception; when it parses, `change_of`
  gives a `Change` whose targets are bounded strings of the kind its event name allows;
- keyfix's own role (IAM path /keyfix/) is ignored in code whenever the rule's pattern
  ignores it: a record that reaches the code some other way (a replay, `keyfix handle`, a
  pattern edited by hand) is still not acted on.
Each property counts its outcomes, and asserts every kind of outcome was reached.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from _events_support import sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfix.events import EventError, parse
from keyfix.events._common import MAX_ARN_CHARS, MAX_NAME_CHARS
from keyfix.events.keychange import (
    EBS_DEFAULT_CHANGES,
    GROUP_CHANGES,
    KMS_CHANGES,
    TEMPLATE_CHANGES,
    Change,
    KeyChangeEvent,
    change_of,
)
from keyfix.events.patterns import classify
from keyfix.report import Trigger

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SOURCES = {**{n: "kms" for n in KMS_CHANGES}, **{n: "ec2" for n in TEMPLATE_CHANGES + EBS_DEFAULT_CHANGES},
           **{n: "autoscaling" for n in GROUP_CHANGES}}
ALL_NAMES = tuple(SOURCES)


def event(name: str, *, params: Any = None, resources: Any = None, identity: Any = None,
          response: Any = None) -> dict[str, Any]:
    """The sample PutKeyPolicy event (events/), turned into `name` with the given parts.
    EventBridge delivers CloudTrail records with source aws.<service>
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html)."""
    raw = copy.deepcopy(sample("cloudtrail-kms-putkeypolicy-change.json"))
    service = SOURCES.get(name, "kms")
    raw["source"] = f"aws.{service}"
    detail = raw["detail"]
    detail.update(eventSource=f"{service}.amazonaws.com", eventName=name, requestParameters=params,
                  responseElements=response, resources=resources)
    if identity is not None:
        detail["userIdentity"] = identity
    return raw


def change(raw: dict[str, Any]) -> Change:
    incident = parse(raw)
    assert incident.trigger == Trigger.KEY_CHANGE
    return change_of(KeyChangeEvent.model_validate(raw))


def assumed(role_arn: str, *, kind: str = "AssumedRole") -> dict[str, Any]:
    name = role_arn.rsplit("/", 1)[-1]
    return {"type": kind, "principalId": "AROAEXAMPLE:s", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/s",
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "accountId": ACCOUNT,
                                                 "userName": name}}}


# -- what each change names ---------------------------------------------------------------


def test_the_sample_key_policy_edit_names_its_key_and_who_made_it():
    got = change(sample("cloudtrail-kms-putkeypolicy-change.json"))
    assert got == Change("PutKeyPolicy", f"arn:aws:iam::{ACCOUNT}:user/alice", "2025-03-04T02:58:11Z",
                         key_refs=(KEY,))
    assert parse(sample("cloudtrail-kms-putkeypolicy-change.json")).action == "kms:PutKeyPolicy"


@pytest.mark.parametrize("name", KMS_CHANGES)
def test_a_kms_change_names_the_key_from_resources_else_from_key_id(name):
    from_resources = change(event(name, params={"keyId": "alias/other"},
                                  resources=[{"ARN": KEY, "type": "AWS::KMS::Key"}]))
    from_key_id = change(event(name, params={"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}))
    assert from_resources.key_refs == (KEY,) and from_key_id.key_refs == ("1234abcd-12ab-34cd-56ef-1234567890ab",)
    for got in (from_resources, from_key_id):
        assert (got.templates, got.group, got.ebs_default, got.by_keyfix) == ((), None, False, False)


def test_a_retire_grant_naming_only_a_grant_token_names_no_key():
    """RetireGrant may be called with only the grant token
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_RetireGrant.html)."""
    got = change(event("RetireGrant", params={"grantToken": "AQpAM2RhZ..."}))
    assert got.key_refs == () and got.group is None and not got.ebs_default


@pytest.mark.parametrize("name", TEMPLATE_CHANGES)
def test_a_template_change_names_the_template_by_id_or_name_at_any_documented_depth(name):
    params = {"CreateLaunchTemplateVersionRequest": {"LaunchTemplateId": "lt-0123456789abcdef0",
                                                     "LaunchTemplateData": {"ImageId": "ami-1"}}}
    response = {"ModifyLaunchTemplateResponse": {"launchTemplate": {"launchTemplateName": "web-lt"}}}
    got = change(event(name, params=params, response=response))
    assert got.templates == ("lt-0123456789abcdef0", "web-lt") and got.key_refs == () and got.group is None


def test_template_references_too_deep_too_long_or_not_text_are_not_taken():
    deep: dict[str, Any] = {"LaunchTemplateId": "lt-deep"}
    for _ in range(10):
        deep = {"wrapper": deep}
    params = {"a": deep, "LaunchTemplateName": "x" * (MAX_NAME_CHARS + 1), "b": {"LaunchTemplateId": 7},
              "c": [{"launchTemplateId": ""}]}
    assert change(event("ModifyLaunchTemplate", params=params)).templates == ()


@pytest.mark.parametrize("name", GROUP_CHANGES)
@pytest.mark.parametrize(("given", "named"), [("web-asg", "web-asg"), ("g" * 255, "g" * 255), ("", None),
                                              ("g" * 256, None), (42, None), (["web-asg"], None), (None, None)])
def test_a_group_change_names_the_group_only_when_it_is_a_valid_group_name(name, given, named):
    """A group name is 1-255 characters
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html)."""
    got = change(event(name, params={"autoScalingGroupName": given}))
    assert got.group == named and got.key_refs == () and got.templates == ()


def test_an_ebs_default_key_change_names_the_default_key_never_the_record_s_key():
    """The key is read back from EC2 (GetEbsDefaultKmsKeyId), not taken from the record."""
    got = change(event("ModifyEbsDefaultKmsKeyId", params={"KmsKeyId": KEY}))
    assert got.ebs_default and got.key_refs == () and got.templates == () and got.group is None


@pytest.mark.parametrize("name", ALL_NAMES)
def test_a_refused_change_is_not_a_key_change(name):
    """The rule takes only successful calls (errorCode must not exist): a refused
    PutKeyPolicy changed nothing. (A refused KMS call is KmsAccessDeniedRule's business.)"""
    raw = event(name, params={"keyId": KEY})
    raw["detail"]["errorCode"] = "AccessDenied"
    assert classify(raw) != "KeyChangeRule" and parse(raw).trigger != Trigger.KEY_CHANGE


# -- keyfix's own role: the pattern and the code ------------------------------------------


@pytest.mark.parametrize("role", [f"arn:aws:iam::{ACCOUNT}:role/keyfix/keyfix-KeyfixRole-1",
                                  f"arn:aws:iam::{ACCOUNT}:role/keyfix/nested/path/r",
                                  "arn:aws:iam::444455556666:role/keyfix/other-deployment"])
@pytest.mark.parametrize("kind", ["AssumedRole", "FederatedUser", "IAMUser", "Unknown", None])
def test_keyfix_s_own_role_is_ignored_by_the_pattern_and_again_in_code(role, kind):
    raw = event("PutKeyPolicy", params={"keyId": KEY}, identity=assumed(role, kind=kind))
    assert classify(raw) is None  # the rule never delivers it
    # ... and handed over anyway (replay, keyfix handle, a hand-edited rule), the code ignores it
    assert change_of(KeyChangeEvent.model_validate(raw)).by_keyfix


@pytest.mark.parametrize("role", [f"arn:aws:iam::{ACCOUNT}:role/keyfix-admins/r", f"arn:aws:iam::{ACCOUNT}:role/team/keyfix/r",
                                  f"arn:aws:iam::{ACCOUNT}:role/KEYFIX/r", f"arn:aws:iam::{ACCOUNT}:role/keyfix",
                                  f"arn:aws:iam::{ACCOUNT}:user/keyfix/alice"])
def test_a_person_whose_path_only_resembles_keyfix_s_is_not_ignored(role):
    """IAM paths are case-sensitive and start at the root: only /keyfix/ is keyfix's."""
    raw = event("PutKeyPolicy", params={"keyId": KEY}, identity=assumed(role))
    assert classify(raw) == "KeyChangeRule" and not change(raw).by_keyfix


# -- hypothesis ---------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\n", "\x00", "alias/", "arn:", "arn:aws:kms:::key/", "lt-", "../../etc",
                     "x" * (MAX_NAME_CHARS + 1), "k" * (MAX_ARN_CHARS + 1), "🔑" * 300,
                     KEY, KEY.replace("us-east-1", "xx-north-99"), KEY.replace("aws", "aws-cn", 1),
                     f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/web-ebs", "mrk-1234abcd12ab34cd56ef1234567890ab",
                     ":role/keyfix/", f"arn:aws:iam::{ACCOUNT}:role/keyfix/r"]),
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(hostile_text, c, max_size=4),
                           max_leaves=20)
reference_keys = st.sampled_from(["keyId", "KeyId", "LaunchTemplateId", "launchTemplateId", "LaunchTemplateName",
                                  "launchTemplateName", "autoScalingGroupName", "KmsKeyId", "grantId"])
plausible_params = st.fixed_dictionaries({}, optional={
    "keyId": hostile_text, "autoScalingGroupName": hostile_text | json_scalars,
    "CreateLaunchTemplateVersionRequest": st.fixed_dictionaries(
        {}, optional={"LaunchTemplateId": hostile_text, "LaunchTemplateName": hostile_text | json_scalars}),
    "LaunchTemplateName": hostile_text})
params = st.one_of(
    plausible_params, plausible_params, st.none(), json_values,
    st.dictionaries(reference_keys, json_values, max_size=4),
    st.recursive(st.dictionaries(reference_keys, hostile_text, max_size=3),
                 lambda c: st.dictionaries(hostile_text, c | st.lists(c, max_size=3), max_size=2), max_leaves=12),
)
resources = st.one_of(st.none(), st.none(), json_values,
                      st.lists(st.fixed_dictionaries({"ARN": json_scalars}, optional={"type": hostile_text}), max_size=4))
role_paths = st.sampled_from(["/", "/keyfix/", "/keyfix/a/", "/team/keyfix/", "/KeyFix/", "/keyfixx/", "/x/keyfix/"])
assumed_roles = st.builds(lambda path, kind: assumed(f"arn:aws:iam::{ACCOUNT}:role{path}r", kind=kind), role_paths,
                          st.sampled_from(["AssumedRole", "FederatedUser", "IAMUser", "AWSService", "Root", "Unknown"]))
identities = st.one_of(
    assumed_roles, assumed_roles,
    st.builds(lambda path, kind: assumed(f"arn:aws:iam::{ACCOUNT}:role{path}r", kind=kind),
              role_paths, st.sampled_from(["AssumedRole", "FederatedUser", "IAMUser", "AWSService", "Root", "Unknown"])),
    st.fixed_dictionaries({}, optional={"type": json_scalars, "arn": hostile_text, "invokedBy": hostile_text,
                                        "accountId": hostile_text,
                                        "sessionContext": st.one_of(json_values, st.fixed_dictionaries(
                                            {"sessionIssuer": st.fixed_dictionaries({}, optional={
                                                "arn": st.one_of(hostile_text, json_scalars,
                                                                 role_paths.map(lambda p: f"arn:aws:iam::1:role{p}r"))})}))}),
    json_values,
)

OUTCOMES: Counter[str] = Counter()  # of the hostile property
WELL_FORMED: Counter[str] = Counter()  # of the well-formed one


def _check_change(raw: dict[str, Any], outcomes: Counter[str]) -> None:
    try:
        incident = parse(raw)
    except EventError as exc:
        outcomes["event_error"] += 1
        assert 0 < len(str(exc)) < 5000
        incident = None
    if incident is not None and incident.trigger != Trigger.KEY_CHANGE:
        outcomes["not_delivered"] += 1  # no rule, or another rule, takes it
    # The code must hold whether or not the rule delivered the record (replays, keyfix handle).
    try:
        model = KeyChangeEvent.model_validate(raw)
    except ValueError:  # pydantic's ValidationError
        assert incident is None or incident.trigger != Trigger.KEY_CHANGE  # parse reported it, or never took it
        return
    got = change_of(model)
    name = raw["detail"]["eventName"]
    assert got.event_name == name and isinstance(got.who, str) and got.who
    assert all(isinstance(k, str) and 0 < len(k) <= MAX_ARN_CHARS for k in got.key_refs)
    assert all(isinstance(t, str) and 0 < len(t) <= MAX_NAME_CHARS for t in got.templates)
    assert len(set(got.key_refs)) == len(got.key_refs) and len(set(got.templates)) == len(got.templates)
    assert got.group is None or (isinstance(got.group, str) and 1 <= len(got.group) <= 255)
    # Each event name names only its own kind of target.
    assert (not got.key_refs) or name in KMS_CHANGES
    assert (not got.templates) or name in TEMPLATE_CHANGES
    assert (got.group is None) or name in GROUP_CHANGES
    assert got.ebs_default == (name in EBS_DEFAULT_CHANGES)
    if incident is not None and incident.trigger == Trigger.KEY_CHANGE:
        assert incident.action == f"{SOURCES[name]}:{name}"
        assert incident.key_arns == got.key_refs and incident.group_name == got.group
    outcomes["by_keyfix" if got.by_keyfix else "named_something" if
             (got.key_refs or got.templates or got.group or got.ebs_default) else "names_nothing"] += 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(ALL_NAMES) | st.sampled_from(ALL_NAMES) | st.sampled_from(ALL_NAMES) | hostile_text,
       params=params, resources=resources, identity=identities,
       response=st.none() | json_values, time=st.none() | st.none() | st.none() | json_scalars)
def test_any_key_change_event_parses_to_a_bounded_change_or_a_clear_error(name, params, resources, identity,
                                                                          response, time):
    raw = event(name if isinstance(name, str) else "PutKeyPolicy", params=params, resources=resources,
                identity=identity, response=response)
    if time is not None:
        raw["detail"]["eventTime"] = time
    _check_change(raw, OUTCOMES)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ALL_NAMES), params=plausible_params, identity=assumed_roles,
       resources=st.none() | st.lists(st.fixed_dictionaries({"ARN": st.sampled_from([KEY]) | hostile_text}), max_size=3))
def test_well_formed_key_change_events_name_their_targets_within_bounds(name, params, identity, resources):
    _check_change(event(name, params=params, resources=resources, identity=identity), WELL_FORMED)


def test_every_outcome_of_the_change_fuzz_was_reached():
    """Run after the properties above (pytest keeps file order): the generators reached
    every kind of outcome, so the assertions above were not vacuous."""
    if not OUTCOMES or not WELL_FORMED:
        pytest.fail("the properties above did not run first")
    print(f"key-change fuzz outcomes: hostile {dict(OUTCOMES)}, well-formed {dict(WELL_FORMED)}")
    assert OUTCOMES["event_error"] >= 20 and OUTCOMES["not_delivered"] >= 20
    assert min(WELL_FORMED[k] for k in ("by_keyfix", "named_something", "names_nothing")) >= 20


@settings(max_examples=300, deadline=None)
@given(identity=identities, name=st.sampled_from(ALL_NAMES))
def test_whatever_the_pattern_ignores_as_keyfix_s_own_the_code_ignores_too(identity, name):
    """The rule's pattern excludes sessions of roles under /keyfix/; the code must exclude
    at least as much (it may exclude more: a path-carrying caller ARN)."""
    raw = event(name, params={"keyId": KEY, "autoScalingGroupName": "web-asg"}, identity=identity)
    valid = event(name, params={"keyId": KEY, "autoScalingGroupName": "web-asg"})
    assert classify(valid) == "KeyChangeRule"
    if classify(raw) == "KeyChangeRule":
        OWN_ROLE["delivered"] += 1
        return  # delivered: the code decides, checked by the property above
    try:
        model = KeyChangeEvent.model_validate(raw)
    except ValueError:  # pydantic's ValidationError: such a record never reaches the code at all
        OWN_ROLE["rejected_by_the_model"] += 1
        return
    context = identity.get("sessionContext") if isinstance(identity, dict) else None
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    issuer_arn = issuer.get("arn") if isinstance(issuer, dict) else None
    assert isinstance(issuer_arn, str) and ":role/keyfix/" in issuer_arn, "the pattern excluded something else"
    assert change_of(model).by_keyfix
    OWN_ROLE["excluded_by_both"] += 1


OWN_ROLE: Counter[str] = Counter()


def test_every_outcome_of_the_own_role_property_was_reached():
    if not OWN_ROLE:
        pytest.fail("the property above did not run first")
    print(f"own-role outcomes: {dict(OWN_ROLE)}")
    assert {"delivered", "excluded_by_both"} <= set(OWN_ROLE)
