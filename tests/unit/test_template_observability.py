"""The dashboard, saved queries, alarms on keyfix's own metrics and the event archive in
template.yaml (sam validate --lint checks their syntax; these check what they say)."""

from __future__ import annotations

import json
import re

from tests.unit.test_template import EVENTS, RULES, all_event_patterns, event_matches, load_template

RES = load_template()["Resources"]


def test_dashboard_shows_what_on_call_asked_for():
    body = RES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "X", body))["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    for wanted in ("Findings by cause", "Fixes by status", "Predictions", "Time to repair", "Errors", "Dead-letter queue depth"):
        assert any(t.startswith(wanted) for t in titles), wanted
    # the metric names and dimensions are the ones keyfix.observe emits
    expressions = [m[0]["expression"] for w in widgets for m in w["properties"].get("metrics", [])
                   if isinstance(m[0], dict)]
    assert """SEARCH('{keyfix,Cause,service} MetricName="Findings"', 'Sum', 3600)""" in expressions
    assert """SEARCH('{keyfix,Status,service} MetricName="Fixes"', 'Sum', 3600)""" in expressions
    assert """SEARCH('{keyfix,Cause,service} MetricName="Predictions"', 'Sum', 3600)""" in expressions


def test_saved_queries_read_the_functions_log_group_and_its_flat_keys():
    queries = {n: r["Properties"] for n, r in RES.items() if r["Type"] == "AWS::Logs::QueryDefinition"}
    assert len(queries) == 3
    for props in queries.values():
        assert props["LogGroupNames"] == [{"Ref": "KeyfixLogGroup"}] and props["Name"].startswith("keyfix/")
    assert any("stats count(*) as reports by cause" in p["QueryString"] for p in queries.values())


def test_own_metric_alarms_select_what_observe_emits():
    from keyfix.observe import log_keys  # noqa: F401 - the module the dimensions come from

    wanted = {("Fixes", "Status", "failed"), ("Fixes", "Status", "unverified"), ("Findings", "Cause", "undetermined")}
    got = set()
    for r in RES.values():
        p = r["Properties"]
        if r["Type"] == "AWS::CloudWatch::Alarm" and p.get("Namespace") == "keyfix":
            dims = {d["Name"]: d["Value"] for d in p["Dimensions"]}
            assert dims["service"] == "keyfix"
            (name,) = set(dims) - {"service"}
            got.add((p["MetricName"], name, dims[name]))
            assert p["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert got == wanted


def test_the_archive_keeps_every_event_the_rules_take_and_not_every_kms_call():
    archive = RES["EventArchive"]["Properties"]["EventPattern"]
    patterns = {n: p for n, p in all_event_patterns(RES).items() if n in RULES}
    taken = [event for _, event, expected in EVENTS if expected & RULES]
    assert taken
    for event in taken:
        assert event_matches(archive, event), event
    ok_call = next(e for label, e, _ in EVENTS if label == "kms ok")
    assert not event_matches(archive, ok_call) and not any(event_matches(p, ok_call) for p in patterns.values())
