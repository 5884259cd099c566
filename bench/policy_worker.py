"""keyfix's side of benchmark 1, run in a fresh interpreter by bench/bench.py.

    python bench/policy_worker.py CASES.jsonl [--passes R]

Times keyfix.policy.simulate.decide(doc) over every case of the corpus, in-process:

* cold: the first pass after emptying every cache the model keeps
  (keyfix.policy.caches.clear: parsed policies, interned patterns, matchers and
  Action/Resource lists with their answers, callers, and `re`'s own cache): each policy
  is validated and compiled once, as in one Lambda invocation;
* warm: R further passes, median; the caches as the code configures them (a corpus with
  more distinct policies than the parsed-policy cache holds is partly re-parsed);
* warm, cache fits: the parsed-policy cache enlarged to hold the whole corpus (only to
  show what the cache is worth; nothing in keyfix is changed on disk; --no-fit skips it).

Each timed pass also records the CPU time it used (time.process_time), which is less
sensitive than wall time to other load on the machine.

Prints one JSON object on stdout. Memory is the process's peak RSS (VmHWM
of /proc/self/status), also sampled after the imports and after loading the corpus.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import platform
import resource
import statistics
import sys
import time


def peak_rss_kb() -> int:
    """VmHWM: the peak RSS of this process image. (getrusage's ru_maxrss would also count the
    parent's RSS at fork, which Linux carries across exec.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def current_rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--no-fit", action="store_true", help="skip the passes with an enlarged policy cache")
    args = ap.parse_args()

    rss_start = current_rss_kb()
    t = time.perf_counter()
    from keyfix.policy import caches, patterns, policy, principals
    from keyfix.policy.simulate import decide

    import_s = time.perf_counter() - t
    rss_after_import = current_rss_kb()

    with open(args.cases, encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle if line.strip()]
    rss_after_load = current_rss_kb()
    n = len(docs)

    def clear_caches() -> None:
        caches.clear()  # every cache the model keeps (keyfix/policy/caches.py)
        gc.collect()

    cpu: dict[str, list[float]] = {"cold": [], "warm": []}

    def one_pass(kind: str | None = None) -> tuple[float, collections.Counter]:
        decisions: collections.Counter = collections.Counter()
        start, cpu_start = time.perf_counter(), time.process_time()
        for doc in docs:
            try:
                decisions[decide(doc)["decision"]] += 1
            except Exception as err:  # noqa: BLE001 - an invalid case counts as an error, as in the node driver
                decisions["error:" + type(err).__name__] += 1
        seconds = time.perf_counter() - start
        if kind:
            cpu[kind].append(time.process_time() - cpu_start)
        return seconds, decisions

    clear_caches()
    cold_s, decisions = one_pass("cold")
    warm = [one_pass("warm")[0] for _ in range(args.passes)]
    peak_default = peak_rss_kb()

    # How often a warm pass still parses a policy: count Policy._parse calls in one untimed pass.
    original = policy.Policy._parse.__func__
    parses = 0

    def counting(cls, doc, name):
        nonlocal parses
        parses += 1
        return original(cls, doc, name)

    lookups = sum(1 for _ in _policy_lookups(docs))
    policy.Policy._parse = classmethod(counting)
    try:
        one_pass()
    finally:
        policy.Policy._parse = classmethod(original)
    cache_info = {
        "parsed_policy_cache_size": policy._CACHE_SIZE,
        "policy_lookups_per_pass": lookups,
        "policy_parses_in_a_warm_pass": parses,
        "policy_cache_hit_rate_warm": round(1 - parses / lookups, 4) if lookups else None,
        "pattern_cache": patterns._pattern.cache_info()._asdict(),
        "matcher_cache": patterns._matcher.cache_info()._asdict(),
        "caller_cache": principals.parse_caller.cache_info()._asdict(),
    }

    # The same with a parsed-policy cache that holds the whole corpus.
    warm_fit: list[float] = []
    if not args.no_fit:
        policy._CACHE_SIZE = max(policy._CACHE_SIZE, 4 * lookups)
        clear_caches()
        one_pass()  # fill
        warm_fit = [one_pass()[0] for _ in range(args.passes)]
        policy._CACHE_SIZE = cache_info["parsed_policy_cache_size"]

    warm_s = statistics.median(warm)
    fit_s = statistics.median(warm_fit) if warm_fit else None
    out = {
        "engine": "keyfix",
        "python": platform.python_version(),
        "cases": n,
        "passes": args.passes,
        "import_s": import_s,
        "cold": {"seconds": cold_s, "cases_per_s": n / cold_s, "per_case_us": cold_s * 1e6 / n,
                 "cpu_s": cpu["cold"][0]},
        "warm": {"seconds": warm_s, "cases_per_s": n / warm_s, "per_case_us": warm_s * 1e6 / n,
                 "all_passes_s": warm, "cpu_s": statistics.median(cpu["warm"])},
        "warm_cache_fits": None if fit_s is None else {
            "seconds": fit_s, "cases_per_s": n / fit_s, "per_case_us": fit_s * 1e6 / n, "all_passes_s": warm_fit},
        "decisions": dict(sorted(decisions.items())),
        "errors": sum(v for k, v in decisions.items() if k.startswith("error:")),
        "cache": cache_info,
        "memory_kb": {
            "rss_at_start": rss_start,
            "rss_after_import": rss_after_import,
            "rss_after_loading_cases": rss_after_load,
            "peak_rss": peak_default,
            "peak_rss_with_cache_fitting_corpus": peak_rss_kb() if warm_fit else None,
        },
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def _policy_lookups(docs):
    """Every Policy.parse call decide() makes, in order (one per policy document)."""
    for doc in docs:
        for name in ("resource_policy", "session_policy"):
            if doc.get(name) is not None:
                yield name
        for name in ("identity_policies", "permission_boundaries"):
            yield from (name for _ in doc.get(name) or [])
        for name in ("scps", "rcps"):
            for level in doc.get(name) or []:
                yield from (name for _ in level)


if __name__ == "__main__":
    main()
