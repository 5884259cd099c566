"""One PutEvents entry, best effort: what keyfix sends another bus never stops its own work.

PutEvents can answer 200 and still fail an entry (FailedEntryCount, ErrorCode per entry:
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html), so both are
read. The call goes to the bus in the entry's `EventBusName` ARN, which may be in another
account (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html); the
client is this account's, in the bus's Region.
"""

from __future__ import annotations

import logging
from typing import Any

from keyfix.org.settings import bus_arn_parts

log = logging.getLogger("keyfix")


def put(gw, entry: dict[str, Any]) -> bool:
    """True when EventBridge accepted the entry."""
    try:
        region = bus_arn_parts(entry["EventBusName"])[1]
        answer = gw.client("events", region=region).put_events(Entries=[entry])
    except Exception:  # noqa: BLE001 - no bus, no permission, no network: logged, never raised
        log.warning("could not put a %s on %s", entry.get("DetailType"), entry.get("EventBusName"), exc_info=True)
        return False
    failed = [e for e in answer.get("Entries", []) if e.get("ErrorCode")]
    if answer.get("FailedEntryCount") or failed:
        log.warning("EventBridge refused a %s on %s: %s", entry.get("DetailType"), entry.get("EventBusName"), failed)
        return False
    return True
