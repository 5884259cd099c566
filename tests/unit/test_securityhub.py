"""keyfix's findings in Security Hub (keyfix.securityhub) on moto: every required ASFF attribute,
one finding per incident updated in place, resolved through BatchUpdateFindings when keyfix
repairs it and archived when the group recovers, off by default, and never breaking a run.
moto stores what it is given (it checks only Resources), so the ASFF rules are asserted here
on the documents, from the AWS pages the module cites."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from keyfix import securityhub
from keyfix.report import Cause, EventRef, Finding, Fix, FixKind, FixStatus, Mode, Report, Trigger
from keyfix.sim import moto_gaps

ACCOUNT, REGION = "111122223333", "us-east-1"
PRODUCT = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ON = {securityhub.ENABLE_ENV: "true"}
# asff-required-attributes.html
REQUIRED = ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "Types", "CreatedAt", "UpdatedAt",
            "Severity", "Title", "Description", "Resources")
LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def group_arn(name: str) -> str:
    return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0f1e2d3c-aaaa-bbbb-cccc-000000000000:autoScalingGroupName/{name}"


def finding(group: str = "web-asg", status: FixStatus = FixStatus.PROPOSED, cause: Cause = Cause.SLR_NOT_IN_KEY_POLICY,
            predicted: bool = False, explanation: str = "The service-linked role is not in the key policy.") -> Finding:
    fix = Fix(FixKind.KEY_POLICY_STATEMENT, status, ACCOUNT, KEY, {"Sid": "keyfix-x"},
              [f"aws kms put-key-policy --key-id {KEY} --policy file://policy.json"])
    return Finding(cause, SLR, KEY, ["kms:CreateGrant"], explanation, [fix], resource=group_arn(group),
                   predicted=predicted)


def report(*findings: Finding, event_id: str = "e-1") -> Report:
    return Report(EventRef(event_id, "aws.autoscaling", "EC2 Instance Launch Unsuccessful", Trigger.ASG_LAUNCH_FAILURE),
                  Mode.APPLY, list(findings), switch={"state": "normal", "source": "none", "reason": None})


class Gw:
    """The gateway's surface keyfix.securityhub uses; counts clients asked for."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.account, self.region, self.asked, self.fail = ACCOUNT, REGION, [], fail

    def client(self, service: str, account: str | None = None, region: str | None = None):
        self.asked.append(service)
        if self.fail is not None:
            raise self.fail
        return boto3.client(service, region_name=region or REGION)

    def home_account(self):
        return self.account

    def default_region(self):
        return self.region


@pytest.fixture
def hub():
    with mock_aws(), moto_gaps.installed():
        client = boto3.client("securityhub", region_name=REGION)
        client.enable_security_hub()
        yield client


def held(client) -> dict[str, dict]:
    return {f["Id"]: f for f in client.get_findings(MaxResults=100)["Findings"]}


def assert_asff(doc: dict, resolved: bool = False) -> None:
    """`resolved`: keyfix's BatchUpdateFindings set Workflow since (the only way it may)."""
    for name in REQUIRED:
        assert doc.get(name) not in (None, "", []), name
    assert doc["SchemaVersion"] == "2018-10-08" and doc["ProductArn"] == PRODUCT and doc["AwsAccountId"] == ACCOUNT
    assert doc["Severity"]["Label"] in LABELS and doc["FindingProviderFields"]["Severity"] == doc["Severity"]
    assert all(t.count("/") <= 2 for t in doc["Types"])
    assert len(doc["Title"]) <= 256 and len(doc["Description"]) <= 1024
    assert len(doc["Remediation"]["Recommendation"]["Text"]) <= 512
    assert doc["Compliance"]["Status"] in ("PASSED", "WARNING", "FAILED", "NOT_AVAILABLE")
    assert doc["RecordState"] in ("ACTIVE", "ARCHIVED")
    for resource in doc["Resources"]:
        assert resource["Type"] and resource["Id"]
    for when in ("CreatedAt", "UpdatedAt"):
        assert datetime.fromisoformat(doc[when].replace("Z", "+00:00")).tzinfo is not None
    if not resolved:
        assert "Workflow" not in doc, "a provider's import never sets Workflow (asff-workflow.html)"


