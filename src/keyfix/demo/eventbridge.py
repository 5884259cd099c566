"""The EventBridge events the simulated failures emit, shaped like AWS's (see
tests/fixtures/realevents and the repository's events/*.json, which keyfix.events parses).

Envelope: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from keyfix.arns import partition_of


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(detail_type: str, source: str, account: str, region: str, resources: list[str],
             detail: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": account, "time": now(), "region": region, "resources": resources, "detail": detail}


def instance_arn(account: str, region: str, instance_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account}:instance/{instance_id}"


def volume_arn(account: str, region: str, volume_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account}:volume/{volume_id}"


def asg_launch_unsuccessful(account: str, region: str, group_arn: str, activity: dict[str, Any],
                            instance_id: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html
    ("EC2 Instance Launch Unsuccessful"), from the scaling activity AWS recorded."""
    details = activity.get("Details") or {}
    if isinstance(details, str):  # the gap layer stores Details as AWS returns it: JSON text
        details = json.loads(details)
    detail = {
        "StatusCode": activity["StatusCode"],
        "AutoScalingGroupName": activity["AutoScalingGroupName"],
        "ActivityId": activity["ActivityId"],
        "Details": {"Availability Zone": details.get("Availability Zone", f"{region}a"),
                    "Subnet ID": details.get("Subnet ID", "")},
        "RequestId": activity["ActivityId"],
        "StatusMessage": activity["StatusMessage"],
        "EndTime": now(),
        "EC2InstanceId": instance_id,
        "StartTime": now(),
        "Cause": activity["Cause"],
    }
    return envelope("EC2 Instance Launch Unsuccessful", "aws.autoscaling", account, region,
                    [group_arn, instance_arn(account, region, instance_id)], detail)


def ec2_state_change(account: str, region: str, instance_id: str, state: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html
    (the state reason is not in the event; keyfix reads it with DescribeInstances)."""
    return envelope("EC2 Instance State-change Notification", "aws.ec2", account, region,
                    [instance_arn(account, region, instance_id)], {"instance-id": instance_id, "state": state})


def ebs_volume_notification(account: str, region: str, operation: str, volume_id: str, key_arn: str,
                            cause: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html: a failed
    attach/reattach names the key in `resources` after the volume, and its state in `cause`."""
    return envelope("EBS Volume Notification", "aws.ec2", account, region,
                    [volume_arn(account, region, volume_id), key_arn],
                    {"event": operation, "result": "failed", "cause": cause, "request-id": ""})


def cloudtrail_api_call(record: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it: detail-type "AWS API Call via
    CloudTrail", source aws.<service>, no resources
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html)."""
    service = record["eventSource"].split(".", 1)[0]
    event = envelope("AWS API Call via CloudTrail", f"aws.{service}", record["recipientAccountId"],
                     record["awsRegion"], [], record)
    event["time"] = record["eventTime"]
    return event
