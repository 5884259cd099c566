"""keyfix's KMS authorisation model against iam-simulate, on thousands of generated cases.

The corpus (strategies.py) is the same on every run: 3/8 of it drawn by derandomized
hypothesis (simple and boundary cases first, then mutations of them), the rest built by
the same draw functions from seeded random.Random, for breadth. All of them go to the oracle in one node process; keyfix decides each with
keyfix.policy.simulate.decide. The decisions must agree, or the disagreement must be
explained by an entry of known_differences.py, which is only accepted when its rewrite
of the case makes the two engines agree exactly.

Environment:
  KEYFIX_DIFF_CASES  number of cases (default 8000; the brief asks for >= 5000)
  KEYFIX_DIFF_DUMP   write the corpus there as JSON lines (input for bench_driver.mjs)
  KEYFIX_DIFF_REPORT write every disagreement there as JSON lines (case, both answers, class)
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import time

import pytest

from tests.support.gateway_hooks import announce

import known_differences as kd
import strategies

N_CASES = int(os.environ.get("KEYFIX_DIFF_CASES", "8000"))
SHOW = 5  # disagreements printed in full


def _decide():
    from keyfix.policy.simulate import decide

    return decide


def _keyfix(decide, case: dict) -> dict:
    try:
        return decide(case)
    except Exception as err:  # a crash is a finding, reported with the case
        return {"decision": None, "error": f"{type(err).__name__}: {err}"}


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    started = time.monotonic()
    drawn = strategies.generate_cases(N_CASES * 3 // 8)
    seen = {json.dumps(c, sort_keys=True) for c in drawn}
    built = [c for c in strategies.random_cases(N_CASES - len(drawn) + 200) if json.dumps(c, sort_keys=True) not in seen]
    cases = drawn + built[: N_CASES - len(drawn)]
    print(
        f"\ndifferential: {len(cases)} cases ({len(drawn)} from hypothesis, {len(cases) - len(drawn)} from seeded random) "
        f"in {time.monotonic() - started:.1f}s"
    )
    dump = os.environ.get("KEYFIX_DIFF_DUMP")
    if dump:
        with open(dump, "w", encoding="utf-8") as handle:
            for case in cases:
                handle.write(json.dumps(case) + "\n")
    return cases


def _compact(case: dict) -> str:
    return json.dumps(case, separators=(",", ":"), sort_keys=True)


def _attempts(case: dict, keyfix: dict, oracle_decision: str) -> list[list[kd.Difference]]:
    """Each entry that can explain these decisions alone, then combinations of the
    entries whose shape the case has, smallest first (several causes can combine into
    a decision pair none of them produces alone); the first that works is reported."""
    attempts = [[d] for d in kd.ALL_DIFFERENCES if d.admits(case, keyfix, oracle_decision)]
    relevant = [d for d in kd.ALL_DIFFERENCES if d.relevant(case, keyfix)]
    for size in range(2, len(relevant) + 1):
        attempts += [list(combo) for combo in itertools.combinations(relevant, size)]
    return attempts[:64]


def _apply(views, case: dict) -> dict:
    for view in views:
        case = view(case)
    return case


def classify(disagreements, oracle, decide):
    """disagreements: [(index, case, keyfix_result, oracle_decision)] ->
    ({index: [names]}, {index: [candidate names]}) for explained / unexplained ones."""
    plans = []  # (index, attempt, oracle_case or None, keyfix_case or None)
    for index, case, keyfix, oracle_decision in disagreements:
        for attempt in _attempts(case, keyfix, oracle_decision):
            oviews = [d.oracle_view for d in attempt if d.oracle_view]
            kviews = [d.keyfix_view for d in attempt if d.keyfix_view]
            plans.append(
                (index, attempt, _apply(oviews, case) if oviews else None, _apply(kviews, case) if kviews else None)
            )
    oracle_cases = [p[2] for p in plans if p[2] is not None]
    oracle_answers = iter(oracle.run(oracle_cases)) if oracle_cases else iter(())

    by_index = {index: (case, keyfix, decision) for index, case, keyfix, decision in disagreements}
    explained: dict[int, list[str]] = {}
    for index, attempt, oracle_case, keyfix_case in plans:
        answer = next(oracle_answers)["decision"] if oracle_case is not None else None
        if index in explained:
            continue
        _, keyfix, oracle_decision = by_index[index]
        theirs = answer if oracle_case is not None else oracle_decision
        ours = _keyfix(decide, keyfix_case)["decision"] if keyfix_case is not None else keyfix["decision"]
        if ours == theirs and ours is not None:
            explained[index] = [d.name for d in attempt]
    unexplained = {
        index: [d.name for d in kd.ALL_DIFFERENCES if d.applies(case)]
        for index, (case, _, _) in by_index.items()
        if index not in explained
    }
    return explained, unexplained


def test_keyfix_agrees_with_iam_simulate(corpus, oracle, request):
    decide = _decide()
    assert len(corpus) >= 5000 or "KEYFIX_DIFF_CASES" in os.environ, f"only {len(corpus)} cases drawn"

    started = time.monotonic()
    answers = oracle.run(corpus)
    oracle_seconds = time.monotonic() - started

    # The corpus must be something the oracle can evaluate as AWS would: valid
    # policies, and only request-context keys AWS sends for the action.
    errors = [(i, a["error"]) for i, a in enumerate(answers) if a["error"]]
    assert not errors, f"iam-simulate rejected {len(errors)} cases, e.g. {errors[:3]}:\n" + "\n".join(
        _compact(corpus[i]) for i, _ in errors[:3]
    )
    ignored = [(i, a["ignored_context_keys"]) for i, a in enumerate(answers) if a["ignored_context_keys"]]
    assert not ignored, f"{len(ignored)} cases carry context keys AWS does not send for their action: {ignored[:5]}"

    started = time.monotonic()
    ours = [_keyfix(decide, case) for case in corpus]
    keyfix_seconds = time.monotonic() - started

    crashes = [(i, r["error"]) for i, r in enumerate(ours) if r.get("error")]
    disagreements = [
        (i, corpus[i], ours[i], answers[i]["decision"])
        for i in range(len(corpus))
        if not ours[i].get("error") and ours[i]["decision"] != answers[i]["decision"]
    ]
    explained, unexplained = classify(disagreements, oracle, decide)

    report = os.environ.get("KEYFIX_DIFF_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            for index, case, mine, theirs in disagreements:
                entry = {"index": index, "keyfix": mine, "oracle": theirs, "explained_by": explained.get(index), "case": case}
                handle.write(json.dumps(entry) + "\n")
            for index, error in crashes:
                handle.write(json.dumps({"index": index, "keyfix_error": error, "case": corpus[index]}) + "\n")

    agreed = len(corpus) - len(disagreements) - len(crashes)
    by_class = collections.Counter(" + ".join(names) for names in explained.values())
    bug_names = {d.name for d in kd.KEYFIX_BUGS}
    bugs = {i: names for i, names in explained.items() if bug_names & set(names)}
    decisions = collections.Counter(a["decision"] for a in answers)

    print(f"differential: {len(corpus)} cases run, {agreed} agreed, {len(disagreements)} disagreed, {len(crashes)} keyfix crashes")
    print(f"differential: oracle (iam-simulate {oracle.version}) {oracle_seconds:.1f}s, keyfix {keyfix_seconds:.1f}s")
    print(f"differential: oracle decisions {dict(decisions)}")
    undecided_names = {d.name for d in kd.UNDECIDED}
    for name, count in sorted(by_class.items()):
        parts = set(name.split(" + "))
        kind = "KEYFIX BUG" if bug_names & parts else "UNDECIDED" if undecided_names & parts else "known difference"
        print(f"differential:   {count:5d}  {kind}: {name}")
    print(f"differential:   {len(unexplained):5d}  unexplained")
    # The headline, in the default (-q) CI output too, not only with -s.
    announce(request, f"differential: {len(corpus)} cases, {agreed} agreed, {len(disagreements) - len(unexplained)} "
                      f"disagreements explained by documented classes, {len(unexplained)} unexplained, "
                      f"{len(crashes)} keyfix crashes")

    # The corpus has to exercise every outcome and the situations keyfix is about;
    # otherwise agreement would mean little.
    for decision in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied"):
        assert decisions[decision] >= len(corpus) * 0.05, f"corpus too thin: {decisions}"
    cross = sum(1 for c in corpus if kd.is_cross_account(c))
    slr = sum(1 for c in corpus if kd.is_service_linked_role(c))
    assert cross >= len(corpus) * 0.2 and slr >= len(corpus) * 0.15, (cross, slr)

    problems = []
    for index, error in crashes[:SHOW]:
        problems.append(f"keyfix crashed: {error}\n  case: {_compact(corpus[index])}")
    for index, names in list(bugs.items())[:SHOW]:
        case, mine, theirs = corpus[index], ours[index], answers[index]["decision"]
        problems.append(
            f"known keyfix bug {names}: keyfix {mine['decision']}, iam-simulate {theirs} (AWS agrees with iam-simulate)\n"
            f"  case: {_compact(case)}"
        )
    for index, tried in list(unexplained.items())[:SHOW]:
        case, mine, theirs = corpus[index], ours[index], answers[index]["decision"]
        problems.append(
            f"UNEXPLAINED: keyfix {mine['decision']} (decisive {mine.get('decisive')}, missing {mine.get('missing')}), "
            f"iam-simulate {theirs}; known differences whose shape fits: {tried or 'none'}\n"
            f"  case: {_compact(case)}"
        )
    assert not (crashes or bugs or unexplained), (
        f"{len(crashes)} keyfix crashes, {len(bugs)} disagreements from known keyfix bugs, "
        f"{len(unexplained)} unexplained disagreements; first ones:\n\n" + "\n\n".join(problems)
    )
