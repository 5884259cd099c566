"""The writers never write over someone else's work, and never claim what they cannot confirm.

A fake KMS/IAM (plain Python, no moto) lets a test put an administrator's edit, or a fault,
at any point of keyfix's read -> record intent -> write -> read back, and count every call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.remedies import documents as docs
from keyfix.remedies.safety import CheckedPrincipal, Refusal
from keyfix.remedies.writers import (
    Journal,
    WriteFailed,
    WriteUnverified,
    add_key_policy_statements,
    create_grant,
    put_identity_policy,
)

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
CHECKED_SLR = CheckedPrincipal(SLR, "service-linked-role", "AWSServiceRoleForAutoScaling", ACCOUNT, "test")
OPS = f"arn:aws:iam::{ACCOUNT}:role/team/ops"
CHECKED_OPS = CheckedPrincipal(OPS, "role", "ops", ACCOUNT, "test")
ROOT_STATEMENT = {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                  "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
ADMIN_STATEMENT = {"Sid": "AdminAddedThis", "Effect": "Allow",
                   "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Auditor"}, "Action": "kms:DescribeKey",
                   "Resource": "*"}
STATEMENTS = docs.key_policy_statements(SLR, ["kms:Decrypt", "kms:DescribeKey"], ["kms:CreateGrant"])


def _error(code: str, status: int, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


class FakeKms:
    """GetKeyPolicy / PutKeyPolicy with hooks: `edits[point]` changes the policy in force the
    way an administrator would; `faults[operation]` makes an operation fail (after applying,
    for "put-lost")."""

    def __init__(self, edits: dict[str, Any] | None = None, faults: dict[str, Any] | None = None) -> None:
        self.policy = {"Version": "2012-10-17", "Statement": [ROOT_STATEMENT]}
        self.edits, self.faults = edits or {}, faults or {}
        self.calls: list[str] = []
        self.puts: list[dict] = []

    def _edit(self, point: str) -> None:
        edit = self.edits.pop(point, None)
        if edit is not None:
            self.policy = edit(json.loads(json.dumps(self.policy)))

    def get_key_policy(self, KeyId: str, PolicyName: str) -> dict:
        self.calls.append("GetKeyPolicy")
        reads = self.calls.count("GetKeyPolicy")
        if reads > 1:
            self._edit("before-read-back")
            if self.faults.get("read-back"):
                raise self.faults["read-back"]
        return {"Policy": json.dumps(self.policy)}

    def put_key_policy(self, KeyId: str, PolicyName: str, Policy: str) -> None:
        self.calls.append("PutKeyPolicy")
        self._edit("before-put")
        fault = self.faults.get("put")
        if fault is not None and fault[1] == "refused":
            raise fault[0]
        self.policy = json.loads(Policy)
        self.puts.append(self.policy)
        if fault is not None:  # applied, then the answer was lost
            raise fault[0]


class FakeStore:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}

    def record_intent(self, change: dict, event_id: str, finding: Any, applied_by: str) -> str:
        change_id = f"c{len(self.records)}"
        self.records[change_id] = {"change": change, "status": "intent"}
        return change_id

    def record_outcome(self, change_id: str, status: str, details: dict) -> None:
        self.records[change_id].update(status=status, details=details)


def _journal(store: FakeStore | None = None) -> Journal:
    return Journal(store if store is not None else FakeStore(), "event-1", None, "test")


def _sids(policy: dict) -> list[str]:
    return [s.get("Sid") for s in policy["Statement"]]


def add_admin_statement(policy: dict) -> dict:
    policy["Statement"].append(ADMIN_STATEMENT)
    return policy


def drop_keyfix_statements(policy: dict) -> dict:
    policy["Statement"] = [s for s in policy["Statement"] if not s.get("Sid", "").startswith("keyfix-")]
    return policy


def test_clean_write_is_applied_and_recorded_before_the_put():
    kms, store = FakeKms(), FakeStore()
    journal = _journal(store)
    result = add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, journal)
    assert kms.calls == ["GetKeyPolicy", "PutKeyPolicy", "GetKeyPolicy"]
    assert result["added_sids"] == [s["Sid"] for s in STATEMENTS]
    (record,) = store.records.values()
    assert record["change"]["added_statements"] == STATEMENTS and record["status"] == "intent"


def test_admin_edit_after_the_write_removing_keyfixs_statements_is_left_alone():
    """The admin's version wins: no restore, a conflict reported."""
    kms = FakeKms(edits={"before-read-back": drop_keyfix_statements})
    with pytest.raises(WriteFailed, match="conflict"):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())
    assert kms.calls.count("PutKeyPolicy") == 1
    assert _sids(kms.policy) == ["Enable IAM User Permissions"]


def test_admin_statement_added_after_the_write_survives_and_is_noted():
    kms = FakeKms(edits={"before-read-back": add_admin_statement})
    result = add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())
    assert "another edit" in result["note"]
    assert "AdminAddedThis" in _sids(kms.policy) and kms.calls.count("PutKeyPolicy") == 1


