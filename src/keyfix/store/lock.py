"""The per-key write lock: a lease item `lock#<key ARN>` taken with a conditional PutItem."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from keyfix.store.common import (
    DEFAULT_LOCK_TTL_SECONDS,
    DEFAULT_LOCK_WAIT_SECONDS,
    LOCK_PREFIX,
    MAX_BACKOFF_SECONDS,
    LockTimeout,
    TableStore,
    _iso,
)

log = logging.getLogger("keyfix.store")


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


class LockMixin(TableStore):
    """The per-key write lock of `Store`."""

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