def test_gap_batch_update_findings_is_filled_only_by_the_gap_layer():
    with mock_aws():
        client = boto3.client("securityhub", region_name=REGION)
        with pytest.raises(Exception):  # noqa: B017 - moto 5.2 has no such route: any error shows the gap
            client.batch_update_findings(FindingIdentifiers=[{"Id": "x", "ProductArn": PRODUCT}],
                                         Workflow={"Status": "RESOLVED"})
        with moto_gaps.installed():
            answer = client.batch_update_findings(FindingIdentifiers=[{"Id": "x", "ProductArn": PRODUCT}],
                                                  Workflow={"Status": "RESOLVED"})
            assert answer["ProcessedFindings"] == [] and answer["UnprocessedFindings"][0]["ErrorCode"]


def test_off_by_default_nothing_is_asked():
    gw = Gw()
    assert securityhub.publish_report(report(finding()), gw, env={}) == []
    assert securityhub.resolve_recovered("web-asg", {}, gw, env={}) == []
    assert gw.asked == []


def test_a_finding_is_imported_with_every_required_attribute_then_updated_in_place(hub):
    t0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    (fid,) = securityhub.publish_report(report(finding()), Gw(), env=ON, now=t0)
    (doc,) = held(hub).values()
    assert_asff(doc)
    assert doc["Id"] == fid and doc["CreatedAt"] == doc["UpdatedAt"]  # creation
    assert doc["Compliance"]["Status"] == "FAILED" and doc["Severity"]["Label"] == "HIGH"
    assert KEY in doc["Remediation"]["Recommendation"]["Text"] and "put-key-policy" in doc["Remediation"]["Recommendation"]["Text"]
    assert {r["Type"] for r in doc["Resources"]} == {"AwsAutoScalingAutoScalingGroup", "AwsKmsKey", "AwsIamRole"}
    assert doc["ProductFields"]["keyfix/fix_status"] == "proposed" and doc["ProductFields"]["keyfix/event_id"] == "e-1"

    # The next event about the same thing, even with an earlier clock: the same finding, moved forward.
    again = securityhub.publish_report(report(finding(), event_id="e-2"), Gw(), env=ON, now=t0 - timedelta(hours=1))
    assert again == [fid]
    (doc2,) = held(hub).values()
    assert_asff(doc2)
    assert doc2["CreatedAt"] == doc["CreatedAt"] and doc2["UpdatedAt"] > doc["UpdatedAt"]
    assert doc2["ProductFields"]["keyfix/event_id"] == "e-2"
    # Another group is another incident: another finding.
    securityhub.publish_report(report(finding("api-asg")), Gw(), env=ON, now=t0)
    assert len(held(hub)) == 2


def test_quiet_findings_are_not_imported(hub):
    quiet = [Finding(Cause.NOT_KMS, None, None, [], "a quota"), Finding(Cause.NO_MISSING_PERMISSION, SLR, KEY, [], "ok")]
    assert securityhub.publish_report(report(*quiet), Gw(), env=ON) == []
    assert held(hub) == {}


