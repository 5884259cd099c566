"""A duplicate's report is the first run's, rebuilt from the stored record; what the first run
must settle before it may answer for later events; how the text output shows a duplicate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.duplicates import DuplicateReport, duplicate_report, first_run_record, unsettled
from keyfix.render import report_text
from keyfix.report import Cause, EventRef, Finding, Fix, FixKind, FixStatus, Mode, Report, Trigger

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "src/keyfix/schemas/report.schema.json").read_text())
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FIRST = EventRef("first-id", "aws.autoscaling", "EC2 Instance Launch Unsuccessful", Trigger.ASG_LAUNCH_FAILURE)
LATER = EventRef("later-id", "aws.autoscaling", "EC2 Instance Launch Unsuccessful", Trigger.ASG_LAUNCH_FAILURE)
WHEN = datetime(2025, 3, 14, 9, 12, 41, tzinfo=UTC)


def fix(status: FixStatus = FixStatus.APPLIED, reason: str | None = None) -> Fix:
    return Fix(FixKind.KEY_POLICY_STATEMENT, status, "111122223333", KEY, document=[{"Sid": "keyfix-x"}],
               cli=["aws kms put-key-policy ..."], reason=reason)


def finding(cause: Cause = Cause.SLR_NOT_IN_KEY_POLICY, *fixes: Fix) -> Finding:
    return Finding(cause, "arn:aws:iam::111122223333:role/r", KEY, ["kms:CreateGrant"], "why", list(fixes),
                   resource="arn:aws:autoscaling:...:autoScalingGroupName/web-asg")


def first_report(*findings: Finding, mode: Mode = Mode.APPLY) -> dict:
    return Report(FIRST, mode, list(findings)).to_dict()


def test_a_duplicate_carries_the_first_findings_its_own_event_and_duplicate_of():
    first = first_report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix()))
    duplicate = duplicate_report(first_run_record(first, WHEN), LATER, Mode.APPLY)

    assert isinstance(duplicate, DuplicateReport)
    assert duplicate.to_dict() == {**first, "event": LATER.to_dict(), "duplicate_of": "first-id"}
    assert duplicate.handled_at == "2025-03-14T09:12:41Z"
    jsonschema.validate(duplicate.to_dict(), SCHEMA)
    assert "handled_at" not in duplicate.to_dict()  # not part of keyfix.report/1


def test_a_record_stored_before_handled_at_existed_still_gives_the_findings():
    first = first_report(finding(Cause.NOT_KMS))
    duplicate = duplicate_report(first, LATER, Mode.APPLY)  # the bare report, as stored before
    assert (duplicate.duplicate_of, duplicate.handled_at) == ("first-id", None)
    assert [f.to_dict() for f in duplicate.findings] == first["findings"]


@pytest.mark.parametrize("stored, named", [
    (None, None),
    ("a string", None),
    ({"run": 1}, None),
    ({"schema": "keyfix.first-run/1", "report": [], "handled_at": "x"}, None),
    ({**first_report(), "event": {"id": 7}}, None),
    ({**first_report(), "findings": "none"}, "first-id"),
    ({**first_report(), "findings": [{"cause": "made-up"}]}, "first-id"),
    ({**first_report(), "findings": [{**finding().to_dict(), "fixes": [{"kind": "grant", "status": "?"}]}]},
     "first-id"),
    ({**first_report(), "findings": [{**finding().to_dict(), "principal": ["x"]}]}, "first-id"),
    ({**first_report(), "mode": "yolo"}, "first-id"),
])
def test_an_unreadable_record_gives_an_undetermined_finding_never_a_crash_or_an_empty_report(stored, named):
    duplicate = duplicate_report(stored, LATER, Mode.PROPOSE)

    (only,) = duplicate.findings
    assert only.cause == Cause.UNDETERMINED and "cannot be read" in only.explanation
    assert duplicate.duplicate_of == named and duplicate.event == LATER
    jsonschema.validate(duplicate.to_dict(), SCHEMA)


@pytest.mark.parametrize("findings, settled", [
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.APPLIED))], True),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.ALREADY_PRESENT))], True),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.PROPOSED))], True),
    ([finding(Cause.KEY_PENDING_DELETION, fix(FixStatus.PROPOSED, "keyfix never changes a key's state"))], True),
    ([finding(Cause.NOT_KMS)], True),
    ([finding(Cause.NO_MISSING_PERMISSION)], True),
    ([], True),
    ([finding(Cause.UNDETERMINED)], False),
    ([finding(Cause.NOT_KMS), finding(Cause.UNDETERMINED)], False),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.FAILED, "PutKeyPolicy: ThrottlingException"))], False),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.UNVERIFIED))], False),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.REFUSED, "key not opted in"))], False),
    ([finding(Cause.SLR_NOT_IN_KEY_POLICY, fix(FixStatus.APPLIED),
              fix(FixStatus.PROPOSED, "not attempted: less than 15 s of Lambda time left"))], False),
])
def test_only_a_run_that_settled_the_incident_is_remembered(findings, settled):
    why = unsettled(first_report(*findings))
    assert (why == []) is settled, why


# ---- text output ------------------------------------------------------------------------------

def test_the_text_of_a_duplicate_names_the_first_event_and_shows_its_findings():
    first = first_report(finding(Cause.SLR_NOT_IN_KEY_POLICY, fix()))
    text = report_text(duplicate_report(first_run_record(first, WHEN), LATER, Mode.APPLY))

    lines = text.splitlines()
    assert lines[0].endswith("| event later-id")
    assert lines[1] == "Duplicate of event first-id, handled at 2025-03-14T09:12:41Z; its findings:"
    assert "Finding 1: slr-not-in-key-policy" in lines and "No finding" not in text
    assert any(line.strip().startswith("fix [applied] key-policy-statement") for line in lines)


def test_the_text_of_a_duplicate_whose_first_run_found_nothing_says_so():
    text = report_text(duplicate_report(first_run_record(first_report(), WHEN), LATER, Mode.APPLY))
    assert "Duplicate of event first-id" in text and "the first run found nothing to do" in text
    assert "not one keyfix acts on" not in text


def test_a_first_report_without_duplicate_of_reads_as_before():
    assert report_text(Report(FIRST, Mode.APPLY)).splitlines()[1] == "No finding: the event is not one keyfix acts on."


# ---- properties -------------------------------------------------------------------------------

texts = st.text(max_size=20)
fixes = st.builds(Fix, st.sampled_from(list(FixKind)), st.sampled_from(list(FixStatus)), texts, texts,
                  document=st.none() | st.dictionaries(texts, texts, max_size=2),
                  cli=st.lists(texts, max_size=2), reason=st.none() | texts)
findings = st.builds(Finding, st.sampled_from(list(Cause)), st.none() | texts, st.none() | texts,
                     st.lists(texts, max_size=3), texts, st.lists(fixes, max_size=3),
                     resource=st.none() | texts, predicted=st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(findings, max_size=4), st.sampled_from(list(Mode)))
def test_any_first_report_round_trips_into_its_duplicate(found, mode):
    first = Report(FIRST, mode, found).to_dict()
    stored = json.loads(json.dumps(first_run_record(first, WHEN)))  # as Powertools stores it: JSON
    duplicate = duplicate_report(stored, LATER, Mode.PROPOSE)
    assert duplicate.to_dict() == {**first, "event": LATER.to_dict(), "duplicate_of": "first-id"}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                           max_leaves=12)


@st.composite
def damaged_records(draw):
    """A real record with one part replaced by arbitrary JSON, or arbitrary JSON altogether."""
    record = first_run_record(Report(FIRST, Mode.APPLY, draw(st.lists(findings, max_size=2))).to_dict(), WHEN)
    path = draw(st.sampled_from([(), ("report",), ("report", "event"), ("report", "findings"), ("report", "mode"),
                                 ("handled_at",)]))
    if not path:
        return draw(json_values)
    target = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = draw(json_values)
    return record


@settings(max_examples=300, deadline=None)
@given(damaged_records())
def test_any_stored_record_gives_a_valid_report_and_never_raises(stored):
    duplicate = duplicate_report(stored, LATER, Mode.APPLY)
    report = duplicate.to_dict()
    jsonschema.validate(report, SCHEMA)
    assert report["event"] == LATER.to_dict()
    first = stored.get("report") if isinstance(stored, dict) else None
    damaged = [f for f in duplicate.findings if f.cause == Cause.UNDETERMINED and "cannot be read" in f.explanation]
    if damaged:  # said so, in a finding of its own
        assert duplicate.findings == damaged[:1]
    else:  # readable: exactly the first run's findings, never an invented or empty stand-in
        assert report["duplicate_of"] == "first-id" and report["findings"] == first["findings"]
    OUTCOMES["damaged" if damaged else "readable"] += 1
    assert report_text(duplicate).splitlines()[1].startswith("Duplicate of event ") or report["duplicate_of"] is None


OUTCOMES = {"damaged": 0, "readable": 0}


def test_the_damaged_record_property_saw_both_outcomes():
    """Runs after the property (file order): both branches above were exercised."""
    test_any_stored_record_gives_a_valid_report_and_never_raises()
    assert OUTCOMES["damaged"] > 0 and OUTCOMES["readable"] > 0, OUTCOMES