def test_lost_answer_with_statements_in_force_is_applied():
    kms = FakeKms(faults={"put": (ReadTimeoutError(endpoint_url="https://kms"), "lost")})
    result = add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())
    assert result["added_sids"] and kms.calls.count("PutKeyPolicy") == 1


def test_lost_answer_and_denied_read_back_is_unverified_with_the_intent_on_record():
    store = FakeStore()
    kms = FakeKms(faults={"put": (_error("KMSInternalException", 500, "PutKeyPolicy"), "lost"),
                          "read-back": _error("AccessDeniedException", 400, "GetKeyPolicy")})
    with pytest.raises(WriteUnverified):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal(store))
    (record,) = store.records.values()
    assert record["change"]["kind"] == "key-policy-statement"


def test_denied_read_back_after_a_clean_put_is_unverified():
    kms = FakeKms(faults={"read-back": _error("AccessDeniedException", 400, "GetKeyPolicy")})
    with pytest.raises(WriteUnverified, match="read-back failed"):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())


def test_refused_put_is_failed():
    kms = FakeKms(faults={"put": (_error("MalformedPolicyDocumentException", 400, "PutKeyPolicy"), "refused")})
    with pytest.raises(WriteFailed, match="MalformedPolicyDocument"):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())


def test_no_write_without_an_intent_record():
    class DownStore(FakeStore):
        def record_intent(self, *args: Any) -> str:
            raise RuntimeError("table unavailable")

    kms = FakeKms()
    with pytest.raises(WriteFailed, match="intent"):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal(DownStore()))
    assert "PutKeyPolicy" not in kms.calls


def test_statements_must_name_exactly_the_checked_principal():
    other = docs.key_policy_statements(OPS, ["kms:Decrypt"], [])
    kms = FakeKms()
    with pytest.raises(Refusal, match="exactly"):
        add_key_policy_statements(kms, CHECKED_SLR, KEY, other, _journal())
    assert kms.calls == []


EDITS = {"add-admin": add_admin_statement, "drop-keyfix": drop_keyfix_statements,
         "drop-root": lambda p: {**p, "Statement": [s for s in p["Statement"] if s.get("Sid") != ROOT_STATEMENT["Sid"]]}}
FAULTS = {
    "none": {},
    "put-lost-5xx": {"put": (_error("KMSInternalException", 500, "PutKeyPolicy"), "lost")},
    "put-lost-timeout": {"put": (ReadTimeoutError(endpoint_url="https://kms"), "lost")},
    "put-refused": {"put": (_error("AccessDeniedException", 400, "PutKeyPolicy"), "refused")},
    "read-back-denied": {"read-back": _error("AccessDeniedException", 400, "GetKeyPolicy")},
}
OUTCOMES: dict[str, int] = {}


@settings(max_examples=200, deadline=None)
@given(point=st.sampled_from(["before-put", "before-read-back", None]), edit=st.sampled_from(sorted(EDITS)),
       fault=st.sampled_from(sorted(FAULTS)))
def test_property_interleaved_admin_edits_and_faults(point, edit, fault):
    """Whatever edit lands wherever, with whatever fault: keyfix writes at most once, never
    writes a policy lacking a statement that was in force when it read, and its claim matches
    the policy in force: `applied` only when its statements are there; `failed` only when they
    are not; `unverified` only when it could not read the policy back."""
    kms = FakeKms(edits={point: EDITS[edit]} if point else {}, faults=FAULTS[fault])
    read_first = [json.dumps(s, sort_keys=True) for s in kms.policy["Statement"]]
    try:
        add_key_policy_statements(kms, CHECKED_SLR, KEY, STATEMENTS, _journal())
        outcome = "applied"
    except WriteFailed:
        outcome = "failed"
    except WriteUnverified:
        outcome = "unverified"
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1
    assert kms.calls.count("PutKeyPolicy") == 1
    for written in kms.puts:
        kept = {json.dumps(s, sort_keys=True) for s in written["Statement"]}
        assert set(read_first) <= kept
    ours_in_force = all(s in kms.policy["Statement"] for s in STATEMENTS)
    if outcome == "applied":
        assert ours_in_force
    elif outcome == "failed":
        assert not ours_in_force
    else:
        assert fault == "read-back-denied"


def test_property_saw_every_outcome():
    """The property above is only worth something if it reached all three outcomes."""
    test_property_interleaved_admin_edits_and_faults()
    assert set(OUTCOMES) == {"applied", "failed", "unverified"}, OUTCOMES


# -- identity policies -----------------------------------------------------------------------

class FakeIam:
    class exceptions:  # noqa: N801 - the shape boto3 clients have
        class NoSuchEntityException(Exception):
            pass

    def __init__(self, existing: dict | None = None) -> None:
        self.inline: dict[tuple[str, str], dict] = dict(existing or {})
        self.calls: list[tuple[str, dict]] = []

    def get_role_policy(self, RoleName: str, PolicyName: str) -> dict:
        self.calls.append(("GetRolePolicy", {"RoleName": RoleName, "PolicyName": PolicyName}))
        if (RoleName, PolicyName) not in self.inline:
            raise self.exceptions.NoSuchEntityException()
        return {"PolicyDocument": self.inline[(RoleName, PolicyName)]}

    def put_role_policy(self, RoleName: str, PolicyName: str, PolicyDocument: str) -> None:
        self.calls.append(("PutRolePolicy", {"RoleName": RoleName, "PolicyName": PolicyName}))
        self.inline[(RoleName, PolicyName)] = json.loads(PolicyDocument)


