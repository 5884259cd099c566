"""Audit records of writes (`change#<uuid4>`, kept 400 days) and the notification rate
limit (`notify#<fingerprint>`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from keyfix.store.common import (
    AUDIT_RETENTION_SECONDS,
    CHANGE_PREFIX,
    NOTIFY_PREFIX,
    AlreadyRolledBack,
    TableStore,
    UnknownChange,
    _as_dict,
    _iso,
    _key_arn_of,
    _policy_text,
    change_kind,
)


class AuditMixin(TableStore):
    """The audit records of `Store`."""

    def record_change(self, change: dict[str, Any], event_id: str, finding: Any, applied_by: str) -> str:
        """Keep one write (`apply.carry_out`'s audit dict) for 400 days; returns its change id."""
        change_id = str(uuid.uuid4())
        now = self.clock()
        finding_d = _as_dict(finding)
        kind = change_kind(change)
        item: dict[str, Any] = {
            "id": {"S": CHANGE_PREFIX + change_id},
            "change_id": {"S": change_id},
            "kind": {"S": kind},
            "event_id": {"S": event_id or ""},
            "applied_by": {"S": applied_by},
            "applied_at": {"S": _iso(now)},
            "change": {"S": json.dumps(change, sort_keys=True, default=str)},
            "finding": {"S": json.dumps(finding_d, sort_keys=True, default=str)},
            "expiration": {"N": str(int(now) + AUDIT_RETENTION_SECONDS)},
        }
        key_arn = _key_arn_of(change, kind, finding_d if isinstance(finding_d, dict) else None)
        optional = {
            "key_arn": key_arn,
            "target": change.get("target"),
            "before": _policy_text(change.get("before")),
            "after": _policy_text(change.get("after")),
            "grant_id": change.get("grant_id"),
            "policy_name": change.get("policy_name"),
        }
        item.update({name: {"S": value} for name, value in optional.items() if value is not None})
        self.client.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#id)",  # a uuid4 collision must not overwrite
            ExpressionAttributeNames={"#id": "id"},
        )
        return change_id

    @staticmethod
    def _decode_change(item: dict[str, Any]) -> dict[str, Any]:
        s = {name: value["S"] for name, value in item.items() if "S" in value}
        return {
            "change_id": s["change_id"],
            "kind": s.get("kind"),
            "key_arn": s.get("key_arn"),
            "target": s.get("target"),
            "event_id": s.get("event_id"),
            "applied_by": s.get("applied_by"),
            "applied_at": s.get("applied_at"),
            "change": json.loads(s["change"]),
            "finding": json.loads(s["finding"]) if "finding" in s else None,
            "rolled_back": "rolled_back_at" in s,
            "rolled_back_at": s.get("rolled_back_at"),
            "rolled_back_by": s.get("rolled_back_by"),
        }

    def get_change(self, change_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": CHANGE_PREFIX + change_id}},
                                    ConsistentRead=True).get("Item")
        return self._decode_change(item) if item else None

    def list_changes(self, key_arn: str | None = None) -> list[dict[str, Any]]:
        """Every audit record (of `key_arn` only, when given), oldest first.

        A Scan with a filter: the table's only key is `id`, so there is nothing to Query by
        key ARN. Acceptable because the volume is low (a handful of writes per incident,
        kept 400 days; idempotency, lock and notify items are short-lived) and because only
        the operator's `keyfix history` / `keyfix rollback` run it, never the Lambda (whose
        role has no dynamodb:Scan). Should history grow large, a GSI on `key_arn` would
        replace this Scan with a Query.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Scan.html
        """
        expression = "begins_with(#id, :prefix)"
        names = {"#id": "id"}
        values: dict[str, Any] = {":prefix": {"S": CHANGE_PREFIX}}
        if key_arn:
            expression += " AND #key = :key"
            names["#key"] = "key_arn"
            values[":key"] = {"S": key_arn}
        paginator = self.client.get_paginator("scan")
        changes = []
        for page in paginator.paginate(TableName=self.table_name, FilterExpression=expression,
                                       ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                       ConsistentRead=True):
            changes.extend(self._decode_change(item) for item in page.get("Items", []))
        changes.sort(key=lambda c: (c["applied_at"] or "", c["change_id"]))
        return changes

    def mark_rolled_back(self, change_id: str, by: str) -> None:
        """Raises UnknownChange or AlreadyRolledBack; the condition makes the mark once-only."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": CHANGE_PREFIX + change_id}},
                UpdateExpression="SET #at = :at, #by = :by",
                ConditionExpression="attribute_exists(#id) AND attribute_not_exists(#at)",
                ExpressionAttributeNames={"#id": "id", "#at": "rolled_back_at", "#by": "rolled_back_by"},
                ExpressionAttributeValues={":at": {"S": _iso(self.clock())}, ":by": {"S": by}},
            )
        except Exception as exc:
            if not self._conditional_failed(exc):
                raise
            if self.get_change(change_id) is None:
                raise UnknownChange(f"no change {change_id}") from None
            raise AlreadyRolledBack(f"change {change_id} is already rolled back") from None


class RateLimitMixin(TableStore):
    """The notification rate limit of `Store`."""

    def should_notify(self, finding_fingerprint: str, window_seconds: int) -> bool:
        """True for the first notification about a finding in `window_seconds`, else False.

        One conditional PutItem: succeeds when no record exists or the last one's window
        has passed; the record it writes opens the next window."""
        now = self._now()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": NOTIFY_PREFIX + finding_fingerprint},
                    "notified_at": {"S": _iso(now)},
                    "expiration": {"N": str(now + int(window_seconds))},
                },
                ConditionExpression="attribute_not_exists(#id) OR #exp <= :now",
                ExpressionAttributeNames={"#id": "id", "#exp": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True
