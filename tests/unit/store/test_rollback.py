"""keyfix rollback / history: undo only what keyfix itself did, only from a record whose MAC
verifies, and only while it is still exactly in force (issue #9, section 4)."""

from __future__ import annotations

import copy
import json
import types
import uuid

import boto3
import pytest
from store_support import ACCOUNT, REGION, TABLE, AwsCalls

from keyfix.remedies.history import cli_history, cli_rollback, history
from keyfix.remedies.rollback import rollback
from keyfix.report import Cause, Finding
from keyfix.store import LockTimeout, Store
from keyfix.store.mac import MacError

SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _statement(sid, principal=SLR, actions=("kms:Decrypt", "kms:DescribeKey")):
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": list(actions), "Resource": "*"}


ADMIN_LATER = _statement("OpsAddedLater", f"arn:aws:iam::{ACCOUNT}:role/ops", ("kms:Encrypt",))


@pytest.fixture
def kms(aws):
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def iam(aws):
    return boto3.client("iam", region_name=REGION)


@pytest.fixture
def key_arn(kms):
    return kms.create_key(Description="app")["KeyMetadata"]["Arn"]


@pytest.fixture
def calls(kms, iam):
    """Every call rollback makes on the KMS and IAM clients it is given."""
    return AwsCalls(kms, iam)


@pytest.fixture
def table_calls(ddb):
    return AwsCalls(ddb)


def _policy(kms, key):
    return json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])


def _put_policy(kms, key, policy):
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))


def _finding(cause, key, principal=SLR):
    return Finding(cause, principal, key, ["kms:Decrypt"], "test finding")


# What remedies.apply does, with the store API it calls: intent, write, outcome.

def _apply_statements(kms, store, key, statements=None, outcome="applied"):
    statements = statements or [_statement("keyfix-use-slr")]
    before = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    change = {"kind": "key-policy-statement", "target": key, "added_statements": statements, "before": before,
              "finding_cause": "slr-not-in-key-policy"}
    change_id = store.record_intent(change, "evt-1", _finding(Cause.SLR_NOT_IN_KEY_POLICY, key), "keyfix-lambda")
    after = json.loads(before)
    after["Statement"] += statements
    _put_policy(kms, key, after)
    if outcome:
        store.record_outcome(change_id, outcome, {"after": json.dumps(after)})
    return change_id


def _apply_grant(kms, store, key, name="keyfix-slr-grant", operations=("Decrypt", "CreateGrant"),
                 record_operations=None):
    params = {"KeyId": key, "GranteePrincipal": SLR, "Operations": list(operations), "Name": name}
    recorded = dict(params, Operations=list(record_operations or operations))
    change_id = store.record_intent({"kind": "grant", "target": key, "grant": recorded}, "evt-2",
                                    _finding(Cause.SLR_GRANT_MISSING, key), "keyfix-lambda")
    grant_id = kms.create_grant(**params)["GrantId"]
    store.record_outcome(change_id, "applied", {"grant_id": grant_id})
    return change_id, grant_id


