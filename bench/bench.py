"""keyfix benchmarks: policy throughput vs iam-simulate, cold start (venv and built artifact), AWS calls, storm, scan.

    bench/run [--only policy|coldstart|artifact|calls|irrelevant|storm|scan ...] [--check] [--quick] [options]

Prints readable tables and writes bench/out/results.json. Every speed or memory target
is a RATIO of two figures measured side by side in this run, never an absolute time.
With --check, exits 1 when a target is missed and 2 when a checked figure could not be
measured (e.g. node or tests/oracle/node_modules missing). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
PY = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(BENCH))

import cases as corpus_mod  # noqa: E402  (bench/cases.py)
import storm_scan  # noqa: E402  (bench/storm_scan.py)

# ---- targets (ratios; see bench/README.md for why these numbers) ------------------------------

TARGETS = {
    # 1. policy evaluation, same corpus, both engines in this run
    "policy.warm_throughput_vs_iam_simulate": (">=", 5.0),
    "policy.cold_cache_throughput_vs_iam_simulate_warm": (">=", 2.0),
    "policy.peak_rss_vs_iam_simulate": ("<=", 1.0),
    # 2. cold start, fresh processes, median CPU time (wall shown too), vs `python -c "import boto3"`
    "coldstart.import_handler_tracing_on_vs_import_boto3": ("<=", 2.0),
    "coldstart.import_handler_tracing_off_vs_import_boto3": ("<=", 1.0),
    "coldstart.first_invocation_not_kms_tracing_on_vs_import_boto3": ("<=", 4.0),
    "coldstart.import_handler_peak_rss_vs_import_boto3": ("<=", 1.5),
    # 3. P2 AWS calls: exactly the minimum per seed scenario, in propose and in apply mode
    "calls.max_beyond_minimum": ("<=", 0),
    "calls.apply_max_beyond_minimum": ("<=", 0),
    # P1b: an ordinary EC2 stop (the state-change rule fires for every one in the account)
    "irrelevant.ordinary_stop_aws_calls": ("<=", 1),
    "coldstart.first_invocation_ordinary_stop_tracing_on_vs_import_boto3": ("<=", 1.5),
    # P5: peak RSS of one invocation (fresh process: import + first invocation), MB; the smallest Lambda
    "memory.peak_rss_one_invocation_mb": ("<=", 128),
    # P3 storm (bench/storm.py): 1,000 copies of one failure; 1,000 failures of 50 groups on 5 keys
    "storm.duplicates_writes": ("==", 1),
    "storm.duplicates_notifications": ("<=", 1),
    "storm.duplicates_max_calls_per_duplicate": ("<=", 1),  # the idempotency lookup
    "storm.duplicate_cpu_vs_first_event": ("<=", 0.03),  # issue #16 (storm.DUPLICATE_RATIO_TARGET)
    "storm.mixed_writes_vs_keys": ("==", 1.0),  # one write per distinct fix (SLR x key)
    "storm.mixed_notifications_not_one_per_key": ("==", 0),  # one page per repaired key
    "storm.duplicates_wall_vs_one_event": ("report", None),
    "storm.mixed_wall_vs_one_event": ("report", None),
    # P6 scan at account scale (bench/scan.py: 1,000 groups, 200 template versions, 50 keys)
    "scan.calls_beyond_minimum": ("<=", 0),
    "scan.scan_time_vs_calls_x_median_call": ("<=", 1.5),
    "scan.model_share_of_scan": ("<=", 0.10),
    # Artifact: cold start on what `make build` ships, CPU vs `import boto3` on the same artifact
    "artifact.first_invocation_ordinary_stop_vs_artifact_import_boto3": ("<=", 1.5),
    "artifact.first_invocation_not_kms_vs_artifact_import_boto3": ("<=", 4.0),
    "artifact.import_handler_vs_artifact_import_boto3": ("report", None),
    "artifact.unzipped_mb": ("report", None),
    "artifact.files": ("report", None),
    "artifact.zipped_mb": ("report", None),
}
BENCHMARKS = ["policy", "coldstart", "artifact", "calls", "irrelevant", "storm", "scan"]


def _ok(op: str, value: float, bound: float | None) -> bool:
    if op == "report":  # shown, never checked
        return True
    if op == "==":
        return value == bound
    return value >= bound if op == ">=" else value <= bound


# ---- 1. policy throughput ---------------------------------------------------------------------


def _aggregate(rounds: list[dict]) -> dict:
    """Round 1's full output, with the cold/warm figures replaced by medians over rounds."""
    import statistics

    out = json.loads(json.dumps(rounds[0]))
    n = out["cases"]
    for phase in ("cold", "warm"):
        seconds = statistics.median(r[phase]["seconds"] for r in rounds)
        cpu = statistics.median(r[phase]["cpu_s"] for r in rounds)
        out[phase].update({"seconds": seconds, "cases_per_s": n / seconds, "per_case_us": seconds * 1e6 / n,
                           "cpu_s": cpu, "cases_per_cpu_s": n / cpu,
                           "per_round_cases_per_s": [r[phase]["cases_per_s"] for r in rounds]})
        out[phase].pop("all_passes_s", None)
    out["memory_kb"]["peak_rss"] = statistics.median(r["memory_kb"]["peak_rss"] for r in rounds)
    out["rounds"] = len(rounds)
    return out


