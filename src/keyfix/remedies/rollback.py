"""Undo one write keyfix made - only what keyfix itself did, and only from a record that
proves keyfix wrote it (issue #9, section 4).

Whoever can write keyfix's table could put a `change#<uuid>` item there; rollback must not
become a way to write through keyfix. So:

- the audit record must verify: its MAC (keyfix.store.mac) checked by the configured KMS
  HMAC key. No MAC, a MAC that does not verify, or no key configured: refused, nothing read
  or written in KMS or IAM;
- nothing stored is ever written back. Rollback only removes what the record says keyfix
  added, and only while that is still exactly in force:
  - key policy: read the policy in force, remove exactly the recorded statements (canonical
    JSON equality, `keyfix-` Sids only; a statement already there before keyfix's write is
    not keyfix's and stays); if one is gone or was altered, refuse. The result must pass
    the lockout guard and the size limit (keyfix.remedies.safety); it is written under the
    key's lock, never with BypassPolicyLockoutSafetyCheck, and read back.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
    https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
  - grant: revoke the recorded grant id only if ListGrants still shows it with the recorded
    grantee and operations and a `keyfix-` name.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html
    https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html
  - identity policy: delete the inline policy only if keyfix created it (keyfix never
    replaces one) and its document is still exactly the recorded one.
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRolePolicy.html
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteUserPolicy.html

`keyfix rollback` and `keyfix history` (the command line over this and the audit table)
are in keyfix.remedies.history.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from keyfix.remedies.documents import command
from keyfix.store import DEFAULT_LOCK_WAIT_SECONDS, AlreadyRolledBack, UnknownChange

EXIT_OK, EXIT_INTERNAL, EXIT_REFUSED = 0, 1, 2

ROLLED_BACK = "rolled-back"
REFUSED = "refused"
NOT_FOUND = "not-found"
FAILED = "failed"  # written, but the read-back shows something else
UNVERIFIED = "unverified"  # written, but the read-back could not be made

SID_PREFIX = "keyfix-"
# Records of a write that may be in force. `already-present`: keyfix wrote nothing;
# `failed`: AWS refused the write, or keyfix's change was not in force when it read back.
ROLLBACK_STATUSES = ("applied", "unverified", "intent")


@dataclass
class RollbackResult:
    change_id: str
    status: str  # rolled-back | refused | not-found | failed | unverified
    message: str
    diff: str | None = None
    calls: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == ROLLED_BACK

    def to_dict(self) -> dict[str, Any]:
        return {"change_id": self.change_id, "status": self.status, "message": self.message,
                "diff": self.diff, "calls": list(self.calls)}


class Refused(Exception):
    """Rollback will not act; the message says why (and `diff` what differs)."""

    def __init__(self, message: str, diff: str | None = None) -> None:
        super().__init__(message)
        self.diff = diff


def _load(doc: Any) -> Any:
    return json.loads(doc) if isinstance(doc, str) else doc


def canonical(doc: Any) -> str:
    """JSON with keys sorted and no whitespace: equal text means equal document."""
    return json.dumps(_load(doc), sort_keys=True, separators=(",", ":"))


def _pretty(doc: Any) -> list[str]:
    if doc is None:
        return []
    return json.dumps(_load(doc), indent=2, sort_keys=True).splitlines(keepends=True)


def policy_diff(expected: Any, current: Any, expected_label: str, current_label: str) -> str:
    """Unified diff of two documents, pretty-printed with sorted keys."""
    lines = difflib.unified_diff(_pretty(expected), _pretty(current), fromfile=expected_label,
                                 tofile=current_label)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def _statements(policy: dict[str, Any]) -> list[Any]:
    s = policy.get("Statement", [])
    return [s] if isinstance(s, dict) else list(s) if isinstance(s, list) else []


# -- rollback ----------------------------------------------------------------------------


def rollback(change_id: str, store: Any, kms_client: Any, iam_client: Any, *, by: str = "keyfix rollback",
             lock_ttl_seconds: int = 60, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> RollbackResult:
    """Undo the change `change_id`; see the module docstring for when it refuses.

    Raises keyfix.store.LockTimeout when another writer holds the key's lock throughout
    `lock_wait_seconds` (nothing is changed then), and unexpected AWS errors."""
    record = store.get_change(change_id)
    if record is None:
        return RollbackResult(change_id, NOT_FOUND, f"no change {change_id} in the audit table")
    if not record.get("verified"):
        return RollbackResult(change_id, REFUSED, f"the audit record of change {change_id} does not verify: "
                              f"{record.get('verify_error')}. keyfix rolls back only what a record it can prove "
                              "it wrote says it did; nothing changed")
    if record["rolled_back"]:
        return RollbackResult(change_id, REFUSED, f"change {change_id} is already rolled back "
                              f"(by {record['rolled_back_by']} at {record['rolled_back_at']})")
    kind, status = record["kind"], record["status"]
    if kind == "create-service-linked-role":
        return RollbackResult(change_id, REFUSED, "keyfix does not roll back changes of kind "
                              "create-service-linked-role (delete the service-linked role yourself if it must go)")
    if kind not in ("key-policy-statement", "grant", "identity-policy"):
        return RollbackResult(change_id, REFUSED, f"keyfix does not roll back changes of kind {kind}")
    if status not in ROLLBACK_STATUSES:
        return RollbackResult(change_id, REFUSED, f"change {change_id} is {status!r}: keyfix wrote nothing that is "
                              "in force (already-present: it was there before; failed: AWS refused it, or it was "
                              "not in force when keyfix read back); nothing to roll back")
    # Rollback marks the record afterwards, which takes a new MAC: make sure it can,
    # before anything is written, rather than leave an undone change marked in force.
    problem = store.signing_problem()
    if problem:
        return RollbackResult(change_id, REFUSED, f"keyfix could not mark the record rolled back afterwards "
                              f"({problem}); nothing changed")
    try:
        if kind == "key-policy-statement":
            result = _rollback_key_policy(record, store, kms_client, by, lock_ttl_seconds, lock_wait_seconds)
        elif kind == "grant":
            result = _rollback_grant(record, kms_client)
        else:
            result = _rollback_identity_policy(record, iam_client)
    except Refused as refusal:
        return RollbackResult(change_id, REFUSED, f"{refusal}; nothing changed", refusal.diff,
                              getattr(refusal, "calls", []))
    if result.ok:
        try:
            store.mark_rolled_back(change_id, by)
        except AlreadyRolledBack:
            # A concurrent rollback of the same change finished first; both removed the same things.
            result.message += " (another rollback marked it first)"
        except UnknownChange:
            result.message += " (its audit record has since gone)"
    return result


def _refused(message: str, calls: list[str], diff: str | None = None) -> Refused:
    refusal = Refused(message, diff)
    refusal.calls = list(calls)  # type: ignore[attr-defined]
    return refusal


# -- key policy ----------------------------------------------------------------------------


def recorded_statements(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements the (verified) record says keyfix added: `added_statements`, or, in
    records made before it existed, the statements of `after` named by `added_sids`.
    Statements already in `before` were not keyfix's and are left out. Raises Refused."""
    change = record["change"]
    statements = change.get("added_statements")
    if statements is None and change.get("after") and change.get("added_sids"):
        try:
            after = _load(change["after"])
        except ValueError:
            after = None
        sids = set(change["added_sids"])
        statements = [s for s in _statements(after) if isinstance(s, dict) and s.get("Sid") in sids] \
            if isinstance(after, dict) else None
    if not isinstance(statements, list) or not statements:
        raise Refused(f"the record of change {record['change_id']} names no statement keyfix added")
    for statement in statements:
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        if not isinstance(sid, str) or not sid.startswith(SID_PREFIX):
            raise Refused(f"the record names a statement with Sid {sid!r}; keyfix removes only its own "
                          f"{SID_PREFIX!r} statements")
    try:
        before = _load(change.get("before")) if change.get("before") else None
    except ValueError:
        before = None
    earlier = {canonical(s) for s in _statements(before)} if isinstance(before, dict) else set()
    own = [s for s in statements if canonical(s) not in earlier]
    if not own:
        raise Refused(f"every statement of change {record['change_id']} was in the key policy before keyfix's "
                      "write; none of them is keyfix's to remove")
    return own


