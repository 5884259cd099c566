"""Audit records: intent before the write, outcome after it, and tamper evidence (a KMS
HMAC over each record) against anyone who can write the table but not call GenerateMac."""

from __future__ import annotations

import base64
import json

import pytest
from store_support import ACCOUNT, KEY, TABLE, boto3_client, create_audit_key

from keyfix.report import Cause, Finding
from keyfix.store import (
    NO_AUDIT_KEY_MESSAGE,
    STALE_INTENT_SECONDS,
    KmsMac,
    NullStore,
    Store,
    StoreError,
    TamperedRecord,
    UnknownChange,
    store_from_settings,
)

SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
STATEMENT = {"Sid": "keyfix-use-slr", "Effect": "Allow", "Principal": {"AWS": SLR},
             "Action": ["kms:Decrypt"], "Resource": "*"}
BEFORE = json.dumps({"Version": "2012-10-17", "Statement": []})


def _finding():
    return Finding(Cause.SLR_NOT_IN_KEY_POLICY, SLR, KEY, ["kms:Decrypt"], "test")


def _intent(store, statements=(STATEMENT,)):
    change = {"kind": "key-policy-statement", "target": KEY, "added_statements": list(statements), "before": BEFORE}
    return store.record_intent(change, "evt-1", _finding(), "keyfix-lambda")


def _item(ddb, change_id):
    return ddb.get_item(TableName=TABLE, Key={"id": {"S": f"change#{change_id}"}})["Item"]


def _put(ddb, item):
    ddb.put_item(TableName=TABLE, Item=item)


# -- intent, outcome, settling ------------------------------------------------------------


def test_intent_then_outcome(store, clock):
    change_id = _intent(store)
    got = store.get_change(change_id)
    assert (got["status"], got["verified"], got["outcome"]) == ("intent", True, {})
    assert got["change"]["added_statements"] == [STATEMENT]
    clock.advance(2)
    store.record_outcome(change_id, "applied", {"after": "{...}"})
    got = store.get_change(change_id)
    assert (got["status"], got["verified"], got["outcome"]) == ("applied", True, {"after": "{...}"})
    assert [s for s, _ in got["status_history"]] == ["intent", "applied"]
    assert got["status_at"] == "2023-11-14T22:13:22Z" and got["applied_at"] == "2023-11-14T22:13:20Z"


def test_intent_exists_when_the_write_then_fails(store):
    change_id = _intent(store)
    # The AWS write raised here; the writer records it.
    store.record_outcome(change_id, "failed", {"reason": "PutKeyPolicy: AccessDeniedException"})
    got = store.get_change(change_id)
    assert got["status"] == "failed" and got["outcome"]["reason"].startswith("PutKeyPolicy")
    assert got["verified"] is True
    assert [r["change_id"] for r in store.list_changes()] == [change_id]


def test_unverified_is_listed_until_a_later_check_settles_it(store):
    settled, pending, done = _intent(store), _intent(store), _intent(store)
    store.record_outcome(settled, "unverified", {"reason": "read-back denied"})
    store.record_outcome(pending, "unverified", {"reason": "answer lost"})
    store.record_outcome(done, "applied", {})
    assert {r["change_id"] for r in store.list_unverified()} == {settled, pending}
    store.record_outcome(settled, "applied", {"checked": "statements in force"})
    assert [r["change_id"] for r in store.list_unverified()] == [pending]
    got = store.get_change(settled)
    assert got["outcome"] == {"reason": "read-back denied", "checked": "statements in force"}
    assert [s for s, _ in got["status_history"]] == ["intent", "unverified", "applied"]


def test_an_intent_whose_writer_died_becomes_unsettled(store, clock):
    change_id = _intent(store)
    assert store.list_unverified() == []  # its writer may still be running
    clock.advance(STALE_INTENT_SECONDS)
    assert [r["change_id"] for r in store.list_unverified()] == [change_id]


@pytest.mark.parametrize(("first", "then"), [("applied", "unverified"), ("failed", "applied"),
                                             ("already-present", "applied"), ("applied", "applied")])
def test_settled_outcomes_are_final(store, first, then):
    change_id = _intent(store)
    store.record_outcome(change_id, first, {})
    with pytest.raises(StoreError, match="cannot become"):
        store.record_outcome(change_id, then, {})
    assert store.get_change(change_id)["status"] == first


def test_bad_outcome_calls_change_nothing(store):
    change_id = _intent(store)
    with pytest.raises(ValueError, match="outcome status"):
        store.record_outcome(change_id, "intent", {})
    with pytest.raises(ValueError):
        store.record_outcome(change_id, "rolled-back", {})
    with pytest.raises(UnknownChange):
        store.record_outcome("no-such-change", "applied", {})
    assert store.get_change(change_id)["status"] == "intent"