def bench_policy(args, log) -> dict:
    path = corpus_mod.corpus(args.cases)
    shape = corpus_mod.describe(path)
    log(f"policy: corpus {path.relative_to(ROOT)} ({shape['cases']} cases, "
        f"{shape['distinct_policy_documents']} distinct policy documents)")
    out: dict = {"corpus": {"path": str(path.relative_to(ROOT)), **shape}}

    node = shutil.which("node")
    oracle = ROOT / "tests" / "oracle" / "node_modules" / "@cloud-copilot" / "iam-simulate"
    skipped = None
    if node is None or not oracle.exists():
        why = "node not found" if node is None else "tests/oracle/node_modules missing"
        skipped = f"{why}: run `npm ci --prefix tests/oracle --no-audit --no-fund`"
        log(f"policy: iam-simulate skipped ({why})")

    def keyfix(first: bool) -> dict:
        argv = [PY, str(BENCH / "policy_worker.py"), str(path), "--passes", str(args.passes)]
        return json.loads(subprocess.run(argv + ([] if first else ["--no-fit"]), check=True, capture_output=True,
                                         text=True, cwd=ROOT).stdout)

    def iam_simulate() -> dict:
        return json.loads(subprocess.run(
            [node, str(BENCH / "iam_simulate_worker.mjs"), str(path), "--passes", str(args.passes)],
            check=True, capture_output=True, text=True, cwd=ROOT).stdout)

    k_rounds, n_rounds = [], []
    for r in range(args.rounds):
        # Alternate which engine goes first, so a change of load on the machine hits both alike.
        order = ["keyfix", "iam-simulate"] if r % 2 == 0 else ["iam-simulate", "keyfix"]
        for engine in order:
            if engine == "keyfix":
                log(f"policy: round {r + 1}/{args.rounds}: keyfix (fresh python, loop over decide(doc))")
                k_rounds.append(keyfix(first=r == 0))
            elif not skipped:
                log(f"policy: round {r + 1}/{args.rounds}: iam-simulate (fresh node, evaluation loop only)")
                n_rounds.append(iam_simulate())
    out["keyfix"] = _aggregate(k_rounds)
    if skipped:
        out["iam_simulate"] = {"skipped": skipped}
        return out
    out["iam_simulate"] = _aggregate(n_rounds)

    k, n = out["keyfix"], out["iam_simulate"]
    out["ratios"] = {
        "warm_throughput_vs_iam_simulate": k["warm"]["cases_per_s"] / n["warm"]["cases_per_s"],
        "cold_cache_throughput_vs_iam_simulate_warm": k["cold"]["cases_per_s"] / n["warm"]["cases_per_s"],
        "cold_vs_cold": k["cold"]["cases_per_s"] / n["cold"]["cases_per_s"],
        "warm_cache_fits_vs_iam_simulate_warm": k["warm_cache_fits"]["cases_per_s"] / n["warm"]["cases_per_s"],
        "warm_cpu_throughput_vs_iam_simulate": k["warm"]["cases_per_cpu_s"] / n["warm"]["cases_per_cpu_s"],
        "peak_rss_vs_iam_simulate": k["memory_kb"]["peak_rss"] / n["memory_kb"]["peak_rss"],
        "rss_increase_over_loaded_corpus_vs_iam_simulate":
            (k["memory_kb"]["peak_rss"] - k["memory_kb"]["rss_after_loading_cases"])
            / max(1, n["memory_kb"]["peak_rss"] - n["memory_kb"]["rss_after_loading_cases"]),
    }
    return out


