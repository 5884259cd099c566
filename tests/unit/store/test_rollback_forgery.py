"""Forged and altered audit records (issue #9, section 4): whoever can write the table but
cannot call kms:GenerateMac on the audit key gets nothing out of `keyfix rollback` - every
such record is refused and rollback makes no KMS or IAM call and no table write."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_support import ACCOUNT, REGION, TABLE, AwsCalls

from keyfix.remedies.rollback import rollback
from keyfix.store.mac import canonical_json

SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
EVIL_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "keyfix-all", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}
STAR_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture
def kms(aws):
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def iam(aws):
    return boto3.client("iam", region_name=REGION)


@pytest.fixture
def world(kms, iam, store):
    """A key with a genuine keyfix statement and a genuine record of it, an application's
    grant keyfix never made, and a user."""
    key = kms.create_key(Description="app")["KeyMetadata"]["Arn"]
    before = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    statement = {"Sid": "keyfix-use-slr", "Effect": "Allow", "Principal": {"AWS": SLR},
                 "Action": ["kms:Decrypt"], "Resource": "*"}
    genuine = store.record_intent({"kind": "key-policy-statement", "target": key, "before": before,
                                   "added_statements": [statement]}, "evt", {}, "keyfix-lambda")
    after = json.loads(before)
    after["Statement"].append(statement)
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(after))
    store.record_outcome(genuine, "applied", {"after": json.dumps(after)})
    app_grant = kms.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/app",
                                 Operations=["Decrypt"], Name="keyfix-looks-like-ours")["GrantId"]
    iam.create_user(UserName="dev-alice")
    return {"key": key, "genuine": genuine, "grant": app_grant}


def _state(kms, iam, world):
    return (kms.get_key_policy(KeyId=world["key"], PolicyName="default")["Policy"],
            [g["GrantId"] for g in kms.list_grants(KeyId=world["key"])["Grants"]],
            iam.list_user_policies(UserName="dev-alice")["PolicyNames"])


def _item(ddb, change_id):
    return ddb.get_item(TableName=TABLE, Key={"id": {"S": f"change#{change_id}"}})["Item"]


def _forged(ddb, change_id, body, mac=None):
    item = {"id": {"S": f"change#{change_id}"}, "record": {"S": canonical_json(body)}}
    if mac:
        item["mac"] = {"S": mac}
    ddb.put_item(TableName=TABLE, Item=item)
    return change_id


def _body(ddb, change_id):
    return json.loads(_item(ddb, change_id)["record"]["S"])


def _issue_forgeries(ddb, world):
    """The three records of the issue, and the classic tricks with genuine material."""
    genuine = _item(ddb, world["genuine"])
    body = json.loads(genuine["record"]["S"])
    base = {k: body[k] for k in ("schema", "seq", "event_id", "applied_by", "applied_at", "finding",
                                 "status_history", "outcome", "rolled_back_at", "rolled_back_by", "expiration")}
    out = {}
    out["restore Principal * kms:*"] = _forged(ddb, "f-policy", {
        **base, "change_id": "f-policy", "kind": "key-policy-statement", "status": "applied", "target": world["key"],
        "key_arn": world["key"], "change": {"kind": "key-policy-statement", "target": world["key"],
                                            "before": json.dumps(EVIL_POLICY), "added_statements": []}})
    out["put Allow *:* on a user"] = _forged(ddb, "f-user", {
        **base, "change_id": "f-user", "kind": "identity-policy", "status": "applied",
        "target": f"arn:aws:iam::{ACCOUNT}:user/dev-alice",
        "change": {"kind": "identity-policy", "target": f"arn:aws:iam::{ACCOUNT}:user/dev-alice",
                   "policy_name": "keyfix-x", "before": STAR_POLICY, "after": STAR_POLICY}})
    out["revoke an application's grant"] = _forged(ddb, "f-grant", {
        **base, "change_id": "f-grant", "kind": "grant", "status": "applied", "target": world["key"],
        "outcome": {"grant_id": world["grant"]},
        "change": {"kind": "grant", "target": world["key"],
                   "grant": {"KeyId": world["key"], "GranteePrincipal": f"arn:aws:iam::{ACCOUNT}:role/app",
                             "Operations": ["Decrypt"], "Name": "keyfix-looks-like-ours"}}})
    out["genuine MAC on a forged body"] = _forged(ddb, "f-mac", {**body, "change_id": "f-mac"},
                                                  genuine["mac"]["S"])
    out["genuine record replayed under another id"] = "f-replay"
    ddb.put_item(TableName=TABLE, Item=dict(genuine, id={"S": "change#f-replay"}))
    out["MAC with one bit flipped"] = "f-bits"
    mac = bytearray(base64.b64decode(genuine["mac"]["S"]))
    mac[0] ^= 1
    ddb.put_item(TableName=TABLE, Item=dict(genuine, id={"S": "change#f-bits"},
                                            mac={"S": base64.b64encode(bytes(mac)).decode()}))
    return out


def test_the_issues_forged_records_are_refused_with_zero_writes(store, ddb, kms, iam, world, mac):
    forgeries = _issue_forgeries(ddb, world)
    state = _state(kms, iam, world)
    targets, table, signer = AwsCalls(kms, iam), AwsCalls(ddb), AwsCalls(mac.client)
    outcomes = {}
    for name, change_id in forgeries.items():
        result = rollback(change_id, store, kms, iam, by="mallory")
        outcomes[name] = result.status
        assert "does not verify" in result.message, (name, result.message)
    assert outcomes == {name: "refused" for name in forgeries}
    assert targets.names == []  # not even a read of the key policy, grants or user
    assert table.writes() == [] and set(table.names) == {"dynamodb:GetItem"}
    assert set(signer.names) == {"kms:VerifyMac"}  # no GenerateMac: nothing was re-signed
    assert _state(kms, iam, world) == state
    print(f"forged records refused: {len(outcomes)} of {len(forgeries)}")


def test_status_flipped_or_rollback_unmarked_is_refused(store, ddb, kms, iam, world):
    assert rollback(world["genuine"], store, kms, iam, by="alice").ok
    marked = _item(ddb, world["genuine"])
    body = json.loads(marked["record"]["S"])
    body["rolled_back_at"] = body["rolled_back_by"] = None  # "un-roll-back" it, keep the MAC
    ddb.put_item(TableName=TABLE, Item=dict(marked, record={"S": canonical_json(body)}))
    state = _state(kms, iam, world)
    result = rollback(world["genuine"], store, kms, iam)
    assert result.status == "refused" and "does not verify" in result.message
    assert _state(kms, iam, world) == state


# -- property: any alteration of any field of a genuine record is refused ------------------------


def _paths(value, prefix=()):
    """Every location in a JSON value: (path, is_container)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _set(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _set(value[head], rest, new)}
    out = list(value)
    out[head] = _set(value[head], rest, new)
    return out


