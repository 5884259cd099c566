"""One event, start to finish: parse -> resolve -> diagnose -> remedy -> notify.

The Lambda handler and `keyfix handle` both call `process_event`, so both take exactly
the same path. AWS I/O goes through one `AwsGateway`, which tests replace.
"""

from __future__ import annotations

import logging
from typing import Any

from keyfix.config import Settings
from keyfix.report import Cause, EventRef, Mode, Report, Trigger

log = logging.getLogger("keyfix")

# One notification per finding (account x principal/group x key x cause) per hour.
NOTIFY_WINDOW_SECONDS = 3600


def process_event(raw: Any, settings: Settings, gw=None, observer=None, *, store=None, once=None,
                  applied_by: str = "keyfix", time_left=None, follow_up: bool = True) -> Report:
    """Raises keyfix.events.EventError for a malformed event; everything else is reported.

    `store`: keyfix.store.Store/NullStore (default: from settings). `once`: a
    keyfix.idempotency.make_idempotent wrapper; with it an incident already handled within
    its window is not handled again: the report is then a keyfix.duplicates.DuplicateReport
    carrying the first run's findings, `duplicate_of` and `handled_at`. Raises
    keyfix.idempotency.InProgressElsewhere when another invocation is handling the same
    incident right now. `time_left()`: seconds the invocation has left; writes stop before it
    runs out (see remedies.apply). `follow_up`: schedule the delayed re-check when one is due
    (keyfix.followup; False for the re-check's own run). A batch from the follow-up queue is a
    re-check (keyfix.followup.recheck)."""
    from keyfix.events import parse
    from keyfix.followup import is_sqs_batch

    if is_sqs_batch(raw):
        from keyfix.followup.recheck import handle_batch

        return handle_batch(raw, settings, gw, applied_by=applied_by, time_left=time_left)
    incident = parse(raw)
    report = Report(
        event=EventRef(incident.event_id, incident.source, incident.detail_type, incident.trigger),
        mode=settings.mode,
    )
    from keyfix.switch import current_switch

    switch = current_switch()  # on-call's runtime switch (cached): in every report
    report.switch = switch.to_dict()
    if incident.trigger == Trigger.UNRECOGNISED:
        return report
    if switch.paused:  # nothing read, written or sent; the event archive keeps the event
        log.warning("paused by the runtime switch %s: event %s not handled", switch.source, incident.event_id)
        return report
    settings = switch.apply(settings)
    report.mode = settings.mode

    if gw is None:
        from keyfix.resolve.gateway import AwsGateway

        gw = AwsGateway(region=incident.region or None)
    if incident.trigger == Trigger.EC2_LAUNCH_FAILURE:  # before the diagnosis is imported (issue #14, P1b)
        from keyfix.irrelevant import ordinary_stop

        finding = ordinary_stop(incident, gw)  # one DescribeInstances decides most stops (issue #14)
        if finding is not None:
            report.findings = [finding]
            return report

    from keyfix.diagnose import diagnose
    from keyfix.remedies.apply import WRITE_BUDGET_SECONDS, carry_out
    from keyfix.remedies.settle import settle_now_and_then
    from keyfix.resolve import resolve

    if incident.trigger == Trigger.RECOVERY:  # one table read unless keyfix repaired the group
        from keyfix.followup.recovery import handle_launch_successful

        return handle_launch_successful(incident, report, settings, gw)
    if store is None:
        from keyfix.store import store_from_settings

        store = store_from_settings(settings, gw.client)
    if incident.trigger == Trigger.KEY_CHANGE:  # the groups a change touches, proposals only (keyfix.predict)
        from keyfix.predict.keychange import handle_change

        return handle_change(raw, incident, report, settings, gw, store=store, time_left=time_left,
                             applied_by=applied_by)

    def act() -> dict[str, Any]:
        situation = resolve(incident, gw)
        report.findings = diagnose(situation)
        changes = carry_out(report.findings, situation, settings, gw, store=store, applied_by=applied_by,
                            time_left=time_left, on_applied=_window_opener(store, incident))
        if settings.mode == Mode.APPLY and (time_left is None or time_left() > 2 * WRITE_BUDGET_SECONDS):
            # Writes whose outcome an earlier run could not confirm: a read settles them.
            settle_now_and_then(store, gw)
        from keyfix.store.findings import record_findings

        record_findings(store, report, raw)  # every finding with its report: keyfix history --findings
        from keyfix.securityhub import publish_report

        publish_report(report, gw, region=incident.region or None)  # SecurityHub=true only; never raises
        if observer is not None:
            observer.record(report, changes)
        if settings.sns_topic_arn and _worth_notifying(report, changes, store, incident):
            from keyfix.notify import publish

            publish(report, settings.sns_topic_arn, gw, account=incident.account)
        if follow_up:
            from keyfix.followup.schedule import schedule_after_event

            schedule_after_event(raw, incident, report, changes, settings, gw)
        return report.to_dict()

    if once is None:
        act()
        return report
    result = _once_per_incident(once, incident, report, settings, act)
    result.switch = report.switch
    return result


def _once_per_incident(once, incident, report: Report, settings: Settings, act) -> Report:
    """Run `act` unless the incident was handled within the window; a duplicate's report is
    the first run's findings with `duplicate_of` (keyfix.duplicates, keyfix.idempotency)."""
    from keyfix.duplicates import duplicate_report, first_run_record, unsettled
    from keyfix.idempotency import NotRemembered, incident_key

    ran = []  # whether `act` ran here: a re-delivery of the first event itself is a duplicate too

    def first_run() -> dict[str, Any]:
        ran.append(True)
        record = first_run_record(act())
        why = unsettled(record["report"])
        if why:
            log.info("not remembered for the idempotency window: %s", "; ".join(why))
            raise NotRemembered(record)
        return record

    stored = once(incident_key(incident, mode=settings.mode), first_run)
    if ran:
        return report
    duplicate = duplicate_report(stored, report.event, settings.mode)
    log.info("incident already handled by event %s at %s within the idempotency window",
             duplicate.duplicate_of, duplicate.handled_at)
    return duplicate


def _fingerprint(incident, finding, cause) -> str:
    from keyfix.store import finding_fingerprint

    return finding_fingerprint(incident.account, finding.principal or incident.group_name, finding.key_arn, str(cause))


def _window_opener(store, incident):
    """Called under the key's lock right after keyfix's write: the write is told by its own
    report, and it opens the window of its finding and of what the same principal x key
    shows once repaired (no-missing-permission). An event that waited for the lock and found
    the fix present, or the next group to meet the repaired key, is part of this repair's
    story: no second page within NOTIFY_WINDOW_SECONDS (issue #16). Only that principal x
    key: a group's other keys and causes keep their own windows."""
    def opened(finding) -> None:
        for cause in (finding.cause, Cause.NO_MISSING_PERMISSION):
            store.open_window(_fingerprint(incident, finding, cause), NOTIFY_WINDOW_SECONDS)

    return opened


def _worth_notifying(report: Report, changes: list, store, incident) -> bool:
    """Writes are always told; a finding only once per NOTIFY_WINDOW_SECONDS (a write opens
    the window: _window_opener)."""
    if changes:
        return True
    if all(f.cause == Cause.NOT_KMS for f in report.findings):
        return False  # not keyfix's business: the report and logs are enough
    if not report.findings:
        return True
    fresh = [store.should_notify(_fingerprint(incident, f, f.cause), NOTIFY_WINDOW_SECONDS)
             for f in report.findings]  # a list, not any(): every finding opens its window
    return any(fresh)