def render_policy(res: dict) -> str:
    k, n = res["keyfix"], res.get("iam_simulate", {})
    c = res["corpus"]
    skipped = n.get("skipped")
    lines = [f"P4. Policy evaluation: {c['cases']} KMS cases ({c['distinct_policy_documents']} distinct policy documents, "
             f"{c['statements_per_case']} statements/case), the same JSONL for both engines; "
             f"{k['rounds']} rounds x (1 cold + {k['passes']} warm passes), medians"]
    engine = "iam-simulate" if skipped else f"iam-simulate {n['version']} (node {n['node']})"
    rows = [("", f"keyfix (python {k['python']})", engine, "keyfix/iam-simulate")]

    def add(label, kv, nv, digits=0):
        def f(v):
            return "-" if v is None else f"{v:,.{digits}f}"
        rows.append((label, f(kv), f(nv), f"{kv / nv:.2f}x" if nv else ""))

    def nget(*path):
        if skipped:
            return None
        v = n
        for p in path:
            v = v[p]
        return v

    add("cold: cases/s, first pass (empty caches / JIT cold)", k["cold"]["cases_per_s"], nget("cold", "cases_per_s"))
    add("warm: cases/s, median of passes", k["warm"]["cases_per_s"], nget("warm", "cases_per_s"))
    add("keyfix cold vs iam-simulate warm: cases/s", k["cold"]["cases_per_s"], nget("warm", "cases_per_s"))
    add("keyfix warm, policy cache sized to fit corpus", k["warm_cache_fits"]["cases_per_s"],
        nget("warm", "cases_per_s"))
    add("warm: microseconds per case", k["warm"]["per_case_us"], nget("warm", "per_case_us"))
    add("warm: cases per CPU-second (all threads)", k["warm"]["cases_per_cpu_s"], nget("warm", "cases_per_cpu_s"))
    mk = k["memory_kb"]
    mn = None if skipped else n["memory_kb"]
    add("RSS after import, MB", mk["rss_after_import"] / 1024, mn and mn["rss_after_import"] / 1024, 1)
    add("RSS after loading the corpus, MB", mk["rss_after_loading_cases"] / 1024,
        mn and mn["rss_after_loading_cases"] / 1024, 1)
    add("peak RSS, MB", mk["peak_rss"] / 1024, mn and mn["peak_rss"] / 1024, 1)
    add("peak minus loaded corpus, MB", (mk["peak_rss"] - mk["rss_after_loading_cases"]) / 1024,
        mn and (mn["peak_rss"] - mn["rss_after_loading_cases"]) / 1024, 1)
    lines += _table(rows)
    cache = k["cache"]
    lines.append(f"   decisions: keyfix {k['decisions']} (errors {k['errors']}); iam-simulate "
                 f"{nget('decisions')} ({nget('simulations_per_pass')} simulations/pass: one per boundary; "
                 f"grants not modelled, so the histograms differ)")
    lines.append(f"   keyfix parsed-policy cache: {cache['parsed_policy_cache_size']} entries for "
                 f"{c['distinct_policy_documents']} distinct documents -> warm-pass hit rate "
                 f"{cache['policy_cache_hit_rate_warm']:.0%}; with a cache that fits, peak RSS "
                 f"{mk['peak_rss_with_cache_fitting_corpus'] / 1024:.0f} MB")
    if skipped:
        lines.append(f"   iam-simulate: {skipped}")
    return "\n".join(lines)


# ---- 2. cold start ----------------------------------------------------------------------------


def bench_coldstart(args, log, only: list[str]) -> tuple[dict, dict | None]:
    """The venv rows ("coldstart") and the built artifact's ("artifact"), in one interleaved
    measurement against one moto server: (coldstart results, artifact description or None)."""
    import artifact as artifact_mod
    import coldstart

    art, measured_dir = None, None
    if "artifact" in only:
        art = artifact_mod.prepare(log, OUT, build_when_needed=not args.no_build)
        if art["measurable"]:
            try:
                art["measured"] = artifact_mod.host_twin(Path(art["path"]), OUT, log)
                measured_dir = Path(art["measured"]["dir"])
            except (LookupError, OSError, subprocess.CalledProcessError) as exc:
                art["measurable"] = False
                art["why_not_measured"] = f"no host twin of the arm64 artifact: {exc}"
        if not art["measurable"]:
            log(f"artifact: NOT MEASURED: {art['why_not_measured']}")
    res = coldstart.run(reps=args.reps, importtime_reps=args.importtime_reps, bytecode=not args.no_bytecode,
                        log=log, venv_rows="coldstart" in only, artifact=measured_dir)
    res["venv_rows"] = "coldstart" in only
    return res, art


