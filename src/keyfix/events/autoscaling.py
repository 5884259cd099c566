"""Auto Scaling launch failures: "EC2 Instance Launch Unsuccessful" and the
launch-then-terminate path "EC2 Instance Terminate Successful".

Event shapes: https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html
The detail carries the scaling activity's fields (StatusCode, StatusMessage, Cause,
Description, ...), as DescribeScalingActivities returns them:
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from keyfix.events._common import Detail, Envelope
from keyfix.events.incident import Incident
from keyfix.report import Trigger

LAUNCH_UNSUCCESSFUL = "EC2 Instance Launch Unsuccessful"
TERMINATE_SUCCESSFUL = "EC2 Instance Terminate Successful"


class AsgActivityDetail(Detail):
    """The activity fields of an Auto Scaling instance event.

    Relied upon: AutoScalingGroupName (which group), StatusCode. Everything else is
    optional: the docs template uses placeholders ("message-text"), EC2InstanceId is
    empty when no instance was created, and Description appears on some events only.
    """

    status_code: str = Field(alias="StatusCode")  # Failed | Cancelled | InProgress | ...
    # 1-255 characters: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AutoScalingGroup.html
    auto_scaling_group_name: str = Field(alias="AutoScalingGroupName", min_length=1, max_length=255)
    activity_id: str | None = Field(None, alias="ActivityId")
    ec2_instance_id: str | None = Field(None, alias="EC2InstanceId")
    status_message: str = Field("", alias="StatusMessage")
    cause: str = Field("", alias="Cause")
    description: str | None = Field(None, alias="Description")
    # An object in events ({"Availability Zone": ..., "Subnet ID": ...}); a JSON string
    # in DescribeScalingActivities output.
    details: dict[str, Any] | str | None = Field(None, alias="Details")
    request_id: str | None = Field(None, alias="RequestId")
    start_time: str | None = Field(None, alias="StartTime")
    end_time: str | None = Field(None, alias="EndTime")
    origin: str | None = Field(None, alias="Origin")
    destination: str | None = Field(None, alias="Destination")


class AsgLaunchUnsuccessfulEvent(Envelope):
    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance Launch Unsuccessful"] = Field(alias="detail-type")
    detail: AsgActivityDetail


class AsgTerminateSuccessfulEvent(Envelope):
    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance Terminate Successful"] = Field(alias="detail-type")
    detail: AsgActivityDetail


# -- is it KMS? -----------------------------------------------------------------------
#
# Evidence, verbatim strings in tests/fixtures/realevents/_strings-and-facts-catalog.md:
# - "Termination Reason: Client.InvalidKMSKey.InvalidState: The KMS key provided is in
#   an incorrect state" is reported when the key is Enabled and only the key policy
#   lacks the service-linked role - so it says "KMS", never which key state.
# - "Termination Reason: Client.InternalError: Client error on launch" is the classic
#   encrypted-volume-without-permission symptom (EC2 StateReason codes:
#   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html).
# - 2025 console text: "... encrypted with an inaccessible AWS KMS key."
_KMS_RE = re.compile(r"Client\.InvalidKMSKey|Client\.InternalError|inaccessible AWS KMS key|\bKMS\b|\bkms:")

# Known reasons that are not KMS: the other StateReason codes (API_StateReason above)
# and launch errors (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
# plus the plain-English capacity/limit messages Auto Scaling relays.
_NOT_KMS_RE = re.compile(
    r"\b(?:"
    r"Server\.InternalError|Server\.InsufficientInstanceCapacity|Server\.ScheduledStop"
    r"|Server\.SpotInstanceShutdown|Server\.SpotInstanceTermination"
    r"|Client\.VolumeLimitExceeded|Client\.InstanceInitiatedShutdown|Client\.InstanceTerminated"
    r"|Client\.UserInitiatedShutdown|Client\.UserInitiatedHibernate|Client\.InvalidSnapshot\.NotFound"
    r"|InsufficientInstanceCapacity|InsufficientFreeAddressesInSubnet|InstanceLimitExceeded"
    r"|VcpuLimitExceeded|MaxSpotInstanceCountExceeded|SpotMaxPriceTooLow"
    r"|InvalidAMIID(?:\.[A-Za-z]+)?|InvalidSubnetID(?:\.[A-Za-z]+)?|InvalidGroup\.NotFound"
    r"|InvalidKeyPair\.NotFound|InvalidParameterValue|InvalidParameterCombination"
    r")\b"
    r"|do not have sufficient \S+ capacity|vCPU limit"
)


def kms_related(*texts: str | None) -> bool | None:
    """True when any text names a KMS failure code, False when one names a known
    non-KMS reason (and none a KMS one), None when nothing is recognisable (e.g. the
    docs placeholder "message-text"). Never a key state: InvalidKMSKey.InvalidState
    also reports key-policy faults.
    """
    present = [t for t in texts if isinstance(t, str) and t]
    if any(_KMS_RE.search(t) for t in present):
        return True
    if any(_NOT_KMS_RE.search(t) for t in present):
        return False
    return None


_INSTANCE_RE = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def to_incident(event: AsgLaunchUnsuccessfulEvent | AsgTerminateSuccessfulEvent) -> Incident:
    d = event.detail
    texts = (d.status_message, d.cause, d.description)
    # The text that carries the reason: StatusMessage normally; whichever field holds
    # a recognisable code when StatusMessage is empty (terminate events).
    reason = next((t for t in texts if t and kms_related(t) is not None), None) or d.status_message or None
    instance_id = d.ec2_instance_id or None
    if instance_id is None and d.description:
        m = _INSTANCE_RE.search(d.description)
        instance_id = m.group(0) if m else None
    return Incident(
        trigger=Trigger.ASG_LAUNCH_FAILURE,
        **event.incident_fields(),
        group_name=d.auto_scaling_group_name,
        activity_id=d.activity_id or None,
        status_code=d.status_code,
        status_message=reason,
        instance_id=instance_id,
        kms_related=kms_related(*texts),
    )
