"""A member account's side: after its own report, tell the organisation.

- **Central view.** With `KEYFIX_CENTRAL_BUS_ARN`, each report is put on the security
  account's bus (`keyfix report`), with `attention` set when a person must act. Sent by the
  function with PutEvents rather than by an EventBridge rule forwarding events: the report
  exists only once keyfix has run, a rule can only forward the event that came in, and a rule
  cannot forward events that came from another account onwards to a third
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html).
- **The key owner.** With the owner's bus in `KEYFIX_KEY_OWNER_BUS_ARNS`, a finding whose fix
  includes a key-policy change in the owner's account for this account's Auto Scaling / EC2
  Spot service-linked role is also put there as a proposal (keyfix.org.messages); the owner's
  keyfix answers on this account's organisation bus (`handle_outcome`).

Best effort: a missing central stack or owner bus is logged, and this account's report,
writes and notifications are exactly as without them. The report itself is never changed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keyfix.arns import account_of, iam_arn_for_session, slr_service
from keyfix.org import bus, messages
from keyfix.org.settings import OrgSettings, bus_arn
from keyfix.report import FixKind, FixStatus, Trigger

log = logging.getLogger("keyfix")

REPORT_DETAIL_TYPE = "keyfix report"
REPORT_SCHEMA = "keyfix.org-report/1"
# A report is usually a few KB; PutEvents takes 256 KB per call. Beyond this the findings'
# documents are left out (the member's own SNS message and history keep them).
MAX_REPORT_BYTES = 200 * 1024
_NEEDS_A_PERSON = {FixStatus.PROPOSED, FixStatus.REFUSED, FixStatus.FAILED, FixStatus.UNVERIFIED}


def after_report(report, gw, org: OrgSettings | None = None) -> dict[str, Any]:
    """Send the report centrally and proposals to key owners; returns what was sent. Never raises."""
    try:
        org = org or OrgSettings.from_env()
        if not org.enabled or getattr(report, "duplicate_of", None) is not None or \
                report.event.trigger == Trigger.UNRECOGNISED:
            return {}
        account = gw.home_account()
        if account is None:
            return {}
        sent: dict[str, Any] = {}
        if org.central_bus_arn:
            sent["central"] = bus.put(gw, report_entry(report, org.central_bus_arn, account, gw.default_region()))
        proposals = proposal_entries(report, org, account, gw.home_partition, gw.default_region())
        sent["proposals"] = [bus.put(gw, entry) for entry in proposals]
        return sent
    except Exception:  # noqa: BLE001 - the organisation's view is extra; never the cause of a failure
        log.exception("could not tell the organisation about report %s", getattr(report.event, "id", None))
        return {"error": True}


def needs_attention(report) -> bool:
    return any(fix.status in _NEEDS_A_PERSON for f in report.findings for fix in f.fixes) or \
        any(str(f.cause) == "undetermined" for f in report.findings)


def report_entry(report, bus_arn_: str, account: str, region: str | None) -> dict[str, Any]:
    body = report.to_dict()
    detail = {"schema": REPORT_SCHEMA, "account": account, "region": region, "attention": needs_attention(report),
              "causes": sorted({str(f.cause) for f in report.findings}),
              "statuses": sorted({str(x.status) for f in report.findings for x in f.fixes}), "report": body}
    text = json.dumps(detail, separators=(",", ":"), default=str)
    if len(text.encode("utf-8")) > MAX_REPORT_BYTES:
        for finding in body.get("findings", []):
            for fix in finding.get("fixes", []):
                fix["document"], fix["cli"] = None, []
        detail["truncated"] = True
        text = json.dumps(detail, separators=(",", ":"), default=str)
    return {"EventBusName": bus_arn_, "Source": messages.SOURCE, "DetailType": REPORT_DETAIL_TYPE, "Detail": text}


def proposal_entries(report, org: OrgSettings, account: str, partition: str, region: str | None) -> list[dict]:
    """One proposal per finding whose key-policy fix belongs to a key owner with a configured
    bus, for this account's own Auto Scaling / EC2 Spot service-linked role only."""
    entries = []
    for finding in report.findings:
        principal = iam_arn_for_session(finding.principal or "")
        if slr_service(principal, account=account, partition=partition) is None:
            continue
        for fix in finding.fixes:
            owner = fix.target_account
            if fix.kind != FixKind.KEY_POLICY_STATEMENT or fix.status != FixStatus.PROPOSED or owner == account \
                    or owner != account_of(finding.key_arn):
                continue
            target = org.owner_bus_for(owner)
            if target is None:
                continue
            entries.append(messages.proposal_entry(
                bus_arn=target, sender_account=account, key_arn=finding.key_arn, principal=principal,
                operations=list(finding.operations), statements=list(fix.document or []),
                report_event_id=report.event.id,
                reply_bus=bus_arn(partition, region or "us-east-1", account, org.bus_name)))
    return entries


def handle_outcome(raw: Any, settings, gw) -> dict[str, Any]:
    """The key owner's answer to a proposal: told to this account's on-call. Only the key's
    own account may answer for it (the envelope's account, set by AWS)."""
    try:
        outcome = messages.parse_outcome(raw)
    except messages.OrgEventError as exc:
        return {"schema": "keyfix.org-outcome/1", "status": "ignored", "reason": f"malformed outcome: {exc}"}
    owner = account_of(outcome.key_arn)
    result = {"schema": "keyfix.org-outcome/1", "owner_account": outcome.envelope.account,
              "proposal_id": outcome.proposal_id, "key_arn": outcome.key_arn, "status": outcome.status,
              "reason": outcome.reason}
    if owner != outcome.envelope.account:
        result.update(status="ignored", reason=f"account {outcome.envelope.account} answered for a key of account "
                                               f"{owner}; only the key's owner may")
        return result
    if settings.sns_topic_arn:
        subject = f"[keyfix] key owner {owner}: {outcome.status} our proposal"[:100]
        message = (f"The key owner {owner} answered keyfix's proposal for {outcome.key_arn}: {outcome.status}.\n"
                   f"Why: {outcome.reason}\n\n----- keyfix.org-outcome/1 (JSON) -----\n" + json.dumps(result, indent=1))
        from keyfix.notify import send

        result["notified"] = send(gw, settings.sns_topic_arn, subject, message, structured=False,
                                  kind="key owner's outcome", attributes={
                                      "status": {"DataType": "String", "StringValue": outcome.status},
                                      "account": {"DataType": "String", "StringValue": owner}})
    return result
