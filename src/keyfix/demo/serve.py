"""`keyfix demo --keep`: one scenario's broken account, served until Ctrl-C, and the
`keyfix handle` commands that diagnose it from another terminal.

The demo's own machinery does the work: the moto server on 127.0.0.1 (keyfix.demo.runtime),
keyfix's deployment in the workload account (keyfix.demo.account), the scenario's broken
account and its failing operation (keyfix.demo.scenario). The failure's real EventBridge event
is written to a file instead of being handed to the handler; the person runs keyfix on it.

keyfix's commands reach the server with an access key of an IAM user of the workload account:
moto places a request in the account owning its access key (keyfix.sim.accounts), so keyfix
reads the very account the scenario broke. The key and secret are moto's, valid nowhere else.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from keyfix.sim.scenarios import ASG_ACCOUNT, REGION, Env

LOCAL_USER = "keyfix-local"  # whose access key the printed commands carry
SHELL_SETTINGS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class NoFailureEvent(Exception):
    """The scenario's operation succeeded on its broken account: no event to hand to keyfix."""


@dataclass(frozen=True)
class Served:
    """What a person needs to run keyfix against the served account."""

    scenario: str
    url: str
    event_file: Path
    environment: dict[str, str]  # credentials and KEYFIX_* settings, as `export` would set them
    keyfix: list[str]  # how to run keyfix here: the console script or `python -m keyfix`

    def command(self, *args: str) -> str:
        """One pasteable command line, every word shell-quoted."""
        words = [*self.keyfix, *args, "--endpoint-url", self.url, "--region", REGION]
        return " ".join(shlex.quote(w) for w in words)

    def export_lines(self) -> list[str]:
        """A shell's own AWS settings would otherwise mix in: a profile named by AWS_PROFILE must
        exist even when keys are set, and a session token would be sent with moto's key."""
        return ["unset " + " ".join(SHELL_SETTINGS_UNSET),
                "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in self.environment.items())]

    def handle(self, mode: str) -> str:
        return self.command("handle", str(self.event_file), "--mode", mode)

    def history(self) -> str:
        return self.command("history")


def keyfix_invocation(argv0: str | None = None) -> list[str]:
    """How this process was started, so the printed commands start keyfix the same way: the
    `keyfix` console script as it was typed (a relative path works from the same directory),
    else `python -m keyfix` with this interpreter."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name == "keyfix":
        return [argv0]
    return [sys.executable, "-m", "keyfix"]


def _audit_key(env: Env) -> str:
    """An HMAC key like template.yaml's AuditMacKey, so `history` checks MACs and `rollback` works."""
    return env.client("kms", ASG_ACCOUNT).create_key(
        KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="keyfix audit records")["KeyMetadata"]["Arn"]


def _local_user_key(env: Env) -> dict[str, str]:
    iam = env.client("iam", ASG_ACCOUNT)
    iam.create_user(UserName=LOCAL_USER)
    key = iam.create_access_key(UserName=LOCAL_USER)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@contextmanager
def _event_directory(chosen: str | None) -> Iterator[Path]:
    """The directory the event is written to: the one given (kept), else a new temporary one
    (removed on exit: the event names resources that exist only while the server runs)."""
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="keyfix-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def prepare(name: str, url: str, directory: Path, keyfix: list[str]) -> tuple[Served, list[str], Any]:
    """Build scenario `name`'s broken account on the server at `url`, make its operation fail
    once, and write the failure's event. Returns what to serve, what is broken, and the attempt."""
    from keyfix.demo import _scenario
    from keyfix.demo.account import deploy
    from keyfix.demo.authorize import Authorizer
    from keyfix.demo.play import PRINCIPAL_ALLOWLIST

    env = Env(endpoint_url=url)
    deployment = deploy(env)
    scenario = _scenario(name)
    broken = scenario.build(env)
    attempt = scenario.attempt(env, Authorizer(REGION))
    if attempt.event is None:  # e.g. a scenario that starts before any failure: nothing to serve
        raise NoFailureEvent(f"scenario {name}: its operation does not fail here, so there is no failure event "
                             f"to handle; `keyfix demo --scenario {name}` plays it")
    event_file = directory / f"{name}-event.json"
    event_file.write_text(json.dumps(attempt.event, indent=2) + "\n")
    environment = {
        **_local_user_key(env),
        # The demo's deployment (keyfix.demo.play): keys opt in by tag, ec2-operator is trusted.
        "KEYFIX_TABLE_NAME": deployment.table_name,
        "KEYFIX_SNS_TOPIC_ARN": deployment.topic_arn,
        "KEYFIX_PRINCIPAL_ALLOWLIST": ",".join(PRINCIPAL_ALLOWLIST),
        "KEYFIX_AUDIT_KEY_ARN": _audit_key(env),
    }
    return Served(name, url, event_file, environment, keyfix), broken, attempt


def show(served: Served, broken: list[str], attempt: Any, seconds: float | None, out: TextIO) -> None:
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731 - progress must show at once
    say(f"keyfix demo --keep: scenario {served.scenario} on a simulated AWS (moto) at {served.url}")
    for line in broken:
        say(f"  broken: {line}")
    say(f"  failed: {attempt.operation}: {attempt.outcome}")
    say(f"  event:  {served.event_file}")
    say()
    say("Run keyfix on it from another shell (moto's keys for user "
        f"{LOCAL_USER} of {ASG_ACCOUNT}; they work only here):")
    say()
    for line in served.export_lines():
        say(f"  {line}")
    say(f"  {served.handle('propose')}")
    say(f"  {served.handle('apply')}")
    say(f"  {served.history()}")
    say()
    say("propose writes nothing; apply repairs what the safety rules allow; history lists what apply wrote, "
        "and `keyfix rollback CHANGE_ID` (same options) undoes one change.")
    until = f"for {seconds:g} s or until Ctrl-C" if seconds is not None else "until Ctrl-C"
    say(f"Serving {until}.")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does (a supervisor or test ending it cleanly)."""
    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def serve(name: str, seconds: float | None = None, port: int = 0, event_dir: str | None = None,
          out: TextIO | None = None, keyfix: list[str] | None = None) -> int:
    """Serve scenario `name` until Ctrl-C/SIGTERM or `seconds`; 0 when stopped either way."""
    from keyfix.demo.runtime import Environment, base_environment, quiet_logger
    from keyfix.sim.server import LocalMoto

    out = out or sys.stdout
    if seconds is not None and not seconds >= 0:  # NaN too
        raise ValueError(f"--for must be a number of seconds >= 0, not {seconds}")
    environment = Environment()
    server = LocalMoto(port=port)
    with quiet_logger("werkzeug"), _terminate_as_interrupt(), _event_directory(event_dir) as directory:
        try:
            # The demo's dummy settings, never the caller's AWS, from before moto is imported
            # (moto makes a boto3 Session on import: a missing AWS_PROFILE would stop it).
            environment.set({**base_environment(""), "AWS_ENDPOINT_URL": None})
            url = server.start()
            environment.set({"AWS_ENDPOINT_URL": url})
            served, broken, attempt = prepare(name, url, directory, keyfix or keyfix_invocation())
            show(served, broken, attempt, seconds, out)
            threading.Event().wait(seconds)  # returns at once on Ctrl-C (KeyboardInterrupt)
        except KeyboardInterrupt:
            pass
        except NoFailureEvent as exc:
            print(f"keyfix demo --keep: {exc}", file=sys.stderr)
            return 2
        finally:
            server.stop()
            environment.restore()
    print("keyfix demo --keep: stopped", file=out, flush=True)
    return 0

