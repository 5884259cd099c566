"""One event, start to finish: parse -> resolve -> diagnose -> remedy -> notify.

The Lambda handler and `keyfix handle` both call `process_event`, so both take exactly
the same path. AWS I/O goes through one `AwsGateway`, which tests replace.
"""

from __future__ import annotations

import logging
from typing import Any

from keyfix.config import Settings
from keyfix.report import EventRef, Report, Trigger

log = logging.getLogger("keyfix")


def process_event(raw: Any, settings: Settings, gw=None, observer=None) -> Report:
    """Raises keyfix.events.EventError for a malformed event; everything else is reported."""
    from keyfix.events import parse

    incident = parse(raw)
    report = Report(
        event=EventRef(incident.event_id, incident.source, incident.detail_type, incident.trigger),
        mode=settings.mode,
    )
    if incident.trigger == Trigger.UNRECOGNISED:
        return report

    from keyfix.diagnose import diagnose
    from keyfix.remedies.apply import carry_out
    from keyfix.resolve import resolve

    if gw is None:
        from keyfix.resolve.gateway import AwsGateway

        gw = AwsGateway(region=incident.region or None)
    situation = resolve(incident, gw)
    report.findings = diagnose(situation)
    changes = carry_out(report.findings, situation, settings, gw)
    if observer is not None:
        observer.record(report, changes)
    if settings.sns_topic_arn:
        from keyfix.notify import publish

        publish(report, settings.sns_topic_arn, gw, account=incident.account)
    return report
