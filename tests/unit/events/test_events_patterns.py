"""The rules' event patterns (data) and the EventBridge matcher.

Semantics: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
and aws/event-ruler's README (array matching, exists on non-leaf nodes, wildcard escapes, $or).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from _events_support import ROOT, SAMPLES, load, sample

from keyfix.events import parse
from keyfix.events.patterns import (
    PATTERNS,
    RULE_TRIGGERS,
    PatternError,
    classify,
    matches,
    matching_rules,
    validate_pattern,
    wildcard_match,
)
from keyfix.report import Trigger

TEMPLATE = ROOT / "template.yaml"


class _IgnoreTags(yaml.SafeLoader):
    """Reads template.yaml; CloudFormation short-form tags (!GetAtt ...) become None."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


# -- the patterns as data ------------------------------------------------------------------


def test_patterns_are_the_specified_ones():
    assert PATTERNS["AsgLaunchFailureRule"] == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance Launch Unsuccessful"],
    }
    terminated = PATTERNS["AsgLaunchTerminatedRule"]
    assert terminated["source"] == ["aws.autoscaling"]
    assert terminated["detail-type"] == ["EC2 Instance Terminate Successful"]
    codes = [{"wildcard": "*Client.InvalidKMSKey*"}, {"wildcard": "*Client.InternalError*"}]
    assert terminated["detail"] == {"$or": [{"Cause": codes}, {"StatusMessage": codes}]}
    kms = PATTERNS["KmsAccessDeniedRule"]
    assert kms["source"] == ["aws.kms"]
    assert kms["detail-type"] == ["AWS API Call via CloudTrail"]
    assert kms["detail"]["eventSource"] == ["kms.amazonaws.com"]
    assert kms["detail"]["errorCode"] == [{"prefix": "AccessDenied"}]
    assert PATTERNS["EbsVolumeFailureRule"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EBS Volume Notification"],
        "detail": {"result": ["failed"]},
    }
    assert PATTERNS["Ec2StoppedRule"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["stopped", "terminated"]},
    }


def test_patterns_equal_the_template():
    # The rules are the function's EventBridgeRule events, named as PATTERNS names them:
    # the same names, the same patterns, none missing on either side.
    assert TEMPLATE.is_file(), TEMPLATE
    resources = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_IgnoreTags)["Resources"]
    events = resources["KeyfixFunction"]["Properties"]["Events"]
    in_template = {name: ev["Properties"]["Pattern"] for name, ev in events.items() if ev["Type"] == "EventBridgeRule"}
    assert set(in_template) == set(PATTERNS)
    for name, pattern in PATTERNS.items():
        assert in_template[name] == pattern, name


def test_every_rule_has_a_trigger_and_a_valid_aws_pattern():
    assert set(RULE_TRIGGERS) == set(PATTERNS)
    assert set(RULE_TRIGGERS.values()) == {
        Trigger.ASG_LAUNCH_FAILURE,
        Trigger.KMS_ACCESS_DENIED,
        Trigger.EBS_VOLUME_FAILURE,
        Trigger.EC2_LAUNCH_FAILURE,
        Trigger.RECOVERY,
        Trigger.KEY_CHANGE,
    }
    for name, pattern in PATTERNS.items():
        validate_pattern(pattern)
        assert all(s.startswith("aws.") for s in pattern["source"]), name


