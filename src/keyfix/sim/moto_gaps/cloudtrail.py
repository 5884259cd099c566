"""CloudTrail gap: LookupEvents over an event history filled by `record_cloudtrail_event`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

# CloudTrail event history
# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html and
# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_Event.html: Events
# [{EventId, EventName, ReadOnly, AccessKeyId, EventTime, EventSource, Username,
# Resources [{ResourceType, ResourceName}], CloudTrailEvent (the record as a JSON string)}],
# newest first, at most MaxResults (default and maximum 50).

_LOOKUP_KEYS = {
    "EventId": lambda e: [e["EventId"]],
    "EventName": lambda e: [e["EventName"]],
    "ReadOnly": lambda e: [e["ReadOnly"]],
    "Username": lambda e: [e.get("Username")],
    "ResourceType": lambda e: [r["ResourceType"] for r in e["Resources"]],
    "ResourceName": lambda e: [r["ResourceName"] for r in e["Resources"]],
    "EventSource": lambda e: [e["EventSource"]],
    "AccessKeyId": lambda e: [e.get("AccessKeyId")],
}


def _events(backend: Any) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault("_keyfix_events", [])


def _lookup_events(self: Any) -> str:
    body = json.loads(self.body or "{}")
    events = sorted(_events(self.cloudtrail_backend), key=lambda e: e["EventTime"], reverse=True)
    for attribute in body.get("LookupAttributes") or []:
        pick = _LOOKUP_KEYS.get(attribute.get("AttributeKey"))
        if pick is not None:
            events = [e for e in events if attribute.get("AttributeValue") in pick(e)]
    if body.get("StartTime") is not None:
        events = [e for e in events if e["EventTime"] >= float(body["StartTime"])]
    if body.get("EndTime") is not None:
        events = [e for e in events if e["EventTime"] <= float(body["EndTime"])]
    limit = min(int(body.get("MaxResults") or 50), 50)
    return json.dumps({"Events": [{k: v for k, v in e.items() if v is not None} for e in events[:limit]]})


def record_cloudtrail_event(
    record: dict[str, Any],
    *,
    account: str,
    region: str,
    resources: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Store one CloudTrail record (the `CloudTrailEvent` document) in the event history of
    `account`/`region`, with the LookupEvents summary fields derived from it."""
    from moto.cloudtrail.models import cloudtrail_backends

    record = dict(record)
    record.setdefault("eventVersion", "1.08")
    record.setdefault("eventID", str(uuid.uuid4()))
    record.setdefault("eventTime", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    record.setdefault("awsRegion", region)
    record.setdefault("recipientAccountId", account)
    identity = record.get("userIdentity") or {}
    when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    username = identity.get("userName") or (
        identity.get("arn", "").rsplit("/", 1)[-1] if identity.get("type") == "AssumedRole" else None
    )
    event = {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": str(bool(record.get("readOnly", False))).lower(),
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": when.timestamp(),
        "EventSource": record.get("eventSource"),
        "Username": username,
        "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
        "CloudTrailEvent": json.dumps(record),
    }
    _events(cloudtrail_backends[account][region]).append(event)
    return event
