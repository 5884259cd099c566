"""The key owner's side: keyfix in the key's account decides another account's proposal.

A proposal (keyfix.org.messages) says: "account S's Auto Scaling / EC2 Spot service-linked
role was denied these operations on your key K". keyfix here writes only when ALL hold, each
checked by keyfix itself, never taken from the event's claims:

1. **The sender is S, as AWS says.** S is the envelope's `account`, which AWS sets for a
   PutEvents call (the entry has no account field:
   https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html;
   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html). A detail
   that claims another account is a forgery: refused.
2. **S is in this organisation.** The bus policy lets only principals whose
   `aws:PrincipalOrgID` is the organisation's put events
   (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html), and
   keyfix checks again: DescribeOrganization gives this account's organisation id (any member
   may call it: https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeOrganization.html),
   DescribeAccount(S) must answer an ACTIVE account whose ARN is in that organisation
   (https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeAccount.html;
   it answers only the management account, a delegated administrator, or an account the
   organisation's resource-based delegation policy allows:
   https://docs.aws.amazon.com/organizations/latest/userguide/orgs_delegate_policies.html).
   Not verified (denied, throttled) = not a member, for writing.
3. **S is on this account's allow-list** (`KEYFIX_PROPOSAL_ACCOUNTS`).
4. **The key is opted in**: a customer managed key of this account in `KEYFIX_KEY_ALLOWLIST`
   or tagged `keyfix:auto-remediate=true` (remedies.safety.check_key), and keyfix runs in
   `apply` mode.
5. **The statements pass the safety rules of every write** (remedies.safety.check_statement),
   and keyfix builds them itself: one named principal - S's service-linked role, parsed
   strictly with keyfix.arns.slr_service(account=S) - only the EBS use actions that were
   denied, and kms:CreateGrant only with `kms:GranteePrincipal` = that role.

**Why the checked principal needs no GetRole here.** For a principal of this account keyfix
reads IAM (remedies.safety.check_principal). It cannot read another account's IAM. It does
not need to for these roles: AWS fixes a service-linked role's path and name
(`role/aws-service-role/<service>/<name>`:
https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html), nobody can
create a role under that path but the service, and its account is S, which AWS itself told
keyfix (1) and keyfix verified (2, 3). The statements name exactly that ARN; if the role does
not exist (yet), KMS stores the statement against nothing and it allows nothing until the
service creates the role. The one value `CheckedPrincipal` carries it to remedies.writers, as
for every write: journal (intent, outcome), the key's lock, read-back.

Whether a key-policy statement naming another account's service-linked role is enough by
itself, without a grant made from S, AWS's pages do not say (the role's permissions policy is
AWS's: https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
shows the cross-account case with a grant made in S). keyfix in S keeps its own proposal to
create that grant; the owner's statements are what the owner can do.

Otherwise keyfix notifies this account's on-call with the proposal (status `proposed` or
`refused`, with the reason), and in every case puts the outcome on S's organisation bus.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyfix.arns import account_of, parse_arn, slr_service
from keyfix.org import messages
from keyfix.org.settings import OrgConfigError, OrgSettings, bus_arn, bus_arn_parts
from keyfix.remedies import documents as docs
from keyfix.report import Cause, Finding, Fix, FixKind, FixStatus, Mode


RESULT_SCHEMA = "keyfix.org-proposal/1"
# The EBS use actions keyfix may give (remedies.documents) and the one grant action.
USE_ACTIONS = frozenset(docs.EBS_USE_ACTIONS)
CREATE_GRANT = "kms:CreateGrant"
WRITE_BUDGET_SECONDS = 15.0  # as remedies.apply: stop before a write rather than during it


class NotApplied(Exception):
    """A rule that stops the write; `status` is `refused` or `proposed`, the message the reason."""

    def __init__(self, reason: str, status: str = "refused") -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Decision:
    """What became of one proposal: the owner-side result, reply and notification."""

    event_id: str | None
    sender: str | None
    proposal: messages.Proposal | None = None
    status: str = "refused"
    reason: str = ""
    statements: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)  # rule -> "passed" | why it failed
    change_id: str | None = None
    reply: str = "not sent"
    notified: bool = False

    def to_dict(self) -> dict[str, Any]:
        p = self.proposal
        return {
            "schema": RESULT_SCHEMA, "event_id": self.event_id, "sender_account": self.sender,
            "proposal_id": p.proposal_id if p else None, "key_arn": p.key_arn if p else None,
            "principal": p.principal if p else None, "operations": list(p.operations) if p else [],
            "status": self.status, "reason": self.reason, "statements": self.statements,
            "proposed_statements": list(p.statements) if p else [], "checks": self.checks,
            "change_id": self.change_id, "reply": self.reply, "notified": self.notified,
        }


def handle_proposal(raw: Any, settings, org: OrgSettings, gw, store, *, applied_by: str = "keyfix",
                    time_left: Callable[[], float] | None = None) -> Decision:
    """Decide one proposal event; never raises for what the event or AWS says."""
    try:
        proposal = messages.parse_proposal(raw)
    except messages.OrgEventError as exc:
        sender = raw.get("account") if isinstance(raw, dict) and isinstance(raw.get("account"), str) else None
        decision = Decision(raw.get("id") if isinstance(raw, dict) else None, sender,
                            reason=f"malformed proposal: {exc}")
        _notify(decision, settings, gw)
        return decision  # no reply: nothing in a malformed event says where, trustworthily
    decision = Decision(proposal.envelope.id, proposal.envelope.account, proposal)
    try:
        checked, key = _check(proposal, settings, org, gw, decision)
        _write(proposal, checked, key, settings, gw, store, decision, applied_by, time_left)
    except NotApplied as stop:
        decision.status, decision.reason = stop.status, str(stop)
    _notify(decision, settings, gw)
    _reply(decision, org, gw)
    return decision


# -- the checks ------------------------------------------------------------------------------

def _check(proposal: messages.Proposal, settings, org: OrgSettings, gw, decision: Decision):
    from keyfix import names
    from keyfix.remedies import safety

    sender = proposal.envelope.account  # AWS's, never the detail's
    own = gw.home_account()
    partition = gw.home_partition
    if own is None:
        raise NotApplied("keyfix could not confirm which account it runs in (STS); it writes nothing")
    if own == sender:
        raise NotApplied("the proposal comes from this account itself; its own keyfix fixes its own keys")

    def rule(name: str, ok: bool, why: str, status: str = "refused") -> None:
        decision.checks[name] = "passed" if ok else why
        if not ok:
            raise NotApplied(why, status)

    rule("claims", proposal.claimed_account in (None, sender),
         f"forged account claim: the detail says account {proposal.claimed_account}, AWS says the event was put "
         f"by account {sender}")
    service = slr_service(proposal.principal, account=sender, partition=partition)
    rule("principal", service is not None,
         f"{proposal.principal!r} is not the Auto Scaling / EC2 Spot service-linked role of the sending account "
         f"{sender}; keyfix writes for nothing else on another account's word")
    try:
        names.key_arn(proposal.key_arn)
        key_parsed = parse_arn(proposal.key_arn)
    except names.InvalidName as exc:
        key_parsed, bad = None, str(exc)
    else:
        bad = ""
    rule("key", key_parsed is not None and key_parsed.account == own and key_parsed.partition == partition,
         bad or f"{proposal.key_arn} is not a key of this account {own}")
    rule("allow-list", sender in org.proposal_accounts,
         f"account {sender} is not in KEYFIX_PROPOSAL_ACCOUNTS; a person decides its proposals")
    member, why = organisation_member(gw, sender)
    rule("organisation", member, why)
    use = [a for a in docs.EBS_USE_ACTIONS if a in proposal.operations]
    grant = CREATE_GRANT in proposal.operations
    beyond = sorted(set(proposal.operations) - USE_ACTIONS - {CREATE_GRANT})
    rule("operations", not beyond and bool(use or grant),
         f"the proposal asks for {beyond or 'nothing'}, beyond the EBS operations keyfix may give")
    from keyfix.resolve.kms import read_key, read_tags

    key = read_key(gw, proposal.key_arn, key_parsed.region)
    if not settings.key_allowed(key.arn):
        key = read_tags(gw, key)  # the opt-in tag; read_key leaves tags unread (issue #14, P2)
    if not key.exists or key.manager is None:
        rule("opt-in", False, f"keyfix could not read {proposal.key_arn} (DescribeKey): "
             + ("; ".join(key.unreadable) or "it does not exist"))
    try:
        safety.check_key(key, settings, writes_policy=True)
    except safety.Refusal as exc:
        rule("opt-in", False, str(exc))
    decision.checks["opt-in"] = "passed"
    statements = owner_statements(proposal.principal, use, grant)
    decision.statements = statements
    try:
        for statement in statements:
            safety.check_statement(statement)
            if safety.principals_named_by_statement(statement) != {proposal.principal}:
                raise safety.Refusal(f"statement {statement['Sid']} names more than {proposal.principal}")
    except safety.Refusal as exc:
        rule("statements", False, str(exc))
    decision.checks["statements"] = "passed"
    rule("mode", settings.mode == Mode.APPLY, "propose mode: keyfix writes nothing; on-call has the statements",
         status="proposed")
    checked = checked_sender_role(proposal.principal, sender, partition, service)
    return checked, key


def organisation_member(gw, account: str) -> tuple[bool, str]:
    """Whether `account` is an ACTIVE account of this account's organisation, as Organizations
    itself answers (see the module docstring); (False, why) when it is not or keyfix cannot tell."""
    from keyfix.resolve.gateway import AwsError
    from keyfix.resolve.organizations import MEMBER, read_organization

    org = read_organization(gw)
    if org.status != MEMBER or not org.org_id:
        return False, f"this account's organisation is unknown ({org.reason or org.status}); no proposal is applied"
    try:
        found = gw.read("organizations", "DescribeAccount", AccountId=account).get("Account") or {}
    except AwsError as err:
        if err.code == "AccountNotFoundException":
            return False, f"account {account} is not in this account's organisation {org.org_id}"
        return False, (f"keyfix could not verify that account {account} is in organisation {org.org_id} "
                       f"({err.code}): organizations:DescribeAccount answers the management account, a delegated "
                       "administrator, or an account the organisation's delegation policy allows")
    arn = parse_arn(found.get("Arn"))
    in_org = arn is not None and arn.service == "organizations" and arn.resource == \
        f"account/{org.org_id}/{account}" and found.get("Id") == account
    if not in_org:
        return False, f"account {account} is not in this account's organisation {org.org_id}"
    if found.get("Status", found.get("State")) != "ACTIVE":
        return False, f"account {account} is not ACTIVE in organisation {org.org_id}"
    return True, ""


def checked_sender_role(arn: str, sender: str, partition: str, service: str | None):
    """The checked principal for the sender's service-linked role: built only here, only from
    an ARN `slr_service` accepted for the AWS-verified sender (module docstring: why no GetRole)."""
    from keyfix.remedies.safety import CheckedPrincipal, Refusal

    if service is None or slr_service(arn, account=sender, partition=partition) != service:
        raise Refusal(f"{arn} is not the sending account's service-linked role")
    return CheckedPrincipal(arn, "service-linked-role", parse_arn(arn).name, sender,
                            f"the {service} service-linked role of organisation member {sender}, "
                            "on KEYFIX_PROPOSAL_ACCOUNTS")


def owner_statements(slr: str, use_actions: list[str], grant: bool) -> list[dict[str, Any]]:
    """The statements keyfix itself adds for another account's service-linked role: the denied
    EBS use actions, and kms:CreateGrant only for a grant to that same role."""
    statements = [docs.use_statement(slr, use_actions)] if use_actions else []
    if grant:
        sid = docs.use_statement(slr, ["kms:DescribeKey"])["Sid"].replace(f"{docs.SID_PREFIX}use-",
                                                                         f"{docs.SID_PREFIX}org-grant-")
        statements.append({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": slr}, "Action": [CREATE_GRANT],
                           "Resource": "*", "Condition": {"StringEquals": {"kms:GranteePrincipal": slr}}})
    return statements


# -- the write -------------------------------------------------------------------------------

def _write(proposal, checked, key, settings, gw, store, decision: Decision, applied_by: str,
           time_left: Callable[[], float] | None) -> None:
    from keyfix.remedies import safety, writers
    from keyfix.store import LockTimeout

    if time_left is not None and time_left() < WRITE_BUDGET_SECONDS:
        raise NotApplied(f"not attempted: less than {WRITE_BUDGET_SECONDS:.0f} s of Lambda time left")
    finding = owner_finding(proposal, decision.statements)
    journal = writers.Journal(store, proposal.envelope.id, finding, applied_by)
    try:
        with store.lock(key.arn, f"{applied_by}:{proposal.envelope.id}"):
            change = writers.add_key_policy_statements(gw.client("kms", region=key.region), checked, key.arn,
                                                       decision.statements, journal)
    except safety.Refusal as exc:
        raise NotApplied(str(exc)) from None
    except LockTimeout as exc:
        decision.status, decision.reason = "failed", str(exc)
        return
    except writers.WriteFailed as exc:
        journal.outcome("failed", {"reason": str(exc)})
        decision.status, decision.reason, decision.change_id = "failed", str(exc), journal.change_id
        return
    except writers.WriteUnverified as exc:
        journal.outcome("unverified", {"reason": str(exc)})
        decision.status, decision.reason, decision.change_id = "unverified", str(exc), journal.change_id
        return
    except Exception as exc:  # noqa: BLE001 - an AWS read before the write (GetKeyPolicy): nothing written
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        decision.status, decision.reason = "failed", f"not written: {exc}"
        return
    if change is None:
        decision.status, decision.reason = "already-present", "the key policy already has these statements"
        return
    journal.outcome("applied", {"after": change.get("after")})
    decision.status, decision.change_id = "applied", journal.change_id
    decision.reason = change.get("note") or f"applied for {checked.approved_by}"


def owner_finding(proposal: messages.Proposal, statements: list[dict[str, Any]]) -> Finding:
    """The audit record's finding: the sender's role is not in this key's policy."""
    fix = Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, account_of(proposal.key_arn), proposal.key_arn,
              statements, docs.cli_add_key_policy_statements(proposal.key_arn, statements) if statements else [])
    return Finding(Cause.ACCOUNT_NOT_IN_KEY_POLICY, proposal.principal, proposal.key_arn, list(proposal.operations),
                   f"proposal {proposal.proposal_id} from organisation member {proposal.envelope.account}", [fix])


