"""After an event's run: schedule the durable delayed re-check, when one is due.

Due after an applied fix (did it take effect? did the group launch again?), after a write
whose outcome keyfix could not confirm (`unverified`: a read settles it), and after an EC2
launch failure whose finding stayed `undetermined` because CloudTrail had not delivered the
launch record yet (LookupEvents lags minutes: keyfix.resolve.cloudtrail).

Mechanism: one SQS message per attempt, sent with a per-message DelaySeconds (0 to 900 s:
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html)
to keyfix's follow-up queue, which is an event source of the function itself
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html). Never a sleep in the function.
The chain is bounded: at most MAX_ATTEMPTS messages, at +2, +5 and +10 minutes, across the
window in which KMS grants and key-policy changes become effective. AWS: "usually less than
five minutes" for grants (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html);
for any KMS change "typically ... less than a few seconds ... in some cases ... several minutes"
(https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html).
No page gives a bound for key policies; keyfix takes the grants' five minutes for both.

Scheduling is bookkeeping: if it fails, the event's own work and report stand, and the
failure is logged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from keyfix.events.followup import MAX_ATTEMPTS, SCHEMA
from keyfix.followup.state import FollowUpTable, chain_id, epoch_of, event_digest
from keyfix.utc import iso
from keyfix.report import Cause, Trigger

log = logging.getLogger("keyfix")

QUEUE_ENV = "KEYFIX_FOLLOWUP_QUEUE_URL"
# Delay of attempt n after the step that schedules it: +2, +5, +10 minutes from the event.
DELAYS_SECONDS = (120, 180, 300)
assert len(DELAYS_SECONDS) == MAX_ATTEMPTS and max(DELAYS_SECONDS) <= 900
# When grants and key-policy changes have taken effect (see the module doc).
CONSISTENCY_WINDOW_SECONDS = 300

FAILURE_TRIGGERS = {Trigger.ASG_LAUNCH_FAILURE, Trigger.EC2_LAUNCH_FAILURE, Trigger.EBS_VOLUME_FAILURE,
                    Trigger.KMS_ACCESS_DENIED}


def queue_url() -> str | None:
    return os.environ.get(QUEUE_ENV) or None


def follow_up_reason(incident: Any, report: Any, changes: list[dict[str, Any]]) -> str | None:
    """Why a re-check is due after this run, or None. `changes`: remedies.apply.carry_out's."""
    journalled = [c for c in changes if c.get("change_id")]
    if any(c.get("outcome") == "unverified" for c in journalled):
        return "unverified"
    if any(c.get("outcome") == "applied" for c in journalled):
        return "applied"
    if incident.trigger == Trigger.EC2_LAUNCH_FAILURE and any(
            f.cause == Cause.UNDETERMINED for f in report.findings):
        return "evidence"
    return None


def change_ids(changes: list[dict[str, Any]]) -> list[str]:
    return [c["change_id"] for c in changes if c.get("change_id")]


def message(*, chain: str, token: str, attempt: int, reason: str, first_failure_at: str, ids: list[str],
            group: str | None, incident_key: dict[str, Any], original_event: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, "chain": chain, "token": token, "attempt": attempt, "reason": reason,
            "first_failure_at": first_failure_at, "change_ids": ids, "group": group,
            "incident_key": incident_key, "original_event": original_event}


def send(gw: Any, url: str, body: dict[str, Any]) -> None:
    delay = DELAYS_SECONDS[body["attempt"] - 1]
    gw.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body, separators=(",", ":")),
                                  DelaySeconds=delay)


def schedule_after_event(raw: dict[str, Any], incident: Any, report: Any, changes: list[dict[str, Any]],
                         settings: Any, gw: Any) -> str | None:
    """Open a follow-up chain for this incident and send its first message; returns the
    reason, or None when nothing was scheduled. Needs the table and the queue."""
    url = queue_url()
    if not url or not settings.table_name or incident.trigger not in FAILURE_TRIGGERS:
        return None
    reason = follow_up_reason(incident, report, changes)
    if reason is None:
        return None
    try:
        return _schedule(raw, incident, changes, settings, gw, url, reason)
    except Exception:  # noqa: BLE001 - bookkeeping never undoes the event's work
        log.exception("could not schedule the follow-up of event %s", incident.event_id)
        return None


def _schedule(raw, incident, changes, settings, gw, url: str, reason: str) -> str | None:
    from keyfix.idempotency import incident_key

    table = FollowUpTable(settings.table_name, gw.client("dynamodb"))
    key = incident_key(incident, mode=settings.mode)
    chain = chain_id(key)
    # The first failure is the event's own time; a placeholder time (AWS's doc examples) is now.
    first = incident.time if epoch_of(incident.time) is not None else iso(table.clock())
    ids = change_ids(changes)
    token = table.start_chain(chain, first_failure_at=first, reason=reason, digest=event_digest(raw),
                              change_ids=ids, group=incident.group_name)
    if token is None:
        log.info("a follow-up of this incident is open or ended within the day; not scheduling another")
        return None
    if incident.group_name and reason in ("applied", "unverified"):
        table.record_repair(incident.account, incident.region, incident.group_name, first_failure_at=first,
                            change_ids=ids, chain=chain)
    send(gw, url, message(chain=chain, token=token, attempt=1, reason=reason, first_failure_at=first, ids=ids,
                          group=incident.group_name, incident_key=key, original_event=raw))
    log.info("follow-up scheduled (%s): attempt 1 of %d in %d s", reason, MAX_ATTEMPTS, DELAYS_SECONDS[0])
    return reason
