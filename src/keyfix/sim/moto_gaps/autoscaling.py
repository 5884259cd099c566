"""Auto Scaling gaps: DescribeScalingActivities, and the service-linked role on group creation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from keyfix.sim.moto_gaps.iam import ensure_service_linked_role


def _activities(backend: Any) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault("_keyfix_activities", [])


def _describe_scaling_activities(self: Any) -> Any:
    """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html:
    Activities, newest first, filtered by AutoScalingGroupName / ActivityIds, at most MaxRecords
    (default 100)."""
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("ActivityIds", []) or []
    limit = self._get_int_param("MaxRecords") or 100
    found = [
        a
        for a in reversed(_activities(self.autoscaling_backend))
        if (not name or a["AutoScalingGroupName"] == name) and (not ids or a["ActivityId"] in ids)
    ]
    return ActionResult({"Activities": found[:limit]})


def record_scaling_activity(
    group_name: str,
    *,
    account: str,
    region: str,
    status_code: str = "Failed",
    status_message: str = "",
    description: str | None = None,
    cause: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store one activity, shaped like API_Activity
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html)."""
    from moto.autoscaling.models import autoscaling_backends

    backend = autoscaling_backends[account][region]
    group = backend.autoscaling_groups.get(group_name)
    now = datetime.now(UTC)
    activity = {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group_name,
        "Description": description or "Launching a new EC2 instance.  Status Reason: " + status_message,
        "Cause": cause
        or f"At {now:%Y-%m-%dT%H:%M:%SZ} an instance was started in response to a difference between desired "
        "and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": now,
        "EndTime": now,
        "StatusCode": status_code,
        "StatusMessage": status_message,
        "Progress": 100,
        "Details": json.dumps(details or {"Subnet ID": "", "Availability Zone": f"{region}a"}),
    }
    if group is not None:
        activity["AutoScalingGroupARN"] = group.arn
    _activities(backend).append(activity)
    return activity


def _wrap_create_auto_scaling_group(original: Any) -> Any:
    """AWS creates AWSServiceRoleForAutoScaling the first time a group is created without a
    ServiceLinkedRoleARN; a given ServiceLinkedRoleARN is kept on the group
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html)."""

    def create_auto_scaling_group(self: Any) -> Any:
        result = original(self)
        group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
        role_arn = self._get_param("ServiceLinkedRoleARN")
        if group is not None and role_arn:
            group.service_linked_role_arn = role_arn
        elif group is not None:
            ensure_service_linked_role(self.current_account, "autoscaling.amazonaws.com", region=self.region)
        return result

    return create_auto_scaling_group
