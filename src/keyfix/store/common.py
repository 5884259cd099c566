"""What the store's parts share: item prefixes and limits, errors, audit-dict helpers, and
the table client base class. boto3/botocore are imported inside functions only."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from keyfix.utc import iso as _iso  # noqa: F401 - the store modules' name for it

LOCK_PREFIX = "lock#"
CHANGE_PREFIX = "change#"
NOTIFY_PREFIX = "notify#"
# The counter that numbers audit records (keyfix.store.audit): gaps show deleted records.
SEQUENCE_ID = "seq#audit"
# The stack's KMS HMAC key that MACs audit records (template.yaml AuditMacKey).
AUDIT_KEY_ENV = "KEYFIX_AUDIT_KEY_ARN"
AUDIT_RETENTION_SECONDS = 400 * 24 * 3600
DEFAULT_LOCK_TTL_SECONDS = 60
# Lambda's timeout is 60 s (template.yaml); waiting longer than a third of it for a lock
# leaves too little time to do the write after it.
DEFAULT_LOCK_WAIT_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 1.0
NO_TABLE_MESSAGE = "keyfix: KEYFIX_TABLE_NAME not set: no idempotency, locks or audit"
NO_AUDIT_KEY_MESSAGE = ("keyfix: KEYFIX_AUDIT_KEY_ARN not set: audit records carry no MAC, and keyfix rollback "
                        "refuses records without one")


class StoreError(Exception):
    """Base of the errors this module raises on its own account."""


class LockTimeout(StoreError):
    """The lock was held by someone else until the deadline passed."""


class UnknownChange(StoreError):
    """No audit record with that change id."""


class AlreadyRolledBack(StoreError):
    """The audit record is already marked rolled back."""


class TamperedRecord(StoreError):
    """The audit record's MAC does not verify (or it has none): keyfix will not build on it."""


def finding_fingerprint(account: str | None, principal_or_group: str | None, key_arn: str | None,
                        cause: str | None) -> str:
    """Stable sha256 hex of what a finding is about (not when, not which event)."""
    parts = [account or "", principal_or_group or "", key_arn or "", str(cause or "")]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode("utf-8")).hexdigest()


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


class TableStore:
    """The DynamoDB table `table_name` and the client, clock and sleep every part uses;
    `mac` signs and checks audit records (keyfix.store.mac.KmsMac; None: unsigned)."""

    def __init__(self, table_name: str, dynamodb_client: Any, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, mac: Any = None) -> None:
        self.table_name = table_name
        self.client = dynamodb_client
        self.clock = clock
        self.sleep = sleep
        self.mac = mac

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _conditional_failed(exc: Exception) -> bool:
        response = getattr(exc, "response", None) or {}
        return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

    def _now(self) -> int:
        return int(self.clock())
