"""Benchmark 2: a Lambda cold-start proxy, in fresh interpreters on this machine.

Every measurement is a new `python` process (the project's venv interpreter). Each kind of
process runs once as a discarded warm-up (so the OS file cache is warm, as on a Lambda host
that has the image), then REPS rounds run every kind once in turn (interleaved, so load
from elsewhere falls on all kinds alike); medians are reported. The parent measures each
child's wall time; GNU time gives its CPU time and peak RSS; children of the handler
report their import and first-invocation times themselves (bench/coldstart_child.py).

Environment of every child: the Lambda's (template.yaml: POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, KEYFIX_MODE=propose, KEYFIX_TABLE_NAME, KEYFIX_SNS_TOPIC_ARN)
plus what the Lambda runtime sets (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, _X_AMZN_TRACE_ID,
...). Powertools' Tracer only traces inside Lambda (it looks at LAMBDA_TASK_ROOT), so this
is what makes "tracing on" real; X-Ray segments go over UDP to 127.0.0.1:2000 (nobody
listens). AWS calls (the idempotency table, SNS) go to a moto server this module starts on
127.0.0.1 (AWS_ENDPOINT_URL); nothing leaves the machine. PYTHONDONTWRITEBYTECODE=1, as
Lambda's read-only /var/task cannot cache bytecode either.

Bytecode study: `sam build` ships no .pyc files (aws-lambda-builders excludes `*.pyc` and
`__pycache__`; .aws-sam/build/KeyfixFunction has none), so in Lambda every module outside
the runtime's own standard library is compiled from source at every cold start. The venv
here has .pyc files for its dependencies (pip compiles them) but none for keyfix itself.
The study runs the same workloads with PYTHONPYCACHEPREFIX pointing at (a) a cache holding
only the standard library's bytecode ("as shipped") and (b) one holding bytecode for
everything ("precompiled artefact").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PY = str(ROOT / ".venv" / "bin" / "python")
CHILD = str(ROOT / "bench" / "coldstart_child.py")
ARTIFACT_CHILD = str(ROOT / "bench" / "artifact_child.py")
EVENTS = ROOT / "events"
ACCOUNT = "123456789012"  # moto's account for the dummy credentials
REGION = "us-east-1"
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

IMPORT_BOTO3 = "import boto3"
IMPORT_HANDLER = "import keyfix.handler"


# -- the moto server ------------------------------------------------------------------------

_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()
server.stop()
"""


