"""The notification window of `Store`: one item `notify#<finding fingerprint>` per finding,
whose expiry is when on-call may be told about it again (keyfix.pipeline, keyfix.predict)."""

from __future__ import annotations

from typing import Any

from keyfix.store.common import NOTIFY_PREFIX, TableStore, _iso


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
                Item=_window(finding_fingerprint, now, window_seconds),
                ConditionExpression="attribute_not_exists(#id) OR #exp <= :now",
                ExpressionAttributeNames={"#id": "id", "#exp": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    def open_window(self, finding_fingerprint: str, window_seconds: int) -> None:
        """Start a finding's window now, whatever was there: keyfix is telling on-call itself
        (a write is always told), so nobody else should for `window_seconds`. One PutItem."""
        self.client.put_item(TableName=self.table_name,
                             Item=_window(finding_fingerprint, self._now(), window_seconds))


def _window(finding_fingerprint: str, now: int, window_seconds: int) -> dict[str, Any]:
    return {
        "id": {"S": NOTIFY_PREFIX + finding_fingerprint},
        "notified_at": {"S": _iso(now)},
        "expiration": {"N": str(now + int(window_seconds))},
    }
