"""The rules that decide whether `apply` mode may write a fix.

Anyone can provoke a KMS AccessDenied on purpose, so what a failure asks for is never
enough: keyfix writes only for principals it trusts by construction (this account's
Auto Scaling / EC2 Spot service-linked roles) or by configuration (the allow-list), on
keys the team opted in, with statements of a fixed, narrow shape.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass

from keyfix.arns import default_slr_name, parse_arn, slr_service
from keyfix.config import OPT_IN_TAG, Settings
from keyfix.remedies.documents import (
    EBS_USE_ACTIONS,
    GRANT_ACTIONS,
    OPTIONAL_GRANT_OPERATIONS,
    SID_PREFIX,
    SLR_GRANT_OPERATIONS,
)
from keyfix.report import Fix, FixKind
from keyfix.resolve.facts import KeyFacts, PrincipalFacts

# https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html#key-policy-limit
KEY_POLICY_MAX_BYTES = 32 * 1024

# Kinds a person must carry out: changing a key's state or re-encrypting data is a
# decision about data, not a permission.
PROPOSE_ONLY = {FixKind.KEY_STATE, FixKind.RE_ENCRYPT}


# The only actions keyfix itself may give anyone: using a key through EBS, and the grants
# AWS services make for it. A denied kms:PutKeyPolicy or kms:ScheduleKeyDeletion is a key
# administrator's business, whoever was denied.
WRITABLE_ACTIONS = frozenset(a.lower() for a in EBS_USE_ACTIONS + GRANT_ACTIONS)
WRITABLE_GRANT_OPERATIONS = frozenset(SLR_GRANT_OPERATIONS + OPTIONAL_GRANT_OPERATIONS)


class Refusal(Exception):
    """A safety rule stopped a change; the message is the report's `reason`."""


@dataclass(frozen=True)
class CheckedPrincipal:
    """The one principal a write may name, as the safety rules approved it.

    Built by `check_principal`, from what keyfix itself read from IAM (GetUser / GetRole, or
    CreateServiceLinkedRole's answer), and by `keyfix.org.owner_side.checked_sender_role` for
    a key owner applying a member's proposal: only that account's own Auto Scaling or Spot
    service-linked role, the account being the one AWS says sent the event - never from an
    event's text alone. The writer
    names `arn` (key policy, grant) or `kind` + `name` (inline policy) and nothing else:
    whatever the allow-list matched is exactly what is written.
    """

    arn: str  # IAM's ARN, path included
    kind: str  # user | role | service-linked-role
    name: str  # IAM's UserName / RoleName
    account: str
    approved_by: str  # which rule let keyfix write for it


def check_fix(fix: Fix, *, principal: PrincipalFacts | None, key: KeyFacts | None, account: str,
              partition: str, settings: Settings) -> CheckedPrincipal | None:
    """Raise Refusal unless `apply` may carry out `fix`; returns the checked principal the
    writer must use (None for a fix that names no principal: creating a service-linked role)."""
    if fix.target_account != account:
        raise Refusal(f"the change belongs to account {fix.target_account}; keyfix writes only in {account}")
    if fix.write_blockers:
        raise Refusal("; ".join(fix.write_blockers))
    if fix.kind == FixKind.CREATE_SERVICE_LINKED_ROLE:
        check_service_linked_role_creation(fix, principal, account, partition)
        return None
    checked = check_principal(principal, account, partition, settings)
    named = principals_named(fix)
    if named != {checked.arn}:
        raise Refusal(f"the change names {sorted(named) or 'no principal'}, not exactly the checked principal "
                      f"{checked.arn}; keyfix writes only for the principal it checked")
    if key is None:
        raise Refusal("keyfix has no facts about the key this change is for; it writes nothing for it")
    written_key = fix.target if fix.kind == FixKind.KEY_POLICY_STATEMENT else \
        (fix.document or {}).get("KeyId") if fix.kind == FixKind.GRANT else key.arn
    if written_key != key.arn or (fix.kind == FixKind.KEY_POLICY_STATEMENT and key.account != account):
        raise Refusal(f"the change is for {written_key}, not the key {key.arn} of account {account} keyfix checked")
    if fix.kind in (FixKind.KEY_POLICY_STATEMENT, FixKind.GRANT):
        check_key(key, settings, writes_policy=fix.kind == FixKind.KEY_POLICY_STATEMENT)
    if fix.kind == FixKind.KEY_POLICY_STATEMENT:
        for statement in fix.document or []:
            check_statement(statement)
    if fix.kind == FixKind.IDENTITY_POLICY:
        if not key.exists or key.state is None or key.manager is None:
            raise Refusal(f"keyfix could not read {key.arn} (DescribeKey); it writes no identity policy for a key "
                          "it has not read")
        document = (fix.document or {}).get("PolicyDocument") or {}
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            check_actions(statement.get("Sid", ""), statement)
            resources = statement.get("Resource") if isinstance(statement, dict) else None
            if ([resources] if isinstance(resources, str) else resources) != [key.arn]:
                raise Refusal(f"the identity policy must be scoped to exactly {key.arn}")
    if fix.kind == FixKind.GRANT:
        if checked.kind != "service-linked-role" or not slr_service(checked.arn, account=account, partition=partition):
            raise Refusal(f"keyfix creates grants only for this account's Auto Scaling / EC2 Spot service-linked "
                          f"roles, not {checked.arn}")
        extra = set((fix.document or {}).get("Operations") or []) - WRITABLE_GRANT_OPERATIONS
        if extra:
            raise Refusal(f"the grant would allow {sorted(extra)}, beyond the EBS operations keyfix may grant")
    return checked


