"""Locks, audit records and notification rate limits in keyfix's one DynamoDB table.

The table (template.yaml, `KeyfixTable`) has the partition key `id` (S) and the TTL
attribute `expiration` (Number, epoch seconds). Several kinds of item share it, told
apart by the prefix of `id`:

    lock#<key ARN>         per-key write lease              (this module)
    change#<uuid4>         audit record of one write         (this module, 400 days)
    notify#<fingerprint>   last notification for a finding   (this module)
    incident#<sha256>      Powertools idempotency record     (keyfix.idempotency)

DynamoDB deletes expired items only eventually (typically within a few days), so every
condition that treats an item as gone also compares `expiration` with the time now:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
Conditional writes are atomic per item, which is what the lock and rate limit rest on:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate

Without `KEYFIX_TABLE_NAME` keyfix keeps nothing: `store_from_settings` then returns a
`NullStore` (same API, memory only) and says so on stderr.

boto3/botocore are imported inside functions only (Lambda cold start).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("keyfix.store")

LOCK_PREFIX = "lock#"
CHANGE_PREFIX = "change#"
NOTIFY_PREFIX = "notify#"
AUDIT_RETENTION_SECONDS = 400 * 24 * 3600
DEFAULT_LOCK_TTL_SECONDS = 60
# Lambda's timeout is 60 s (template.yaml); waiting longer than a third of it for a lock
# leaves too little time to do the write after it.
DEFAULT_LOCK_WAIT_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 1.0
NO_TABLE_MESSAGE = "keyfix: KEYFIX_TABLE_NAME not set: no idempotency, locks or audit"


class StoreError(Exception):
    """Base of the errors this module raises on its own account."""


class LockTimeout(StoreError):
    """The lock was held by someone else until the deadline passed."""


class UnknownChange(StoreError):
    """No audit record with that change id."""


class AlreadyRolledBack(StoreError):
    """The audit record is already marked rolled back."""


def finding_fingerprint(account: str | None, principal_or_group: str | None, key_arn: str | None,
                        cause: str | None) -> str:
    """Stable sha256 hex of what a finding is about (not when, not which event)."""
    parts = [account or "", principal_or_group or "", key_arn or "", str(cause or "")]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode("utf-8")).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_dict(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else obj


def change_kind(change: dict[str, Any]) -> str:
    """The fix kind of an audit dict from `apply.carry_out` (which sets `kind`), or inferred
    from the shape the writers return when it is absent."""
    if change.get("kind"):
        return str(change["kind"])
    if "grant_id" in change:
        return "grant"
    if "policy_name" in change:
        return "identity-policy"
    if "added_sids" in change:
        return "key-policy-statement"
    if "service" in change:
        return "create-service-linked-role"
    return "unknown"


def _key_arn_of(change: dict[str, Any], kind: str, finding: dict[str, Any] | None) -> str | None:
    if kind in ("key-policy-statement", "grant"):
        return change.get("target")
    return (finding or {}).get("key_arn")


def _policy_text(value: Any) -> str | None:
    """Key policies arrive as text, identity policies as dicts: store both as text."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)


@dataclass
class Lease:
    """What `Store.lock` yields: who holds the lock and until when. `lost` turns True when
    the release found the lease no longer ours (it expired and someone took it over):
    the serialisation the lock promised was then not guaranteed for the whole block."""

    key_arn: str
    owner: str
    token: str
    expires_at: int
    lost: bool = False