def without_statements(current: dict[str, Any], remove: list[dict[str, Any]], key_arn: str,
                       change_id: str) -> dict[str, Any]:
    """`current` less exactly the statements `remove` (one occurrence each). Raises Refused,
    with a diff, when one of them is no longer there exactly."""
    present = _statements(current)
    taken: set[int] = set()
    for statement in remove:
        want = canonical(statement)
        index = next((i for i, s in enumerate(present) if i not in taken and canonical(s) == want), None)
        if index is not None:
            taken.add(index)
            continue
        same_sid = next((s for s in present if isinstance(s, dict) and s.get("Sid") == statement["Sid"]), None)
        if same_sid is not None:
            raise Refused(f"statement {statement['Sid']} of {key_arn} was altered after keyfix wrote it "
                          f"(change {change_id}); keyfix will not remove someone else's edit",
                          policy_diff(statement, same_sid, f"{statement['Sid']} as keyfix wrote it",
                                      f"{statement['Sid']} now on {key_arn}"))
        raise Refused(f"statement {statement['Sid']} of change {change_id} is no longer in the key policy of "
                      f"{key_arn} (removed or rolled back since)")
    after = dict(current)
    after["Statement"] = [s for i, s in enumerate(present) if i not in taken]
    return after


def _rollback_key_policy(record: dict[str, Any], store: Any, kms: Any, by: str, ttl: int,
                         wait: float) -> RollbackResult:
    from keyfix.remedies import safety

    change_id = record["change_id"]
    key_arn = record["change"].get("target") or record["target"]
    remove = recorded_statements(record)
    calls: list[str] = []
    # The same lock keyfix's writers take: nobody adds a statement between our read and write.
    with store.lock(key_arn, owner=f"rollback:{by}:{change_id}", ttl_seconds=ttl, wait_seconds=wait):
        calls.append("kms:GetKeyPolicy")
        current_text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        try:
            current = json.loads(current_text)
        except ValueError:
            current = None
        if not isinstance(current, dict) or not isinstance(current.get("Statement", []), (list, dict)):
            raise _refused(f"the key policy of {key_arn} is not a policy document keyfix can read", calls)
        try:
            after = without_statements(current, remove, key_arn, change_id)
        except Refused as refusal:
            raise _refused(str(refusal), calls, refusal.diff) from None
        after_text = json.dumps(after, indent=2)
        try:
            safety.check_size(after_text)
            safety.check_no_lockout(current, after, key_arn)
        except safety.Refusal as refusal:
            raise _refused(str(refusal), calls) from None
        # BypassPolicyLockoutSafetyCheck is deliberately not passed (default False).
        calls.append("kms:PutKeyPolicy")
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after_text)
        calls.append("kms:GetKeyPolicy")
        try:
            readback = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
        except Exception as exc:
            return RollbackResult(change_id, UNVERIFIED, f"wrote the key policy of {key_arn} without keyfix's "
                                  f"statements, but could not read it back ({type(exc).__name__}: {exc}); the record "
                                  "is not marked rolled back: check the policy, then run rollback again", calls=calls)
    sids = ", ".join(s["Sid"] for s in remove)
    if sorted(map(canonical, _statements(readback))) != sorted(map(canonical, after["Statement"])):
        return RollbackResult(change_id, FAILED, f"the key policy of {key_arn} read back after the write is not the "
                              f"one written (without {sids}); not marked rolled back",
                              policy_diff(after, readback, "key policy written", "key policy read back"), calls)
    return RollbackResult(change_id, ROLLED_BACK, f"removed {sids} (change {change_id}) from the key policy of "
                          f"{key_arn}; every other statement is as it was", calls=calls)


