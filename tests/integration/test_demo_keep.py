"""`keyfix demo --keep`: a person's local diagnosis. The command runs in its own process, serves
one scenario's broken account on 127.0.0.1, and prints shell lines; the test runs those lines
verbatim in bash (as a person pastes them) and checks that they reach a real finding - the one
the scenario is built to show, never `undetermined` - and that apply's writes are in the audit
trail. Then it stops the server as Ctrl-C (or a supervisor's SIGTERM) would."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from keyfix.cli import main
from keyfix.demo import SCENARIO_NAMES, _scenario

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/report.schema.json").read_text())
KEYFIX = Path(sys.executable).with_name("keyfix")  # the console script, as the README runs it
START_TIMEOUT = 90  # seconds for the server to print its commands (two shared cores)


def _shell_environment() -> dict[str, str]:
    """A person's shell, AWS settings included that must not leak into the local diagnosis:
    a profile that does not exist here and a stale session token (the printed lines unset them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYFIX_", "MOTO_"))}
    env.update(AWS_PROFILE="keyfix-test-no-such-profile", AWS_SESSION_TOKEN="stale-token",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
               NO_COLOR="1")
    return env


class KeptDemo:
    """`keyfix demo --keep` in a child process; its stdout read line by line on a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([str(KEYFIX), "demo", "--keep", *args], cwd=ROOT, env=_shell_environment(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.ended = False  # stdout reached its end (the reader has queued None)
        self.err: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.ended = True  # before the None, so nobody waits for a line after taking it
        self.lines.put(None)

    def read_until(self, prefix: str, timeout: float = START_TIMEOUT) -> list[str]:
        if any(line.startswith(prefix) for line in self.seen):
            return self.seen
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line starting {prefix!r} from keyfix demo --keep; got {self.seen}; "
                                     f"stderr: {self._stderr()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return self.seen

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        if self.err is None:  # read once: a failure message may have read it already
            self.err = self.process.stderr.read()
        return self.err

    def serves(self) -> bool:
        """True once the commands are printed; False if it exited first (a scenario without a failure)."""
        try:
            self.read_until("Serving", timeout=START_TIMEOUT)
            return True
        except AssertionError:
            if self.process.poll() is None:
                raise
            return False

    def commands(self) -> dict[str, str]:
        """The printed shell lines: the environment lines, and each keyfix command by its word."""
        printed = [line[2:] for line in self.read_until("Serving") if line.startswith("  ")]
        shell = [line for line in printed if line.startswith(("unset ", "export "))]
        keyfix = {line.split()[1]: line for line in printed if line.startswith(str(KEYFIX) + " ")}
        handles = [line for line in printed if line.startswith(f"{KEYFIX} handle ")]
        assert len(shell) == 2 and len(handles) == 2 and "history" in keyfix, printed
        return {"env": "\n".join(shell), "propose": handles[0], "apply": handles[1], "history": keyfix["history"]}

    def stop(self, how: int = signal.SIGINT) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            status = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        rest = []
        while not (self.ended and self.lines.empty()):
            line = self.lines.get(timeout=10)
            if line is not None:
                rest.append(line)
        return status, "\n".join(rest)


def run_printed(env_lines: str, command: str, *extra: str) -> subprocess.CompletedProcess:
    """Paste the printed lines into a fresh bash (with the person's AWS settings in it)."""
    script = f"{env_lines}\n{command}{''.join(' ' + e for e in extra)}\n"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=_shell_environment(), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_printed_commands_reach_the_scenarios_real_finding(name, tmp_path):
    scenario = _scenario(name)
    proposed, applied = scenario.expected("propose"), scenario.expected("apply")
    stop_by = signal.SIGTERM if name == "a2" else signal.SIGINT  # a supervisor's stop, and Ctrl-C
    demo = KeptDemo("--scenario", name, "--for", "300")
    if not demo.serves():
        # A scenario that plays its own flow from no failure (keyfix.demo.prediction) has no
        # failure event: a clear usage error, nothing served. Any other scenario must serve.
        status = demo.process.wait(timeout=60)
        assert callable(getattr(scenario, "play", None)), f"{name} did not serve: {demo.seen} {demo._stderr()}"
        assert status == 2 and "no failure event" in demo._stderr()
        return
    try:
        printed = demo.commands()

        # The propose line exactly as printed: a person reads the finding the scenario is built to show.
        done = run_printed(printed["env"], printed["propose"])
        assert done.returncode == 0, done.stderr
        finding_lines = [line for line in done.stdout.splitlines() if line.startswith("Finding ")]
        assert finding_lines == [f"Finding 1: {proposed.cause}"], done.stdout
        assert "undetermined" not in done.stdout
        assert "[applied]" not in done.stdout

        # The apply line (JSON for the assertions): the fixes with the statuses the scenario shows.
        done = run_printed(printed["env"], printed["apply"], "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        jsonschema.validate(report, REPORT_SCHEMA)
        assert [f["cause"] for f in report["findings"]] == [applied.cause]
        got = sorted((x["kind"], x["status"], x["target_account"]) for f in report["findings"] for x in f["fixes"])
        assert got == sorted((x.kind, x.status, x.target_account) for x in applied.fixes)

        # history: one record per applied fix, each with a MAC that verifies (the audit key is served too).
        done = run_printed(printed["env"], printed["history"], "--format", "json")
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        assert len(rows) == sum(x.status == "applied" for x in applied.fixes)
        assert all(r["status"] == "applied" and r["verified"] is True and r["cause"] == applied.cause for r in rows)
    finally:
        status, rest = demo.stop(stop_by)
    assert status == 0 and rest.endswith("keyfix demo --keep: stopped"), rest
    event_file = Path(printed["propose"].split()[2])
    assert event_file.name == f"{name}-event.json" and not event_file.parent.exists()  # the temp dir is gone


def test_for_seconds_bounds_the_server_and_event_dir_keeps_the_event(tmp_path):
    started = time.monotonic()
    demo = KeptDemo("--for", "0", "--event-dir", str(tmp_path / "events"))
    status = demo.process.wait(timeout=START_TIMEOUT)
    lines = [line for line in iter(demo.lines.get, None)]
    assert status == 0 and lines[-1] == "keyfix demo --keep: stopped", (lines, demo.process.stderr.read())
    assert any(line.startswith("Serving for 0 s") for line in lines)
    assert time.monotonic() - started < START_TIMEOUT
    event = json.loads((tmp_path / "events" / "a1-event.json").read_text())  # a1 by default; kept
    assert event["source"] == "aws.autoscaling" and event["account"] == "111122223333"


def exit_status(argv: list[str]) -> int:
    """`keyfix ARGV`'s exit status, whether argparse exits (usage) or the command returns."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv,message", [
    (["--scenario", "a1", "--scenario", "b"], "--keep serves one scenario"),
    (["--for", "-1"], "--for: must be a number of seconds >= 0"),
    (["--for", "nan"], "--for: must be a number of seconds >= 0"),
    (["--for", "soon"], "--for: must be a number of seconds >= 0"),
    (["--for", "inf"], "--for: must be a number of seconds >= 0"),
    (["--port", "http"], "--port: must be a TCP port"),
    (["--port", "70000"], "--port: must be a TCP port"),
    (["--scenario", "nope"], "invalid choice"),
])
def test_bad_options_exit_2_before_anything_starts(argv, message, capsys, monkeypatch):
    started = []
    monkeypatch.setattr("keyfix.sim.server.LocalMoto.start", lambda self: started.append(self))
    assert exit_status(["demo", "--keep", *argv]) == 2
    assert message in capsys.readouterr().err
    assert started == []