def render_coldstart(res: dict) -> str:
    lines = [f"P1/P5. Lambda cold-start proxy (P1 cold start, P1b CPU, P5 memory): fresh `python` processes, Lambda environment emulated, median of "
             f"{res['reps']} interleaved runs (peak RSS: {res['peak_rss_source']})"]
    rows = [("process", "wall ms", "(min-max)", "cpu ms", "import ms", "invoke ms", "peak MB",
             "wall x boto3", "cpu x", "RSS x", "cpu x artifact boto3", "causes")]
    for r in res["rows"]:
        rows.append((
            r["name"], f"{r['wall_s'] * 1000:.0f}", f"{r['wall_s_min'] * 1000:.0f}-{r['wall_s_max'] * 1000:.0f}",
            f"{r['cpu_s'] * 1000:.0f}",
            f"{r['import_s'] * 1000:.0f}" if "import_s" in r else "",
            f"{r['invoke_s'] * 1000:.0f}" if "invoke_s" in r else "",
            f"{r['peak_rss_kb'] / 1024:.1f}", f"{r['wall_ratio_vs_import_boto3']:.2f}",
            f"{r['cpu_ratio_vs_import_boto3']:.2f}" if r.get("cpu_ratio_vs_import_boto3") is not None else "",
            f"{r['rss_ratio_vs_import_boto3']:.2f}",
            f"{r['cpu_ratio_vs_artifact_import_boto3']:.2f}" if r.get("cpu_ratio_vs_artifact_import_boto3") else "",
            "" if "causes_seen" not in r else " | ".join(",".join(c) or "-" for c in r["causes_seen"])))
    lines += _table(rows, left=(0, 11))
    it = res.get("importtime", {})
    for key, title in (("tracing_on", "tracing on (as deployed)"), ("tracing_off", "tracing off")):
        if key not in it:
            continue
        s = it[key]
        lines.append(f"   -X importtime, import keyfix.handler, {title}: {s['keyfix_handler_cumulative_ms']:.0f} ms "
                     f"cumulative (median of {s['reps']}); top modules by cumulative ms (self ms):")
        shown = [f"{name} {cum:.0f} ({own:.0f})" for name, cum, own in s["top_cumulative_ms"][1:16]]
        lines += ["     " + "; ".join(shown[i:i + 5]) for i in range(0, len(shown), 5)]
        lines.append("     self ms by package: " + ", ".join(f"{p} {v:.0f}" for p, v in s["self_ms_by_top_level_package"][:10]))
    for key in ("first_invocation_unrecognised", "first_invocation_not_kms", "first_invocation_ordinary_stop"):
        if key in it:
            lazy = it[key]["imported_during_first_invocation_ms"]
            lines.append(f"   imported during the {key.replace('_', ' ')} (ms): "
                         + ", ".join(f"{n} {v:.0f}" for n, v in lazy[:8]))
    return "\n".join(lines)


def render_artifact(art: dict) -> str:
    lines = [f"Artifact: {Path(art['path']).relative_to(ROOT) if Path(art['path']).is_relative_to(ROOT) else art['path']} "
             f"(make build: sam build + compileall); cold-start rows 'artifact: ...' above"]
    if "build" in art:
        b = art["build"]
        lines.append(f"   built now: `{b['command']}` exit {b['exit']} in {b['seconds']} s")
    if "size" in art:
        z = art["size"]
        lines.append(f"   size: {z['unzipped_mb']:.1f} MB unzipped ({z['unzipped_kib']:,} KiB, du -sk as make build prints "
                     f"it), {z['files']:,} files ({z['py_files']} .py, {z['pyc_files']} .pyc), zip -9 {z['zipped_mb']:.1f} MB")
    if not art["measurable"]:
        lines.append(f"   cold start NOT MEASURED: {art['why_not_measured']}")
    elif not art["current"]:
        lines.append(f"   STALE, its rows are not checked: {art['why_not_current']}")
    measured = art.get("measured")
    if measured and measured["twin"]:
        lines.append(f"   measured on its host twin {Path(measured['dir']).relative_to(ROOT)}: the artifact is built for "
                     f"arm64; only these extension modules are replaced by this machine's build of the same version:")
        lines += [f"     {r['file']} -> {r['with']} ({r['wheel']})" for r in measured["replaced"]]
    return "\n".join(lines)


