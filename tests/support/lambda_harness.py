"""Running keyfix's two entry points on one event, in an empty moto account, and checking that
the answer is what the contract allows: a report valid against report.schema.json, or a clear
error (keyfix.error/1 from the Lambda, exit 2 from `keyfix handle`) - and never the last-resort
net (keyfix.safety_net), which would hide an exception behind a report.

`Outcomes` counts what each kind of generated case ended in, so a test can assert exact totals.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.gateway_hooks import WriteCounter, gateway_session

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/report.schema.json").read_text())
ASG_ACCOUNT, REGION = "111122223333", "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """An empty moto account, keyfix's own clients counted (WriteCounter)."""
    from moto import mock_aws

    from keyfix.sim import moto_gaps

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "MOTO_ACCOUNT_ID", "KEYFIX_TABLE_NAME", "KEYFIX_SNS_TOPIC_ARN",
                 "KEYFIX_KEY_ALLOWLIST", "KEYFIX_PRINCIPAL_ALLOWLIST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
                        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "POWERTOOLS_TRACE_DISABLED": "1",
                        "POWERTOOLS_SERVICE_NAME": "keyfix", "POWERTOOLS_METRICS_NAMESPACE": "keyfix",
                        "POWERTOOLS_DEV": "false", "KEYFIX_MODE": "apply"}.items():
        monkeypatch.setenv(name, value)
    # The handler logs every report at INFO; the fuzz cases need not pay for it.
    import keyfix.handler  # noqa: F401 - creates the "keyfix" logger Powertools manages

    quiet = logging.getLogger("keyfix")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with mock_aws(), moto_gaps.installed():
            session = gateway_session(monkeypatch)
            yield WriteCounter(session)
    finally:
        quiet.setLevel(level)


class Outcomes:
    """What each kind of case ended in: "report", "error" (malformed, said clearly)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, Counter] = {}

    def add(self, kind: str, outcome: str) -> None:
        self.by_kind.setdefault(kind, Counter())[outcome] += 1

    def total(self, kind: str) -> int:
        return sum(self.by_kind.get(kind, Counter()).values())

    def __getitem__(self, kind: str) -> Counter:
        return self.by_kind.get(kind, Counter())


@contextlib.contextmanager
def no_net():
    """Fails if keyfix's last-resort net caught anything inside the block."""
    from keyfix import safety_net

    before = len(safety_net.HITS)
    yield
    assert safety_net.HITS[before:] == [], f"reached the safety net: {safety_net.HITS[before:]}"


def handle(event: Any) -> dict:
    """The Lambda handler on one event: a valid report or keyfix.error/1, never the net."""
    from keyfix.demo.runtime import FakeLambdaContext
    from keyfix.handler import lambda_handler

    with no_net():
        result = lambda_handler(event, FakeLambdaContext())
    assert isinstance(result, dict), result
    json.dumps(result)  # the Lambda runtime must be able to serialise it
    if result.get("schema") == "keyfix.error/1":
        assert isinstance(result.get("error"), str) and result["error"], result
        result["error"].encode("utf-8")  # loggable as it is
        return result
    jsonschema.validate(result, REPORT_SCHEMA)
    return result


def outcome_of(result: dict) -> str:
    return {"keyfix.report/1": "report", "keyfix.error/1": "error"}[result["schema"]]


def cli(text: bytes, tmp: Path) -> tuple[int, str, str]:
    """`keyfix handle FILE --format json` on `text`: (exit status, stdout, stderr)."""
    from keyfix.cli import main

    path = tmp / f"event-{uuid.uuid4().hex}.json"
    path.write_bytes(text)
    out, err = io.StringIO(), io.StringIO()
    with no_net(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["handle", str(path), "--format", "json"])
    path.unlink()
    return status, out.getvalue(), err.getvalue()


def check_cli(status: int, out: str, err: str) -> str:
    """The contract's answers only: 0 with a valid report, or 2 with a message and no output."""
    assert status in (0, 2), f"exit {status}: {err[-2000:]}"
    if status == 0:
        jsonschema.validate(json.loads(out), REPORT_SCHEMA)
        return "report"
    assert out == "" and err.startswith("keyfix handle:") and len(err.strip()) > len("keyfix handle:"), err
    return "error"
