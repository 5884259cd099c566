"""bench/run's one Targets table (issue #14): the storm's and the scan's JSON read into targets,
cold-start rows that answered wrongly or ran outside the artifact counted as misses, and
--check's exit status. Synthetic results, no benchmark runs."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
# bench/bench.py by its path: `import bench` would find the bench/ directory. It puts bench/ on
# sys.path itself, for its sibling modules (storm_scan, coldstart).
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

STORM = {  # the shape bench/storm.py writes, figures of a good run
    "duplicates": {
        "events": 1000, "workers": 4, "writes": 1, "notifications": 1, "answered_as_duplicate": 999,
        "first": {"findings": [], "calls": 24, "wall_s": 0.300, "cpu_s": 0.200},
        "calls_per_duplicate": {"max": 1, "mean": 1.0}, "duplicate_median_wall_s": 0.017,
        "duplicate_median_cpu_s": 0.0028, "ratio_wall": 0.017 / 0.300, "ratio_cpu": 0.0028 / 0.200, "wall_s": 6.0,
    },
    "mixed": {
        "events": 1000, "groups": 50, "keys": 5, "workers": 4, "writes": 5, "notifications": 5,
        "notifications_per_key": {f"arn:k{i}": 1 for i in range(5)}, "notifications_no_missing_permission": 0,
        "full_diagnoses": 50, "calls_per_event": 1.66, "wall_s": 9.0,
    },
}
SCAN = {"groups": 1000, "templates": 200, "keys": 50, "calls": 365, "minimum": 365, "calls_beyond_minimum": 0,
        "beyond_minimum": {}, "scan_s": 2.5, "median_call_s": 0.005, "scan_time_vs_calls_x_median_call": 2.5 / 1.825,
        "model_s": 0.2, "model_share_of_scan": 0.08, "predicted_failures": 100, "expected_broken_groups": 100}


def by_target(results: dict) -> dict[str, dict]:
    items = bench.checks(results)
    assert len({c["target"] for c in items}) == len(items), "each target once"
    return {c["target"]: c for c in items}


def test_a_good_storm_meets_every_p3_target_and_reports_its_wall_time_against_one_event():
    got = by_target({"storm": STORM})
    assert sorted(got) == sorted(name for name in bench.TARGETS if name.startswith("storm."))
    assert {n: c["ok"] for n, c in got.items()} == dict.fromkeys(got, True)
    assert got["storm.duplicate_cpu_vs_first_event"]["value"] == pytest.approx(0.014)
    assert got["storm.duplicates_wall_vs_one_event"]["value"] == pytest.approx(20.0)  # 6 s / 0.3 s
    assert got["storm.mixed_wall_vs_one_event"]["value"] == pytest.approx(30.0)
    assert got["storm.mixed_wall_vs_one_event"]["op"] == "report"
    assert bench.exit_status(list(got.values())) == 0


@pytest.mark.parametrize(("change", "missed"), [
    (lambda s: s["duplicates"].update(writes=2), "storm.duplicates_writes"),
    (lambda s: s["duplicates"].update(writes=0), "storm.duplicates_writes"),
    (lambda s: s["duplicates"].update(notifications=2), "storm.duplicates_notifications"),
    (lambda s: s["duplicates"]["calls_per_duplicate"].update(max=2), "storm.duplicates_max_calls_per_duplicate"),
    (lambda s: s["duplicates"].update(ratio_cpu=0.031), "storm.duplicate_cpu_vs_first_event"),
    (lambda s: s["mixed"].update(writes=6), "storm.mixed_writes_vs_keys"),
    (lambda s: s["mixed"].update(writes=4), "storm.mixed_writes_vs_keys"),
    # a key paged twice and another never: the total is still 5
    (lambda s: s["mixed"]["notifications_per_key"].update({"arn:k0": 2, "arn:k1": 0}),
     "storm.mixed_notifications_not_one_per_key"),
    # one page per key, plus one that named none of the storm's keys
    (lambda s: s["mixed"].update(notifications=6), "storm.mixed_notifications_not_one_per_key"),
])
def test_each_p3_miss_is_its_own_missed_target_and_exit_1(change, missed):
    storm = copy.deepcopy(STORM)
    change(storm)
    got = by_target({"storm": storm})
    assert [n for n, c in got.items() if c["ok"] is False] == [missed]
    assert bench.exit_status(list(got.values())) == 1


def test_a_storm_that_crashed_is_not_measured_exit_2():
    got = by_target({"storm": {"error": "storm.py exited 1", "stderr_tail": "Traceback ..."}})
    assert {c["value"] for c in got.values()} == {None}
    assert {c["ok"] for c in got.values()} == {None}
    assert bench.exit_status(list(got.values())) == 2


def test_p6_targets_read_scan_py_fields():
    got = by_target({"scan": SCAN})
    assert sorted(got) == ["scan.calls_beyond_minimum", "scan.model_share_of_scan",
                           "scan.scan_time_vs_calls_x_median_call"]
    assert all(c["ok"] for c in got.values())
    slow = {**SCAN, "scan_time_vs_calls_x_median_call": 1.64, "calls_beyond_minimum": 2, "model_share_of_scan": 0.11}
    assert {n: c["ok"] for n, c in by_target({"scan": slow}).items()} == dict.fromkeys(got, False)
    crashed = by_target({"scan": {"error": "bench/scan.py printed no JSON"}})
    assert bench.exit_status(list(crashed.values())) == 2


def test_bench_run_checks_the_bounds_storm_py_and_scan_py_check_themselves():
    sys.path.insert(0, str(BENCH))
    try:
        scan, storm = importlib.import_module("scan"), importlib.import_module("storm")
    finally:
        sys.path.remove(str(BENCH))
    assert {f"scan.{k}": v for k, v in scan.TARGETS.items()} == {
        k: v for k, v in bench.TARGETS.items() if k.startswith("scan.")}
    assert bench.TARGETS["storm.duplicate_cpu_vs_first_event"] == ("<=", storm.DUPLICATE_RATIO_TARGET)


# ---- cold start on the artifact --------------------------------------------------------------------


def row(name: str, cpu_ratio: float, causes=("not-kms",), expect=("not-kms",), under_artifact=True) -> dict:
    r = {"name": name, "cpu_s": 0.2, "cpu_ratio_vs_artifact_import_boto3": cpu_ratio, "bytecode": "built artifact",
         "under_artifact": under_artifact, "origins": {}}
    if expect is not None:
        r.update(expect_causes=list(expect), causes_seen=[list(causes)])
    return r


ARTIFACT_ROWS = [
    row("artifact: import boto3", 1.0, expect=None),
    row("artifact: import keyfix.handler [tracing on]", 0.7, expect=None),
    row("artifact: 1st invocation: not-kms ASG [tracing on]", 2.8),
    row("artifact: 1st invocation: ordinary EC2 stop [tracing on]", 1.3),
]
ARTIFACT = {"path": "/x/.aws-sam/build/KeyfixFunction", "exists": True, "current": True, "stale_files": [],
            "measurable": True, "size": {"unzipped_kib": 59312, "unzipped_mb": 57.9, "files": 3833, "py_files": 880,
                                         "pyc_files": 880, "zipped_mb": 24.4}}


def artifact_checks(rows=ARTIFACT_ROWS, artifact=ARTIFACT) -> dict[str, dict]:
    got = by_target({"coldstart": {"venv_rows": False, "rows": rows}, "artifact": artifact})
    assert sorted(got) == sorted(n for n in bench.TARGETS if n.startswith("artifact."))
    return got


def test_artifact_rows_meet_their_targets_on_cpu_against_the_artifacts_own_boto3():
    got = artifact_checks()
    assert got["artifact.first_invocation_ordinary_stop_vs_artifact_import_boto3"]["value"] == 1.3
    assert got["artifact.first_invocation_not_kms_vs_artifact_import_boto3"]["value"] == 2.8
    assert got["artifact.files"]["value"] == 3833
    assert bench.exit_status(list(got.values())) == 0


def test_a_fast_undetermined_first_invocation_is_missed_not_passed():
    rows = ARTIFACT_ROWS[:3] + [row("artifact: 1st invocation: ordinary EC2 stop [tracing on]", 0.9,
                                    causes=("undetermined",))]
    got = artifact_checks(rows)
    stop = got["artifact.first_invocation_ordinary_stop_vs_artifact_import_boto3"]
    assert stop["ok"] is False and "undetermined" in stop["detail"]
    assert got["artifact.first_invocation_not_kms_vs_artifact_import_boto3"]["ok"] is True


def test_a_row_that_loaded_code_from_outside_the_artifact_is_missed():
    rows = ARTIFACT_ROWS[:2] + [row("artifact: 1st invocation: not-kms ASG [tracing on]", 2.0, under_artifact=False),
                                ARTIFACT_ROWS[3]]
    got = artifact_checks(rows)
    assert got["artifact.first_invocation_not_kms_vs_artifact_import_boto3"]["ok"] is False


def test_a_stale_artifact_is_measured_but_not_checked_exit_2():
    got = artifact_checks(artifact={**ARTIFACT, "current": False, "stale_files": ["keyfix/handler.py"]})
    stop = got["artifact.first_invocation_ordinary_stop_vs_artifact_import_boto3"]
    assert (stop["value"], stop["ok"]) == (1.3, None) and "stale" in stop["detail"]
    assert bench.exit_status(list(got.values())) == 2


def test_an_artifact_that_was_not_built_says_so_exit_2():
    missing = {"path": ARTIFACT["path"], "exists": False, "current": False, "stale_files": [], "measurable": False,
               "why_not_measured": "not built: run `make build`"}
    got = artifact_checks(rows=[], artifact=missing)
    assert {c["value"] for c in got.values()} == {None}
    assert got["artifact.first_invocation_not_kms_vs_artifact_import_boto3"]["detail"] == "not built: run `make build`"
    assert bench.exit_status(list(got.values())) == 2


def test_venv_rows_check_their_outcome_too():
    rows = [{"name": n, "cpu_s": 0.1, "cpu_ratio_vs_import_boto3": 0.5, "rss_ratio_vs_import_boto3": 0.7,
             "peak_rss_kb": 60_000, "expect_causes": ["not-kms"], "causes_seen": [["not-kms"]]}
            for n in ("import keyfix.handler [tracing on]", "import keyfix.handler [tracing off]",
                      "1st invocation: not-kms ASG [tracing on]", "1st invocation: ordinary EC2 stop [tracing on]")]
    for r in rows[:2]:
        del r["expect_causes"], r["causes_seen"]
    rows[3]["causes_seen"] = [["not-kms"], ["undetermined"]]  # one of the runs answered wrongly
    got = by_target({"coldstart": {"venv_rows": True, "rows": rows}})
    assert [n for n, c in got.items() if c["ok"] is False] == [
        "coldstart.first_invocation_ordinary_stop_tracing_on_vs_import_boto3"]
