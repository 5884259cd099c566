"""One scenario, start to finish: a fresh simulated account, the break, the failure, the
event through the real Lambda handler, on-call's SNS message, the retry, and whether it
all ended as the scenario is built to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyfix.demo import state
from keyfix.demo.account import Deployment, OnCallMessage, deploy
from keyfix.demo.authorize import Authorizer, Verdict
from keyfix.demo.runtime import MotoServer, invoke_lambda
from keyfix.demo.scenario import Attempt, Expected, Scenario
from keyfix.sim.scenarios import ASG_ACCOUNT, REGION, Env

# Beyond the service-linked roles keyfix trusts by construction, the demo's deployment
# trusts one role, so that case C can be repaired; dev-alice (case B) is deliberately not
# trusted, to show the safety rule.
PRINCIPAL_ALLOWLIST = [f"arn:aws:iam::{ASG_ACCOUNT}:role/ec2-operator"]

# observer(stage, scenario name, env): called at "before-keyfix" and "after-keyfix" (tests
# read the simulated account there with their own clients).
Observer = Callable[[str, str, Env], None]


@dataclass
class Outcome:
    scenario: Scenario
    mode: str
    broken: list[str]
    first: Attempt
    report: dict[str, Any] | None = None
    messages: list[OnCallMessage] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    retry: Attempt | None = None
    before: Verdict | None = None
    after: Verdict | None = None
    problems: list[str] = field(default_factory=list)
    lambda_log: str = ""  # what the handler logged (Powertools JSON lines), shown when unexpected

    @property
    def as_expected(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        message = self.messages[0] if self.messages else None
        return {
            "scenario": self.scenario.name,
            "mode": self.mode,
            "report": self.report,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "retry_succeeded": bool(self.retry and self.retry.succeeded),
            "sns": {"subject": message.subject, "attributes": message.attributes} if message else None,
            "event": _event_summary(self.first.event),
            "writes": self.writes,
            "change_ids": [c["change_id"] for c in self.changes],
            "as_expected": self.as_expected,
            "problems": self.problems,
            **({"extra": self.scenario.extra} if self.scenario.extra else {}),
        }


def _event_summary(event: dict[str, Any] | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {"id": event["id"], "source": event["source"], "detail-type": event["detail-type"]}


def play(scenario: Scenario, server: MotoServer, mode: str, say: Callable[..., None],
         observer: Observer | None = None) -> Outcome:
    """Run one scenario; `say(kind, outcome)` shows each stage as it happens."""
    server.reset()  # every scenario gets an account of its own
    env = Env(endpoint_url=server.url)
    deployment = deploy(env)
    outcome = Outcome(scenario, mode, scenario.build(env), Attempt("", [], False, ""))
    say("broken", outcome)

    outcome.first = scenario.attempt(env, Authorizer(REGION))
    original = scenario.original_request(outcome.first)
    outcome.before = _decision_of(outcome.first, original)
    say("failure", outcome)
    if outcome.first.event is None:
        outcome.problems.append("the operation did not fail: nothing to show")
        return outcome

    _run_keyfix(outcome, env, deployment, mode, observer)
    say("keyfix", outcome)

    outcome.retry = scenario.attempt(env, Authorizer(REGION))
    if original is not None:
        outcome.after = Authorizer(REGION).decide(original)
    say("retry", outcome)
    outcome.problems = check(scenario.expected(mode), outcome)
    return outcome


def _decision_of(attempt: Attempt, original) -> Verdict | None:
    return next((v for v in attempt.verdicts if v.call == original), None)


def _run_keyfix(outcome: Outcome, env: Env, deployment: Deployment, mode: str, observer: Observer | None) -> None:
    before = state.snapshot(env)
    if observer:
        observer("before-keyfix", outcome.scenario.name, env)
    result, outcome.lambda_log = invoke_lambda(outcome.first.event,
                                               deployment.function_environment(mode, PRINCIPAL_ALLOWLIST))
    if observer:
        observer("after-keyfix", outcome.scenario.name, env)
    outcome.report = result
    outcome.writes = state.writes_between(before, state.snapshot(env))
    outcome.messages = deployment.on_call_messages()
    outcome.changes = deployment.history()


def check(expected: Expected, outcome: Outcome) -> list[str]:
    """Everything that differs from the ending the scenario is built to show."""
    problems = []
    report = outcome.report or {}
    if report.get("schema") != "keyfix.report/1":
        return [f"the handler returned no report: {report}"]
    findings = report.get("findings") or []
    causes = [f["cause"] for f in findings]
    if causes != [expected.cause]:
        problems.append(f"expected one finding {expected.cause}, got {causes}")
    fixes = [(x["kind"], x["status"], x["target_account"]) for f in findings for x in f["fixes"]]
    for want in expected.fixes:
        if (want.kind, want.status, want.target_account) not in fixes:
            problems.append(f"expected a {want.status} {want.kind} fix for {want.target_account}, got {fixes}")
    if len(fixes) != len(expected.fixes):
        problems.append(f"expected {len(expected.fixes)} fix(es), got {len(fixes)}")
    if outcome.mode == "propose" and outcome.writes:
        problems.append(f"propose mode wrote to AWS: {outcome.writes}")
    applied = [x for x in fixes if x[1] == "applied"]
    if applied and not outcome.writes:
        problems.append("a fix is reported applied but nothing changed in AWS")
    if not applied and outcome.writes:
        problems.append(f"nothing is reported applied but AWS changed: {outcome.writes}")
    succeeded = bool(outcome.retry and outcome.retry.succeeded)
    if succeeded != expected.retry_succeeds:
        problems.append(f"the retry {'succeeded' if succeeded else 'failed'}, expected the opposite")
    if expected.notifies and not outcome.messages:
        problems.append("on-call received no SNS message")
    if not expected.notifies and outcome.messages:
        problems.append(f"keyfix paged on-call about a failure that is not its business: {outcome.messages[0]}")
    return problems