class Store:
    """Locks, audit and notification rate limits on the DynamoDB table `table_name`.

    `dynamodb_client` is a low-level boto3 DynamoDB client; `clock` returns epoch seconds
    and `sleep` waits (both replaceable in tests).
    """

    persistent = True

    def __init__(self, table_name: str, dynamodb_client: Any, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.table_name = table_name
        self.client = dynamodb_client
        self.clock = clock
        self.sleep = sleep

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _conditional_failed(exc: Exception) -> bool:
        response = getattr(exc, "response", None) or {}
        return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

    def _now(self) -> int:
        return int(self.clock())

    # -- per-key write lock ----------------------------------------------------

    @contextmanager
    def lock(self, key_arn: str, owner: str, ttl_seconds: int = DEFAULT_LOCK_TTL_SECONDS,
             wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> Iterator[Lease]:
        """Hold the write lock of `key_arn` for the block.

        KMS PutKeyPolicy replaces the whole policy and has no conditional form
        (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html), so two
        writers that read-modify-write the same key must be serialised, or one loses the
        other's statement. The lock is a lease: it expires `ttl_seconds` after it was taken,
        so a writer that crashed while holding it blocks others for at most that long.
        Waits with bounded, jittered exponential backoff for up to `wait_seconds`, then
        raises `LockTimeout`.
        """
        lease = self._acquire(key_arn, owner, ttl_seconds, wait_seconds)
        try:
            yield lease
        finally:
            self._release(lease)

    def _try_acquire(self, key_arn: str, owner: str, token: str, ttl_seconds: int) -> int | None:
        now = self._now()
        expires_at = now + max(1, int(ttl_seconds))
        try:
            # attribute_not_exists(id): nobody holds it; expiration < :now: the holder's lease
            # ran out (TTL deletion may lag by days, so the condition checks it itself).
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": LOCK_PREFIX + key_arn},
                    "key_arn": {"S": key_arn},
                    "owner": {"S": owner},
                    "token": {"S": token},
                    "acquired_at": {"S": _iso(now)},
                    "expiration": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(#id) OR #exp < :now",
                ExpressionAttributeNames={"#id": "id", "#exp": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return None
            raise
        return expires_at

    def _acquire(self, key_arn: str, owner: str, ttl_seconds: int, wait_seconds: float) -> Lease:
        token = uuid.uuid4().hex
        deadline = self.clock() + wait_seconds
        delay = 0.05
        while True:
            expires_at = self._try_acquire(key_arn, owner, token, ttl_seconds)
            if expires_at is not None:
                return Lease(key_arn, owner, token, expires_at)
            remaining = deadline - self.clock()
            if remaining <= 0:
                holder = self._lock_holder(key_arn)
                raise LockTimeout(f"lock on {key_arn} still held by {holder or 'someone'} after "
                                  f"{wait_seconds:g}s")
            # "Equal jitter": between half and all of the current delay, which doubles from
            # 50 ms up to 1 s, so waiters spread out yet notice an expired lease within ~1 s.
            self.sleep(min(remaining, delay * (0.5 + random.random() / 2)))
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _lock_holder(self, key_arn: str) -> str | None:
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": LOCK_PREFIX + key_arn}},
                                    ConsistentRead=True).get("Item")
        return item["owner"]["S"] if item else None

    def _release(self, lease: Lease) -> None:
        # Only our own lease: a lease that expired and was taken over belongs to the new holder.
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"id": {"S": LOCK_PREFIX + lease.key_arn}},
                ConditionExpression="#owner = :owner AND #token = :token",
                ExpressionAttributeNames={"#owner": "owner", "#token": "token"},
                ExpressionAttributeValues={":owner": {"S": lease.owner}, ":token": {"S": lease.token}},
            )
        except Exception as exc:
            if not self._conditional_failed(exc):
                raise
            lease.lost = True
            log.warning("lock on %s expired before %s released it; another writer may have taken it over",
                        lease.key_arn, lease.owner)

    # -- audit -----------------------------------------------------------------

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

    # -- notification rate limit ------------------------------------------------

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


class NullStore:
    """The same API as `Store`, for runs without a table: no lock (a no-op), audit records
    kept in this process only, and every notification goes out."""

    persistent = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._changes: dict[str, dict[str, Any]] = {}

    @contextmanager
    def lock(self, key_arn: str, owner: str, ttl_seconds: int = DEFAULT_LOCK_TTL_SECONDS,
             wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> Iterator[Lease]:
        yield Lease(key_arn, owner, "", int(self.clock()) + int(ttl_seconds))

    def record_change(self, change: dict[str, Any], event_id: str, finding: Any, applied_by: str) -> str:
        change_id = str(uuid.uuid4())
        finding_d = _as_dict(finding)
        kind = change_kind(change)
        self._changes[change_id] = {
            "change_id": change_id,
            "kind": kind,
            "key_arn": _key_arn_of(change, kind, finding_d if isinstance(finding_d, dict) else None),
            "target": change.get("target"),
            "event_id": event_id,
            "applied_by": applied_by,
            "applied_at": _iso(self.clock()),
            "change": json.loads(json.dumps(change, default=str)),
            "finding": json.loads(json.dumps(finding_d, default=str)),
            "rolled_back": False,
            "rolled_back_at": None,
            "rolled_back_by": None,
        }
        return change_id

    def get_change(self, change_id: str) -> dict[str, Any] | None:
        found = self._changes.get(change_id)
        return json.loads(json.dumps(found)) if found else None

    def list_changes(self, key_arn: str | None = None) -> list[dict[str, Any]]:
        changes = [json.loads(json.dumps(c)) for c in self._changes.values()
                   if key_arn is None or c["key_arn"] == key_arn]
        changes.sort(key=lambda c: (c["applied_at"] or "", c["change_id"]))
        return changes

    def mark_rolled_back(self, change_id: str, by: str) -> None:
        found = self._changes.get(change_id)
        if found is None:
            raise UnknownChange(f"no change {change_id}")
        if found["rolled_back"]:
            raise AlreadyRolledBack(f"change {change_id} is already rolled back")
        found.update(rolled_back=True, rolled_back_at=_iso(self.clock()), rolled_back_by=by)

    def should_notify(self, finding_fingerprint: str, window_seconds: int) -> bool:
        return True


def store_from_settings(settings: Any, client_factory: Callable[[str], Any]) -> Store | NullStore:
    """`Store` on `settings.table_name`, with `client_factory("dynamodb")` (e.g. an
    AwsGateway's `client`); without a table name, a `NullStore` and one line on stderr
    (../shared/contract/README.md: "none: no persistence, said on stderr")."""
    table_name = getattr(settings, "table_name", None)
    if not table_name:
        print(NO_TABLE_MESSAGE, file=sys.stderr)
        return NullStore()
    return Store(table_name, client_factory("dynamodb"))
