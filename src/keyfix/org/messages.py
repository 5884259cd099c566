"""The two events keyfix puts on another account's bus, built and parsed strictly.

A **proposal** (caller -> key owner): "account S's service-linked role was denied these
operations on your key K; here is what keyfix in S proposes". An **outcome** (owner -> caller):
what the owner's keyfix did with it. Both are custom events (`source` keyfix.org) sent with
PutEvents; the entry has no account field, AWS fills in the envelope's `account` with the
account that made the call
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html,
envelope fields: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html).

Everything in `detail` is the sender's claim. The owner side takes the sending account only
from the envelope, and builds what it writes itself (keyfix.org.owner_side); the proposal's
statements are shown to a person, never written.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

SOURCE = "keyfix.org"
PROPOSAL = "keyfix key-policy proposal"
OUTCOME = "keyfix proposal outcome"
PROPOSAL_SCHEMA = "keyfix.proposal/1"
OUTCOME_SCHEMA = "keyfix.proposal-outcome/1"
OUTCOME_STATUSES = ("applied", "already-present", "proposed", "refused", "failed", "unverified")

# PutEvents takes at most 256 KB per call (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html);
# a proposal is a few KB, so anything near the limit is not keyfix's.
MAX_DETAIL_BYTES = 64 * 1024
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_ID = re.compile(r"[A-Za-z0-9-]{1,64}", re.ASCII)
_OPERATION = re.compile(r"kms:[A-Za-z]{1,64}", re.ASCII)
_MAX_TEXT = 2000


class OrgEventError(ValueError):
    """An organisation event keyfix cannot take; the message says which part and why."""


@dataclass(frozen=True)
class Envelope:
    """What AWS set on the delivered event: never the sender's claim."""

    id: str
    account: str
    region: str
    detail_type: str


@dataclass(frozen=True)
class Proposal:
    envelope: Envelope
    proposal_id: str
    claimed_account: str | None  # detail.sender_account: a claim, compared with the envelope
    key_arn: str
    principal: str  # the denied service-linked role, as claimed
    operations: tuple[str, ...]
    statements: tuple[dict[str, Any], ...]  # what the sender proposes: shown to a person only
    report_event_id: str | None
    reply_bus: str | None


@dataclass(frozen=True)
class Outcome:
    envelope: Envelope
    proposal_id: str
    key_arn: str
    status: str
    reason: str
    statements: tuple[dict[str, Any], ...] = field(default_factory=tuple)


# -- building --------------------------------------------------------------------------------

def proposal_entry(*, bus_arn: str, sender_account: str, key_arn: str, principal: str, operations: list[str],
                   statements: list[dict[str, Any]], report_event_id: str | None, reply_bus: str | None) -> dict:
    detail = {"schema": PROPOSAL_SCHEMA, "proposal_id": str(uuid.uuid4()), "sender_account": sender_account,
              "key_arn": key_arn, "principal": principal, "operations": list(operations),
              "statements": statements, "report_event_id": report_event_id, "reply_bus": reply_bus}
    return _entry(bus_arn, PROPOSAL, detail)


def outcome_entry(*, bus_arn: str, proposal_id: str, key_arn: str, status: str, reason: str,
                  statements: list[dict[str, Any]] | None = None) -> dict:
    if status not in OUTCOME_STATUSES:
        raise ValueError(f"outcome status {status!r} is not one of {OUTCOME_STATUSES}")
    detail = {"schema": OUTCOME_SCHEMA, "proposal_id": proposal_id, "key_arn": key_arn, "status": status,
              "reason": reason[:_MAX_TEXT], "statements": statements or []}
    return _entry(bus_arn, OUTCOME, detail)


