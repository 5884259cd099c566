"""Differential tests: keyfix's KMS authorisation model against an external oracle.

The oracle is the npm package @cloud-copilot/iam-simulate (AGPL-3.0-or-later). It is
never vendored and never a dependency of keyfix: the session fixture below installs
it with `npm ci --prefix tests/oracle` (exact version pinned in
tests/oracle/package-lock.json) into tests/oracle/node_modules, which git ignores,
and runs it in a separate node process (tests/oracle/driver.mjs).

Without node/npm the tests skip with the reason, except under CI (CI=true), where a
missing toolchain is a failure: the comparison must not silently vanish there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ORACLE_DIR = HERE.parent / "oracle"
DRIVER = ORACLE_DIR / "driver.mjs"
BENCH_DRIVER = ORACLE_DIR / "bench_driver.mjs"
PACKAGE_DIR = ORACLE_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate"

sys.path.insert(0, str(HERE))  # strategies.py, case_views.py, known_differences.py, regressions.py


def _pinned_version() -> str:
    lock = json.loads((ORACLE_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/@cloud-copilot/iam-simulate"]["version"]


def _installed_version() -> str | None:
    try:
        return json.loads((PACKAGE_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.differential)


def find_toolchain(which=shutil.which, environ=os.environ) -> dict[str, str]:
    """Paths of node and npm; skips the caller without them, fails it under CI."""
    node, npm = which("node"), which("npm")
    if not node or not npm:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        reason = f"{missing} not found on PATH: the iam-simulate oracle cannot run"
        if environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI=true: the differential tests must not be skipped in CI)")
        pytest.skip(reason)
    return {"node": node, "npm": npm}


@pytest.fixture(scope="session")
def node_toolchain() -> dict[str, str]:
    return find_toolchain()


@pytest.fixture(scope="session")
def oracle_installed(node_toolchain) -> Path:
    """tests/oracle/node_modules holds the pinned iam-simulate; install it if not."""
    pinned = _pinned_version()
    if _installed_version() != pinned:
        cmd = [node_toolchain["npm"], "ci", "--prefix", str(ORACLE_DIR), "--no-audit", "--no-fund"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(
                f"installing the oracle failed: {' '.join(cmd)} exited {proc.returncode}\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )
    installed = _installed_version()
    assert installed == pinned, f"iam-simulate {installed} installed, package-lock.json pins {pinned}"
    return ORACLE_DIR


class Oracle:
    """Runs keyfix simulate documents through tests/oracle/driver.mjs, one process per batch."""

    def __init__(self, node: str, version: str):
        self.node = node
        self.version = version

    def run(self, docs: list[dict], timeout: float = 600) -> list[dict]:
        payload = "".join(json.dumps({"id": i, "doc": doc}) + "\n" for i, doc in enumerate(docs))
        proc = subprocess.run(
            [self.node, str(DRIVER)],
            input=payload,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ORACLE_DIR,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"oracle driver exited {proc.returncode}: {proc.stderr[-4000:]}")
        results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        if [r["id"] for r in results] != list(range(len(docs))):
            raise RuntimeError(f"oracle driver answered {len(results)} of {len(docs)} cases, or out of order")
        return results

    def one(self, doc: dict) -> dict:
        return self.run([doc])[0]


@pytest.fixture(scope="session")
def oracle(oracle_installed, node_toolchain) -> Oracle:
    return Oracle(node_toolchain["node"], _installed_version() or "?")
