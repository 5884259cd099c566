"""EC2 instances that stop or terminate: "EC2 Instance State-change Notification".

https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html
The event carries only instance-id and state. Why the instance stopped (StateReason,
e.g. "Client.InternalError: Client error on launch") is not in it; the resolver reads
it with DescribeInstances. So the event alone cannot say whether KMS is involved.
The documentation's example omits the top-level "version" (the envelope defaults it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from keyfix.events._common import MAX_NAME_CHARS, Detail, Envelope
from keyfix.events.incident import Incident
from keyfix.report import Trigger


class Ec2StateChangeDetail(Detail):
    instance_id: str = Field(alias="instance-id", min_length=1, max_length=MAX_NAME_CHARS)
    # pending | running | shutting-down | stopping | stopped | terminated
    state: str = Field(min_length=1)


class Ec2StateChangeEvent(Envelope):
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Instance State-change Notification"] = Field(alias="detail-type")
    detail: Ec2StateChangeDetail


def to_incident(event: Ec2StateChangeEvent) -> Incident:
    return Incident(
        trigger=Trigger.EC2_LAUNCH_FAILURE,
        **event.incident_fields(),
        instance_id=event.detail.instance_id,
        instance_state=event.detail.state,
        kms_related=None,
    )
