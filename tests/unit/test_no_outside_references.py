"""The repository refers to nothing outside itself: no code, test, sample, benchmark, script or
document names the shared directory the project was started from (issue #10, section 7).
Event fixtures live in tests/fixtures/realevents, the contract in docs/contract.md and
src/keyfix/schemas, the seed cases in docs/seed-cases.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("src", "tests", "events", "bench", "scripts", "examples", "docs", ".ci")
SCANNED_FILES = ("README.md", "Makefile", "template.yaml", "samconfig.toml", "pyproject.toml")
# Generated or installed trees (ignored by git), not the project's own text.
SKIPPED_PARTS = {"__pycache__", "node_modules", ".pytest_cache", ".hypothesis", "out"}

# Spelled in pieces so this file does not match itself.
OUTSIDE = re.compile("/work/" + "shared" + r"|\.\./" + "shared")


def _project_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for top in SCANNED_DIRS:
        for path in (ROOT / top).rglob("*"):
            rel_parts = path.relative_to(ROOT).parts
            if not path.is_file() or SKIPPED_PARTS & set(rel_parts):
                continue
            if any(part.endswith(".egg-info") for part in rel_parts):
                continue
            files.append(path)
    return files


def _outside_references(text: str) -> list[str]:
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def test_the_matcher_finds_both_spellings():
    sample = "see /work/" + "shared/realevents and ../" + "shared/contract/README.md"
    assert _outside_references(sample) == ["/work/" + "shared", "../" + "shared"]
    assert _outside_references("tests/fixtures/realevents, docs/contract.md, ../" + "sharedx") == ["../" + "shared"]
    assert _outside_references("docs/contract.md") == []


def test_no_project_file_refers_outside_the_repository():
    files = _project_files()
    # Every top directory that must be checked exists and holds files: a moved tree cannot
    # silently empty the scan.
    for top in ("src", "tests", "events", "bench", "scripts"):
        assert any(f.is_relative_to(ROOT / top) for f in files), f"nothing scanned under {top}/"
    offenders = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for match in OUTSIDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert offenders == []
