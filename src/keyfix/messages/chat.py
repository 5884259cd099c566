"""The Amazon Q Developer in chat applications (AWS Chatbot) custom-notification format, so a
topic wired to Slack, Teams or Chime renders keyfix's message.

Format: https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html (schema in
src/keyfix/schemas/chatbot-custom-notification.schema.json, checked in tests). A chat channel's
subscription to a topic is an HTTPS subscription (endpoint global.sns-api.chatbot.amazonaws.com);
AWS's pages do not say which key of a `MessageStructure: json` message Chatbot reads, so keyfix
puts this format under `https` (what an HTTPS subscription receives:
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html, MessageStructure) and
`KEYFIX_HTTPS_MESSAGE=report` gives HTTPS subscribers the full report instead. The bounds
below are keyfix's own (chat is read on a phone); the page's OpenAPI section was not available
to transcribe limits from.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keyfix.report import Report

TITLE_MAX = 250
DESCRIPTION_MAX = 3500
NEXT_STEPS_MAX = 5
STEP_MAX = 600
EMOJI = {"CRITICAL": ":rotating_light:", "HIGH": ":warning:", "MEDIUM": ":crystal_ball:",
         "LOW": ":white_check_mark:", "INFORMATIONAL": ":information_source:"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _steps(commands: list[str]) -> list[str]:
    """A fix's commands as chat steps: each whole, or none of them. A command cut to fit is
    not the one keyfix built (keyfix.remedies.documents.command): a cut quote, or a cut
    `> keyfix-policy.new.json` that leaves put-key-policy to read a stale file of that name."""
    if all(len(c) <= STEP_MAX - 2 for c in commands):
        return [f"`{c}`" for c in commands]
    return ["This fix's commands are too long for chat: run them from the e-mail or the report, which carry "
            "them whole."]


def _md_link(label: str, url: str | None) -> str:
    return f"<{url}|{label}>" if url else label


def thread_id(report: Report) -> str:
    """Updates about the same group (or principal) and key share a thread."""
    first = report.findings[0] if report.findings else None
    parts = [first.resource or first.principal or "", first.key_arn or ""] if first else [report.event.id]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def chat_notification(report: Report, title: str, severity: str, links: dict[str, Any]) -> dict[str, Any]:
    """`links`: {"run": {"logs", "trace"}, "findings": [{"key", "resource"} per finding]}."""
    from keyfix.messages.links import finding_links, report_region

    region = report_region(report)
    lines: list[str] = [f"*Severity:* {severity}   *Mode:* {report.mode}   *Trigger:* {report.event.trigger}"]
    steps: list[str] = []
    for i, f in enumerate(report.findings, 1):
        where = finding_links(f, region)
        lines.append(f"*{i}. {f.cause}*" + (" (predicted)" if f.predicted else ""))
        lines.append(f"principal `{f.principal or '-'}`")
        lines.append(f"key {_md_link(f.key_arn or '-', where.get('key'))}")
        if f.resource:
            lines.append(f"resource {_md_link(f.resource, where.get('resource'))}")
        lines.append(_cut(f.explanation, 500))
        for fix in f.fixes:
            lines.append(f"- [{fix.status}] {fix.kind} on `{fix.target}` (account {fix.target_account})")
            if str(fix.status) in ("proposed", "refused", "failed"):
                steps.extend(_steps(fix.cli))
    run = links.get("run") or {}
    if run:
        lines.append(" | ".join(_md_link(name, url) for name, url in sorted(run.items())))
    if not report.findings:
        lines.append("No finding: nothing to do.")
    keywords = list(dict.fromkeys([severity, *(str(f.cause) for f in report.findings)]))
    related = list(dict.fromkeys(x for f in report.findings for x in (f.resource, f.key_arn) if x))
    return {
        "version": "1.0",
        "source": "custom",
        "id": report.event.id or "keyfix",
        "content": {
            "textType": "client-markdown",
            "title": _cut(f"{EMOJI.get(severity, '')} {title}".strip(), TITLE_MAX),
            "description": _cut("\n".join(lines), DESCRIPTION_MAX),
            "nextSteps": steps[:NEXT_STEPS_MAX] or ["Nothing to run: see the description."],
            "keywords": keywords[:10],
        },
        "metadata": {
            "threadId": thread_id(report),
            "summary": _cut(title, TITLE_MAX),
            "eventType": "keyfix-report",
            "relatedResources": related[:10],
            "additionalContext": {"severity": severity, "event_id": report.event.id or "",
                                  "mode": str(report.mode), "trigger": str(report.event.trigger)},
            "enableCustomActions": False,
        },
    }
