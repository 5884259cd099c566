"""Each entry of known_differences.py, checked on its minimal example.

- KNOWN_DIFFERENCES (keyfix is right): keyfix and iam-simulate give the documented,
  different decisions, the entry recognises its example, and its view makes the two
  engines agree. If either engine changes its answer, the entry is out of date.
- UNDECIDED (documentation silent): both engines' answers on the example are pinned.
- KEYFIX_BUGS (iam-simulate is right): the oracle gives AWS's decision today; keyfix's
  correct answer is a strict xfail, which fails once keyfix is fixed so that the
  entry moves to REGRESSIONS.
- REGRESSIONS (regressions.py): keyfix bugs found by this harness and fixed since;
  keyfix must keep giving AWS's decision on their examples.
"""

from __future__ import annotations

import pytest

import known_differences as kd
import regressions as rg


def _decide(doc):
    from keyfix.policy.simulate import decide

    return decide(doc)


def _by_name(entries):
    return pytest.mark.parametrize("entry", entries, ids=lambda d: d.name)


def test_registry_is_consistent():
    # A regression may share its name with the known difference it became.
    for names in ([d.name for d in kd.ALL_DIFFERENCES], [r.name for r in rg.REGRESSIONS]):
        assert len(set(names)) == len(names), names
    for regression in rg.REGRESSIONS:
        assert regression.docs and all(url.startswith("https://docs.aws.amazon.com/") for url in regression.docs)
    for entry in kd.ALL_DIFFERENCES:
        assert entry.docs and all(url.startswith("https://docs.aws.amazon.com/") for url in entry.docs), entry.name
        assert entry.why and entry.decisions and entry.example, entry.name
        assert (entry.oracle_view is None) != (entry.keyfix_view is None), f"{entry.name}: exactly one view"
        assert entry.example_decisions in entry.decisions, entry.name


@_by_name(kd.KNOWN_DIFFERENCES)
def test_known_difference_example(entry: kd.Difference, oracle):
    keyfix = _decide(entry.example)
    theirs = oracle.one(entry.example)
    assert not theirs["error"], theirs
    assert (keyfix["decision"], theirs["decision"]) == entry.example_decisions
    assert entry.admits(entry.example, keyfix, theirs["decision"])
    # An agreement is never a difference.
    assert not entry.admits(entry.example, keyfix, keyfix["decision"])
    if entry.oracle_view:
        view = entry.oracle_view(entry.example)
        assert view != entry.example
        assert oracle.one(view)["decision"] == keyfix["decision"]
    if entry.keyfix_view:
        assert _decide(entry.keyfix_view(entry.example))["decision"] == theirs["decision"]


if kd.UNDECIDED:

    @_by_name(kd.UNDECIDED)
    def test_undecided_example_pins_both_engines(entry: kd.Difference, oracle):
        keyfix = _decide(entry.example)
        theirs = oracle.one(entry.example)
        assert (keyfix["decision"], theirs["decision"]) == entry.example_decisions
        assert entry.admits(entry.example, keyfix, theirs["decision"])
        assert oracle.one(entry.oracle_view(entry.example))["decision"] == keyfix["decision"]


if kd.KEYFIX_BUGS:

    @_by_name(kd.KEYFIX_BUGS)
    def test_keyfix_bug_oracle_gives_the_documented_decision(entry: kd.Difference, oracle):
        theirs = oracle.one(entry.example)
        assert not theirs["error"], theirs
        assert theirs["decision"] == entry.example_decisions[1]
        assert entry.applies(entry.example)

    @_by_name(kd.KEYFIX_BUGS)
    @pytest.mark.xfail(strict=True, reason="known keyfix bug, see known_differences.KEYFIX_BUGS")
    def test_keyfix_bug_is_fixed(entry: kd.Difference):
        assert _decide(entry.example)["decision"] == entry.example_decisions[1]


def test_every_project_reading_is_marked():
    from keyfix.policy.unknowns import READINGS

    assert [r.name for r in kd.PROJECT_READINGS] == list(READINGS)
    for reading in kd.PROJECT_READINGS:
        assert reading.docs and all(url.startswith("https://docs.aws.amazon.com/") for url in reading.docs)
    for entry in kd.ALL_DIFFERENCES:
        assert entry.project_reading in (None, *READINGS), entry.name


@pytest.mark.parametrize("reading", kd.PROJECT_READINGS, ids=lambda r: r.name)
def test_project_reading_example_is_flagged(reading):
    out = _decide(reading.example)
    assert out["decision"] == reading.keyfix_decision
    assert out["project_readings"] == [reading.name]


@_by_name([d for d in kd.ALL_DIFFERENCES if d.project_reading])
def test_a_difference_resting_on_a_reading_is_flagged(entry):
    assert _decide(entry.example).get("project_readings") == [entry.project_reading]


@_by_name(rg.REGRESSIONS)
def test_regression_stays_fixed(entry: rg.Regression, oracle):
    assert _decide(entry.example)["decision"] == entry.aws_decision
    assert (oracle.one(entry.example)["decision"] == entry.aws_decision) == entry.oracle_agrees
