"""Locks, audit records and notification rate limits in keyfix's one DynamoDB table.

The table (template.yaml, `KeyfixTable`) has the partition key `id` (S) and the TTL
attribute `expiration` (Number, epoch seconds). Several kinds of item share it, told
apart by the prefix of `id`:

    lock#<key ARN>         per-key write lease              (keyfix.store.lock)
    change#<uuid4>         audit record of one write         (keyfix.store.audit, 400 days)
    seq#audit              counter numbering audit records   (keyfix.store.audit)
    notify#<fingerprint>   last notification for a finding   (keyfix.store.audit)
    incident#<sha256>      Powertools idempotency record     (keyfix.idempotency)

DynamoDB deletes expired items only eventually (typically within a few days), so every
condition that treats an item as gone also compares `expiration` with the time now:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
Conditional writes are atomic per item, which is what the lock and rate limit rest on:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate

Without `KEYFIX_TABLE_NAME` keyfix keeps nothing: `store_from_settings` then returns a
`NullStore` (same API, memory only) and says so on stderr. Audit records are MACed by the
KMS HMAC key `KEYFIX_AUDIT_KEY_ARN` (keyfix.store.mac); without it they carry no MAC, which
`keyfix rollback` refuses, and `store_from_settings` says so on stderr.

boto3/botocore are imported inside functions only (Lambda cold start).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from keyfix.store.audit import OUTCOMES, STALE_INTENT_SECONDS, AuditMixin, AuditRecords
from keyfix.store.common import (
    AUDIT_KEY_ENV,
    AUDIT_RETENTION_SECONDS,
    CHANGE_PREFIX,
    DEFAULT_LOCK_TTL_SECONDS,
    DEFAULT_LOCK_WAIT_SECONDS,
    LOCK_PREFIX,
    MAX_BACKOFF_SECONDS,
    NO_AUDIT_KEY_MESSAGE,
    NO_TABLE_MESSAGE,
    NOTIFY_PREFIX,
    SEQUENCE_ID,
    AlreadyRolledBack,
    LockTimeout,
    StoreError,
    TamperedRecord,
    UnknownChange,
    change_kind,
    finding_fingerprint,
)
from keyfix.store.lock import Lease, LockMixin, log
from keyfix.store.mac import KmsMac, LocalMac, MacError
from keyfix.store.windows import RateLimitMixin

__all__ = [
    "AUDIT_KEY_ENV",
    "AUDIT_RETENTION_SECONDS",
    "CHANGE_PREFIX",
    "DEFAULT_LOCK_TTL_SECONDS",
    "DEFAULT_LOCK_WAIT_SECONDS",
    "LOCK_PREFIX",
    "MAX_BACKOFF_SECONDS",
    "NOTIFY_PREFIX",
    "NO_TABLE_MESSAGE",
    "OUTCOMES",
    "SEQUENCE_ID",
    "STALE_INTENT_SECONDS",
    "AlreadyRolledBack",
    "KmsMac",
    "Lease",
    "LocalMac",
    "LockTimeout",
    "MacError",
    "NullStore",
    "Store",
    "StoreError",
    "TamperedRecord",
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


class NullStore(AuditRecords):
    """The same API as `Store`, for runs without a table: no lock (a no-op), audit records
    kept in this process only (MACed with an in-process secret: nothing else can write
    them), and every notification goes out."""

    persistent = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.mac = LocalMac()
        self._items: dict[str, dict[str, Any]] = {}
        self._seq = 0

    @contextmanager
    def lock(self, key_arn: str, owner: str, ttl_seconds: int = DEFAULT_LOCK_TTL_SECONDS,
             wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> Iterator[Lease]:
        yield Lease(key_arn, owner, "", int(self.clock()) + int(ttl_seconds))

    def should_notify(self, finding_fingerprint: str, window_seconds: int) -> bool:
        return True

    def open_window(self, finding_fingerprint: str, window_seconds: int) -> None:
        return None  # no table: every notification goes out

    # -- AuditRecords storage, in memory -------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _issued(self) -> int:
        return self._seq

    def _put_new(self, item_id: str, record_json: str, mac: str | None, body: dict[str, Any]) -> None:
        if item_id in self._items:
            raise StoreError(f"{item_id} exists")
        self._items[item_id] = {"id": item_id, "record": record_json, "mac": mac}

    def _replace(self, item_id: str, old_json: str, record_json: str, mac: str | None,
                 body: dict[str, Any]) -> None:
        item = self._items.get(item_id)
        if item is None or item["record"] != old_json:
            raise StoreError(f"{item_id} changed while keyfix updated it; not updated")
        item.update(record=record_json, mac=mac)

    def _read(self, item_id: str) -> dict[str, Any] | None:
        item = self._items.get(item_id)
        return dict(item) if item else None

    def _scan(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self._items.values()]


def store_from_settings(settings: Any, client_factory: Callable[[str], Any]) -> Store | NullStore:
    """`Store` on `settings.table_name`, with `client_factory("dynamodb")` (e.g. an
    AwsGateway's `client`; called as `client_factory("kms", region=...)` for the audit key);
    without a table name, a `NullStore` and one line on stderr
    (docs/contract.md: "none: no persistence, said on stderr")."""
    table_name = getattr(settings, "table_name", None)
    if not table_name:
        print(NO_TABLE_MESSAGE, file=sys.stderr)
        return NullStore()
    return Store(table_name, client_factory("dynamodb"), mac=audit_mac(settings, client_factory))


def audit_mac(settings: Any, client_factory: Callable[[str], Any]) -> KmsMac | None:
    """The signer of audit records: the KMS HMAC key `KEYFIX_AUDIT_KEY_ARN` (a setting when
    keyfix.config has it, else the environment variable); None, said on stderr, without one."""
    key_arn = getattr(settings, "audit_key_arn", None) or os.environ.get(AUDIT_KEY_ENV) or None
    if not key_arn:
        print(NO_AUDIT_KEY_MESSAGE, file=sys.stderr)
        return None
    # KMS calls go to the key's own Region (from its ARN), whatever Region the event came from.
    parts = key_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else None
    return KmsMac(key_arn, client_factory("kms", region=region))
