"""Fuzz: bad input makes parse() return an Incident or raise EventError - never anything else.

Inputs: arbitrary JSON values (non-dicts too), the sample events with one field replaced
/ removed / truncated / blown up / given unicode, and every truncation of their JSON text.
The number of cases run is printed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from _events_support import SAMPLES, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfix.events import EventError, parse, parse_json
from keyfix.events.incident import Incident
from keyfix.report import Trigger

SAMPLE_EVENTS = [load(p) for p in sorted(SAMPLES.glob("*.json"))]
RECOGNISED = [e for e in SAMPLE_EVENTS if parse(e).trigger is not Trigger.UNRECOGNISED]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
weird_strings = st.sampled_from(
    [
        "",
        "\x00",
        "\ud7ff\ue000\U0010ffff",
        "é" * 1000,
        "🔑" * 5000,
        "x" * 300_000,
        "arn:aws:kms:us-east-1:111122223333:key/" + "a" * 10_000,
        "User: " + "arn:" * 50_000,
        "*" * 10_000,
        "Client.InvalidKMSKey" * 10_000,
        "because no " * 20_000,
        "\\" * 999,
    ]
)

COUNTS = {"parse": 0, "incident": 0, "event_error": 0, "json_prefixes": 0}


def _check(raw: Any) -> None:
    COUNTS["parse"] += 1
    try:
        result = parse(raw)
    except EventError as exc:
        COUNTS["event_error"] += 1
        assert str(exc)
        assert len(str(exc)) < 5000  # messages stay readable whatever the input
        return
    COUNTS["incident"] += 1
    assert isinstance(result, Incident)
    assert isinstance(result.event_id, str) and isinstance(result.source, str)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(event: dict, path: tuple, action: str, replacement: Any) -> dict:
    out = copy.deepcopy(event)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    if action == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif action == "truncate" and isinstance(parent[key], str):
        parent[key] = parent[key][: len(parent[key]) // 2]
    else:
        parent[key] = replacement
    return out


@st.composite
def mutated_events(draw) -> dict:
    event = draw(st.sampled_from(RECOGNISED))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(event)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "truncate", "weird"]))
        replacement = draw(weird_strings) if action == "weird" else draw(json_values)
        event = _mutate(event, path, action, replacement)
    return event


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(json_values)
def _fuzz_any_json(raw):
    _check(raw)


@FUZZ
@given(mutated_events())
def _fuzz_mutated_samples(raw):
    _check(raw)


@FUZZ
@given(
    st.sampled_from(RECOGNISED),
    st.sampled_from(["detail", "source", "detail-type", "id", "time", "account", "region", "resources"]),
    json_values | weird_strings,
)
def _fuzz_envelope_fields(event, field, value):
    event = copy.deepcopy(event)
    event[field] = value
    _check(event)


def test_fuzz_parse(capsys):
    _fuzz_any_json()
    _fuzz_mutated_samples()
    _fuzz_envelope_fields()
    # Every sample's JSON text cut at every point ("truncated file").
    for path in sorted(SAMPLES.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        for cut in range(len(text)):
            COUNTS["json_prefixes"] += 1
            try:
                parse_json(text[:cut])
            except EventError:
                pass
    # The fuzz must have exercised both outcomes, or it proved nothing.
    assert COUNTS["incident"] > 0 and COUNTS["event_error"] > 0
    with capsys.disabled():
        print(
            f"\n[events fuzz] parse() cases: {COUNTS['parse']} "
            f"(Incident {COUNTS['incident']}, EventError {COUNTS['event_error']}); "
            f"truncated JSON texts: {COUNTS['json_prefixes']}"
        )


@pytest.mark.parametrize("event", RECOGNISED, ids=lambda e: e["detail-type"])
def test_every_recognised_sample_survives_a_huge_detail_string(event):
    event = copy.deepcopy(event)
    for key, value in list(event["detail"].items()):
        if isinstance(value, str):
            event["detail"][key] = value + "\U0001f511" * 100_000
    _check(event)


def test_deeply_nested_values_do_not_recurse_out():
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": [deep]}
    before = COUNTS["parse"]
    for event in RECOGNISED:
        e = copy.deepcopy(event)
        e["detail"]["nested"] = deep  # an unknown field
        e["detail"]["Details"] = deep  # a typed dict[str, Any] field (Auto Scaling)
        if isinstance(e["detail"].get("requestParameters"), dict):
            e["detail"]["requestParameters"]["constraints"] = deep  # likewise (CloudTrail)
        _check(e)
        _check({**e, "detail": deep})
    _check(deep)
    assert COUNTS["parse"] - before == 2 * len(RECOGNISED) + 1
