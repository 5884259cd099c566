"""Every input yields a report or a clear error, never an exception; bounded work per event.

- a Region the SDK would reject, text that is not Unicode (a lone surrogate, which JSON's \\u
  escapes can spell) anywhere in any sample event, over-long fields and oversized events are
  malformed events: keyfix.error/1 from the Lambda, exit 2 from `keyfix handle`, naming the field;
- an EBS event naming thousands of keys gets a report, keyfix's AWS calls stay under the
  per-event cap, and the report says what was not checked;
- the call budget, key cap and principal cap each stop work and say so;
- the last-resort net turns an unexpected exception into an undetermined report, and is
  counted, so the tests above can assert they never reach it.

Every case's outcome is counted and asserted; none is filtered out.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.events import EventError, parse
from keyfix.events.wellformed import MAX_EVENT_BYTES, MAX_STRING_CHARS, is_region
from keyfix.resolve.limits import MAX_AWS_CALLS_PER_EVENT, MAX_KEYS_PER_EVENT
from tests.support.gateway_hooks import WriteCounter
from tests.support.lambda_harness import ASG_ACCOUNT, aws, check_cli, cli, handle, outcome_of  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "events").glob("*.json"))}
RECOGNISED = {name: event for name, event in SAMPLES.items() if name != "unrecognised.json"}
EBS_SAMPLE = "ebs-volume-failed-disabled.json"
KMS_SAMPLE = "cloudtrail-kms-accessdenied-b-user-createvolume.json"
SURROGATE = "\udc80"


def fresh(name: str) -> dict:
    event = copy.deepcopy(SAMPLES[name])
    event["id"] = str(uuid.uuid4())
    return event


# ---- Regions -------------------------------------------------------------------------------------

BAD_REGIONS = ["us_east_1", "", "US-EAST-1", "us-east-1 ", " us-east-1", "us-east", "useast1", "us-east-1\n",
               "../../etc", "us-east-1/x", "a" * 300, "us-east-1.amazonaws.com", "*", "us-\u0435ast-1"]
GOOD_REGIONS = ["us-east-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "eu-isoe-west-1", "eusc-de-east-1",
                "ap-southeast-5", "il-central-1", "mx-central-1"]


@pytest.mark.parametrize("region", BAD_REGIONS + [5, None, ["us-east-1"], {"name": "us-east-1"}])
def test_a_recognised_event_with_a_bad_region_is_malformed(aws: WriteCounter, tmp_path, region: Any):
    outcomes = []
    for name in RECOGNISED:
        event = fresh(name)
        event["region"] = region
        result = handle(event)
        outcomes.append(outcome_of(result))
        assert "region" in result["error"], result
        status, out, err = cli(json.dumps(event).encode(), tmp_path)
        outcomes.append(check_cli(status, out, err))
        assert "region" in err
    assert outcomes == ["error"] * 2 * len(RECOGNISED)
    assert aws.calls == []  # nothing reached AWS


@pytest.mark.parametrize("region", GOOD_REGIONS)
def test_every_partitions_region_shape_is_accepted(region: str):
    event = fresh(KMS_SAMPLE)
    event["region"] = region
    assert parse(event).region == region


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(region=st.one_of(st.text(max_size=30), st.from_regex(r"[a-z]{2,4}(-[a-z_]{1,12}){1,3}-[0-9]{1,3}", fullmatch=True)))
def test_what_keyfix_takes_for_a_region_boto3_takes_too(region: str):
    """The property behind the check: is_region(r) implies botocore builds a client for r."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    if is_region(region):
        validate_region_name(region)  # raises InvalidRegionError when botocore would refuse
    else:
        event = fresh(KMS_SAMPLE)
        event["region"] = region
        with pytest.raises(EventError, match="region"):
            parse(event)
    assert InvalidRegionError  # imported: botocore still names the error this guards against


# ---- text that is not Unicode, anywhere -------------------------------------------------------------


