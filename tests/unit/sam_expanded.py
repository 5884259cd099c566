"""template.yaml as CloudFormation deploys it: the SAM transform expanded by the real
aws-sam-translator (aws-sam-cli's venv, .venv-tools, which scripts/setup builds for `make
test`; the project venv does not carry the translator). Tests on what SAM generates from the
function's events (the EventBridge rules and their permissions) read this, not the source.

    expanded_template() -> dict     parameters at their defaults, Region us-east-1
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"

# Run inside .venv-tools. The translator wants the code in S3 (sam package's job): a stand-in
# location. No managed policy is looked up (the template names none; a lookup would need AWS);
# the translator reads the Region from the environment for its partition.
_EXPAND = """
import json, os, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        raise SystemExit("the template refers to an AWS managed policy by name")

os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = "us-east-1"
with open(sys.argv[1], encoding="utf-8") as f:
    template = yaml_parse(f.read())
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://keyfix-test-artifacts/keyfix/code.zip"
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""


@functools.cache
def _expand(path: str) -> str:
    if not TOOLS_PYTHON.exists():
        raise AssertionError("the tools venv is missing: run scripts/setup tools")
    done = subprocess.run([str(TOOLS_PYTHON), "-c", _EXPAND, path], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"SAM transform of {path} failed:\n{done.stderr[-2000:]}"
    return done.stdout


def expanded_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """A fresh copy each call (callers may change it)."""
    return json.loads(_expand(str(path)))
