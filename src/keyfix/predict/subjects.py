"""What a scan or sweep checks: Auto Scaling groups and stopped instances, and which of
them have failed already.

A subject that has failed carries `failure`: the very `Incident` its EventBridge event
would have produced (trigger, group or instance, reason), so that a sweep and the event of
the same failure share one idempotency key (keyfix.idempotency.incident_key) and one
diagnosis. A subject without `failure` is checked for a *predicted* failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keyfix.arns import partition_of
from keyfix.events.autoscaling import LAUNCH_UNSUCCESSFUL, kms_related
from keyfix.events.incident import Incident
from keyfix.report import Trigger
from keyfix.resolve.gateway import AwsGateway
from keyfix.resolve.state_reasons import is_kms_state_reason

# DescribeAutoScalingGroups' largest page: MaxRecords "The default value is 50 and the
# maximum value is 100" (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html).
GROUP_PAGE_SIZE = 100
# DescribeScalingActivities: at most 100 per page
# (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html).
ACTIVITY_PAGE_SIZE = 100
# DescribeInstances: MaxResults 5-1000
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html).
INSTANCE_PAGE_SIZE = 1000
# How far back a failed scaling activity still counts as "this group is failing": four
# sweeps at the default rate. Older failures are not lost: the group is checked all the same,
# only as a prediction.
ACTIVITY_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class Subject:
    kind: str  # "group" | "instance"
    name: str  # group name or instance id
    arn: str
    group: dict[str, Any] | None = None  # DescribeAutoScalingGroups entry
    failure: Incident | None = None  # the event this subject's failure would have sent


@dataclass(frozen=True)
class Page:
    """One page of a listing: the token that fetched it (None: the first) and its subjects."""

    token: str | None
    subjects: list[Subject]
    next_token: str | None


def group_page(gw: AwsGateway, region: str, token: str | None, *, names: list[str] | None = None) -> Page:
    """One page of DescribeAutoScalingGroups, at the largest page size. Raises AwsError (the
    caller backs off, or reports what it could not list). Not memoised: a sweep lists once."""
    # IncludeInstances=false: keyfix reads a group's launch template or configuration and its
    # service-linked role, never its instances, and AWS says instance details are what gets
    # this call throttled for groups with many instances ("To help prevent throttling, you can
    # set the IncludeInstances parameter to false":
    # https://docs.aws.amazon.com/cli/latest/reference/autoscaling/; the parameter:
    # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html).
    params: dict[str, Any] = {"MaxRecords": GROUP_PAGE_SIZE, "IncludeInstances": False}
    if names:
        params["AutoScalingGroupNames"] = names
    if token:
        params["NextToken"] = token
    page = gw.call("autoscaling", "DescribeAutoScalingGroups", region=region, **params)
    subjects = [Subject("group", g["AutoScalingGroupName"], g.get("AutoScalingGroupARN") or "", group=g)
                for g in page.get("AutoScalingGroups") or [] if g.get("AutoScalingGroupName")]
    return Page(token, subjects, page.get("NextToken") or None)


def instance_page(gw: AwsGateway, region: str, account: str, token: str | None) -> Page:
    """One page of stopped instances, keeping those whose StateReason is KMS-related (the codes
    keyfix.resolve reads for an ec2-launch-failure), as subjects that have failed."""
    params: dict[str, Any] = {"MaxResults": INSTANCE_PAGE_SIZE,
                              "Filters": [{"Name": "instance-state-name", "Values": ["stopped"]}]}
    if token:
        params["NextToken"] = token
    page = gw.call("ec2", "DescribeInstances", region=region, **params)
    subjects = [instance_subject(instance, account, region)
                for reservation in page.get("Reservations") or []
                for instance in reservation.get("Instances") or [] if kms_state_reason(instance)]
    return Page(token, subjects, page.get("NextToken") or None)


def kms_state_reason(instance: dict[str, Any]) -> bool:
    reason = instance.get("StateReason") or {}
    return is_kms_state_reason(str(reason.get("Code") or ""), str(reason.get("Message") or ""))


def instance_subject(instance: dict[str, Any], account: str, region: str) -> Subject:
    instance_id = instance["InstanceId"]
    arn = f"arn:{partition_of(region)}:ec2:{region}:{account}:instance/{instance_id}"
    # As keyfix.events.ec2.to_incident builds it from "EC2 Instance State-change Notification".
    failure = Incident(trigger=Trigger.EC2_LAUNCH_FAILURE, event_id="", source="aws.ec2",
                       detail_type="EC2 Instance State-change Notification", account=account, region=region,
                       instance_id=instance_id, instance_state="stopped", kms_related=None)
    return Subject("instance", instance_id, arn, failure=failure)


def recent_kms_failures(gw: AwsGateway, region: str, account: str, *, now: datetime | None = None,
                        lookback: timedelta = ACTIVITY_LOOKBACK) -> dict[str, Incident]:
    """Group name -> the launch-failure Incident of its newest scaling activity, when that
    activity is Failed or Cancelled with a KMS reason and started within `lookback`.

    DescribeScalingActivities without a group describes the account's and Region's activities,
    newest first ("Activities are sorted by the start time. Activities still in progress appear
    first"): one paged read for every group, stopped at the first activity older than the
    lookback. Whether Auto Scaling emits an event for Cancelled activities is undocumented,
    which is why the sweep reads them (issue #11). Raises AwsError.
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html"""
    since = (now or datetime.now(UTC)) - lookback
    newest: dict[str, dict[str, Any]] = {}
    token = None
    while True:
        params: dict[str, Any] = {"MaxRecords": ACTIVITY_PAGE_SIZE}
        if token:
            params["NextToken"] = token
        page = gw.call("autoscaling", "DescribeScalingActivities", region=region, **params)
        activities = page.get("Activities") or []
        old = False
        for activity in activities:
            started = _as_datetime(activity.get("StartTime"))
            if started is not None and started < since:
                old = True
                continue
            newest.setdefault(activity.get("AutoScalingGroupName") or "", activity)
        token = page.get("NextToken")
        if old or not token or not activities:
            break
    failures = {}
    for name, activity in newest.items():
        incident = activity_incident(activity, account, region)
        if name and incident is not None:
            failures[name] = incident
    return failures


def activity_incident(activity: dict[str, Any], account: str, region: str) -> Incident | None:
    """The Incident an "EC2 Instance Launch Unsuccessful" event of this activity gives
    (keyfix.events.autoscaling.to_incident: the reason is the first text with a recognisable
    code), or None when the activity is not a KMS failure."""
    if activity.get("StatusCode") not in ("Failed", "Cancelled"):
        return None
    texts = (activity.get("StatusMessage") or "", activity.get("Cause") or "", activity.get("Description"))
    if kms_related(*texts) is not True:
        return None
    reason = next((t for t in texts if t and kms_related(t) is not None), None) or texts[0] or None
    return Incident(trigger=Trigger.ASG_LAUNCH_FAILURE, event_id="", source="aws.autoscaling",
                    detail_type=LAUNCH_UNSUCCESSFUL, account=account, region=region,
                    group_name=activity.get("AutoScalingGroupName"), activity_id=activity.get("ActivityId"),
                    status_code=activity.get("StatusCode"), status_message=reason, kms_related=True)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