def check_principal(facts: PrincipalFacts | None, account: str, partition: str,
                    settings: Settings) -> CheckedPrincipal:
    """This account's user or role, read from IAM, and approved by construction (this
    account's Auto Scaling / EC2 Spot service-linked role) or by the allow-list, matched
    against IAM's ARN with its path."""
    if facts is None or facts.exists is not True or not facts.iam_name:
        why = "; ".join(facts.unreadable) if facts is not None and facts.unreadable else "not read from IAM"
        shown = facts.arn if facts is not None else "the principal"
        raise Refusal(f"keyfix could not resolve {shown} from IAM ({why}); it writes only for a principal it "
                      "has read itself")
    parsed = parse_arn(facts.arn)
    if parsed is None or parsed.service != "iam" or parsed.region or parsed.resource_type not in ("user", "role"):
        raise Refusal(f"{facts.arn} is not an IAM user or role; keyfix writes for nothing broader")
    if parsed.account != account or parsed.partition != partition:
        raise Refusal(f"{facts.arn} is not a principal of account {account} in partition {partition}; changes "
                      "for another account are proposals to its owner")
    if parsed.name != facts.iam_name:
        raise Refusal(f"{facts.arn} does not end in IAM's name {facts.iam_name!r}")
    kind = facts.kind if facts.kind in ("user", "role", "service-linked-role") else None
    if kind is None or (kind == "user") != (parsed.resource_type == "user"):
        raise Refusal(f"{facts.arn} is a {facts.kind}, not an IAM user or role")
    if kind == "service-linked-role" and slr_service(facts.arn, account=account, partition=partition):
        return CheckedPrincipal(facts.arn, kind, facts.iam_name, account,
                                f"the {slr_service(facts.arn)} service-linked role of this account")
    pattern = settings.matching_principal_pattern(facts.arn)
    if pattern is not None:
        return CheckedPrincipal(facts.arn, kind, facts.iam_name, account,
                                f"KEYFIX_PRINCIPAL_ALLOWLIST pattern {pattern!r}")
    raise Refusal(
        f"{facts.arn} is neither a service-linked role of account {account} keyfix may grant to nor in "
        "KEYFIX_PRINCIPAL_ALLOWLIST; a person must approve this change"
    )


def check_service_linked_role_creation(fix: Fix, facts: PrincipalFacts | None, account: str, partition: str) -> None:
    """Only this account's default Auto Scaling / EC2 Spot role, and only when IAM said it is
    missing: a custom-suffix name in an event is the author's choice, not AWS's."""
    service = (fix.document or {}).get("AWSServiceName")
    wanted = slr_service(fix.target, account=account, partition=partition)
    if wanted is None or service != wanted or parse_arn(fix.target).name != default_slr_name(wanted):
        raise Refusal(f"keyfix creates only this account's default Auto Scaling / EC2 Spot service-linked "
                      f"role, not {fix.target}")
    if facts is None or facts.exists is not False:
        raise Refusal(f"IAM did not say {fix.target} is missing; keyfix creates it only then")


def principals_named(fix: Fix) -> set[str]:
    """Every principal a fix's document would name: what the checked principal must equal."""
    document = fix.document or {}
    if fix.kind == FixKind.KEY_POLICY_STATEMENT:
        named: set[str] = set()
        for statement in document if isinstance(document, list) else [document]:
            named |= principals_named_by_statement(statement)
        return named
    if fix.kind == FixKind.GRANT:
        extra = {str(document[k]) for k in ("RetiringPrincipal",) if document.get(k)}
        return {str(document.get("GranteePrincipal"))} | extra
    return {fix.target}


def principals_named_by_statement(statement: Any) -> set[str]:
    """The principals a key-policy statement names; anything but `{"AWS": ARN or [ARNs]}`
    (a service, `*`, a malformed value) comes back as its repr, which no checked ARN equals."""
    principal = statement.get("Principal") if isinstance(statement, dict) else None
    if not isinstance(principal, dict) or set(principal) != {"AWS"}:
        return {repr(principal)}
    aws = principal["AWS"]
    values = [aws] if isinstance(aws, str) else aws if isinstance(aws, list) else [aws]
    return {v if isinstance(v, str) else repr(v) for v in values}


