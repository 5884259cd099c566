"""P3 storm and P6 scan for bench/run: each runs as its own script (bench/storm.py,
bench/scan.py) in a subprocess, at full size or, with --quick, small; this module reads their
JSON and turns it into the figures bench.py checks (named as in bench.py's TARGETS).

A sub-benchmark that exits non-zero or prints no JSON yields {"error": ...}: its figures are
then None ("not measured"), which `bench/run --check` counts as exit 2, never as a pass.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = str(ROOT / ".venv" / "bin" / "python")

# --quick: storm.py's own smoke sizes; a scan of 200 groups in the full run's proportions.
STORM_QUICK = ["--smoke"]
# Three cold scans, each a fresh process and server; the median run stands, as the other
# benchmarks take medians over rounds.
SCAN_FULL = ["--groups", "1000", "--templates", "200", "--keys", "50", "--runs", "3"]
SCAN_QUICK = ["--groups", "200", "--templates", "40", "--keys", "10"]


def _error(argv: list[str], done: subprocess.CompletedProcess) -> dict:
    return {"error": f"{' '.join(Path(a).name if i < 2 else a for i, a in enumerate(argv))} exited "
                     f"{done.returncode}", "stderr_tail": done.stderr[-3000:]}


def run_storm(quick: bool, out_dir: Path, log) -> dict:
    out = out_dir / "storm.json"
    out.unlink(missing_ok=True)
    argv = [PY, str(BENCH / "storm.py"), "--out", str(out), *(STORM_QUICK if quick else [])]
    log(f"storm: bench/storm.py {' '.join(argv[2:])} (own moto server and warm workers)")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0 or not out.exists():
        return _error(argv, done)
    return json.loads(out.read_text())


def run_scan(quick: bool, log) -> dict:
    argv = [PY, str(BENCH / "scan.py"), *(SCAN_QUICK if quick else SCAN_FULL)]
    log(f"scan: bench/scan.py {' '.join(argv[2:])} (own moto server)")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return _error(argv, done)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "bench/scan.py printed no JSON", "stdout_tail": done.stdout[-3000:]}


# ---- figures for the targets (value, detail) ------------------------------------------------------


def storm_figures(res: dict) -> dict[str, tuple[float | int | None, str]]:
    """P3 (issues #14, #16) from storm.py's JSON: {target name: (value, what it is made of)}."""
    names = ("storm.duplicates_writes", "storm.duplicates_notifications", "storm.duplicates_max_calls_per_duplicate",
             "storm.duplicate_cpu_vs_first_event", "storm.mixed_writes_vs_keys",
             "storm.mixed_notifications_not_one_per_key", "storm.duplicates_wall_vs_one_event",
             "storm.mixed_wall_vs_one_event")
    if "error" in res:
        return {name: (None, res["error"]) for name in names}
    d, m = res["duplicates"], res["mixed"]
    first_wall = d["first"]["wall_s"]
    per_key = m["notifications_per_key"]
    # 0 exactly when every key was paged once and no page was extra: |n_k - 1| summed over the
    # keys, plus notifications that named no key of the storm.
    off = sum(abs(n - 1) for n in per_key.values()) + abs(m["notifications"] - sum(per_key.values()))
    first = f"first event {first_wall * 1000:.0f} ms wall"
    return {
        "storm.duplicates_writes": (d["writes"], f"{d['events']:,} copies"),
        "storm.duplicates_notifications": (d["notifications"], f"{d['events']:,} copies"),
        "storm.duplicates_max_calls_per_duplicate": (
            d["calls_per_duplicate"]["max"], f"mean {d['calls_per_duplicate']['mean']:.2f}"),
        "storm.duplicate_cpu_vs_first_event": (
            d["ratio_cpu"], f"median {d['duplicate_median_cpu_s'] * 1000:.1f} ms / first "
                            f"{d['first']['cpu_s'] * 1000:.0f} ms CPU; wall ratio {d['ratio_wall']:.3f}"),
        "storm.mixed_writes_vs_keys": (m["writes"] / m["keys"], f"{m['writes']} writes, {m['keys']} keys"),
        "storm.mixed_notifications_not_one_per_key": (
            off, f"{m['notifications']} notifications, per key {sorted(per_key.values())}"),
        # Reported, no bound: how a storm's wall time compares with one event's (the first, alone).
        "storm.duplicates_wall_vs_one_event": (
            d["wall_s"] / first_wall if "wall_s" in d and first_wall else None,
            f"{d['events'] - 1:,} duplicates in {d['wall_s']:.1f} s; {first}" if "wall_s" in d else
            "storm.py gave no duplicates wall_s"),
        "storm.mixed_wall_vs_one_event": (
            m["wall_s"] / first_wall if first_wall else None,
            f"{m['events']:,} events ({m['groups']} groups, {m['keys']} keys) in {m['wall_s']:.1f} s; {first}"),
    }


def scan_figures(res: dict) -> dict[str, tuple[float | int | None, str]]:
    """P6 from scan.py's JSON (the names are scan.py's own fields, prefixed)."""
    names = ("scan.calls_beyond_minimum", "scan.scan_time_vs_calls_x_median_call", "scan.model_share_of_scan")
    if "error" in res:
        return {name: (None, res["error"]) for name in names}
    size = f"{res['groups']:,} groups, {res['templates']} templates, {res['keys']} keys"
    return {
        "scan.calls_beyond_minimum": (res.get("calls_beyond_minimum"),
                                      f"{res.get('calls')} calls, minimum {res.get('minimum')}; {size}"),
        "scan.scan_time_vs_calls_x_median_call": (
            res.get("scan_time_vs_calls_x_median_call"),
            f"scan {res['scan_s']:.2f} s vs {res['calls']} x {res['median_call_s'] * 1000:.1f} ms"
            if res.get("median_call_s") is not None and res.get("scan_s") is not None else ""),
        "scan.model_share_of_scan": (res.get("model_share_of_scan"),
                                     f"model {res['model_s']:.2f} s" if res.get("model_s") is not None else ""),
    }


# ---- readable sections ------------------------------------------------------------------------------


def render_storm(res: dict) -> str:
    title = "P3. Storm (bench/storm.py): duplicates of one failure, then a mixed storm, over warm workers on moto"
    if "error" in res:
        return "\n".join([title, f"   NOT MEASURED: {res['error']}", *("   " + l for l in res["stderr_tail"].splitlines()[-8:])])
    d, m = res["duplicates"], res["mixed"]
    return "\n".join([
        title,
        f"   duplicates: {d['events']:,} copies, {d['workers']} workers: {d['writes']} writes, {d['notifications']} "
        f"notifications, {d['answered_as_duplicate']} answered as duplicates, calls per duplicate mean "
        f"{d['calls_per_duplicate']['mean']:.2f} max {d['calls_per_duplicate']['max']}; first event "
        f"{d['first']['calls']} calls, {d['first']['wall_s'] * 1000:.0f} ms wall / {d['first']['cpu_s'] * 1000:.0f} ms "
        f"CPU; duplicate median {d['duplicate_median_wall_s'] * 1000:.1f} ms wall / "
        f"{d['duplicate_median_cpu_s'] * 1000:.1f} ms CPU",
        f"   mixed: {m['events']:,} events, {m['groups']} groups on {m['keys']} keys: {m['writes']} writes, "
        f"{m['notifications']} notifications (no-missing-permission {m['notifications_no_missing_permission']}), "
        f"{m['full_diagnoses']} full diagnoses, {m['calls_per_event']:.2f} calls per event, {m['wall_s']:.1f} s",
    ])


def render_scan(res: dict) -> str:
    title = "P6. Scan at account scale (bench/scan.py): keyfix scan on moto, every call counted and timed"
    if "error" in res:
        tail = res.get("stderr_tail") or res.get("stdout_tail") or ""
        return "\n".join([title, f"   NOT MEASURED: {res['error']}", *("   " + l for l in tail.splitlines()[-8:])])
    beyond = ", ".join(f"{op} +{n}" for op, n in res.get("beyond_minimum", {}).items()) or "none"
    return "\n".join([
        title,
        f"   {res['groups']:,} groups, {res['templates']} template versions, {res['keys']} keys: {res['calls']} calls "
        f"(minimum {res['minimum']}; beyond: {beyond}); scan {res['scan_s']:.2f} s, median call "
        f"{res['median_call_s'] * 1000:.1f} ms, model {res['model_s']:.2f} s; predicted failures "
        f"{res['predicted_failures']} of {res['expected_broken_groups']} broken groups",
    ])
