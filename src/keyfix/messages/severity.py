"""How urgent a report is, in Security Hub's five labels (so an ASFF import needs no mapping):
https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html#Severity

    CRITICAL       a write failed or is unverified (keyfix may have left a change half-known),
                   or keyfix itself hit an internal error
    HIGH           something failed and keyfix did not repair it: a proposed or refused fix,
                   or an undetermined finding (nobody knows yet what is missing)
    MEDIUM         a prediction: nothing has failed yet (sweep, key change)
    LOW            repaired: every fix was applied or was already present
    INFORMATIONAL  nothing to do (no finding, not about KMS, nothing missing, a recovery)

A report's severity is the highest of its findings'.
"""

from __future__ import annotations

from keyfix.report import Cause, Finding, FixStatus, Report

ORDER = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
QUIET_CAUSES = {Cause.NOT_KMS, Cause.NO_MISSING_PERMISSION}


def finding_severity(finding: Finding) -> str:
    statuses = {fix.status for fix in finding.fixes}
    if statuses & {FixStatus.FAILED, FixStatus.UNVERIFIED}:
        return "CRITICAL"
    if finding.cause == Cause.UNDETERMINED:
        from keyfix.safety_net import INTERNAL_ERROR

        return "CRITICAL" if finding.explanation.startswith(INTERNAL_ERROR) else "HIGH"
    if finding.cause in QUIET_CAUSES:
        return "INFORMATIONAL"
    if statuses and statuses <= {FixStatus.APPLIED, FixStatus.ALREADY_PRESENT}:
        return "LOW"
    if finding.predicted:
        return "MEDIUM"
    return "HIGH"


def report_severity(report: Report) -> str:
    return max((finding_severity(f) for f in report.findings), key=ORDER.index, default="INFORMATIONAL")


def highest(labels) -> str:
    return max(labels, key=ORDER.index, default="INFORMATIONAL")