SAMPLE_RULES = {
    "asg-launch-unsuccessful-a1.json": "AsgLaunchFailureRule",
    "asg-launch-cancelled-a1.json": "AsgLaunchFailureRule",
    "asg-launch-unsuccessful-a2.json": "AsgLaunchFailureRule",
    "asg-launch-unsuccessful-not-kms.json": "AsgLaunchFailureRule",
    "asg-terminate-successful-a1.json": "AsgLaunchTerminatedRule",
    "cloudtrail-kms-accessdenied-b-user-createvolume.json": "KmsAccessDeniedRule",
    "cloudtrail-kms-accessdenied-c-role-creategrant.json": "KmsAccessDeniedRule",
    "cloudtrail-kms-accessdenied-slr.json": "KmsAccessDeniedRule",
    "cloudtrail-kms-putkeypolicy-change.json": "KeyChangeRule",
    "ebs-volume-failed-pending-deletion.json": "EbsVolumeFailureRule",
    "ebs-volume-failed-disabled.json": "EbsVolumeFailureRule",
    "ec2-instance-stopped.json": "Ec2StoppedRule",
    "unrecognised.json": None,
}


@pytest.mark.parametrize("name", sorted(SAMPLE_RULES))
def test_each_sample_matches_exactly_its_rule(name):
    event = sample(name)
    expected = SAMPLE_RULES[name]
    assert matching_rules(event) == ([expected] if expected else [])
    assert classify(event) == expected
    assert parse(event).trigger is (RULE_TRIGGERS[expected] if expected else Trigger.UNRECOGNISED)


def test_sample_table_covers_every_sample():
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(SAMPLE_RULES)


# -- the rules on variations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_message", "cause", "matched"),
    [
        ("... Termination Reason: Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state", "", True),
        ("... Termination Reason: Client.InternalError: Client error on launch", "", True),
        ("", "Termination Reason: Client.InternalError: Client error on launch", True),  # the $or's other branch
        ("... Termination Reason: Server.InternalError: Internal error on launch", "", False),
        ("", "At 2025-03-14T09:13:20Z an instance was taken out of service in response to a user request.", False),
        ("client.internalerror", "", False),  # wildcard is case-sensitive
    ],
)
def test_terminate_rule_needs_a_kms_code(status_message, cause, matched):
    event = sample("asg-terminate-successful-a1.json")
    event["detail"]["StatusMessage"] = status_message
    event["detail"]["Cause"] = cause
    assert (classify(event) == "AsgLaunchTerminatedRule") is matched


@pytest.mark.parametrize(
    ("code", "matched"),
    [("AccessDenied", True), ("AccessDeniedException", True), ("IncorrectKeyException", False), ("accessdenied", False)],
)
def test_kms_rule_error_codes(code, matched):
    event = sample("cloudtrail-kms-accessdenied-b-user-createvolume.json")
    event["detail"]["errorCode"] = code
    assert (classify(event) == "KmsAccessDeniedRule") is matched


def test_kms_rule_ignores_keyfix_own_role_but_not_others():
    event = sample("cloudtrail-kms-accessdenied-c-role-creategrant.json")
    assert classify(event) == "KmsAccessDeniedRule"
    own = copy.deepcopy(event)
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
        "arn:aws:iam::111122223333:role/keyfix/keyfix-function-role"
    )
    assert classify(own) is None
    no_issuer = copy.deepcopy(event)
    del no_issuer["detail"]["userIdentity"]["sessionContext"]
    assert classify(no_issuer) == "KmsAccessDeniedRule"


def test_kms_rule_needs_kms_source_and_event_source():
    event = sample("cloudtrail-kms-accessdenied-slr.json")
    event["detail"]["eventSource"] = "ec2.amazonaws.com"
    assert classify(event) is None
    event = sample("cloudtrail-kms-accessdenied-slr.json")
    event["source"] = "aws.ec2"
    assert classify(event) is None


@pytest.mark.parametrize(("result", "matched"), [("failed", True), ("available", False), ("deleted", False)])
def test_ebs_rule_results(result, matched):
    event = sample("ebs-volume-failed-disabled.json")
    event["detail"]["result"] = result
    assert (classify(event) == "EbsVolumeFailureRule") is matched


@pytest.mark.parametrize(
    ("state", "matched"),
    [("stopped", True), ("terminated", True), ("pending", False), ("running", False), ("stopping", False)],
)
def test_ec2_rule_states(state, matched):
    event = sample("ec2-instance-stopped.json")
    event["detail"]["state"] = state
    assert (classify(event) == "Ec2StoppedRule") is matched


