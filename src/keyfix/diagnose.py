"""From resolved facts to findings: which permission is missing, where, and the fix.

Pure: takes a `Situation`, asks the authorisation model, returns `Finding`s whose fixes
are all `proposed`. Whether a fix is then written is the remedies' business.
One finding per principal x key (the contract).
"""

from __future__ import annotations

from dataclasses import replace

from keyfix import names
from keyfix.arns import account_of, slr_service
from keyfix.events.incident import Denial, Incident
from keyfix.federation import undetermined_federated
from keyfix.policy import Decision, Policy, PolicyError, evaluate
from keyfix.remedies import plan
from keyfix.report import Cause, Finding, Trigger
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation

# KeyState -> cause. https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
_STATE_CAUSES = {
    "Disabled": Cause.KEY_DISABLED,
    "PendingDeletion": Cause.KEY_PENDING_DELETION,
    "PendingReplicaDeletion": Cause.KEY_PENDING_DELETION,
    "PendingImport": Cause.KEY_PENDING_IMPORT,
}


def diagnose(situation: Situation) -> list[Finding]:
    incident = situation.incident
    if situation.not_kms_reason:
        return [Finding(Cause.NOT_KMS, None, None, [], situation.not_kms_reason)]
    findings = []
    for need in situation.needs:
        key = situation.keys.get(need.key_arn)
        principal = situation.principals.get(need.principal)
        findings.append(_diagnose_need(need, key, principal, incident))
    needed_keys = {n.key_arn for n in situation.needs}
    for arn, key in situation.keys.items():
        if arn not in needed_keys:  # EBS notifications name a key but not who used it
            findings.append(_diagnose_key_alone(key, incident))
    if not findings:
        notes = "; ".join(situation.notes) or "the event names no key and no principal keyfix could resolve"
        findings.append(Finding(Cause.UNDETERMINED, None, None, [], f"Could not decide: {notes}."))
    if situation.unchecked:  # the resolver's per-event limits stopped it (keyfix.resolve.limits)
        findings.append(Finding(Cause.UNDETERMINED, None, None, [], "Not checked: " + "; ".join(situation.unchecked) + "."))
    return findings


def _diagnose_key_alone(key: KeyFacts, incident: Incident) -> Finding:
    blocked = _key_blocked(key, None, [], incident)
    if blocked:
        return blocked
    return Finding(
        Cause.UNDETERMINED,
        None,
        key.arn,
        [],
        f"Key {key.arn} is {key.state or 'in an unknown state'}; the event does not say which principal "
        "failed to use it, so keyfix cannot check its permissions.",
        resource=_resource(incident),
    )


def _key_blocked(key: KeyFacts | None, need: AccessNeed | None, ops: list[str], incident: Incident) -> Finding | None:
    """The key itself (absent, state, AWS managed across accounts) blocks the request."""
    principal = need.principal if need else None
    arn = key.arn if key else (need.key_arn if need else None)
    resource = (need.resource if need else None) or _resource(incident)
    if key is not None and need is not None and _slr_denied_on_unread_foreign_key(key, need, incident):
        try:
            names.key_arn(key.arn)  # the grant names the key: a full key ARN, never an alias
        except names.InvalidName:
            return Finding(Cause.UNDETERMINED, principal, key.arn, ops,
                           f"keyfix could not read key {key.arn} ({'; '.join(key.unreadable) or 'DescribeKey failed'}) "
                           "and the failure does not name it by its key ARN, which a grant needs: keyfix proposes "
                           "nothing. Find the key ARN behind it and grant from this account.", resource=resource)
        return None  # seeds' case A2 (_diagnose_denial), said to rest on AWS's own record
    if key is None or not key.exists:
        why = "; ".join(key.unreadable) if key and key.unreadable else "DescribeKey found no such key"
        return Finding(Cause.KEY_NOT_FOUND, principal, arn, ops,
                       f"Key {arn} does not exist or is not visible from this account ({why}).", resource=resource)
    cause = _STATE_CAUSES.get(key.state or "")
    if cause:
        return Finding(cause, principal, key.arn, ops,
                       f"Key {key.arn} is {key.state}: no permission can make it usable until its state changes.",
                       fixes=[plan.key_state_fix(key)], resource=resource)
    if need and key.manager == "AWS" and account_of(need.principal) not in (None, key.account):
        # https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
        # (AWS managed keys' policies cannot be changed, so other accounts can never use them)
        return Finding(Cause.AWS_MANAGED_KEY_CROSS_ACCOUNT, principal, key.arn, ops,
                       f"Key {key.arn} is an AWS managed key of account {key.account}; its policy cannot be "
                       "changed, so no other account can use it. Re-encrypt the image or snapshot with a "
                       "customer managed key.", fixes=[plan.re_encrypt_fix(key, resource)], resource=resource)
    if need and account_of(need.principal) == key.account and (key.state is None or key.policy is None):
        # Same account: keyfix should have read both. An unread policy is not an empty one.
        what = "; ".join(key.unreadable) or "DescribeKey or GetKeyPolicy gave nothing"
        return Finding(Cause.UNDETERMINED, principal, key.arn, ops,
                       f"Could not read what decides access to key {key.arn}: {what}. keyfix does not guess "
                       "what a policy it could not read says, and writes nothing to it.", resource=resource)
    return None


