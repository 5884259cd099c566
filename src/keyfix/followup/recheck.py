"""One follow-up message (trigger `follow-up`): validate it, settle keyfix's writes, re-check,
then confirm recovery, schedule the next attempt, escalate once, or stop.

Validation, before anything is read or written: the record came from keyfix's follow-up
queue; the body is a well-formed `keyfix.followup/1` (keyfix.events.followup); its original
event parses as a failure keyfix follows up, and its incident key and chain id are that
event's; and the table's chain record takes this attempt (token, attempt, event digest, not
handled, not ended: keyfix.followup.state.claim_attempt). Anything else is reported with one
`undetermined` finding saying why, and changes nothing. From then on the chain's own record
(first failure, change ids, reason) is used, never the message's copy.

The re-check runs the same pipeline on the original event. After a fix it runs in `propose`
mode and notifies nothing itself: keyfix never writes twice for one incident (a statement
that vanished since is someone's edit, not keyfix's to fight); the follow-up then decides:

- a group: its scaling activities since the repair (DescribeScalingActivities,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html).
  A successful launch is the recovery. A KMS launch failure that started after the
  consistency window (schedule.CONSISTENCY_WINDOW_SECONDS), or any such failure still the
  latest at the last attempt, escalates. Otherwise the next attempt, or a quiet stop at the
  last one (the Launch Successful rule still confirms a later recovery).
- anything else: a write settled `failed`, or a re-diagnosis that still finds a missing
  permission, escalates; otherwise the chain ends.

After an `undetermined` EC2 finding (reason `evidence`) the re-check runs in the configured
mode, as the first run would have with the CloudTrail record in hand, and notifies when it
settles; a fix it applies turns the chain into an after-fix chain with the attempts left.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from keyfix.followup.schedule import (
    CONSISTENCY_WINDOW_SECONDS,
    FAILURE_TRIGGERS,
    follow_up_reason,
    message,
    queue_url,
    send,
)
from keyfix.followup.state import FollowUpTable, chain_id, epoch_of, event_digest
from keyfix.utc import iso
from keyfix.report import Cause, EventRef, Finding, Mode, Report, Trigger

log = logging.getLogger("keyfix")

SOURCE = "keyfix"
DETAIL_TYPE = "keyfix follow-up"
# Findings that mean "nothing is missing now" (or nothing keyfix could act on).
SETTLED_CAUSES = {Cause.NO_MISSING_PERMISSION, Cause.NOT_KMS}


class Ignored(Exception):
    """The message is not one keyfix may act on; the text says why."""


class _Changes:
    """An observer of the re-check's pipeline run (pipeline.process_event's `observer`)."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    def record(self, report: Report, changes: list[dict[str, Any]]) -> None:
        self.changes = list(changes)


def handle_batch(raw: dict[str, Any], settings: Any, gw: Any = None, *, applied_by: str = "keyfix",
                 time_left: Any = None) -> Report:
    """The report of a batch from the follow-up queue. The template sends one record per
    batch (BatchSize 1); a larger batch is handled record by record and reported as one
    report holding every record's findings.

    On-call's runtime switch (keyfix.switch) holds here as for an event: `pause` handles
    nothing (no table, queue or AWS call; the message is consumed and its chain stays where it
    was, so the incident is not followed up: the README's runbook says so); `propose` runs the
    re-check in propose mode, whatever Mode says. Every report carries `switch`."""
    from keyfix.switch import current_switch

    switch = current_switch()  # cached: the handler's log key read it already
    if switch.paused:
        log.warning("paused by the runtime switch %s: follow-up %s not handled", switch.source, _batch_id(raw))
        report = Report(EventRef(_batch_id(raw), SOURCE, DETAIL_TYPE, Trigger.FOLLOW_UP), settings.mode)
    else:
        settings = switch.apply(settings)
        report = _handle_batch(raw, settings, gw, applied_by=applied_by, time_left=time_left,
                               switch=switch.to_dict())
    report.switch = switch.to_dict()
    return report