IDENTITY_DOC = {"PolicyName": docs.identity_policy_name(KEY),
                "PolicyDocument": docs.identity_policy(KEY, ["kms:Decrypt"], [])}


def test_identity_policy_goes_to_iams_name_of_the_checked_role():
    iam = FakeIam()
    put_identity_policy(iam, CHECKED_OPS, IDENTITY_DOC, _journal())
    ref = {"RoleName": "ops", "PolicyName": IDENTITY_DOC["PolicyName"]}
    assert iam.calls == [("GetRolePolicy", ref), ("PutRolePolicy", ref), ("GetRolePolicy", ref)]


def test_an_inline_policy_changed_between_write_and_read_back_is_a_conflict():
    """The review's race: another writer's put lands after keyfix's; keyfix says so."""
    class Racing(FakeIam):
        def put_role_policy(self, RoleName: str, PolicyName: str, PolicyDocument: str) -> None:
            super().put_role_policy(RoleName, PolicyName, PolicyDocument)
            self.inline[(RoleName, PolicyName)] = {"Version": "2012-10-17", "Statement": []}

    with pytest.raises(WriteFailed, match="conflict"):
        put_identity_policy(Racing(), CHECKED_OPS, IDENTITY_DOC, _journal())


def test_an_inline_policy_keyfix_did_not_write_is_never_replaced():
    tightened = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}
    iam = FakeIam({("ops", IDENTITY_DOC["PolicyName"]): tightened})
    with pytest.raises(Refusal, match="never replaces"):
        put_identity_policy(iam, CHECKED_OPS, IDENTITY_DOC, _journal())
    assert [c[0] for c in iam.calls] == ["GetRolePolicy"]
    assert iam.inline[("ops", IDENTITY_DOC["PolicyName"])] == tightened


def test_identity_policy_on_a_service_linked_role_is_refused():
    with pytest.raises(Refusal):
        put_identity_policy(FakeIam(), CHECKED_SLR, IDENTITY_DOC, _journal())


# -- grants ------------------------------------------------------------------------------------

class FakeGrants:
    def __init__(self, lose_answer: bool = False, list_denied: bool = False) -> None:
        self.grants: list[dict] = []
        self.lose_answer, self.list_denied = lose_answer, list_denied
        self.created: list[dict] = []

    def get_paginator(self, name: str) -> Any:
        outer = self

        class Pages:
            def paginate(self, **kwargs: Any):
                if outer.list_denied and outer.created:
                    raise _error("AccessDeniedException", 400, "ListGrants")
                yield {"Grants": [g for g in outer.grants if g["GranteePrincipal"] == kwargs["GranteePrincipal"]]}

        return Pages()

    def create_grant(self, **params: Any) -> dict:
        self.created.append(params)
        grant = {"GrantId": f"g-{len(self.grants)}", **params}
        self.grants.append(grant)
        if self.lose_answer:
            raise ReadTimeoutError(endpoint_url="https://kms")
        return {"GrantId": grant["GrantId"]}


GRANT = docs.grant_parameters(KEY, SLR, list(docs.SLR_GRANT_OPERATIONS))


def test_grant_names_the_checked_principal_even_if_the_parameters_say_otherwise():
    kms = FakeGrants()
    create_grant(kms, CHECKED_SLR, {**GRANT, "GranteePrincipal": OPS}, _journal())
    assert [g["GranteePrincipal"] for g in kms.created] == [SLR]


def test_grant_with_lost_answer_is_settled_by_listing():
    kms = FakeGrants(lose_answer=True)
    result = create_grant(kms, CHECKED_SLR, dict(GRANT), _journal())
    assert result["grant_id"] == "g-0" and len(kms.created) == 1


def test_each_grant_change_has_its_own_name_and_a_look_alike_is_never_taken_for_it():
    """The review's decoy: after a lost answer, a grant someone made under keyfix's usual name
    is not keyfix's; only the name this change chose counts."""
    kms = FakeGrants(lose_answer=True)
    kms.grants.append({"GrantId": "decoy", **GRANT, "Name": GRANT["Name"]})
    kms.grants[-1]["Operations"] = list(GRANT["Operations"])[:-1]  # not enough: no "already present"
    result = create_grant(kms, CHECKED_SLR, dict(GRANT), _journal())
    (made,) = kms.created
    assert made["Name"].startswith(GRANT["Name"] + "-") and made["Name"] != GRANT["Name"]
    assert result["grant_id"] != "decoy"


def test_grant_with_lost_answer_and_no_listing_is_unverified():
    kms = FakeGrants(lose_answer=True, list_denied=True)
    store = FakeStore()
    with pytest.raises(WriteUnverified):
        create_grant(kms, CHECKED_SLR, dict(GRANT), _journal(store))
    (record,) = store.records.values()
    assert record["change"]["grant"]["GranteePrincipal"] == SLR
