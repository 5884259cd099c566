"""Build the minimal fix for a diagnosed denial, and prove it with the model first.

A fix is offered only after the authorisation model shows that, with it in place, every
operation that was denied becomes Allowed. Fixes carry only the operations that were
denied, name one specific principal, and never use `kms:*` or `Principal: "*"`.
"""

from __future__ import annotations

import copy
from typing import Any

from keyfix.arns import account_of, iam_arn_for_session, parse_arn, root_arn, slr_service
from keyfix.policy import Decision, Grant, Policy, PolicySet, Request, evaluate
from keyfix.policy import stale_principals as _stale_principals
from keyfix.remedies import documents as docs
from keyfix.report import Fix, FixKind, FixStatus
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts

GRANT_MANAGEMENT = frozenset(docs.GRANT_ACTIONS)


class FixNotSufficient(RuntimeError):
    """A fix keyfix built would not make the request Allowed: a bug, never written."""


class Model:
    """The policies in force for one principal x key, and what-if evaluation."""

    def __init__(self, need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None) -> None:
        self.need, self.key, self.principal = need, key, principal
        self.key_policy_doc = key.policy
        self.key_policy = Policy.parse(key.policy, "resource_policy") if key.policy is not None else None
        identity = principal.identity_policies if principal and principal.identity_policies else ()
        self.identity_docs = list(identity)
        self.identity = tuple(Policy.parse(d, f"identity_policies[{i}]") for i, d in enumerate(identity))
        boundary = principal.permission_boundary if principal else None
        self.boundaries = (Policy.parse(boundary, "permission_boundaries[0]"),) if boundary else ()
        self.grants = tuple(Grant.from_aws(g) for g in key.grants or ())
        # Project readings (policy.unknowns.READINGS) any decision so far rested on: good for
        # an explanation, never a reason to write.
        self.readings: set[str] = set(need.readings)  # and those the resolver made (resolve.context)

    def policies(self, key_statements: list[dict] = (), identity_doc: dict | None = None,
                 grant: dict | None = None, key_policy_known: bool = True) -> PolicySet:
        key_policy = self.key_policy
        if key_statements:
            base = self.key_policy_doc if (self.key_policy_doc is not None and key_policy_known) else None
            key_policy = Policy.parse(with_statements(base, key_statements), "resource_policy")
        identity = self.identity
        if identity_doc is not None:
            identity = identity + (Policy.parse(identity_doc, f"identity_policies[{len(identity)}]"),)
        grants = self.grants
        if grant is not None:
            grants = grants + (Grant.from_aws({"GrantId": "keyfix-proposed", **grant}),)
        return PolicySet(resource_policy=key_policy, identity_policies=identity,
                         permission_boundaries=self.boundaries, grants=grants)

    def decide_all(self, policies: PolicySet | None = None, ops: list[str] | None = None) -> dict[str, Decision]:
        policies = policies or self.policies()
        decisions = {op: evaluate(self.request(op), policies) for op in (ops or self.need.operations)}
        for decision in decisions.values():
            self.readings.update(decision.project_readings)
        return decisions

    def request(self, op: str) -> Request:
        context = dict(self.need.context)
        if op not in GRANT_MANAGEMENT:
            # AWS sends these keys only with grant operations; a statement conditioned on
            # them must not seem to allow Decrypt. https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
            for grant_only in ("kms:GrantIsForAWSResource", "kms:GranteePrincipal", "kms:GrantOperations",
                               "kms:RetiringPrincipal"):
                context.pop(grant_only, None)
        return Request(principal=self.need.principal, action=op, resource=self.key.arn,
                       resource_account=self.key.account, context=context,
                       unknown_keys=self.need.unknown_keys)  # unknown, not false (resolve.context)

    def verify(self, ops: list[str], **change: Any) -> dict[str, Decision]:
        after = self.decide_all(self.policies(**change), ops)
        still = [op for op, d in after.items() if d.decision != "Allowed"]
        if still:
            raise FixNotSufficient(f"fix {change} leaves {still} denied for {self.need.principal}")
        return after

    def stale_principals(self) -> list[str]:
        return _stale_principals(self.key_policy) if self.key_policy is not None else []


def with_statements(policy: dict | None, statements: list[dict]) -> dict:
    doc = copy.deepcopy(policy) if policy is not None else {"Version": "2012-10-17", "Statement": []}
    existing = doc.get("Statement", [])
    doc["Statement"] = ([existing] if isinstance(existing, dict) else list(existing)) + copy.deepcopy(statements)
    return doc


def _split(ops: list[str]) -> tuple[list[str], list[str]]:
    use = [op for op in ops if op not in GRANT_MANAGEMENT]
    grant = [op for op in ops if op in GRANT_MANAGEMENT]
    return use, grant


def _key_user_grant_actions(principal_arn: str, grant: list[str]) -> list[str]:
    # Only the grant actions that were denied (the module's rule). AWS's default key policy
    # gives key users CreateGrant, ListGrants and RevokeGrant together, but a launch or a
    # volume operation needs only CreateGrant.
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-service-integration
    return [op for op in docs.GRANT_ACTIONS if op in grant]


