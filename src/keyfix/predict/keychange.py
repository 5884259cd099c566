"""A change that can break a group before it fails (issue #11, item 4): check only the groups
it touches and warn on-call, naming who made it. Proposals only.

    key (PutKeyPolicy, DisableKey, ScheduleKeyDeletion, RevokeGrant, RetireGrant)
        -> the groups whose launches use the key
    launch template (CreateLaunchTemplateVersion, ModifyLaunchTemplate) -> the groups launching from it
    group (CreateAutoScalingGroup, UpdateAutoScalingGroup) -> that group
    EBS default key (ModifyEbsDefaultKmsKeyId) -> the groups whose launches use the current default key

Every group is resolved as for a launch failure (keyfix.predict.check) with one gateway, so a
key shared by many groups is read once; a group is kept only if the change touches it
(`Run.relevant`). The report is one keyfix.report/1 for the change (trigger `key-change`)
holding the findings of every group it breaks, each `predicted` and saying "<who> made
<change> at <time>: this change will break <group> at its next launch: ...".

**A person's change is never reverted automatically**, even in apply mode on an opted-in
key: every fix stays `proposed`, with a write blocker so that `carry_out` refuses it should
anything pass it there (keyfix.remedies.safety). keyfix's own writes are excluded by the rule
(IAM path /keyfix/) and again here. A change keyfix cannot relate to any group (a key no
group uses, a RetireGrant naming only a grant token) ends in a report without findings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from keyfix.config import Settings
from keyfix.events.incident import Incident
from keyfix.events.keychange import Change, KeyChangeEvent, change_of
from keyfix.predict.act import Run
from keyfix.predict.check import Checked
from keyfix.predict.subjects import Subject
from keyfix.predict.sweep import Sweeper
from keyfix.report import Finding, Report

log = logging.getLogger("keyfix")


def handle_change(raw: Any, incident: Incident, report: Report, settings: Settings, gw: Any, *, store: Any = None,
                  time_left: Callable[[], float] | None = None, applied_by: str = "keyfix") -> Report:
    change = change_of(KeyChangeEvent.model_validate(raw))  # parse() validated it already
    if change.by_keyfix:
        log.info("key-change %s made by keyfix itself (%s): not checked", change.event_name, change.who)
        return report
    gw.home_account()
    account = gw.account or incident.account
    region = incident.region or gw.default_region()
    gw.region = gw.region or region
    relevant = _relevance(change, gw, region)
    if relevant is None:
        log.info("key-change %s by %s names nothing keyfix can relate to a group", change.event_name, change.who)
        return report
    reason = (f"proposed only: {change.who} made this change ({change.event_name}); keyfix never reverts a "
              "person's change automatically, even in apply mode")
    run = Run(settings=settings, gw=gw, account=account, region=region, event=report.event, store=store,
              notify=False, writes=False, proposal_reason=reason, applied_by=applied_by, time_left=time_left,
              explain=lambda finding, subject: _say_who(finding, subject, change), relevant=relevant)
    names = [change.group] if change.group else None
    outcome = Sweeper(run, names=names, include_instances=False, read_activities=False).sweep()
    report.findings = [f for r in outcome.reports for f in r.findings]
    for text in outcome.unchecked + [f"group {n} not found" for n in outcome.unknown_groups]:
        log.warning("key-change %s: not checked: %s", change.event_name, text)
    from keyfix.securityhub import publish_report

    publish_report(report, gw, account=account, region=region)  # SecurityHub=true only; never raises
    if settings.sns_topic_arn:  # every group it breaks in one message (keyfix.predict.digest)
        for group_report in outcome.reports:
            if group_report.findings:
                group_report.switch = report.switch
                run.burst.consider(group_report, [], store, incident)
        run.burst.send(settings.sns_topic_arn, gw, account, f"key change {change.event_name} by {change.who}")
    return report


def _relevance(change: Change, gw: Any, region: str) -> Callable[[Checked], bool] | None:
    """Which checked groups the change touches; None when it names nothing keyfix can follow."""
    if change.group:
        return lambda checked: True
    if change.key_refs:
        from keyfix.resolve.kms import read_key

        arns = {read_key(gw, ref, region).arn for ref in change.key_refs}
        return lambda checked: bool(arns & set(checked.situation.keys))
    if change.templates:
        wanted = set(change.templates)
        return lambda checked: _uses_template(checked.subject, wanted)
    if change.ebs_default:
        from keyfix.resolve.ec2 import default_ebs_key
        from keyfix.resolve.kms import read_key

        notes: list[str] = []
        ref = default_ebs_key(gw, region, notes)
        if ref is None:
            return None
        arn = read_key(gw, ref, region).arn
        return lambda checked: arn in checked.situation.keys
    return None


def _uses_template(subject: Subject, wanted: set[str]) -> bool:
    from keyfix.resolve.autoscaling import launch_sources

    for source in launch_sources(subject.group or {}):
        spec = source.template or {}
        if spec.get("LaunchTemplateId") in wanted or spec.get("LaunchTemplateName") in wanted:
            return True
    return False


def _say_who(finding: Finding, subject: Subject, change: Change) -> None:
    prefix = f"{subject.name} will fail at its next launch: "
    when = f" at {change.when}" if change.when else ""
    if finding.explanation.startswith(prefix):
        finding.explanation = (f"{change.who} made {change.event_name}{when}: this change will break "
                               f"{subject.name} at its next launch: " + finding.explanation[len(prefix):])
