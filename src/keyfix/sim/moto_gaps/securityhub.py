"""Security Hub gap: BatchUpdateFindings (moto 5.2 has BatchImportFindings and GetFindings only).

Shaped after https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html:
PATCH /findings/batchupdate with FindingIdentifiers [{Id, ProductArn}] and the fields to set
(here Workflow and Note, what keyfix sends); the answer lists ProcessedFindings and
UnprocessedFindings [{FindingIdentifier, ErrorCode, ErrorMessage}]. As AWS does, it leaves
UpdatedAt alone (finding-update-batchupdatefindings.html) and fails a finding it does not hold.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

URL_PATH = "{0}/findings/batchupdate$"


def _batch_update_findings(self: Any) -> str:
    body = json.loads(self.body or "{}")
    held = {(f.id, f.data.get("ProductArn")): f for f in self.securityhub_backend.findings}
    processed, unprocessed = [], []
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for ident in body.get("FindingIdentifiers") or []:
        finding = held.get((ident.get("Id"), ident.get("ProductArn")))
        if finding is None:
            unprocessed.append({"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
                                "ErrorMessage": "Finding Not Found"})
            continue
        if "Workflow" in body:
            finding.data["Workflow"] = dict(body["Workflow"])
        if "Note" in body:
            finding.data["Note"] = {**body["Note"], "UpdatedAt": now}
        processed.append(ident)
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})
