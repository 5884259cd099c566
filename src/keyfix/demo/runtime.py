"""The process-wide side of the demo: a moto server on 127.0.0.1, the environment variables
boto3 and the Lambda read, and invoking the real Lambda handler as Lambda would.

Everything set here is undone on exit: the server is stopped, every environment variable
is restored (or removed), loggers get their levels and streams back.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from keyfix.sim.scenarios import ASG_ACCOUNT, REGION

FUNCTION_NAME = "keyfix"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ASG_ACCOUNT}:function:{FUNCTION_NAME}"

# Names that would send boto3 elsewhere, or make moto ignore the per-request account header
# (MOTO_ACCOUNT_ID overrides it, keyfix.sim.accounts); removed for the demo's duration.
_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "MOTO_ACCOUNT_ID")


class Environment:
    """Set environment variables now, put every one back on `restore()`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            self._saved.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


def base_environment(url: str) -> dict[str, str | None]:
    """What every AWS client of the process sees during the demo: the local server only,
    dummy credentials, one region; and what the template gives the function
    (template.yaml: POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE)."""
    values: dict[str, str | None] = {name: None for name in _REMOVED}
    values.update({
        # https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # moto would otherwise build ~1,300 public AMIs per EC2 backend; the demo registers its own.
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
        "POWERTOOLS_SERVICE_NAME": FUNCTION_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": FUNCTION_NAME,
    })
    return values


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """werkzeug logs every request of the moto server at INFO; the demo shows its own story."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


class MotoServer:
    """keyfix.sim.server.LocalMoto, plus a reset between scenarios (moto's /moto-api/reset:
    every backend of every account starts empty again)."""

    def __init__(self) -> None:
        from keyfix.sim.server import LocalMoto

        self._moto = LocalMoto()
        self.url = ""

    def start(self) -> str:
        self.url = self._moto.start()
        return self.url

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # 127.0.0.1 only
            response.read()

    def stop(self) -> None:
        self._moto.stop()


class FakeLambdaContext:
    """What Powertools reads from the Lambda context object
    (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html)."""

    function_name = FUNCTION_NAME
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = FUNCTION_ARN
    log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name = "demo"

    def __init__(self, timeout_seconds: int = 60) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._timeout_ms = timeout_seconds * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


def invoke_lambda(event: dict[str, Any], function_env: Mapping[str, str | None]) -> tuple[dict[str, Any], str]:
    """Run keyfix.handler.lambda_handler on `event` with the function's environment
    (credentials of its execution role, KEYFIX_* settings) set only for the call, the way
    Lambda runs it. Returns the handler's result and what it logged (Powertools writes JSON
    log lines and EMF metrics to stdout; captured so the demo's own output stays readable)."""
    env = Environment()
    env.set(function_env)
    captured = io.StringIO()
    try:
        from keyfix import handler

        handler_stream = handler.logger.registered_handler
        namespace_before = handler.metrics.namespace
        if handler.metrics.namespace is None:
            # keyfix.handler was imported before the demo set POWERTOOLS_METRICS_NAMESPACE.
            handler.metrics.namespace = handler.metrics.provider.namespace = FUNCTION_NAME
        old_stream = handler_stream.setStream(captured)
        try:
            with contextlib.redirect_stdout(captured):
                result = handler.lambda_handler(event, FakeLambdaContext())
        finally:
            handler_stream.setStream(old_stream)
            handler.metrics.namespace = handler.metrics.provider.namespace = namespace_before
    finally:
        env.restore()
    return result, captured.getvalue()
