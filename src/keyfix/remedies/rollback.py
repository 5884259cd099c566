"""Undo one write keyfix made, only while what keyfix wrote is still what is in force.

Every write `apply.carry_out` makes is kept as an audit record (`keyfix.store`). Rolling
one back restores the state before it, and refuses, with a diff, when someone changed the
same thing since: restoring `before` then would silently discard their edit.

- key policy: GetKeyPolicy; if it is still (canonical JSON) the `after` keyfix wrote,
  PutKeyPolicy(`before`) under the key's write lock, never with
  BypassPolicyLockoutSafetyCheck (KMS's lockout check stays on).
  https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
  https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
- grant: RevokeGrant(KeyId, GrantId); a grant already gone is refused.
  https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html
- identity policy: if the inline policy is still `after`, put `before` back, or delete
  the policy when keyfix created it.
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRolePolicy.html

`keyfix rollback CHANGE_ID` and `keyfix history [--key ARN]` are `cli_rollback` and
`cli_history`. Exit status: 0 done, 2 unknown change id / refused (reason and diff on
stderr) / no table configured, 1 internal failure.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from keyfix.arns import identity_holder
from keyfix.store import DEFAULT_LOCK_WAIT_SECONDS, AlreadyRolledBack, LockTimeout, UnknownChange

EXIT_OK, EXIT_INTERNAL, EXIT_REFUSED = 0, 1, 2

ROLLED_BACK = "rolled-back"
REFUSED = "refused"
NOT_FOUND = "not-found"


@dataclass
class RollbackResult:
    change_id: str
    status: str  # rolled-back | refused | not-found
    message: str
    diff: str | None = None
    calls: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == ROLLED_BACK

    def to_dict(self) -> dict[str, Any]:
        return {"change_id": self.change_id, "status": self.status, "message": self.message,
                "diff": self.diff, "calls": list(self.calls)}


def _load(doc: Any) -> Any:
    return json.loads(doc) if isinstance(doc, str) else doc


def canonical(doc: Any) -> str:
    """Policy JSON with keys sorted and no whitespace: equal text means equal policy as
    keyfix wrote it (statement order is kept: keyfix never reorders)."""
    return json.dumps(_load(doc), sort_keys=True, separators=(",", ":"))


def _pretty(doc: Any) -> list[str]:
    if doc is None:
        return []
    return json.dumps(_load(doc), indent=2, sort_keys=True).splitlines(keepends=True)


def policy_diff(expected: Any, current: Any, expected_label: str, current_label: str) -> str:
    """Unified diff of two policies, pretty-printed with sorted keys."""
    lines = difflib.unified_diff(_pretty(expected), _pretty(current), fromfile=expected_label,
                                 tofile=current_label)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def rollback(change_id: str, store: Any, kms_client: Any, iam_client: Any, *, by: str = "keyfix rollback",
             lock_ttl_seconds: int = 60, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> RollbackResult:
    """Undo the change `change_id`; see the module docstring for when it refuses.

    Raises keyfix.store.LockTimeout when another writer holds the key's lock throughout
    `lock_wait_seconds` (nothing is changed then), and AWS errors other than the expected
    "already gone" ones. If marking the record fails after the AWS write, the write stands
    and a later rollback refuses (the policy is no longer `after`), showing the diff."""
    record = store.get_change(change_id)
    if record is None:
        return RollbackResult(change_id, NOT_FOUND, f"no change {change_id} in the audit table")
    if record["rolled_back"]:
        return RollbackResult(change_id, REFUSED, f"change {change_id} is already rolled back "
                              f"(by {record['rolled_back_by']} at {record['rolled_back_at']})")
    kind = record["kind"]
    if kind == "key-policy-statement":
        result = _rollback_key_policy(record, store, kms_client, by, lock_ttl_seconds, lock_wait_seconds)
    elif kind == "grant":
        result = _rollback_grant(record, kms_client)
    elif kind == "identity-policy":
        result = _rollback_identity_policy(record, iam_client)
    else:
        return RollbackResult(change_id, REFUSED, f"keyfix does not roll back changes of kind {kind}"
                              + (" (delete the service-linked role yourself if it must go)"
                                 if kind == "create-service-linked-role" else ""))
    if result.ok:
        try:
            store.mark_rolled_back(change_id, by)
        except AlreadyRolledBack:
            # A concurrent rollback of the same change finished first; both restored the same state.
            result.message += " (another rollback marked it first)"
        except UnknownChange:
            result.message += " (its audit record has since expired)"
    return result


def _rollback_key_policy(record: dict[str, Any], store: Any, kms: Any, by: str, ttl: int,
                         wait: float) -> RollbackResult:
    change_id, change = record["change_id"], record["change"]
    key_arn = change["target"]
    before, after = change["before"], change["after"]
    # The same lock keyfix's writers take: nobody adds a statement between our read and write.
    with store.lock(key_arn, owner=f"rollback:{by}:{change_id}", ttl_seconds=ttl, wait_seconds=wait):
        current = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        if canonical(current) != canonical(after):
            diff = policy_diff(after, current, f"key policy keyfix wrote (change {change_id})",
                               f"key policy now on {key_arn}")
            return RollbackResult(change_id, REFUSED,
                                  f"the key policy of {key_arn} changed after keyfix wrote it; restoring the "
                                  "earlier policy would discard those edits. Not rolled back.", diff,
                                  ["kms:GetKeyPolicy"])
        # BypassPolicyLockoutSafetyCheck is deliberately not passed (default False).
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=before)
    added = ", ".join(change.get("added_sids") or [])
    return RollbackResult(change_id, ROLLED_BACK, f"restored the key policy of {key_arn} as it was before "
                          f"change {change_id} (removed {added or 'its statements'})",
                          calls=["kms:GetKeyPolicy", "kms:PutKeyPolicy"])


def _rollback_grant(record: dict[str, Any], kms: Any) -> RollbackResult:
    change_id, change = record["change_id"], record["change"]
    key_arn, grant_id = change["target"], change["grant_id"]
    try:
        # KeyId must be the key ARN when the key is in another account (it is what keyfix stored).
        kms.revoke_grant(KeyId=key_arn, GrantId=grant_id)
    except Exception as exc:
        if _error_code(exc) == "NotFoundException":
            return RollbackResult(change_id, REFUSED, f"grant {grant_id} is no longer on {key_arn} (revoked or "
                                  "retired since); nothing to roll back", calls=["kms:RevokeGrant"])
        raise
    return RollbackResult(change_id, ROLLED_BACK, f"revoked grant {grant_id} on {key_arn}",
                          calls=["kms:RevokeGrant"])


def _rollback_identity_policy(record: dict[str, Any], iam: Any) -> RollbackResult:
    change_id, change = record["change_id"], record["change"]
    holder, policy_name = change["target"], change["policy_name"]
    before, after = change.get("before"), change["after"]
    kind, name = identity_holder(holder)
    holder_arg = {f"{kind.capitalize()}Name": name, "PolicyName": policy_name}
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
        return RollbackResult(change_id, REFUSED, f"the {label} changed after keyfix wrote it; not rolled back",
                              diff, [f"iam:Get{kind.capitalize()}Policy"])
    if before is None:
        (iam.delete_role_policy if kind == "role" else iam.delete_user_policy)(**holder_arg)
        return RollbackResult(change_id, ROLLED_BACK, f"deleted the {label}, which keyfix had created",
                              calls=[f"iam:Delete{kind.capitalize()}Policy"])
    (iam.put_role_policy if kind == "role" else iam.put_user_policy)(
        **holder_arg, PolicyDocument=json.dumps(_load(before)))
    return RollbackResult(change_id, ROLLED_BACK, f"restored the {label} as it was before change {change_id}",
                          calls=[f"iam:Put{kind.capitalize()}Policy"])


# -- history ------------------------------------------------------------------------


def history(store: Any, key_arn: str | None = None) -> list[dict[str, Any]]:
    """One summary per audit record (of `key_arn` only, when given), oldest first."""
    rows = []
    for record in store.list_changes(key_arn):
        change = record["change"]
        finding = record.get("finding") or {}
        rows.append({
            "change_id": record["change_id"],
            "applied_at": record["applied_at"],
            "applied_by": record["applied_by"],
            "kind": record["kind"],
            "key_arn": record["key_arn"],
            "target": record["target"],
            "event_id": record["event_id"],
            "cause": change.get("finding_cause") or (finding.get("cause") if isinstance(finding, dict) else None),
            "added_sids": change.get("added_sids"),
            "grant_id": change.get("grant_id"),
            "policy_name": change.get("policy_name"),
            "rolled_back": record["rolled_back"],
            "rolled_back_at": record["rolled_back_at"],
            "rolled_back_by": record["rolled_back_by"],
        })
    return rows


def _history_line(row: dict[str, Any]) -> str:
    what = {"key-policy-statement": f"statements {', '.join(row['added_sids'] or [])}",
            "grant": f"grant {row['grant_id']}",
            "identity-policy": f"inline policy {row['policy_name']}"}.get(row["kind"], row["kind"])
    state = (f"rolled back {row['rolled_back_at']} by {row['rolled_back_by']}" if row["rolled_back"]
             else "in force")
    return (f"{row['applied_at']}  {row['change_id']}  {row['kind']}  {row['target']}  {what}  "
            f"[{row['cause'] or '-'}; by {row['applied_by']}; event {row['event_id']}; {state}]")


# -- command line -----------------------------------------------------------------------


def _open_store(args: Any, command: str) -> Any:
    """The table from --table or KEYFIX_TABLE_NAME; None (after saying why) without one."""
    table = getattr(args, "table", None) or os.environ.get("KEYFIX_TABLE_NAME") or None
    if not table:
        print(f"keyfix {command}: KEYFIX_TABLE_NAME not set: there is no audit table to read", file=sys.stderr)
        return None
    import boto3  # lazy: cold start

    from keyfix.store import Store

    return Store(table, boto3.client("dynamodb"))


def _who(args: Any) -> str:
    if getattr(args, "by", None):
        return args.by
    try:
        import boto3

        return boto3.client("sts").get_caller_identity()["Arn"]
    except Exception:  # who ran it is for the record only; never block a rollback on it
        return os.environ.get("USER") or "unknown"


def _region_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] or None if len(parts) > 3 and parts[0] == "arn" else None


def cli_rollback(args: Any) -> int:
    """`keyfix rollback CHANGE_ID [--by WHO] [--table NAME] [--wait SECONDS] [--format json|text]`."""
    try:
        store = _open_store(args, "rollback")
        if store is None:
            return EXIT_REFUSED
        record = store.get_change(args.change_id)
        if record is None:
            print(f"keyfix rollback: no change {args.change_id} in the audit table", file=sys.stderr)
            return EXIT_REFUSED
        import boto3  # lazy

        # KMS calls go to the key's Region (from its ARN); IAM is global.
        kms = boto3.client("kms", region_name=_region_of(record.get("key_arn")))
        iam = boto3.client("iam")
        wait = getattr(args, "wait", None)
        result = rollback(args.change_id, store, kms, iam, by=_who(args),
                          lock_wait_seconds=DEFAULT_LOCK_WAIT_SECONDS if wait is None else wait)
    except LockTimeout as exc:
        print(f"keyfix rollback: {exc}; nothing changed, try again", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:
        print(f"keyfix rollback: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if getattr(args, "format", "text") == "json":
        print(json.dumps(result.to_dict(), indent=2))
    elif result.ok:
        print(result.message)
    if not result.ok:
        print(f"keyfix rollback: {result.message}", file=sys.stderr)
        if result.diff:
            print(result.diff, end="", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def cli_history(args: Any) -> int:
    """`keyfix history [--key ARN] [--table NAME] [--format json|text]`."""
    try:
        store = _open_store(args, "history")
        if store is None:
            return EXIT_REFUSED
        rows = history(store, getattr(args, "key", None))
    except Exception as exc:
        print(f"keyfix history: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if getattr(args, "format", "text") == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(_history_line(row))
        if not rows:
            print("no changes recorded", file=sys.stderr)
    return EXIT_OK
