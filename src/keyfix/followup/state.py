"""What the follow-up and recovery need to remember, in keyfix's one DynamoDB table.

Two kinds of item, beside the store's (keyfix.store):

    followup#<sha256 of the incident key>   one follow-up chain: its token, the attempt
                                            outstanding, the original event's digest, the
                                            change ids, and whether it escalated
    repair#<account>#<region>#<group>       a group keyfix repaired: first failure, repair
                                            time, change ids, and when it recovered

Every step that must happen once (advance an attempt, escalate, recover) is one conditional
write, atomic per item, so a duplicated SQS delivery or two concurrent launches cannot do it
twice: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
`expiration` is the table's TTL attribute; DynamoDB deletes expired items only eventually, so
conditions compare it with the time now as well
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from keyfix.utc import iso, iso_ms

FOLLOWUP_PREFIX = "followup#"
REPAIR_PREFIX = "repair#"
# A chain lives at most ~10 minutes; its record is kept a day so that further failures of the
# same incident within that day neither start a new chain nor escalate again.
CHAIN_RECORD_SECONDS = 24 * 3600
# A repair waits this long for the group's next successful launch (a group may sit at its
# desired capacity for days before it scales out again).
REPAIR_RECORD_SECONDS = 14 * 24 * 3600


def epoch_of(text: str | None) -> float | None:
    """Seconds since the epoch of an ISO-8601 time (a trailing Z allowed); None if unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _sha256_of(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_id(incident_key: dict[str, Any]) -> str:
    return _sha256_of(incident_key)


def event_digest(event: Any) -> str:
    return _sha256_of(event)


def repair_id(account: str, region: str, group: str) -> str:
    return f"{REPAIR_PREFIX}{account}#{region}#{group}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": str(int(value))}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            out[name] = int(value["N"])
    return out


