"""What the first run of an incident leaves for later events, and a duplicate's report.

The first run stores (through `keyfix.idempotency`, as Powertools' stored result):

    {"schema": "keyfix.first-run/1", "report": <its keyfix.report/1>, "handled_at": ISO-8601}

A later event of the same incident within the window is not handled again; its report is
the first run's findings (nothing hidden), under its own `event` block, with `duplicate_of`
= the first event's id (the contract's round-2 addition). `handled_at` is not part of
keyfix.report/1: `DuplicateReport` carries it for the text output only.

A first run is remembered only when it settled the incident (`unsettled` is empty). Not
remembered, so the next event of the incident is handled afresh:
- an `undetermined` finding, a fix that `failed` or is `unverified`, or one "not attempted"
  (too little Lambda time left, this account unconfirmed): transient, the next event may well
  succeed;
- a fix `refused` by a safety rule: the refusal asks a person to change something (tag the key
  `keyfix:auto-remediate`, extend an allow-list), and the next event must see that change, not
  a 15-minute-old refusal. This is also what a forged denial keyfix cannot fix ends in, so even
  a forgery that matched the genuine incident's key could not answer for it. The cost: a storm
  of refused events is diagnosed once per event (reads only; notifications stay one per finding
  per hour, keyfix.pipeline).
Remembered: fixes applied, already present or proposed (propose mode, another account's
side, a person's decision), and findings with nothing to fix (`not-kms`,
`no-missing-permission`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyfix.report import Cause, EventRef, Finding, Fix, FixKind, FixStatus, Mode, Report

log = logging.getLogger("keyfix")

STORED_SCHEMA = "keyfix.first-run/1"
# How keyfix.remedies.apply starts the reason of a fix it skipped (time, account, an earlier step).
NOT_ATTEMPTED = "not attempted:"
UNSETTLED_STATUSES = (str(FixStatus.FAILED), str(FixStatus.UNVERIFIED), str(FixStatus.REFUSED))


@dataclass
class DuplicateReport(Report):
    """A duplicate's report. `to_dict` is Report's: handled_at stays out of the contract."""

    handled_at: str | None = None


def unsettled(report: dict[str, Any]) -> list[str]:
    """Why the run that produced `report` (a keyfix.report/1 dict) settled nothing for good;
    empty when it did."""
    why = []
    for finding in report.get("findings") or ():
        if finding.get("cause") == str(Cause.UNDETERMINED):
            why.append(f"undetermined for {finding.get('principal')} on {finding.get('key_arn')}")
        for fix in finding.get("fixes") or ():
            status, reason = fix.get("status"), fix.get("reason") or ""
            if status in UNSETTLED_STATUSES:
                why.append(f"fix {fix.get('kind')} on {fix.get('target')} {status}")
            elif reason.startswith(NOT_ATTEMPTED):
                why.append(f"fix {fix.get('kind')} on {fix.get('target')} {reason}")
    return why


def first_run_record(report: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """What the first run stores for later events of its incident."""
    handled_at = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"schema": STORED_SCHEMA, "report": report, "handled_at": handled_at}


class StoredReportError(ValueError):
    pass


def _require(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind):
        raise StoredReportError(f"{where} is {type(value).__name__}, not {getattr(kind, '__name__', kind)}")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else _require(value, str, where)


def _fix(data: Any, where: str) -> Fix:
    _require(data, dict, where)
    try:
        kind, status = FixKind(data.get("kind")), FixStatus(data.get("status"))
    except ValueError as exc:
        raise StoredReportError(f"{where}: {exc}") from None
    cli = _require(data.get("cli"), list, f"{where}.cli")
    return Fix(kind=kind, status=status,
               target_account=_require(data.get("target_account"), str, f"{where}.target_account"),
               target=_require(data.get("target"), str, f"{where}.target"),
               document=data.get("document"),
               cli=[_require(c, str, f"{where}.cli[]") for c in cli],
               reason=_optional_text(data.get("reason"), f"{where}.reason"))


def _finding(data: Any, where: str) -> Finding:
    _require(data, dict, where)
    try:
        cause = Cause(data.get("cause"))
    except ValueError as exc:
        raise StoredReportError(f"{where}: {exc}") from None
    operations = _require(data.get("operations"), list, f"{where}.operations")
    fixes = _require(data.get("fixes"), list, f"{where}.fixes")
    return Finding(cause=cause,
                   principal=_optional_text(data.get("principal"), f"{where}.principal"),
                   key_arn=_optional_text(data.get("key_arn"), f"{where}.key_arn"),
                   operations=[_require(o, str, f"{where}.operations[]") for o in operations],
                   explanation=_require(data.get("explanation"), str, f"{where}.explanation"),
                   fixes=[_fix(f, f"{where}.fixes[{i}]") for i, f in enumerate(fixes)],
                   resource=_optional_text(data.get("resource"), f"{where}.resource"),
                   predicted=_require(data.get("predicted", False), bool, f"{where}.predicted"))


def _read(stored: Any) -> tuple[dict[str, Any], str | None]:
    """The first report (dict) and when it was handled. Records written before handled_at
    existed hold the bare report."""
    _require(stored, dict, "stored result")
    if stored.get("schema") == STORED_SCHEMA:
        return _require(stored.get("report"), dict, "report"), _optional_text(stored.get("handled_at"), "handled_at")
    return stored, None


def duplicate_report(stored: Any, event: EventRef, mode: Mode) -> DuplicateReport:
    """The report of `event`, a later event of an incident the stored first run handled.

    A stored result keyfix cannot read still yields a report, never an exception: one
    `undetermined` finding saying that an earlier run handled the incident and what is wrong
    with its record (so the duplicate never looks like a clean "nothing found")."""
    first_id: str | None = None
    try:
        first, handled_at = _read(stored)
        event_block = _require(first.get("event"), dict, "report.event")
        first_id = _require(event_block.get("id"), str, "report.event.id")
        findings = [_finding(f, f"report.findings[{i}]")
                    for i, f in enumerate(_require(first.get("findings"), list, "report.findings"))]
        first_mode = Mode(first.get("mode", mode))
    except (StoredReportError, ValueError) as exc:
        log.warning("the stored first report of this incident cannot be read: %s", exc)
        return DuplicateReport(event=event, mode=mode, duplicate_of=first_id, findings=[Finding(
            cause=Cause.UNDETERMINED, principal=None, key_arn=None, operations=[],
            explanation=(f"An earlier run{f' (event {first_id})' if first_id else ''} handled this incident "
                         f"within the idempotency window, but its stored report cannot be read ({exc}); "
                         "run `keyfix handle` on this event after the window to see the findings."))])
    return DuplicateReport(event=event, mode=first_mode, findings=findings, duplicate_of=first_id,
                           handled_at=handled_at)
