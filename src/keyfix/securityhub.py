"""Optional: keyfix's findings in AWS Security Hub, in the AWS Security Finding Format (ASFF).

On when KEYFIX_SECURITY_HUB=true (template parameter `SecurityHub`, default false). Security
Hub must be enabled in the account; keyfix then imports as a private (custom) product of its
own account, `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`
(https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html#ProductArn).

What is imported: each finding of a report that is not quiet (not `not-kms` or
`no-missing-permission`), with every required attribute (SchemaVersion, Id, ProductArn,
GeneratorId, AwsAccountId, Types, CreatedAt, UpdatedAt, Severity, Title, Description,
Resources: same page), its remediation (the fix and its commands) and keyfix's status in
`ProductFields`, and `Compliance.Status`: FAILED (fails now), WARNING (predicted),
NOT_AVAILABLE (undetermined), PASSED (every fix applied or already present).

One Security Hub finding per incident: the Id is derived from what the finding is about
(account, Region, resource, principal, key, cause), never from the event, so the next event,
a sweep or a key change about the same thing updates the same finding. Security Hub creates
a finding for a new Id and updates the existing one for a known Id whose update carries a
later UpdatedAt; CreatedAt and UpdatedAt must be equal on creation
(https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html,
asff-required-attributes.html#UpdatedAt). So keyfix first reads the findings it imported
before (GetFindings by Id) to keep their CreatedAt and move UpdatedAt strictly forward.

Repair and recovery. A provider's BatchImportFindings cannot change `Workflow` of an existing
finding (ignored: "Restricted fields for BatchImportFindings", same page); `Workflow.Status`
"can only be updated using BatchUpdateFindings"
(https://docs.aws.amazon.com/securityhub/latest/userguide/asff-workflow.html). So:
- keyfix repaired it (this run applied the fix): the import says Compliance PASSED, then
  BatchUpdateFindings sets Workflow.Status RESOLVED with a Note naming the changes;
- the group launched again (keyfix.followup.recovery): the group's active keyfix findings are
  re-imported with Compliance PASSED and RecordState ARCHIVED, then set RESOLVED the same way.
If the same thing fails again later, the next import is ACTIVE and FAILED again, and Security
Hub itself resets a RESOLVED workflow to NEW (asff-workflow.html: "RecordState changes from
ARCHIVED to ACTIVE", "Compliance.Status changes from PASSED to FAILED"). keyfix never sets
Workflow otherwise: a person's NOTIFIED or SUPPRESSED stays theirs.

Never breaks the event: every Security Hub error is logged (and the findings it refused are
named) and the run goes on. boto3 is reached only through the gateway, and only when on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from keyfix.arns import GROUP_NAME_MARKER, group_name_of
from keyfix.utc import iso_ms

log = logging.getLogger("keyfix")

ENABLE_ENV = "KEYFIX_SECURITY_HUB"
SCHEMA_VERSION = "2018-10-08"  # the only published ASFF version (asff-required-attributes.html#SchemaVersion)
# Namespace/category from the ASFF types taxonomy (securityhub-findings-format-type-taxonomy.html).
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
# BatchImportFindings takes up to 100 findings per call, BatchUpdateFindings 100 identifiers;
# GetFindings returns at most 100 per page (API reference of each).
BATCH = 100
# AwsSecurityFinding field limits (API_AwsSecurityFinding.html): Title 256, Description 1024;
# Recommendation.Text and Note.Text 512.
TITLE_MAX, DESCRIPTION_MAX, TEXT_MAX = 256, 1024, 512
QUIET = ("not-kms", "no-missing-permission")


def enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return (env.get(ENABLE_ENV) or "").strip().lower() == "true"


def product_arn(partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def _iso(when: datetime) -> str:
    return iso_ms(when.timestamp())


def _parse(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def finding_id(account: str, region: str, finding: Any) -> str:
    """Stable per incident: what the finding is about, not which event saw it."""
    parts = [account, region, finding.resource or "", finding.principal or "", finding.key_arn or "", str(finding.cause)]
    digest = hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode("utf-8")).hexdigest()
    return f"keyfix/{region}/{account}/{digest[:40]}"


def _resource_arn(resource: str, partition: str, region: str, account: str) -> tuple[str, str]:
    """(ASFF resource Type, Id) of a finding's resource (asff-resources.html: Type and Id)."""
    if group_name_of(resource) is not None:
        return "AwsAutoScalingAutoScalingGroup", resource
    if resource.startswith("i-"):
        return "AwsEc2Instance", f"arn:{partition}:ec2:{region}:{account}:instance/{resource}"
    if resource.startswith("vol-"):
        return "AwsEc2Volume", f"arn:{partition}:ec2:{region}:{account}:volume/{resource}"
    if ":instance/" in resource:
        return "AwsEc2Instance", resource
    if ":volume/" in resource:
        return "AwsEc2Volume", resource
    return "Other", resource


