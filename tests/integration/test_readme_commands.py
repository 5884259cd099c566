"""Every command the README shows is accounted for (issue #13): each one that needs no AWS
account is run here, by another named test, or by CI; the rest say why they need AWS.

The README is read, not copied: its `sh` blocks, the `$ ` lines of its other blocks, and the
inline code that starts like a command (`keyfix ...`, `make ...`, `bench/run`, `scripts/...`,
`aws ...`). A command nobody classified fails `test_every_readme_command_is_accounted_for`:
add it to WHERE_RUN, and run it if it needs no AWS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KEYFIX = Path(sys.executable).with_name("keyfix")  # what the README's .venv/bin/keyfix is here
COMMAND_START = re.compile(r"(\.venv/bin/)?keyfix(\s|$)|make(\s|$)|bench/run|scripts/|aws\s")
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: a call keyfix should not make fails at once, locally


FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.S | re.M)  # indented too (in list items)


def _fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block; a line ending in a backslash continues on the next."""
    return [(lang, re.sub(r"\\\n\s*", " ", body)) for lang, body in FENCE.findall(text)]


def readme_commands() -> list[str]:
    """The README's commands, in order, each once, without trailing comments."""
    text = README.read_text(encoding="utf-8")
    found = []
    for lang, body in _fenced(text):
        for line in body.splitlines():
            if lang == "sh" and line.strip() and not line.lstrip().startswith("#"):
                found.append(line.strip())
            elif line.startswith("$ "):
                found.append(line[2:].strip())
    prose = FENCE.sub("", text)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        if COMMAND_START.match(span):
            found.append(span)
    return list(dict.fromkeys(re.sub(r"\s+#\s.*$", "", c).strip() for c in found))


def shown_output(command: str) -> str:
    """What the README shows after `$ COMMAND`, up to the next blank or `$ ` line."""
    for _, body in _fenced(README.read_text(encoding="utf-8")):
        lines = body.splitlines()
        if f"$ {command}" in lines:
            out = []
            for line in lines[lines.index(f"$ {command}") + 1:]:
                if not line.strip() or line.startswith("$ "):
                    break
                out.append(line)
            return "\n".join(out)
    raise AssertionError(f"the README shows no output for $ {command}")


# How each README command is run. (full-match pattern, where, what): where is "here" (a test
# in this file runs it), a test file that runs it, "ci" (.ci/run -> make test), "aws" (needs
# a real account: what stands in for it locally is named), "by hand", or "not a command".
WHERE_RUN: list[tuple[str, str, str]] = [
    (r"keyfix --version", "here", "test_version"),
    (r"\.venv/bin/keyfix simulate examples/simulate-a1-slr\.json( --format json)?", "here",
     "test_simulate_prints_what_the_readme_shows"),
    (r"keyfix demo --scenario a2", "here", "test_one_demo_scenario_propose_json"),
    (r"keyfix handle -", "here", "test_handle_reads_standard_input"),
    (r"bench/run( --check)?", "by hand",
     "README: by hand, not in CI (minutes of measurement); test_bench_entry_point runs bench/run --help"),
    (r"make demo|keyfix demo", "tests/integration/test_demo.py",
     "keyfix demo in a subprocess; test_make_demo_is_keyfix_demo checks make demo runs it"),
    (r"\.venv/bin/keyfix demo --keep --scenario a1", "tests/integration/test_demo_keep.py",
     "served, its printed lines pasted into bash, for every scenario"),
    (r"unset AWS_PROFILE .*|export AWS_ACCESS_KEY_ID=AKIA\.\.\. .*|"
     r"\.venv/bin/keyfix (handle /tmp/keyfix-demo-\.\.\./a1-event\.json --mode (propose|apply)|history)"
     r" --endpoint-url http://127\.0\.0\.1:PORT --region us-east-1",
     "tests/integration/test_demo_keep.py", "the lines keyfix demo --keep prints, run as printed"),
    (r"make deploy DRY_RUN=1|make package S3_BUCKET=my-bucket|make package", "tests/unit/test_deploy_targets.py",
     "make -n with DRY_RUN=1: every step up to the AWS call; make package without a bucket, run"),
    (r"make org-validate", "here", "test_make_org_validate"),
    (r"make stackset S3_BUCKET=\.\.\. DRY_RUN=1", "tests/unit/org/test_org_templates.py",
     "make -n stackset, and the generator and lint run on a stand-in code location (the build is make test's)"),
    (r"make stackset( S3_BUCKET=.*)?", "aws", "uploads the code to S3 (make package); the rest: test_org_templates.py"),
    (r"make test|make|make build|make scan|scripts/setup", "ci", ".ci/run is `make test`: setup, build, scan, pytest"),
    (r"make deploy( CONFIG_ENV=prod)?", "aws",
     "sam deploy; the steps before it: tests/unit/test_deploy_targets.py (DRY_RUN=1)"),
    (r"\.venv/bin/keyfix handle EVENT\.json --format json", "aws",
     "your account; locally: the demo --keep lines, tests/integration/test_moto_server.py"),
    (r"(\.venv/bin/)?keyfix scan --organization( .*)?", "aws",
     "an organisation's security account; on moto: tests/integration/test_org_scan.py"),
    (r"(\.venv/bin/)?keyfix scan( .*)?", "aws", "your account; on moto: tests/integration/test_scan.py"),
    (r"export KEYFIX_TABLE_NAME=\.\.\. KEYFIX_AUDIT_KEY_ARN=\.\.\.|\.venv/bin/keyfix history \[--key KEY_ARN\]|"
     r"\.venv/bin/keyfix rollback CHANGE_ID|keyfix history( --findings .*| --event EVENT_ID > e\.json && keyfix handle e\.json)?|"
     r"keyfix rollback", "aws",
     "the stack's table and audit key; on moto: tests/unit/remedies, and history in test_demo_keep.py"),
    (r"SWITCH=\$\(aws .*|aws .*", "aws", "the AWS CLI against the deployed stack"),
    (r"keyfix (handle|simulate)", "not a command", "the command's name in prose; its invocations are listed"),
    (r"keyfix HIGH: \.\.\.", "not a command", "the start of an SMS text"),
    (r"keyfix (report|key-policy proposal|proposal outcome)", "not a command", "an EventBridge detail-type"),
]


