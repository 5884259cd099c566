"""P6's benchmark at tiny size (bench/scan.py --smoke): counts only, never a time (issue #14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.server


def test_scan_reads_each_key_template_image_and_role_once_and_predicts_every_broken_group():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "scan.py"), "--smoke"], capture_output=True,
                          text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["checked"] == {"groups": 40, "instances": 0, "keys": 4}
    assert out["complete"] is True and out["unchecked"] == []
    assert out["calls_by_operation"] == out["minimum_by_operation"]  # exactly the documented minimum
    assert out["calls"] == out["minimum"] == 1 + 1 + 8 + 1 + 3 * 4 + 1 + 1 + 1
    assert out["predicted_failures"] == out["expected_broken_groups"] == 10
    # Every request the server answered was counted at botocore, and the timing covers each call.
    assert out["server_requests"] == out["calls"]
    assert {op: v["calls"] for op, v in out["call_time_by_operation"].items()} == out["calls_by_operation"]
    assert "server answered" not in " ".join(out["missed"])