def _slr_denied_on_unread_foreign_key(key: KeyFacts, need: AccessNeed, incident: Incident) -> bool:
    """Issue #10, 6: AWS's own record of the failure is evidence the key exists even when
    keyfix's DescribeKey of it fails. A CloudTrail AccessDenied (not NotFoundException) is
    only recorded for a key KMS found; an Auto Scaling launch failure names keys taken from the
    snapshots and launch templates AWS holds. KMS answers DescribeKey across accounts only when
    the owner's key policy allows it
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html),
    so an unreadable foreign key is the normal case, and for this account's Auto Scaling / Spot
    service-linked role the grant made from this account is the documented fix
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html#policy-example-cmk-cross-account-access)."""
    if key.state is not None or key.account in (None, "", incident.account):
        return False
    if not slr_service(need.principal, account=incident.account):
        return False
    if incident.trigger == Trigger.KMS_ACCESS_DENIED:
        return "notfound" not in (incident.error_code or "").lower()
    return incident.trigger == Trigger.ASG_LAUNCH_FAILURE


def _unread_key_sentence(key: KeyFacts, incident: Incident) -> str:
    record = ("CloudTrail's AccessDenied record of the denied request" if incident.trigger == Trigger.KMS_ACCESS_DENIED
              else "the Auto Scaling group's launch configuration or template, and the snapshots it uses")
    return (f" keyfix could not read the key itself ({'; '.join(key.unreadable) or 'DescribeKey failed'}); it "
            f"rests on AWS's own record, {record}, that names the key. If the key is an AWS managed key, no grant "
            "can help: only a re-encrypted copy under a customer managed key can be used from this account.")


def _diagnose_need(need: AccessNeed, key: KeyFacts | None, principal: PrincipalFacts | None,
                   incident: Incident) -> Finding:
    """One finding per need; whatever the event names (a service principal, a wildcard ARN, an
    action no key policy can grant across accounts), a finding and never an exception: anyone
    can provoke a denial, and a crash would drop the report (Lambda retries, then the DLQ)."""
    try:
        return _diagnose_need_model(need, key, principal, incident)
    except PolicyError as exc:
        return Finding(Cause.UNDETERMINED, need.principal, key.arn if key else need.key_arn, list(need.operations),
                       f"keyfix cannot model this request: {exc.place}: {exc}. It proposes nothing for "
                       "a request it cannot evaluate.", resource=need.resource)
    except plan.FixNotSufficient as exc:
        return Finding(Cause.UNDETERMINED, need.principal, key.arn if key else need.key_arn, list(need.operations),
                       f"No fix keyfix may offer would allow this request ({exc}); a person must decide "
                       "whether it should be allowed at all.", resource=need.resource)
    except names.InvalidName as exc:  # a forged or corrupt name must never reach a policy or a CLI line
        return Finding(Cause.UNDETERMINED, need.principal, key.arn if key else need.key_arn, list(need.operations),
                       f"The event names a principal or resource AWS would never accept ({exc}), so it cannot be "
                       "real; keyfix proposes nothing for it.", resource=need.resource)