def _principal_type(arn: str) -> str:
    if ":role/" in arn or ":assumed-role/" in arn:
        return "AwsIamRole"
    if ":user/" in arn:
        return "AwsIamUser"
    return "Other"


def resources(finding: Any, partition: str, region: str, account: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if finding.resource:
        kind, arn = _resource_arn(finding.resource, partition, region, account)
        out.append({"Type": kind, "Id": arn, "Partition": partition, "Region": region})
    if finding.key_arn:
        out.append({"Type": "AwsKmsKey", "Id": finding.key_arn, "Partition": partition, "Region": region})
    if finding.principal:
        out.append({"Type": _principal_type(finding.principal), "Id": finding.principal, "Partition": partition,
                    "Region": region})
    if not out:  # Resources must not be empty (asff-required-attributes.html#Resources)
        out.append({"Type": "AwsAccount", "Id": f"AWS::::Account:{account}", "Partition": partition,
                    "Region": region})
    return out


def repaired(finding: Any) -> bool:
    statuses = {str(f.status) for f in finding.fixes}
    return bool(statuses) and statuses <= {"applied", "already-present"}


def compliance(finding: Any) -> str:
    if repaired(finding):
        return "PASSED"
    if str(finding.cause) == "undetermined":
        return "NOT_AVAILABLE"
    return "WARNING" if finding.predicted else "FAILED"


def _remediation(finding: Any) -> str:
    if not finding.fixes:
        return "keyfix proposes no fix: " + finding.explanation
    lines = [f"{fix.kind} on {fix.target} ({fix.status}{', ' + fix.reason if fix.reason else ''})"
             for fix in finding.fixes]
    commands = [c for fix in finding.fixes for c in fix.cli]
    text = "keyfix fix: " + "; ".join(lines)
    if commands:
        text += ". Run: " + " && ".join(commands)
    return text


def _title(finding: Any) -> str:
    what = (finding.resource or finding.principal or "a request").rsplit("/", 1)[-1]
    key = (finding.key_arn or "a KMS key").rsplit("/", 1)[-1]
    verb = "will fail to use" if finding.predicted else "cannot use"
    return f"keyfix {finding.cause}: {what} {verb} KMS key {key}"


def asff(report: Any, finding: Any, *, account: str, region: str, partition: str, now: datetime,
         created_at: str | None = None) -> dict[str, Any]:
    """The ASFF document of one keyfix finding; `created_at` keeps an existing finding's."""
    from keyfix.messages.severity import finding_severity

    label = finding_severity(finding)
    updated = _iso(now)
    product_fields = {
        "keyfix/cause": str(finding.cause),
        "keyfix/fix_status": ",".join(sorted({str(f.status) for f in finding.fixes})) or "none",
        "keyfix/event_id": report.event.id or "",
        "keyfix/trigger": str(report.event.trigger),
        "keyfix/mode": str(report.mode),
        "keyfix/predicted": "true" if finding.predicted else "false",
    }
    if report.switch:
        product_fields["keyfix/switch"] = str(report.switch.get("state"))
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(account, region, finding),
        "ProductArn": product_arn(partition, region, account),
        "ProductName": "keyfix",
        "CompanyName": "keyfix",
        "GeneratorId": f"keyfix/{finding.cause}",
        "AwsAccountId": account,
        "Region": region,
        "Types": [FINDING_TYPE],
        "CreatedAt": created_at or updated,
        "UpdatedAt": updated,
        "LastObservedAt": updated,
        "Severity": {"Label": label},
        # Severity and Types belong to the provider under FindingProviderFields
        # (asff-required-attributes.html#Severity, #Types).
        "FindingProviderFields": {"Severity": {"Label": label}, "Types": [FINDING_TYPE]},
        "Title": _cut(_title(finding), TITLE_MAX),
        "Description": _cut(finding.explanation or str(finding.cause), DESCRIPTION_MAX),
        "Resources": resources(finding, partition, region, account),
        "Remediation": {"Recommendation": {"Text": _cut(_remediation(finding), TEXT_MAX)}},
        "Compliance": {"Status": compliance(finding)},
        "RecordState": "ACTIVE",
        "ProductFields": {k: _cut(v, 2048) for k, v in product_fields.items()},
    }