# -- telling people --------------------------------------------------------------------------

def _notify(decision: Decision, settings, gw) -> None:
    """This account's on-call hears of every proposal: what was asked, what keyfix did, why."""
    topic = settings.sns_topic_arn
    if not topic:
        return
    doc = decision.to_dict()
    subject = f"[keyfix] proposal from account {decision.sender or 'unknown'}: {decision.status}"[:100]
    lines = [f"Account {decision.sender or '(unknown)'} proposes a key-policy change for "
             f"{doc['key_arn'] or '(unreadable)'}.", f"Status: {decision.status}", f"Why: {decision.reason}"]
    if decision.statements and decision.status != "applied":
        lines.append("The statements keyfix would add: "
                     + " ; ".join(docs.cli_add_key_policy_statements(doc["key_arn"], decision.statements)))
    message = "\n".join(lines) + f"\n\n----- {RESULT_SCHEMA} (JSON) -----\n" + json.dumps(doc, indent=1)
    from keyfix.notify import send

    # A refused publish is logged by send(); the decision stands, and the reply still carries it.
    decision.notified = send(gw, topic, subject, message[:250_000], structured=False,
                             kind=f"proposal {doc['proposal_id']}", attributes={
                                 "status": {"DataType": "String", "StringValue": decision.status},
                                 "account": {"DataType": "String", "StringValue": decision.sender or "unknown"}})


def reply_bus(proposal: messages.Proposal, org: OrgSettings, partition: str) -> str:
    """The sender's organisation bus: the one the detail names only if it is in the sending
    account, else that account's bus of this deployment's name in the event's Region."""
    sender = proposal.envelope.account
    if proposal.reply_bus:
        try:
            part, _, account, _ = bus_arn_parts(proposal.reply_bus)
        except OrgConfigError:
            part, account = None, None
        if account == sender and part == partition:
            return proposal.reply_bus
    return bus_arn(partition, proposal.envelope.region, sender, org.bus_name)


def _reply(decision: Decision, org: OrgSettings, gw) -> None:
    from keyfix.org import bus

    proposal = decision.proposal
    if proposal is None:
        return
    target = reply_bus(proposal, org, gw.home_partition)
    entry = messages.outcome_entry(bus_arn=target, proposal_id=proposal.proposal_id, key_arn=proposal.key_arn,
                                   status=decision.status, reason=decision.reason,
                                   statements=decision.statements if decision.status in (
                                       "applied", "already-present") else [])
    decision.reply = f"sent to {target}" if bus.put(gw, entry) else f"not delivered to {target}"