def _handle_batch(raw: dict[str, Any], settings: Any, gw: Any, *, applied_by: str, time_left: Any,
                  switch: dict[str, Any] | None) -> Report:
    from pydantic import ValidationError

    from keyfix.events.followup import parse_batch

    try:
        batch = parse_batch(raw)
    except ValidationError as exc:
        return _ignored_report(_batch_id(raw), settings, f"not an SQS batch Lambda would send ({_first(exc)})")
    if gw is None:
        from keyfix.resolve.gateway import AwsGateway

        gw = AwsGateway(region=batch.Records[0].awsRegion or None)
    reports = [handle_record(record, settings, gw, applied_by=applied_by, time_left=time_left, switch=switch)
               for record in batch.Records]
    if len(reports) == 1:
        return reports[0]
    merged = Report(EventRef(",".join(r.event.id for r in reports), SOURCE, DETAIL_TYPE, Trigger.FOLLOW_UP),
                    settings.mode, findings=[f for r in reports for f in r.findings])
    merged.recovery = next((r.recovery for r in reports if r.recovery), None)
    return merged


def handle_record(record: Any, settings: Any, gw: Any, *, applied_by: str = "keyfix", time_left: Any = None,
                  table: FollowUpTable | None = None, switch: dict[str, Any] | None = None) -> Report:
    """`switch`: the runtime switch in force (keyfix.switch.Switch.to_dict()), already applied
    to `settings`; in the report from the start, so whatever is told carries it."""
    report = Report(EventRef(record.messageId, SOURCE, DETAIL_TYPE, Trigger.FOLLOW_UP), settings.mode, switch=switch)
    try:
        msg, incident = _validated(record, settings)
        table = table or FollowUpTable(settings.table_name, gw.client("dynamodb"))
        chain = table.claim_attempt(msg.chain, msg.token, msg.attempt, event_digest(msg.original_event))
        if chain is None:
            raise Ignored("it matches no open follow-up keyfix scheduled (forged, stale, or already handled)")
    except Ignored as why:
        return _ignored(report, str(why))
    return _Recheck(report, msg, incident, chain, table, settings, gw, applied_by, time_left).run()


def _validated(record: Any, settings: Any) -> tuple[Any, Any]:
    from pydantic import ValidationError

    from keyfix.events import EventError, parse
    from keyfix.events.followup import FollowUpMessage
    from keyfix.idempotency import incident_key

    url = queue_url()
    if not url or not _same_queue(url, record.eventSourceARN):
        raise Ignored("it did not come from keyfix's follow-up queue")
    if not settings.table_name:
        raise Ignored("keyfix has no table to check it against (KEYFIX_TABLE_NAME is not set)")
    try:
        msg = FollowUpMessage.model_validate_json(record.body)
    except ValidationError as exc:
        raise Ignored(f"not a keyfix.followup/1 message ({_first(exc)})") from None
    try:
        incident = parse(msg.original_event)
    except EventError as exc:
        raise Ignored(f"its original event is malformed: {str(exc)[:300]}") from None
    if incident.trigger not in FAILURE_TRIGGERS:
        raise Ignored(f"its original event ({incident.trigger}) is not a failure keyfix follows up")
    # The chain was opened under the mode its first run had, which the runtime switch may have
    # forced to propose then or may force now: the key must be the event's under one of them.
    if chain_id(msg.incident_key) != msg.chain or \
            all(chain_id(incident_key(incident, mode=str(mode))) != msg.chain for mode in Mode):
        raise Ignored("its incident key is not its original event's")
    if (msg.group or None) != (incident.group_name or None):
        raise Ignored("its group is not its original event's")
    return msg, incident