def test_a_repair_is_passed_and_resolved_and_a_recovery_archives_the_group_s_findings(hub):
    t0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    securityhub.publish_report(report(finding()), Gw(), env=ON, now=t0)
    other = securityhub.publish_report(report(finding("api-asg")), Gw(), env=ON, now=t0)
    (fid,) = securityhub.publish_report(report(finding(status=FixStatus.APPLIED), event_id="e-3"), Gw(), env=ON,
                                        now=t0 + timedelta(minutes=1))
    doc = held(hub)[fid]
    assert_asff(doc, resolved=True)
    assert doc["Compliance"]["Status"] == "PASSED" and doc["Severity"]["Label"] == "LOW"
    assert doc["Workflow"] == {"Status": "RESOLVED"} and "Repaired by keyfix" in doc["Note"]["Text"]

    recovered = securityhub.resolve_recovered("web-asg", {"recovered_at": "2025-03-14T09:05:00Z",
                                                          "time_to_repair_seconds": 300.0},
                                              Gw(), env=ON, now=t0 + timedelta(minutes=5))
    assert recovered == [fid]
    doc = held(hub)[fid]
    assert_asff(doc, resolved=True)
    assert doc["RecordState"] == "ARCHIVED" and doc["Compliance"]["Status"] == "PASSED"
    assert doc["ProductFields"]["keyfix/time_to_repair_seconds"] == "300.0"
    assert "launched again" in doc["Note"]["Text"] and doc["Workflow"] == {"Status": "RESOLVED"}
    untouched = held(hub)[other[0]]
    assert untouched["RecordState"] == "ACTIVE" and "Workflow" not in untouched
    # Recovered once: nothing active is left about the group.
    assert securityhub.resolve_recovered("web-asg", {"recovered_at": "x"}, Gw(), env=ON) == []
    assert securityhub.resolve_recovered("web", {"recovered_at": "x"}, Gw(), env=ON) == []  # a prefix is not the group


@pytest.mark.parametrize("fail", [ClientError({"Error": {"Code": "InvalidAccessException", "Message": "not subscribed"}},
                                              "BatchImportFindings"), RuntimeError("boom")])
def test_a_security_hub_failure_is_logged_and_never_raised(fail, caplog):
    assert securityhub.publish_report(report(finding()), Gw(fail), env=ON) == []
    assert securityhub.resolve_recovered("web-asg", {}, Gw(fail), env=ON) == []
    assert sum("Security Hub" in r.getMessage() for r in caplog.records) == 2


def test_refused_findings_are_named_and_not_resolved(hub, monkeypatch, caplog):
    from moto.securityhub.models import SecurityHubBackend

    def refuse(self, findings):
        return len(findings), 0, [{"Id": f["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "no"} for f in findings]

    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", refuse)
    assert securityhub.publish_report(report(finding(status=FixStatus.APPLIED)), Gw(), env=ON) == []
    assert any("refused finding keyfix/" in r.getMessage() for r in caplog.records)


_text = st.text(min_size=0, max_size=3000)
_findings = st.builds(
    lambda cause, group, status, predicted, explanation, principal, key: Finding(
        cause, principal, key, [], explanation,
        [Fix(FixKind.GRANT, status, ACCOUNT, key or "k", None, ["aws kms create-grant " + "x" * 600])] if status else [],
        resource=group, predicted=predicted),
    st.sampled_from([c for c in Cause if str(c) not in securityhub.QUIET]),
    st.one_of(st.none(), st.builds(group_arn, st.text(min_size=1, max_size=255)), st.just("i-0123456789abcdef0"),
              st.just("vol-0123456789abcdef0")),
    st.one_of(st.none(), st.sampled_from(list(FixStatus))),
    st.booleans(), _text,
    st.one_of(st.none(), st.just(SLR), st.just(f"arn:aws:iam::{ACCOUNT}:user/dev-alice")),
    st.one_of(st.none(), st.just(KEY)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_findings, st.text(max_size=80))
def test_every_finding_makes_a_valid_document_whose_id_ignores_the_event(f, event_id):
    now = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    doc = securityhub.asff(report(f, event_id=event_id), f, account=ACCOUNT, region=REGION, partition="aws", now=now)
    assert_asff(doc)
    json.dumps(doc)  # what boto3 sends
    other = securityhub.asff(report(f, event_id=event_id + "x"), f, account=ACCOUNT, region=REGION, partition="aws",
                             now=now)
    assert other["Id"] == doc["Id"] and len(doc["Id"]) <= 512
    # repaired only when every fix is applied or already present
    if f.fixes and all(str(x.status) in ("applied", "already-present") for x in f.fixes):
        assert doc["Compliance"]["Status"] == "PASSED"
    elif str(f.cause) == "undetermined":
        assert doc["Compliance"]["Status"] == "NOT_AVAILABLE"
    else:
        assert doc["Compliance"]["Status"] == ("WARNING" if f.predicted else "FAILED")
