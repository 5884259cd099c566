"""Auto Scaling "EC2 Instance Launch Successful": a group launched an instance.

Event shape (the "Successful scaling events" example of
https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html):
the detail carries the launch activity's fields (StatusCode "InProgress", AutoScalingGroupName,
ActivityId, EC2InstanceId, StartTime, EndTime, ...), as for the unsuccessful events.

keyfix only asks two things of it: which group, and when the launch happened. The rule fires
for every successful launch in the account, so the model is lenient about everything else
and the handling (keyfix.followup.recovery) is one DynamoDB read for a group keyfix never
repaired.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from keyfix.events._common import Envelope
from keyfix.events.autoscaling import AsgActivityDetail
from keyfix.events.incident import Incident
from keyfix.report import Trigger

LAUNCH_SUCCESSFUL = "EC2 Instance Launch Successful"


class AsgLaunchSuccessfulDetail(AsgActivityDetail):
    # AWS's example sends "InProgress"; keyfix does not rely on the value.
    status_code: str = Field("", alias="StatusCode")


class AsgLaunchSuccessfulEvent(Envelope):
    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance Launch Successful"] = Field(alias="detail-type")
    detail: AsgLaunchSuccessfulDetail


def to_incident(event: AsgLaunchSuccessfulEvent) -> Incident:
    d = event.detail
    fields = event.incident_fields()
    # When the group launched: the activity's EndTime when given, else the event's time.
    fields["time"] = d.end_time or d.start_time or event.time
    return Incident(
        trigger=Trigger.RECOVERY,
        **fields,
        group_name=d.auto_scaling_group_name,
        activity_id=d.activity_id or None,
        status_code=d.status_code or None,
        instance_id=d.ec2_instance_id or None,
        kms_related=False,
    )