def key_policy_fix(need: AccessNeed, key: KeyFacts, ops: list[str], model: Model) -> list[Fix]:
    use, grant = _split(ops)
    principal = iam_arn_for_session(need.principal)
    statements = docs.key_policy_statements(principal, use, _key_user_grant_actions(principal, grant))
    model.verify(ops, key_statements=statements)
    return [Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, key.account, key.arn, statements,
                docs.cli_add_key_policy_statements(key.arn, statements))]


def identity_fix(need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None, ops: list[str],
                 model: Model) -> list[Fix]:
    use, grant = _split(ops)
    holder = iam_arn_for_session(principal.arn if principal else need.principal)
    document = docs.identity_policy(key.arn, use, ["kms:CreateGrant"] if grant else [])
    document["Statement"] += [s for s in _extra_grant_management(grant, key.arn)]
    model.verify(ops, identity_doc=document, key_policy_known=True)
    name = docs.identity_policy_name(key.arn)
    return [Fix(FixKind.IDENTITY_POLICY, FixStatus.PROPOSED, account_of(holder) or "", holder,
                {"PolicyName": name, "PolicyDocument": document},
                docs.cli_put_identity_policy(holder, name, document))]


def _extra_grant_management(grant: list[str], key_arn: str) -> list[dict]:
    others = [op for op in grant if op != "kms:CreateGrant"]
    if not others:
        return []
    return [{"Sid": "KeyfixManageGrants", "Effect": "Allow", "Action": others, "Resource": key_arn,
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]


def cross_account_slr_fixes(need: AccessNeed, key: KeyFacts, ops: list[str], model: Model) -> list[Fix]:
    """Seed A2: a grant made from this account, and what the key owner must allow first.
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access
    """
    here = account_of(need.principal) or ""
    operations = list(docs.SLR_GRANT_OPERATIONS)
    for op in docs.OPTIONAL_GRANT_OPERATIONS:  # only when the failed request needs them
        if f"kms:{op}" in ops:
            operations.append(op)
    params = docs.grant_parameters(key.arn, need.principal, operations)
    model.verify(ops, grant=params)
    owner_statements = owner_statements_for_account(here, need.principal, _split(ops)[0])
    creator_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "KeyfixCreateGrantForServiceLinkedRole", "Effect": "Allow", "Action": "kms:CreateGrant",
        "Resource": key.arn,
        "Condition": {"StringEquals": {"kms:GranteePrincipal": need.principal}},
    }]}
    return [
        Fix(FixKind.GRANT, FixStatus.PROPOSED, here, key.arn, params, docs.cli_create_grant(params)),
        Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, key.account, key.arn, owner_statements,
            docs.cli_add_key_policy_statements(key.arn, owner_statements),
            reason=f"key owner {key.account} must allow account {here} before the grant can be created"),
        Fix(FixKind.IDENTITY_POLICY, FixStatus.PROPOSED, here, "the IAM role or user that runs create-grant",
            {"PolicyName": docs.identity_policy_name(key.arn), "PolicyDocument": creator_policy},
            docs.cli_put_identity_policy(f"arn:aws:iam::{here}:role/YOUR-ADMIN-ROLE",
                                         docs.identity_policy_name(key.arn), creator_policy)),
    ]


def owner_statements_for_account(account: str, slr: str, use_actions: list[str]) -> list[dict]:
    """What the key owner adds: `account` may use the key for the denied operations, and may
    grant it to its service-linked role only (the cross-account example of
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access,
    narrowed to what was denied and to the one grantee)."""
    use = docs.use_statement(root_arn(account), use_actions) if use_actions else None
    grant = {
        "Sid": f"{docs.SID_PREFIX}grant-to-slr-{account}",
        "Effect": "Allow",
        "Principal": {"AWS": root_arn(account)},
        "Action": ["kms:CreateGrant"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:GranteePrincipal": slr}},
    }
    return [use, grant] if use_actions else [grant]


def cross_account_principal_fixes(need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None,
                                  ops: list[str], model: Model) -> list[Fix]:
    """A user or role using another account's key needs both sides.
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html"""
    return _both_sides(need, key, ops, model, key_policy_known=False)


def outsider_fixes(need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None, ops: list[str],
                   model: Model, key_policy: bool = True) -> list[Fix]:
    """Another account's principal on a key of this account: the key-policy statement here
    (when the key policy is what denies) and the identity policy there, both proposals."""
    return _both_sides(need, key, ops, model, key_policy_known=True, key_policy=key_policy)


def outsider_slr_fixes(need: AccessNeed, key: KeyFacts, ops: list[str], model: Model) -> list[Fix]:
    """Another account's service-linked role on a key of this account: its permissions are
    fixed by AWS, so only a grant made from its own account lets it in, and only if this key's
    policy lets that account create the grant (seed A2 seen from the key owner's side).
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access
    Both halves are proposals: the statements name another account, which keyfix never writes."""
    outsider = account_of(need.principal) or ""
    operations = list(docs.SLR_GRANT_OPERATIONS) + [op for op in docs.OPTIONAL_GRANT_OPERATIONS if f"kms:{op}" in ops]
    params = docs.grant_parameters(key.arn, need.principal, operations)
    statements = owner_statements_for_account(outsider, need.principal, _split(ops)[0])
    model.verify(ops, grant=params)
    return [
        Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, key.account, key.arn, statements,
            docs.cli_add_key_policy_statements(key.arn, statements),
            reason=f"only if account {outsider} should use this key: it lets that account create the grant below"),
        Fix(FixKind.GRANT, FixStatus.PROPOSED, outsider, key.arn, params, docs.cli_create_grant(params),
            reason=f"to be run in account {outsider}, after the key-policy statement"),
    ]


