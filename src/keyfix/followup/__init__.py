"""After a fix: durable follow-up checks, confirmed recovery, one escalation (issue #11).

    schedule   after an event's run: open a follow-up chain and send its first delayed message
    recheck    one follow-up message: validate, settle, re-check, then recover / continue /
               escalate / stop
    recovery   "EC2 Instance Launch Successful" (and the follow-up): a repaired group launched
    state      the chain and repair records in keyfix's DynamoDB table
    notices    the "resolved" and escalation messages

Cold start: this module imports nothing heavy; `is_sqs_batch` is what the pipeline asks of
every event.
"""

from __future__ import annotations

from typing import Any


def is_sqs_batch(raw: Any) -> bool:
    """An SQS batch from Lambda's event source mapping: {"Records": [{"eventSource": "aws:sqs", ...}]}
    (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html). Only the follow-up queue is
    an event source of keyfix's function."""
    if not isinstance(raw, dict) or set(raw) != {"Records"} or not isinstance(raw["Records"], list):
        return False
    return bool(raw["Records"]) and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs"
                                        for r in raw["Records"])
