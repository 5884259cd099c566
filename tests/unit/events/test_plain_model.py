"""keyfix.events.ec2's model, declared without pydantic (keyfix.events.plain), against the
pydantic model it replaced (issue #14, P1b).

The reference below is that model as it was: the shared Envelope (Powertools'
EventBridgeModel, as tolerant as keyfix's other triggers) plus the state-change detail. Over
generated events (valid ones, and ones with fields dropped, retyped, over-long, given by name
instead of alias, or added) both must accept the same events, give the same Incident, and
reject with the same errors in the same order, so a malformed EC2 event is reported in the
words of every other trigger.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from keyfix.events import EventError, parse
from keyfix.events._common import MAX_NAME_CHARS, Detail, Envelope
from keyfix.events import ec2 as plain_ec2
from keyfix.events.incident import Incident
from keyfix.events.plain import Invalid
from keyfix.report import Trigger

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = json.loads((ROOT / "events" / "ec2-instance-stopped.json").read_text())


class Ec2StateChangeDetail(Detail):
    instance_id: str = Field(alias="instance-id", min_length=1, max_length=MAX_NAME_CHARS)
    state: str = Field(min_length=1)


class Ec2StateChangeEvent(Envelope):  # the same name: pydantic's errors name the model
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Instance State-change Notification"] = Field(alias="detail-type")
    detail: Ec2StateChangeDetail


def ref_incident(event: Ec2StateChangeEvent) -> Incident:
    return Incident(trigger=Trigger.EC2_LAUNCH_FAILURE, **event.incident_fields(),
                    instance_id=event.detail.instance_id, instance_state=event.detail.state,
                    kms_related=None)


def outcome(validate, make_incident, raw: Any, error_type) -> tuple:
    try:
        model = validate(raw)
    except error_type as exc:
        return ("invalid", [(tuple(e["loc"]), e["msg"]) for e in exc.errors()])
    return ("valid", make_incident(model))


# JSON values of every type, with strings around the bounds (0, 1, 256, 257 characters).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "aws.ec2", "EC2 Instance State-change Notification", "stopped", "0",
                     "i" * MAX_NAME_CHARS, "i" * (MAX_NAME_CHARS + 1)]),
    st.text(max_size=8),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)

TOP_KEYS = ["version", "id", "source", "account", "time", "region", "resources", "detail-type",
            "detail_type", "detail", "replay-name", "replay_name", "extra"]
DETAIL_KEYS = ["instance-id", "instance_id", "state", "extra"]
# How a key is changed: mostly left alone (so that valid events are drawn too), dropped, or
# set to a generated value.
edits = st.one_of(st.sampled_from(["keep", "keep", "keep", "drop"]), json_values.map(lambda v: ("set", v)))


def _apply(target: dict, key: str, edit: Any) -> None:
    if edit == "drop":
        target.pop(key, None)
    elif edit != "keep":
        target[key] = copy.deepcopy(edit[1])


@st.composite
def events(draw) -> dict:
    raw = copy.deepcopy(SAMPLE)
    raw.setdefault("version", "0")
    for key in TOP_KEYS:
        _apply(raw, key, draw(edits))
    if isinstance(raw.get("detail"), dict):
        for key in DETAIL_KEYS:
            _apply(raw["detail"], key, draw(edits))
    return raw


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_the_plain_model_accepts_rejects_and_words_errors_as_the_pydantic_model(raw: dict):
    expected = outcome(Ec2StateChangeEvent.model_validate, ref_incident, raw, ValidationError)
    got = outcome(plain_ec2.Ec2StateChangeEvent.validate, plain_ec2.to_incident, raw, Invalid)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, events()))
def test_anything_that_is_not_an_object_where_one_is_expected_is_an_error_not_a_crash(raw: Any):
    expected = outcome(Ec2StateChangeEvent.model_validate, ref_incident, raw, ValidationError)
    got = outcome(plain_ec2.Ec2StateChangeEvent.validate, plain_ec2.to_incident, raw, Invalid)
    assert got == expected


SCALARS = [None, True, 0, 1.5, "", "x", "aws.ec2", "stopped", "i" * MAX_NAME_CHARS, "i" * (MAX_NAME_CHARS + 1),
           [], ["a"], [1], {}, {"state": "stopped"}]


def test_every_single_edit_of_the_sample_has_the_same_outcome():
    """Each key of the sample (and of its detail), dropped or set to each value above."""
    counts = {"valid": 0, "invalid": 0}
    cases = [(key, edit) for key in TOP_KEYS for edit in ["drop", *[("set", v) for v in SCALARS]]]
    cases += [(f"detail.{key}", edit) for key in DETAIL_KEYS for edit in ["drop", *[("set", v) for v in SCALARS]]]
    for where, edit in cases:
        raw = copy.deepcopy(SAMPLE)
        target, key = (raw["detail"], where[7:]) if where.startswith("detail.") else (raw, where)
        _apply(target, key, edit)
        expected = outcome(Ec2StateChangeEvent.model_validate, ref_incident, raw, ValidationError)
        got = outcome(plain_ec2.Ec2StateChangeEvent.validate, plain_ec2.to_incident, raw, Invalid)
        assert got == expected, (where, edit)
        counts[got[0]] += 1
    assert counts["valid"] + counts["invalid"] == len(cases) == 17 * len(SCALARS) + 17
    assert counts["valid"] >= 17 and counts["invalid"] >= 17, counts  # both sides are exercised


def test_the_sample_parses_without_importing_pydantic():
    import subprocess
    import sys

    code = ("import json, sys; from keyfix.events import parse; "
            f"i = parse(json.loads({json.dumps(json.dumps(SAMPLE))})); "
            "print(i.instance_id, 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [SAMPLE["detail"]["instance-id"], "False"]


@pytest.mark.parametrize("change, words", [
    (lambda e: e["detail"].update({"instance-id": 7}), "detail.instance-id: Input should be a valid string"),
    (lambda e: e.pop("time"), "time: Field required"),
    (lambda e: e.update({"id": "x" * 300}), "id: String should have at most 256 characters"),
    (lambda e: e.update({"resources": ["a", 1]}), "resources.1: Input should be a valid string"),
])
def test_a_malformed_state_change_is_an_event_error_naming_the_field(change, words):
    raw = copy.deepcopy(SAMPLE)
    change(raw)
    with pytest.raises(EventError) as caught:
        parse(raw)
    assert words in str(caught.value)
    assert "rule Ec2StoppedRule" in str(caught.value)