# ---- 3. AWS calls -----------------------------------------------------------------------------


def bench_calls(args, log) -> dict:
    log("calls: seed scenarios A1, A2, B, C on moto")
    return json.loads(subprocess.run([PY, str(BENCH / "aws_calls.py")], check=True, capture_output=True, text=True,
                                     cwd=ROOT).stdout)


def render_calls(res: dict) -> str:
    lines = ["P2. AWS calls per seed scenario (keyfix.resolve on moto; whole invocation = propose mode with "
             "table + topic)"]
    rows = [("scenario", "resolve calls", "minimum", "ratio", "beyond minimum", "apply adds", "apply beyond minimum",
             "whole invocation")]
    for name, r in res.items():
        rows.append((name, str(r["resolve_count"]), str(r["minimum_count"]), f"{r['ratio_to_minimum']:.2f}",
                     ", ".join(r["beyond_minimum"]) or "-", ", ".join(r["apply_remedy_calls"]) or "-",
                     ", ".join(r["apply_beyond_minimum"] + r["apply_minimum_not_made"]) or "-",
                     str(r["invocation_count"])))
    lines += _table(rows)
    for name, r in res.items():
        lines.append(f"   {name}: {r['description']} -> {', '.join(f['cause'] for f in r['findings_propose'])}")
        lines.append(f"      resolve: {' '.join(c.split(':')[1] for c in r['resolve_calls'])}")
        if r["minimum_not_made"]:
            lines.append(f"      minimum not made: {', '.join(r['minimum_not_made'])}")
    return "\n".join(lines)


# ---- P1b: irrelevant events --------------------------------------------------------------------


def bench_irrelevant(args, log) -> dict:
    log("irrelevant: an ordinary EC2 stop through lambda_handler on moto, every API call counted")
    return json.loads(subprocess.run([PY, str(BENCH / "irrelevant.py")], check=True, capture_output=True, text=True,
                                     cwd=ROOT).stdout)


def render_irrelevant(res: dict) -> str:
    return "\n".join([
        "P1b. Irrelevant event: an ordinary EC2 stop (StateReason Client.UserInitiatedShutdown), lambda_handler with "
        "table + topic, every botocore API call counted",
        f"   calls: {res['count']} ({', '.join(res['calls']) or 'none'}); minimum {len(res['minimum'])} "
        f"({', '.join(res['minimum'])}); causes {res['causes']}; table items written {res['table_items_written']}",
        "   CPU time of the first invocation: row '1st invocation: ordinary EC2 stop' of the cold-start table",
    ])


# ---- checks, output ---------------------------------------------------------------------------


