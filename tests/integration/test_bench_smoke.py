"""Smoke runs of the benchmarks at tiny size (issue #14: keep them from rotting).

Each benchmark of bench/ runs here as bench/run runs it (its own process), small. Only
counts are asserted (decisions, AWS calls, outcomes), never a time: timings belong to
`bench/run --check` on a quiet machine (bench/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def _run(*argv: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYFIX_", "MOTO_"))}
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_p4_policy_worker_decides_every_case_of_a_tiny_corpus():
    sys.path.insert(0, str(BENCH))
    try:
        import cases
    finally:
        sys.path.remove(str(BENCH))
    corpus = cases.corpus(60)
    out = _run(str(BENCH / "policy_worker.py"), str(corpus), "--passes", "1", "--no-fit")
    assert out["cases"] == 60
    assert out["errors"] == 0, out["decisions"]
    assert sum(out["decisions"].values()) == 60
    assert set(out["decisions"]) <= {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied", "Undetermined"}
    # A warm pass parses nothing again: the corpus fits the cache.
    assert out["cache"]["policy_parses_in_a_warm_pass"] == 0


def test_p2_every_seed_scenario_makes_exactly_its_minimum_calls():
    out = _run(str(BENCH / "aws_calls.py"))
    assert sorted(out) == ["A1", "A2", "B", "C"]
    for name, r in out.items():
        assert r["beyond_minimum"] == [] and r["minimum_not_made"] == [], (name, r["resolve_calls"])
        assert r["apply_beyond_minimum"] == [] and r["apply_minimum_not_made"] == [], (name, r["apply_remedy_calls"])
    assert [f["cause"] for f in out["A1"]["findings_propose"]] == ["slr-not-in-key-policy"]
    assert "kms:ListResourceTags" not in out["A1"]["resolve_calls"]  # propose mode never reads the opt-in tag
    assert out["A1"]["apply_remedy_calls"][0] == "kms:ListResourceTags"  # apply mode reads it once, to decide


def test_p1b_an_ordinary_stop_costs_one_call_and_writes_nothing():
    out = _run(str(BENCH / "irrelevant.py"))
    assert out["calls"] == ["ec2:DescribeInstances"]
    assert out["causes"] == ["not-kms"]
    assert out["table_items_written"] == 0


@pytest.mark.server
def test_p1_p5_cold_start_rows_run_and_reach_their_outcomes():
    code = ("import json, sys; sys.path.insert(0, 'bench'); import coldstart; "
            "r = coldstart.run(reps=1, importtime_reps=1, bytecode=False, log=lambda m: None); "
            "print(json.dumps([[x['name'], x.get('outcome', {}).get('causes'), x['peak_rss_kb']] for x in r['rows']]))")
    rows = {name: (causes, rss) for name, causes, rss in _run("-c", code)}
    for tracing in ("on", "off"):
        assert rows[f"1st invocation: ordinary EC2 stop [tracing {tracing}]"][0] == ["not-kms"]
        assert rows[f"1st invocation: not-kms ASG [tracing {tracing}]"][0] == ["not-kms"]
        assert rows[f"1st invocation: unrecognised [tracing {tracing}]"][0] == []
    assert all(rss > 0 for _, rss in rows.values())


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.server
def test_p6_scan_json_reads_into_bench_run_targets():
    """bench/run reads bench/scan.py's JSON (another engineer's script): its field names must hold."""
    figures = _bench_module("storm_scan").scan_figures(_run(str(BENCH / "scan.py"), "--smoke"))
    assert figures["scan.calls_beyond_minimum"][0] == 0
    assert isinstance(figures["scan.scan_time_vs_calls_x_median_call"][0], float)
    assert isinstance(figures["scan.model_share_of_scan"][0], float)


@pytest.mark.server
def test_artifact_cold_start_rows_load_from_the_artifact_and_reach_their_outcomes(tmp_path):
    """The built artifact's rows (what `make test` builds before the tests), counts only. An
    arm64 artifact runs as its host twin, whose wheels must already be in bench/out/wheels
    (bench/run fetches them; a test reaches nothing beyond 127.0.0.1)."""
    artifact = _bench_module("artifact")
    if not artifact.state()["exists"]:
        pytest.skip("no .aws-sam/build/KeyfixFunction: `make build` (make test builds it first)")
    for rel in artifact.foreign_extensions(artifact.ARTIFACT):
        name, version = artifact.distribution_of(artifact.ARTIFACT, rel)
        if not list((BENCH / "out" / "wheels").glob(f"{name}-{version}-*.whl")):
            pytest.skip(f"{rel} is built for another machine and {name} {version}'s wheel for this one is not in "
                        "bench/out/wheels: run `bench/run --only artifact` once")
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, 'bench'); import artifact, coldstart; "
            f"twin = artifact.host_twin(artifact.ARTIFACT, Path({str(tmp_path)!r}), lambda m: None, "
            "wheels=Path('bench/out/wheels')); "
            "r = coldstart.run(reps=1, log=lambda m: None, venv_rows=False, artifact=Path(twin['dir'])); "
            "print(json.dumps([[x['name'], x.get('causes_seen'), x.get('under_artifact')] for x in r['rows']]))")
    rows = {name: (causes, under) for name, causes, under in _run("-c", code)}
    assert rows["artifact: 1st invocation: not-kms ASG [tracing on]"] == ([["not-kms"]], True)
    assert rows["artifact: 1st invocation: ordinary EC2 stop [tracing on]"] == ([["not-kms"]], True)
    assert rows["artifact: import boto3"][1] is True
    assert rows["artifact: import keyfix.handler [tracing on]"][1] is True
