"""Carry out proposed fixes in `apply` mode, one AWS write each, checked before and after.

In `propose` mode nothing here runs. In `apply` mode every fix passes the safety rules
first; a refused fix keeps its document and CLI so a person can still act on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from keyfix.arns import identity_holder
from keyfix.remedies import safety
from keyfix.remedies.plan import with_statements
from keyfix.report import Cause, Finding, Fix, FixKind, FixStatus, Mode
from keyfix.resolve.facts import Situation
from keyfix.store import LockTimeout

log = logging.getLogger("keyfix")

# Causes whose fixes are decisions for a person, whatever the mode.
PROPOSE_ONLY_CAUSES = {
    Cause.EXPLICIT_DENY, Cause.STALE_PRINCIPAL, Cause.KEY_DISABLED, Cause.KEY_PENDING_DELETION,
    Cause.KEY_PENDING_IMPORT, Cause.AWS_MANAGED_KEY_CROSS_ACCOUNT, Cause.KEY_NOT_FOUND,
}


# A write is read, lock, put, read back and maybe restore, each with bounded retries:
# with less Lambda time left than this, keyfix stops before writing rather than during.
WRITE_BUDGET_SECONDS = 15.0


class WriteFailed(Exception):
    pass


def carry_out(findings: list[Finding], situation: Situation, settings, gw, store=None,
              applied_by: str = "keyfix", time_left: Callable[[], float] | None = None) -> list[dict[str, Any]]:
    """Apply what may be applied; returns one audit record per write made.

    With `store` (keyfix.store), writes to a key run under that key's lock and every write
    is recorded; its audit dict then carries the record's `change_id` (for keyfix rollback).
    `time_left` returns the seconds the invocation has left (the Lambda context's)."""
    if settings.mode != Mode.APPLY:
        return []
    account = situation.incident.account
    if getattr(gw, "account", None) not in (None, account):
        return []  # an event of another account: keyfix writes only in its own (see resolve)
    if not situation.account_confirmed:
        for finding in findings:
            for fix in finding.fixes:
                if fix.status == FixStatus.PROPOSED and fix.kind not in safety.PROPOSE_ONLY:
                    fix.reason = ("not attempted: keyfix could not confirm which account it runs in, "
                                  "so it writes nothing")
        return []
    changes: list[dict[str, Any]] = []
    for finding in findings:
        if finding.cause in PROPOSE_ONLY_CAUSES:
            continue
        key = situation.keys.get(finding.key_arn or "")
        blocked = None
        for fix in finding.fixes:
            if fix.status != FixStatus.PROPOSED or fix.kind in safety.PROPOSE_ONLY:
                continue
            if fix.target_account != account or not fix.target.startswith("arn:"):
                # Addressed to another account or to a person's own role: stays a proposal.
                continue
            if blocked:
                fix.reason = f"not attempted: {blocked}"
                continue
            if time_left is not None and time_left() < WRITE_BUDGET_SECONDS:
                blocked = f"less than {WRITE_BUDGET_SECONDS:.0f} s of Lambda time left"
                fix.reason = f"not attempted: {blocked}; the CLI above makes the same change"
                continue
            try:
                safety.check_fix(fix, principal=finding.principal, key=key, account=account, settings=settings)
                change = _write(fix, gw, store, owner=f"{applied_by}:{situation.incident.event_id}")
            except safety.Refusal as refusal:
                fix.status, fix.reason = FixStatus.REFUSED, str(refusal)
                blocked = "an earlier step was refused"
                continue
            except WriteFailed as failure:
                fix.status, fix.reason = FixStatus.FAILED, str(failure)
                blocked = "an earlier step failed"
                continue
            if fix.kind == FixKind.GRANT:
                _grant_made(finding)
            if change is None:
                fix.status = FixStatus.ALREADY_PRESENT
            else:
                fix.status = FixStatus.APPLIED
                record = {"finding_cause": str(finding.cause), "kind": str(fix.kind), **change}
                if store is not None:
                    try:
                        record["change_id"] = store.record_change(record, situation.incident.event_id, finding,
                                                                  applied_by)
                    except Exception:  # the write stands; losing its audit record must not undo the report
                        log.exception("applied %s to %s but could not record it", fix.kind, fix.target)
                changes.append(record)
    return changes


def _grant_made(finding: Finding) -> None:
    """Seed A2: once this account could create the grant, the key owner's policy evidently
    lets it, and nobody else needs the create-grant permission: the proposals that were
    prerequisites of the grant are in place."""
    for other in finding.fixes:
        if other.kind != FixKind.GRANT and other.status == FixStatus.PROPOSED and \
                other.kind in (FixKind.KEY_POLICY_STATEMENT, FixKind.IDENTITY_POLICY):
            other.status = FixStatus.ALREADY_PRESENT
            other.reason = "not needed now: keyfix created the grant from this account, which the key owner allows"


def _key_lock(store, key_arn: str, owner: str):
    """KMS has no conditional write: writers of one key take its lock (keyfix.store)."""
    return store.lock(key_arn, owner) if store is not None else contextlib.nullcontext()


def _write(fix: Fix, gw, store=None, owner: str = "keyfix") -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if fix.kind == FixKind.KEY_POLICY_STATEMENT:
            with _key_lock(store, fix.target, owner):
                return add_key_policy_statements(gw.client("kms"), fix.target, fix.document)
        if fix.kind == FixKind.GRANT:
            with _key_lock(store, fix.document["KeyId"], owner):
                return create_grant(gw.client("kms"), fix.document)
        if fix.kind == FixKind.IDENTITY_POLICY:
            return put_identity_policy(gw.client("iam"), fix.target, fix.document)
        if fix.kind == FixKind.CREATE_SERVICE_LINKED_ROLE:
            return create_service_linked_role(gw.client("iam"), fix.document["AWSServiceName"])
    except LockTimeout as exc:
        raise WriteFailed(str(exc)) from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise WriteFailed(f"{exc.operation_name}: {err.get('Code')}: {err.get('Message')}") from exc
    except BotoCoreError as exc:
        raise WriteFailed(str(exc)) from exc
    raise safety.Refusal(f"keyfix does not write fixes of kind {fix.kind}")


def _canon(statement: Any) -> str:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"))


def _statements(doc: dict) -> list[Any]:
    s = doc.get("Statement", [])
    return [s] if isinstance(s, dict) else list(s)


def add_key_policy_statements(kms, key_arn: str, statements: list[dict]) -> dict[str, Any] | None:
    """Read, add, write, read back. Every statement that was there must still be there.
    KMS has no conditional write; callers serialise writers per key.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html"""
    before_text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    try:
        before = json.loads(before_text)
    except ValueError:
        before = None
    if not isinstance(before, dict) or not isinstance(before.get("Statement", []), (list, dict)):
        raise safety.Refusal(f"the key policy of {key_arn} is not a policy document keyfix can read; it will not "
                             "write over it")
    present = {_canon(s) for s in _statements(before)}
    by_sid = {s.get("Sid"): s for s in _statements(before) if isinstance(s, dict)}
    to_add = []
    for statement in statements:
        if _canon(statement) in present:
            continue
        if statement["Sid"] in by_sid:
            raise safety.Refusal(f"the key policy already has a statement {statement['Sid']!r} with other "
                                 "content; keyfix will not overwrite it")
        to_add.append(statement)
    if not to_add:
        return None
    after = with_statements(before, to_add)
    after_text = json.dumps(after, indent=2)
    safety.check_size(after_text)
    safety.check_no_lockout(before, after, key_arn)
    # Never BypassPolicyLockoutSafetyCheck: KMS's own lockout check stays on.
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after_text)
    readback = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    kept = {_canon(s) for s in _statements(readback)}
    lost = [s for s in _statements(before) + to_add if _canon(s) not in kept]
    if lost:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=before_text)
        raise WriteFailed(f"read-back after PutKeyPolicy lacked {len(lost)} statement(s); previous policy restored")
    return {"target": key_arn, "before": before_text, "after": after_text,
            "added_sids": [s["Sid"] for s in to_add]}