def _delete(value, path):
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict):
        parent.pop(path[-1])
    else:
        parent.pop(path[-1])
    return value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.text(max_size=12) | st.sampled_from(
        ["applied", "failed", "unverified", "intent", "*", "kms:*", "keyfix-use-slr", ACCOUNT]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=5)

ALTERATION_COUNTS: dict[str, int] = {}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_alteration_of_a_genuine_record_is_refused(store, ddb, kms, iam, world, data):
    genuine = _item(ddb, world["genuine"])
    body = json.loads(genuine["record"]["S"])
    paths = list(_paths(body))
    path = data.draw(st.sampled_from(paths), label="path")
    how = data.draw(st.sampled_from(["replace", "delete", "add"] if path else ["replace", "add"]), label="how")
    if how == "replace":
        altered = _set(body, path, data.draw(JSON_VALUES, label="value"))
    elif how == "delete":
        altered = _delete(json.loads(genuine["record"]["S"]), path)
    else:
        altered = {**body, data.draw(st.text(min_size=1, max_size=8), label="new field"): data.draw(JSON_VALUES)}
    text = canonical_json(altered)
    if text == genuine["record"]["S"]:
        return  # no alteration at all (e.g. a value replaced by itself)
    ddb.put_item(TableName=TABLE, Item=dict(genuine, record={"S": text}))
    targets = AwsCalls(kms, iam)
    try:
        result = rollback(world["genuine"], store, kms, iam)
        assert result.status == "refused", (path, how, result.message)
        assert targets.names == []
    finally:
        ddb.put_item(TableName=TABLE, Item=genuine)
    key = f"{how}:{path[0] if path else '<record>'}"
    ALTERATION_COUNTS[key] = ALTERATION_COUNTS.get(key, 0) + 1


def test_the_property_covered_every_top_level_field():
    # Runs after the property (file order): every altered example was counted, and the
    # alterations reached the fields that decide what rollback does.
    if not ALTERATION_COUNTS:
        pytest.skip("run together with test_any_alteration_of_a_genuine_record_is_refused")
    touched = {k.split(":", 1)[1] for k in ALTERATION_COUNTS}
    print(f"altered genuine records refused: {sum(ALTERATION_COUNTS.values())} ({len(touched)} fields)")
    assert sum(ALTERATION_COUNTS.values()) >= 50
    assert len(touched) >= 8


def test_the_genuine_record_itself_rolls_back(store, kms, iam, world):
    # The control of the property: unaltered, the same record is accepted.
    before = _state(kms, iam, world)
    assert rollback(world["genuine"], store, kms, iam).ok
    assert "keyfix-use-slr" in before[0] and "keyfix-use-slr" not in _state(kms, iam, world)[0]