def _both_sides(need: AccessNeed, key: KeyFacts, ops: list[str], model: Model, *, key_policy_known: bool,
                key_policy: bool = True) -> list[Fix]:
    use, grant = _split(ops)
    holder = iam_arn_for_session(need.principal)
    statements = docs.key_policy_statements(holder, use, _key_user_grant_actions(holder, grant)) if key_policy else []
    # An account root or a service cannot hold an identity policy: the key policy alone decides.
    document = docs.identity_policy(key.arn, use, ["kms:CreateGrant"] if grant else []) \
        if _holds_identity_policies(holder) else None
    model.verify(ops, key_statements=statements, identity_doc=document, key_policy_known=key_policy_known)
    fixes = []
    if statements:
        fixes.append(Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, key.account, key.arn, statements,
                         docs.cli_add_key_policy_statements(key.arn, statements)))
    if document is not None:
        name = docs.identity_policy_name(key.arn)
        fixes.append(Fix(FixKind.IDENTITY_POLICY, FixStatus.PROPOSED, account_of(holder) or "", holder,
                         {"PolicyName": name, "PolicyDocument": document},
                         docs.cli_put_identity_policy(holder, name, document)))
    return fixes


def _holds_identity_policies(arn: str) -> bool:
    parsed = parse_arn(arn)
    return bool(parsed and parsed.service == "iam" and parsed.resource_type in ("user", "role")
                and not slr_service(arn))


def for_missing_slr(need: AccessNeed, key: KeyFacts, service: str) -> list[Fix]:
    here = account_of(need.principal) or ""
    create = Fix(FixKind.CREATE_SERVICE_LINKED_ROLE, FixStatus.PROPOSED, here, need.principal,
                 {"AWSServiceName": service}, docs.cli_create_service_linked_role(service))
    model = Model(need, key, None)
    ops = list(need.operations)
    then = key_policy_fix(need, key, ops, model) if key.account == here else \
        cross_account_slr_fixes(need, key, ops, model)
    return [create, *then]


def for_stale_principal(need: AccessNeed, key: KeyFacts, ops: list[str]) -> list[Fix]:
    model = Model(need, key, None)
    fixes = key_policy_fix(need, key, ops, model)
    for fix in fixes:
        fix.reason = ("also remove the unique ids " + ", ".join(model.stale_principals()) +
                      " from the key policy: they name principals that no longer exist")
    return fixes


def key_state_fix(key: KeyFacts) -> Fix:
    return Fix(FixKind.KEY_STATE, FixStatus.PROPOSED, key.account, key.arn,
               {"KeyState": key.state, "Desired": "Enabled"}, docs.cli_key_state(key.arn, key.state or ""),
               reason="keyfix never changes a key's state; a person must decide")


def re_encrypt_fix(key: KeyFacts, resource: str | None) -> Fix:
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html (encrypt on copy)
    source = resource or "SOURCE-AMI-OR-SNAPSHOT"
    cli = docs.cli_re_encrypt(key.region, resource)  # validated and shell-quoted there
    return Fix(FixKind.RE_ENCRYPT, FixStatus.PROPOSED, key.account, source,
               {"Source": source, "Encrypted": True, "KmsKeyId": "a customer managed key shared with the user"},
               cli, reason="an AWS managed key cannot be shared; only a re-encrypted copy can be used")


def explicit_deny_note(need: AccessNeed, key: KeyFacts, denied: dict[str, Decision]) -> Fix:
    refs = sorted({(r.policy, r.sid, r.statement) for d in denied.values() for r in d.decisive})
    in_key_policy = any(p == "resource_policy" for p, _, _ in refs)
    kind = FixKind.KEY_POLICY_STATEMENT if in_key_policy else FixKind.IDENTITY_POLICY
    target = key.arn if in_key_policy else iam_arn_for_session(need.principal)
    account = key.account if in_key_policy else (account_of(target) or "")
    cli = docs.cli_get_key_policy(key.arn) if in_key_policy else []  # validated and shell-quoted there
    return Fix(kind, FixStatus.PROPOSED, account, target,
               {"DenyingStatements": [{"policy": p, "sid": s, "statement": i} for p, s, i in refs]}, cli,
               reason="keyfix never removes or narrows a Deny; review the statement(s) named")
