"""EC2's SDK model cut to the operations keyfix calls, for faster EC2 clients (issue #14).

botocore builds a client from the service's whole model. EC2's is the SDK's largest (4,414
shapes, 548 KB gzipped): building an EC2 client costs about 125 ms of CPU here, two thirds of
it the model, and a 512 MB Lambda has about a third of a vCPU. keyfix calls seven EC2
operations, so it ships EC2's model cut to them (`sdk_models/ec2/2016-11-15/service-2.json`:
those operations and every shape they reference, without documentation: 257 shapes, 86 KB)
and every session the gateway builds searches that folder first. botocore's loader takes
`data_path` as extra search paths ahead of its own, and the first path holding the requested
file wins (botocore/loaders.py, "Loader" and its search paths; the same setting as the
AWS_DATA_PATH environment variable, which keyfix keeps after its own path). Only service-2 is
cut: endpoint rules and paginators still come from botocore.

The cut is generated from the botocore keyfix pins (src/requirements.txt) by
`python -m keyfix.resolve.sdk_models`, which records that version beside it. A session gets
the cut model only when the botocore in use is that version; otherwise it gets the full one:
slower, never different. The operations are the ones the function's role may call
(template.yaml); tests/unit/resolve/test_sdk_models.py checks that, regenerates the cut and
compares, and parses the same responses with both models.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MODELS = Path(__file__).with_name("sdk_models")
VERSION_FILE = MODELS / "botocore-version"
EC2_API_VERSION = "2016-11-15"
EC2_OPERATIONS = (
    "DescribeImages",
    "DescribeInstances",
    "DescribeLaunchTemplateVersions",
    "DescribeSnapshots",
    "DescribeVolumes",
    "GetEbsDefaultKmsKeyId",
    "GetEbsEncryptionByDefault",
)


def data_path() -> str | None:
    """The cut models' folder, when they were cut from the botocore in use; else None."""
    import botocore

    try:
        recorded = VERSION_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return str(MODELS) if recorded == botocore.__version__ else None


def new_session(**kwargs: Any) -> Any:
    """`boto3.session.Session(**kwargs)` whose loader finds the cut models first."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    path = data_path()
    if path is not None:
        theirs = core.get_config_variable("data_path")  # AWS_DATA_PATH, if set
        core.set_config_variable("data_path", os.pathsep.join(p for p in (path, theirs) if p))
    return boto3.session.Session(botocore_session=core, **kwargs)


def cut(model: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """`model` with only `operations` and the shapes they reach (input, output, errors, and
    what those contain), documentation removed."""
    shapes = model["shapes"]
    kept: set[str] = set()
    pending: list[str] = []
    out_operations = {}
    for name in operations:
        operation = _undocumented(model["operations"][name])
        out_operations[name] = operation
        pending += [operation[k]["shape"] for k in ("input", "output") if k in operation]
        pending += [error["shape"] for error in operation.get("errors", [])]
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept.add(name)
        shape = shapes[name]
        pending += [member["shape"] for member in shape.get("members", {}).values()]
        pending += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
    out = {k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")}
    out["operations"] = out_operations
    out["shapes"] = {name: _undocumented(shapes[name]) for name in sorted(kept)}
    return out


def _undocumented(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _undocumented(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [_undocumented(v) for v in value]
    return value


def full_ec2_model() -> dict[str, Any]:
    """EC2's whole model as the installed botocore ships it."""
    from botocore.loaders import Loader

    return Loader().load_service_model("ec2", "service-2", EC2_API_VERSION)


def write() -> Path:
    """Cut EC2's model from the installed botocore and record its version."""
    import botocore

    target = MODELS / "ec2" / EC2_API_VERSION / "service-2.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(cut(full_ec2_model(), EC2_OPERATIONS), sort_keys=True, separators=(",", ":"))
    target.write_text(text + "\n", encoding="utf-8")
    VERSION_FILE.write_text(botocore.__version__ + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    written = write()
    print(f"{written} ({written.stat().st_size:,} bytes) from botocore {VERSION_FILE.read_text().strip()}")
