"""The AWS writes keyfix makes, each for one `CheckedPrincipal`, recorded before and after.

Every writer:
- names only the checked principal it is given (never a name or ARN re-derived from the fix);
- records its intent in the audit journal immediately before the AWS call, so a write whose
  answer is lost is still known to `keyfix history` / `rollback`;
- decides the outcome from what AWS says afterwards: `WriteFailed` when the change is
  certainly not in force, `WriteUnverified` when keyfix cannot tell (the answer was lost, or
  the read-back was denied), a result dict when it is in force;
- never writes over anyone else's work: no key-policy restore after an interleaved edit, no
  replacing an inline policy keyfix did not write.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

# Imported only once an event needs a write (pipeline imports remedies after parsing), when
# botocore is loaded for the gateway's clients anyway.
from botocore.exceptions import BotoCoreError, ClientError

from keyfix.remedies import safety
from keyfix.remedies.plan import with_statements
from keyfix.remedies.safety import CheckedPrincipal

log = logging.getLogger("keyfix")

# Only AWS's answers are judged here; any other exception is a bug and propagates.
_AWS_ERRORS = (ClientError, BotoCoreError)


class WriteFailed(Exception):
    """The change is certainly not in force; the message is the report's reason."""


class WriteUnverified(Exception):
    """keyfix sent the write but cannot tell whether AWS applied it."""


class Journal:
    """The audit record of one write: `intent` before the AWS call, `outcome` after it.

    Without the intent on record keyfix does not write: a change nobody can find again is
    one nobody can roll back."""

    def __init__(self, store: Any, event_id: str, finding: Any, applied_by: str) -> None:
        self.store, self.event_id, self.finding, self.applied_by = store, event_id, finding, applied_by
        self.change_id: str | None = None
        self.change: dict[str, Any] | None = None

    def intent(self, change: dict[str, Any]) -> None:
        self.change = change
        if self.store is None:
            return
        try:
            self.change_id = self.store.record_intent(change, self.event_id, self.finding, self.applied_by)
        except Exception as exc:
            log.exception("could not record the intent of a %s write", change.get("kind"))
            raise WriteFailed(f"not attempted: the audit table did not take the intent record ({exc}); keyfix "
                              "makes no write it cannot record") from exc

    def outcome(self, status: str, details: dict[str, Any] | None = None) -> None:
        if self.store is None or self.change_id is None:
            return
        try:
            self.store.record_outcome(self.change_id, status, details or {})
        except Exception:  # the intent record stands, and says what was attempted
            log.exception("could not record the outcome %s of change %s", status, self.change_id)


# Answers that may hide an applied write: a 5xx such as KMSInternalException, a dropped
# connection, a read timeout. Any other error answer (AccessDenied, MalformedPolicyDocument,
# a 4xx) means AWS refused the request before changing anything.
# https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html
_SERVER_SIDE = ("InternalFailure", "InternalError", "ServiceUnavailable", "KMSInternalException",
                "ServiceFailure", "DependencyTimeoutException")


def _answer_lost(exc: Exception) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return status >= 500 or code in _SERVER_SIDE
    return isinstance(exc, BotoCoreError)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{exc.operation_name}: {err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def canonical(statement: Any) -> str:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"))


def statements_of(doc: dict) -> list[Any]:
    s = doc.get("Statement", [])
    return [s] if isinstance(s, dict) else list(s)


# -- key policy -----------------------------------------------------------------------------

def add_key_policy_statements(kms, checked: CheckedPrincipal, key_arn: str, statements: list[dict],
                              journal: Journal) -> dict[str, Any] | None:
    """Read, add, record intent, write, read back. KMS has no conditional write; callers
    serialise keyfix's writers per key (keyfix.store lock). A person's edit that lands
    between keyfix's write and its read-back is left as it is, never reverted.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html"""
    for statement in statements:  # belt and braces: check_fix already proved this
        if safety.principals_named_by_statement(statement) != {checked.arn}:
            raise safety.Refusal(f"statement {statement.get('Sid')} does not name exactly {checked.arn}")
    before_text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    try:
        before = json.loads(before_text)
    except ValueError:
        before = None
    if not isinstance(before, dict) or not isinstance(before.get("Statement", []), (list, dict)):
        raise safety.Refusal(f"the key policy of {key_arn} is not a policy document keyfix can read; it will not "
                             "write over it")
    present = {canonical(s) for s in statements_of(before)}
    by_sid = {s.get("Sid"): s for s in statements_of(before) if isinstance(s, dict)}
    to_add = []
    for statement in statements:
        if canonical(statement) in present:
            continue
        if statement["Sid"] in by_sid:
            raise safety.Refusal(f"the key policy already has a statement {statement['Sid']!r} with other "
                                 "content; keyfix will not overwrite it")
        to_add.append(statement)
    if not to_add:
        return None
    after = with_statements(before, to_add)
    kept = {canonical(s) for s in statements_of(after)}
    if not present <= kept:  # adding can never drop a statement; if it did, it is a bug
        raise safety.Refusal("the new key policy would drop an existing statement; keyfix will not write it")
    after_text = json.dumps(after, indent=2)
    safety.check_size(after_text)
    safety.check_no_lockout(before, after, key_arn)
    journal.intent({"kind": "key-policy-statement", "target": key_arn, "principal": checked.arn,
                    "added_statements": to_add, "added_sids": [s["Sid"] for s in to_add], "before": before_text})
    # Never BypassPolicyLockoutSafetyCheck: KMS's own lockout check stays on.
    try:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after_text)
    except _AWS_ERRORS as exc:
        if not _answer_lost(exc):
            raise WriteFailed(_error_text(exc)) from exc
        lost = f"the answer to PutKeyPolicy was lost ({_error_text(exc)})"
    else:
        lost = None
    return _settle_key_policy(kms, key_arn, to_add, after, before_text, after_text, lost)


