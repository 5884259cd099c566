"""Human-readable forms of a report: a subject line on-call can triage from, and a body."""

from __future__ import annotations

from keyfix.arns import Arn, ArnError, group_name_of
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
    group = group_name_of(resource)
    if group is not None:
        return "group " + group
    tail = resource.rsplit("/", 1)[-1]
    for prefix, label in (("vol-", "volume"), ("i-", "instance"), ("snap-", "snapshot"), ("ami-", "image")):
        if tail.startswith(prefix):
            return f"{label} {tail}"
    return tail


def _short_principal(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "unknown principal"


_VERBS = (  # the status a headline reports, most urgent first
    (FixStatus.FAILED, "FAILED"),
    (FixStatus.UNVERIFIED, "UNVERIFIED"),
    (FixStatus.APPLIED, "applied"),
    (FixStatus.REFUSED, "refused"),
    (FixStatus.PROPOSED, "proposed"),
    (FixStatus.ALREADY_PRESENT, "already present"),
)


def _verb_and_kinds(finding: Finding) -> tuple[str, list[str]]:
    """The most urgent status and only the fix kinds that have it: a run that applied a grant
    and proposed the owner's statements reads "applied grant", not every kind it touched."""
    for status, verb in _VERBS:
        kinds = [str(f.kind) for f in finding.fixes if f.status == status]
        if kinds:
            return verb, list(dict.fromkeys(kinds))
    return "found", [str(finding.cause)]


def headline(finding: Finding) -> str:
    verb, kinds = _verb_and_kinds(finding)
    prefix = "predicted: " if finding.predicted and verb != "applied" else ""
    return f"{prefix}{verb} {', '.join(kinds)} for {_short_principal(finding.principal)} on key {_short_key(finding.key_arn)}"


def _ascii(text: str) -> str:
    # SNS subjects: printable ASCII, no line breaks or control characters.
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def subject(report: Report) -> str:
    """At most SUBJECT_MAX characters. What on-call searches for is kept: the verb, the group
    (or instance, volume), then the principal; the key and the list of fix kinds give way
    first. Only a group name longer than the whole subject can hold is ever cut."""
    if not report.findings:
        return _cut(_ascii(f"[keyfix] {report.event.trigger}: nothing to do"), SUBJECT_MAX)
    first = report.findings[0]
    verb, kinds = _verb_and_kinds(first)
    if report.event.trigger == "recovery":
        verb = "recovered"
    prefix = "predicted: " if first.predicted and verb != "applied" else ""
    where = f" ({_short_resource(first.resource)})" if first.resource else ""
    more = f" +{len(report.findings) - 1} more" if len(report.findings) > 1 else ""
    principal = _short_principal(first.principal)
    key = f" on key {_short_key(first.key_arn)}"
    kind_text = ", ".join(kinds)
    def compose() -> str:
        return _ascii(f"[keyfix] {prefix}{verb} {kind_text}{principal}{key}{where}{more}")

    principal = f" for {principal}"
    for step in range(5):
        if step == 1:
            key = ""
        elif step == 2:
            kind_text = kinds[0] + (" +" if len(kinds) > 1 else "")
        elif step == 3:  # the principal gets whatever room is left, if that says anything
            room = SUBJECT_MAX - (len(compose()) - len(principal))
            principal = _cut(principal, room) if room >= 16 else ""
        elif step == 4:
            principal = ""
        text = compose()
        if len(text) <= SUBJECT_MAX:
            return text
    # Still too long: the group name alone nearly fills the subject. Keep the name whole when
    # it fits after "[keyfix] <verb>", else cut it (the body and attribute `group` carry it).
    text = _ascii(f"[keyfix] {prefix}{verb}{where}{more}")
    return _cut(text, SUBJECT_MAX)


def _line(value: object) -> str:
    """One line of text whatever a value holds: event text (an encryption context, a group
    name) can carry newlines and terminal controls, which must never start a line of their
    own in what on-call reads (a fake "$ command" above the real ones). Non-printable
    characters are shown escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def report_text(report: Report) -> str:
    ev = report.event
    L = _line  # noqa: N806 - every value below goes through it
    lines = [f"keyfix {L(report.mode)} | {L(ev.trigger)} | {L(ev.detail_type or '-')} from {L(ev.source or '-')} "
             f"| event {L(ev.id)}"]
    if report.duplicate_of is not None:
        # The first run's findings follow: a duplicate never reads as "nothing found".
        handled_at = getattr(report, "handled_at", None) or "an unknown time"
        lines.append(f"Duplicate of event {L(report.duplicate_of)}, handled at {L(handled_at)}; its findings:")
        if not report.findings:
            lines.append("No finding: the first run found nothing to do.")
    elif not report.findings:
        lines.append("No finding: the event is not one keyfix acts on.")
    for i, f in enumerate(report.findings, 1):
        lines += ["", f"Finding {i}: {L(f.cause)}"]
        lines.append(f"  principal : {L(f.principal or '-')}")
        lines.append(f"  key       : {L(f.key_arn or '-')}")
        if f.resource:
            lines.append(f"  resource  : {L(f.resource)}")
        if f.operations:
            lines.append(f"  operations: {L(', '.join(f.operations))}")
        lines.append(f"  why       : {L(f.explanation)}")
        for fix in f.fixes:
            lines.append(f"  fix [{L(fix.status)}] {L(fix.kind)} in account {L(fix.target_account)} on {L(fix.target)}")
            if fix.reason:
                lines.append(f"      reason: {L(fix.reason)}")
            for command in fix.cli:
                lines.append(f"      $ {L(command)}")
    return "\n".join(lines)
