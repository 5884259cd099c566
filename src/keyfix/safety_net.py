"""The last resort: an unexpected exception while processing an event becomes a report.

Without it, a bug on one event makes the Lambda fail; Lambda retries an asynchronous
invocation twice and then sends it to the dead-letter queue
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), and
on-call hears nothing. With it the event gets a `keyfix.report/1` whose one finding is
`undetermined` and says keyfix failed, the traceback goes to the log, the handler counts an
`InternalErrors` metric, and on-call is notified like for any other report.

The net must not hide bugs: every hit is appended to `HITS` (this process), and the tests
assert that the inputs they know never reach it. Malformed events (EventError) and "in
progress elsewhere" are handled before the net and never count as hits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from keyfix.report import Cause, EventRef, Finding, Mode, Report, Trigger

log = logging.getLogger("keyfix")

# Every exception the net caught in this process, as "Type: message" (tests read it).
HITS: list[str] = []

# How the finding's explanation starts: on-call tooling and tests can recognise it.
INTERNAL_ERROR = "keyfix hit an internal error"

_MAX_TEXT = 200


def internal_error_report(raw: Any, mode: Mode, exc: BaseException) -> Report:
    """The report for an event whose processing raised `exc` (logged here with its traceback)."""
    what = f"{type(exc).__name__}: {_bounded(str(exc))}"
    HITS.append(what)
    log.error("internal error while processing an event; reported as undetermined", exc_info=exc)
    finding = Finding(
        Cause.UNDETERMINED, None, None, [],
        f"{INTERNAL_ERROR} ({type(exc).__name__}) while processing this event and could not finish "
        "deciding it; the traceback is in keyfix's log. Look at the failure by hand. Whatever keyfix "
        "changed before the error is in its audit record (keyfix history).",
    )
    return Report(event=_event_ref(raw), mode=mode, findings=[finding])


def notify_best_effort(report: Report, topic_arn: str | None, gw: Any, account: str | None) -> None:
    """Tell on-call about the failure too; a second failure here is only logged."""
    if not topic_arn:
        return
    try:
        from keyfix.notify import publish

        if gw is None:
            from keyfix.resolve.gateway import AwsGateway

            gw = AwsGateway()
        publish(report, topic_arn, gw, account=account or "")
    except Exception:  # noqa: BLE001 - the report is already the answer; log and go on
        log.exception("could not notify on-call of an internal error")


def _event_ref(raw: Any) -> EventRef:
    """What the event is, as parse() says when it can, else as the raw fields say."""
    try:
        from keyfix.events import parse

        incident = parse(raw)
        return EventRef(incident.event_id, incident.source, incident.detail_type, incident.trigger)
    except Exception:  # noqa: BLE001 - the failure may have been in parse itself
        fields = raw if isinstance(raw, Mapping) else {}

        def text(key: str) -> str:
            value = fields.get(key)
            return _bounded(value.encode("utf-8", "replace").decode("utf-8")) if isinstance(value, str) else ""

        return EventRef(text("id"), text("source"), text("detail-type"), Trigger.UNRECOGNISED)


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
