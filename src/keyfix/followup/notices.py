"""The two messages the follow-up sends on its own account: "resolved" (a repaired group
launches again) and the one escalation (a fix that did not take effect).

Both keep keyfix.notify's shape (a subject, a readable body, the report JSON after
notify.SEPARATOR, and the filterable attributes) and add one attribute, `followup`
(`resolved` | `escalation`), so that on-call can route them.
https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
"""

from __future__ import annotations

import json
from typing import Any

from keyfix.notify import SEPARATOR, message_attributes, send
from keyfix.render import report_text
from keyfix.report import Report

SUBJECT_MAX = 100  # SNS's limit for a subject


def _subject(text: str) -> str:
    text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def resolved_text(group: str, recovery: dict[str, Any], change_ids: list[str]) -> tuple[str, str]:
    subject = _subject(f"[keyfix] resolved: {group} launches again "
                       f"({minutes(recovery['time_to_repair_seconds'])} after the first failure)")
    lines = [
        f"Auto Scaling group {group} launched an instance again after keyfix's fix.",
        f"First failure:   {recovery['first_failure_at']}",
        f"Recovered:       {recovery['recovered_at']}",
        f"Time to repair:  {recovery['time_to_repair_seconds']:.0f} s ({minutes(recovery['time_to_repair_seconds'])})",
        "keyfix's changes: " + (", ".join(change_ids) or "none recorded") + " (keyfix history / keyfix rollback)",
    ]
    return subject, "\n".join(lines)


def escalation_text(what: str, history: list[str], recheck: Report) -> tuple[str, str]:
    subject = _subject(f"[keyfix] ESCALATION: {what} still fails after keyfix's fix")
    lines = [f"{what} still fails after keyfix's fix and the KMS consistency window. keyfix re-diagnosed "
             "once and stops here: it will not retry or write again for this incident. History:", ""]
    lines += [f"- {line}" for line in history]
    lines += ["", "Re-diagnosis:", report_text(recheck)]
    return subject, "\n".join(lines)


def publish(gw: Any, topic_arn: str | None, subject: str, text: str, report: Report, account: str,
            kind: str) -> bool:
    """False (logged) when there is no topic or SNS refused; the report stands either way."""
    if not topic_arn:
        return False
    attributes = message_attributes(report, account)
    attributes["followup"] = {"DataType": "String", "StringValue": kind}
    return send(gw, topic_arn, subject, text + SEPARATOR + json.dumps(report.to_dict(), indent=2), attributes,
                 structured=False, kind=kind)