def checks(results: dict) -> list[dict]:
    out = []

    def add(name, value, detail="", problem=None):
        """problem: why the figure does not count (a wrong answer: MISSED) or cannot be checked
        (a stale artifact: n/a), whatever its value."""
        op, bound = TARGETS[name]
        ok = None if value is None else _ok(op, value, bound)
        if problem is not None:
            ok, detail = problem[0], problem[1]
        out.append({"target": name, "op": op, "bound": bound, "value": value, "ok": ok, "detail": detail})

    pol = results.get("policy")
    if pol is not None:
        ratios = pol.get("ratios", {})
        add("policy.warm_throughput_vs_iam_simulate", ratios.get("warm_throughput_vs_iam_simulate"))
        add("policy.cold_cache_throughput_vs_iam_simulate_warm", ratios.get("cold_cache_throughput_vs_iam_simulate_warm"))
        add("policy.peak_rss_vs_iam_simulate", ratios.get("peak_rss_vs_iam_simulate"))
    cs = results.get("coldstart")
    if cs is not None:
        import coldstart

        def row_target(target, name, field, extra_problem=None):
            r = coldstart.row(cs, name)
            if r is None:
                return add(target, None, f"row '{name}' not measured")
            problem = extra_problem
            expect = r.get("expect_causes")
            if expect is not None and r.get("causes_seen") != [list(expect)]:
                problem = (False, f"answered {r.get('causes_seen')}, expected {expect}: the row measures nothing")
            elif r.get("under_artifact") is False:
                problem = (False, f"loaded from outside the artifact: {r.get('origins')}")
            made_of = (f"{r['peak_rss_kb'] / 1024:.1f} MB peak" if field.startswith("rss")
                       else f"{r['cpu_s'] * 1000:.0f} ms CPU")
            add(target, r[field], made_of, problem)

        # Time targets use the median CPU-time ratio: on a shared machine or CI runner, wall
        # time of short processes swings with other load, CPU time much less (both are shown).
        cpu = "cpu_ratio_vs_import_boto3"
        if cs.get("venv_rows", True):
            row_target("coldstart.import_handler_tracing_on_vs_import_boto3", "import keyfix.handler [tracing on]", cpu)
            row_target("coldstart.import_handler_tracing_off_vs_import_boto3", "import keyfix.handler [tracing off]", cpu)
            row_target("coldstart.first_invocation_not_kms_tracing_on_vs_import_boto3",
                       "1st invocation: not-kms ASG [tracing on]", cpu)
            row_target("coldstart.import_handler_peak_rss_vs_import_boto3", "import keyfix.handler [tracing on]",
                       "rss_ratio_vs_import_boto3")
            row_target("coldstart.first_invocation_ordinary_stop_tracing_on_vs_import_boto3",
                       "1st invocation: ordinary EC2 stop [tracing on]", cpu)
            invocations = [r["peak_rss_kb"] for r in cs["rows"] if r["name"].startswith("1st invocation")]
            add("memory.peak_rss_one_invocation_mb", max(invocations) / 1024 if invocations else None)
        art = results.get("artifact")
        if art is not None:
            stale = None if art["current"] else (
                None, f"stale artifact: {len(art['stale_files'])} files differ from src/ (bench/run builds it unless "
                      f"--no-build)")
            on_art = "cpu_ratio_vs_artifact_import_boto3"
            for target, name in (
                    ("artifact.first_invocation_ordinary_stop_vs_artifact_import_boto3",
                     "artifact: 1st invocation: ordinary EC2 stop [tracing on]"),
                    ("artifact.first_invocation_not_kms_vs_artifact_import_boto3",
                     "artifact: 1st invocation: not-kms ASG [tracing on]"),
                    ("artifact.import_handler_vs_artifact_import_boto3", "artifact: import keyfix.handler [tracing on]")):
                if not art["measurable"]:
                    add(target, None, art["why_not_measured"])
                else:
                    row_target(target, name, on_art, stale)
    art = results.get("artifact")
    if art is not None:
        z = art.get("size")
        add("artifact.unzipped_mb", z and z["unzipped_mb"], z and f"{z['unzipped_kib']:,} KiB (du -sk)")
        add("artifact.files", z and z["files"], z and f"{z['py_files']} .py, {z['pyc_files']} .pyc")
        add("artifact.zipped_mb", z and z["zipped_mb"], "zip -9")
    irrelevant = results.get("irrelevant")
    if irrelevant is not None:
        add("irrelevant.ordinary_stop_aws_calls", irrelevant["count"])
    calls = results.get("calls")
    if calls is not None:
        add("calls.max_beyond_minimum", max(len(r["beyond_minimum"]) + len(r["minimum_not_made"])
                                            for r in calls.values()))
        add("calls.apply_max_beyond_minimum", max(len(r["apply_beyond_minimum"]) + len(r["apply_minimum_not_made"])
                                                  for r in calls.values()))
    if results.get("storm") is not None:
        for name, (value, detail) in storm_scan.storm_figures(results["storm"]).items():
            add(name, value, detail)
    if results.get("scan") is not None:
        for name, (value, detail) in storm_scan.scan_figures(results["scan"]).items():
            add(name, value, detail)
    return out


def render_checks(items: list[dict]) -> str:
    rows = [("target", "measured", "bound", "", "from")]
    for c in items:
        value = "not measured" if c["value"] is None else (
            f"{c['value']:.3f}" if isinstance(c["value"], float) and abs(c["value"]) < 0.1 else
            f"{c['value']:.2f}" if isinstance(c["value"], float) else str(c["value"]))
        verdict = ("n/a" if c["ok"] is None else "report" if c["op"] == "report" else "ok" if c["ok"] else "MISSED")
        bound = "-" if c["op"] == "report" else f"{c['op']} {c['bound']}"
        rows.append((c["target"], value, bound, verdict, c.get("detail") or ""))
    return "\n".join(["Targets (ratios measured in this run)"] + _table(rows, left=(0, 4)))


