"""The Lambda context object the cold-start children pass to `lambda_handler`, and what
they report of the invocation."""

from __future__ import annotations

import sys
from typing import Any


def invocation_summary(result: Any, modules_before: set[str], invoke_s: float) -> dict[str, Any]:
    """What a cold-start child reports of its first invocation (bench/coldstart.py reads it)."""
    report = result if isinstance(result, dict) else {}
    findings = report.get("findings")
    return {
        "invoke_s": invoke_s,
        "schema": report.get("schema"),
        "trigger": (report.get("event") or {}).get("trigger"),
        "causes": [f.get("cause") for f in findings] if findings else [],
        "modules_after_import": len(modules_before),
        "modules_imported_by_invocation": len(set(sys.modules) - modules_before),
        "boto3_imported_by_invocation": "boto3" in sys.modules and "boto3" not in modules_before,
    }


class LambdaContext:
    """The attributes of the Python runtime's context object that Powertools reads."""

    function_name = "keyfix"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:keyfix"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/keyfix"
    log_stream_name = "2025/01/01/[$LATEST]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000
