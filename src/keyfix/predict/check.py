"""One subject, checked with the event path's own pieces: resolve -> diagnose.

A group is resolved exactly as a launch failure of it would be (keyfix.resolve: launch
template or configuration, mixed-instances overrides, AMI snapshots, block-device overrides,
the account's EBS default key, the service-linked role), from the DescribeAutoScalingGroups
entry already in hand. A subject that has failed is resolved from the Incident its event
would have produced; one that has not is a *prediction*: its findings carry `predicted=True`
and say "<group> will fail at its next launch: ...", with the same fixes and proofs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyfix.diagnose import diagnose
from keyfix.events.incident import Incident
from keyfix.predict.diagnosis_memo import diagnose_once
from keyfix.predict.subjects import Subject
from keyfix.report import Cause, Finding, Trigger
from keyfix.resolve import resolve
from keyfix.resolve.facts import Situation
from keyfix.resolve.gateway import AwsGateway

# Findings that say nothing is wrong with KMS for this subject.
HEALTHY_CAUSES = frozenset({Cause.NO_MISSING_PERMISSION, Cause.NOT_KMS})


@dataclass
class Checked:
    subject: Subject
    incident: Incident
    situation: Situation
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.cause in HEALTHY_CAUSES for f in self.findings)

    @property
    def broken(self) -> bool:
        """Fails or would fail, as far as keyfix can decide (not merely undetermined)."""
        return any(f.cause not in HEALTHY_CAUSES and f.cause != Cause.UNDETERMINED for f in self.findings)

    @property
    def undetermined(self) -> bool:
        return any(f.cause == Cause.UNDETERMINED for f in self.findings)


def synthetic_incident(subject: Subject, *, trigger: Trigger, event_id: str, source: str, detail_type: str,
                       account: str, region: str) -> Incident:
    """The Incident of a check nobody's failure asked for (scan, sweep, key-change)."""
    return Incident(trigger=trigger, event_id=event_id, source=source, detail_type=detail_type, account=account,
                    region=region, group_name=subject.name if subject.kind == "group" else None,
                    instance_id=subject.name if subject.kind == "instance" else None)


def check(subject: Subject, gw: AwsGateway, *, trigger: Trigger, event_id: str, source: str, detail_type: str,
          account: str, region: str) -> Checked:
    if subject.failure is not None:
        from dataclasses import replace

        incident = replace(subject.failure, event_id=event_id)
    else:
        incident = synthetic_incident(subject, trigger=trigger, event_id=event_id, source=source,
                                      detail_type=detail_type, account=account, region=region)
    situation = resolve(incident, gw, group=subject.group)
    # Groups on the same key and template are one question to the model (issue #14, P6).
    findings = diagnose_once(situation, (subject.name, subject.arn), gw.memo, diagnose)
    predicted = subject.failure is None
    for finding in findings:
        finding.resource = subject.arn or finding.resource
    if predicted:
        findings = [_as_prediction(f, subject, situation) for f in findings]
    return Checked(subject, incident, situation, findings)


def _as_prediction(finding: Finding, subject: Subject, situation: Situation) -> Finding:
    """A failing finding with nothing failed yet: predicted, and said so. A key keyfix could
    not read (another account's, usually) proves nothing about the next launch: without a
    failure there is no AWS record that it is denied, so the finding is undetermined."""
    if finding.cause in HEALTHY_CAUSES or finding.cause == Cause.UNDETERMINED:
        if finding.cause == Cause.UNDETERMINED:
            finding.predicted = True
            finding.explanation = f"Whether {subject.name} can launch could not be decided: {finding.explanation}"
        return finding
    key = situation.keys.get(finding.key_arn or "")
    if key is not None and key.state is None and finding.cause not in (Cause.KEY_NOT_FOUND,):
        unread = "; ".join(key.unreadable) or "DescribeKey gave nothing"
        return Finding(Cause.UNDETERMINED, finding.principal, finding.key_arn, finding.operations,
                       f"Whether {subject.name} can launch could not be decided: keyfix could not read key "
                       f"{finding.key_arn} ({unread}), and nothing has failed that would show it is denied.",
                       resource=finding.resource, predicted=True)
    finding.predicted = True
    finding.explanation = f"{subject.name} will fail at its next launch: {finding.explanation}"
    return finding
