"""What SAM deploys from the function's events (issue #13): the template as the real
aws-sam-translator expands it (tests/unit/sam_expanded.py). The source template's events are
checked in test_template.py; here, that each becomes the rule and permission keyfix relies on,
with its state (ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS included), retries and
dead-letter queue, and that every reference to a generated rule (queue policy, alarm) names one
that exists."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

from tests.unit.sam_expanded import expanded_template
from tests.unit.test_template import FUNCTION, RULES, SAMCONFIG, _taggable, load_template, of_type

SOURCE = load_template()["Resources"]
EVENTS = SOURCE[FUNCTION]["Properties"]["Events"]
FUNCTION_ARN = {"Fn::GetAtt": [FUNCTION, "Arn"]}
DLQ = {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
RULE_RETRIES = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expanded_template()


@pytest.fixture(scope="module")
def rules(expanded) -> dict[str, Any]:
    return of_type(expanded["Resources"], "AWS::Events::Rule")


def generated(event: str) -> str:
    """SAM's logical id for the rule of a function event.
    https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification-generated-resources-function.html"""
    return f"{FUNCTION}{event}"


def test_sam_makes_exactly_one_rule_per_event(rules):
    assert set(rules) == {generated(name) for name in EVENTS}
    assert {name for name, ev in EVENTS.items() if ev["Type"] == "EventBridgeRule"} == RULES


@pytest.mark.parametrize("event", sorted(RULES))
def test_each_rule_carries_its_pattern_state_retries_and_dead_letter_queue(rules, event):
    source = EVENTS[event]["Properties"]
    props = rules[generated(event)]["Properties"]
    assert props["EventPattern"] == source["Pattern"]
    assert props["State"] == source["State"] != "DISABLED"
    assert props["Targets"] == [{"Id": "keyfix", "Arn": FUNCTION_ARN, "RetryPolicy": RULE_RETRIES,
                                 "DeadLetterConfig": DLQ}]
    assert "EventBusName" not in props  # the default bus, where AWS services' events arrive


def test_the_translator_passes_the_read_only_management_events_state_through(rules):
    # The reason keyfix once wrote this rule by hand (issue #13): SAM must not rewrite the state.
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html
    states = {name: r["Properties"]["State"] for name, r in rules.items()}
    assert states.pop(generated("KmsAccessDeniedRule")) == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    assert states.pop(generated("Sweep")) == {"Fn::If": ["HasSweep", "ENABLED", "DISABLED"]}
    assert set(states.values()) == {"ENABLED"} and len(states) == len(RULES) - 1


def test_the_sweep_has_a_dead_letter_queue_too(rules):
    target, = rules[generated("Sweep")]["Properties"]["Targets"]
    assert target["Arn"] == FUNCTION_ARN and target["DeadLetterConfig"] == DLQ
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 900


def test_each_rule_and_nothing_else_may_invoke_the_function(expanded, rules):
    permissions = of_type(expanded["Resources"], "AWS::Lambda::Permission")
    by_source = {}
    for name, p in permissions.items():
        props = p["Properties"]
        assert (props["Action"], props["Principal"], props["FunctionName"]) == \
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": FUNCTION}), name
        rule, attribute = props["SourceArn"]["Fn::GetAtt"]
        assert attribute == "Arn" and rule not in by_source, name
        by_source[rule] = name
    assert set(by_source) == set(rules)


def test_every_rule_may_dead_letter_and_no_one_else(expanded, rules):
    statement, = expanded["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == sorted(rules)
    assert all(s["Fn::GetAtt"][1] == "Arn" for s in sources)


def test_the_failed_invocations_alarm_watches_every_rule(expanded, rules):
    alarm = expanded["Resources"]["RuleFailedInvocationsAlarm"]["Properties"]
    stats = [m for m in alarm["Metrics"] if "MetricStat" in m]
    expressions = [m for m in alarm["Metrics"] if "Expression" in m]
    assert len(stats) <= 10  # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html
    watched = []
    for m in stats:
        metric = m["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["MetricName"], m["MetricStat"]["Stat"], m["ReturnData"]) == \
            ("AWS/Events", "FailedInvocations", "Sum", False)
        (dimension,) = metric["Dimensions"]
        assert dimension["Name"] == "RuleName"
        watched.append(dimension["Value"]["Ref"])
    assert sorted(watched) == sorted(rules)
    (returned,) = [m for m in expressions if m["ReturnData"]]
    assert expressions == [returned]
    # every metric counts (METRICS() is all of them), a rule without data counts 0
    assert returned["Expression"] == "SUM(FILL(METRICS(), 0))"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] == alarm["OKActions"]


def test_the_dashboard_graphs_every_rules_failed_invocations(expanded, rules):
    body, variables = expanded["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))["widgets"]
    graphed = [line[3] for w in widgets for line in w["properties"].get("metrics", [])
               if line[:3] == ["AWS/Events", "FailedInvocations", "RuleName"]]
    assert sorted(variables[name]["Ref"] for name in graphed) == sorted(rules)


def _references(node: Any) -> set[str]:
    """Every resource, parameter or pseudo parameter named by Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                names = {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= names - set(variables)
                found |= _references(variables)
            else:
                found |= _references(value)
    return found


def test_nothing_refers_to_a_resource_that_is_not_deployed(expanded):
    # e.g. the queue policy, the alarm or the dashboard naming a rule by its old hand-written name
    known = set(expanded["Resources"]) | set(expanded.get("Parameters", {})) | {
        "AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::StackName", "AWS::StackId",
        "AWS::NoValue", "AWS::URLSuffix"}
    assert _references(expanded["Resources"]) | _references(expanded.get("Outputs", {})) <= known


def test_untagged_resources_are_only_the_rules_sam_cannot_tag(expanded, rules):
    untagged = []
    for name, resource in expanded["Resources"].items():
        kind = _taggable(resource["Type"])
        if kind is None:
            continue
        tags = resource.get("Properties", {}).get("Tags")
        pairs = tags if kind == "object" else {t.get("Key"): t.get("Value") for t in tags or []}
        if not isinstance(pairs, dict) or pairs.get("application") != "keyfix":
            untagged.append(name)
    assert sorted(untagged) == sorted(rules)
    # what may tag them: the stack's own tags, in every samconfig.toml environment
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    environments = [env for env in config.values() if isinstance(env, dict) and "deploy" in env]
    assert len(environments) >= 2
    for env in environments:
        assert "application=keyfix" in env["deploy"]["parameters"]["tags"].split()
