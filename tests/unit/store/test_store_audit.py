"""Audit records (change#<uuid>), the notification rate limit (notify#<fp>) and the
finding fingerprint."""

from __future__ import annotations

import json
import uuid

import pytest
from store_support import ACCOUNT, KEY, OTHER_KEY, TABLE

from keyfix.report import Cause, Finding
from keyfix.store import AUDIT_RETENTION_SECONDS, AlreadyRolledBack, NullStore, UnknownChange, finding_fingerprint

SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
BEFORE = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "root", "Effect": "Allow"}]}, indent=2)
AFTER = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "root", "Effect": "Allow"},
                                                           {"Sid": "keyfix-use-x", "Effect": "Allow"}]}, indent=2)


def _finding(key=KEY, principal=SLR, cause=Cause.SLR_NOT_IN_KEY_POLICY):
    return Finding(cause, principal, key, ["kms:Decrypt"], "the SLR is not in the key policy")


def _policy_change(key=KEY):
    # The shape apply.carry_out returns for a key-policy write.
    return {"finding_cause": "slr-not-in-key-policy", "kind": "key-policy-statement", "target": key,
            "before": BEFORE, "after": AFTER, "added_sids": ["keyfix-use-x"]}


def test_record_and_get_a_key_policy_change(store, ddb, clock):
    change_id = store.record_change(_policy_change(), "evt-1", _finding(), "keyfix-lambda")
    assert str(uuid.UUID(change_id, version=4)) == change_id

    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": f"change#{change_id}"}})["Item"]
    body = json.loads(item["record"]["S"])
    assert body["key_arn"] == KEY and item["key_arn"]["S"] == KEY  # the second is an unsigned copy
    assert body["change"]["before"] == BEFORE and body["change"]["after"] == AFTER
    assert body["applied_by"] == "keyfix-lambda" and body["event_id"] == "evt-1"
    assert item["mac"]["S"] and item["mac_key"]["S"].startswith("arn:aws:kms:")
    assert int(item["expiration"]["N"]) == int(clock.now) + AUDIT_RETENTION_SECONDS == int(clock.now) + 400 * 86400

    got = store.get_change(change_id)
    assert got["verified"] is True and got["verify_error"] is None
    assert got["kind"] == "key-policy-statement" and got["status"] == "applied"
    assert got["key_arn"] == KEY and got["target"] == KEY
    assert got["change"] == _policy_change()
    assert got["finding"]["cause"] == "slr-not-in-key-policy" and got["finding"]["principal"] == SLR
    assert got["applied_at"] == "2023-11-14T22:13:20Z"  # clock 1_700_000_000
    assert got["rolled_back"] is False and got["seq"] == 1