class _Recheck:
    """One claimed attempt of one chain."""

    def __init__(self, report: Report, msg: Any, incident: Any, chain: dict[str, Any], table: FollowUpTable,
                 settings: Any, gw: Any, applied_by: str, time_left: Any) -> None:
        self.report, self.msg, self.incident, self.chain = report, msg, incident, chain
        self.table, self.settings, self.gw = table, settings, gw
        self.applied_by, self.time_left = applied_by, time_left
        self.attempt = msg.attempt
        self.reason = chain.get("reason") or msg.reason
        self.change_ids: list[str] = list(chain.get("change_ids") or [])
        self.history: list[str] = [f"first failure at {chain.get('first_failure_at')} (event {incident.event_id}, "
                                   f"{incident.trigger})"]

    def run(self) -> Report:
        from keyfix.events.followup import MAX_ATTEMPTS
        from keyfix.store import store_from_settings

        self.max_attempts = MAX_ATTEMPTS
        self.store = store_from_settings(self.settings, self.gw.client)
        self.history += self._settle()
        seen = self._activities() if self._group_case() else None
        recheck, changes = self._rediagnose()
        self.report.findings = recheck.findings
        self.history.append(f"follow-up attempt {self.attempt} of {MAX_ATTEMPTS} at {iso(self.table.clock())}: "
                            "re-diagnosis " + (", ".join(sorted({str(f.cause) for f in recheck.findings})) or "none"))
        if self.reason == "evidence":
            self._after_evidence(recheck, changes)
        elif self._group_case():
            self._after_group_fix(seen)
        else:
            self._after_other_fix()
        return self.report

    # -- steps ------------------------------------------------------------------------------

    def _group_case(self) -> bool:
        return bool(self.incident.group_name) and self.reason in ("applied", "unverified")

    def _settle(self) -> list[str]:
        """Settle this chain's unverified writes by reading (remedies.settle), and describe each."""
        from keyfix.remedies.settle import _in_force

        lines, self.settled = [], {}
        for change_id in self.change_ids:
            record = self.store.get_change(change_id)
            if record is None:
                lines.append(f"keyfix change {change_id}: no audit record")
                self.settled[change_id] = "unknown"
                continue
            status = record.get("status")
            if not record.get("verified"):
                # Shown for the history, never acted on: anyone who can write the table could have written it.
                lines.append(f"keyfix change {change_id}: {record.get('kind')} on {record.get('target')}, made "
                             f"{record.get('applied_at')}, {status} (record not verified: {record.get('verify_error')})")
                self.settled[change_id] = "unknown"
                continue
            if status in ("unverified", "intent"):
                status, details = _in_force(record, self.gw)
                try:
                    self.store.record_outcome(change_id, status, details)
                except Exception:  # noqa: BLE001 - the record stays as it was; said below
                    log.exception("could not record the settled outcome of change %s", change_id)
            self.settled[change_id] = status
            lines.append(f"keyfix change {change_id}: {record.get('kind')} on {record.get('target')}, "
                         f"made {record.get('applied_at')}, now {status}")
        return lines

    def _activities(self) -> dict[str, Any]:
        repair = self.table.get_repair(self.incident.account, self.incident.region, self.incident.group_name)
        self.repair = repair or {}
        since = epoch_of(self.repair.get("repaired_at")) or 0.0
        from keyfix.followup.activities import launches_since

        seen = launches_since(self.gw, self.incident.region, self.incident.group_name, since)
        self.history += seen["notes"]
        return seen

    def _rediagnose(self) -> tuple[Report, list[dict[str, Any]]]:
        from keyfix.pipeline import process_event

        settings = self.settings
        if self.reason != "evidence":
            settings = replace(settings, mode=Mode.PROPOSE)
        settings = replace(settings, sns_topic_arn=None)  # the follow-up notifies on its own account
        observer = _Changes()
        recheck = process_event(self.msg.original_event, settings, self.gw, observer, store=self.store,
                                applied_by=self.applied_by, time_left=self.time_left, follow_up=False)
        return recheck, observer.changes

    def _after_evidence(self, recheck: Report, changes: list[dict[str, Any]]) -> None:
        reason = follow_up_reason(self.incident, recheck, changes)
        if reason in ("applied", "unverified"):
            ids = [c["change_id"] for c in changes if c.get("change_id")]
            self._notify_findings()
            self._continue(reason=reason, change_ids=ids) or self._end("settled: a fix was applied")
            return
        if reason == "evidence":  # still undetermined
            if self._continue():
                return
            self._end("still undetermined after the last attempt")
            return
        self._notify_findings()
        self._end("settled")

    def _after_group_fix(self, seen: dict[str, Any]) -> None:
        from keyfix.followup.recovery import announce, confirm

        if self.repair.get("recovered_at"):
            self.history.append(f"the group launched again at {self.repair['recovered_at']} (recorded earlier)")
            self._end("recovered")
            return
        if seen["success_at"] is not None:
            launched = iso(seen["success_at"])
            self.report.recovery = confirm(self.table, self.incident.account, self.incident.region,
                                           self.incident.group_name, launched, self.repair or None)
            if self.report.recovery is not None:
                announce(self.gw, self.settings, self.report, self.incident.account, self.incident.group_name,
                         self.repair)
            self._end("recovered")
            return
        repaired = epoch_of(self.repair.get("repaired_at")) or 0.0
        latest = seen["latest_failure_at"]
        failed_writes = [i for i, s in self.settled.items() if s == "failed"]
        past_window = latest is not None and latest >= repaired + CONSISTENCY_WINDOW_SECONDS
        last = self.attempt >= self.max_attempts
        if past_window or (latest is not None and last) or failed_writes:
            self._escalate(f"Auto Scaling group {self.incident.group_name}")
            return
        if self._continue():
            return
        self._end("no launch of the group seen since the fix")

    def _after_other_fix(self) -> None:
        failed_writes = [i for i, s in self.settled.items() if s == "failed"]
        missing = [f for f in self.report.findings if f.cause not in SETTLED_CAUSES]
        if failed_writes or missing:
            self._escalate(_subject_of(self.incident))
            return
        if any(s in ("unverified", "intent") for s in self.settled.values()) and self._continue():
            return
        self._end("the fix is in force")

    # -- chain moves ------------------------------------------------------------------------

    def _continue(self, reason: str | None = None, change_ids: list[str] | None = None) -> bool:
        """Schedule the next attempt, if any is left; True when one was sent."""
        if self.attempt >= self.max_attempts:
            return False
        url = queue_url()
        if not url or not self.table.advance(self.msg.chain, self.attempt, change_ids, reason):
            return False
        ids = self.change_ids if change_ids is None else change_ids
        body = message(chain=self.msg.chain, token=self.msg.token, attempt=self.attempt + 1,
                       reason=reason or self.reason, first_failure_at=self.chain.get("first_failure_at") or "",
                       ids=ids, group=self.incident.group_name, incident_key=self.msg.incident_key,
                       original_event=self.msg.original_event)
        if reason in ("applied", "unverified") and self.incident.group_name:
            self.table.record_repair(self.incident.account, self.incident.region, self.incident.group_name,
                                     first_failure_at=body["first_failure_at"], change_ids=ids, chain=self.msg.chain)
        try:
            send(self.gw, url, body)
        except Exception:  # noqa: BLE001 - logged; the chain then ends here
            log.exception("could not send follow-up attempt %d", self.attempt + 1)
            self.table.end_chain(self.msg.chain, "could not schedule the next attempt")
            return False
        log.info("follow-up attempt %d of %d scheduled", self.attempt + 1, self.max_attempts)
        return True

    def _end(self, outcome: str) -> None:
        self.table.end_chain(self.msg.chain, outcome)
        log.info("follow-up ended: %s", outcome)

    def _escalate(self, what: str) -> None:
        """Once per chain (the table's record), and the chain ends: keyfix stops here."""
        from keyfix.followup.notices import escalation_text, publish

        first = self.table.mark_escalated(self.msg.chain)
        self._end("escalated")
        if not first:
            return
        subject, text = escalation_text(what, self.history, self.report)
        publish(self.gw, self.settings.sns_topic_arn, subject, text, self.report, self.incident.account,
                "escalation")

    def _notify_findings(self) -> None:
        """A settled finding of an evidence chain is news: told once (the chain then ends or
        turns into an after-fix chain)."""
        from keyfix.notify import publish

        if self.settings.sns_topic_arn and any(f.cause != Cause.NOT_KMS for f in self.report.findings):
            publish(self.report, self.settings.sns_topic_arn, self.gw, account=self.incident.account)


