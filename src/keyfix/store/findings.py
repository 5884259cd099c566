"""Every finding keyfix makes, with its report, for `keyfix history --findings`.

One item per finding (`finding#<event id>#<n>`), beside the audit records (which stay as
they are: keyfix.store.audit MACs only writes). Findings are evidence of what keyfix saw,
not of what it changed, so they carry no MAC. Each item holds the finding, the whole report
(JSON) and the event that caused it (zlib + base64, so `keyfix history --event ID` can hand
it back to `keyfix handle`), and expires after KEYFIX_HISTORY_RETENTION_DAYS (template
parameter HistoryRetentionDays, default 400).

Listing never scans: four sparse global secondary indexes (template.yaml KeyfixTable), each
sorted by `finding_at` (ISO-8601 UTC, so text order is time order):
    by-key    finding_key    the key ARN ("none" without one)
    by-group  finding_group  the Auto Scaling group's name (only findings about a group)
    by-cause  finding_cause  the cause
    by-day    finding_day    YYYY-MM-DD, for "everything since" without another filter
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html
An item is at most 400 KB (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items):
a report or event too large to keep is left out of the item and the item says so.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from keyfix.arns import group_name_of
from keyfix.utc import iso_ms as _iso

log = logging.getLogger("keyfix")

FINDING_PREFIX = "finding#"
RETENTION_ENV = "KEYFIX_HISTORY_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 400
INDEXES = {"key": ("by-key", "finding_key"), "group": ("by-group", "finding_group"),
           "cause": ("by-cause", "finding_cause"), "day": ("by-day", "finding_day")}
KEEP_MAX_BYTES = 150_000  # per kept text (report, event): two of them stay under 400 KB
MAX_DAYS_WITHOUT_FILTER = 31


class HistoryError(ValueError):
    """A history request keyfix cannot serve (bad filter values)."""


def retention_days(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = (env.get(RETENTION_ENV) or "").strip()
    try:
        days = int(raw) if raw else DEFAULT_RETENTION_DAYS
    except ValueError:
        log.warning("%s=%r is not a number of days; keeping findings %d days", RETENTION_ENV, raw, DEFAULT_RETENTION_DAYS)
        return DEFAULT_RETENTION_DAYS
    return min(max(days, 1), 3650)


def pack_event(raw: Any) -> str | None:
    text = json.dumps(raw, separators=(",", ":"), default=str)
    packed = base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    return packed if len(packed) <= KEEP_MAX_BYTES else None


def unpack_event(packed: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(packed)).decode("utf-8"))


def finding_items(report: Any, raw: Any, now: float, days: int) -> list[dict[str, dict[str, str]]]:
    """The DynamoDB items (low-level attribute values) recording `report`'s findings."""
    report_json = json.dumps(report.to_dict(), separators=(",", ":"), default=str)
    event = pack_event(raw) if raw is not None else None
    at = _iso(now)
    items = []
    for i, finding in enumerate(report.findings):
        item = {
            "id": {"S": f"{FINDING_PREFIX}{report.event.id}#{i}"},
            "finding_at": {"S": at},
            "finding_day": {"S": at[:10]},
            "finding_key": {"S": finding.key_arn or "none"},
            "finding_cause": {"S": str(finding.cause)},
            "event_id": {"S": report.event.id or ""},
            "finding": {"S": json.dumps(finding.to_dict(), separators=(",", ":"), default=str)},
            "expiration": {"N": str(int(now) + days * 86400)},
        }
        group = group_name_of(finding.resource)
        if group:
            item["finding_group"] = {"S": group}
        if len(report_json) <= KEEP_MAX_BYTES:
            item["report"] = {"S": report_json}
        else:
            item["report_left_out"] = {"S": f"the report is {len(report_json)} bytes"}
        if event is not None:
            item["event"] = {"S": event}
        items.append(item)
    return items


