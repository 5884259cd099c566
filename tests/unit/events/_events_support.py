"""Shared helpers for tests/unit/events (imported by module name: pytest prepends this
directory to sys.path; the name is unique so it cannot clash with other test dirs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "events"
# Real AWS event shapes kept in the repository, each with its source (README.md there).
REALEVENTS = ROOT / "tests" / "fixtures" / "realevents"


def load(path: Path) -> Any:
    # A missing fixture is a failure with its path, never a skip.
    assert path.is_file(), f"missing test fixture: {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def realevent(name: str) -> Any:
    """One file of tests/fixtures/realevents, parsed."""
    return load(REALEVENTS / name)


def sample(name: str) -> dict[str, Any]:
    return load(SAMPLES / name)


def wrap_cloudtrail(record: dict[str, Any], event_id: str = "00000000-0000-4000-8000-000000000000") -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it: detail-type "AWS API Call via
    CloudTrail", source "aws." + the service part of eventSource, the record as detail.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
    """
    service = record["eventSource"].split(".", 1)[0]
    account = record.get("recipientAccountId") or record.get("userIdentity", {}).get("accountId") or "000000000000"
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{service}",
        "account": account,
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": copy.deepcopy(record),
    }


def cloudtrail_records(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The CloudTrail records in a realevents file (a single record or {"Records": [...]})."""
    if "Records" in raw:
        return list(raw["Records"])
    if "eventVersion" in raw:
        return [raw]
    return []


def denied(record: dict[str, Any], message: str, code: str = "AccessDenied") -> dict[str, Any]:
    """A copy of a successful KMS record turned into the AccessDenied record of the same call."""
    out = copy.deepcopy(record)
    out["errorCode"] = code
    out["errorMessage"] = message
    out["responseElements"] = None
    return out
