"""One SNS message, one text per protocol (`MessageStructure: json`).

    default   (sqs, lambda, http, firehose, email-json, application: every protocol without a
              key of its own) the full report: readable text, links, then the report JSON
              after SEPARATOR, as keyfix has always sent it
    email     the readable text and links only (no JSON)
    sms       one line: severity, subject
    https     the chat format (keyfix.messages.chat), or the full report with
              KEYFIX_HTTPS_MESSAGE=report

Keys not given fall back to `default`, so the full text is carried once:
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html (MessageStructure). The whole
Message is at most 256 KiB (262,144 bytes, same page): `fit` shrinks the e-mail and chat
texts, then drops the readable text from `default`, and says so when even the JSON alone is
too large (the caller then logs and counts a failed notification: nothing is cut mid-JSON).
"""

from __future__ import annotations

import json
import os
from typing import Any

MESSAGE_MAX_BYTES = 262_144
# One SMS part (140 bytes of 7-bit text); longer texts are split into billed parts
# (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html, Message).
SMS_MAX = 140
EMAIL_MAX = 60_000
HTTPS_MESSAGE_ENV = "KEYFIX_HTTPS_MESSAGE"


class TooLarge(ValueError):
    """Even the report JSON alone exceeds SNS's message size."""


def _ascii_line(text: str, limit: int) -> str:
    line = " ".join("".join(c if " " <= c <= "~" else "?" for c in text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def sms_text(severity: str, title: str) -> str:
    return _ascii_line(f"keyfix {severity}: {title.removeprefix('[keyfix] ')}", SMS_MAX)


def https_variant(chat: dict[str, Any], full: str, env=None) -> str:
    env = os.environ if env is None else env
    return full if env.get(HTTPS_MESSAGE_ENV, "chat").strip() == "report" else json.dumps(chat)


def encode(variants: dict[str, str]) -> str:
    return json.dumps(variants, ensure_ascii=False)


def size(message: str) -> int:
    return len(message.encode("utf-8"))


def _whole_lines(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, ending at a line's end: a command line (`$ ...`)
    is shown whole or not at all, never cut mid-quote or mid-redirection."""
    return text if len(text) <= limit else text[:limit].rpartition("\n")[0]


def fit(text: str, json_part: str, separator: str, email: str, sms: str, https: str | None) -> str:
    """The `MessageStructure: json` message within MESSAGE_MAX_BYTES, or TooLarge."""
    full = text + separator + json_part
    if len(email) > EMAIL_MAX:
        email = _whole_lines(email, EMAIL_MAX - 80) + "\n... (cut: the full report goes to SQS, Lambda and HTTP subscribers)"
    variants = {"default": full, "email": email, "sms": sms}
    if https is not None:
        variants["https"] = https
    message = encode(variants)
    if size(message) <= MESSAGE_MAX_BYTES:
        return message
    # Too large: machine subscribers keep the whole report; people get the headline.
    variants = {"default": separator.lstrip("\n") + json_part, "email": _whole_lines(email, 4000) + "\n... (cut)",
                "sms": sms}
    if https is not None and len(https) < 8000:  # the chat text is small; keep it for chat channels
        variants["https"] = https
    message = encode(variants)
    if size(message) <= MESSAGE_MAX_BYTES:
        return message
    raise TooLarge(f"the report alone is {size(json_part)} bytes, over SNS's {MESSAGE_MAX_BYTES}")
