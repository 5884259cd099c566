"""Carry out proposed fixes in `apply` mode, one AWS write each, checked before and after.

In `propose` mode nothing here runs. In `apply` mode every fix passes the safety rules
first; a refused fix keeps its document and CLI so a person can still act on it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from keyfix.arns import account_of, default_slr_name, partition_of
from keyfix.remedies import safety, writers
from keyfix.remedies.writers import WriteFailed, WriteUnverified  # noqa: F401  (the errors callers see)
from keyfix.report import Cause, Finding, Fix, FixKind, FixStatus, Mode
from keyfix.resolve.facts import PrincipalFacts, Situation
from keyfix.resolve.kms import read_tags
from keyfix.store import LockTimeout

log = logging.getLogger("keyfix")

# Causes whose fixes are decisions for a person, whatever the mode.
PROPOSE_ONLY_CAUSES = {
    Cause.EXPLICIT_DENY, Cause.STALE_PRINCIPAL, Cause.KEY_DISABLED, Cause.KEY_PENDING_DELETION,
    Cause.KEY_PENDING_IMPORT, Cause.AWS_MANAGED_KEY_CROSS_ACCOUNT, Cause.KEY_NOT_FOUND,
}


# A write is lock, read, record intent, put and read back, each with bounded retries:
# with less Lambda time left than this, keyfix stops before writing rather than during.
WRITE_BUDGET_SECONDS = 15.0


def carry_out(findings: list[Finding], situation: Situation, settings, gw, store=None,
              applied_by: str = "keyfix", time_left: Callable[[], float] | None = None,
              on_applied: Callable[[Finding], None] | None = None) -> list[dict[str, Any]]:
    """Apply what may be applied; returns one audit dict per write made.

    With `store` (keyfix.store), writes to a key run under that key's lock and every write
    is journalled: intent before the AWS call, outcome after (`writers.Journal`); the audit
    dict then carries the record's `change_id` (for keyfix rollback). `time_left` returns the
    seconds the invocation has left (the Lambda context's). `on_applied(finding)` runs right
    after a write that changed something, still under the key's lock, so whoever waited for
    the lock sees its effect (the pipeline opens the notification window there)."""
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
    partition = gw.home_partition if hasattr(gw, "home_partition") else partition_of(situation.incident.region)
    changes: list[dict[str, Any]] = []
    for finding in findings:
        if finding.cause in PROPOSE_ONLY_CAUSES:
            continue
        key = situation.keys.get(finding.key_arn or "")
        principal = _facts_of(situation, finding.principal)
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
            journal = writers.Journal(store, situation.incident.event_id, finding, applied_by)
            try:
                try:
                    checked = safety.check_fix(fix, principal=principal, key=key, account=account,
                                               partition=partition, settings=settings)
                except safety.TagsUnread:
                    # The principal rule passed and the opt-in tag decides: read the key's tags now,
                    # and only now (propose mode never needs them; issue #14, P2), then check again.
                    key = situation.keys[finding.key_arn or ""] = read_tags(gw, key)
                    checked = safety.check_fix(fix, principal=principal, key=key, account=account,
                                               partition=partition, settings=settings)
                change = _write(fix, checked, gw, store, journal, owner=f"{applied_by}:{situation.incident.event_id}",
                                on_applied=(lambda f=finding: on_applied(f)) if on_applied else None)
            except safety.Refusal as refusal:
                fix.status, fix.reason = FixStatus.REFUSED, str(refusal)
                blocked = "an earlier step was refused"
                continue
            except writers.WriteFailed as failure:
                fix.status, fix.reason = FixStatus.FAILED, str(failure)
                journal.outcome("failed", {"reason": str(failure)})
                blocked = "an earlier step failed"
                continue
            except writers.WriteUnverified as unknown:
                fix.status, fix.reason = FixStatus.UNVERIFIED, str(unknown)
                journal.outcome("unverified", {"reason": str(unknown)})
                changes.append(_audit(finding, fix, journal, journal.change or {}, "unverified"))
                blocked = "an earlier step could not be confirmed"
                continue
            if fix.kind == FixKind.CREATE_SERVICE_LINKED_ROLE:
                principal = _created_role(gw, change, principal)
                if not change.get("created"):
                    journal.outcome("already-present", {})
                    fix.status = FixStatus.ALREADY_PRESENT
                    continue
            if fix.kind == FixKind.GRANT:
                _grant_made(finding)
            if change is None:
                fix.status = FixStatus.ALREADY_PRESENT
                continue
            fix.status = FixStatus.APPLIED
            if change.get("note"):
                fix.reason = change["note"]
            journal.outcome("applied", {k: v for k, v in change.items() if k in ("after", "grant_id", "note")})
            changes.append(_audit(finding, fix, journal, change, "applied"))
    return changes


def _audit(finding: Finding, fix: Fix, journal: writers.Journal, change: dict[str, Any], outcome: str) -> dict:
    record = {"finding_cause": str(finding.cause), "kind": str(fix.kind), "outcome": outcome,
              **{k: v for k, v in change.items() if k != "role"}}
    if journal.change_id is not None:
        record["change_id"] = journal.change_id
    return record


def _facts_of(situation: Situation, principal: str | None) -> PrincipalFacts | None:
    """The resolver's facts for a finding's principal (looked up by the ARN it was read as)."""
    if principal is None:
        return None
    found = situation.principals.get(principal)
    if found is None:
        found = next((f for f in situation.principals.values() if f.arn == principal), None)
    return found


def _created_role(gw, change: dict[str, Any], before: PrincipalFacts | None) -> PrincipalFacts | None:
    """The role CreateServiceLinkedRole made, as IAM described it: the principal the next
    fixes of the finding may name. An existing role is read back by its default name."""
    role = change.get("role")
    if role is None:
        name = default_slr_name(change.get("service", ""))
        try:
            role = gw.client("iam").get_role(RoleName=name)["Role"] if name else None
        except Exception:  # unreadable: the next fixes are refused, never guessed
            log.exception("could not read back the service-linked role %s", name)
            return before
    if role is None:
        return before
    return PrincipalFacts(arn=role["Arn"], kind="service-linked-role", account=account_of(role["Arn"]),
                          exists=True, unique_id=role.get("RoleId"), identity_policies=(), iam_name=role["RoleName"])


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


def _announced(change: dict[str, Any] | None, on_applied: Callable[[], None] | None) -> dict[str, Any] | None:
    """`on_applied()` after a write that changed something; its failure never undoes the write."""
    if change is not None and on_applied is not None:
        try:
            on_applied()
        except Exception:  # noqa: BLE001 - bookkeeping after the write; the write stands
            log.exception("after the write: could not record it for notifications")
    return change


def _write(fix: Fix, checked: safety.CheckedPrincipal | None, gw, store, journal: writers.Journal,
           owner: str = "keyfix", on_applied: Callable[[], None] | None = None) -> dict[str, Any] | None:
    """One write, naming `checked` and nothing the fix could re-derive."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if fix.kind == FixKind.CREATE_SERVICE_LINKED_ROLE:
            return writers.create_service_linked_role(gw.client("iam"), fix.document["AWSServiceName"], journal)
        if checked is None:
            raise safety.Refusal("no checked principal for a change that names one")
        if fix.kind == FixKind.KEY_POLICY_STATEMENT:
            with _key_lock(store, fix.target, owner):
                return _announced(writers.add_key_policy_statements(gw.client("kms"), checked, fix.target,
                                                                    fix.document, journal), on_applied)
        if fix.kind == FixKind.GRANT:
            with _key_lock(store, fix.document["KeyId"], owner):
                return _announced(writers.create_grant(gw.client("kms"), checked, fix.document, journal), on_applied)
        if fix.kind == FixKind.IDENTITY_POLICY:
            return _announced(writers.put_identity_policy(gw.client("iam"), checked, fix.document, journal),
                              on_applied)
    except LockTimeout as exc:
        raise writers.WriteFailed(str(exc)) from exc
    except ClientError as exc:  # a read before the write failed: nothing was written
        err = exc.response.get("Error", {})
        raise writers.WriteFailed(f"{exc.operation_name}: {err.get('Code')}: {err.get('Message')}") from exc
    except BotoCoreError as exc:
        raise writers.WriteFailed(str(exc)) from exc
    raise safety.Refusal(f"keyfix does not write fixes of kind {fix.kind}")
