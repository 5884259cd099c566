"""Settle writes whose outcome keyfix could not confirm (audit status `unverified`, or an
intent that never got its outcome because the function died).

A read decides each one: the statements, grant or inline policy keyfix recorded are in
force (`applied`) or not (`failed`). If the read fails too, the record stays `unverified`
for the next check. Reads only; never a write. Runs after the event's own work in apply-mode
invocations that have a table (`pipeline`), a few records at a time, at most every 15 minutes
per warm container.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keyfix.remedies.writers import canonical, statements_of

log = logging.getLogger("keyfix")

# At most this many records per invocation: settling is bookkeeping, not the event's work.
SETTLE_PER_INVOCATION = 5
# Listing the unsettled records reads the whole table, so a warm container does it at most
# this often (a storm must not scan once per event). The scheduled follow-up (not built yet)
# is meant to take this over.
SETTLE_EVERY_SECONDS = 15 * 60
_last_settle: dict[str, float] = {}


def settle_now_and_then(store: Any, gw: Any, clock: Any = None) -> list[tuple[str, str]]:
    """`settle_unverified`, at most once per SETTLE_EVERY_SECONDS per table per container."""
    import time

    now = (clock or time.monotonic)()
    table = str(getattr(store, "table_name", ""))
    last = _last_settle.get(table)
    if last is not None and now - last < SETTLE_EVERY_SECONDS:
        return []
    _last_settle[table] = now
    return settle_unverified(store, gw)


def settle_unverified(store: Any, gw: Any, limit: int = SETTLE_PER_INVOCATION) -> list[tuple[str, str]]:
    """Returns (change id, new status) for each record it looked at."""
    if store is None or not getattr(store, "persistent", False) or not hasattr(store, "list_unverified"):
        return []
    try:
        pending = store.list_unverified()[:limit]
    except Exception:  # bookkeeping must never stop the event's own work
        log.exception("could not list unverified changes")
        return []
    settled = []
    for record in pending:
        status, details = _in_force(record, gw)
        try:
            store.record_outcome(record["change_id"], status, details)
        except Exception:
            log.exception("could not record the settled outcome of change %s", record.get("change_id"))
            continue
        settled.append((record["change_id"], status))
    return settled


def _in_force(record: dict[str, Any], gw: Any) -> tuple[str, dict[str, Any]]:
    change = record.get("change") or {}
    kind = change.get("kind")
    try:
        if kind == "key-policy-statement":
            return _key_policy(gw, change)
        if kind == "grant":
            return _grant(gw, change)
        if kind == "identity-policy":
            return _identity_policy(gw, change)
    except Exception as exc:  # botocore errors and unreadable answers alike: still unknown
        return "unverified", {"reason": f"settling read failed: {type(exc).__name__}: {exc}"}
    return "unverified", {"reason": f"keyfix cannot settle a change of kind {kind!r} by reading"}


def _key_policy(gw: Any, change: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    policy = json.loads(gw.client("kms").get_key_policy(KeyId=change["target"], PolicyName="default")["Policy"])
    in_force = {canonical(s) for s in statements_of(policy)}
    missing = [s.get("Sid") for s in change.get("added_statements") or [] if canonical(s) not in in_force]
    if missing:
        return "failed", {"reason": f"settled later: the key policy lacks {missing}"}
    return "applied", {"reason": "settled later: keyfix's statements are in force"}


def _grant(gw: Any, change: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Only the grant with this change's own name (writers.create_grant makes it unique) and
    exactly the recorded operations is keyfix's; two such grants cannot be told apart."""
    grant = change.get("grant") or {}
    kms = gw.client("kms")
    pages = kms.get_paginator("list_grants").paginate(KeyId=grant["KeyId"], GranteePrincipal=grant["GranteePrincipal"])
    found = [g for page in pages for g in page.get("Grants", [])
             if g.get("Name") == grant.get("Name") and set(g.get("Operations", [])) == set(grant["Operations"])
             and g.get("GranteePrincipal") == grant["GranteePrincipal"]]
    if len(found) == 1:
        return "applied", {"grant_id": found[0].get("GrantId"), "reason": "settled later: the grant exists"}
    if found:
        return "unverified", {"reason": "settled later: several grants carry this change's name"}
    return "failed", {"reason": "settled later: no such grant exists"}


def _identity_policy(gw: Any, change: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from keyfix.arns import identity_holder

    kind, name = identity_holder(change["target"])
    iam = gw.client("iam")
    get = iam.get_role_policy if kind == "role" else iam.get_user_policy
    try:
        current = get(**{f"{kind.capitalize()}Name": name, "PolicyName": change["policy_name"]})["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return "failed", {"reason": "settled later: the inline policy does not exist"}
    current = json.loads(current) if isinstance(current, str) else current
    if canonical(current) == canonical(change.get("after")):
        return "applied", {"reason": "settled later: the inline policy is in force"}
    return "failed", {"reason": "settled later: the inline policy in force is not keyfix's"}
