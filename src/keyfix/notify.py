"""Tell on-call, by SNS: a subject to triage from, a readable body, the report JSON, and
message attributes subscribers can filter on (cause, status, account, key).

A failed publish never undoes a fix: it is logged and counted, and the report stands.
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
"""

from __future__ import annotations

import json
import logging

from keyfix.render import report_text, subject
from keyfix.report import Report

log = logging.getLogger("keyfix")

SEPARATOR = "\n\n----- keyfix.report/1 (JSON) -----\n"


def message_attributes(report: Report, account: str) -> dict[str, dict[str, str]]:
    causes = sorted({str(f.cause) for f in report.findings}) or ["none"]
    statuses = sorted({str(x.status) for f in report.findings for x in f.fixes}) or ["none"]
    keys = sorted({f.key_arn for f in report.findings if f.key_arn}) or ["none"]

    def string_array(values: list[str]) -> dict[str, str]:
        # String.Array lets a filter policy match any element.
        return {"DataType": "String.Array", "StringValue": json.dumps(values)}

    return {
        "cause": string_array(causes),
        "status": string_array(statuses),
        "account": {"DataType": "String", "StringValue": account or "unknown"},
        "key": string_array(keys),
        "trigger": {"DataType": "String", "StringValue": str(report.event.trigger)},
    }


def message_body(report: Report) -> str:
    return report_text(report) + SEPARATOR + json.dumps(report.to_dict(), indent=2)


def publish(report: Report, topic_arn: str, gw, account: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        gw.client("sns").publish(
            TopicArn=topic_arn,
            Subject=subject(report),
            Message=message_body(report),
            MessageAttributes=message_attributes(report, account),
        )
    except (ClientError, BotoCoreError) as exc:
        log.error("SNS publish to %s failed: %s", topic_arn, exc)
        return False
    return True