def _diagnose_need_model(need: AccessNeed, key: KeyFacts | None, principal: PrincipalFacts | None,
                         incident: Incident) -> Finding:
    ops = list(need.operations)
    blocked = _key_blocked(key, need, ops, incident)
    if blocked:
        return blocked
    assert key is not None
    if need.principal.startswith("arn:"):
        names.principal_arn(need.principal)  # before any model or fix sees the event's text
    service = slr_service(need.principal, account=incident.account)
    if service and principal is not None and principal.exists is False:
        return Finding(Cause.SERVICE_LINKED_ROLE_MISSING, need.principal, key.arn, ops,
                       f"The service-linked role {need.principal} does not exist yet, so no key policy can "
                       "name it (KMS rejects the policy as MalformedPolicyDocumentException). Create it, "
                       "then give it access to the key.",
                       fixes=plan.for_missing_slr(need, key, service), resource=need.resource)
    try:
        model = plan.Model(need, key, principal)
    except PolicyError as exc:
        return Finding(Cause.UNDETERMINED, need.principal, key.arn, ops,
                       f"The policy in force is malformed at {exc.place}: {exc}. keyfix will not reason "
                       "about, or write, a policy it cannot read.", resource=need.resource)
    decisions = model.decide_all()
    denied = {op: d for op, d in decisions.items() if d.decision != "Allowed"}
    if not denied:
        return Finding(Cause.NO_MISSING_PERMISSION, need.principal, key.arn, ops,
                       "The permissions keyfix can read allow every operation now: "
                       + _decisive_text(decisions) + ". A grant or policy change can take a few minutes to "
                       "apply; if the failure persists, a layer keyfix does not read (an SCP, RCP, session "
                       "policy or VPC endpoint policy) may be denying it.", resource=need.resource)
    unknown = {op: d for op, d in denied.items() if d.decision == "Undetermined"}
    if unknown and not any(d.decision == "ExplicitlyDenied" for d in denied.values()):
        return _undetermined_by_unknowns(need, key, unknown)
    unseen = _unknown_behind_unread_identity(model, principal, denied)
    if unseen:
        return _undetermined_by_unknowns(need, key, unseen)
    finding = _diagnose_denial(need, key, principal, incident, model, denied)
    if model.readings:
        blocker = ("the decision rests on a reading AWS's documentation does not decide ("
                   + ", ".join(sorted(model.readings)) + "); keyfix proposes it but never writes on it")
        for fix in finding.fixes:
            fix.write_blockers.append(blocker)
    return finding


_ALLOW_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _unknown_behind_unread_identity(model: plan.Model, principal: PrincipalFacts | None,
                                    denied: dict[str, Decision]) -> dict[str, Decision]:
    """Another account's principal: its identity policies cannot be read, so an empty identity
    layer decides the denial before the key policy's unknowns are even asked. With that layer
    allowing, the operations whose decision an unknown key then decides (an organisation share,
    say) are not known to need a key-policy statement: unknown, not denied."""
    if principal is None or principal.identity_policies is not None or model.key_policy is None \
            or not model.need.unknown_keys:
        return {}
    what_if = replace(model.policies(),
                      identity_policies=(Policy.parse(_ALLOW_EVERYTHING, "identity_policies[0]"),))
    decisions = {op: evaluate(model.request(op), what_if) for op in denied}
    return {op: d for op, d in decisions.items() if d.decision == "Undetermined"}


