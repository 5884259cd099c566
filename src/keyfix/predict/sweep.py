"""The loop over every subject of an account and Region: `keyfix scan` and the scheduled sweep.

One gateway for the whole pass, so each distinct key, launch template version, image and
principal is read once however many groups share it (keyfix.resolve.gateway memoises reads,
keyfix.resolve.kms / iam memoise facts). Groups are listed a page at a time at the largest
page size, then stopped instances with a KMS-related state reason.

Limits, so that an account with thousands of groups is swept honestly:
- time: before each page and each subject, at least `reserve_seconds` of the invocation must
  be left (more in apply mode: a write needs keyfix.remedies.apply.WRITE_BUDGET_SECONDS); when
  it is not, the sweep stops and returns a `Cursor` naming the page and how much of it was
  done, which the next invocation resumes (keyfix.predict.cursor) without checking a subject
  twice;
- throttling: botocore's standard retry mode already retries throttled calls; when AWS still
  throttles, the sweep sleeps (1, 2, 4, 8 s, never past its time) and asks again; what stays
  throttled is reported as not checked;
- what could not be listed or read is reported (`unchecked`), never skipped silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyfix.predict.act import Run, handle_subject
from keyfix.predict.cursor import Cursor
from keyfix.predict.subjects import Page, Subject, group_page, instance_page, recent_kms_failures
from keyfix.report import Mode, Report
from keyfix.resolve.gateway import AwsError

log = logging.getLogger("keyfix")

RESERVE_SECONDS = 5.0
BACKOFF_DELAYS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class Outcome:
    reports: list[Report] = field(default_factory=list)
    checked_groups: list[str] = field(default_factory=list)
    checked_instances: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    unchecked: list[str] = field(default_factory=list)
    unknown_groups: list[str] = field(default_factory=list)  # named with --group, not found
    broken: bool = False  # something fails or would fail
    cursor: Cursor | None = None  # where the next invocation carries on; None: the pass is complete
    backoffs: list[float] = field(default_factory=list)  # the sleeps throttling cost


class Throttled(Exception):
    pass


class Sweeper:
    def __init__(self, run: Run, *, names: list[str] | None = None, include_instances: bool = True,
                 read_activities: bool = True, start: Cursor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.run = run
        self.names = list(dict.fromkeys(names)) if names else None
        self.include_instances = include_instances and not self.names
        self.read_activities = read_activities
        self.start = start or Cursor()
        self.sleep = sleep
        self.outcome = Outcome()
        self.failures: dict[str, Any] = {}
        from keyfix.remedies.apply import WRITE_BUDGET_SECONDS

        apply = run.settings.mode == Mode.APPLY and run.writes
        self.reserve = RESERVE_SECONDS + (WRITE_BUDGET_SECONDS if apply else 0.0)

    # -- time and throttling -------------------------------------------------------------

    def _time_is_short(self) -> bool:
        return self.run.time_left is not None and self.run.time_left() < self.reserve

    def _backoff(self, attempt: int) -> bool:
        """Sleep before attempt `attempt + 1`; False when out of attempts or of time."""
        if attempt >= len(BACKOFF_DELAYS):
            return False
        delay = BACKOFF_DELAYS[attempt]
        if self.run.time_left is not None and self.run.time_left() - delay < self.reserve:
            return False
        self.outcome.backoffs.append(delay)
        self.sleep(delay)
        return True

    def _listing(self, fetch: Callable[[], Any], what: str) -> Any:
        attempt = 0
        while True:
            try:
                return fetch()
            except AwsError as err:
                if err.throttled and self._backoff(attempt):
                    attempt += 1
                    continue
                raise Throttled(f"{what}: {err.reason()}") if err.throttled else err

    # -- the pass ------------------------------------------------------------------------

    def sweep(self) -> Outcome:
        out = self.outcome
        if self.read_activities and self.start.phase == "groups":
            try:
                self.failures = self._listing(
                    lambda: recent_kms_failures(self.run.gw, self.run.region, self.run.account), "scaling activities")
            except (AwsError, Throttled) as err:
                out.unchecked.append(f"recent scaling activities could not be read ({_why(err)}): failed launches "
                                     "that emitted no event were checked as predictions only")
        if self.start.phase == "groups":
            if not self._pages("groups", self.start.token, self.start.offset):
                return out
            start_token, offset = None, 0
        else:
            start_token, offset = self.start.token, self.start.offset
        if self.include_instances:
            self._pages("instances", start_token, offset)
        return out

    def _fetch(self, phase: str, token: str | None) -> Page:
        if phase == "groups":
            return group_page(self.run.gw, self.run.region, token, names=self.names)
        return instance_page(self.run.gw, self.run.region, self.run.account, token)

    def _pages(self, phase: str, token: str | None, offset: int) -> bool:
        """Every page of `phase` from `token`; False when the pass stopped before its end."""
        out = self.outcome
        while True:
            if self._time_is_short():
                out.cursor = Cursor(phase, token, offset)
                out.unchecked.append(f"time ran out: {_what(phase)} from this point on were not checked in this "
                                     "invocation")
                return False
            try:
                page = self._listing(lambda: self._fetch(phase, token), f"listing {_what(phase)}")
            except AwsError as err:
                if phase == "groups" and self.names and err.code == "ValidationError":
                    out.unknown_groups.extend(self.names)
                    return True
                out.unchecked.append(f"{_what(phase)} could not be listed ({err.reason()}): none of them "
                                     "from this point on were checked")
                return False
            except Throttled as err:
                out.cursor = Cursor(phase, token, offset)
                out.unchecked.append(f"{_what(phase)} could not be listed: AWS kept throttling ({err}); the rest "
                                     "was not checked")
                return False
            if phase == "groups" and self.names:
                # DescribeAutoScalingGroups leaves out names it does not know, without an error.
                found = {s.name for s in page.subjects}
                out.unknown_groups.extend(n for n in self.names if n not in found and n not in out.unknown_groups)
            for index, subject in enumerate(page.subjects):
                if index < offset:
                    continue
                if self._time_is_short():
                    out.cursor = Cursor(phase, token, index)
                    out.unchecked.append(f"time ran out: {len(page.subjects) - index} {_what(phase)} of this page "
                                         "and any after it were not checked in this invocation")
                    return False
                self._subject(subject)
            offset = 0
            if page.next_token is None:
                return True
            token = page.next_token

    def _subject(self, subject: Subject) -> None:
        out = self.outcome
        if subject.kind == "group" and subject.name in self.failures:
            from dataclasses import replace

            subject = replace(subject, failure=self.failures[subject.name])
        attempt = 0
        while True:
            before = len(self.run.gw.throttled)
            try:
                report, checked = handle_subject(self.run, subject)
            except AwsError as err:  # readers report their own; this is an AWS error outside them
                out.unchecked.append(f"{subject.kind} {subject.name}: {err.reason()}")
                return
            except Exception as exc:  # noqa: BLE001 - one subject's bug must not end the pass
                from keyfix.idempotency import InProgressElsewhere

                if isinstance(exc, InProgressElsewhere):  # an event of the same failure is being handled
                    (out.checked_groups if subject.kind == "group" else out.checked_instances).append(subject.name)
                    return
                log.exception("internal error checking %s %s", subject.kind, subject.name)
                out.unchecked.append(f"{subject.kind} {subject.name}: keyfix hit an internal error "
                                     f"({type(exc).__name__}) and did not check it")
                return
            if len(self.run.gw.throttled) == before or not self._backoff(attempt):
                break
            attempt += 1
            # Facts derived from a throttled read (a key without its policy, say) are not the
            # key's: forget them; the reads that succeeded stay memoised in the gateway.
            self.run.gw.memo.clear()
        throttled = self.run.gw.throttled[before:]
        if throttled:
            calls = ", ".join(dict.fromkeys(f"{s}:{o}" for s, o in throttled))
            out.unchecked.append(f"{subject.kind} {subject.name}: AWS kept throttling ({calls}); what those reads "
                                 "would have shown was not checked")
        (out.checked_groups if subject.kind == "group" else out.checked_instances).append(subject.name)
        if checked is not None:
            out.keys.update(k for k, facts in checked.situation.keys.items() if facts.state is not None)
            if checked.healthy:
                return
            out.broken |= checked.broken
            if checked.undetermined and not checked.broken:
                out.unchecked.append(f"{subject.kind} {subject.name}: could not be decided (see its report)")
        elif not report.findings:
            return
        else:
            out.broken |= any(str(f.cause) not in ("no-missing-permission", "not-kms", "undetermined")
                              for f in report.findings)
        out.reports.append(report)


def _what(phase: str) -> str:
    return "Auto Scaling groups" if phase == "groups" else "stopped instances"


def _why(err: Exception) -> str:
    return err.reason() if isinstance(err, AwsError) else str(err)
