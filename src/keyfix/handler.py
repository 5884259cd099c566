"""The Lambda entry point: Powertools around `pipeline.process_event`.

Logger carries the event id as correlation id; Metrics count findings by cause and
fixes by status; Tracer wraps the handler, and the gateway wraps each AWS call in a
subsegment of its own. Cold starts pay for every import, so nothing AWS-facing is built
before the event is known to be keyfix's business.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from keyfix.config import Settings
from keyfix.events import EventError
from keyfix.pipeline import process_event
from keyfix.report import Trigger

logger = Logger()
metrics = Metrics()
# X-Ray's patch_all() would load botocore and requests at import time; the gateway's own
# subsegments already trace every AWS call keyfix makes (bench/README.md, cold start).
tracer = Tracer(auto_patch=False)


def _count(report) -> None:
    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=1)
    if report.recovery:  # a group keyfix repaired launched again (keyfix.followup.recovery)
        metrics.add_metric(name="TimeToRepair", unit=MetricUnit.Seconds,
                           value=report.recovery["time_to_repair_seconds"])
    if report.event.trigger == Trigger.UNRECOGNISED:
        metrics.add_metric(name="UnrecognisedEvents", unit=MetricUnit.Count, value=1)
    if report.duplicate_of is not None:  # the first run's findings, already counted by that run
        metrics.add_metric(name="DuplicateIncidents", unit=MetricUnit.Count, value=1)
        return
    from keyfix.observe import count

    count(report, metrics)  # Findings/Predictions by Cause, Fixes by Status (keyfix.observe)


# The idempotency wrapper of the container's DynamoDB client: Powertools' persistence layer
# adds a User-Agent handler to the client it is given each time one is built, so one built
# per invocation on a reused client would pile handlers up. One entry: (table, client, wrapper).
_IDEMPOTENT: list[tuple[str | None, Any, Any]] = []


def _idempotent_for(table_name: str | None, client: Any, make_idempotent, window_seconds: int):
    if _IDEMPOTENT and _IDEMPOTENT[0][0] == table_name and _IDEMPOTENT[0][1] is client:
        return _IDEMPOTENT[0][2]
    wrapped = make_idempotent(lambda act: act(), table_name, window_seconds, dynamodb_client=client)
    _IDEMPOTENT[:] = [(table_name, client, wrapped)]
    return wrapped


def _own_account(context: Any) -> str | None:
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


def _time_left(context: Any):
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: remaining() / 1000.0) if callable(remaining) else None


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    from keyfix.switch import current_switch

    logger.append_keys(switch=current_switch().state)  # every line says whether on-call paused keyfix
    from keyfix.resolve.clients import CONTAINER
    from keyfix.resolve.gateway import AwsGateway

    # This account is the function's own (from its ARN), never what the event claims. The
    # session and clients are the warm container's (CONTAINER); reads, memo and the call log
    # are this invocation's alone. No client is made until one is used.
    gw = AwsGateway(tracer=tracer, account=_own_account(context), pool=CONTAINER)

    def once(incident_key, act):
        # Built on first use: an unrecognised event or an ordinary stop never reaches it.
        from keyfix.idempotency import DEFAULT_WINDOW_SECONDS, make_idempotent

        client = gw.client("dynamodb") if settings.table_name else None
        wrapped = _idempotent_for(settings.table_name, client, make_idempotent, DEFAULT_WINDOW_SECONDS)
        wrapped.register_lambda_context(context)
        return wrapped(incident_key, act)

    applied_by = getattr(context, "invoked_function_arn", None) or "keyfix-lambda"
    try:
        from keyfix.predict.lambda_sweep import is_sweep_event, sweep

        from keyfix.org.routing import handle_org_event, is_org_event

        if is_org_event(event):  # another account's proposal or a key owner's answer (keyfix.org)
            return handle_org_event(event, settings, gw, applied_by=applied_by, time_left=_time_left(context))
        if is_sweep_event(event):  # the scheduled sweep: a keyfix.scan/1 document (keyfix.predict)
            return sweep(event, settings, gw, once=once, time_left=_time_left(context), applied_by=applied_by)
        return _run(event, context, settings, gw, once, applied_by)
    finally:
        gw.release()


def _run(event, context, settings, gw, once, applied_by) -> dict[str, Any]:
    from keyfix.idempotency import InProgressElsewhere

    try:
        # The pipeline builds the store (locks, audit) itself, after parsing.
        report = process_event(event, settings, gw, once=once, applied_by=applied_by,
                               time_left=_time_left(context))
    except InProgressElsewhere:
        # Another invocation is handling this incident; its result stands.
        logger.info("same incident in progress elsewhere; skipped")
        metrics.add_metric(name="DuplicateIncidents", unit=MetricUnit.Count, value=1)
        return {"schema": "keyfix.duplicate/1", "event_id": event.get("id") if isinstance(event, dict) else None}
    except EventError as exc:
        # A malformed event will not improve on retry: report it, do not raise.
        logger.warning("malformed event", extra={"error": str(exc)})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        return {"schema": "keyfix.error/1", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the last-resort net (keyfix.safety_net)
        from keyfix.safety_net import internal_error_report, notify_best_effort

        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        report = internal_error_report(event, settings.mode, exc)
        notify_best_effort(report, settings.sns_topic_arn, gw, gw.account)
    _count(report)
    from keyfix.org.member_side import after_report

    after_report(report, gw)  # the central bus and key owners, when configured (never raises)
    from keyfix.observe import annotate, log_keys

    logger.append_keys(**log_keys(report))  # flat keys Logs Insights filters on
    annotate(tracer, report)
    result = report.to_dict()
    logger.info("report", extra={"report": result})
    return result
