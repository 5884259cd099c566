"""`keyfix demo`: break and repair each seed scenario on a simulated AWS account.

A moto server on 127.0.0.1 (keyfix.sim.server) plays AWS, with the gap layer filling what
moto lacks (keyfix.sim.moto_gaps). For each scenario the demo builds the broken account,
performs the operation that fails there (the authorisation model decides every KMS request
the operation makes, keyfix.demo.authorize), records the failure where AWS records it, hands
the resulting EventBridge event to the very Lambda handler keyfix deploys, shows the SNS
message on-call receives, and retries the operation.

    run(names, mode, observer, show) -> [Outcome]     in-process, for tests
    main(names, mode, fmt, out, err) -> exit status   the command line
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

SCENARIO_NAMES = ("a1", "a2", "b", "c", "not-kms", "pending-deletion", "predict")
MODES = ("apply", "propose")


def _scenario(name: str) -> Any:
    from keyfix.demo.asg_scenarios import A1, A2, NotKms
    from keyfix.demo.prediction import Predict
    from keyfix.demo.volume_scenarios import B, C, PendingDeletion

    classes = {"a1": A1, "a2": A2, "b": B, "c": C, "not-kms": NotKms, "pending-deletion": PendingDeletion,
               "predict": Predict}
    return classes[name]()


def run(names: Sequence[str] | None = None, mode: str = "apply", observer: Any = None, show: Any = None) -> list[Any]:
    """Play the scenarios (all by default, in the order given, each once) and return their
    Outcomes. Starts and stops its own moto server; restores the environment it changed."""
    from keyfix.demo.play import play
    from keyfix.demo.runtime import Environment, MotoServer, base_environment, quiet_logger

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    chosen = list(dict.fromkeys(names or SCENARIO_NAMES))
    unknown = [n for n in chosen if n not in SCENARIO_NAMES]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {list(SCENARIO_NAMES)}")
    say = show or (lambda stage, outcome: None)
    env = Environment()
    server = MotoServer()
    outcomes = []
    with quiet_logger("werkzeug"):
        try:
            # Set before moto is imported (it makes a boto3 Session on import), so the caller's
            # AWS settings - an AWS_PROFILE naming no profile here - never reach it.
            env.set({**base_environment(""), "AWS_ENDPOINT_URL": None})
            env.set({"AWS_ENDPOINT_URL": server.start()})
            if hasattr(say, "intro"):
                say.intro(server.url, mode, chosen)
            for name in chosen:
                scenario = _scenario(name)
                own_flow = getattr(scenario, "play", None)  # predict starts from no failure (keyfix.demo.prediction)
                outcome = (own_flow(server, mode, say, observer) if own_flow
                           else play(scenario, server, mode, say, observer))
                outcomes.append(outcome)
                if hasattr(say, "result"):
                    say.result(outcome)
        finally:
            try:
                if server.url:
                    server.reset()  # leave no simulated account behind in this process
            finally:
                server.stop()
                env.restore()
    return outcomes


def main(names: Sequence[str] | None = None, mode: str = "apply", fmt: str = "text",
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0 when every scenario ended as it is built to show, 1 otherwise."""
    from keyfix.demo.show import Progress, TextShow

    out, err = out or sys.stdout, err or sys.stderr
    show = TextShow(out) if fmt == "text" else Progress(err)
    started = time.monotonic()
    outcomes = run(names, mode, show=show)
    if fmt == "json":
        print(json.dumps([o.to_dict() for o in outcomes], indent=2), file=out)
        failed = [o.scenario.name for o in outcomes if not o.as_expected]
        print(f"keyfix demo: {len(outcomes) - len(failed)}/{len(outcomes)} as expected"
              + (f"; not: {', '.join(failed)}" if failed else ""), file=err)
    else:
        show.summary(outcomes, time.monotonic() - started)
    return 0 if all(o.as_expected for o in outcomes) else 1