def test_null_store_keeps_the_same_lifecycle():
    null = NullStore(clock=lambda: 1_700_000_000.0)
    change_id = _intent(null)
    null.record_outcome(change_id, "unverified", {"reason": "lost"})
    assert [r["change_id"] for r in null.list_unverified()] == [change_id]
    assert null.get_change(change_id)["verified"] is True
    null._items[f"change#{change_id}"]["record"] = null._items[f"change#{change_id}"]["record"].replace(
        "unverified", "applied")
    assert null.get_change(change_id)["verified"] is False


# -- tamper evidence ------------------------------------------------------------------------


def _forgeries(store, ddb):
    """Every way the issue's attacker (table write, no GenerateMac) might make a record:
    name -> change id of the forged item."""
    a, b = _intent(store), _intent(store)
    store.record_outcome(a, "failed", {"reason": "AccessDenied"})
    item_a, item_b = _item(ddb, a), _item(ddb, b)
    out = {}

    fresh = dict(item_b, id={"S": "change#11111111-1111-4111-8111-111111111111"})
    body = json.loads(fresh["record"]["S"])
    body["change_id"] = "11111111-1111-4111-8111-111111111111"
    fresh["record"] = {"S": json.dumps(body, sort_keys=True, separators=(",", ":"))}
    fresh.pop("mac")
    _put(ddb, fresh)
    out["fresh id, no MAC"] = "11111111-1111-4111-8111-111111111111"

    replay = dict(item_b, id={"S": "change#22222222-2222-4222-8222-222222222222"})
    _put(ddb, replay)  # a genuine record and its MAC, copied under another id
    out["replayed under another id"] = "22222222-2222-4222-8222-222222222222"

    flipped = dict(item_a, record={"S": item_a["record"]["S"].replace('"status":"failed"', '"status":"applied"')})
    assert flipped["record"] != item_a["record"]
    _put(ddb, flipped)
    out["status flipped failed -> applied"] = a

    swapped = dict(item_b, mac=item_a["mac"])
    _put(ddb, swapped)
    out["MAC of another record"] = b

    evil_key = create_audit_key(boto3_client("kms"))
    c = _intent(store)
    item_c = _item(ddb, c)
    body = json.loads(item_c["record"]["S"])
    body["change"]["added_statements"] = [{"Sid": "keyfix-x", "Effect": "Allow", "Principal": {"AWS": "*"},
                                           "Action": "kms:*", "Resource": "*"}]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    from keyfix.store.mac import record_digest

    own_mac = KmsMac(evil_key, boto3_client("kms")).sign(record_digest(f"change#{c}", text))
    _put(ddb, dict(item_c, record={"S": text}, mac={"S": own_mac}, mac_key={"S": evil_key}))
    out["MACed with the attacker's own HMAC key"] = c
    return out


def test_every_forgery_fails_verification(store, ddb):
    forgeries = _forgeries(store, ddb)
    results = {name: store.get_change(cid) for name, cid in forgeries.items()}
    assert {name: r["verified"] for name, r in results.items()} == {name: False for name in forgeries}
    assert all(r["verify_error"] for r in results.values())
    listed = {r["change_id"]: r["verified"] for r in store.list_changes()}
    assert all(listed[cid] is False for cid in forgeries.values())


def test_an_update_never_launders_a_forgery(store, ddb):
    forgeries = _forgeries(store, ddb)
    for cid in forgeries.values():
        before = _item(ddb, cid)
        with pytest.raises(TamperedRecord):
            store.record_outcome(cid, "applied", {})
        with pytest.raises(TamperedRecord):
            store.mark_rolled_back(cid, "mallory")
        assert _item(ddb, cid) == before


@pytest.mark.parametrize("record, mac_text", [
    ("not json", "AAAA"), ("[1, 2]", "AAAA"), ('{"change_id": 5}', "AAAA"), ("{}", "%%% not base64"),
    ('{"kind": "grant"}', ""), ("null", "AAAA"),
])
def test_garbage_items_are_reported_not_crashed_on(store, ddb, record, mac_text):
    item = {"id": {"S": "change#garbage"}, "record": {"S": record}}
    if mac_text:
        item["mac"] = {"S": mac_text}
    _put(ddb, item)
    got = store.get_change("garbage")
    assert got["verified"] is False and got["verify_error"]
    assert [r["change_id"] for r in store.list_changes()] == ["garbage"]


