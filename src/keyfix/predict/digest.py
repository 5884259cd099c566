"""One message for a burst: a sweep, or a key change touching many groups (issue #12).

A sweep or key change gathers the reports it would have paged on-call with into a `Burst`
and sends them together at the end (`Burst.send`): one report as the usual message
(keyfix.notify.publish), several as one digest (keyfix.notify.publish_digest, split only over
SNS's 256 KiB). Forty groups broken by one key edit are one page, not forty.

The notification windows are kept (keyfix.pipeline._worth_notifying: one notification per
finding fingerprint, account x principal/group x key x cause, per hour, whichever of an event,
the sweep or a key change saw it first): a report joins the burst only when one of its
findings is fresh, or was made fresh by an earlier report of the same burst. The second case
matters because groups that share their service-linked role and key share a fingerprint: the
first group opens the window, and its siblings belong in the same digest rather than being
dropped. A finding an event already told within the hour keeps every report of it out.
A write is always told, as for an event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from keyfix.report import Report

log = logging.getLogger("keyfix")


@dataclass
class Burst:
    reports: list[Report] = field(default_factory=list)
    # Fingerprints this burst found fresh (or told by a write): a sibling report sharing one joins.
    opened: set[str] = field(default_factory=set)

    def consider(self, report: Report, changes: list[Any], store: Any, incident: Any) -> bool:
        """Add `report` if on-call should hear of it; True when added. Opens the windows of
        its findings (through _worth_notifying) exactly as an event's run does."""
        from keyfix.pipeline import _fingerprint, _worth_notifying

        prints = {_fingerprint(incident, f, f.cause) for f in report.findings}
        fresh = _worth_notifying(report, changes, store, incident)
        if fresh:
            self.opened |= prints
        elif not (prints & self.opened):
            return False
        if all(r is not report for r in self.reports):
            self.reports.append(report)
        return True

    def send(self, topic_arn: str | None, gw: Any, account: str, title: str) -> bool:
        """Tell on-call once; True when nothing failed (or there was nothing to tell)."""
        if not topic_arn or not self.reports:
            return True
        from keyfix.notify import publish, publish_digest

        if len(self.reports) == 1:
            return publish(self.reports[0], topic_arn, gw, account=account)
        log.info("one digest for %d reports (%s)", len(self.reports), title)
        return publish_digest(self.reports, topic_arn, gw, account=account, title=title)
