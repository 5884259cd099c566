"""Confirm recovery: a group keyfix repaired launched again.

Two ways in: the "EC2 Instance Launch Successful" rule (trigger `recovery`), and the
follow-up, which reads the group's scaling activities. Either way the repair record
(keyfix.followup.state) decides, and marks the recovery once: one "resolved" notification
and one time-to-repair per repair, however many instances launch.

The rule fires for every successful launch in the account, so a group keyfix never repaired
costs exactly one DynamoDB GetItem and no other client: the event ends with a short report.
"""

from __future__ import annotations

import logging
from typing import Any

from keyfix.followup.state import FollowUpTable, epoch_of
from keyfix.utc import iso
from keyfix.report import Report

log = logging.getLogger("keyfix")


def recovery_object(first_failure_at: str, recovered_at: str) -> dict[str, Any]:
    first, recovered = epoch_of(first_failure_at), epoch_of(recovered_at)
    seconds = max(0.0, (recovered or 0.0) - (first or 0.0)) if first is not None and recovered is not None else 0.0
    return {"first_failure_at": first_failure_at, "recovered_at": recovered_at, "time_to_repair_seconds": seconds}


def confirm(table: FollowUpTable, account: str, region: str, group: str, launched_at: str | None,
            repair: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The report's `recovery` object when this launch recovers a repair of `group` not yet
    recovered (marked once, here); else None. `repair`: the record if already read."""
    if repair is None:
        repair = table.get_repair(account, region, group)
    if not repair or repair.get("recovered_at"):
        return None
    repaired = epoch_of(repair.get("repaired_at"))
    launched = epoch_of(launched_at)
    if launched is None:
        launched_at, launched = iso(table.clock()), table.clock()
    if repaired is not None and launched < repaired:
        return None  # a launch from before keyfix's repair, delivered late: not a recovery
    if not table.mark_recovered(account, region, group, launched_at):
        return None  # another invocation recorded this recovery first
    return recovery_object(repair.get("first_failure_at") or launched_at, launched_at)


def handle_launch_successful(incident: Any, report: Report, settings: Any, gw: Any) -> Report:
    """The `recovery` trigger. Quiet (a report, no notification) unless keyfix repaired the group."""
    if not settings.table_name or not incident.group_name:
        return report
    from botocore.exceptions import BotoCoreError, ClientError

    own = getattr(gw, "account", None)
    if own and incident.account != own:
        return report  # another account's group: keyfix's table knows only its own repairs
    table = FollowUpTable(settings.table_name, gw.client("dynamodb"))
    try:
        repair = table.get_repair(incident.account, incident.region, incident.group_name)
        if not repair:
            return report
        report.recovery = confirm(table, incident.account, incident.region, incident.group_name, incident.time,
                                  repair)
    except (ClientError, BotoCoreError) as exc:
        # Every launch in the account passes here: a table problem is logged, never paged.
        log.error("could not read or update the repair record of %s: %s", incident.group_name, exc)
        return report
    if report.recovery is not None:
        announce(gw, settings, report, incident.account, incident.group_name, repair)
    return report


def announce(gw: Any, settings: Any, report: Report, account: str, group: str, repair: dict[str, Any]) -> None:
    import json

    from keyfix.followup.notices import publish, resolved_text

    try:
        ids = json.loads(repair.get("change_ids") or "[]")
    except ValueError:
        ids = []
    subject, text = resolved_text(group, report.recovery, ids)
    publish(gw, settings.sns_topic_arn, subject, text, report, account, "resolved")
    from keyfix.securityhub import resolve_recovered

    resolve_recovered(group, report.recovery, gw, account=account)  # SecurityHub=true only; never raises
