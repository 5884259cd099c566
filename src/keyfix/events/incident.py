"""What one EventBridge event says happened, independent of its wire shape.

The parser models (one module per trigger) turn a raw event into an `Incident`; the
resolver reads AWS to fill in what the event does not say; the diagnosis never sees
the raw event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from keyfix.report import Trigger


class Denial(StrEnum):
    """Which layer a KMS AccessDenied message blames, from its wording.

    Forms: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_access-denied-error-messages.html
    """

    NO_RESOURCE_POLICY = "no-resource-policy"  # "because no resource-based policy allows ..."
    NO_IDENTITY_POLICY = "no-identity-policy"  # "because no identity-based policy allows ..."
    EXPLICIT_DENY_RESOURCE = "explicit-deny-resource-policy"  # "with an explicit deny in a resource-based policy"
    EXPLICIT_DENY_IDENTITY = "explicit-deny-identity-policy"  # "with an explicit deny in an identity-based policy"
    EXPLICIT_DENY_OTHER = "explicit-deny-other"  # SCP, RCP, boundary, session policy
    UNSPECIFIED = "unspecified"  # the old form with no reason, or a reason we do not know


@dataclass(frozen=True)
class Caller:
    """Who made a request, as CloudTrail's userIdentity tells it.

    `arn` is the IAM identity policies attach to (for an assumed role: the role's ARN
    with its path, from sessionContext.sessionIssuer), `session_arn` the ARN as the
    request was made (assumed-role/.../session), used for key-policy matching too.
    A federated user session (GetFederationToken) has no IAM identity of its own: `arn`
    and `session_arn` are both arn:aws:sts::A:federated-user/NAME, and the IAM user (or
    root) who federated is `session_issuer_arn`, known only from CloudTrail's
    sessionContext.sessionIssuer; NAME is whatever the caller chose and identifies no one.
    """

    type: str  # IAMUser | AssumedRole | Root | AWSService | AWSAccount | FederatedUser | ...
    arn: str | None
    account: str | None
    session_arn: str | None = None
    principal_id: str | None = None
    invoked_by: str | None = None  # e.g. autoscaling.amazonaws.com when a service acted for someone
    session_issuer_arn: str | None = None  # sessionContext.sessionIssuer.arn; None: not in the record


@dataclass(frozen=True)
class Incident:
    trigger: Trigger
    event_id: str
    source: str
    detail_type: str
    account: str
    region: str
    time: str | None = None

    # Auto Scaling
    group_name: str | None = None
    activity_id: str | None = None
    status_code: str | None = None  # Failed | Cancelled | ...
    status_message: str | None = None

    # EC2 / EBS
    instance_id: str | None = None
    instance_state: str | None = None  # stopped | terminated (EC2 state change)
    volume_id: str | None = None
    ebs_operation: str | None = None  # createVolume | attachVolume | reattachVolume | ...
    ebs_cause: str | None = None

    # KMS (CloudTrail)
    caller: Caller | None = None
    action: str | None = None  # "kms:Decrypt"
    error_code: str | None = None
    error_message: str | None = None
    denial: Denial | None = None
    encryption_context: dict[str, str] = field(default_factory=dict)
    # CreateGrant's own parameters, when the denied call was a CreateGrant.
    grantee_principal: str | None = None
    grant_operations: tuple[str, ...] = ()

    # Keys the event names itself (EBS cause/resources, CloudTrail resources/keyId).
    key_arns: tuple[str, ...] = ()
    # A key state the event states outright ("... is pending deletion."): a hint the
    # resolver confirms with DescribeKey, never a conclusion on its own.
    key_state_hint: str | None = None
    # Why a failure looks KMS-related or not, from the message codes; the resolver
    # confirms against the resources (InvalidKMSKey.InvalidState also hides policy faults).
    kms_related: bool | None = None