def _undetermined_by_unknowns(need: AccessNeed, key: KeyFacts, unknown: dict[str, Decision]) -> Finding:
    """The decision depends on what keyfix could not know (an organisation id, a tag, a
    policy layer it cannot read): unknown is not denied, so nothing is proposed or written."""
    keys = sorted({k for d in unknown.values() for k in d.undetermined_by})
    possible = sorted({p for d in unknown.values() for p in d.possible})
    return Finding(Cause.UNDETERMINED, need.principal, key.arn, sorted(unknown),
                   f"Whether {need.principal} may {', '.join(sorted(unknown))} on {key.arn} depends on "
                   f"{', '.join(keys) or 'something keyfix could not read'}, which keyfix could not know; the "
                   f"decision could be {' or '.join(possible) or 'either way'}. keyfix proposes and writes nothing "
                   "on an unknown: check those values, or the failure's own error message.",
                   resource=need.resource)


def _diagnose_denial(need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None, incident: Incident,
                     model: plan.Model, denied: dict[str, Decision]) -> Finding:
    ops = sorted(denied)
    explicit = {op: d for op, d in denied.items() if d.decision == "ExplicitlyDenied"}
    if explicit:
        where = _decisive_text(explicit)
        return Finding(Cause.EXPLICIT_DENY, need.principal, key.arn, ops,
                       f"An explicit Deny decides: {where}. keyfix never overrides a Deny; review that "
                       "statement.", fixes=[plan.explicit_deny_note(need, key, explicit)], resource=need.resource)
    # A federated session's session policy is not in the event: keyfix may not blame a layer
    # it cannot see (keyfix.federation).
    federated = undetermined_federated(need, key, incident, model, denied)
    if federated:
        return federated
    stale = model.stale_principals()
    if stale:
        return Finding(Cause.STALE_PRINCIPAL, need.principal, key.arn, ops,
                       f"The key policy names {', '.join(stale)}: unique ids AWS shows for a principal that "
                       "was deleted; a re-created role or user of the same name does not match them.",
                       fixes=plan.for_stale_principal(need, key, ops), resource=need.resource)
    missing = set().union(*(d.missing for d in denied.values()))
    home = incident.account
    principal_account = account_of(need.principal)
    same_account = principal_account == key.account
    # Only this account's own service-linked roles get the SLR treatment; a look-alike of
    # another account (or path, or partition) is an ordinary outside principal.
    service = slr_service(need.principal, account=home)
    if key.account == home and principal_account != home:
        return _outsider_on_our_key(need, key, principal, model, denied, missing)
    if not can_hold_identity_policy(need.principal) and "resource_policy" not in missing:
        return Finding(Cause.UNDETERMINED, need.principal, key.arn, ops,
                       f"{need.principal} is denied {', '.join(ops)} on {key.arn}, but it is not an IAM user or "
                       "role: no identity policy can be attached to it, and keyfix has no other fix to offer.",
                       resource=need.resource)
    if same_account:
        if "resource_policy" in missing:
            cause = Cause.SLR_NOT_IN_KEY_POLICY if service else Cause.PRINCIPAL_NOT_IN_KEY_POLICY
            fixes = plan.key_policy_fix(need, key, ops, model)
            why = ("the key policy does not name this service-linked role, and delegating to IAM cannot "
                   "help it: AWS fixes its permissions, which include no KMS access") if service else \
                "the key policy neither names it nor delegates to IAM for it"
        else:
            cause, why = Cause.IDENTITY_POLICY_MISSING, "the key policy delegates to IAM, and no identity policy allows it"
            fixes = plan.identity_fix(need, key, principal, ops, model)
        return Finding(cause, need.principal, key.arn, ops,
                       f"{need.principal} may not {', '.join(ops)} on {key.arn}: {why}.",
                       fixes=fixes, resource=need.resource)
    # The key belongs to another account: its policy is usually unreadable from here.
    if service:
        return Finding(Cause.SLR_GRANT_MISSING, need.principal, key.arn, ops,
                       f"Key {key.arn} belongs to account {key.account}. The service-linked role can use it "
                       "only through a grant created from this account, which it does not have."
                       + (_unread_key_sentence(key, incident) if key.state is None else ""),
                       fixes=plan.cross_account_slr_fixes(need, key, ops, model), resource=need.resource)
    owner_side = _owner_side_missing(key, incident, missing)
    if owner_side:
        return Finding(Cause.ACCOUNT_NOT_IN_KEY_POLICY, need.principal, key.arn, ops,
                       f"Key {key.arn} belongs to account {key.account}, whose key policy does not allow "
                       f"{need.principal} or its account.",
                       fixes=plan.cross_account_principal_fixes(need, key, principal, ops, model),
                       resource=need.resource)
    return Finding(Cause.IDENTITY_POLICY_MISSING, need.principal, key.arn, ops,
                   f"Key {key.arn} belongs to account {key.account}: using it needs an identity policy in "
                   f"this account, and none allows {', '.join(ops)}.",
                   fixes=plan.identity_fix(need, key, principal, ops, model), resource=need.resource)


