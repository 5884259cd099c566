"""Audit records are listed through the table's `by-change` index, not a scan (issue #12), on the
table exactly as template.yaml declares it: `keyfix history` and the check that settles
unverified writes (list_unverified) make no Scan; the MAC still covers every record and
verifies; a record hidden from the index shows as a sequence gap, as a deleted one does;
`scan=True` still finds records written before the index existed; a table without the index
(a stack not yet updated) is scanned instead of failing."""

from __future__ import annotations

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from keyfix.store import Store
from keyfix.store.audit import CHANGE_LIST_ATTRIBUTE
from keyfix.store.mac import LocalMac
from tests.unit.test_template import load_template

TABLE = "keyfix"
KEYS = [f"arn:aws:kms:us-east-1:111122223333:key/{i}111aaaa-12ab-34cd-56ef-1234567890ab" for i in range(3)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_741_900_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _create(client, *, indexes: bool) -> None:
    props = load_template()["Resources"]["KeyfixTable"]["Properties"]
    kwargs = {"AttributeDefinitions": props["AttributeDefinitions"], "GlobalSecondaryIndexes":
              props["GlobalSecondaryIndexes"]} if indexes else {
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=props["KeySchema"], **kwargs)


@pytest.fixture
def table():
    """(client, scans): the template's table, and every Scan made of it."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, indexes=True)
        scans: list[dict] = []
        client.meta.events.register("before-call.dynamodb.Scan", lambda **kw: scans.append(kw))
        yield client, scans


def _store(client) -> Store:
    return Store(TABLE, client, clock=Clock(), mac=LocalMac())


def _write(store: Store, key: str, outcome: str | None) -> str:
    change = {"kind": "key-policy-statement", "target": key, "added_sids": ["keyfix-x"]}
    change_id = store.record_intent(change, "e-1", {"key_arn": key, "cause": "slr-not-in-key-policy"}, "keyfix")
    if outcome:
        store.record_outcome(change_id, outcome, {"reason": "test"})
    return change_id


def test_history_and_unverified_come_from_the_index_and_every_record_verifies(table):
    client, scans = table
    store = _store(client)
    ids = [_write(store, KEYS[i % 3], outcome) for i, outcome in
           enumerate(["applied", "unverified", None, "failed", "unverified", "already-present"])]

    listed = store.list_changes()
    assert [r["change_id"] for r in listed] == ids  # oldest first
    assert all(r["verified"] for r in listed)
    assert [r["change_id"] for r in store.list_changes(KEYS[1])] == [ids[1], ids[4]]
    assert {r["change_id"] for r in store.list_unverified()} == {ids[1], ids[4]}  # the fresh intent is not stale
    assert store.sequence_gaps() == {"issued": 6, "present": 6, "missing": []}
    assert scans == [], "audit records were listed by a scan"


def test_a_record_hidden_from_the_index_is_a_gap_and_a_scan_still_finds_it(table):
    client, scans = table
    store = _store(client)
    ids = [_write(store, KEYS[0], "applied") for _ in range(3)]
    client.update_item(TableName=TABLE, Key={"id": {"S": f"change#{ids[1]}"}},
                       UpdateExpression="REMOVE #l", ExpressionAttributeNames={"#l": CHANGE_LIST_ATTRIBUTE})

    assert [r["change_id"] for r in store.list_changes()] == [ids[0], ids[2]]
    assert store.sequence_gaps()["missing"] == [[2, 2]]
    assert scans == []
    everything = store.list_changes(scan=True)  # e.g. records written before the index existed
    assert [r["change_id"] for r in everything] == ids and all(r["verified"] for r in everything)
    assert len(scans) == 1


def test_an_unsigned_index_attribute_changes_nothing_the_mac_covers(table):
    client, _ = table
    store = _store(client)
    change_id = _write(store, KEYS[0], "unverified")
    client.update_item(TableName=TABLE, Key={"id": {"S": f"change#{change_id}"}},
                       UpdateExpression="SET change_at = :t", ExpressionAttributeValues={":t": {"S": "1999-01-01"}})
    (record,) = store.list_changes()
    assert record["verified"] and record["applied_at"] != "1999-01-01"  # read from the MACed record
    store.record_outcome(change_id, "applied", {})
    assert store.get_change(change_id)["status"] == "applied" and store.get_change(change_id)["verified"]


def test_a_table_without_the_index_is_scanned_not_failed():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, indexes=False)
        store = _store(client)
        change_id = _write(store, KEYS[0], "unverified")
        assert [r["change_id"] for r in store.list_unverified()] == [change_id]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([None, "applied", "unverified", "failed"])),
                min_size=0, max_size=12))
def test_the_index_lists_exactly_what_a_scan_would(writes):
    with mock_aws():  # a fresh table and signer per example
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, indexes=True)
        store = _store(client)
        ids = [_write(store, KEYS[key], outcome) for key, outcome in writes]
        assert [r["change_id"] for r in store.list_changes()] == ids
        for key in (None, *KEYS):
            assert store.list_changes(key) == store.list_changes(key, scan=True)
        assert [r["change_id"] for r in store.list_unverified()] == \
            [i for i, (_, outcome) in zip(ids, writes, strict=True) if outcome == "unverified"]