def _settle_key_policy(kms, key_arn: str, to_add: list[dict], after: dict, before_text: str, after_text: str,
                       lost: str | None) -> dict[str, Any]:
    try:
        readback = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    except (*_AWS_ERRORS, ValueError) as exc:
        raise WriteUnverified(f"{lost or 'PutKeyPolicy succeeded'}, and the read-back failed "
                              f"({_error_text(exc)}); whether keyfix's statements are in force is unknown "
                              "until a later check") from exc
    in_force = {canonical(s) for s in statements_of(readback)} if isinstance(readback, dict) else set()
    missing = [s["Sid"] for s in to_add if canonical(s) not in in_force]
    result = {"target": key_arn, "before": before_text, "after": after_text,
              "added_sids": [s["Sid"] for s in to_add], "added_statements": to_add}
    if missing and lost:
        raise WriteFailed(f"{lost}; the policy in force lacks {missing}, so the write did not take effect")
    if missing:
        # Someone changed the policy between keyfix's write and its read-back. Their edit
        # wins: keyfix restores nothing over it, and says so.
        raise WriteFailed(f"conflict: the key policy changed after keyfix's write and lacks {missing}; keyfix "
                          "left the policy in force as it is - someone else edited it")
    if {canonical(s) for s in statements_of(after)} != in_force:
        result["note"] = "the policy in force differs from what keyfix wrote (another edit); keyfix left it"
    return result


# -- grant -----------------------------------------------------------------------------------

def create_grant(kms, checked: CheckedPrincipal, params: dict[str, Any], journal: Journal) -> dict[str, Any] | None:
    """A grant to the checked service-linked role, made from this account.
    https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html"""
    # The name is this change's own: a grant someone else makes later under keyfix's usual
    # name can never be taken for keyfix's (settle, rollback). Grant names allow
    # [a-zA-Z0-9:/_-]: https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
    request = {"KeyId": params["KeyId"], "GranteePrincipal": checked.arn,
               "Operations": list(params["Operations"]), "Name": f"{params['Name']}-{uuid.uuid4().hex[:12]}"}
    try:
        existing = _matching_grant(kms, request)
    except ClientError as exc:
        # The documented cross-account key policy gives the using account CreateGrant but
        # not ListGrants. CreateGrant with a Name is idempotent for the same parameters and name,
        # so botocore's retries of this request make one grant; a later change cannot see this
        # grant and makes its own, with the same grantee and operations (nothing wider) and its
        # own name, which is what settle and rollback go by.
        if "AccessDenied" not in exc.response.get("Error", {}).get("Code", ""):
            raise
        existing = None
    if existing is not None:
        params["GrantId"] = existing
        return None
    params["Name"] = request["Name"]
    journal.intent({"kind": "grant", "target": request["KeyId"], "principal": checked.arn, "grant": request})
    try:
        grant_id = kms.create_grant(**request)["GrantId"]
    except _AWS_ERRORS as exc:
        if not _answer_lost(exc):
            raise WriteFailed(_error_text(exc)) from exc
        try:
            grant_id = _matching_grant(kms, request, by_name=True)
        except _AWS_ERRORS as read_exc:
            raise WriteUnverified(f"the answer to CreateGrant was lost ({_error_text(exc)}) and ListGrants "
                                  f"failed ({_error_text(read_exc)}); a later check settles it") from read_exc
        if grant_id is None:
            raise WriteFailed(f"the answer to CreateGrant was lost ({_error_text(exc)}); no such grant exists") \
                from exc
    params["GrantId"] = grant_id
    return {"target": request["KeyId"], "grant_id": grant_id, "grant": dict(request)}