def where(command: str) -> tuple[str, str, str] | None:
    return next((entry for entry in WHERE_RUN if re.fullmatch(entry[0], command)), None)


def test_every_readme_command_is_accounted_for():
    commands = readme_commands()
    assert len(commands) >= 20, commands  # the reader finds the README's commands at all
    unaccounted = [c for c in commands if where(c) is None]
    assert unaccounted == [], f"README commands nobody runs or explains; add them to WHERE_RUN: {unaccounted}"
    stale = [pattern for pattern, _, _ in WHERE_RUN if not any(re.fullmatch(pattern, c) for c in commands)]
    assert stale == [], f"WHERE_RUN entries no README command matches any more: {stale}"
    counts: dict[str, int] = {}
    for command in commands:
        kind = where(command)[1]
        counts[kind] = counts.get(kind, 0) + 1
        if kind.startswith("tests/"):
            assert (ROOT / kind).is_file(), kind
        if kind == "here":
            assert where(command)[2] in globals(), where(command)
    print(f"README commands: {len(commands)}; by where they run: {counts}")


def test_ci_runs_make_test_and_make_test_builds_and_scans():
    assert re.search(r"^exec make test$", (ROOT / ".ci/run").read_text(), re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: build scan pytest$", makefile, re.M)
    assert re.search(r"^build: validate$", makefile, re.M)
    assert "scripts/setup" in makefile


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYFIX_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1", **extra)
    return env


def run(*argv: str, stdin: str | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*argv], cwd=ROOT, env=_env(**env), input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_version():
    from keyfix import __version__

    done = run(str(KEYFIX), "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"keyfix {__version__}", done


@pytest.mark.parametrize("command", [
    ".venv/bin/keyfix simulate examples/simulate-a1-slr.json",
    ".venv/bin/keyfix simulate examples/simulate-a1-slr.json --format json",
])
def test_simulate_prints_what_the_readme_shows(command):
    done = run(str(KEYFIX), *command.split()[1:])
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n") == shown_output(command)


def test_one_demo_scenario_propose_json():
    """README: `keyfix demo --scenario a2` runs one; `--mode propose` writes nothing; `--format json`.
    The shell's AWS settings do not matter to it, even a profile that does not exist here."""
    done = run(str(KEYFIX), "demo", "--scenario", "a2", "--mode", "propose", "--format", "json", timeout=180,
               AWS_PROFILE="keyfix-test-no-such-profile")
    assert done.returncode == 0, done.stderr
    (outcome,) = json.loads(done.stdout)
    assert (outcome["scenario"], outcome["mode"], outcome["writes"], outcome["as_expected"]) == ("a2", "propose", [], True)
    assert outcome["report"]["findings"][0]["cause"] == "slr-grant-missing"
    assert {x["status"] for x in outcome["report"]["findings"][0]["fixes"]} == {"proposed"}


def test_handle_reads_standard_input():
    """`keyfix handle -`: an event on stdin, here one keyfix does not act on, so no AWS call is
    made (the endpoint is a closed local port: any call would end in exit 2)."""
    event = (ROOT / "events/unrecognised.json").read_text()
    done = run(str(KEYFIX), "handle", "-", "--format", "json", "--endpoint-url", CLOSED_PORT, stdin=event)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["event"]["trigger"] == "unrecognised" and report["findings"] == []
    assert report["event"]["id"] == json.loads(event)["id"]


def test_make_demo_is_keyfix_demo():
    # --no-print-directory: under `make test` this runs as a sub-make, which would otherwise
    # print "make[1]: Entering directory ..." around the steps.
    done = subprocess.run(["make", "-n", "--no-print-directory", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    steps = done.stdout.strip().splitlines()
    assert steps[0] == "scripts/setup project" and steps[-1].endswith(" .venv/bin/keyfix demo"), steps


def test_bench_entry_point():
    done = run(str(ROOT / "bench/run"), "--help")
    assert done.returncode == 0 and "--check" in done.stdout, done


def test_make_org_validate():
    done = subprocess.run(["make", "org-validate"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("is a valid SAM Template") == 2, done.stdout[-2000:]