def _entry(bus_arn: str, detail_type: str, detail: dict) -> dict:
    text = json.dumps(detail, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_DETAIL_BYTES:
        raise OrgEventError(f"the {detail_type} would be over {MAX_DETAIL_BYTES} bytes; not sent")
    return {"EventBusName": bus_arn, "Source": SOURCE, "DetailType": detail_type, "Detail": text}


# -- parsing ---------------------------------------------------------------------------------

def is_org_event(raw: Any) -> bool:
    """Whether an incoming event is one of keyfix's organisation events (by its envelope)."""
    return isinstance(raw, dict) and raw.get("source") == SOURCE and raw.get("detail-type") in (PROPOSAL, OUTCOME)


def envelope(raw: Any) -> Envelope:
    if not is_org_event(raw):
        raise OrgEventError("not a keyfix organisation event (source keyfix.org)")
    account, region, event_id = raw.get("account"), raw.get("region"), raw.get("id")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise OrgEventError("the event's envelope carries no 12-digit account")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", region, re.ASCII):
        raise OrgEventError("the event's envelope carries no AWS Region")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise OrgEventError("the event's envelope carries no id")
    return Envelope(event_id, account, region, raw["detail-type"])


def parse_proposal(raw: Any) -> Proposal:
    env = envelope(raw)
    if env.detail_type != PROPOSAL:
        raise OrgEventError(f"a {env.detail_type!r} is not a proposal")
    detail = _detail(raw, PROPOSAL_SCHEMA)
    claimed = detail.get("sender_account")
    if claimed is not None and not (isinstance(claimed, str) and _ACCOUNT.fullmatch(claimed)):
        raise OrgEventError("detail.sender_account is not a 12-digit account id")
    operations = detail.get("operations")
    if not isinstance(operations, list) or not operations or len(operations) > 32 or \
            not all(isinstance(op, str) and _OPERATION.fullmatch(op) for op in operations):
        raise OrgEventError("detail.operations must list the denied kms:Operation names")
    statements = detail.get("statements", [])
    if not isinstance(statements, list) or len(statements) > 8 or not all(isinstance(s, dict) for s in statements):
        raise OrgEventError("detail.statements must be a list of at most 8 statements")
    return Proposal(env, _text(detail, "proposal_id", _ID), claimed, _text(detail, "key_arn"),
                    _text(detail, "principal"), tuple(dict.fromkeys(operations)), tuple(statements),
                    _optional_text(detail, "report_event_id"), _optional_text(detail, "reply_bus"))


def parse_outcome(raw: Any) -> Outcome:
    env = envelope(raw)
    if env.detail_type != OUTCOME:
        raise OrgEventError(f"a {env.detail_type!r} is not an outcome")
    detail = _detail(raw, OUTCOME_SCHEMA)
    status = detail.get("status")
    if status not in OUTCOME_STATUSES:
        raise OrgEventError(f"detail.status must be one of {', '.join(OUTCOME_STATUSES)}")
    statements = detail.get("statements", [])
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise OrgEventError("detail.statements must be a list of statements")
    reason = detail.get("reason", "")
    if not isinstance(reason, str):
        raise OrgEventError("detail.reason must be text")
    return Outcome(env, _text(detail, "proposal_id", _ID), _text(detail, "key_arn"), status, reason[:_MAX_TEXT],
                   tuple(statements))


def _detail(raw: dict, schema: str) -> dict:
    detail = raw.get("detail")
    if not isinstance(detail, dict):
        raise OrgEventError("the event has no detail object")
    if len(json.dumps(detail, default=str).encode("utf-8")) > MAX_DETAIL_BYTES:
        raise OrgEventError(f"the detail is over {MAX_DETAIL_BYTES} bytes")
    if detail.get("schema") != schema:
        raise OrgEventError(f"detail.schema must be {schema!r}")
    return detail


def _text(detail: dict, name: str, pattern: re.Pattern | None = None) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or \
            (pattern is not None and not pattern.fullmatch(value)):
        raise OrgEventError(f"detail.{name} is missing or malformed")
    return value


def _optional_text(detail: dict, name: str) -> str | None:
    return None if detail.get(name) is None else _text(detail, name)