# -- grant -----------------------------------------------------------------------------------


def _rollback_grant(record: dict[str, Any], kms: Any) -> RollbackResult:
    change_id, change, outcome = record["change_id"], record["change"], record["outcome"]
    grant_id = outcome.get("grant_id") or change.get("grant_id")
    recorded = change.get("grant") if isinstance(change.get("grant"), dict) else {}
    key_arn = change.get("target") or recorded.get("KeyId")
    if not grant_id:
        raise Refused(f"the record of change {change_id} holds no grant id (the write's outcome was never "
                      "confirmed); keyfix revokes only a grant whose id it recorded")
    if not recorded.get("GranteePrincipal") or not recorded.get("Operations"):
        raise Refused(f"the record of change {change_id} lacks the grant's grantee or operations")
    calls = ["kms:ListGrants"]
    found = None
    try:
        for page in kms.get_paginator("list_grants").paginate(KeyId=key_arn):
            found = next((g for g in page.get("Grants", []) if g.get("GrantId") == grant_id), found)
    except Exception as exc:
        if _error_code(exc) in ("NotFoundException",):
            found = None
        elif "AccessDenied" in (_error_code(exc) or ""):
            raise _refused(f"keyfix cannot read the grants of {key_arn} ({_error_code(exc)}), so it cannot confirm "
                           f"that grant {grant_id} is still the one it made; not revoked (the key owner can: "
                           + command("aws", "kms", "revoke-grant", "--key-id", str(key_arn), "--grant-id",
                                     str(grant_id)) + ")", calls) from None  # quoted: it may be pasted
        else:
            raise
    if found is None:
        raise _refused(f"grant {grant_id} is no longer on {key_arn} (revoked or retired since); nothing to roll back",
                       calls)
    differences = []
    if found.get("GranteePrincipal") != recorded["GranteePrincipal"]:
        differences.append(f"grantee {found.get('GranteePrincipal')} (recorded {recorded['GranteePrincipal']})")
    if sorted(found.get("Operations") or []) != sorted(recorded["Operations"]):
        differences.append(f"operations {sorted(found.get('Operations') or [])} (recorded "
                           f"{sorted(recorded['Operations'])})")
    name = found.get("Name") or ""
    if not name.startswith(SID_PREFIX) or (recorded.get("Name") and name != recorded["Name"]):
        differences.append(f"name {name or '(none)'} (keyfix names its grants {recorded.get('Name') or 'keyfix-...'})")
    if differences:
        raise _refused(f"grant {grant_id} on {key_arn} is not the one keyfix recorded: " + "; ".join(differences)
                       + "; not revoked", calls)
    calls.append("kms:RevokeGrant")
    try:
        # KeyId must be the key ARN when the key is in another account (it is what keyfix stored).
        kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    except Exception as exc:
        if _error_code(exc) == "NotFoundException":
            raise _refused(f"grant {grant_id} vanished from {key_arn} just now; nothing to roll back", calls) from None
        raise
    return RollbackResult(change_id, ROLLED_BACK, f"revoked grant {grant_id} ({name}) on {key_arn}", calls=calls)