def create_grant(kms, params: dict[str, Any]) -> dict[str, Any] | None:
    """https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html"""
    from botocore.exceptions import ClientError

    wanted = set(params["Operations"])
    paginator = kms.get_paginator("list_grants")
    try:
        for page in paginator.paginate(KeyId=params["KeyId"], GranteePrincipal=params["GranteePrincipal"]):
            for grant in page.get("Grants", []):
                if grant.get("GranteePrincipal") == params["GranteePrincipal"] and \
                        wanted <= set(grant.get("Operations", [])) and not grant.get("Constraints"):
                    params["GrantId"] = grant.get("GrantId")
                    return None
    except ClientError as exc:
        # The documented cross-account key policy gives the using account CreateGrant but
        # not ListGrants. CreateGrant with a Name is itself idempotent: a retry with the same
        # parameters returns the existing grant's id instead of making a second one.
        if "AccessDenied" not in exc.response.get("Error", {}).get("Code", ""):
            raise
    response = kms.create_grant(**{k: v for k, v in params.items() if k != "GrantId"})
    params["GrantId"] = response["GrantId"]
    return {"target": params["KeyId"], "grant_id": response["GrantId"], "grant": dict(params)}


def put_identity_policy(iam, holder: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """Inline policy on the role or user. https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html"""
    kind, name = _iam_kind(holder)
    policy_name, policy = document["PolicyName"], document["PolicyDocument"]
    get = iam.get_role_policy if kind == "role" else iam.get_user_policy
    put = iam.put_role_policy if kind == "role" else iam.put_user_policy
    before = None
    try:
        current = get(**{f"{kind.capitalize()}Name": name, "PolicyName": policy_name})["PolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
        if _canon(current) == _canon(policy):
            return None
        before = current
    except iam.exceptions.NoSuchEntityException:
        pass
    put(**{f"{kind.capitalize()}Name": name, "PolicyName": policy_name, "PolicyDocument": json.dumps(policy)})
    return {"target": holder, "policy_name": policy_name, "before": before, "after": policy}


def _iam_kind(arn: str) -> tuple[str, str]:
    try:
        return identity_holder(arn)
    except ValueError as exc:
        raise safety.Refusal(str(exc)) from None


def create_service_linked_role(iam, service: str) -> dict[str, Any] | None:
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html"""
    try:
        role = iam.create_service_linked_role(AWSServiceName=service)["Role"]
    except iam.exceptions.InvalidInputException as exc:
        if "has been taken" in str(exc):  # AWS's wording when the role already exists
            return None
        raise
    return {"target": role["Arn"], "service": service}
