"""Who started an instance: CloudTrail event history (LookupEvents).

https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html —
management events of the last 90 days, newest first, filterable by ResourceName. Events
can take up to about 15 minutes to appear
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/how-cloudtrail-works.html),
so "not found" is a note, never a conclusion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keyfix.arns import iam_arn_for_session
from keyfix.resolve.gateway import AwsError, AwsGateway

LAUNCH_EVENTS = ("StartInstances", "RunInstances")


@dataclass(frozen=True)
class Launcher:
    event_name: str
    principal: str  # IAM ARN with path when CloudTrail gives it (sessionIssuer), else as recorded
    account: str | None
    invoked_by: str | None
    user_identity: dict[str, Any]


def principal_from_identity(identity: dict[str, Any]) -> str | None:
    """The IAM principal of a CloudTrail userIdentity
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)."""
    kind = identity.get("type")
    if kind == "AssumedRole":
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        if issuer.get("arn"):
            return issuer["arn"]
        return iam_arn_for_session(identity["arn"]) if identity.get("arn") else None
    if kind == "AWSService":
        return identity.get("invokedBy")
    return identity.get("arn")


def find_launcher(gw: AwsGateway, region: str, instance_id: str, notes: list[str]) -> Launcher | None:
    try:
        events = gw.read(
            "cloudtrail",
            "LookupEvents",
            region=region,
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": instance_id}],
            MaxResults=50,
        ).get("Events", [])
    except AwsError as err:
        notes.append(f"who launched {instance_id} is unknown: {err.reason()}")
        return None
    for event in events:  # newest first
        if event.get("EventName") not in LAUNCH_EVENTS:
            continue
        try:
            record = json.loads(event.get("CloudTrailEvent") or "{}")
        except ValueError:
            continue
        identity = record.get("userIdentity") or {}
        principal = principal_from_identity(identity)
        if not principal:
            continue
        return Launcher(
            event_name=event["EventName"],
            principal=principal,
            account=identity.get("accountId") or record.get("recipientAccountId"),
            invoked_by=identity.get("invokedBy"),
            user_identity=identity,
        )
    notes.append(
        f"no StartInstances/RunInstances event for {instance_id} in CloudTrail event history yet "
        "(events can take about 15 minutes to appear)"
    )
    return None