KMS_POLICY = {"Version": "2012-10-17",
              "Statement": [{"Sid": "KeyfixUse", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"}]}


def _role(iam, name="app", path="/"):
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _apply_identity(iam, store, holder, key, policy_name="keyfix-kms", extra=None):
    change = {"kind": "identity-policy", "target": holder, "policy_name": policy_name, "after": KMS_POLICY,
              **(extra or {})}
    change_id = store.record_intent(change, "evt-3", _finding(Cause.IDENTITY_POLICY_MISSING, key, holder), "me")
    kind = "Role" if ":role/" in holder else "User"
    getattr(iam, f"put_{kind.lower()}_policy")(**{f"{kind}Name": holder.rsplit("/", 1)[1]},
                                                PolicyName=policy_name, PolicyDocument=json.dumps(KMS_POLICY))
    store.record_outcome(change_id, "applied", {})
    return change_id


# -- key policy: only keyfix's statements go ------------------------------------------------------


def test_removes_exactly_keyfix_statements_and_an_admins_later_ones_survive(store, kms, iam, key_arn, calls):
    original = _policy(kms, key_arn)
    change_id = _apply_statements(kms, store, key_arn, [_statement("keyfix-use-slr"), _statement("keyfix-grant-slr")])
    edited = _policy(kms, key_arn)
    edited["Statement"].insert(1, ADMIN_LATER)  # an admin's edit, between keyfix's and the root's
    _put_policy(kms, key_arn, edited)
    puts = []
    kms.meta.events.register("before-call.kms.PutKeyPolicy", lambda params, **_: puts.append(params))
    calls.names.clear()

    result = rollback(change_id, store, kms, iam, by="alice")
    assert result.ok, result.message
    assert result.calls == calls.names == ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyPolicy"]
    now = _policy(kms, key_arn)
    assert now["Statement"] == [original["Statement"][0], ADMIN_LATER]
    assert store.get_change(change_id)["rolled_back_by"] == "alice"
    assert store.get_change(change_id)["verified"] is True  # re-MACed with the mark
    # Never skips KMS's lockout safety check.
    assert [p.get("BypassPolicyLockoutSafetyCheck", False) for p in puts] == [False]


def test_never_writes_stored_policy_text_back(store, kms, iam, key_arn):
    # A genuine record whose `before` is a dangerous policy (what the forged record of the
    # issue carried): rollback removes keyfix's statement from the policy in force instead.
    evil = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*",
                                                    "Resource": "*"}]}
    change = {"kind": "key-policy-statement", "target": key_arn, "before": json.dumps(evil),
              "added_statements": [_statement("keyfix-use-slr")]}
    change_id = store.record_intent(change, "e", {}, "keyfix-lambda")
    current = _policy(kms, key_arn)
    current["Statement"].append(_statement("keyfix-use-slr"))
    _put_policy(kms, key_arn, current)
    assert rollback(change_id, store, kms, iam).ok
    now = _policy(kms, key_arn)
    assert "*" not in json.dumps([s.get("Principal") for s in now["Statement"]])
    assert [s.get("Sid") for s in now["Statement"]] == [s.get("Sid") for s in current["Statement"][:-1]]


def test_rolling_back_twice_is_refused(store, kms, iam, key_arn):
    change_id = _apply_statements(kms, store, key_arn)
    assert rollback(change_id, store, kms, iam, by="alice").ok
    again = rollback(change_id, store, kms, iam, by="bob")
    assert again.status == "refused"
    assert "already rolled back" in again.message and "alice" in again.message


def test_altered_statement_is_refused_with_a_diff_and_no_write(store, kms, iam, key_arn, calls, table_calls):
    change_id = _apply_statements(kms, store, key_arn)
    edited = _policy(kms, key_arn)
    edited["Statement"][-1]["Action"].append("kms:Encrypt")
    _put_policy(kms, key_arn, edited)
    calls.names.clear()
    table_calls.names.clear()

    result = rollback(change_id, store, kms, iam, by="alice")
    assert calls.names == ["kms:GetKeyPolicy"]
    assert result.status == "refused" and "altered after keyfix wrote it" in result.message
    assert '+    "kms:Encrypt"' in result.diff
    assert _policy(kms, key_arn) == edited
    assert table_calls.writes() == ["dynamodb:PutItem", "dynamodb:DeleteItem"]  # the key's lock only
    assert store.get_change(change_id)["rolled_back"] is False


def test_statement_gone_is_refused(store, kms, iam, key_arn):
    change_id = _apply_statements(kms, store, key_arn)
    edited = _policy(kms, key_arn)
    edited["Statement"].pop()
    _put_policy(kms, key_arn, edited)
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "no longer in the key policy" in result.message
    assert _policy(kms, key_arn) == edited


def test_all_or_nothing_when_one_of_several_is_gone(store, kms, iam, key_arn):
    change_id = _apply_statements(kms, store, key_arn, [_statement("keyfix-a"), _statement("keyfix-b")])
    edited = _policy(kms, key_arn)
    edited["Statement"] = [s for s in edited["Statement"] if s.get("Sid") != "keyfix-b"]
    _put_policy(kms, key_arn, edited)
    assert rollback(change_id, store, kms, iam).status == "refused"
    assert _policy(kms, key_arn) == edited  # keyfix-a stays too


