"""`keyfix history` and `keyfix rollback`: the command line over the audit table
(keyfix.store) and the undo logic (keyfix.remedies.rollback).

Exit status: 0 done, 2 unknown change id / refused (reason and diff on stderr) / no table,
no audit key or another problem of the caller's environment, 1 internal failure or an
outcome that could not be confirmed.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from keyfix.remedies.rollback import EXIT_INTERNAL, EXIT_OK, EXIT_REFUSED, NOT_FOUND, REFUSED, rollback
from keyfix.store import AUDIT_KEY_ENV, DEFAULT_LOCK_WAIT_SECONDS, LockTimeout


def _added_sids(change: dict[str, Any]) -> list[str] | None:
    statements = change.get("added_statements")
    if isinstance(statements, list):
        return [s.get("Sid") for s in statements if isinstance(s, dict)]
    return change.get("added_sids")


def history(store: Any, key_arn: str | None = None) -> list[dict[str, Any]]:
    """One summary per audit record (of `key_arn` only, when given), oldest first."""
    rows = []
    for record in store.list_changes(key_arn):
        change = record["change"] or {}
        outcome = record.get("outcome") or {}
        finding = record.get("finding") or {}
        rows.append({
            "change_id": record["change_id"],
            "seq": record.get("seq"),
            "applied_at": record["applied_at"],
            "applied_by": record["applied_by"],
            "kind": record["kind"],
            "status": record.get("status"),
            "status_at": record.get("status_at"),
            "verified": record.get("verified", False),
            "verify_error": record.get("verify_error"),
            "key_arn": record["key_arn"],
            "target": record["target"],
            "event_id": record["event_id"],
            "cause": change.get("finding_cause") or (finding.get("cause") if isinstance(finding, dict) else None),
            "added_sids": _added_sids(change),
            "grant_id": outcome.get("grant_id") or change.get("grant_id"),
            "policy_name": change.get("policy_name"),
            "reason": outcome.get("reason"),
            "rolled_back": record["rolled_back"],
            "rolled_back_at": record["rolled_back_at"],
            "rolled_back_by": record["rolled_back_by"],
        })
    return rows


def _history_line(row: dict[str, Any]) -> str:
    what = {"key-policy-statement": f"statements {', '.join(map(str, row['added_sids'] or []))}",
            "grant": f"grant {row['grant_id']}",
            "identity-policy": f"inline policy {row['policy_name']}"}.get(row["kind"] or "", row["kind"] or "?")
    state = (f"rolled back {row['rolled_back_at']} by {row['rolled_back_by']}" if row["rolled_back"]
             else row["status"] or "?")
    trust = "MAC ok" if row["verified"] else f"NOT VERIFIED: {row['verify_error']}"
    return (f"{row['applied_at']}  {row['change_id']}  {row['kind']}  {row['target']}  {what}  "
            f"[{state}; {row['cause'] or '-'}; by {row['applied_by']}; event {row['event_id']}; {trust}]")


def _gaps_line(gaps: dict[str, Any]) -> str | None:
    if not gaps["missing"]:
        return None
    ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in gaps["missing"])
    return (f"audit records missing: sequence numbers {ranges} of {gaps['issued']} issued (deleted, expired after "
            "400 days, or an intent whose put failed; records written before the table's by-change index are "
            "listed with --scan)")


# -- command line -----------------------------------------------------------------------


def _table_name(args: Any) -> str | None:
    return getattr(args, "table", None) or os.environ.get("KEYFIX_TABLE_NAME") or None


def _failed(command: str, exc: Exception, args: Any) -> int:
    """An exception of `keyfix history`/`rollback`: the caller's environment (credentials,
    table) exits 2 with what to change; anything else is an internal error (exit 3)."""
    from keyfix.cli_common import user_error

    problem = user_error(exc, _table_name(args))
    if problem:
        print(f"keyfix {command}: {problem}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"keyfix {command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_INTERNAL


def _open_store(args: Any, command: str) -> Any:
    """The table from --table or KEYFIX_TABLE_NAME, checking records with the HMAC key from
    --audit-key or KEYFIX_AUDIT_KEY_ARN; None (after saying why) without a table."""
    table = _table_name(args)
    if not table:
        print(f"keyfix {command}: KEYFIX_TABLE_NAME not set: there is no audit table to read", file=sys.stderr)
        return None
    import boto3  # lazy: cold start

    from keyfix.store import KmsMac, Store

    key_arn = getattr(args, "audit_key", None) or os.environ.get(AUDIT_KEY_ENV) or None
    mac = KmsMac(key_arn, boto3.client("kms", region_name=_region_of(key_arn))) if key_arn else None
    return Store(table, boto3.client("dynamodb"), mac=mac)


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
    """`keyfix rollback CHANGE_ID [--by WHO] [--table NAME] [--audit-key ARN] [--wait SECONDS]
    [--format json|text]`."""
    try:
        store = _open_store(args, "rollback")
        if store is None:
            return EXIT_REFUSED
        if store.mac is None:
            print(f"keyfix rollback: {AUDIT_KEY_ENV} not set (or --audit-key): keyfix cannot check that the audit "
                  "record is one it wrote, so it rolls nothing back", file=sys.stderr)
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
    except Exception as exc:  # noqa: BLE001 - said, with the exit status it deserves
        return _failed("rollback", exc, args)
    if getattr(args, "format", "text") == "json":
        print(json.dumps(result.to_dict(), indent=2))
    elif result.ok:
        print(result.message)
    if not result.ok:
        print(f"keyfix rollback: {result.message}", file=sys.stderr)
        if result.diff:
            print(result.diff, end="", file=sys.stderr)
        return EXIT_REFUSED if result.status in (REFUSED, NOT_FOUND) else EXIT_INTERNAL
    return EXIT_OK


def cli_history(args: Any) -> int:
    """`keyfix history [--key ARN] [--table NAME] [--audit-key ARN] [--format json|text]`."""
    try:
        store = _open_store(args, "history")
        if store is None:
            return EXIT_REFUSED
        records = store.list_changes(scan=bool(getattr(args, "scan", False)))  # the by-change index unless --scan
        gaps = store.sequence_gaps(records)
        key = getattr(args, "key", None)
        rows = history(_Listed(records), key)
    except Exception as exc:  # noqa: BLE001 - said, with the exit status it deserves
        return _failed("history", exc, args)
    if store.mac is None:
        print(f"keyfix history: {AUDIT_KEY_ENV} not set (or --audit-key): no record can be verified", file=sys.stderr)
    if getattr(args, "format", "text") == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(_history_line(row))
        if not rows:
            print("no changes recorded", file=sys.stderr)
    gaps_line = _gaps_line(gaps)
    if gaps_line:
        print(f"keyfix history: {gaps_line}", file=sys.stderr)
    return EXIT_OK


class _Listed:
    """Records already read, offered to `history` as a store (one Scan, one VerifyMac each)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def list_changes(self, key_arn: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if key_arn is None or r["key_arn"] == key_arn]