def _outsider_on_our_key(need: AccessNeed, key: KeyFacts, principal: PrincipalFacts | None,
                         model: plan.Model, denied: dict[str, Decision], missing: set[str]) -> Finding:
    """Another account's principal was denied on a key of this account: the key owner's trail
    records outsiders (userIdentity.type AWSAccount or Root,
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
    Anyone can provoke such a denial, so keyfix only says what letting them in would take, as
    a proposal: it never writes for another account's principal (remedies.safety).
    Cross-account use needs the key policy here and an identity policy there:
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html"""
    ops = sorted(denied)
    outsider = account_of(need.principal)
    if "grant" in missing:  # another account's service-linked role: only a grant lets it in
        return Finding(Cause.ACCOUNT_NOT_IN_KEY_POLICY, need.principal, key.arn, ops,
                       f"{need.principal}, a service-linked role of account {outsider}, was denied "
                       f"{', '.join(ops)} on {key.arn}, a key of this account. Its permissions are fixed by AWS: "
                       f"only a grant made from account {outsider} can let it in, and only if this key's policy "
                       f"lets that account create one. Only if account {outsider} should use this key: the "
                       "statements and grant below. keyfix never makes this change itself.",
                       fixes=plan.outsider_slr_fixes(need, key, ops, model), resource=need.resource)
    if "resource_policy" in missing:
        return Finding(Cause.ACCOUNT_NOT_IN_KEY_POLICY, need.principal, key.arn, ops,
                       f"{need.principal} of account {outsider} was denied {', '.join(ops)} on {key.arn}, a key of "
                       f"this account whose policy does not allow it. Only if account {outsider} should use this "
                       "key: the key-policy statement below (this account), and an identity policy in account "
                       f"{outsider}. keyfix never makes this change itself.",
                       fixes=plan.outsider_fixes(need, key, principal, ops, model), resource=need.resource)
    return Finding(Cause.IDENTITY_POLICY_MISSING, need.principal, key.arn, ops,
                   f"The policy of {key.arn} allows {need.principal} of account {outsider}, but that account's own "
                   "IAM policies do not: only account "
                   f"{outsider} can change that. Nothing needs to change in this account.",
                   fixes=plan.outsider_fixes(need, key, principal, ops, model, key_policy=False),
                   resource=need.resource)


def can_hold_identity_policy(arn: str) -> bool:
    """Inline identity policies attach to IAM users and roles (an assumed-role session's role)."""
    from keyfix.arns import iam_arn_for_session, parse_arn

    parsed = parse_arn(iam_arn_for_session(arn))
    return bool(parsed and parsed.service == "iam" and parsed.resource_type in ("user", "role"))


def _owner_side_missing(key: KeyFacts, incident: Incident, missing: set[str]) -> bool:
    if key.policy is not None:
        return "resource_policy" in missing
    # Unreadable foreign policy: the AccessDenied wording is the best witness.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_access-denied-error-messages.html
    if incident.denial == Denial.NO_RESOURCE_POLICY:
        return True
    return "identity_policy" not in missing


def _decisive_text(decisions: dict[str, Decision]) -> str:
    parts = []
    for op, decision in sorted(decisions.items()):
        refs = ", ".join(r.describe() for r in decision.decisive) or "no statement"
        parts.append(f"{op} by {refs}")
    return "; ".join(parts)


def _resource(incident: Incident) -> str | None:
    if incident.volume_id:
        return incident.volume_id
    if incident.instance_id:
        return incident.instance_id
    return incident.group_name
