"""keyfix rollback / history: undo a recorded write only while it is still in force."""

from __future__ import annotations

import json
import types
import uuid

import boto3
import pytest
from store_support import ACCOUNT, REGION, TABLE

from keyfix.remedies import apply
from keyfix.remedies.rollback import cli_history, cli_rollback, history, rollback
from keyfix.report import Cause, Finding
from keyfix.store import LockTimeout, Store

SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def _statement(sid, principal=SLR):
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal},
            "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}


@pytest.fixture
def kms(aws):
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def iam(aws):
    return boto3.client("iam", region_name=REGION)


@pytest.fixture
def key_arn(kms):
    return kms.create_key(Description="app")["KeyMetadata"]["Arn"]


def _policy(kms, key):
    return json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])


def _record(store, change, cause, key=None, principal=SLR):
    # What the pipeline does with each dict apply.carry_out returns.
    change = {"finding_cause": str(cause), **change}
    finding = Finding(cause, principal, key, ["kms:Decrypt"], "test finding")
    return store.record_change(change, "evt-1", finding, "keyfix-lambda")


def _apply_statement(kms, store, key, sid="keyfix-use-slr"):
    change = apply.add_key_policy_statements(kms, key, [_statement(sid)])
    return _record(store, {"kind": "key-policy-statement", **change}, Cause.SLR_NOT_IN_KEY_POLICY, key)


# -- key policy ------------------------------------------------------------------------


def test_key_policy_change_is_rolled_back_to_before(store, kms, iam, key_arn):
    original = _policy(kms, key_arn)
    change_id = _apply_statement(kms, store, key_arn)
    assert len(_policy(kms, key_arn)["Statement"]) == len(original["Statement"]) + 1

    calls = []
    kms.meta.events.register("before-call.kms.PutKeyPolicy", lambda params, **_: calls.append(params))
    result = rollback(change_id, store, kms, iam, by="alice")
    assert result.ok, result.message
    assert _policy(kms, key_arn) == original
    assert store.get_change(change_id)["rolled_back_by"] == "alice"
    # Never skips KMS's lockout safety check.
    assert [c.get("BypassPolicyLockoutSafetyCheck", False) for c in calls] == [False]


def test_rolling_back_twice_is_refused(store, kms, iam, key_arn):
    change_id = _apply_statement(kms, store, key_arn)
    assert rollback(change_id, store, kms, iam, by="alice").ok
    again = rollback(change_id, store, kms, iam, by="bob")
    assert again.status == "refused"
    assert "already rolled back" in again.message and "alice" in again.message


def test_refuses_with_a_diff_when_the_policy_changed_after_keyfix(store, kms, iam, key_arn):
    change_id = _apply_statement(kms, store, key_arn)
    edited = _policy(kms, key_arn)
    edited["Statement"].append(_statement("HumanAddedLater", f"arn:aws:iam::{ACCOUNT}:role/ops"))
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(edited))

    result = rollback(change_id, store, kms, iam, by="alice")
    assert result.status == "refused"
    assert "changed after keyfix wrote it" in result.message
    assert result.diff.startswith("--- key policy keyfix wrote")
    added = [line for line in result.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any('"Sid": "HumanAddedLater"' in line for line in added)
    assert not any(line.startswith("-") and "keyfix-use-slr" in line for line in result.diff.splitlines())
    assert _policy(kms, key_arn) == edited  # untouched
    assert store.get_change(change_id)["rolled_back"] is False


def test_reformatted_but_equal_policy_still_rolls_back(store, kms, iam, key_arn):
    original = _policy(kms, key_arn)
    change_id = _apply_statement(kms, store, key_arn)
    # Same document, other whitespace and key order: semantically what keyfix wrote.
    current = _policy(kms, key_arn)
    text = json.dumps({k: current[k] for k in reversed(list(current))}, separators=(",", ":"))
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=text)
    assert rollback(change_id, store, kms, iam).ok
    assert _policy(kms, key_arn) == original


def test_key_policy_rollback_takes_the_key_lock(ddb, kms, iam, key_arn, clock):
    store = Store(TABLE, ddb, clock=clock, sleep=clock.sleep)
    change_id = _apply_statement(kms, store, key_arn)
    after = _policy(kms, key_arn)
    with store.lock(key_arn, "a-writer"):
        with pytest.raises(LockTimeout):
            rollback(change_id, store, kms, iam)
    assert _policy(kms, key_arn) == after
    assert rollback(change_id, store, kms, iam).ok