def record_findings(store: Any, report: Any, raw: Any, env: Mapping[str, str] | None = None) -> int:
    """Put one item per finding; returns how many were kept. Never raises: the history is
    worth less than the run, so a failed put is logged and the run goes on."""
    if not getattr(store, "persistent", False) or not report.findings:
        return 0
    from botocore.exceptions import BotoCoreError, ClientError

    kept = 0
    for item in finding_items(report, raw, getattr(store, "clock", time.time)(), retention_days(env)):
        try:
            store.client.put_item(TableName=store.table_name, Item=item)
            kept += 1
        except (ClientError, BotoCoreError) as exc:
            log.warning("finding %s not recorded: %s", item["id"]["S"], exc)
    return kept


def _since_text(since: str | None, now: float) -> str:
    """ISO text of `since`: an ISO date/time, or a duration like 7d, 12h, 30m."""
    if not since:
        return _iso(now - 7 * 86400)
    text = since.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[:-1].isdigit() and text[-1:] in units:
        return _iso(now - int(text[:-1]) * units[text[-1]])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"--since {since!r}: give an ISO date or time (2025-03-14, 2025-03-14T09:00Z) "
                           "or a duration (7d, 12h, 30m)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed.timestamp())


def _query(client: Any, table: str, index: str, attribute: str, value: str, since: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs = {"TableName": table, "IndexName": index,
              "KeyConditionExpression": "#h = :h AND finding_at >= :since",
              "ExpressionAttributeNames": {"#h": attribute},
              "ExpressionAttributeValues": {":h": {"S": value}, ":since": {"S": since}}}
    while True:
        page = client.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def list_findings(client: Any, table: str, *, key: str | None = None, group: str | None = None,
                  cause: str | None = None, since: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """Findings, oldest first, through one index (the most selective filter given); the
    other filters are applied to what the index returns."""
    now = time.time() if now is None else now
    since_at = _since_text(since, now)
    filters = {"key": key, "group": group, "cause": cause}
    for name, value in filters.items():
        if value is not None and (not value.strip() or len(value) > 2048):
            raise HistoryError(f"--{name} must be a non-empty value of at most 2048 characters")
    chosen = next((name for name in ("key", "group", "cause") if filters[name]), None)
    if chosen:
        index, attribute = INDEXES[chosen]
        items = _query(client, table, index, attribute, filters[chosen], since_at)
    else:
        first = datetime.fromisoformat(since_at.replace("Z", "+00:00")).date()
        last = datetime.fromtimestamp(now, UTC).date()
        if (last - first).days > MAX_DAYS_WITHOUT_FILTER:
            raise HistoryError(f"without --key, --group or --cause, --since reaches back at most "
                               f"{MAX_DAYS_WITHOUT_FILTER} days")
        index, attribute = INDEXES["day"]
        items = []
        day = first
        while day <= last:
            items += _query(client, table, index, attribute, day.isoformat(), since_at)
            day += timedelta(days=1)
    rows = [_row(item) for item in items]
    rows = [r for r in rows if all(filters[n] is None or r[n] == filters[n] for n in ("key", "group", "cause"))]
    return sorted(rows, key=lambda r: (r["at"], r["id"]))


def _row(item: dict[str, Any]) -> dict[str, Any]:
    text = {name: value.get("S") for name, value in item.items() if "S" in value}
    finding = json.loads(text.get("finding") or "{}")
    statuses = sorted({f.get("status") for f in finding.get("fixes", []) if f.get("status")})
    return {"id": text.get("id"), "at": text.get("finding_at"), "event_id": text.get("event_id"),
            "key": text.get("finding_key"), "group": text.get("finding_group"), "cause": text.get("finding_cause"),
            "principal": finding.get("principal"), "statuses": statuses, "predicted": finding.get("predicted", False),
            "report": json.loads(text["report"]) if text.get("report") else None,
            "event_kept": "event" in text}


def stored_event(client: Any, table: str, event_id: str) -> Any:
    """The event a finding was recorded from (for `keyfix handle`), or None."""
    item = client.get_item(TableName=table, Key={"id": {"S": f"{FINDING_PREFIX}{event_id}#0"}}).get("Item")
    packed = (item or {}).get("event", {}).get("S")
    return unpack_event(packed) if packed else None