def test_classify_refuses_non_aws_sources_even_if_a_pattern_matches():
    custom = {"Mine": {"source": [{"prefix": ""}]}}
    assert matching_rules({"source": "my.app"}, custom) == ["Mine"]
    assert classify({"source": "my.app"}, custom) is None
    assert classify({"source": "aws.app"}, custom) == "Mine"
    assert classify({"source": 5}, custom) is None
    assert classify(["not", "a", "dict"]) is None


# -- matcher semantics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # exact values, JSON types
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "X"}, False),
        ({"a": ["x"]}, {}, False),
        ({"a": [1]}, {"a": 1}, True),
        ({"a": [1]}, {"a": 1.0}, True),
        ({"a": [1]}, {"a": "1"}, False),
        ({"a": [1]}, {"a": True}, False),
        ({"a": [True]}, {"a": True}, True),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [None]}, {"a": None}, True),
        ({"a": [None]}, {}, False),
        ({"a": [""]}, {"a": ""}, True),
        # several values: any; several fields: all
        ({"a": ["x", "y"]}, {"a": "y"}, True),
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "y"}, True),
        # arrays in the event: any element
        ({"a": ["x"]}, {"a": ["w", "x"]}, True),
        ({"a": ["x"]}, {"a": []}, False),
        ({"a": ["x"]}, {"a": [["x"]]}, True),
        # nesting
        ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
        ({"a": ["x"]}, {"a": {"b": "x"}}, False),
        # prefix / suffix / equals-ignore-case
        ({"a": [{"prefix": "Access"}]}, {"a": "AccessDenied"}, True),
        ({"a": [{"prefix": "Access"}]}, {"a": "accessDenied"}, False),
        ({"a": [{"prefix": {"equals-ignore-case": "ACCESS"}}]}, {"a": "accessDenied"}, True),
        ({"a": [{"prefix": "1"}]}, {"a": 12}, False),
        ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
        ({"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"a": "x.png"}, True),
        ({"a": [{"equals-ignore-case": "alice"}]}, {"a": "ALICE"}, True),
        ({"a": [{"equals-ignore-case": "alice"}]}, {"a": "ALICEs"}, False),
        # wildcard
        ({"a": [{"wildcard": "*KMS*"}]}, {"a": "xKMSy"}, True),
        ({"a": [{"wildcard": "*KMS*"}]}, {"a": "KMS"}, True),
        ({"a": [{"wildcard": "*KMS*"}]}, {"a": "kms"}, False),
        ({"a": [{"wildcard": "a*b*c"}]}, {"a": "abc"}, True),
        ({"a": [{"wildcard": "a*b*c"}]}, {"a": "a-b-b-c"}, True),
        ({"a": [{"wildcard": "a*b*c"}]}, {"a": "acb"}, False),
        ({"a": [{"wildcard": "a*a"}]}, {"a": "a"}, False),  # segments must not overlap
        ({"a": [{"wildcard": "x"}]}, {"a": "x"}, True),
        ({"a": [{"wildcard": "*"}]}, {"a": ""}, True),
        ({"a": [{"wildcard": "*"}]}, {"a": 1}, False),
        ({"a": [{"wildcard": "a\\*"}]}, {"a": "a*"}, True),
        ({"a": [{"wildcard": "a\\*"}]}, {"a": "ab"}, False),
        ({"a": [{"wildcard": "a\\\\*"}]}, {"a": "a\\bc"}, True),
        # anything-but
        ({"a": [{"anything-but": "x"}]}, {"a": "y"}, True),
        ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": "x"}]}, {}, False),  # a missing field never matches it
        ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "y"}, False),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": 3}, True),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": 2}, False),
        ({"a": [{"anything-but": {"prefix": "us-"}}]}, {"a": "eu-west-1"}, True),
        ({"a": [{"anything-but": {"prefix": "us-"}}]}, {"a": "us-east-1"}, False),
        ({"a": [{"anything-but": {"suffix": ".png"}}]}, {"a": "x.png"}, False),
        ({"a": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"a": "/usr/lib/x"}, False),
        ({"a": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"a": "/usr/bin/x"}, True),
        ({"a": [{"anything-but": {"equals-ignore-case": "init"}}]}, {"a": "INIT"}, False),
        ({"a": [{"anything-but": "x"}]}, {"a": ["x", "y"]}, True),  # an element that is not excluded
        # exists: leaf nodes only
        ({"a": [{"exists": True}]}, {"a": "x"}, True),
        ({"a": [{"exists": True}]}, {"a": None}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"exists": True}]}, {"a": {"b": 1}}, False),
        ({"a": [{"exists": True}]}, {"a": []}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": False}]}, {"a": "x"}, False),
        ({"a": [{"exists": False}]}, {"a": {"b": 1}}, True),
        ({"a": {"b": [{"exists": False}]}}, {}, True),
        ({"a": {"b": [{"exists": False}]}}, {"a": "scalar"}, True),
        # $or (2+ objects)
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"a": "2"}, False),
        ({"c": ["3"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"a": "1", "c": "4"}, False),
        ({"d": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}}, {"d": {"a": "1"}}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]}, {"b": "2", "d": "4"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]}, {"b": "2", "d": "5"}, False),
        # "$or" with one object is an ordinary field name (event-ruler)
        ({"$or": {"a": ["1"]}}, {"$or": {"a": "1"}}, True),
        # arrays of objects: each element against the whole sub-pattern
        (
            {"employees": {"firstName": ["Anna"]}},
            {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}]},
            True,
        ),
        (
            {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
            {"employees": [{"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]},
            False,
        ),
        ({"r": {"ARN": [{"exists": False}]}}, {"r": [{"ARN": "arn:x"}]}, False),
        ({"r": {"ARN": [{"exists": False}]}}, {"r": ["scalar"]}, True),
    ],
)
def test_matcher(pattern, event, expected):
    validate_pattern(pattern)
    assert matches(pattern, event) is expected


@pytest.mark.parametrize("event", [None, "x", 1, [], [{"a": "x"}], True])
def test_non_object_events_only_match_absence(event):
    assert matches({"a": ["x"]}, event) is False
    assert matches({"a": [{"exists": False}]}, event) is True


@pytest.mark.parametrize(
    "pattern",
    [
        {"a": []},
        {"a": "x"},
        {"a": [{"numeric": [">", 0]}]},
        {"a": [{"cidr": "10.0.0.0/8"}]},
        {"a": [{"wildcard": "a**b"}]},
        {"a": [{"wildcard": "a\\b"}]},
        {"a": [{"exists": "yes"}]},
        {"a": [{"prefix": "x", "suffix": "y"}]},
        {"a": [{"anything-but": []}]},
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        {"a": [["x"]]},
        {},
    ],
)
def test_invalid_patterns_are_rejected(pattern):
    with pytest.raises(PatternError):
        validate_pattern(pattern)


def test_an_unsupported_operator_raises_when_matched_not_silently_false():
    with pytest.raises(PatternError):
        matches({"a": [{"numeric": [">", 0]}]}, {"a": 1})


def test_wildcard_is_linear_on_large_inputs():
    big = "x" * 2_000_000
    assert wildcard_match("*Client.InvalidKMSKey*", big + "Client.InvalidKMSKey") is True
    assert wildcard_match("*a*b*c*d*e*f*", big) is False


def test_patterns_are_not_mutated_by_matching():
    before = copy.deepcopy(PATTERNS)
    for path in Path(SAMPLES).glob("*.json"):
        classify(load(path))
    assert PATTERNS == before
