"""After a check: the same remedies, notification window and idempotency as an event.

- Writes: `keyfix.remedies.apply.carry_out`, under the same safety rules, only when the
  run may write (`scan --mode apply`, the sweep in apply mode); never for a key-change
  (`proposals_only`: a person's change is not reverted, keyfix warns with the fix).
- Notifications: the finding fingerprint of `keyfix.pipeline._worth_notifying`
  (keyfix.store.finding_fingerprint: account x principal/group x key x cause) opens one
  window per finding, whichever of an event, the sweep or a key-change saw it first.
- Idempotency: a subject that has failed is handled under the incident key its event would
  have (keyfix.idempotency.incident_key of `Subject.failure`): a sweep and the event of the
  same failure run once, whichever comes first; the second gets the first's report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyfix.config import Settings
from keyfix.predict.check import Checked, check
from keyfix.predict.digest import Burst
from keyfix.predict.subjects import Subject
from keyfix.report import EventRef, Finding, FixStatus, Report, Trigger
from keyfix.resolve.gateway import AwsGateway

log = logging.getLogger("keyfix")


@dataclass
class Run:
    """What every subject of one scan, sweep or key-change shares."""

    settings: Settings
    gw: AwsGateway
    account: str
    region: str
    event: EventRef  # the report's event: the sweep's, the scan's or the change's
    store: Any = None  # keyfix.store Store/NullStore
    once: Callable[..., Any] | None = None  # keyfix.idempotency wrapper (sweep only)
    notify: bool = False
    writes: bool = True  # False: proposals only, whatever the mode (key-change)
    proposal_reason: str | None = None  # why, put on every fix left proposed
    applied_by: str = "keyfix"
    time_left: Callable[[], float] | None = None
    explain: Callable[[Finding, Subject], None] | None = None  # a last word on each finding
    # key-change: whether the change touches this subject; one it does not is left alone (no
    # report, no notification)
    relevant: Callable[[Checked], bool] | None = None
    # on-call's runtime switch in force (keyfix.switch.Switch.to_dict()): in every report
    switch: dict[str, Any] | None = None
    # what on-call should hear of, sent as one message at the end (keyfix.predict.digest)
    burst: Burst = field(default_factory=Burst)


def handle_subject(run: Run, subject: Subject) -> tuple[Report, Checked | None]:
    """Check one subject and act on it; returns its report (a duplicate's report when the
    same failure was handled within the idempotency window) and the check (None then)."""
    report = Report(event=run.event, mode=run.settings.mode, switch=run.switch)
    done: list[Checked] = []

    def act() -> dict[str, Any]:
        checked = check(subject, run.gw, trigger=run.event.trigger, event_id=run.event.id, source=run.event.source,
                        detail_type=run.event.detail_type, account=run.account, region=run.region)
        if run.relevant is not None and not run.relevant(checked):
            checked.findings = []
        done.append(checked)
        report.findings = checked.findings
        if not checked.findings:
            return report.to_dict()
        if run.explain is not None:
            for finding in checked.findings:
                run.explain(finding, subject)
        changes: list[dict[str, Any]] = []
        if run.writes:
            from keyfix.remedies.apply import carry_out

            changes = carry_out(checked.findings, checked.situation, run.settings, run.gw, store=run.store,
                                applied_by=run.applied_by, time_left=run.time_left)
        else:
            proposals_only(checked.findings, run.proposal_reason or "proposed only")
        if run.notify:  # the sweep: in Security Hub as an event's findings are (SecurityHub=true only)
            from keyfix.securityhub import publish_report

            publish_report(report, run.gw, account=run.account, region=run.region)
        if run.notify and run.settings.sns_topic_arn and (changes or not checked.healthy):
            run.burst.consider(report, changes, run.store, checked.incident)  # sent once, at the end
        return report.to_dict()

    if run.once is not None and subject.failure is not None:
        from keyfix.pipeline import _once_per_incident

        incident = subject.failure
        result = _once_per_incident(run.once, incident, report, run.settings, act)
        result.switch = run.switch
        return result, (done[0] if done else None)
    act()
    return report, done[0]


def proposals_only(findings: list[Finding], reason: str) -> None:
    """Every fix stays a proposal: `reason` on it, and a write blocker in case anything
    passes it to `carry_out` (keyfix.remedies.safety refuses a fix with blockers)."""
    for finding in findings:
        for fix in finding.fixes:
            if fix.status == FixStatus.PROPOSED:
                fix.reason = fix.reason or reason
                if reason not in fix.write_blockers:
                    fix.write_blockers.append(reason)


def is_sweep_trigger(trigger: Trigger) -> bool:
    return trigger in (Trigger.SCHEDULED_SWEEP, Trigger.KEY_CHANGE)