def test_grant_and_identity_changes_keep_what_rollback_needs(store):
    grant = {"finding_cause": "slr-grant-missing", "kind": "grant", "target": OTHER_KEY, "grant_id": "g-123",
             "grant": {"KeyId": OTHER_KEY, "GranteePrincipal": SLR, "Operations": ["Decrypt"]}}
    identity = {"finding_cause": "identity-policy-missing", "kind": "identity-policy", "target": ROLE,
                "policy_name": "keyfix-kms", "before": None,
                "after": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt"}]}}
    gid = store.record_change(grant, "evt-2", _finding(OTHER_KEY, cause=Cause.SLR_GRANT_MISSING), "me")
    iid = store.record_change(identity, "evt-3", _finding(KEY, ROLE, Cause.IDENTITY_POLICY_MISSING).to_dict(), "me")
    g, i = store.get_change(gid), store.get_change(iid)
    assert (g["kind"], g["key_arn"], g["change"]["grant_id"]) == ("grant", OTHER_KEY, "g-123")
    # An identity policy is about the key of its finding; its target is the role.
    assert (i["kind"], i["key_arn"], i["target"]) == ("identity-policy", KEY, ROLE)
    assert i["change"]["before"] is None and i["change"]["after"] == identity["after"]


def test_kind_is_inferred_when_the_writer_dict_has_none(store):
    cid = store.record_change({"target": KEY, "grant_id": "g-9", "grant": {}}, "e", _finding(), "me")
    assert store.get_change(cid)["kind"] == "grant"


def test_get_unknown_change_is_none(store):
    assert store.get_change(str(uuid.uuid4())) is None


def test_list_changes_filters_by_key_and_ignores_other_items(store, clock):
    a = store.record_change(_policy_change(KEY), "e1", _finding(), "me")
    clock.advance(5)
    b = store.record_change(_policy_change(OTHER_KEY), "e2", _finding(OTHER_KEY), "me")
    clock.advance(5)
    c = store.record_change(_policy_change(KEY), "e3", _finding(), "me")
    store.should_notify("fp", 60)
    with store.lock(KEY, "someone"):
        assert [x["change_id"] for x in store.list_changes()] == [a, b, c]
        assert [x["change_id"] for x in store.list_changes(KEY)] == [a, c]
        assert [x["change_id"] for x in store.list_changes(OTHER_KEY)] == [b]
        assert store.list_changes("arn:aws:kms:us-east-1:111122223333:key/none") == []


def test_mark_rolled_back_once(store, clock):
    cid = store.record_change(_policy_change(), "e1", _finding(), "me")
    clock.advance(60)
    store.mark_rolled_back(cid, "alice")
    got = store.get_change(cid)
    assert got["rolled_back"] is True
    assert got["rolled_back_by"] == "alice" and got["rolled_back_at"] == "2023-11-14T22:14:20Z"
    with pytest.raises(AlreadyRolledBack):
        store.mark_rolled_back(cid, "bob")
    assert store.get_change(cid)["rolled_back_by"] == "alice"
    with pytest.raises(UnknownChange):
        store.mark_rolled_back(str(uuid.uuid4()), "bob")


# -- notification rate limit -------------------------------------------------------


def test_should_notify_first_then_not_within_window_then_again(store, clock):
    fp = finding_fingerprint(ACCOUNT, "my-asg", KEY, "slr-not-in-key-policy")
    assert store.should_notify(fp, 600) is True
    clock.advance(1)
    assert store.should_notify(fp, 600) is False
    clock.advance(598)
    assert store.should_notify(fp, 600) is False
    clock.advance(2)  # 601 s after the first
    assert store.should_notify(fp, 600) is True
    clock.advance(10)
    assert store.should_notify(fp, 600) is False  # the second notification opened a new window


def test_should_notify_is_per_fingerprint(store):
    fp1 = finding_fingerprint(ACCOUNT, "asg-1", KEY, "slr-not-in-key-policy")
    fp2 = finding_fingerprint(ACCOUNT, "asg-2", KEY, "slr-not-in-key-policy")
    assert store.should_notify(fp1, 600) is True
    assert store.should_notify(fp2, 600) is True
    assert store.should_notify(fp1, 600) is False


def test_fingerprint_is_stable_and_distinguishes_every_part():
    fp = finding_fingerprint(ACCOUNT, "my-asg", KEY, "slr-not-in-key-policy")
    assert fp == finding_fingerprint(ACCOUNT, "my-asg", KEY, Cause.SLR_NOT_IN_KEY_POLICY)
    assert len(fp) == 64 and int(fp, 16) >= 0
    # Pinned (sha256 of the JSON array of the four parts): stored notify# items must keep
    # matching after an upgrade.
    assert fp == "79cda0e1ceaea79e7484e32f2cc0d17bbd85362f8b4cca5124d7a72c5f7b06c4"
    others = {
        finding_fingerprint("444455556666", "my-asg", KEY, "slr-not-in-key-policy"),
        finding_fingerprint(ACCOUNT, "other-asg", KEY, "slr-not-in-key-policy"),
        finding_fingerprint(ACCOUNT, "my-asg", OTHER_KEY, "slr-not-in-key-policy"),
        finding_fingerprint(ACCOUNT, "my-asg", KEY, "slr-grant-missing"),
        # No ambiguity from joining: the parts are JSON-encoded, not concatenated.
        finding_fingerprint(ACCOUNT, "my-asg" + KEY, "", "slr-not-in-key-policy"),
    }
    assert fp not in others and len(others) == 5


# -- NullStore ---------------------------------------------------------------------


def test_null_store_has_the_same_api_in_memory():
    null = NullStore(clock=lambda: 1_700_000_000.0)
    a = null.record_change(_policy_change(KEY), "e1", _finding(), "me")
    b = null.record_change(_policy_change(OTHER_KEY), "e2", _finding(OTHER_KEY), "me")
    assert null.get_change(a)["change"]["after"] == AFTER
    assert null.get_change(a)["verified"] is True  # an in-process MAC: nothing else can write memory
    assert [c["change_id"] for c in null.list_changes(KEY)] == [a]
    assert {c["change_id"] for c in null.list_changes()} == {a, b}
    null.mark_rolled_back(a, "alice")
    assert null.get_change(a)["rolled_back_by"] == "alice"
    with pytest.raises(AlreadyRolledBack):
        null.mark_rolled_back(a, "bob")
    with pytest.raises(UnknownChange):
        null.mark_rolled_back("nope", "bob")
    assert null.should_notify("fp", 600) and null.should_notify("fp", 600)