def _string_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place a string sits: (path, "value") for values, (path, "key") for field names."""
    out: list[tuple] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((path + (k,), "key"))
            out += _string_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _string_paths(v, path + (i,))
    elif isinstance(value, str):
        out.append((path, "value"))
    return out


def _with_surrogate(event: dict, path: tuple, where: str) -> dict:
    event = copy.deepcopy(event)
    parent = event
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if where == "key":
        parent[f"{last}{SURROGATE}"] = parent.pop(last)
    else:
        parent[last] = parent[last] + SURROGATE
    return event


SURROGATE_CASES = [(name, path, where) for name, event in SAMPLES.items() for path, where in _string_paths(event)]


def test_a_lone_surrogate_anywhere_in_any_sample_is_a_malformed_event(aws: WriteCounter, tmp_path):
    """Every string (value or field name) of every sample, one at a time: the Lambda answers
    keyfix.error/1 naming the place, `keyfix handle` exits 2; nothing reaches AWS."""
    counts = {"handler error": 0, "cli error": 0}
    for name, path, where in SURROGATE_CASES:
        event = _with_surrogate(SAMPLES[name], path, where)
        result = handle(event)
        assert outcome_of(result) == "error", (name, path, result)
        assert "surrogate" in result["error"], result
        assert str(path[0]) in result["error"], (path, result["error"])  # the place is named
        counts["handler error"] += 1
        assert check_cli(*cli(json.dumps(event).encode(), tmp_path)) == "error"
        counts["cli error"] += 1
    assert counts == {"handler error": len(SURROGATE_CASES), "cli error": len(SURROGATE_CASES)}
    assert len(SURROGATE_CASES) > 300
    assert aws.calls == []


# ---- sizes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("place, value", [
    (("detail", "userIdentity", "arn"), "arn:aws:iam::111122223333:user/" + "a" * 2100),
    (("detail", "requestParameters", "keyId"), "arn:aws:kms:us-east-1:111122223333:key/" + "k" * 2100),
    (("detail", "eventName"), "Decrypt" * 100),
    (("id",), "x" * 300),
    (("detail", "errorMessage"), "y" * (MAX_STRING_CHARS + 1)),
])
def test_over_long_fields_are_malformed(aws: WriteCounter, place: tuple, value: str):
    event = fresh(KMS_SAMPLE)
    parent = event
    for part in place[:-1]:
        parent = parent[part]
    parent[place[-1]] = value
    result = handle(event)
    assert outcome_of(result) == "error"
    assert str(place[-1]) in result["error"], result["error"]
    assert len(result["error"]) < 2000  # the error does not echo the field back
    assert aws.calls == []


def test_an_event_larger_than_eventbridge_delivers_is_malformed(aws: WriteCounter):
    event = fresh(EBS_SAMPLE)
    event["detail"]["padding"] = ["p" * 1000] * (MAX_EVENT_BYTES // 1000 + 1)
    result = handle(event)
    assert outcome_of(result) == "error" and "bytes" in result["error"]
    assert aws.calls == []


def _ebs_event_naming(keys: int) -> dict:
    event = fresh(EBS_SAMPLE)
    event["detail"]["cause"] = ""  # the sample's cause names a key of its own
    event["resources"] = event["resources"][:1] + [
        f"arn:aws:kms:us-east-1:{ASG_ACCOUNT}:key/{i:08d}-1111-2222-3333-444455556666" for i in range(keys)]
    return event


def test_thousands_of_keys_cost_at_most_the_cap(aws: WriteCounter):
    """The issue's event: 3,000 key ARNs, about 228 KB. A report, within the call cap, saying
    how many keys were not checked."""
    event = _ebs_event_naming(3000)
    assert 200_000 < len(json.dumps(event)) < MAX_EVENT_BYTES

    report = handle(event)

    assert outcome_of(report) == "report"
    reads = [c for c in aws.calls if c[0] in ("kms", "ec2", "iam", "autoscaling", "cloudtrail")]
    assert 0 < len(reads) <= MAX_AWS_CALLS_PER_EVENT, len(reads)
    assert aws.count("kms", "DescribeKey") == MAX_KEYS_PER_EVENT
    *per_key, unchecked = report["findings"]
    assert len(per_key) == MAX_KEYS_PER_EVENT
    assert unchecked["cause"] == "undetermined"
    assert f"{3000 - MAX_KEYS_PER_EVENT} of the 3000 KMS keys involved were not checked" in unchecked["explanation"]
    assert len(json.dumps(report)) < 64 * 1024  # fits an SNS message with room to spare
    assert aws.writes == []


@pytest.mark.parametrize("keys", [MAX_KEYS_PER_EVENT - 1, MAX_KEYS_PER_EVENT, MAX_KEYS_PER_EVENT + 1])
def test_the_key_cap_is_exact(aws: WriteCounter, keys: int):
    report = handle(_ebs_event_naming(keys))
    unchecked = [f for f in report["findings"] if f["explanation"].startswith("Not checked:")]
    assert aws.count("kms", "DescribeKey") == min(keys, MAX_KEYS_PER_EVENT)
    assert len(unchecked) == (1 if keys > MAX_KEYS_PER_EVENT else 0)
    assert len(report["findings"]) == min(keys, MAX_KEYS_PER_EVENT) + len(unchecked)


def test_the_call_budget_stops_reads_and_says_so(aws: WriteCounter, monkeypatch: pytest.MonkeyPatch):
    import keyfix.resolve.dispatch as resolve

    monkeypatch.setattr(resolve, "MAX_AWS_CALLS_PER_EVENT", 3)
    report = handle(_ebs_event_naming(5))
    reads = [c for c in aws.calls if c[0] == "kms"]
    assert len(reads) == 3, reads
    (note,) = [f for f in report["findings"] if f["explanation"].startswith("Not checked:")]
    assert "keyfix stopped reading AWS after 3 calls" in note["explanation"]
    assert "kms:" in note["explanation"]


def test_the_principal_cap_stops_reads_and_says_so(aws: WriteCounter, monkeypatch: pytest.MonkeyPatch):
    import keyfix.resolve.gather as gather

    monkeypatch.setattr(gather, "MAX_PRINCIPALS_PER_EVENT", 0)
    report = handle(fresh(KMS_SAMPLE))
    assert [c for c in aws.calls if c[0] == "iam"] == []
    (note,) = [f for f in report["findings"] if f["explanation"].startswith("Not checked:")]
    assert "principal arn:aws:iam::111122223333:user/dev-alice was not checked" in note["explanation"]


def test_the_gateway_budget_refuses_without_sending(aws: WriteCounter):
    from keyfix.resolve.gateway import AwsError, AwsGateway
    from keyfix.resolve.limits import BUDGET_EXHAUSTED

    gw = AwsGateway(account=ASG_ACCOUNT, region="us-east-1")
    with gw.budget(2):
        gw.read("kms", "ListKeys")
        gw.read("kms", "ListKeys")  # cached: free
        gw.read("kms", "ListAliases")
        with pytest.raises(AwsError) as refused:
            gw.read("ec2", "DescribeVolumes")
    assert refused.value.code == BUDGET_EXHAUSTED and refused.value.refused
    assert gw.calls == [("kms", "ListKeys"), ("kms", "ListAliases")]
    assert gw.refused == [("ec2", "DescribeVolumes")]
    assert aws.calls == [("kms", "ListKeys"), ("kms", "ListAliases")]  # the refused call was never sent
    gw.read("ec2", "DescribeVolumes")  # outside the budget, and the refusal was not cached
    assert gw.calls[-1] == ("ec2", "DescribeVolumes")


# ---- the last-resort net ---------------------------------------------------------------------------


def test_an_unexpected_exception_becomes_an_undetermined_report(aws: WriteCounter, tmp_path,
                                                                monkeypatch: pytest.MonkeyPatch):
    import jsonschema

    from keyfix import safety_net
    from keyfix.demo.runtime import FakeLambdaContext
    from keyfix.handler import lambda_handler
    from tests.support.lambda_harness import REPORT_SCHEMA

    def broken(situation):
        raise RuntimeError("a bug in the diagnosis")

    monkeypatch.setattr("keyfix.diagnose.diagnose", broken)
    hits = len(safety_net.HITS)
    event = fresh(KMS_SAMPLE)

    report = lambda_handler(event, FakeLambdaContext())

    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["event"]["id"] == event["id"] and report["event"]["trigger"] == "kms-access-denied"
    (finding,) = report["findings"]
    assert finding["cause"] == "undetermined" and finding["explanation"].startswith(safety_net.INTERNAL_ERROR)
    assert "RuntimeError" in finding["explanation"]
    assert safety_net.HITS[hits:] == ["RuntimeError: a bug in the diagnosis"]

    # keyfix handle: the same report on stdout, and the contract's exit 1 (internal failure).
    from keyfix.cli import main

    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["handle", str(path), "--format", "json"])
    assert status == 1
    printed = json.loads(out.getvalue())
    jsonschema.validate(printed, REPORT_SCHEMA)
    assert printed["findings"][0]["explanation"].startswith(safety_net.INTERNAL_ERROR)
    assert "internal error: RuntimeError" in err.getvalue()
    assert safety_net.HITS[hits:] == ["RuntimeError: a bug in the diagnosis"] * 2
    del safety_net.HITS[hits:]  # the hits this test provoked on purpose
    assert aws.writes == []
