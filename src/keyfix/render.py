"""Human-readable forms of a report: a subject line on-call can triage from, and a body."""

from __future__ import annotations

from keyfix.arns import Arn, ArnError
from keyfix.report import Finding, FixStatus, Report

SUBJECT_MAX = 100  # SNS: subjects up to 100 printable ASCII characters.


def _short_key(arn: str | None) -> str:
    if not arn:
        return "no key"
    try:
        key_id = Arn.parse(arn).resource_id
    except ArnError:
        return arn
    return key_id if len(key_id) <= 13 else key_id[:8] + "..."


def _short_resource(resource: str) -> str:
    """"group web-asg", "volume vol-0abc", "instance i-0abc": what on-call searches for."""
    if ":autoScalingGroupName/" in resource:
        return "group " + resource.rsplit("/", 1)[-1]
    tail = resource.rsplit("/", 1)[-1]
    for prefix, label in (("vol-", "volume"), ("i-", "instance"), ("snap-", "snapshot"), ("ami-", "image")):
        if tail.startswith(prefix):
            return f"{label} {tail}"
    return tail


def _short_principal(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "unknown principal"


def headline(finding: Finding) -> str:
    statuses = {f.status for f in finding.fixes}
    if FixStatus.APPLIED in statuses:
        verb = "applied"
    elif FixStatus.FAILED in statuses:
        verb = "FAILED"
    elif FixStatus.REFUSED in statuses:
        verb = "refused"
    elif statuses == {FixStatus.ALREADY_PRESENT}:
        verb = "already present"
    elif statuses:
        verb = "proposed"
    else:
        verb = "found"
    kinds = ", ".join(dict.fromkeys(str(f.kind) for f in finding.fixes)) or str(finding.cause)
    return f"{verb} {kinds} for {_short_principal(finding.principal)} on key {_short_key(finding.key_arn)}"


def subject(report: Report) -> str:
    if not report.findings:
        text = f"[keyfix] {report.event.trigger}: nothing to do"
    else:
        first = report.findings[0]
        where = f" ({_short_resource(first.resource)})" if first.resource else ""
        more = f" +{len(report.findings) - 1} more" if len(report.findings) > 1 else ""
        text = f"[keyfix] {headline(first)}{where}{more}"
    text = text.encode("ascii", "replace").decode()
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def report_text(report: Report) -> str:
    ev = report.event
    lines = [f"keyfix {report.mode} | {ev.trigger} | {ev.detail_type or '-'} from {ev.source or '-'} | event {ev.id}"]
    if report.duplicate_of is not None:
        # The first run's findings follow: a duplicate never reads as "nothing found".
        handled_at = getattr(report, "handled_at", None) or "an unknown time"
        lines.append(f"Duplicate of event {report.duplicate_of}, handled at {handled_at}; its findings:")
        if not report.findings:
            lines.append("No finding: the first run found nothing to do.")
    elif not report.findings:
        lines.append("No finding: the event is not one keyfix acts on.")
    for i, f in enumerate(report.findings, 1):
        lines += ["", f"Finding {i}: {f.cause}"]
        lines.append(f"  principal : {f.principal or '-'}")
        lines.append(f"  key       : {f.key_arn or '-'}")
        if f.resource:
            lines.append(f"  resource  : {f.resource}")
        if f.operations:
            lines.append(f"  operations: {', '.join(f.operations)}")
        lines.append(f"  why       : {f.explanation}")
        for fix in f.fixes:
            lines.append(f"  fix [{fix.status}] {fix.kind} in account {fix.target_account} on {fix.target}")
            if fix.reason:
                lines.append(f"      reason: {fix.reason}")
            for command in fix.cli:
                lines.append(f"      $ {command}")
    return "\n".join(lines)
