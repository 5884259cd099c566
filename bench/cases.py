"""The benchmark corpus: N KMS simulate documents, generated once, saved as JSON lines.

The cases come from tests/differential/strategies.py (the differential test's own
generator, `random_cases`: the hypothesis draw functions driven by a seeded
random.Random), so they are deterministic for a given (n, seed, strategies.py) and
representative of what the differential test feeds both engines. The file is rebuilt
only when one of those three changes (bench/out/cases-<n>.meta.json records them).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
STRATEGIES = ROOT / "tests" / "differential" / "strategies.py"
DEFAULT_SEED = "keyfix-bench"


def corpus(n: int, seed: str = DEFAULT_SEED) -> Path:
    """Path of the JSONL corpus of `n` distinct cases (generated if missing or stale)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"cases-{n}.jsonl"
    meta_path = OUT / f"cases-{n}.meta.json"
    want = {"n": n, "seed": seed, "strategies_sha256": hashlib.sha256(STRATEGIES.read_bytes()).hexdigest()}
    if path.exists() and meta_path.exists():
        try:
            if json.loads(meta_path.read_text()) == {**want, "sha256": _sha(path)}:
                return path
        except ValueError:
            pass
    sys.path.insert(0, str(STRATEGIES.parent))
    try:
        import strategies  # tests/differential/strategies.py
    finally:
        sys.path.pop(0)
    cases = strategies.random_cases(n, seed=seed)
    if len(cases) < n:
        raise SystemExit(f"bench: the generator gave only {len(cases)} distinct cases, {n} asked")
    path.write_text("".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases[:n]), encoding="utf-8")
    meta_path.write_text(json.dumps({**want, "sha256": _sha(path)}, indent=1) + "\n")
    return path


def describe(path: Path) -> dict:
    """A few shape figures of the corpus, for the report."""
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    policies = set()
    statements = 0
    for doc in docs:
        for name, value in _policies(doc):
            policies.add((json.dumps(value), name))
            body = value.get("Statement", []) if isinstance(value, dict) else []
            statements += len(body) if isinstance(body, list) else 1
    return {
        "cases": len(docs),
        "distinct_policy_documents": len(policies),
        "statements_per_case": round(statements / max(1, len(docs)), 2),
        "bytes_per_case": round(path.stat().st_size / max(1, len(docs))),
        "with_grants": sum(1 for d in docs if d.get("grants")),
        "with_two_boundaries": sum(1 for d in docs if len(d.get("permission_boundaries") or []) > 1),
    }


def _policies(doc: dict):
    # Named the way keyfix.policy.simulate names them (its parse cache is keyed by (JSON, name)).
    for name in ("resource_policy", "session_policy"):
        if doc.get(name):
            yield name, doc[name]
    for name in ("identity_policies", "permission_boundaries"):
        for i, p in enumerate(doc.get(name) or []):
            yield f"{name}[{i}]", p
    for name in ("scps", "rcps"):
        for i, level in enumerate(doc.get(name) or []):
            for j, p in enumerate(level):
                yield f"{name}[{i}][{j}]", p


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    p = corpus(n)
    print(p)
    print(json.dumps(describe(p), indent=1))
