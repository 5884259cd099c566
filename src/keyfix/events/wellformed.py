"""Checks on the raw event before any model sees it: size, text, Region.

Each check returns a problem (a sentence naming the field) or None; `keyfix.events.parse`
turns a problem into an EventError, i.e. the contract's "malformed event" (the Lambda
returns keyfix.error/1, `keyfix handle` exits 2). Nothing here imports pydantic.

Why these three:
- text that cannot be encoded as UTF-8 (a lone surrogate such as "\\udc80", which JSON's
  \\u escapes can spell) cannot be sent to AWS or written to a log or an SNS message;
  EventBridge events are UTF-8 JSON, so such an event was not written by AWS;
- a Region that is not shaped like one makes boto3 refuse to build a client
  (botocore InvalidRegionError) wherever keyfix builds one, and it would end up in ARNs
  keyfix proposes;
- size: EventBridge entries are below 256 KB
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html), and the
  event it delivers is only a little larger; an event far beyond that did not come from
  EventBridge, and every string keyfix copies into a report must stay far below what SNS
  carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# The EventBridge entry limit is 256 KB; the delivered event adds the envelope's keys. Twice
# the entry limit leaves room for that while refusing what EventBridge cannot have sent.
MAX_EVENT_BYTES = 512 * 1024
# No one string of an AWS event comes near this; a CloudTrail PutKeyPolicy record carries a
# whole key policy (at most 32 KB: https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html).
MAX_STRING_CHARS = 64 * 1024
# JSON nesting deeper than this is not an AWS event (CloudTrail records nest a few levels).
MAX_DEPTH = 64

# Bounds on the strings keyfix copies into reports and AWS calls (the parser models'
# fields). ARNs and key ids: IAM and KMS accept at most 2048 characters (e.g. Role.Arn,
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html; KeyId,
# https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html).
MAX_ARN_CHARS = 2048
MAX_NAME_CHARS = 256

# AWS publishes no grammar for Region codes. This is the shape every partition's
# `regionRegex` in botocore's endpoints.json allows (us-east-1, us-gov-west-1, cn-north-1,
# us-isob-east-1, eusc-de-east-1, ...), without the underscore their `\w` would admit: a
# lower-case prefix, one or two lower-case words, a number.
REGION_RE = re.compile(r"[a-z]{2,4}(?:-[a-z]{2,12}){1,2}-[0-9]{1,2}")


def is_region(value: object) -> bool:
    return isinstance(value, str) and REGION_RE.fullmatch(value) is not None


def size_problem(raw: Any) -> str | None:
    """The event is larger than EventBridge can deliver (measured as compact JSON)."""
    try:
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False,
                              default=lambda o: f"<{type(o).__name__}>").encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError, TypeError):
        return None  # text_problem names what is wrong
    if size > MAX_EVENT_BYTES:
        return f"the event is {size} bytes; EventBridge delivers at most about 256 KB (keyfix accepts {MAX_EVENT_BYTES})"
    return None


def text_problem(raw: Any) -> str | None:
    """The first string (key or value) that cannot be UTF-8 or is over-long, by JSON path."""
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{path or '(event)'}: nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                return f"{path or '(event)'}: {problem}"
        elif isinstance(value, Mapping):
            for key, item in value.items():
                where = f"{path}.{_printable(key)}" if path else _printable(key)
                if isinstance(key, str) and (problem := _string_problem(key)):
                    return f"{where}: the field name {problem}"
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return None


def region_problem(raw: Mapping[str, Any]) -> str | None:
    region = raw.get("region")
    if is_region(region):
        return None
    shown = _printable(region)[:40] if isinstance(region, str) else type(region).__name__
    return f"region: {shown!r} is not an AWS Region name (such as us-east-1)"


def _string_problem(text: str) -> str | None:
    if len(text) > MAX_STRING_CHARS:
        return f"is {len(text)} characters long (at most {MAX_STRING_CHARS})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds {text[exc.start]!a} at position {exc.start}, which is not Unicode text (a lone surrogate)"
    return None


def _printable(key: Any) -> str:
    """A field name safe to put in an error message (itself encodable, bounded)."""
    text = str(key)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 80 else text[:77] + "..."
