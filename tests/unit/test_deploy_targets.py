"""`make package` / `make deploy` build exactly as the tests do and stop where AWS would be
called (DRY_RUN=1 prints the sam command instead); the artifact carries only what the
function runs (issue #13)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / ".aws-sam" / "build" / "KeyfixFunction"


def make_n(*args: str) -> list[str]:
    """The commands `make` would run, one per entry (continuation lines joined)."""
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.replace("\\\n", " ").splitlines()


@pytest.mark.parametrize("target", ["package", "deploy"])
def test_packaging_and_deploying_build_as_the_tests_do(target):
    steps = make_n(target, "S3_BUCKET=my-artifacts", "DRY_RUN=1")
    text = "\n".join(steps)
    # The same build as `make test`: lint, sam build with the venv's python3.13, pruning, bytecode.
    order = ["sam validate --lint", "sam build", "rm -rf .aws-sam/build/KeyfixFunction/keyfix/sim",
             "compileall", f"sam {target}"]
    positions = [next(i for i, line in enumerate(steps) if needle in line) for needle in order]
    assert positions == sorted(positions), text
    assert 'PATH="' in text and "/.venv/bin:" in text  # sam build finds python3.13 in the project venv
    last = steps[positions[-1]]
    assert last.startswith("echo DRY_RUN:"), last  # stops where AWS would be called


def test_package_names_the_bucket_and_the_packaged_template():
    line = next(l for l in make_n("package", "S3_BUCKET=my-artifacts", "DRY_RUN=1") if "sam package" in l)
    assert "--s3-bucket my-artifacts" in line and "--output-template-file .aws-sam/packaged.yaml" in line
    assert "--template-file .aws-sam/build/template.yaml" in line


def test_deploy_takes_the_samconfig_environment():
    line = next(l for l in make_n("deploy", "CONFIG_ENV=prod", "DRY_RUN=1") if "sam deploy" in l)
    assert line.endswith("sam deploy --config-env prod")


def test_package_without_a_bucket_says_so():
    done = subprocess.run(["make", "package", "DRY_RUN=1", "-o", "build"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "set S3_BUCKET" in done.stderr


def test_ci_runs_the_scanners():
    assert any("scan" in line.split(":", 1)[0] or line.startswith("test:") and "scan" in line
               for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("test:"))


@pytest.mark.skipif(not BUILT.is_dir(), reason="no .aws-sam/build: `make build` (make test runs it first)")
def test_the_artifact_carries_only_what_the_function_runs():
    assert (BUILT / "keyfix" / "handler.py").is_file()
    assert not (BUILT / "keyfix" / "sim").exists() and not (BUILT / "keyfix" / "demo").exists()
    assert not (BUILT / "moto").exists() and not list(BUILT.glob("*.egg-info"))
    assert list((BUILT / "keyfix").glob("__pycache__/*.pyc"))  # bytecode shipped


def test_samconfig_prod_differs_where_it_matters():
    cfg = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    default, prod = cfg["default"], cfg["prod"]
    assert prod["global"]["parameters"].get("profile") and "profile" not in default["global"]["parameters"]
    assert prod["global"]["parameters"]["region"] != default["global"]["parameters"]["region"]
    tags = dict(t.split("=", 1) for t in prod["deploy"]["parameters"]["tags"].split())
    assert tags["application"] == "keyfix" and tags["environment"] == "prod"
    assert prod["deploy"]["parameters"]["parameter_overrides"] != default["deploy"]["parameters"]["parameter_overrides"]