def _matching_grant(kms, request: dict[str, Any], by_name: bool = False) -> str | None:
    """A grant that already gives the grantee the operations (any name: nothing to do), or,
    `by_name`, the one grant this change made (its unique name and exact operations)."""
    wanted = set(request["Operations"])
    paginator = kms.get_paginator("list_grants")
    found = []
    for page in paginator.paginate(KeyId=request["KeyId"], GranteePrincipal=request["GranteePrincipal"]):
        for grant in page.get("Grants", []):
            if grant.get("GranteePrincipal") != request["GranteePrincipal"] or grant.get("Constraints"):
                continue
            if by_name and grant.get("Name") == request["Name"] and set(grant.get("Operations", [])) == wanted:
                found.append(grant.get("GrantId"))
            elif not by_name and wanted <= set(grant.get("Operations", [])):
                return grant.get("GrantId")
    return found[0] if len(found) == 1 else None


# -- identity policy ------------------------------------------------------------------------

def put_identity_policy(iam, checked: CheckedPrincipal, document: dict[str, Any],
                        journal: Journal) -> dict[str, Any] | None:
    """A new inline policy on the checked user or role, by IAM's own name for it. An inline
    policy of the same name that keyfix did not write is never replaced.
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html"""
    if checked.kind not in ("user", "role"):
        # A service-linked role's permissions policy is the service's own.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
        raise safety.Refusal(f"{checked.arn} is a {checked.kind}; keyfix puts inline policies on users and roles only")
    entity = "Role" if checked.kind == "role" else "User"
    get = iam.get_role_policy if entity == "Role" else iam.get_user_policy
    put = iam.put_role_policy if entity == "Role" else iam.put_user_policy
    policy_name, policy = document["PolicyName"], document["PolicyDocument"]
    ref = {f"{entity}Name": checked.name, "PolicyName": policy_name}
    current = _inline_policy(iam, get, ref)
    if current is not None:
        if canonical(current) == canonical(policy):
            return None
        raise safety.Refusal(f"{checked.arn} already has an inline policy {policy_name!r} with other content; "
                             "keyfix never replaces a policy it did not write")
    journal.intent({"kind": "identity-policy", "target": checked.arn, "principal": checked.arn,
                    "policy_name": policy_name, "after": policy})
    lost = None
    try:
        put(**ref, PolicyDocument=json.dumps(policy))
    except _AWS_ERRORS as exc:
        if not _answer_lost(exc):
            raise WriteFailed(_error_text(exc)) from exc
        lost = f"the answer to Put{entity}Policy was lost ({_error_text(exc)})"
    try:
        current = _inline_policy(iam, get, ref)
    except _AWS_ERRORS as read_exc:
        raise WriteUnverified(f"{lost or f'Put{entity}Policy succeeded'}, and the read-back failed "
                              f"({_error_text(read_exc)})") from read_exc
    if current is None or canonical(current) != canonical(policy):
        why = f"{lost}; the policy is not in force" if lost else \
            "conflict: the inline policy changed after keyfix's write; keyfix left it as it is"
        raise WriteFailed(why)
    return {"target": checked.arn, "policy_name": policy_name, "before": None, "after": policy}


def _inline_policy(iam, get, ref: dict[str, str]) -> dict | None:
    try:
        current = get(**ref)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return json.loads(current) if isinstance(current, str) else current


# -- service-linked role ----------------------------------------------------------------------

def create_service_linked_role(iam, service: str, journal: Journal) -> dict[str, Any]:
    """Returns the role as IAM describes it (created now, or already there: then `created`
    is False). https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html"""
    journal.intent({"kind": "create-service-linked-role", "target": service, "service": service})
    try:
        role = iam.create_service_linked_role(AWSServiceName=service)["Role"]
    except iam.exceptions.InvalidInputException as exc:
        if "has been taken" not in str(exc):  # AWS's wording when the role already exists
            raise WriteFailed(_error_text(exc)) from exc
        return {"created": False, "service": service}
    except _AWS_ERRORS as exc:
        if not _answer_lost(exc):
            raise WriteFailed(_error_text(exc)) from exc
        raise WriteUnverified(f"the answer to CreateServiceLinkedRole was lost ({_error_text(exc)})") from exc
    return {"created": True, "target": role["Arn"], "service": service, "role": role}