def test_reformatted_but_equal_statements_still_roll_back(store, kms, iam, key_arn):
    original = _policy(kms, key_arn)
    change_id = _apply_statements(kms, store, key_arn)
    current = _policy(kms, key_arn)
    reordered = {k: current[k] for k in reversed(list(current))}
    reordered["Statement"] = [{k: s[k] for k in reversed(list(s))} for s in current["Statement"]]
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(reordered, separators=(",", ":")))
    assert rollback(change_id, store, kms, iam).ok
    assert _policy(kms, key_arn)["Statement"] == original["Statement"]


def test_a_statement_that_was_there_before_keyfix_is_not_removed(store, kms, iam, key_arn):
    mine = _statement("keyfix-use-slr")
    policy = _policy(kms, key_arn)
    policy["Statement"].append(mine)
    _put_policy(kms, key_arn, policy)
    # A (genuine) record that also lists it: it was in `before`, so it is not keyfix's.
    change_id = _apply_statements(kms, store, key_arn, [mine, _statement("keyfix-new")])
    assert rollback(change_id, store, kms, iam).ok
    assert [s.get("Sid") for s in _policy(kms, key_arn)["Statement"]][-1] == "keyfix-use-slr"


def test_statements_without_the_keyfix_prefix_are_never_removed(store, kms, iam, key_arn, calls):
    change_id = _apply_statements(kms, store, key_arn, [_statement("Enable IAM User Permissions", ROOT, ("kms:*",))])
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "keyfix removes only its own" in result.message
    assert calls.names == []


def test_lockout_guard_runs_on_what_rollback_writes(store, kms, iam, key_arn, calls):
    # The only statement letting the root manage the key carries a keyfix- Sid: removing it
    # would lock the account out, so the guard refuses.
    lone = {"Version": "2012-10-17", "Statement": []}
    _put_policy(kms, key_arn, lone)
    root = f"arn:aws:iam::{key_arn.split(':')[4]}:root"
    admin = _statement("keyfix-admin", root, ("kms:PutKeyPolicy", "kms:Decrypt"))
    change_id = _apply_statements(kms, store, key_arn, [admin])
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "stop" in result.message and root in result.message
    assert "kms:PutKeyPolicy" not in calls.names
    assert _policy(kms, key_arn)["Statement"] == [admin]


def test_intent_without_outcome_and_unverified_can_be_rolled_back(store, kms, iam, key_arn):
    # The answer to PutKeyPolicy was lost: the intent record exists and names the statements.
    lost = _apply_statements(kms, store, key_arn, [_statement("keyfix-a")], outcome=None)
    unverified = _apply_statements(kms, store, key_arn, [_statement("keyfix-b")], outcome="unverified")
    assert {store.get_change(lost)["status"], store.get_change(unverified)["status"]} == {"intent", "unverified"}
    assert rollback(unverified, store, kms, iam).ok
    assert rollback(lost, store, kms, iam).ok
    assert not [s for s in _policy(kms, key_arn)["Statement"] if s.get("Sid", "").startswith("keyfix-")]


@pytest.mark.parametrize("outcome", ["failed", "already-present"])
def test_nothing_to_undo_for_failed_or_already_present(store, kms, iam, key_arn, calls, outcome):
    change_id = _apply_statements(kms, store, key_arn, outcome=outcome)
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and outcome in result.message
    assert calls.names == []


def test_key_policy_rollback_takes_the_key_lock(store, kms, iam, key_arn):
    change_id = _apply_statements(kms, store, key_arn)
    after = _policy(kms, key_arn)
    with store.lock(key_arn, "a-writer"):
        with pytest.raises(LockTimeout):
            rollback(change_id, store, kms, iam)
    assert _policy(kms, key_arn) == after
    assert rollback(change_id, store, kms, iam).ok


def test_refuses_before_writing_when_it_could_not_mark_the_record(store, mac, kms, iam, key_arn, calls, monkeypatch):
    change_id = _apply_statements(kms, store, key_arn)
    after = _policy(kms, key_arn)

    def denied(message):
        raise MacError("kms:GenerateMac with the audit key failed: AccessDeniedException")

    monkeypatch.setattr(mac, "sign", denied)
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "GenerateMac" in result.message
    assert calls.names == []
    assert _policy(kms, key_arn) == after


