"""A group's launches since keyfix's repair, from its scaling activities.

DescribeScalingActivities returns the activities newest first, each with StartTime, EndTime,
StatusCode (Successful, Failed, Cancelled, InProgress, ...), StatusMessage and Description
("Launching a new EC2 instance: i-..." for a launch):
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html
Whether a failure is about KMS is decided as for the launch events
(keyfix.events.autoscaling.kms_related); a failure whose text says nothing either way counts
as a failure (the group still does not launch).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyfix.events.autoscaling import kms_related
from keyfix.followup.state import epoch_of
from keyfix.utc import iso

# One page: a follow-up looks at the last ten minutes of one group.
MAX_RECORDS = 50


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return epoch_of(value) if isinstance(value, str) else None


def launches_since(gw: Any, region: str, group: str, since: float) -> dict[str, Any]:
    """{"success_at": epoch of the first successful launch since `since` or None,
    "latest_failure_at": epoch of the latest launch failure since then or None,
    "notes": [what was seen, for the escalation's history]}."""
    from keyfix.resolve.gateway import AwsError

    out: dict[str, Any] = {"success_at": None, "latest_failure_at": None, "notes": []}
    try:
        activities = gw.call("autoscaling", "DescribeScalingActivities", region=region,
                             AutoScalingGroupName=group, MaxRecords=MAX_RECORDS).get("Activities", [])
    except AwsError as err:
        out["notes"].append(f"the scaling activities of {group} could not be read: {err}")
        return out
    successes, failures = [], []
    for activity in activities:
        started = _epoch(activity.get("StartTime"))
        if started is None or started < since:
            continue
        if not str(activity.get("Description") or "").startswith("Launching"):
            continue
        code = activity.get("StatusCode")
        texts = (activity.get("StatusMessage"), activity.get("Description"), activity.get("Cause"))
        if code == "Successful":
            successes.append(_epoch(activity.get("EndTime")) or started)
        elif code in ("Failed", "Cancelled") and kms_related(*texts) is not False:
            failures.append(started)
            out["notes"].append(f"launch {code.lower()} at {iso(started)}: {str(activity.get('StatusMessage'))[:300]}")
    if successes:
        out["success_at"] = min(successes)
    if failures:
        out["latest_failure_at"] = max(failures)
    if not successes and not failures:
        out["notes"].append(f"no launch of {group} since the fix")
    return out
