"""Locks, audit records and notification rate limits in keyfix's one DynamoDB table.

The table (template.yaml, `KeyfixTable`) has the partition key `id` (S) and the TTL
attribute `expiration` (Number, epoch seconds). Several kinds of item share it, told
apart by the prefix of `id`:

    lock#<key ARN>         per-key write lease              (keyfix.store.lock)
    change#<uuid4>         audit record of one write         (keyfix.store.audit, 400 days)
    notify#<fingerprint>   last notification for a finding   (keyfix.store.audit)
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

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from keyfix.store.audit import AuditMixin, RateLimitMixin
from keyfix.store.common import (
    AUDIT_RETENTION_SECONDS,
    CHANGE_PREFIX,
    DEFAULT_LOCK_TTL_SECONDS,
    DEFAULT_LOCK_WAIT_SECONDS,
    LOCK_PREFIX,
    MAX_BACKOFF_SECONDS,
    NO_TABLE_MESSAGE,
    NOTIFY_PREFIX,
    AlreadyRolledBack,
    LockTimeout,
    StoreError,
    UnknownChange,
    _as_dict,
    _iso,
    _key_arn_of,
    change_kind,
    finding_fingerprint,
)
from keyfix.store.lock import Lease, LockMixin, log

__all__ = [
    "AUDIT_RETENTION_SECONDS",
    "CHANGE_PREFIX",
    "DEFAULT_LOCK_TTL_SECONDS",
    "DEFAULT_LOCK_WAIT_SECONDS",
    "LOCK_PREFIX",
    "MAX_BACKOFF_SECONDS",
    "NOTIFY_PREFIX",
    "NO_TABLE_MESSAGE",
    "AlreadyRolledBack",
    "Lease",
    "LockTimeout",
    "NullStore",
    "Store",
    "StoreError",
    "UnknownChange",
    "change_kind",
    "finding_fingerprint",
    "log",
    "store_from_settings",
]


class Store(LockMixin, AuditMixin, RateLimitMixin):
    """Locks, audit and notification rate limits on the DynamoDB table `table_name`.

    `dynamodb_client` is a low-level boto3 DynamoDB client; `clock` returns epoch seconds
    and `sleep` waits (both replaceable in tests).
    """

    persistent = True


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
    (docs/contract.md: "none: no persistence, said on stderr")."""
    table_name = getattr(settings, "table_name", None)
    if not table_name:
        print(NO_TABLE_MESSAGE, file=sys.stderr)
        return NullStore()
    return Store(table_name, client_factory("dynamodb"))
