"""Tell on-call, by SNS: one message per protocol, a subject to triage from, a severity,
console links, the report JSON, and message attributes subscribers can filter on.

API (other parts of keyfix call these; all return True when every publish succeeded):

    publish(report, topic_arn, gw, account=...)
        one report -> one message.
    publish_digest(reports, topic_arn, gw, account=..., title=None)
        a burst (a sweep, a key change touching forty groups) -> one message listing every
        report (several only if one would exceed SNS's 256 KiB; the subject then says
        "part i/n"). The full variant carries {"schema": "keyfix.digest/1", "reports": [...]}
        after DIGEST_SEPARATOR. Reports whose findings are all quiet (not-kms,
        no-missing-permission) are counted, not listed. Use it instead of calling `publish`
        per report whenever one run produces more than one report.

Per protocol (keyfix.messages.structure): e-mail gets the readable text and links, SMS one
line, HTTPS the Amazon Q Developer in chat applications (AWS Chatbot) format
(keyfix.messages.chat), and every other protocol (SQS, Lambda, HTTP, e-mail-json) the full
report: the readable text, then the report JSON after SEPARATOR.

Attributes (String / String.Array, so a filter policy matches any element):
`cause`, `status`, `account`, `key`, `trigger` (as before), and `severity`
(keyfix.messages.severity), `group` (group names), `kind` (`report` or `digest`) and, when
owner notification is on, `owner` (keyfix.messages.owner).
https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html

Alarms (function errors, dead letters, keyfix's own metric alarms) go to a topic of their
own (template.yaml `AlarmTopic`): CloudWatch alarm messages carry no message attributes, so
a filter policy on this topic would drop them.

A failed publish never undoes a fix: it is logged and counted, and the report stands.
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from keyfix.arns import group_name_of
from keyfix.render import report_text, subject
from keyfix.report import Report

log = logging.getLogger("keyfix")

SEPARATOR = "\n\n----- keyfix.report/1 (JSON) -----\n"
DIGEST_SEPARATOR = "\n\n----- keyfix.digest/1 (JSON) -----\n"
DIGEST_SCHEMA = "keyfix.digest/1"
# Report JSON per digest message: leaves room under 256 KiB for the text variants.
DIGEST_JSON_BUDGET = 150_000


def _string_array(values) -> dict[str, str]:
    return {"DataType": "String.Array", "StringValue": json.dumps(sorted(set(values)) or ["none"])}


def _groups(reports: Sequence[Report]) -> list[str]:
    names = (group_name_of(f.resource) for r in reports for f in r.findings)
    return [name for name in names if name is not None]


def message_attributes(report: Report, account: str, *, severity: str | None = None,
                       owners: Sequence[str] = (), reports: Sequence[Report] | None = None,
                       kind: str = "report") -> dict[str, dict[str, str]]:
    from keyfix.messages.severity import highest, report_severity

    reports = [report] if reports is None else list(reports)
    findings = [f for r in reports for f in r.findings]
    attributes = {
        "cause": _string_array(str(f.cause) for f in findings),
        "status": _string_array(str(x.status) for f in findings for x in f.fixes),
        "account": {"DataType": "String", "StringValue": account or "unknown"},
        "key": _string_array(f.key_arn for f in findings if f.key_arn),
        "trigger": {"DataType": "String", "StringValue": str(report.event.trigger)},
        "severity": {"DataType": "String",
                     "StringValue": severity or highest(report_severity(r) for r in reports)},
        "group": _string_array(_groups(reports)),
        "kind": {"DataType": "String", "StringValue": kind},
    }
    if owners:
        attributes["owner"] = _string_array(owners)
    return attributes


def _links_text(report: Report) -> tuple[str, dict]:
    from keyfix.messages.links import finding_links, report_links, report_region

    region = report_region(report)
    run = report_links(report)
    lines = []
    for i, finding in enumerate(report.findings, 1):
        for name, url in sorted(finding_links(finding, region).items()):
            lines.append(f"  finding {i} {name}: {url}")
    for name, url in sorted(run.items()):
        lines.append(f"  {name}: {url}")
    return ("\n\nLinks:\n" + "\n".join(lines)) if lines else "", {"run": run}


def readable_text(report: Report, severity: str | None = None) -> str:
    from keyfix.messages.severity import report_severity

    links, _ = _links_text(report)
    return f"Severity: {severity or report_severity(report)}\n" + report_text(report) + links


def message_body(report: Report) -> str:
    """The full variant: readable text, links, then the report JSON after SEPARATOR."""
    return readable_text(report) + SEPARATOR + json.dumps(report.to_dict(), indent=2)


def structured_message(report: Report) -> str:
    """The `MessageStructure: json` Message for one report (keyfix.messages.structure)."""
    from keyfix.messages.chat import chat_notification
    from keyfix.messages.severity import report_severity
    from keyfix.messages.structure import fit, https_variant, sms_text

    severity = report_severity(report)
    title = subject(report)
    text = readable_text(report, severity)
    json_part = json.dumps(report.to_dict(), indent=2)
    _, links = _links_text(report)
    chat = chat_notification(report, title, severity, links)
    return fit(text, json_part, SEPARATOR, text, sms_text(severity, title),
               https_variant(chat, text + SEPARATOR + json_part))


def send(gw, topic_arn: str, subject_line: str, message: str, attributes, *, structured: bool = True,
         kind: str | None = None) -> bool:
    """keyfix's one SNS sender (reports, digests, follow-up notices, the organisation's
    proposals and answers). Publish; False (logged) when SNS refused. `structured`: `message`
    is a per-protocol JSON document (MessageStructure=json), else plain text; `kind` only
    names it in the log."""
    from botocore.exceptions import BotoCoreError, ClientError

    extra = {"MessageStructure": "json"} if structured else {}
    try:
        gw.client("sns").publish(TopicArn=topic_arn, Subject=subject_line, Message=message,
                                 MessageAttributes=attributes, **extra)
    except (ClientError, BotoCoreError) as exc:
        log.error("SNS publish%s to %s failed: %s", f" ({kind})" if kind else "", topic_arn, exc)
        return False
    return True


def publish(report: Report, topic_arn: str, gw, account: str) -> bool:
    from keyfix.messages.owner import owners_to_tell
    from keyfix.messages.structure import TooLarge

    try:
        message = structured_message(report)
    except TooLarge as exc:
        log.error("SNS publish to %s skipped: %s", topic_arn, exc)
        return False
    owners = owners_to_tell(report, gw, account)
    return send(gw, topic_arn, subject(report), message,
                 message_attributes(report, account, owners=owners))


# ---------------------------------------------------------------- digest

def _digest_line(report: Report) -> str:
    from keyfix.messages.severity import report_severity
    from keyfix.render import headline

    where = next((f.resource for f in report.findings if f.resource), None) or "-"
    what = "; ".join(headline(f) for f in report.findings) or "nothing to do"
    return f"- {report_severity(report):<13} {where.rsplit('/', 1)[-1]}: {what} (event {report.event.id})"


def _chunks(reports: list[Report]) -> list[list[Report]]:
    chunks: list[list[Report]] = [[]]
    used = 0
    for report in reports:
        size = len(json.dumps(report.to_dict()).encode("utf-8"))
        if chunks[-1] and used + size > DIGEST_JSON_BUDGET:
            chunks.append([])
            used = 0
        chunks[-1].append(report)
        used += size
    return [c for c in chunks if c]


def digest_subject(reports: Sequence[Report], title: str | None, part: tuple[int, int] | None) -> str:
    from keyfix.messages.severity import report_severity
    from keyfix.render import SUBJECT_MAX

    by = {}
    for r in reports:
        by[report_severity(r)] = by.get(report_severity(r), 0) + 1
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(by.items(), key=lambda kv: kv[0]))
    label = title or f"{reports[0].event.trigger}"
    text = f"[keyfix] digest {label}: {len(reports)} reports ({counts})"
    if part and part[1] > 1:
        text += f" part {part[0]}/{part[1]}"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def digest_message(reports: list[Report], title_line: str, quiet: int) -> str:
    from keyfix.messages.chat import DESCRIPTION_MAX, EMOJI
    from keyfix.messages.severity import highest, report_severity
    from keyfix.messages.structure import fit, https_variant, sms_text

    severity = highest(report_severity(r) for r in reports)
    lines = [f"Severity: {severity}", f"keyfix digest: {len(reports)} reports" +
             (f" ({quiet} more with nothing to act on, not listed)" if quiet else "")]
    lines += [_digest_line(r) for r in reports]
    text = "\n".join(lines)
    json_part = json.dumps({"schema": DIGEST_SCHEMA, "count": len(reports),
                            "reports": [r.to_dict() for r in reports]}, indent=2)
    description = text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 3] + "..."
    chat = {"version": "1.0", "source": "custom", "id": reports[0].event.id or "keyfix-digest",
            "content": {"textType": "client-markdown", "title": f"{EMOJI.get(severity, '')} {title_line}".strip(),
                        "description": description,
                        "nextSteps": ["Each report's fix and commands are in the full report (SQS, Lambda subscribers)."],
                        "keywords": [severity, "digest"]},
            "metadata": {"summary": title_line, "eventType": "keyfix-digest",
                         "additionalContext": {"severity": severity, "reports": str(len(reports))},
                         "enableCustomActions": False}}
    return fit(text, json_part, DIGEST_SEPARATOR, text, sms_text(severity, title_line),
               https_variant(chat, text + DIGEST_SEPARATOR + json_part))


def publish_digest(reports: Sequence[Report], topic_arn: str, gw, account: str, title: str | None = None) -> bool:
    """One message for a burst of reports (see the module docstring). Nothing to list: no
    message, True. `title`: what the burst was, e.g. "sweep" or "key change <key id>"."""
    from keyfix.messages.severity import QUIET_CAUSES
    from keyfix.messages.structure import TooLarge

    listed = [r for r in reports if any(f.cause not in QUIET_CAUSES for f in r.findings)]
    quiet = len(reports) - len(listed)
    if not listed:
        return True
    chunks = _chunks(listed)
    ok = True
    for i, chunk in enumerate(chunks, 1):
        title_line = digest_subject(chunk, title, (i, len(chunks)))
        try:
            message = digest_message(chunk, title_line, quiet if i == 1 else 0)
        except TooLarge as exc:
            log.error("SNS digest to %s skipped: %s", topic_arn, exc)
            ok = False
            continue
        ok = send(gw, topic_arn, title_line, message,
                   message_attributes(chunk[0], account, reports=chunk, kind="digest")) and ok
    return ok
