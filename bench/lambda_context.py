"""The Lambda context object the cold-start children pass to `lambda_handler`."""

from __future__ import annotations


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
