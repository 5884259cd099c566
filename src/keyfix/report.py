"""The report every run produces (keyfix.report/1; schema src/keyfix/schemas/report.schema.json, prose docs/contract.md).

A public interface: on-call tooling parses it and it is the JSON part of the SNS message.
Fields may be added, never renamed or removed. `schemas/report.schema.json` is the truth;
tests validate every report against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA = "keyfix.report/1"


class Trigger(StrEnum):
    ASG_LAUNCH_FAILURE = "asg-launch-failure"
    KMS_ACCESS_DENIED = "kms-access-denied"
    EBS_VOLUME_FAILURE = "ebs-volume-failure"
    EC2_LAUNCH_FAILURE = "ec2-launch-failure"
    SCHEDULED_SWEEP = "scheduled-sweep"
    UNRECOGNISED = "unrecognised"
    KEY_CHANGE = "key-change"
    FOLLOW_UP = "follow-up"
    RECOVERY = "recovery"


class Cause(StrEnum):
    SLR_NOT_IN_KEY_POLICY = "slr-not-in-key-policy"
    SLR_GRANT_MISSING = "slr-grant-missing"
    ACCOUNT_NOT_IN_KEY_POLICY = "account-not-in-key-policy"
    PRINCIPAL_NOT_IN_KEY_POLICY = "principal-not-in-key-policy"
    IDENTITY_POLICY_MISSING = "identity-policy-missing"
    EXPLICIT_DENY = "explicit-deny"
    KEY_DISABLED = "key-disabled"
    KEY_PENDING_DELETION = "key-pending-deletion"
    KEY_PENDING_IMPORT = "key-pending-import"
    KEY_NOT_FOUND = "key-not-found"
    AWS_MANAGED_KEY_CROSS_ACCOUNT = "aws-managed-key-cross-account"
    SERVICE_LINKED_ROLE_MISSING = "service-linked-role-missing"
    STALE_PRINCIPAL = "stale-principal"
    NOT_KMS = "not-kms"
    NO_MISSING_PERMISSION = "no-missing-permission"
    UNDETERMINED = "undetermined"


class FixKind(StrEnum):
    KEY_POLICY_STATEMENT = "key-policy-statement"
    GRANT = "grant"
    IDENTITY_POLICY = "identity-policy"
    KEY_STATE = "key-state"
    RE_ENCRYPT = "re-encrypt"
    CREATE_SERVICE_LINKED_ROLE = "create-service-linked-role"


class FixStatus(StrEnum):
    APPLIED = "applied"
    PROPOSED = "proposed"
    ALREADY_PRESENT = "already-present"
    REFUSED = "refused"
    FAILED = "failed"
    # keyfix sent the write but could not confirm its outcome (the answer was lost or the
    # read-back was denied); the audit record exists and a later check settles it.
    UNVERIFIED = "unverified"


class Mode(StrEnum):
    PROPOSE = "propose"
    APPLY = "apply"


@dataclass
class Fix:
    """One change that would make the failed request succeed.

    `document` is the exact statement(s), grant parameters or identity policy; `cli` the
    ready-to-run AWS CLI commands, to be run in `target_account`.
    """

    kind: FixKind
    status: FixStatus
    target_account: str
    target: str
    document: Any = None
    cli: list[str] = field(default_factory=list)
    reason: str | None = None
    # Why `apply` must not carry this fix out even if every safety rule passes (the decision
    # rests on a reading AWS's pages do not decide). Not part of the report; `reason` says it.
    write_blockers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "status": str(self.status),
            "target_account": self.target_account,
            "target": self.target,
            "document": self.document,
            "cli": list(self.cli),
            "reason": self.reason,
        }


@dataclass
class Finding:
    """What keyfix concluded for one principal x key."""

    cause: Cause
    principal: str | None
    key_arn: str | None
    operations: list[str]
    explanation: str
    fixes: list[Fix] = field(default_factory=list)
    resource: str | None = None
    predicted: bool = False  # nothing has failed yet: keyfix predicts the failure

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": str(self.cause),
            "principal": self.principal,
            "key_arn": self.key_arn,
            "resource": self.resource,
            "operations": list(self.operations),
            "explanation": self.explanation,
            "fixes": [f.to_dict() for f in self.fixes],
            "predicted": self.predicted,
        }


@dataclass
class EventRef:
    id: str
    source: str
    detail_type: str
    trigger: Trigger

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "detail_type": self.detail_type,
            "trigger": str(self.trigger),
        }


@dataclass
class Report:
    event: EventRef
    mode: Mode
    findings: list[Finding] = field(default_factory=list)
    # The id of the event that handled the same incident first; its findings are these.
    duplicate_of: str | None = None
    # {"first_failure_at", "recovered_at", "time_to_repair_seconds"} once a repaired group
    # launches again.
    recovery: dict[str, Any] | None = None
    # The runtime switch in force for this run (keyfix.switch): {"state", "source", "reason"}.
    switch: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "event": self.event.to_dict(),
            "mode": str(self.mode),
            "findings": [f.to_dict() for f in self.findings],
            "duplicate_of": self.duplicate_of,
            "recovery": self.recovery,
            "switch": self.switch,
        }
