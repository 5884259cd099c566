"""Audit records of writes (`change#<uuid4>`, kept 400 days), tamper-evident. (The
notification window, `notify#<fingerprint>`, is keyfix.store.windows.)

One record per write keyfix makes, written in two steps so that no write goes unrecorded
(issue #9, section 5): `record_intent` BEFORE the AWS call (status `intent`), then
`record_outcome` after it (`applied`, `unverified`, `failed` or `already-present`). A write
whose answer was lost therefore still has its record, and `list_unverified` finds it for a
later check, which settles it with another `record_outcome`.

The whole record is one canonical JSON text (attribute `record`), MACed by the stack's KMS
HMAC key (attribute `mac`, see keyfix.store.mac); every other attribute of the item is an
unsigned copy for people reading the table, never read back. Each record also carries a
sequence number from one counter item (`seq#audit`), so that `keyfix history` can show
numbers that are missing: records deleted (or expired, or an intent whose put failed).
Updates re-MAC the record and are conditional on the record text read, so two updates
cannot interleave and an update never launders a record that does not verify.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from keyfix.store.common import (
    AUDIT_RETENTION_SECONDS,
    CHANGE_PREFIX,
    SEQUENCE_ID,
    AlreadyRolledBack,
    StoreError,
    TableStore,
    TamperedRecord,
    UnknownChange,
    _as_dict,
    _iso,
    _key_arn_of,
    change_kind,
)
from keyfix.store.mac import MacError, canonical_json, record_digest

RECORD_SCHEMA = "keyfix.audit/1"
INTENT = "intent"
OUTCOMES = ("applied", "unverified", "failed", "already-present")
# Which outcome may follow which status: an intent gets its outcome; an unverified write
# is settled by a later check. Nothing else changes a record's status.
NEXT_STATUSES = {INTENT: set(OUTCOMES), "unverified": {"applied", "failed", "unverified"}}
# An intent older than this has no live writer (the function times out after 60 s,
# template.yaml): its outcome was never recorded, so it is as unsettled as `unverified`.
STALE_INTENT_SECONDS = 120

# The sparse global secondary index that lists audit records without a scan (template.yaml
# KeyfixTable, `by-change`): every `change#` item carries `change_list` (one constant value)
# and `change_at` (its applied_at), both unsigned copies like the others. Hiding a record from
# the index (removing `change_list`) is a deletion as far as history goes: the sequence gap
# shows it, as it shows a deleted record (README, "Audit records are tamper-evident").
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html
CHANGE_INDEX = "by-change"
CHANGE_LIST_ATTRIBUTE, CHANGE_LIST_VALUE, CHANGE_AT_ATTRIBUTE = "change_list", "audit", "change_at"

NO_KEY_REASON = "KEYFIX_AUDIT_KEY_ARN is not configured, so the record's MAC cannot be checked"
NO_MAC_REASON = "the record carries no MAC (written without KEYFIX_AUDIT_KEY_ARN, or by someone else)"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class AuditRecords:
    """The audit-record logic shared by `Store` (DynamoDB) and `NullStore` (memory).

    Needs `clock`, `mac` (a keyfix.store.mac signer, or None: records then carry no MAC and
    nothing verifies) and the storage primitives `_next_seq`, `_put_new`, `_replace`,
    `_read`, `_scan`, `_issued`."""

    mac: Any
    clock: Any

    # -- writing ----------------------------------------------------------------------

    def record_intent(self, change: dict[str, Any], event_id: str, finding: Any, applied_by: str) -> str:
        """Record, before the AWS write, what keyfix is about to write; returns the change id.
        Raises (MacError, AWS errors) when it cannot: then the write must not happen."""
        return self._create(change, event_id, finding, applied_by, INTENT, {})

    def record_outcome(self, change_id: str, status: str, details: dict[str, Any] | None = None) -> None:
        """Record the outcome of the write `change_id` (or settle an `unverified` one).
        `details` (e.g. {"after": ..., "grant_id": ..., "reason": ...}) are merged into the
        record's `outcome`. Raises UnknownChange, TamperedRecord, StoreError (a status that
        may not follow the current one), ValueError (an unknown status)."""
        if status not in OUTCOMES:
            raise ValueError(f"outcome status must be one of {', '.join(OUTCOMES)}, not {status!r}")
        raw, body = self._load_verified(change_id)
        allowed = NEXT_STATUSES.get(body.get("status"), set())
        if status not in allowed:
            raise StoreError(f"change {change_id} is {body.get('status')!r}; it cannot become {status!r}")
        now = _iso(self.clock())
        body["status"], body["status_at"] = status, now
        body["outcome"] = {**(body.get("outcome") or {}), **_jsonable(details or {})}
        body["status_history"] = [*body.get("status_history", []), [status, now]]
        self._update(change_id, raw, body)

    def record_change(self, change: dict[str, Any], event_id: str, finding: Any, applied_by: str) -> str:
        """Intent and outcome `applied` in one record: for a write already confirmed."""
        return self._create(change, event_id, finding, applied_by, "applied", {})

    def mark_rolled_back(self, change_id: str, by: str) -> None:
        """Raises UnknownChange, AlreadyRolledBack or TamperedRecord; once only."""
        raw, body = self._load_verified(change_id)
        if body.get("rolled_back_at"):
            raise AlreadyRolledBack(f"change {change_id} is already rolled back")
        body["rolled_back_at"], body["rolled_back_by"] = _iso(self.clock()), by
        try:
            self._update(change_id, raw, body)
        except StoreError:
            if (self.get_change(change_id) or {}).get("rolled_back"):
                raise AlreadyRolledBack(f"change {change_id} is already rolled back") from None
            raise

    def signing_problem(self) -> str | None:
        """None when this store can MAC a record now; else why not (checked by rollback
        before it writes anything, so that it can mark what it undid)."""
        if self.mac is None:
            return NO_KEY_REASON
        try:
            self.mac.sign(record_digest("probe#", "{}"))
        except MacError as exc:
            return str(exc)
        return None

    def _create(self, change: dict[str, Any], event_id: str, finding: Any, applied_by: str, status: str,
                outcome: dict[str, Any]) -> str:
        change_id = str(uuid.uuid4())
        now = self.clock()
        finding_d = _as_dict(finding)
        kind = change_kind(change)
        body = {
            "schema": RECORD_SCHEMA,
            "change_id": change_id,
            "seq": self._next_seq(),
            "kind": kind,
            "key_arn": _key_arn_of(change, kind, finding_d if isinstance(finding_d, dict) else None),
            "target": change.get("target"),
            "event_id": event_id or "",
            "applied_by": applied_by,
            "applied_at": _iso(now),
            "change": _jsonable(change),
            "finding": _jsonable(finding_d),
            "status": status,
            "status_at": _iso(now),
            "status_history": [[status, _iso(now)]],
            "outcome": _jsonable(outcome),
            "rolled_back_at": None,
            "rolled_back_by": None,
            "expiration": int(now) + AUDIT_RETENTION_SECONDS,
        }
        record_json = canonical_json(body)
        item_id = CHANGE_PREFIX + change_id
        self._put_new(item_id, record_json, self._sign(item_id, record_json), body)
        return change_id

    def _sign(self, item_id: str, record_json: str) -> str | None:
        return None if self.mac is None else self.mac.sign(record_digest(item_id, record_json))

    def _load_verified(self, change_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The raw item and its record body, refusing one that does not verify (an update
        would re-MAC it, turning a forgery into a genuine-looking record)."""
        raw = self._read(CHANGE_PREFIX + change_id)
        if raw is None:
            raise UnknownChange(f"no change {change_id}")
        decoded = self._decode(raw)
        if self.mac is not None and not decoded["verified"]:
            raise TamperedRecord(f"change {change_id} does not verify: {decoded['verify_error']}")
        if decoded.get("unreadable"):
            raise TamperedRecord(f"change {change_id} is unreadable: {decoded['verify_error']}")
        return raw, json.loads(raw["record"])

    def _update(self, change_id: str, raw: dict[str, Any], body: dict[str, Any]) -> None:
        record_json = canonical_json(body)
        item_id = CHANGE_PREFIX + change_id
        self._replace(item_id, raw["record"], record_json, self._sign(item_id, record_json), body)

    # -- reading --------------------------------------------------------------------------

    def get_change(self, change_id: str) -> dict[str, Any] | None:
        """The record, with `verified` (its MAC checked by the configured key) and
        `verify_error` (why not); None when there is no item."""
        raw = self._read(CHANGE_PREFIX + change_id)
        return self._decode(raw) if raw else None

    def list_changes(self, key_arn: str | None = None, *, scan: bool = False) -> list[dict[str, Any]]:
        """Every audit record (of `key_arn` only, when given), oldest first, each with
        `verified`. The key filter uses the record itself, not an unsigned attribute. Read
        through the `by-change` index; `scan=True` reads the whole table instead, for records
        written before the index existed (they lack its attributes and show as gaps)."""
        changes = [self._decode(raw) for raw in (self._scan() if scan else self._listed())]
        if key_arn:
            changes = [c for c in changes if c["key_arn"] == key_arn]
        changes.sort(key=lambda c: (c["applied_at"] or "", c.get("seq") or 0, c["change_id"]))
        return changes

    def list_unverified(self, verified_only: bool = True) -> list[dict[str, Any]]:
        """Records a later check must settle: status `unverified`, and intents older than
        STALE_INTENT_SECONDS (their writer died before recording the outcome). Only
        MAC-verified ones unless `verified_only` is False: a check must not act on a
        record anyone could have written."""
        now = self.clock()
        out = []
        for record in self.list_changes():  # through the index: the function never scans for this
            if verified_only and not record["verified"]:
                continue
            if record["rolled_back"]:
                continue
            if record["status"] == "unverified" or (
                    record["status"] == INTENT and now - _epoch(record["applied_at"], now) >= STALE_INTENT_SECONDS):
                out.append(record)
        return out

    def sequence_gaps(self, records: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Sequence numbers issued but not present: {"issued": n, "present": k, "missing": [[a, b], ...]}.
        A gap is a deleted record, an expired one (400 days), or an intent whose put failed
        after its number was taken; the counter itself is unsigned, so deleting the newest
        records AND lowering the counter is not detected here (README, security model)."""
        records = self.list_changes() if records is None else records
        seqs = sorted({r["seq"] for r in records if isinstance(r.get("seq"), int) and r.get("verified")})
        issued = max([self._issued(), *seqs], default=0)
        missing, expected = [], 1
        for seq in [*seqs, issued + 1]:
            if seq > expected:
                missing.append([expected, seq - 1])
            expected = max(expected, seq + 1)
        return {"issued": issued, "present": len(seqs), "missing": missing}

    def _listed(self) -> list[dict[str, Any]]:
        """Every audit item, as cheaply as the storage allows (NullStore: its memory)."""
        return self._scan()

    def _decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        item_id = raw["id"]
        change_id = item_id[len(CHANGE_PREFIX):]
        text = raw.get("record")
        if text is None:
            return _stub(change_id, "no record body: an item keyfix did not write in this format (legacy or "
                                    "forged); it carries no MAC", raw.get("legacy"))
        try:
            body = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return _stub(change_id, f"the record is not JSON ({exc})")
        if not isinstance(body, dict):
            return _stub(change_id, "the record is not a JSON object")
        record = _view(change_id, body)
        mac = raw.get("mac")
        if not mac:
            verified, why = False, NO_MAC_REASON
        elif self.mac is None:
            verified, why = False, NO_KEY_REASON
        else:
            verified, why = self.mac.verify(record_digest(item_id, text), mac)
        if verified and body.get("change_id") != change_id:  # cannot happen: the id is MACed too
            verified, why = False, "the record's change id is not its item's"
        record["verified"], record["verify_error"] = verified, why
        return record


def _view(change_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """What get_change returns for a record body (missing fields become None)."""

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) else None

    change = body.get("change") if isinstance(body.get("change"), dict) else {}
    outcome = body.get("outcome") if isinstance(body.get("outcome"), dict) else {}
    seq = body.get("seq")
    return {
        "change_id": change_id,
        "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        "kind": text("kind"),
        "key_arn": text("key_arn"),
        "target": text("target"),
        "event_id": text("event_id"),
        "applied_by": text("applied_by"),
        "applied_at": text("applied_at"),
        "status": text("status"),
        "status_at": text("status_at"),
        "status_history": body.get("status_history") if isinstance(body.get("status_history"), list) else [],
        "change": change,
        "outcome": outcome,
        "finding": body.get("finding"),
        "rolled_back": bool(body.get("rolled_back_at")),
        "rolled_back_at": text("rolled_back_at"),
        "rolled_back_by": text("rolled_back_by"),
        "unreadable": False,
    }


def _epoch(iso: str | None, default: float) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat((iso or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def _stub(change_id: str, why: str, legacy: dict[str, Any] | None = None) -> dict[str, Any]:
    record = _view(change_id, legacy or {})
    record.update(verified=False, verify_error=why, unreadable=legacy is None)
    return record


class AuditMixin(AuditRecords, TableStore):
    """The audit records of `Store`, on DynamoDB."""

    def _next_seq(self) -> int:
        # ADD on a Number is atomic: concurrent writers get distinct numbers.
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.ADD
        answer = self.client.update_item(
            TableName=self.table_name, Key={"id": {"S": SEQUENCE_ID}}, UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "issued"}, ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["issued"]["N"])

    def _issued(self) -> int:
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": SEQUENCE_ID}},
                                    ConsistentRead=True).get("Item") or {}
        try:
            return int(item.get("issued", {}).get("N", "0"))
        except ValueError:
            return 0

    @staticmethod
    def _plain(body: dict[str, Any]) -> dict[str, Any]:
        # Unsigned copies for people browsing the table; keyfix never reads them back.
        plain = {name: body.get(name) for name in ("change_id", "kind", "key_arn", "target", "status")}
        plain[CHANGE_LIST_ATTRIBUTE] = CHANGE_LIST_VALUE  # the by-change index (CHANGE_INDEX)
        plain[CHANGE_AT_ATTRIBUTE] = body.get("applied_at") or ""
        return {name: {"S": str(value)} for name, value in plain.items() if value is not None}

    def _put_new(self, item_id: str, record_json: str, mac: str | None, body: dict[str, Any]) -> None:
        item = {"id": {"S": item_id}, "record": {"S": record_json},
                "expiration": {"N": str(body["expiration"])}, **self._plain(body)}
        if mac:
            item["mac"] = {"S": mac}
            item["mac_key"] = {"S": self.mac.key_arn}
        self.client.put_item(TableName=self.table_name, Item=item,
                             ConditionExpression="attribute_not_exists(#id)",  # a uuid4 collision must not overwrite
                             ExpressionAttributeNames={"#id": "id"})

    def _replace(self, item_id: str, old_json: str, record_json: str, mac: str | None,
                 body: dict[str, Any]) -> None:
        names = {"#rec": "record", "#mac": "mac"}
        values: dict[str, Any] = {":old": {"S": old_json}, ":rec": {"S": record_json}}
        sets = ["#rec = :rec"]
        for name, value in self._plain(body).items():
            names[f"#{name}"], values[f":{name}"] = name, value
            sets.append(f"#{name} = :{name}")
        if mac:
            values[":mac"] = {"S": mac}
            sets.append("#mac = :mac")
            expression = "SET " + ", ".join(sets)
        else:
            expression = "SET " + ", ".join(sets) + " REMOVE #mac"
        try:
            self.client.update_item(TableName=self.table_name, Key={"id": {"S": item_id}},
                                    UpdateExpression=expression, ConditionExpression="#rec = :old",
                                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except Exception as exc:
            if self._conditional_failed(exc):
                raise StoreError(f"{item_id} changed while keyfix updated it; not updated") from None
            raise

    def _read(self, item_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": item_id}},
                                    ConsistentRead=True).get("Item")
        return _raw(item) if item else None

    def _listed(self) -> list[dict[str, Any]]:
        """Every indexed `change#` item: one Query of the sparse `by-change` index, oldest
        first (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html).
        A GSI is eventually consistent, so a record written a moment ago may be missing for
        a moment; the later check that settles records runs minutes after any write. A table
        without the index (a stack not yet updated) is scanned instead, with a warning."""
        paginator = self.client.get_paginator("query")
        items = []
        try:
            for page in paginator.paginate(TableName=self.table_name, IndexName=CHANGE_INDEX,
                                           KeyConditionExpression="#l = :l",
                                           ExpressionAttributeNames={"#l": CHANGE_LIST_ATTRIBUTE},
                                           ExpressionAttributeValues={":l": {"S": CHANGE_LIST_VALUE}}):
                items.extend(_raw(item) for item in page.get("Items", [])
                             if item.get("id", {}).get("S", "").startswith(CHANGE_PREFIX))
        except Exception as exc:
            if not _no_such_index(exc):
                raise
            import logging

            logging.getLogger("keyfix").warning("table %s has no %s index (update the stack): audit records "
                                                "listed by a scan", self.table_name, CHANGE_INDEX)
            return self._scan()
        return items

    def _scan(self) -> list[dict[str, Any]]:
        """Every `change#` item by a Scan with a filter: only for `keyfix history --scan`
        (records from before the index) and a table without the index.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Scan.html"""
        paginator = self.client.get_paginator("scan")
        items = []
        for page in paginator.paginate(TableName=self.table_name, FilterExpression="begins_with(#id, :prefix)",
                                       ExpressionAttributeNames={"#id": "id"},
                                       ExpressionAttributeValues={":prefix": {"S": CHANGE_PREFIX}},
                                       ConsistentRead=True):
            items.extend(_raw(item) for item in page.get("Items", []))
        return items


def _no_such_index(exc: Exception) -> bool:
    # AWS answers ValidationException ("The table does not have the specified index"); moto
    # ResourceNotFoundException ("Invalid index"). Either way the message names the index.
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    return error.get("Code") in ("ValidationException", "ResourceNotFoundException") \
        and "index" in str(error.get("Message", "")).lower()


def _raw(item: dict[str, Any]) -> dict[str, Any]:
    strings = {name: value["S"] for name, value in item.items() if isinstance(value, dict) and "S" in value}
    raw = {"id": strings.get("id", ""), "record": strings.get("record"), "mac": strings.get("mac")}
    if raw["record"] is None:
        # An item of the earlier, unsigned format: shown by history (never verified).
        legacy = dict(strings)
        for name in ("change", "finding"):
            try:
                legacy[name] = json.loads(strings[name]) if name in strings else None
            except ValueError:
                legacy[name] = None
        raw["legacy"] = legacy
    return raw