def _table(rows: list[tuple], left: tuple[int, ...] = (0,)) -> list[str]:
    """Columns padded to width: text columns (`left`) to the left, figures to the right."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        cells = [str(v).ljust(w) if i in left else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))]
        out.append("   " + "  ".join(cells).rstrip())
        if j == 0:
            out.append("   " + "  ".join("-" * w for w in widths))
    return out


def _meta() -> dict:
    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    cpu = None
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": cmd("git", "rev-parse", "--short", "HEAD"),
        "worktree_dirty": bool(cmd("git", "status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "node": cmd("node", "--version"),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=BENCHMARKS,
                    help="run only this benchmark (repeatable); default: all")
    ap.add_argument("--check", action="store_true", help="exit 1 when a ratio target is missed, 2 when unmeasured")
    ap.add_argument("--quick", action="store_true",
                    help="smaller and fewer: 1000 cases, 1 round, 3 cold-start runs, storm --smoke, a 200-group scan")
    ap.add_argument("--cases", type=int, default=4000, help="policy corpus size (default 4000)")
    ap.add_argument("--passes", type=int, default=2, help="warm passes per engine process (default 2)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh processes per engine, alternating (default 3; medians over rounds)")
    ap.add_argument("--reps", type=int, default=7, help="cold-start runs per process kind (default 7; median)")
    ap.add_argument("--importtime-reps", type=int, default=5)
    ap.add_argument("--no-bytecode", action="store_true", help="skip the .pyc study of the cold start")
    ap.add_argument("--no-build", action="store_true",
                    help="never run `make build`: a missing artifact is not measured, a stale one not checked")
    ap.add_argument("--out", type=Path, default=OUT / "results.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.cases, args.passes, args.rounds, args.reps, args.importtime_reps = 1000, 2, 1, 3, 3
    only = args.only or BENCHMARKS

    OUT.mkdir(parents=True, exist_ok=True)
    ignore = OUT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by bench/run: everything here is generated (see bench/README.md).\n*\n")

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    results: dict = {"meta": _meta(), "targets": {k: {"op": o, "bound": b} for k, (o, b) in TARGETS.items()}}
    started = time.monotonic()
    renders = []
    if "policy" in only:
        results["policy"] = bench_policy(args, log)
        renders.append(render_policy(results["policy"]))
    if "coldstart" in only or "artifact" in only:
        results["coldstart"], art = bench_coldstart(args, log, only)
        renders.append(render_coldstart(results["coldstart"]))
        if art is not None:
            results["artifact"] = art
            renders.append(render_artifact(art))
    for name, fn, render in (("calls", bench_calls, render_calls),
                             ("irrelevant", bench_irrelevant, render_irrelevant),
                             ("storm", lambda a, lg: storm_scan.run_storm(a.quick, OUT, lg), storm_scan.render_storm),
                             ("scan", lambda a, lg: storm_scan.run_scan(a.quick, lg), storm_scan.render_scan)):
        if name in only:
            results[name] = fn(args, log)
            renders.append(render(results[name]))
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["checks"] = checks(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")

    m = results["meta"]
    print(f"keyfix bench @ {m['commit']}{' (dirty)' if m['worktree_dirty'] else ''}  python {m['python']}  "
          f"node {m['node']}  {m['cpu']} x{m['cpus']}  load {m['loadavg_at_start'][0]:.2f}->"
          f"{m['loadavg_at_end'][0]:.2f}  {m['seconds']} s")
    busy = max(m["loadavg_at_start"][0], m["loadavg_at_end"][0])
    if busy > 0.75 * (m["cpus"] or 1):
        print(f"WARNING: the machine was busy (load average up to {busy:.1f} on {m['cpus']} CPUs): absolute "
              f"figures are inflated and noisier; ratios of interleaved runs hold up better. Prefer an idle machine.")
    for text in renders:
        print()
        print(text)
    print()
    print(render_checks(results["checks"]))
    print(f"\nresults: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return exit_status(results["checks"]) if args.check else 0


def exit_status(items: list[dict]) -> int:
    """--check: 1 when a target is missed, else 2 when one could not be measured, else 0."""
    if any(c["ok"] is False for c in items):
        return 1
    if any(c["ok"] is None for c in items):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