def _conditional_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class FollowUpTable:
    """The follow-up and repair items of table `table_name`, through a low-level DynamoDB
    client. `clock` returns epoch seconds (replaceable in tests)."""

    def __init__(self, table_name: str, client: Any, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self.client = client
        self.clock = clock

    # -- follow-up chains -------------------------------------------------------------------

    def start_chain(self, chain: str, *, first_failure_at: str, reason: str, digest: str,
                    change_ids: list[str], group: str | None) -> str | None:
        """Open chain `chain` with attempt 1 outstanding; returns its token, or None when a chain
        for this incident is already open or ended within CHAIN_RECORD_SECONDS (bounded: one
        chain per incident, and an escalated incident stays escalated)."""
        now = self.clock()
        token = secrets.token_hex(16)
        item = {
            "id": _s(FOLLOWUP_PREFIX + chain), "token": _s(token), "attempt": _n(1), "handled": _n(0),
            "first_failure_at": _s(first_failure_at), "reason": _s(reason), "digest": _s(digest),
            "change_ids": _s(json.dumps(change_ids)), "started_at": _s(iso(now)),
            "expiration": _n(now + CHAIN_RECORD_SECONDS),
        }
        if group:
            item["group"] = _s(group)
        try:
            self.client.put_item(TableName=self.table_name, Item=item,
                                 ConditionExpression="attribute_not_exists(#id) OR #exp <= :now",
                                 ExpressionAttributeNames={"#id": "id", "#exp": "expiration"},
                                 ExpressionAttributeValues={":now": _n(now)})
        except Exception as exc:
            if _conditional_failed(exc):
                return None
            raise
        return token

    def claim_attempt(self, chain: str, token: str, attempt: int, digest: str) -> dict[str, Any] | None:
        """Take attempt `attempt` of chain `chain` for this invocation: only if the token and
        the original event's digest are the chain's, that attempt is the one outstanding, it
        was not handled yet and the chain has not ended. Returns the chain's record, or None
        (a forged, stale or duplicated message: it must change nothing)."""
        now = self.clock()
        try:
            answer = self.client.update_item(
                TableName=self.table_name, Key={"id": _s(FOLLOWUP_PREFIX + chain)},
                UpdateExpression="SET #handled = :n",
                ConditionExpression=("attribute_exists(#id) AND #token = :token AND #digest = :digest "
                                     "AND #attempt = :n AND #handled < :n AND attribute_not_exists(#done) "
                                     "AND #exp > :now"),
                ExpressionAttributeNames={"#id": "id", "#token": "token", "#digest": "digest", "#attempt": "attempt",
                                          "#handled": "handled", "#done": "done_at", "#exp": "expiration"},
                ExpressionAttributeValues={":token": _s(token), ":digest": _s(digest), ":n": _n(attempt),
                                           ":now": _n(now)},
                ReturnValues="ALL_NEW")
        except Exception as exc:
            if _conditional_failed(exc):
                return None
            raise
        record = _plain(answer.get("Attributes") or {})
        try:
            record["change_ids"] = json.loads(record.get("change_ids") or "[]")
        except ValueError:
            record["change_ids"] = []
        return record

    def advance(self, chain: str, attempt: int, change_ids: list[str] | None = None,
                reason: str | None = None) -> bool:
        """Make attempt `attempt` + 1 the outstanding one (once: conditional on `attempt` being
        outstanding and handled)."""
        names = {"#attempt": "attempt", "#handled": "handled"}
        values: dict[str, Any] = {":n": _n(attempt), ":next": _n(attempt + 1)}
        sets = ["#attempt = :next"]
        if change_ids is not None:
            names["#changes"], values[":changes"] = "change_ids", _s(json.dumps(change_ids))
            sets.append("#changes = :changes")
        if reason is not None:
            names["#reason"], values[":reason"] = "reason", _s(reason)
            sets.append("#reason = :reason")
        return self._conditional_update(FOLLOWUP_PREFIX + chain, "SET " + ", ".join(sets),
                                        "#attempt = :n AND #handled = :n", names, values)

    def end_chain(self, chain: str, outcome: str) -> bool:
        now = self.clock()
        return self._conditional_update(
            FOLLOWUP_PREFIX + chain, "SET #done = :now, #outcome = :outcome", "attribute_not_exists(#done)",
            {"#done": "done_at", "#outcome": "outcome"}, {":now": _s(iso(now)), ":outcome": _s(outcome)})

    def mark_escalated(self, chain: str) -> bool:
        """True the first time only: the escalation is sent once per chain (and the chain's
        record keeps further failures of the incident from starting another)."""
        now = self.clock()
        return self._conditional_update(
            FOLLOWUP_PREFIX + chain, "SET #esc = :now", "attribute_exists(#id) AND attribute_not_exists(#esc)",
            {"#esc": "escalated_at", "#id": "id"}, {":now": _s(iso(now))})

    def get_chain(self, chain: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key={"id": _s(FOLLOWUP_PREFIX + chain)},
                                    ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    # -- repaired groups --------------------------------------------------------------------

    def record_repair(self, account: str, region: str, group: str, *, first_failure_at: str,
                      change_ids: list[str], chain: str) -> None:
        """Remember that keyfix repaired `group`. An open repair of the group (not recovered
        yet) keeps its first failure time: the episode started then."""
        now = self.clock()
        item_id = repair_id(account, region, group)
        names = {"#first": "first_failure_at", "#repaired": "repaired_at", "#changes": "change_ids",
                 "#chain": "chain", "#exp": "expiration", "#rec": "recovered_at", "#group": "group"}
        values = {":first": _s(first_failure_at), ":repaired": _s(iso_ms(now)), ":changes": _s(json.dumps(change_ids)),
                  ":chain": _s(chain), ":exp": _n(now + REPAIR_RECORD_SECONDS), ":group": _s(group)}
        update = ("SET #first = if_not_exists(#first, :first), #repaired = :repaired, #changes = :changes, "
                  "#chain = :chain, #exp = :exp, #group = :group")
        if self._conditional_update(item_id, update, "attribute_not_exists(#rec)", names, values):
            return
        # The last episode recovered: this is a new one.
        self.client.put_item(TableName=self.table_name, Item={
            "id": _s(item_id), "first_failure_at": _s(first_failure_at), "repaired_at": _s(iso_ms(now)),
            "change_ids": _s(json.dumps(change_ids)), "chain": _s(chain), "group": _s(group),
            "expiration": _n(now + REPAIR_RECORD_SECONDS)})

    def get_repair(self, account: str, region: str, group: str) -> dict[str, Any] | None:
        """The one read a successful launch costs."""
        item = self.client.get_item(TableName=self.table_name, Key={"id": _s(repair_id(account, region, group))},
                                    ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def mark_recovered(self, account: str, region: str, group: str, recovered_at: str) -> bool:
        """True the first time only: one "resolved" notification per repair, however many
        instances launch."""
        return self._conditional_update(
            repair_id(account, region, group), "SET #rec = :rec",
            "attribute_exists(#id) AND attribute_not_exists(#rec)", {"#rec": "recovered_at", "#id": "id"},
            {":rec": _s(recovered_at)})

    # -- helpers ----------------------------------------------------------------------------

    def _conditional_update(self, item_id: str, update: str, condition: str, names: dict[str, str],
                            values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(TableName=self.table_name, Key={"id": _s(item_id)}, UpdateExpression=update,
                                    ConditionExpression=condition, ExpressionAttributeNames=names,
                                    ExpressionAttributeValues=values)
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True