# -- grants ------------------------------------------------------------------------------


def _apply_grant(kms, store, key):
    params = {"KeyId": key, "GranteePrincipal": SLR, "Operations": ["Decrypt", "CreateGrant"]}
    change = apply.create_grant(kms, params)
    return _record(store, {"kind": "grant", **change}, Cause.SLR_GRANT_MISSING, key), change["grant_id"]


def test_grant_is_revoked(store, kms, iam, key_arn):
    change_id, grant_id = _apply_grant(kms, store, key_arn)
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_arn)["Grants"]] == [grant_id]
    result = rollback(change_id, store, kms, iam)
    assert result.ok and result.calls == ["kms:RevokeGrant"]
    assert kms.list_grants(KeyId=key_arn)["Grants"] == []
    assert store.get_change(change_id)["rolled_back"] is True
    assert rollback(change_id, store, kms, iam).status == "refused"


def test_grant_revoked_by_someone_else_is_refused(store, kms, iam, key_arn):
    change_id, grant_id = _apply_grant(kms, store, key_arn)
    kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "no longer" in result.message
    assert store.get_change(change_id)["rolled_back"] is False


# -- identity policies ---------------------------------------------------------------------

KMS_POLICY = {"Version": "2012-10-17",
              "Statement": [{"Sid": "KeyfixUse", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"}]}
OLD_POLICY = {"Version": "2012-10-17",
              "Statement": [{"Sid": "Old", "Effect": "Allow", "Action": ["kms:DescribeKey"], "Resource": "*"}]}


def _role(iam, name="app"):
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _apply_identity(iam, store, holder, key):
    change = apply.put_identity_policy(iam, holder, {"PolicyName": "keyfix-kms", "PolicyDocument": KMS_POLICY})
    return _record(store, {"kind": "identity-policy", **change}, Cause.IDENTITY_POLICY_MISSING, key, holder)


def test_identity_policy_keyfix_created_is_deleted(store, kms, iam, key_arn):
    role = _role(iam)
    change_id = _apply_identity(iam, store, role, key_arn)
    assert iam.list_role_policies(RoleName="app")["PolicyNames"] == ["keyfix-kms"]
    result = rollback(change_id, store, kms, iam)
    assert result.ok and result.calls == ["iam:DeleteRolePolicy"]
    assert iam.list_role_policies(RoleName="app")["PolicyNames"] == []


def test_identity_policy_keyfix_replaced_is_restored(store, kms, iam, key_arn):
    role = _role(iam)
    iam.put_role_policy(RoleName="app", PolicyName="keyfix-kms", PolicyDocument=json.dumps(OLD_POLICY))
    change_id = _apply_identity(iam, store, role, key_arn)
    assert rollback(change_id, store, kms, iam).ok
    assert iam.get_role_policy(RoleName="app", PolicyName="keyfix-kms")["PolicyDocument"] == OLD_POLICY


def test_user_identity_policy_is_rolled_back(store, kms, iam, key_arn):
    user = iam.create_user(UserName="deployer")["User"]["Arn"]
    change_id = _apply_identity(iam, store, user, key_arn)
    assert rollback(change_id, store, kms, iam).ok
    assert iam.list_user_policies(UserName="deployer")["PolicyNames"] == []


def test_identity_policy_edited_since_is_refused_with_diff(store, kms, iam, key_arn):
    role = _role(iam)
    change_id = _apply_identity(iam, store, role, key_arn)
    edited = json.loads(json.dumps(KMS_POLICY))
    edited["Statement"][0]["Action"].append("kms:Encrypt")
    iam.put_role_policy(RoleName="app", PolicyName="keyfix-kms", PolicyDocument=json.dumps(edited))
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused"
    assert '+        "kms:Encrypt"' in result.diff
    assert iam.get_role_policy(RoleName="app", PolicyName="keyfix-kms")["PolicyDocument"] == edited


def test_identity_policy_deleted_since_is_refused(store, kms, iam, key_arn):
    role = _role(iam)
    change_id = _apply_identity(iam, store, role, key_arn)
    iam.delete_role_policy(RoleName="app", PolicyName="keyfix-kms")
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "(deleted)" in result.diff


# -- other kinds, unknown ids ---------------------------------------------------------------


def test_service_linked_role_creation_is_not_rolled_back(store, kms, iam):
    change_id = store.record_change({"kind": "create-service-linked-role", "target": SLR,
                                     "service": "autoscaling.amazonaws.com"}, "e", {}, "me")
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "create-service-linked-role" in result.message


def test_unknown_change(store, kms, iam):
    assert rollback(str(uuid.uuid4()), store, kms, iam).status == "not-found"


# -- history -----------------------------------------------------------------------------


def test_history_lists_changes_per_key_with_their_state(store, kms, iam, key_arn, clock):
    other_key = kms.create_key(Description="other")["KeyMetadata"]["Arn"]
    first = _apply_statement(kms, store, key_arn)
    clock.advance(10)
    grant_change, _ = _apply_grant(kms, store, other_key)
    clock.advance(10)
    rollback(first, store, kms, iam, by="alice")

    rows = history(store)
    assert [r["change_id"] for r in rows] == [first, grant_change]
    assert rows[0]["rolled_back"] is True and rows[0]["rolled_back_by"] == "alice"
    assert rows[0]["added_sids"] == ["keyfix-use-slr"] and rows[0]["cause"] == "slr-not-in-key-policy"
    assert rows[1]["kind"] == "grant" and rows[1]["rolled_back"] is False
    assert [r["change_id"] for r in history(store, other_key)] == [grant_change]


# -- command line --------------------------------------------------------------------------


def _args(**kw):
    return types.SimpleNamespace(**{"format": "text", "by": "tester", "table": None, "key": None, **kw})


def test_cli_rollback_ok_refused_unknown(ddb, kms, key_arn, monkeypatch, capsys):
    monkeypatch.setenv("KEYFIX_TABLE_NAME", TABLE)
    store = Store(TABLE, ddb)
    change_id = _apply_statement(kms, store, key_arn)
    other = _apply_statement(kms, store, key_arn, sid="keyfix-use-second")

    # `other` was written after `change_id`: the policy is no longer what change_id wrote.
    assert cli_rollback(_args(change_id=change_id)) == 2
    err = capsys.readouterr().err
    assert "changed after keyfix wrote it" in err and '+      "Sid": "keyfix-use-second"' in err

    assert cli_rollback(_args(change_id=other)) == 0
    assert "restored the key policy" in capsys.readouterr().out
    assert cli_rollback(_args(change_id=change_id)) == 0  # now it is what change_id wrote
    assert cli_rollback(_args(change_id=change_id)) == 2
    assert "already rolled back" in capsys.readouterr().err
    assert cli_rollback(_args(change_id=str(uuid.uuid4()))) == 2
    assert "no change" in capsys.readouterr().err
    assert store.get_change(other)["rolled_back_by"] == "tester"


def test_cli_history_json_and_text(ddb, kms, key_arn, monkeypatch, capsys):
    store = Store(TABLE, ddb)
    change_id = _apply_statement(kms, store, key_arn)
    assert cli_history(_args(table=TABLE, format="json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["change_id"] for r in rows] == [change_id]
    assert cli_history(_args(table=TABLE, key=key_arn)) == 0
    out = capsys.readouterr().out
    assert change_id in out and "in force" in out
    assert cli_history(_args(table=TABLE, key="arn:aws:kms:us-east-1:1:key/none", format="json")) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_rollback_while_the_key_is_locked_is_exit_2_and_changes_nothing(ddb, kms, key_arn, capsys):
    store = Store(TABLE, ddb)
    change_id = _apply_statement(kms, store, key_arn)
    after = _policy(kms, key_arn)
    with store.lock(key_arn, "a-writer"):
        assert cli_rollback(_args(change_id=change_id, table=TABLE, wait=0.3)) == 2
    assert "still held by a-writer" in capsys.readouterr().err
    assert _policy(kms, key_arn) == after
    assert store.get_change(change_id)["rolled_back"] is False


def test_cli_without_table_is_exit_2(aws, capsys):
    assert cli_history(_args()) == 2
    assert cli_rollback(_args(change_id="x")) == 2
    assert "KEYFIX_TABLE_NAME not set" in capsys.readouterr().err


def test_cli_internal_error_is_exit_1(aws, capsys):
    # The table does not exist: an AWS error, not a user error.
    assert cli_history(_args(table="no-such-table")) == 1
    assert "internal error" in capsys.readouterr().err