def test_items_in_the_earlier_unsigned_format_are_listed_unverified(store, ddb):
    _put(ddb, {"id": {"S": "change#old"}, "change_id": {"S": "old"}, "kind": {"S": "grant"},
               "applied_at": {"S": "2023-01-01T00:00:00Z"}, "change": {"S": '{"grant_id": "g-1"}'},
               "key_arn": {"S": KEY}})
    (got,) = store.list_changes(KEY)
    assert got["verified"] is False and "no record body" in got["verify_error"]
    assert got["kind"] == "grant" and got["change"] == {"grant_id": "g-1"}


def test_without_the_key_records_carry_no_mac_and_never_verify(unsigned_store, store, ddb):
    change_id = _intent(unsigned_store)
    assert "mac" not in _item(ddb, change_id)
    got = unsigned_store.get_change(change_id)
    assert got["verified"] is False and "KEYFIX_AUDIT_KEY_ARN" in got["verify_error"]
    # A signing store does not accept it either, nor can it be promoted by an update.
    assert store.get_change(change_id)["verified"] is False
    with pytest.raises(TamperedRecord):
        store.record_outcome(change_id, "applied", {})
    # Signed records cannot be checked without the key: unverified, not trusted.
    signed = _intent(store)
    assert unsigned_store.get_change(signed)["verified"] is False


def test_key_filter_uses_the_signed_record_not_the_plain_copy(store, ddb):
    change_id = _intent(store)
    item = _item(ddb, change_id)
    _put(ddb, dict(item, key_arn={"S": "arn:aws:kms:us-east-1:111122223333:key/elsewhere"}))
    assert [r["change_id"] for r in store.list_changes(KEY)] == [change_id]
    assert store.get_change(change_id)["verified"] is True  # the plain copy is not part of the record


# -- deletion -------------------------------------------------------------------------------------


def test_deleted_records_show_as_sequence_gaps(store, ddb):
    ids = [_intent(store) for _ in range(5)]
    assert store.sequence_gaps() == {"issued": 5, "present": 5, "missing": []}
    for cid in (ids[1], ids[2], ids[4]):
        ddb.delete_item(TableName=TABLE, Key={"id": {"S": f"change#{cid}"}})
    assert store.sequence_gaps() == {"issued": 5, "present": 2, "missing": [[2, 3], [5, 5]]}


def test_forged_records_do_not_fill_gaps(store, ddb):
    ids = [_intent(store) for _ in range(2)]
    first = _item(ddb, ids[0])
    ddb.delete_item(TableName=TABLE, Key={"id": {"S": f"change#{ids[0]}"}})
    body = json.loads(first["record"]["S"])
    body["seq"] = 1
    _put(ddb, dict(first, id={"S": "change#fake"}, record={"S": json.dumps(body)}))
    assert store.sequence_gaps()["missing"] == [[1, 1]]


# -- configuration ---------------------------------------------------------------------------------


def test_store_from_settings_uses_the_audit_key(monkeypatch, capsys, audit_key):
    from keyfix.config import Settings

    monkeypatch.setenv("KEYFIX_AUDIT_KEY_ARN", audit_key)
    calls = []

    def factory(service, **kw):
        calls.append((service, kw))
        return boto3_client(service)

    store = store_from_settings(Settings.from_env({"KEYFIX_TABLE_NAME": "tbl"}), factory)
    assert isinstance(store, Store) and isinstance(store.mac, KmsMac) and store.mac.key_arn == audit_key
    assert calls == [("dynamodb", {}), ("kms", {"region": "us-east-1"})]
    assert capsys.readouterr().err == ""


def test_store_from_settings_without_the_audit_key_says_so(capsys):
    from keyfix.config import Settings

    store = store_from_settings(Settings.from_env({"KEYFIX_TABLE_NAME": "tbl"}), lambda service, **kw: object())
    assert store.mac is None
    assert capsys.readouterr().err == NO_AUDIT_KEY_MESSAGE + "\n"


def test_signing_problem_is_reported(store, mac, unsigned_store, monkeypatch):
    assert store.signing_problem() is None
    assert "KEYFIX_AUDIT_KEY_ARN" in unsigned_store.signing_problem()

    def denied(**_):
        raise RuntimeError("AccessDeniedException")

    monkeypatch.setattr(mac.client, "generate_mac", denied)
    assert "GenerateMac" in store.signing_problem()


def test_mac_is_base64_of_kms_hmac_sha256(store, ddb):
    change_id = _intent(store)
    assert len(base64.b64decode(_item(ddb, change_id)["mac"]["S"])) == 32
