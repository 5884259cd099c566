"""What keyfix tells CloudWatch about each run: metrics with dimensions, flat log keys, and
trace annotations. The handler calls these; nothing here is on the decision path.

Metrics (namespace `keyfix`, EMF; each with the `service` dimension Powertools adds):
    Findings       dimension Cause   one per finding (predictions excluded)
    Predictions    dimension Cause   one per predicted finding (nothing has failed yet)
    Fixes          dimension Status  one per fix
(TimeToRepair, seconds, is the handler's when a repaired group launches again: report.recovery.)
A single metric name with a dimension (instead of a name per cause) is what dashboards and
alarms select on: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension
Each dimension value is its own EMF record (Powertools `single_metric`), because one record's
dimensions apply to all of its metrics:
https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/#single-metric

Log keys (flat, so Logs Insights can filter `cause = "..."`): cause, status, key, principal,
group, incident, severity, switch. Values are comma-joined when a report has several.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html

Trace annotations (indexed, searchable with `annotation.cause = "..."`): cause, key, mode,
switch. https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-annotations
"""

from __future__ import annotations

from typing import Any

from keyfix.report import Report

_ANNOTATION_MAX = 250  # keyfix's own bound; X-Ray indexes annotations, a short value suffices


def _joined(values) -> str:
    return ",".join(dict.fromkeys(v for v in values if v))


def log_keys(report: Report, incident: str | None = None) -> dict[str, str]:
    from keyfix.messages.severity import report_severity
    from keyfix.notify import _groups

    findings = report.findings
    return {
        "cause": _joined(str(f.cause) for f in findings),
        "status": _joined(str(x.status) for f in findings for x in f.fixes),
        "key": _joined(f.key_arn for f in findings),
        "principal": _joined(f.principal for f in findings),
        "group": _joined(_groups([report])),
        "incident": incident or report.event.id or "",
        "severity": report_severity(report),
    }


def count(report: Report, metrics: Any) -> None:
    """Emit the per-cause, per-status and time-to-repair metrics of one report."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    def one(name: str, dimension: str, value: str) -> None:
        with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace,
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name=dimension, value=value)

    for finding in report.findings:
        one("Predictions" if finding.predicted else "Findings", "Cause", str(finding.cause))
        for fix in finding.fixes:
            one("Fixes", "Status", str(fix.status))


def annotate(tracer: Any, report: Report) -> None:
    keys = log_keys(report)
    for name, value in (("cause", keys["cause"]), ("key", keys["key"]), ("mode", str(report.mode)),
                        ("severity", keys["severity"])):
        if value:
            tracer.put_annotation(key=name, value=value[:_ANNOTATION_MAX])
