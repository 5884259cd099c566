"""On-call hears about each repair once (issue #16): groups sharing a broken key, through the
Lambda handler in apply mode with the table and the topic.

- The group whose event repairs the key pages once (a write is always told).
- A sibling group arriving after the repair finds nothing missing: part of that repair's
  story, no page.
- A sibling whose event waited for the key's lock while the repair was written finds the
  fix present: no page either (the window opened with the write, under the lock).
- A group that also uses another broken key still pages, about that key.
"""

from __future__ import annotations

import json
import threading

import pytest

from keyfix.sim.scenarios.storm import Storm, add_group, launch_failure_event, make_key
from tests.integration.conftest import assert_valid_report, run_lambda
from tests.support.accounts import ASG_ACCOUNT, REGION


@pytest.fixture
def storm(world, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    key = make_key(world.env, ASG_ACCOUNT, "shared")
    storm = Storm(ASG_ACCOUNT, REGION, [key])
    for name in ("g-1", "g-2", "g-3"):
        add_group(world.env, storm, name, key)
    return storm


def event(group: str, n: int = 0) -> dict:
    return launch_failure_event(ASG_ACCOUNT, REGION, group, f"evt-{group}-{n}")


def causes(report: dict) -> list[tuple[str, list[str]]]:
    return [(f["cause"], [x["status"] for x in f["fixes"]]) for f in report["findings"]]


def test_one_page_per_repaired_key_and_no_page_for_siblings_after_it(world, storm):
    first = run_lambda(event("g-1"))
    assert causes(first) == [("slr-not-in-key-policy", ["applied"])]
    (message,) = world.notifications()
    assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == first

    later = [run_lambda(event(g)) for g in ("g-2", "g-3")]
    assert [causes(r) for r in later] == [[("no-missing-permission", [])]] * 2
    assert world.notifications() == [], "a sibling of the repaired group paged on-call"


def test_a_sibling_that_waited_for_the_lock_does_not_page_again(world, storm, monkeypatch):
    """g-2 diagnoses the broken key, then meets g-1 holding the key's lock: g-1 writes and
    pages meanwhile; g-2 then finds the statements present."""
    from keyfix.remedies import apply

    real_lock = apply._key_lock
    holder: list[dict] = []

    def lock_taken_by_g1_first(store, key_arn, owner):
        if not holder:
            # g-1, in another container (thread), takes the lock and writes before g-2 gets it.
            worker = threading.Thread(target=lambda: holder.append(run_lambda(event("g-1"))))
            holder.append({})
            worker.start()
            worker.join()
        return real_lock(store, key_arn, owner)

    monkeypatch.setattr(apply, "_key_lock", lock_taken_by_g1_first)
    waited = run_lambda(event("g-2"))

    g1 = holder[1]
    assert causes(g1) == [("slr-not-in-key-policy", ["applied"])]
    assert causes(waited) == [("slr-not-in-key-policy", ["already-present"])]
    messages = world.notifications()
    assert [json.loads(m["Message"].split("(JSON) -----\n", 1)[1])["event"]["id"] for m in messages] == \
        [g1["event"]["id"]], "the event that found the fix present paged again"


def test_a_group_broken_for_another_reason_still_pages(world, storm):
    other = make_key(world.env, ASG_ACCOUNT, "other", opt_in=False)  # not opted in: proposed only
    add_group(world.env, storm, "g-both", storm.keys[0], extra_key=other)
    run_lambda(event("g-1"))
    assert len(world.notifications()) == 1

    report = assert_valid_report(run_lambda(event("g-both")))
    by_key = {f["key_arn"]: f["cause"] for f in report["findings"]}
    assert by_key == {storm.keys[0]: "no-missing-permission", other: "slr-not-in-key-policy"}
    (message,) = world.notifications()
    assert json.loads(message["Message"].split("(JSON) -----\n", 1)[1]) == report
    # ...and its repaired key is not a new page next time, its broken key not twice an hour.
    run_lambda(event("g-both", 1))
    assert world.notifications() == []


def test_without_a_write_the_no_missing_permission_window_is_the_findings_own(world, storm, monkeypatch):
    """Propose mode writes nothing, so nothing opens a window early: each finding pages once."""
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    reports = [run_lambda(event(g)) for g in ("g-1", "g-2")]
    assert [causes(r) for r in reports] == [[("slr-not-in-key-policy", ["proposed"])]] * 2
    # One finding (the role x the key): one page per window, whichever group showed it.
    assert len(world.notifications()) == 1


# -- any arrival order ------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def storms(draw):
    """Groups over keys (group i on key i mod keys) and the order their failures arrive in:
    every group at least once, some more than once, any interleaving."""
    keys = draw(st.integers(1, 3))
    groups = draw(st.integers(keys, 6))
    repeats = draw(st.lists(st.integers(0, groups - 1), max_size=6))
    order = draw(st.permutations(list(range(groups)) + repeats))
    return keys, groups, order


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=storms())
def test_any_arrival_order_pages_once_per_repaired_key(shape, monkeypatch):
    """Handled one after another in any order: one write and one page per key, every event
    answered (a repair, nothing missing, or the first run's record), none unaccounted for."""
    from moto import mock_aws

    from keyfix.sim import moto_gaps
    from tests.integration.conftest import build_world
    from tests.support.accounts import Env

    keys, groups, order = shape
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "1",
                        "KEYFIX_MODE": "apply"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), moto_gaps.installed():
        world = build_world(Env())
        monkeypatch.setenv("KEYFIX_SNS_TOPIC_ARN", world.topic_arn)
        monkeypatch.setenv("KEYFIX_TABLE_NAME", world.table_name)
        storm = Storm(ASG_ACCOUNT, REGION, [make_key(world.env, ASG_ACCOUNT, f"k{k}") for k in range(keys)])
        for g in range(groups):
            add_group(world.env, storm, f"g-{g}", storm.keys[g % keys])
        outcomes = {"applied": 0, "no-missing-permission": 0, "duplicate": 0}
        for n, g in enumerate(order):
            report = run_lambda(event(f"g-{g}", n))
            if report.get("duplicate_of"):
                outcomes["duplicate"] += 1
            elif causes(report) == [("slr-not-in-key-policy", ["applied"])]:
                outcomes["applied"] += 1
            elif causes(report) == [("no-missing-permission", [])]:
                outcomes["no-missing-permission"] += 1
        pages = [json.loads(m["Message"].split("(JSON) -----\n", 1)[1]) for m in world.notifications()]
    assert sum(outcomes.values()) == len(order), (outcomes, order)
    assert outcomes == {"applied": keys, "no-missing-permission": groups - keys, "duplicate": len(order) - groups}
    assert sorted(f["key_arn"] for p in pages for f in p["findings"]) == sorted(storm.keys)
    assert all(causes(p) == [("slr-not-in-key-policy", ["applied"])] for p in pages)
