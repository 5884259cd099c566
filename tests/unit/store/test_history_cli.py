"""`keyfix history --findings / --event`: the listing and the replay hand-off, on moto."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

from keyfix.cli import main
from keyfix.report import Cause, FixStatus
from keyfix.store.findings import record_findings
from tests.unit.store.test_finding_history import K1, TABLE, Store, ddb, finding, report  # noqa: F401

NOW = 1_741_900_000.0


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["history", *argv])
    return status, out.getvalue(), err.getvalue()


def test_findings_listing_and_event_replay(ddb, monkeypatch):  # noqa: F811
    import time

    monkeypatch.setenv("KEYFIX_TABLE_NAME", TABLE)
    event = {"id": "e7", "source": "aws.autoscaling", "detail": {"AutoScalingGroupName": "web"}}
    record_findings(Store(ddb, time.time()), report("e7", finding(Cause.SLR_NOT_IN_KEY_POLICY, K1, "web", FixStatus.APPLIED)), event)
    status, out, _ = run("--findings", "--format", "json")
    assert status == 0
    (row,) = json.loads(out)["findings"]
    assert (row["cause"], row["group"], row["statuses"]) == ("slr-not-in-key-policy", "web", ["applied"])
    status, out, _ = run("--group", "web")
    assert status == 0 and "slr-not-in-key-policy" in out and "event e7" in out
    status, out, err = run("--cause", "key-disabled")
    assert (status, out) == (0, "") and "no findings" in err
    status, out, _ = run("--event", "e7")
    assert status == 0 and json.loads(out) == event  # what `keyfix handle -` takes
    status, _, err = run("--event", "nope")
    assert status == 2 and "no recorded event" in err
    status, _, err = run("--since", "last tuesday")
    assert status == 2 and "--since" in err


def test_without_a_table_it_says_so(monkeypatch):
    monkeypatch.delenv("KEYFIX_TABLE_NAME", raising=False)
    status, _, err = run("--findings")
    assert status == 2 and "KEYFIX_TABLE_NAME" in err