class TagsUnread(Refusal):
    """The opt-in tag decides and the key's tags were not read (keyfix.resolve.kms.read_tags):
    the caller may read them and check again; as a Refusal, nothing is written."""


def check_key(key: KeyFacts, settings: Settings, *, writes_policy: bool) -> None:
    if key.manager == "AWS":
        raise Refusal(f"{key.arn} is an AWS managed key; keyfix never changes those")
    if not writes_policy:
        return  # a grant made from this account changes nothing the key owner wrote
    if settings.key_allowed(key.arn):
        return
    if key.tags_unread:
        raise TagsUnread(f"{key.arn} is not in KEYFIX_KEY_ALLOWLIST and keyfix has not read its tags "
                         f"({OPT_IN_TAG[0]}); it writes nothing on a tag it has not read")
    opted_in = key.tags.get(OPT_IN_TAG[0], "").lower() == OPT_IN_TAG[1]
    if not opted_in:
        raise Refusal(
            f"{key.arn} is neither in KEYFIX_KEY_ALLOWLIST nor tagged {OPT_IN_TAG[0]}={OPT_IN_TAG[1]}"
        )


def check_statement(statement: dict[str, Any]) -> None:
    """The only shape of statement keyfix itself ever adds to a key policy."""
    sid = statement.get("Sid", "")
    if not isinstance(sid, str) or not sid.startswith(SID_PREFIX):
        raise Refusal(f"statement Sid {sid!r} lacks the {SID_PREFIX!r} prefix")
    if statement.get("Effect") != "Allow" or "NotPrincipal" in statement or "NotAction" in statement:
        raise Refusal(f"statement {sid} is not a plain Allow")
    principal = statement.get("Principal")
    arns = principal.get("AWS") if isinstance(principal, dict) else None
    arns = [arns] if isinstance(arns, str) else arns
    if not arns or any(a == "*" or "*" in a or not a.startswith("arn:") for a in arns):
        raise Refusal(f"statement {sid} must name specific principal ARNs")
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else actions or []
    if any(a == "*" or a.lower() == "kms:*" for a in actions):
        raise Refusal(f"statement {sid} allows every action")
    check_actions(sid, statement)
    grant_actions = {a.lower() for a in GRANT_ACTIONS}
    if any(a.lower() in grant_actions for a in actions):
        condition = statement.get("Condition") or {}
        keys = {k.lower() for block in condition.values() if isinstance(block, dict) for k in block}
        if not keys & {"kms:grantisforawsresource", "kms:granteeprincipal"}:
            raise Refusal(f"statement {sid} allows grant actions without kms:GrantIsForAWSResource")


def check_actions(sid: str, statement: dict[str, Any]) -> None:
    """Only the key-use and grant actions; anything else a person must grant."""
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else actions or []
    beyond = sorted(a for a in actions if not isinstance(a, str) or a.lower() not in WRITABLE_ACTIONS)
    if beyond or "NotAction" in statement:
        raise Refusal(f"statement {sid} would allow {beyond or 'NotAction'}, beyond the key-use and grant "
                      "actions keyfix may add; a person must decide")


def check_size(policy_text: str) -> None:
    size = len(policy_text.encode("utf-8"))
    if size > KEY_POLICY_MAX_BYTES:
        raise Refusal(f"the key policy would be {size} bytes, over KMS's {KEY_POLICY_MAX_BYTES}-byte limit; "
                      "keyfix does not truncate policies")


def check_no_lockout(before: dict[str, Any], after: dict[str, Any], key_arn: str) -> None:
    """Whoever could manage the key before still can: the account root and every principal
    a statement allowed kms:PutKeyPolicy. Adding Allow statements cannot take access away,
    so this guards against a bug in keyfix, not against the statements' shape.
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#prevent-unmanageable-key
    """
    from keyfix.arns import Arn, root_arn
    from keyfix.policy import Policy, PolicySet, Request, evaluate

    account = Arn.parse(key_arn).account
    admins = {root_arn(account)} | _named_principals(before)
    old = PolicySet(resource_policy=Policy.parse(before, "resource_policy"))
    new = PolicySet(resource_policy=Policy.parse(after, "resource_policy"))
    for principal in sorted(admins):
        request = Request(principal, "kms:PutKeyPolicy", key_arn, resource_account=account)
        if evaluate(request, old).decision == "Allowed" and evaluate(request, new).decision != "Allowed":
            raise Refusal(f"the new key policy would stop {principal} from managing the key")


def _named_principals(policy: dict[str, Any]) -> set[str]:
    statements = policy.get("Statement", [])
    names: set[str] = set()
    for statement in [statements] if isinstance(statements, dict) else statements:
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        names.update(a for a in ([aws] if isinstance(aws, str) else aws or []) if a.startswith("arn:"))
    return names