class MotoServer:
    """A moto server on 127.0.0.1 in a process of its own (so it does not share the GIL
    with anything measured), with the Lambda's table and topic."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.topic_arn = ""
        self.table = "keyfix"

    def __enter__(self) -> MotoServer:
        env = _clean_env() | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.proc = subprocess.Popen([PY, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.__exit__()
            raise RuntimeError("moto server did not start")
        import boto3

        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=REGION)
        session.client("dynamodb", endpoint_url=self.url).create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        self.topic_arn = session.client("sns", endpoint_url=self.url).create_topic(Name="keyfix")["TopicArn"]
        # P1b: an instance its user stopped, for the ordinary-stop event (bench/irrelevant.py).
        from irrelevant import stopped_instance

        STOPPED["instance"] = stopped_instance(session, self.url)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.terminate()  # only the process started above
                self.proc.wait(timeout=10)
            self.proc = None


# -- environments ----------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    drop = ("AWS_", "POWERTOOLS_", "KEYFIX_", "LAMBDA_", "_X_AMZN", "MOTO_", "_HANDLER", "PYTHONPYCACHEPREFIX",
            "PYTHONPATH", "PYTHONDEVMODE", "PYTHONPROFILEIMPORTTIME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def lambda_env(server: MotoServer, tracing: bool, pycache: Path | None = None,
               task_root: Path = ROOT / "src") -> dict[str, str]:
    env = _clean_env()
    env.update({
        # the function's configuration (template.yaml)
        "POWERTOOLS_SERVICE_NAME": "keyfix",
        "POWERTOOLS_METRICS_NAMESPACE": "keyfix",
        "LOG_LEVEL": "INFO",
        "KEYFIX_MODE": "propose",
        "KEYFIX_TABLE_NAME": server.table,
        "KEYFIX_SNS_TOPIC_ARN": server.topic_arn,
        # what the Lambda runtime sets
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_FUNCTION_NAME": "keyfix",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "keyfix.handler.lambda_handler",
        "_X_AMZN_TRACE_ID": TRACE_ID,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # only 127.0.0.1
        "AWS_ENDPOINT_URL": server.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "1"
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


# -- running one child -------------------------------------------------------------------------


TIME = shutil.which("time", path="/usr/bin:/bin")


def run_child(argv: list[str], env: dict[str, str], result_file: Path | None = None) -> dict:
    """Run argv: wall seconds (measured here), peak RSS and CPU of that process only.

    Peak RSS comes from GNU time (/usr/bin/time -f %M), which forks the command itself: a
    child forked straight from this (larger) process would report this process's RSS as its
    own peak, since Linux carries ru_maxrss across fork+exec. Without GNU time, os.wait4's
    figure is used and the report says so.
    """
    with tempfile.NamedTemporaryFile(prefix="keyfix-bench-time-") as usage_file, tempfile.TemporaryFile() as err:
        full = [TIME, "-f", "%M %U %S", "-o", usage_file.name, *argv] if TIME else argv
        start = time.perf_counter()
        proc = subprocess.Popen(full, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} exited {proc.returncode}:\n{stderr[-3000:]}")
        if TIME:
            rss_kb, user, system = usage_file.read().decode().split()[-3:]
            out = {"wall_s": wall, "peak_rss_kb": int(rss_kb), "cpu_s": float(user) + float(system)}
        else:
            out = {"wall_s": wall, "peak_rss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime,
                   "rss_note": "os.wait4 (includes the parent's RSS at fork)"}
    if result_file is not None:
        out.update(json.loads(result_file.read_text()))
    return out


STOPPED: dict[str, str] = {}  # the stopped instance on the running MotoServer
EVENT_INSTANCE = "i-0c3d4e5f6a7b8c9d0"  # the instance of events/ec2-instance-stopped.json


class Workload:
    """A kind of cold-start process: `python -c CODE`, or the handler's import and first
    invocation on EVENT (bench/coldstart_child.py); `expect` is the causes the invocation
    must report, checked by bench.py (a fast row with the wrong answer measures nothing)."""

    def __init__(self, name: str, code: str | None = None, event: str | None = None,
                 expect: list[str] | None = None) -> None:
        self.name, self.code, self.event, self.expect = name, code, event, expect

    def event_file(self, tmp: Path) -> tuple[Path, str]:
        event = (EVENTS / self.event).read_text()
        # A new incident each run: the idempotency table would otherwise answer "already handled".
        tag = uuid.uuid4().hex[:12]
        event = event.replace("web-asg", f"web-asg-{tag}")
        if "instance" in STOPPED:
            event = event.replace(EVENT_INSTANCE, STOPPED["instance"])
        doc = json.loads(event)
        doc["id"] = str(uuid.uuid4())
        path = tmp / f"event-{tag}.json"
        path.write_text(json.dumps(doc))
        return path, tag

    def argv_and_result(self, tmp: Path) -> tuple[list[str], Path | None]:
        if self.code is not None:
            return [PY, "-c", self.code], None
        path, tag = self.event_file(tmp)
        result = tmp / f"result-{tag}.json"
        return [PY, CHILD, str(path), str(result)], result


class ArtifactWorkload(Workload):
    """The same process on the built artifact: the venv's interpreter with -I -S -B and
    sys.path = the artifact first (bench/artifact_child.py), so nothing comes from the venv."""

    def __init__(self, base: Workload, artifact: Path) -> None:
        super().__init__(f"artifact: {base.name}", base.code, base.event, base.expect)
        assert base.code in (None, IMPORT_BOTO3, IMPORT_HANDLER), "bench/artifact_child.py runs only these"
        self.artifact = artifact

    def argv_and_result(self, tmp: Path) -> tuple[list[str], Path | None]:
        if self.code is not None:
            what, tag = self.code, uuid.uuid4().hex[:12]
        else:
            path, tag = self.event_file(tmp)
            what = str(path)
        result = tmp / f"result-{tag}.json"
        return [PY, "-I", "-S", "-B", ARTIFACT_CHILD, str(self.artifact), str(result), what], result


def measure_all(cases: list[dict], reps: int, tmp: Path, log=print) -> list[dict]:
    """Each case: {"name", "workload", "env", ...}. One discarded warm-up run of each, then
    REPS rounds that run every case once, in turn (so a burst of load from elsewhere on the
    machine falls on all of them alike); medians per case."""
    runs: dict[int, list[dict]] = {i: [] for i in range(len(cases))}
    for i, case in enumerate(cases):
        argv, result = case["workload"].argv_and_result(tmp)
        run_child(argv, case["env"], result)
    for rep in range(reps):
        log(f"  cold start: round {rep + 1}/{reps} ({len(cases)} processes)")
        for i, case in enumerate(cases):
            argv, result = case["workload"].argv_and_result(tmp)
            runs[i].append(run_child(argv, case["env"], result))
    out = []
    for i, case in enumerate(cases):
        rs = runs[i]
        summary = {k: v for k, v in case.items() if k not in ("workload", "env")}
        if case["workload"].expect is not None:
            summary["expect_causes"] = case["workload"].expect
        summary.update({
            "workload": case["workload"].name,
            "reps": reps,
            "wall_s": statistics.median(r["wall_s"] for r in rs),
            "wall_s_min": min(r["wall_s"] for r in rs),
            "wall_s_max": max(r["wall_s"] for r in rs),
            "cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "peak_rss_kb": statistics.median(r["peak_rss_kb"] for r in rs),
        })
        if "rss_note" in rs[0]:
            summary["rss_note"] = rs[0]["rss_note"]
        if "import_s" in rs[0]:
            summary["import_s"] = statistics.median(r["import_s"] for r in rs)
        if "invoke_s" in rs[0]:
            summary["invoke_s"] = statistics.median(r["invoke_s"] for r in rs)
            summary["outcome"] = {k: rs[-1][k] for k in (
                "schema", "trigger", "causes", "modules_after_import", "modules_imported_by_invocation",
                "boto3_imported_by_invocation")}
            # Every run's answer, not only the last: one undetermined run makes the row wrong.
            summary["causes_seen"] = [list(c) for c in sorted({tuple(r["causes"]) for r in rs})]
        if "origins" in rs[-1]:
            summary["origins"] = rs[-1]["origins"]
            summary["under_artifact"] = all(r["under_artifact"] for r in rs)
        out.append(summary)
    return out


# -- -X importtime --------------------------------------------------------------------------

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def parse_importtime(text: str) -> list[tuple[str, int, int, int]]:
    """[(module, self_us, cumulative_us, depth)] in the order Python printed them."""
    rows = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    return rows


def importtime(env: dict[str, str], reps: int, tmp: Path, event: str | None = None) -> dict:
    """Median per-module self/cumulative import time of `import keyfix.handler` (and, with
    `event`, of the imports the first invocation makes after it)."""
    per_module: dict[str, list[tuple[int, int]]] = {}
    lazy: dict[str, list[int]] = {}
    raw = ""
    for i in range(reps + 1):
        if event is None:
            argv = [PY, "-X", "importtime", "-c", IMPORT_HANDLER]
            result = None
        else:
            argv, result = Workload("", event=event).argv_and_result(tmp)
            argv = [argv[0], "-X", "importtime", *argv[1:]]
        with tempfile.TemporaryFile() as err:
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(ROOT), check=True)
            err.seek(0)
            raw = err.read().decode("utf-8", "replace")
        if i == 0:
            continue  # warm-up
        rows = parse_importtime(raw)
        handler_at = next((k for k, r in enumerate(rows) if r[0] == "keyfix.handler"), len(rows) - 1)
        for name, self_us, cum_us, _depth in rows[: handler_at + 1]:
            per_module.setdefault(name, []).append((self_us, cum_us))
        for name, _self, cum_us, depth in rows[handler_at + 1:]:
            if depth == 0:  # imported by the invocation itself (lazy imports in keyfix code)
                lazy.setdefault(name, []).append(cum_us)
    med = {name: (statistics.median(s for s, _ in v), statistics.median(c for _, c in v))
           for name, v in per_module.items()}
    total = med.get("keyfix.handler", (0, 0))[1]
    top = sorted(med.items(), key=lambda kv: kv[1][1], reverse=True)
    by_package: dict[str, float] = {}
    for name, (self_us, _cum) in med.items():
        by_package[name.split(".")[0]] = by_package.get(name.split(".")[0], 0) + self_us
    out = {
        "reps": reps,
        "keyfix_handler_cumulative_ms": total / 1000,
        "top_cumulative_ms": [(name, round(c / 1000, 1), round(s / 1000, 1)) for name, (s, c) in top[:40]],
        "self_ms_by_top_level_package": sorted(((k, round(v / 1000, 1)) for k, v in by_package.items()),
                                               key=lambda kv: kv[1], reverse=True)[:20],
        "keyfix_modules_cumulative_ms": [(name, round(c / 1000, 1)) for name, (s, c) in top
                                         if name.startswith("keyfix")],
    }
    if event is not None:
        out["imported_during_first_invocation_ms"] = sorted(
            ((name, round(statistics.median(v) / 1000, 1)) for name, v in lazy.items()),
            key=lambda kv: kv[1], reverse=True)[:15]
    return out, raw


# -- bytecode caches -------------------------------------------------------------------------


def build_pycaches(server: MotoServer, tmp: Path) -> tuple[Path, Path]:
    """(stdlib-only, everything) PYTHONPYCACHEPREFIX trees, written by running the workloads
    once with bytecode writing on."""
    full, std = OUT / "pycache" / "all", OUT / "pycache" / "stdlib"
    shutil.rmtree(OUT / "pycache", ignore_errors=True)
    full.mkdir(parents=True)
    for tracing in (True, False):
        env = lambda_env(server, tracing, full)
        env.pop("PYTHONDONTWRITEBYTECODE")
        for w in WORKLOADS:
            argv, result = w.argv_and_result(tmp)
            run_child(argv, env, result)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    src = full / stdlib.relative_to("/")
    shutil.copytree(src, std / stdlib.relative_to("/"))
    return std, full


def _pyc_count(tree: Path) -> int:
    return sum(1 for _ in tree.rglob("*.pyc"))


# -- the benchmark ---------------------------------------------------------------------------

WORKLOADS = [
    Workload("python -c pass", code="pass"),
    Workload("import boto3", code=IMPORT_BOTO3),
    Workload("import keyfix.handler", code=IMPORT_HANDLER),
    Workload("1st invocation: unrecognised", event="unrecognised.json", expect=[]),
    Workload("1st invocation: not-kms ASG", event="asg-launch-unsuccessful-not-kms.json", expect=["not-kms"]),
    Workload("1st invocation: ordinary EC2 stop", event="ec2-instance-stopped.json", expect=["not-kms"]),  # P1b
]
BASELINES = WORKLOADS[:2]  # every ratio's denominator (and python -c pass, for the net ratios)
# On the built artifact (issue #14), tracing on as deployed: the baseline, the import, the two
# first invocations with a target.
ON_ARTIFACT = [WORKLOADS[1], WORKLOADS[2], WORKLOADS[4], WORKLOADS[5]]
ARTIFACT = "built artifact"


def run(reps: int = 7, importtime_reps: int = 5, bytecode: bool = True, log=print, venv_rows: bool = True,
        artifact: Path | None = None) -> dict:
    """The cold-start rows on the venv (unless venv_rows is false: then only the baselines) and,
    with `artifact`, the same workloads on the built artifact, all interleaved in one
    measurement against one moto server, environment and stopped instance."""
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"reps": reps, "peak_rss_source": "GNU time %M" if TIME else "os.wait4"}
    with MotoServer() as server, tempfile.TemporaryDirectory(prefix="keyfix-bench-") as tmpdir:
        tmp = Path(tmpdir)
        results["aws_endpoint"] = server.url
        results["stopped_instance"] = STOPPED.get("instance")
        cases = []
        for w in WORKLOADS if venv_rows else BASELINES:
            modes = [None] if w.code in ("pass", IMPORT_BOTO3) else [False, True]
            for tracing in modes:
                label = w.name if tracing is None else f"{w.name} [tracing {'on' if tracing else 'off'}]"
                cases.append({"name": label, "workload": w, "tracing": tracing, "bytecode": "venv",
                              "env": lambda_env(server, True if tracing is None else tracing)})
        if artifact is not None:
            for w in ON_ARTIFACT:
                aw = ArtifactWorkload(w, artifact)
                label = aw.name if w.code == IMPORT_BOTO3 else f"{aw.name} [tracing on]"
                cases.append({"name": label, "workload": aw, "tracing": True, "bytecode": ARTIFACT,
                              "env": lambda_env(server, True, task_root=artifact)})
        if not venv_rows:
            results["rows"] = measure_all(cases, reps, tmp, log)
            _ratios(results)
            return results
        for w in WHAT_IF:
            cases.append({"name": f"{w.name} [tracing on]", "workload": w, "tracing": True, "bytecode": "venv",
                          "env": lambda_env(server, True)})
        if bytecode:
            log("  cold start: building bytecode caches (PYTHONPYCACHEPREFIX trees)")
            std, full = build_pycaches(server, tmp)
            results["bytecode_caches"] = {"stdlib_only_pyc": _pyc_count(std), "all_pyc": _pyc_count(full)}
            for w in (WORKLOADS[1], WORKLOADS[2], WORKLOADS[4]):
                for label, cache in ((NO_PYC, std), (ALL_PYC, full)):
                    cases.append({"name": f"{w.name} [tracing on, {label}]", "workload": w, "tracing": True,
                                  "bytecode": label, "env": lambda_env(server, True, cache)})
        results["rows"] = measure_all(cases, reps, tmp, log)

        log(f"  cold start: -X importtime x{importtime_reps}")
        results["importtime"] = {}
        for tracing in (True, False):
            key = "tracing_on" if tracing else "tracing_off"
            summary, raw = importtime(lambda_env(server, tracing), importtime_reps, tmp)
            (OUT / f"importtime-handler-{key}.txt").write_text(raw)
            results["importtime"][key] = summary
        for event, key in (("asg-launch-unsuccessful-not-kms.json", "not_kms"), ("unrecognised.json", "unrecognised"),
                           ("ec2-instance-stopped.json", "ordinary_stop")):
            summary, raw = importtime(lambda_env(server, True), max(1, importtime_reps // 2), tmp, event=event)
            (OUT / f"importtime-invoke-{key}.txt").write_text(raw)
            results["importtime"][f"first_invocation_{key}"] = {
                "imported_during_first_invocation_ms": summary["imported_during_first_invocation_ms"]}
    _ratios(results)
    return results


# What-if rows for the import-time suggestions: the handler's module-level Powertools objects
# alone, with the Tracer as keyfix builds it and as it could be built (keyfix's gateway already
# wraps every AWS call in a subsegment of its own, so X-Ray's botocore patch is redundant).
_POWERTOOLS = "from aws_lambda_powertools import Logger, Metrics, Tracer; Logger(); Metrics(); "
WHAT_IF = [
    Workload("what-if: Logger()+Metrics()+Tracer() as now", code=_POWERTOOLS + "Tracer()"),
    Workload("what-if: ... Tracer(patch_modules=['botocore'])", code=_POWERTOOLS + "Tracer(patch_modules=['botocore'])"),
    Workload("what-if: ... Tracer(auto_patch=False)", code=_POWERTOOLS + "Tracer(auto_patch=False)"),
]

NO_PYC = "no .pyc outside stdlib, as sam build ships"
ALL_PYC = "all .pyc, precompiled artefact"


def _ratios(results: dict) -> None:
    rows = results["rows"]
    base = next(r for r in rows if r["name"] == "import boto3")
    interp = next(r for r in rows if r["name"] == "python -c pass")
    nopyc_base = next((r for r in rows if r["workload"] == "import boto3" and r["bytecode"] == NO_PYC), None)
    artifact_base = next((r for r in rows if r["workload"] == "artifact: import boto3"), None)
    for r in rows:
        r["wall_ratio_vs_import_boto3"] = r["wall_s"] / base["wall_s"]
        r["rss_ratio_vs_import_boto3"] = r["peak_rss_kb"] / base["peak_rss_kb"]
        r["cpu_ratio_vs_import_boto3"] = r["cpu_s"] / base["cpu_s"] if base["cpu_s"] else None
        net_base = base["wall_s"] - interp["wall_s"]
        r["net_wall_ratio_vs_import_boto3"] = (r["wall_s"] - interp["wall_s"]) / net_base if net_base > 0 else None
        if nopyc_base is not None and r["bytecode"] == NO_PYC:
            r["wall_ratio_vs_import_boto3_same_bytecode"] = r["wall_s"] / nopyc_base["wall_s"]
        if artifact_base is not None and r["bytecode"] == ARTIFACT:
            # Same interpreter, same flags, same artifact: what the artifact's targets use.
            r["wall_ratio_vs_artifact_import_boto3"] = r["wall_s"] / artifact_base["wall_s"]
            r["cpu_ratio_vs_artifact_import_boto3"] = (r["cpu_s"] / artifact_base["cpu_s"]
                                                       if artifact_base["cpu_s"] else None)
            r["rss_ratio_vs_artifact_import_boto3"] = r["peak_rss_kb"] / artifact_base["peak_rss_kb"]


def row(results: dict, name: str) -> dict | None:
    return next((r for r in results["rows"] if r["name"] == name), None)


if __name__ == "__main__":
    res = run(reps=int(sys.argv[1]) if len(sys.argv) > 1 else 3, log=lambda m: print(m, file=sys.stderr))
    json.dump(res, sys.stdout, indent=1)