class Hub:
    """Security Hub as keyfix uses it: read its own findings, import, resolve."""

    def __init__(self, gw: Any, account: str, region: str, partition: str = "aws") -> None:
        self.client = gw.client("securityhub", region=region)
        self.account, self.region, self.partition = account, region, partition
        self.product = product_arn(partition, region, account)

    def existing(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """keyfix's findings with these Ids, by Id. Filters are checked here too: the filter
        is what Security Hub answers; the check keeps anything else out."""
        wanted = set(ids)
        found: dict[str, dict[str, Any]] = {}
        chunk = list(wanted)
        for start in range(0, len(chunk), 20):  # a StringFilter list of at most 20 values
            filters = {"ProductArn": [{"Value": self.product, "Comparison": "EQUALS"}],
                       "Id": [{"Value": i, "Comparison": "EQUALS"} for i in chunk[start:start + 20]]}
            for item in self._get(filters):
                if item.get("Id") in wanted and item.get("ProductArn") == self.product:
                    found[item["Id"]] = item
        return found

    def active_about_group(self, group: str) -> list[dict[str, Any]]:
        """keyfix's active findings about the Auto Scaling group named `group`. Its ARN holds
        a generated id keyfix's recovery event may not carry, so Security Hub is asked for
        resource Ids containing the name (CONTAINS, a StringFilter comparison), and only an
        exact name of this account and Region is kept."""
        suffix = f"{GROUP_NAME_MARKER}{group}"
        filters = {"ProductArn": [{"Value": self.product, "Comparison": "EQUALS"}],
                   "ResourceType": [{"Value": "AwsAutoScalingAutoScalingGroup", "Comparison": "EQUALS"}],
                   "ResourceId": [{"Value": suffix, "Comparison": "CONTAINS"}],
                   "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}
        prefix = f"arn:{self.partition}:autoscaling:{self.region}:{self.account}:"

        def about(resource: dict[str, Any]) -> bool:
            rid = str(resource.get("Id") or "")
            return resource.get("Type") == "AwsAutoScalingAutoScalingGroup" and rid.startswith(prefix) \
                and rid.endswith(suffix)

        return [f for f in self._get(filters) if f.get("ProductArn") == self.product
                and f.get("RecordState", "ACTIVE") == "ACTIVE" and any(about(r) for r in f.get("Resources") or ())]

    def _get(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": BATCH}
        while True:
            page = self.client.get_findings(**kwargs)
            items.extend(page.get("Findings") or [])
            token = page.get("NextToken")
            if not token:
                return items
            kwargs["NextToken"] = token

    def import_findings(self, documents: Sequence[dict[str, Any]]) -> list[str]:
        """Import; returns the Ids Security Hub accepted (its refusals are logged)."""
        accepted: list[str] = []
        for start in range(0, len(documents), BATCH):
            chunk = list(documents[start:start + BATCH])
            answer = self.client.batch_import_findings(Findings=chunk)
            failed = {f.get("Id"): f for f in answer.get("FailedFindings") or []}
            for item in failed.values():
                log.error("Security Hub refused finding %s: %s %s", item.get("Id"), item.get("ErrorCode"),
                          item.get("ErrorMessage"))
            accepted += [d["Id"] for d in chunk if d["Id"] not in failed]
        return accepted

    def resolve(self, ids: Sequence[str], note: str) -> None:
        """Workflow.Status RESOLVED with a Note (BatchUpdateFindings: the only way to set it)."""
        for start in range(0, len(ids), BATCH):
            answer = self.client.batch_update_findings(
                FindingIdentifiers=[{"Id": i, "ProductArn": self.product} for i in ids[start:start + BATCH]],
                Workflow={"Status": "RESOLVED"}, Note={"Text": _cut(note, TEXT_MAX), "UpdatedBy": "keyfix"})
            for item in answer.get("UnprocessedFindings") or []:
                log.error("Security Hub did not resolve finding %s: %s %s",
                          (item.get("FindingIdentifier") or {}).get("Id"), item.get("ErrorCode"),
                          item.get("ErrorMessage"))


def _later(now: datetime, previous: Any) -> datetime:
    """An UpdatedAt Security Hub will take: strictly after the one it has."""
    before = _parse(previous) if previous else None
    return now if before is None or now > before else before + timedelta(milliseconds=1)


def _where(gw: Any, account: str | None, region: str | None) -> tuple[str, str, str] | None:
    from keyfix.arns import partition_of

    account = account or getattr(gw, "account", None) or gw.home_account()
    region = region or getattr(gw, "region", None) or gw.default_region()
    if not account or not region:
        return None
    return account, region, partition_of(region)


def publish_report(report: Any, gw: Any, *, account: str | None = None, region: str | None = None,
                   now: datetime | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Import `report`'s findings (and resolve those keyfix repaired in this run); returns the
    Ids Security Hub accepted. Off, nothing to import, or any failure: logged, never raised."""
    if not enabled(env):
        return []
    findings = [f for f in report.findings if str(f.cause) not in QUIET]
    if not findings:
        return []
    try:
        where = _where(gw, account, region)
        if where is None:
            log.error("Security Hub: keyfix does not know its account or Region; nothing imported")
            return []
        account, region, partition = where
        hub = Hub(gw, account, region, partition)
        now = now or datetime.now(UTC)
        by_id: dict[str, Any] = {}
        for finding in findings:  # one document per Id: the last finding about the same thing wins
            by_id[finding_id(account, region, finding)] = finding
        before = hub.existing(list(by_id))
        documents = []
        for fid, finding in by_id.items():
            old = before.get(fid) or {}
            when = _later(now, old.get("UpdatedAt"))
            documents.append(asff(report, finding, account=account, region=region, partition=partition,
                                  now=when, created_at=old.get("CreatedAt") if old else None))
            if not old:  # creation: CreatedAt == UpdatedAt
                documents[-1]["CreatedAt"] = documents[-1]["UpdatedAt"]
        accepted = hub.import_findings(documents)
        fixed = [fid for fid, f in by_id.items() if fid in accepted and repaired(f) and
                 any(str(x.status) == "applied" for x in f.fixes)]
        if fixed:
            hub.resolve(fixed, f"Repaired by keyfix (event {report.event.id}): the fix was applied and read back.")
        return accepted
    except Exception as exc:  # noqa: BLE001 - Security Hub is a copy of the report: never break the event
        log.error("Security Hub import failed (the report stands): %s: %s", type(exc).__name__, exc)
        return []


def resolve_recovered(group: str, recovery: Mapping[str, Any], gw: Any, *, account: str | None = None,
                      region: str | None = None, now: datetime | None = None,
                      env: Mapping[str, str] | None = None) -> list[str]:
    """The group launched again: its active keyfix findings become PASSED, ARCHIVED and
    RESOLVED. Returns their Ids; never raises."""
    if not enabled(env):
        return []
    try:
        where = _where(gw, account, region)
        if where is None:
            return []
        account, region, partition = where
        hub = Hub(gw, account, region, partition)
        now = now or datetime.now(UTC)
        documents = []
        for old in hub.active_about_group(group):
            doc = {k: v for k, v in old.items() if k not in ("Workflow", "WorkflowState", "Note", "UserDefinedFields",
                                                             "VerificationState", "ProcessedAt",
                                                             "FirstObservedAt")}
            doc["UpdatedAt"] = doc["LastObservedAt"] = _iso(_later(now, old.get("UpdatedAt")))
            doc["Compliance"] = {"Status": "PASSED"}
            doc["RecordState"] = "ARCHIVED"
            doc["ProductFields"] = {**(old.get("ProductFields") or {}),
                                    "keyfix/recovered_at": str(recovery.get("recovered_at")),
                                    "keyfix/time_to_repair_seconds": str(recovery.get("time_to_repair_seconds"))}
            documents.append(doc)
        accepted = hub.import_findings(documents)
        if accepted:
            hub.resolve(accepted, f"The group launched again at {recovery.get('recovered_at')} after keyfix's repair "
                                  f"(time to repair {recovery.get('time_to_repair_seconds')} s).")
        return accepted
    except Exception as exc:  # noqa: BLE001
        log.error("Security Hub update on recovery failed: %s: %s", type(exc).__name__, exc)
        return []
