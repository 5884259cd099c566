"""Where an unfinished sweep stopped, kept in keyfix's table for the next invocation.

Choice (issue #11): the sweep does not re-invoke itself (that would need
lambda:InvokeFunction on its own role, a write permission); it leaves a cursor in the table
and the next scheduled invocation carries on from it, so a big account is covered over
several consecutive sweeps and no group is checked twice in one pass. The cursor is the
listing's page token and how many subjects of that page were done; a token AWS no longer
accepts restarts the pass, and the sweep says so.

Item: id "sweep#cursor#<region>", `cursor` (JSON text), `expiration` (the table's TTL
attribute; a day: a cursor older than that starts the pass afresh).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

CURSOR_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Cursor:
    phase: str = "groups"  # "groups" | "instances"
    token: str | None = None  # the page token that fetched the page to resume (None: the first)
    offset: int = 0  # subjects of that page already done

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Cursor | None:
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("phase") not in ("groups", "instances"):
            return None
        token, offset = data.get("token"), data.get("offset")
        if (token is not None and not isinstance(token, str)) or not isinstance(offset, int) or offset < 0:
            return None
        return cls(data["phase"], token, offset)


class TableCursorStore:
    """The cursor in keyfix's DynamoDB table (`dynamodb` client of the gateway)."""

    def __init__(self, dynamodb: Any, table_name: str, region: str) -> None:
        self.dynamodb, self.table, self.id = dynamodb, table_name, f"sweep#cursor#{region}"

    def load(self) -> Cursor | None:
        item = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": self.id}}, ConsistentRead=True).get("Item")
        if not item or "cursor" not in item:
            return None
        if int(item.get("expiration", {}).get("N", "0")) < time.time():
            return None
        return Cursor.from_json(item["cursor"]["S"])

    def save(self, cursor: Cursor | None) -> None:
        if cursor is None:
            self.dynamodb.delete_item(TableName=self.table, Key={"id": {"S": self.id}})
            return
        self.dynamodb.put_item(TableName=self.table, Item={
            "id": {"S": self.id}, "cursor": {"S": cursor.to_json()},
            "expiration": {"N": str(int(time.time()) + CURSOR_TTL_SECONDS)}})


class MemoryCursorStore:
    """For tests and for runs without a table (then nothing survives the invocation)."""

    def __init__(self, cursor: Cursor | None = None) -> None:
        self.cursor = cursor

    def load(self) -> Cursor | None:
        return self.cursor

    def save(self, cursor: Cursor | None) -> None:
        self.cursor = cursor
