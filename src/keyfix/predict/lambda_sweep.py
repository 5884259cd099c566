"""The scheduled sweep, as the Lambda runs it (template.yaml: `SweepSchedule`, default
`rate(15 minutes)`, an `AWS::Events::Rule` with a schedule expression).

EventBridge delivers a scheduled rule's event with source "aws.events" and detail-type
"Scheduled Event" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html);
the handler routes it here instead of to the event pipeline. The sweep runs the scan's
check with the function's role, reads recent scaling activities, writes in apply mode under
the safety rules, notifies through the same window as events and shares their idempotency
(keyfix.predict.act). It returns the keyfix.scan/1 document.

Carrying on: with less than the sweep's reserve of time left it stops and leaves a cursor in
the table (keyfix.predict.cursor); the next scheduled invocation resumes there. Without a
table there is nowhere to keep it: the document says what was not checked, and the next sweep
starts from the beginning.

The runtime switch (keyfix.switch) holds for the sweep as for an event
(keyfix.pipeline.process_event): `pause` and the sweep reads, writes and sends nothing (not
even its cursor, so the pass carries on where it stood once resumed) and its document says
so; `propose` runs the check in propose mode, whatever Mode says. The switch is in the
document (`switch`, an addition to the contract) and in every report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyfix.config import Settings
from keyfix.predict.cursor import MemoryCursorStore, TableCursorStore
from keyfix.report import EventRef, Trigger

SCHEDULED_SOURCE = "aws.events"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"


def is_sweep_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == SCHEDULED_SOURCE \
        and event.get("detail-type") == SCHEDULED_DETAIL_TYPE


def sweep(event: dict[str, Any], settings: Settings, gw: Any, *, once: Callable[..., Any] | None = None,
          time_left: Callable[[], float] | None = None, applied_by: str = "keyfix sweep",
          cursor_store: Any = None, sleep: Callable[[float], None] | None = None) -> dict[str, Any]:
    from keyfix.predict.scan import document, scan
    from keyfix.switch import current_switch

    event_id = event.get("id") if isinstance(event.get("id"), str) else "sweep"
    region = gw.default_region()
    switch = current_switch()  # cached: the handler's own log key read it already
    if switch.paused:
        return paused_document(switch, gw.account, region)
    settings = switch.apply(settings)
    persistent = cursor_store is not None or bool(settings.table_name)
    if cursor_store is None:
        cursor_store = TableCursorStore(gw.client("dynamodb"), settings.table_name, region or "") \
            if settings.table_name else MemoryCursorStore()
    start = _load(cursor_store)
    outcome, account, region = scan(
        settings, gw, event=EventRef(event_id, SCHEDULED_SOURCE, SCHEDULED_DETAIL_TYPE, Trigger.SCHEDULED_SWEEP),
        once=once, notify=True, time_left=time_left, start=start, sleep=sleep, applied_by=applied_by,
        switch=switch.to_dict())
    saved = _save(cursor_store, outcome.cursor) and persistent
    if outcome.cursor is not None and not saved:
        outcome.unchecked.append("keyfix has no table to keep its place in: the next sweep starts from the beginning")
    doc = document(outcome, account, region)
    doc["resumed_from"] = start.to_json() if start is not None else None
    doc["carry_on_from"] = outcome.cursor.to_json() if outcome.cursor is not None else None
    doc["switch"] = switch.to_dict()
    return doc


def paused_document(switch: Any, account: str | None, region: str | None) -> dict[str, Any]:
    """What a paused sweep returns: nothing checked, and why. No AWS call is made to build it
    (the account is the function's own, from its ARN; the Region from the environment)."""
    import logging

    from keyfix.predict.scan import SCHEMA

    logging.getLogger("keyfix").warning("paused by the runtime switch %s: the sweep checked nothing", switch.source)
    return {
        "schema": SCHEMA,
        "account": account or "",
        "region": region or "unknown",  # the schema wants one; Lambda always sets AWS_REGION
        "checked": {"groups": 0, "instances": 0, "keys": 0},
        "reports": [],
        "unchecked": [f"keyfix is paused by the runtime switch {switch.source}: nothing was checked, read or "
                      "written; the next sweep after resuming carries on where the last one stopped"],
        "complete": False,
        "unknown_groups": [],
        "resumed_from": None,
        "carry_on_from": None,
        "switch": switch.to_dict(),
    }


def _load(store: Any):
    try:
        return store.load()
    except Exception:  # noqa: BLE001 - an unreadable cursor restarts the pass; said in the logs
        import logging

        logging.getLogger("keyfix").exception("sweep cursor unreadable: the pass starts from the beginning")
        return None


def _save(store: Any, cursor: Any) -> bool:
    try:
        store.save(cursor)
    except Exception:  # noqa: BLE001
        import logging

        logging.getLogger("keyfix").exception("sweep cursor not saved")
        return False
    return True