# -- helpers --------------------------------------------------------------------------------

def _ignored(report: Report, why: str) -> Report:
    log.warning("follow-up message ignored: %s", why)
    report.findings = [Finding(Cause.UNDETERMINED, None, None, [],
                               f"Follow-up message ignored, nothing was changed: {why}.")]
    return report


def _ignored_report(event_id: str, settings: Any, why: str) -> Report:
    return _ignored(Report(EventRef(event_id, SOURCE, DETAIL_TYPE, Trigger.FOLLOW_UP), settings.mode), why)


def _batch_id(raw: Any) -> str:
    try:
        value = raw["Records"][0]["messageId"]
    except (KeyError, IndexError, TypeError):
        return ""
    return value if isinstance(value, str) else ""


def _first(exc: Any) -> str:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if not errors:
        return "invalid"
    err = errors[0]
    where = ".".join(str(p)[:60] for p in err["loc"]) or "(message)"
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"{where}: {err['msg']}{more}"


def _same_queue(url: str, arn: str) -> bool:
    """Queue URL https://sqs.REGION.amazonaws.com/ACCOUNT/NAME names the queue arn:P:sqs:REGION:ACCOUNT:NAME."""
    path = [p for p in url.split("/") if p]
    parts = arn.split(":") if isinstance(arn, str) else []
    return len(path) >= 2 and len(parts) == 6 and parts[2] == "sqs" and (parts[4], parts[5]) == (path[-2], path[-1])


def _subject_of(incident: Any) -> str:
    if incident.instance_id:
        return f"instance {incident.instance_id}"
    if incident.volume_id:
        return f"volume {incident.volume_id}"
    caller = getattr(incident.caller, "arn", None)
    return caller or json.dumps(incident.key_arns)