# -- identity policy ---------------------------------------------------------------------------


def _rollback_identity_policy(record: dict[str, Any], iam: Any) -> RollbackResult:
    from keyfix.arns import identity_holder

    change_id, change = record["change_id"], record["change"]
    holder, policy_name, after = change.get("target"), change.get("policy_name"), change.get("after")
    if change.get("before") is not None:
        raise Refused(f"change {change_id} replaced an existing inline policy; keyfix no longer writes stored "
                      "policies back, so restore it by hand")
    if not isinstance(policy_name, str) or not policy_name.startswith(SID_PREFIX) or not isinstance(after, dict):
        raise Refused(f"the record of change {change_id} does not describe an inline policy keyfix created "
                      f"(policy name {policy_name!r})")
    try:
        kind, name = identity_holder(holder or "")
    except ValueError as exc:
        raise Refused(str(exc)) from None
    holder_arg = {f"{kind.capitalize()}Name": name, "PolicyName": policy_name}
    calls = [f"iam:Get{kind.capitalize()}Policy"]
    get = iam.get_role_policy if kind == "role" else iam.get_user_policy
    try:
        current = _load(get(**holder_arg)["PolicyDocument"])
    except Exception as exc:
        if _error_code(exc) != "NoSuchEntity":
            raise
        current = None
    label = f"inline policy {policy_name} of {holder}"
    if current is None or canonical(current) != canonical(after):
        diff = policy_diff(after, current, f"{label} as keyfix wrote it (change {change_id})",
                           f"{label} now" + (" (deleted)" if current is None else ""))
        raise _refused(f"the {label} changed after keyfix wrote it; not deleted", calls, diff)
    calls.append(f"iam:Delete{kind.capitalize()}Policy")
    (iam.delete_role_policy if kind == "role" else iam.delete_user_policy)(**holder_arg)
    return RollbackResult(change_id, ROLLED_BACK, f"deleted the {label}, which keyfix had created", calls=calls)


# -- history ------------------------------------------------------------------------