def test_readback_denied_is_unverified_not_marked(store, kms, iam, key_arn):
    change_id = _apply_statements(kms, store, key_arn)
    seen = []

    def deny_second_read(model, **_):
        if model.name == "GetKeyPolicy":
            seen.append(1)
            if len(seen) == 2:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetKeyPolicy")

    kms.meta.events.register("before-call.kms.GetKeyPolicy", deny_second_read)
    result = rollback(change_id, store, kms, iam)
    assert result.status == "unverified" and "could not read it back" in result.message
    assert store.get_change(change_id)["rolled_back"] is False


# -- grants -------------------------------------------------------------------------------------


def test_grant_is_revoked_after_checking_it_is_keyfixs(store, kms, iam, key_arn):
    change_id, grant_id = _apply_grant(kms, store, key_arn)
    result = rollback(change_id, store, kms, iam)
    assert result.ok and result.calls == ["kms:ListGrants", "kms:RevokeGrant"]
    assert kms.list_grants(KeyId=key_arn)["Grants"] == []
    assert store.get_change(change_id)["rolled_back"] is True
    assert rollback(change_id, store, kms, iam).status == "refused"


def test_only_the_recorded_grant_goes(store, kms, iam, key_arn):
    app_grant = kms.create_grant(KeyId=key_arn, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/app",
                                 Operations=["Decrypt"], Name="app")["GrantId"]
    change_id, _ = _apply_grant(kms, store, key_arn)
    assert rollback(change_id, store, kms, iam).ok
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_arn)["Grants"]] == [app_grant]


@pytest.mark.parametrize("kwargs, why", [
    ({"name": "app-grant"}, "name app-grant"),
    ({"name": None}, "name (none)"),
    ({"record_operations": ["Decrypt"]}, "operations"),
])
def test_grant_that_does_not_match_the_record_is_not_revoked(store, kms, iam, key_arn, calls, kwargs, why):
    name = kwargs.pop("name", "keyfix-slr-grant")
    if name is None:
        # A grant without a name: create it directly (create_grant rejects Name=None).
        change_id = store.record_intent({"kind": "grant", "target": key_arn,
                                         "grant": {"KeyId": key_arn, "GranteePrincipal": SLR,
                                                   "Operations": ["Decrypt"]}}, "e", {}, "me")
        grant_id = kms.create_grant(KeyId=key_arn, GranteePrincipal=SLR, Operations=["Decrypt"])["GrantId"]
        store.record_outcome(change_id, "applied", {"grant_id": grant_id})
    else:
        change_id, grant_id = _apply_grant(kms, store, key_arn, name=name, **kwargs)
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and why in result.message
    assert calls.names == ["kms:ListGrants"]
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_arn)["Grants"]] == [grant_id]


def test_grant_revoked_by_someone_else_is_refused(store, kms, iam, key_arn):
    change_id, grant_id = _apply_grant(kms, store, key_arn)
    kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "no longer" in result.message
    assert store.get_change(change_id)["rolled_back"] is False


def test_grant_without_a_recorded_id_is_refused(store, kms, iam, key_arn, calls):
    change_id = store.record_intent({"kind": "grant", "target": key_arn,
                                     "grant": {"KeyId": key_arn, "GranteePrincipal": SLR, "Operations": ["Decrypt"],
                                               "Name": "keyfix-g"}}, "e", {}, "me")
    store.record_outcome(change_id, "unverified", {"reason": "answer lost"})
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "no grant id" in result.message
    assert calls.names == []


# -- identity policies ---------------------------------------------------------------------------


def test_identity_policy_keyfix_created_is_deleted(store, kms, iam, key_arn):
    role = _role(iam, path="/team/")
    change_id = _apply_identity(iam, store, role, key_arn)
    iam.put_role_policy(RoleName="app", PolicyName="other", PolicyDocument=json.dumps(KMS_POLICY))
    result = rollback(change_id, store, kms, iam)
    assert result.ok and result.calls == ["iam:GetRolePolicy", "iam:DeleteRolePolicy"]
    assert iam.list_role_policies(RoleName="app")["PolicyNames"] == ["other"]


