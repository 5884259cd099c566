"""`keyfix scan` and the sweep's result: the keyfix.scan/1 document (docs/contract.md,
"keyfix scan"; schema src/keyfix/schemas/scan.schema.json), its text form and exit status.

    {"schema": "keyfix.scan/1", "account", "region",
     "checked": {"groups", "instances", "keys"},
     "reports": [keyfix.report/1 with event.trigger "scheduled-sweep", ...],
     "unchecked": [...], "complete": bool, "unknown_groups": [...]}   <- additions

One report per group or instance that fails or would fail (or could not be decided:
it is reported as such, and listed in `unchecked`); healthy ones are only counted.
Exit status: 2 bad input (a --group AWS does not know, no Region); 1 something fails or
would fail; 3 the scan could not complete (`unchecked` says what); 0 otherwise. A failure
found outranks an incomplete scan: either way the gate stays shut, and 1 is the one a
person must act on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from keyfix.config import Settings
from keyfix.predict.act import Run
from keyfix.predict.cursor import Cursor
from keyfix.predict.sweep import Outcome, Sweeper
from keyfix.report import EventRef, Trigger

SCHEMA = "keyfix.scan/1"
EXIT_OK, EXIT_BROKEN, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3


class ScanUsageError(ValueError):
    """Bad input or usage: exit 2."""


def scan(settings: Settings, gw: Any = None, *, names: list[str] | None = None, event: EventRef | None = None,
         store: Any = None, once: Callable[..., Any] | None = None, notify: bool = False,
         time_left: Callable[[], float] | None = None, start: Cursor | None = None,
         sleep: Callable[[float], None] | None = None, applied_by: str = "keyfix scan",
         switch: dict[str, Any] | None = None) -> tuple[Outcome, str, str]:
    """Check the account's groups (or `names`) and stopped instances; returns (outcome,
    account, region). Raises ScanUsageError for bad names or no Region."""
    from keyfix.resolve.gateway import AwsGateway

    for name in names or ():
        # 1-255 characters (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AutoScalingGroup.html)
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or any(ord(c) < 32 for c in name):
            raise ScanUsageError(f"not an Auto Scaling group name: {name!r}")
    gw = gw or AwsGateway()
    region = gw.default_region()
    if not region:
        raise ScanUsageError("no AWS Region configured (set AWS_DEFAULT_REGION or AWS_REGION)")
    gw.region = gw.region or region
    account = gw.home_account()
    outcome_if_blind = None
    if account is None:
        outcome_if_blind = Outcome(unchecked=["keyfix could not learn which account it runs in "
                                              "(sts:GetCallerIdentity failed): nothing was checked"])
        return outcome_if_blind, "", region
    if store is None:
        from keyfix.store import store_from_settings

        store = store_from_settings(settings, gw.client)
    event = event or EventRef(f"scan-{uuid.uuid4()}", "keyfix", "keyfix scan", Trigger.SCHEDULED_SWEEP)
    run = Run(settings=settings, gw=gw, account=account, region=region, event=event, store=store, once=once,
              notify=notify, applied_by=applied_by, time_left=time_left, switch=switch)
    kwargs: dict[str, Any] = {"names": names, "start": start}
    if sleep is not None:
        kwargs["sleep"] = sleep
    outcome = Sweeper(run, **kwargs).sweep()
    run.burst.send(settings.sns_topic_arn if notify else None, gw, account, f"sweep {event.id}")  # one digest
    return outcome, account, region


def document(outcome: Outcome, account: str, region: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "account": account,
        "region": region,
        "checked": {"groups": len(outcome.checked_groups), "instances": len(outcome.checked_instances),
                    "keys": len(outcome.keys)},
        "reports": [r.to_dict() for r in outcome.reports],
        "unchecked": list(outcome.unchecked),
        "complete": not outcome.unchecked and outcome.cursor is None and not outcome.unknown_groups,
        "unknown_groups": list(outcome.unknown_groups),
    }


def exit_status(outcome: Outcome) -> int:
    if outcome.unknown_groups:
        return EXIT_BAD_INPUT
    if outcome.broken:
        return EXIT_BROKEN
    if outcome.unchecked or outcome.cursor is not None:
        return EXIT_INCOMPLETE
    return EXIT_OK


def text(doc: dict[str, Any]) -> str:
    """One line per problem (group or instance, key, cause, fix, status) and a summary."""
    lines = []
    for report in doc["reports"]:
        for finding in report["findings"]:
            if finding["cause"] in ("no-missing-permission", "not-kms"):
                continue
            fixes = ", ".join(f"{fix['kind']} {fix['status']}" for fix in finding["fixes"]) or "no fix"
            when = "would fail" if finding.get("predicted") else "fails"
            lines.append(f"{finding.get('resource') or '-'}  {when}  key {finding.get('key_arn') or '-'}  "
                         f"{finding['cause']}  {fixes}")
            lines.append(f"    {finding['explanation']}")
            for fix in finding["fixes"]:
                for command in fix["cli"]:
                    lines.append(f"    $ {command}")
    checked = doc["checked"]
    lines.append(f"Checked {checked['groups']} group(s), {checked['instances']} stopped instance(s), "
                 f"{checked['keys']} key(s) in account {doc['account'] or '?'} {doc['region']}: "
                 f"{len(doc['reports'])} with a problem.")
    for name in doc.get("unknown_groups") or ():
        lines.append(f"Unknown group: {name}")
    for what in doc.get("unchecked") or ():
        lines.append(f"Not checked: {what}")
    return "\n".join(lines)
