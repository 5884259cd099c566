"""What the person running the demo reads: each stage as it happens, then a summary table.
Text goes to `out` and is flushed at every stage, so progress is visible while it runs."""

from __future__ import annotations

import shlex
import textwrap
from typing import Any, TextIO

from keyfix.demo.play import PRINCIPAL_ALLOWLIST, Outcome
from keyfix.demo.scenario import Attempt

WIDTH = 100
BODY_LINES = 24  # of the SNS body's readable part; the report JSON follows it
LONG_LINE = 160  # CLI commands in the body carry whole policies: cut, they are in the report


class TextShow:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str = "", indent: int = 0) -> None:
        prefix = " " * indent
        wrapped = textwrap.wrap(text, WIDTH - indent, subsequent_indent="    ", break_long_words=False,
                                break_on_hyphens=False) or [""]
        for part in wrapped:
            print(prefix + part, file=self.out)

    def raw(self, text: str, indent: int = 0) -> None:
        print(" " * indent + text, file=self.out)

    def intro(self, url: str, mode: str, names: list[str]) -> None:
        self.line(f"keyfix demo: a simulated AWS (moto) on {url}, mode {mode}, scenarios {', '.join(names)}")
        settings = (f"The Lambda handler runs with KEYFIX_MODE={mode}, keys opted in by the tag "
                    f"keyfix:auto-remediate=true, KEYFIX_PRINCIPAL_ALLOWLIST={','.join(PRINCIPAL_ALLOWLIST)}")
        if mode == "apply":
            self.line(settings + " (ec2-operator is trusted so case C can be repaired; dev-alice is not, to show "
                      "the safety rule).")
        else:
            self.line(settings + ". In propose mode keyfix writes nothing: every fix is proposed and every retry "
                      "still fails.")
        self.out.flush()

    def __call__(self, stage: str, outcome: Outcome) -> None:
        getattr(self, "_" + stage)(outcome)
        self.out.flush()

    def _broken(self, o: Outcome) -> None:
        s = o.scenario
        self.raw("")
        self.raw(f"== {s.name}: {s.title} (seed {s.seed}) " + "=" * max(3, WIDTH - 12 - len(s.name + s.title + s.seed)))
        self.line("What is broken:", 0)
        for text in o.broken:
            self.line("- " + text, 2)

    def _attempt(self, label: str, attempt: Attempt) -> None:
        self.line(f"{label}: {attempt.operation}", 0)
        for verdict in attempt.verdicts:
            call = verdict.call
            self.line(f"{call.action} by {_short(call.principal)} -> {verdict.describe()}", 4)
        self.line(("OK   " if attempt.succeeded else "FAIL ") + attempt.outcome, 2)
        for record in attempt.records:
            self.line("recorded: " + record, 4)

    def _failure(self, o: Outcome) -> None:
        for note in o.scenario.notes:
            self.line("Meanwhile: " + note, 0)
        self._attempt("Attempt", o.first)
        event = o.first.event
        if event:
            self.line(f"EventBridge delivers \"{event['detail-type']}\" from {event['source']} (id {event['id']})", 0)
            for key, value in _key_fields(event):
                self.line(f"{key}: {value}", 4)

    def _keyfix(self, o: Outcome) -> None:
        report = o.report or {}
        self.line(f"keyfix (keyfix.handler.lambda_handler, mode {report.get('mode', o.mode)}):", 0)
        for finding in report.get("findings", []):
            self.line(f"finding: {finding['cause']} - {finding['explanation']}", 2)
            for fix in finding["fixes"]:
                self.line(f"fix [{fix['status']}] {fix['kind']} in account {fix['target_account']} "
                          f"on {fix['target']}", 4)
                if fix.get("reason"):
                    self.line("reason: " + fix["reason"], 6)
                if fix["status"] != "applied":
                    for command in fix["cli"]:
                        self.line("$ " + command, 6)
        self.line("AWS writes: " + ("; ".join(o.writes) if o.writes else "none"), 2)
        for change in o.changes:
            self.line(f"audit: change {change['change_id']} ({change['kind']}); undo with "
                      f"`keyfix rollback {shlex.quote(str(change['change_id']))}`", 2)
        why = o.scenario.expected(o.mode).why
        if why:
            self.line("Why it ends here: " + why, 2)
        for message in o.messages:
            self.line("On-call receives (SNS -> SQS, unwrapped from the SNS JSON envelope):", 0)
            self.line("Subject: " + message.subject, 4)
            readable = message.body.split("\n\n----- keyfix.report/1 (JSON)", 1)[0].splitlines()
            for text in readable[:BODY_LINES]:
                self.raw("| " + (text if len(text) <= LONG_LINE else text[: LONG_LINE - 4] + " ..."), 4)
            if len(readable) > BODY_LINES:
                self.raw(f"| ... ({len(readable) - BODY_LINES} more lines)", 4)
            self.raw("| (then the report as JSON)", 4)
            self.line("attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(message.attributes.items())), 4)

    def _retry(self, o: Outcome) -> None:
        if o.retry:
            self._attempt("Retry", o.retry)
        if o.before and o.after:
            self.line(f"Decision for {o.before.call.action} by {_short(o.before.call.principal)} on the key:", 0)
            before, after = getattr(o.scenario, "decision_labels", ("before keyfix", "after keyfix"))
            self.line(f"{before}: " + o.before.describe(), 4)
            self.line(f"{after}:  " + o.after.describe(), 4)

    def result(self, o: Outcome) -> None:
        if o.as_expected:
            self.line(f"Result: as expected ({_ending(o)})")
        else:
            self.line("Result: NOT as expected")
            for problem in o.problems:
                self.line("- " + problem, 2)
            if o.lambda_log:
                self.line("The Lambda logged:", 2)
                for text in o.lambda_log.splitlines():
                    self.raw(text, 4)
        self.out.flush()

    def summary(self, outcomes: list[Outcome], seconds: float) -> None:
        self.raw("")
        rows = [("scenario", "cause", "fixes", "retry", "as expected")]
        for o in outcomes:
            findings = (o.report or {}).get("findings", [])
            fixes = ", ".join(f"{x['kind']}:{x['status']}" for f in findings for x in f["fixes"]) or "-"
            rows.append((o.scenario.name, ",".join(f["cause"] for f in findings) or "-", fixes,
                         "succeeded" if o.retry and o.retry.succeeded else "failed",
                         "yes" if o.as_expected else "NO"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for i, row in enumerate(rows):
            self.raw("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
            if i == 0:
                self.raw("  ".join("-" * w for w in widths))
        ok = sum(o.as_expected for o in outcomes)
        self.raw(f"{ok}/{len(outcomes)} scenarios ended as expected in {seconds:.1f} s; the simulated AWS is stopped.")
        self.out.flush()


def _short(principal: str) -> str:
    """user/dev-alice, assumed-role/ec2-operator/operator-session: the account is the demo's."""
    resource = principal.split(":", 5)[5] if principal.startswith("arn:") else principal
    return resource.replace("role/aws-service-role/autoscaling.amazonaws.com/", "role/")


def _ending(o: Outcome) -> str:
    if getattr(o.scenario, "ending", None):  # a scenario that tells its own ending (predict)
        return o.scenario.ending
    if o.retry and o.retry.succeeded:
        return "repaired, the retry succeeds"
    return "nothing written, the retry still fails" if o.mode == "propose" or not o.writes else "the retry still fails"


def _key_fields(event: dict[str, Any]) -> list[tuple[str, Any]]:
    detail = event.get("detail") or {}
    wanted = ("AutoScalingGroupName", "StatusCode", "StatusMessage", "EC2InstanceId", "instance-id", "state", "event",
              "result", "cause", "eventName", "errorCode", "errorMessage")
    fields = [(k, detail[k]) for k in wanted if k in detail]
    if "userIdentity" in detail:
        fields.insert(0, ("userIdentity.arn", detail["userIdentity"].get("arn")))
    return fields


class Progress:
    """With --format json: one line per stage on stderr."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def __call__(self, stage: str, outcome: Outcome) -> None:
        print(f"keyfix demo: {outcome.scenario.name}: {stage}", file=self.err, flush=True)

    def result(self, o: Outcome) -> None:
        print(f"keyfix demo: {o.scenario.name}: {'as expected' if o.as_expected else 'NOT as expected'}",
              file=self.err, flush=True)