def test_user_identity_policy_is_rolled_back(store, kms, iam, key_arn):
    user = iam.create_user(UserName="deployer")["User"]["Arn"]
    change_id = _apply_identity(iam, store, user, key_arn)
    assert rollback(change_id, store, kms, iam).ok
    assert iam.list_user_policies(UserName="deployer")["PolicyNames"] == []


def test_identity_policy_edited_since_is_refused_with_diff(store, kms, iam, key_arn):
    role = _role(iam)
    change_id = _apply_identity(iam, store, role, key_arn)
    edited = copy.deepcopy(KMS_POLICY)
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


@pytest.mark.parametrize("policy_name, extra, why", [
    ("keyfix-kms", {"before": {"Version": "2012-10-17", "Statement": []}}, "restore it by hand"),
    ("AppPolicy", {}, "does not describe an inline policy keyfix created"),
])
def test_identity_policies_keyfix_did_not_create_are_never_touched(store, kms, iam, key_arn, calls, policy_name,
                                                                    extra, why):
    role = _role(iam)
    change_id = _apply_identity(iam, store, role, key_arn, policy_name=policy_name, extra=extra)
    calls.names.clear()
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and why in result.message
    assert calls.names == []
    assert iam.list_role_policies(RoleName="app")["PolicyNames"] == [policy_name]


# -- other kinds, unknown ids ----------------------------------------------------------------------


def test_service_linked_role_creation_is_not_rolled_back(store, kms, iam):
    change_id = store.record_change({"kind": "create-service-linked-role", "target": SLR,
                                     "service": "autoscaling.amazonaws.com"}, "e", {}, "me")
    result = rollback(change_id, store, kms, iam)
    assert result.status == "refused" and "create-service-linked-role" in result.message


def test_unknown_change(store, kms, iam):
    assert rollback(str(uuid.uuid4()), store, kms, iam).status == "not-found"


def test_records_made_with_record_change_still_roll_back(store, kms, iam, key_arn):
    # The one-step API (intent and outcome "applied" together), with the earlier change shape.
    before = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    after = json.loads(before)
    after["Statement"].append(_statement("keyfix-use-slr"))
    _put_policy(kms, key_arn, after)
    change_id = store.record_change({"kind": "key-policy-statement", "target": key_arn, "before": before,
                                     "after": json.dumps(after), "added_sids": ["keyfix-use-slr"]}, "e", {}, "me")
    assert rollback(change_id, store, kms, iam).ok
    assert _policy(kms, key_arn) == json.loads(before)


# -- history -----------------------------------------------------------------------------


def test_history_lists_changes_per_key_with_their_state(store, kms, iam, key_arn, clock):
    other_key = kms.create_key(Description="other")["KeyMetadata"]["Arn"]
    first = _apply_statements(kms, store, key_arn)
    clock.advance(10)
    grant_change, _ = _apply_grant(kms, store, other_key)
    clock.advance(10)
    pending = _apply_statements(kms, store, key_arn, [_statement("keyfix-b")], outcome="unverified")
    rollback(first, store, kms, iam, by="alice")

    rows = history(store)
    assert [r["change_id"] for r in rows] == [first, grant_change, pending]
    assert rows[0]["rolled_back"] is True and rows[0]["rolled_back_by"] == "alice"
    assert rows[0]["added_sids"] == ["keyfix-use-slr"] and rows[0]["cause"] == "slr-not-in-key-policy"
    assert rows[1]["kind"] == "grant" and rows[1]["rolled_back"] is False and rows[1]["grant_id"]
    assert rows[2]["status"] == "unverified"
    assert all(r["verified"] for r in rows)
    assert [r["change_id"] for r in history(store, other_key)] == [grant_change]


# -- command line --------------------------------------------------------------------------


def _args(**kw):
    return types.SimpleNamespace(**{"format": "text", "by": "tester", "table": None, "key": None,
                                    "audit_key": None, **kw})


