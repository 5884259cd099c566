"""The P3 storm benchmark at tiny size (bench/storm.py --smoke), so it cannot rot: counts only,
never times (issues #14, #16). 20 copies of one launch failure, then 40 failures from 10
groups sharing 2 broken keys, over 2 warm workers against a moto server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.server


def test_storm_smoke_counts(tmp_path):
    out = tmp_path / "storm.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "storm.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    dup, mixed = result["duplicates"], result["mixed"]

    # 20 copies: the first diagnosed and repaired, 19 answered from the first run's record.
    assert [f[0] for f in dup["first"]["findings"]] == ["slr-not-in-key-policy"]
    assert [f[2] for f in dup["first"]["findings"]] == [["applied"]]
    assert dup["answered_as_duplicate"] == 19
    assert (dup["writes"], dup["notifications"]) == (1, 1)
    assert dup["calls_per_duplicate"] == {"max": 1, "mean": 1.0}

    # 40 failures, 10 groups, 2 keys: one write and one page per key, whichever group repaired it.
    assert mixed["full_diagnoses"] == 10, "each group diagnosed once; its other events are duplicates"
    assert mixed["writes"] == 2
    assert mixed["notifications"] == 2 and sorted(mixed["notifications_per_key"].values()) == [1, 1]
    assert mixed["notifications_no_missing_permission"] == 0

    # bench/run reads this same JSON into its Targets table: every count target met. The two
    # time figures (duplicate CPU ratio, storm wall vs one event) are only required to exist.
    spec = importlib.util.spec_from_file_location("bench_storm_scan", ROOT / "bench" / "storm_scan.py")
    storm_scan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(storm_scan)
    figures = storm_scan.storm_figures(result)
    timed = {"storm.duplicate_cpu_vs_first_event", "storm.duplicates_wall_vs_one_event", "storm.mixed_wall_vs_one_event"}
    assert {n: v for n, (v, _) in figures.items() if n not in timed} == {
        "storm.duplicates_writes": 1, "storm.duplicates_notifications": 1,
        "storm.duplicates_max_calls_per_duplicate": 1, "storm.mixed_writes_vs_keys": 1.0,
        "storm.mixed_notifications_not_one_per_key": 0}
    assert all(isinstance(figures[n][0], float) for n in timed)