def test_cli_rollback_ok_refused_unknown(store, kms, key_arn, audit_key, monkeypatch, capsys):
    monkeypatch.setenv("KEYFIX_TABLE_NAME", TABLE)
    monkeypatch.setenv("KEYFIX_AUDIT_KEY_ARN", audit_key)
    first = _apply_statements(kms, store, key_arn)
    second = _apply_statements(kms, store, key_arn, [_statement("keyfix-use-second")])

    # Independent statements: either may go first.
    assert cli_rollback(_args(change_id=first)) == 0
    assert "removed keyfix-use-slr" in capsys.readouterr().out
    assert cli_rollback(_args(change_id=first)) == 2
    assert "already rolled back" in capsys.readouterr().err
    assert cli_rollback(_args(change_id=second, format="json")) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "rolled-back"
    assert cli_rollback(_args(change_id=str(uuid.uuid4()))) == 2
    assert "no change" in capsys.readouterr().err
    assert store.get_change(second)["rolled_back_by"] == "tester"


def test_cli_rollback_without_the_audit_key_refuses(store, kms, key_arn, monkeypatch, capsys):
    change_id = _apply_statements(kms, store, key_arn)
    after = _policy(kms, key_arn)
    assert cli_rollback(_args(change_id=change_id, table=TABLE)) == 2
    assert "KEYFIX_AUDIT_KEY_ARN not set" in capsys.readouterr().err
    assert _policy(kms, key_arn) == after


def test_cli_history_json_text_and_gaps(store, ddb, kms, key_arn, audit_key, capsys):
    change_id = _apply_statements(kms, store, key_arn)
    gone = _apply_statements(kms, store, key_arn, [_statement("keyfix-b")])
    ddb.delete_item(TableName=TABLE, Key={"id": {"S": f"change#{gone}"}})
    assert cli_history(_args(table=TABLE, audit_key=audit_key, format="json")) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [(r["change_id"], r["verified"]) for r in rows] == [(change_id, True)]
    assert "sequence numbers 2 of 2 issued" in out.err
    assert cli_history(_args(table=TABLE, audit_key=audit_key, key=key_arn)) == 0
    out = capsys.readouterr().out
    assert change_id in out and "applied" in out and "MAC ok" in out
    assert cli_history(_args(table=TABLE, key="arn:aws:kms:us-east-1:1:key/none", format="json")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [] and "no record can be verified" in captured.err


def test_cli_rollback_while_the_key_is_locked_is_exit_2_and_changes_nothing(store, ddb, kms, key_arn, audit_key,
                                                                             capsys):
    change_id = _apply_statements(kms, store, key_arn)
    after = _policy(kms, key_arn)
    with Store(TABLE, ddb).lock(key_arn, "a-writer"):  # the real clock, as the CLI's store has
        assert cli_rollback(_args(change_id=change_id, table=TABLE, audit_key=audit_key, wait=0.3)) == 2
    assert "still held by a-writer" in capsys.readouterr().err
    assert _policy(kms, key_arn) == after
    assert store.get_change(change_id)["rolled_back"] is False


def test_cli_without_table_is_exit_2(aws, capsys):
    assert cli_history(_args()) == 2
    assert cli_rollback(_args(change_id="x")) == 2
    assert "KEYFIX_TABLE_NAME not set" in capsys.readouterr().err


def test_cli_missing_table_is_the_users_error_exit_2(aws, capsys):
    # A table that does not exist is the user's configuration: exit 2 with what to do (#13).
    assert cli_history(_args(table="no-such-table")) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "KEYFIX_TABLE_NAME" in err


def test_store_without_mac_never_rolls_back(unsigned_store, kms, iam, key_arn, calls):
    change_id = _apply_statements(kms, unsigned_store, key_arn)
    calls.names.clear()
    result = rollback(change_id, unsigned_store, kms, iam)
    assert result.status == "refused" and "does not verify" in result.message
    assert calls.names == []


def test_store_class_is_what_cli_builds(ddb, audit_key, monkeypatch):
    from keyfix.remedies.history import _open_store

    monkeypatch.setenv("KEYFIX_TABLE_NAME", TABLE)
    store = _open_store(_args(audit_key=audit_key), "rollback")
    assert isinstance(store, Store) and store.mac.key_arn == audit_key
