"""Security Hub end to end on moto through the Lambda handler (SecurityHub=true): an event's
finding is imported, the repair in the same run resolves it, the group's recovery archives it,
a prediction and the later failure of the same group are one finding, and with the option off nothing reaches
Security Hub at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keyfix.securityhub import ENABLE_ENV
from tests.integration.test_followup import FollowUps, applied_a1, launch_successful
from tests.integration.conftest import load_event, run_lambda
from tests.integration.test_sweep import sweep_lambda
from tests.support.accounts import ASG_ACCOUNT, GROUP, REGION, build_a1


@pytest.fixture
def hub(world, monkeypatch):
    monkeypatch.setenv(ENABLE_ENV, "true")
    client = world.client("securityhub")
    client.enable_security_hub()
    return client


def findings(client) -> list[dict]:
    return client.get_findings(MaxResults=100)["Findings"]


def test_an_applied_fix_is_imported_resolved_then_archived_on_recovery(world, monkeypatch, hub):
    now = datetime.now(UTC).replace(microsecond=0)
    applied_a1(world, monkeypatch, FollowUps(world, monkeypatch), now - timedelta(seconds=60))

    (doc,) = findings(hub)
    assert doc["AwsAccountId"] == ASG_ACCOUNT and doc["GeneratorId"] == "keyfix/slr-not-in-key-policy"
    assert doc["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ASG_ACCOUNT}:product/{ASG_ACCOUNT}/default"
    assert doc["Compliance"]["Status"] == "PASSED" and doc["Workflow"] == {"Status": "RESOLVED"}
    assert doc["RecordState"] == "ACTIVE" and doc["ProductFields"]["keyfix/fix_status"] == "applied"
    assert any(r["Type"] == "AwsAutoScalingAutoScalingGroup" and r["Id"].endswith(f"/{GROUP}") for r in doc["Resources"])

    report = run_lambda(launch_successful(now + timedelta(seconds=60)))

    assert report["recovery"] is not None
    (after,) = findings(hub)
    assert after["Id"] == doc["Id"] and after["RecordState"] == "ARCHIVED"
    assert after["UpdatedAt"] > doc["UpdatedAt"] and after["CreatedAt"] == doc["CreatedAt"]
    assert "launched again" in after["Note"]["Text"]


def test_a_prediction_then_the_failure_are_one_finding_warning_then_failed(world, hub):
    build_a1(world.env, record_failure=False)
    sweep_lambda("sweep-hub")  # nothing has failed yet: predicted
    (doc,) = findings(hub)
    assert doc["Compliance"]["Status"] == "WARNING" and doc["Severity"]["Label"] == "MEDIUM"
    assert doc["ProductFields"]["keyfix/predicted"] == "true" and "Workflow" not in doc

    run_lambda(load_event("asg-launch-cancelled-a1.json"))  # then the launch fails

    (again,) = findings(hub)
    assert again["Id"] == doc["Id"] and again["UpdatedAt"] > doc["UpdatedAt"]
    assert again["CreatedAt"] == doc["CreatedAt"]
    assert again["Compliance"]["Status"] == "FAILED" and again["Severity"]["Label"] == "HIGH"
    assert again["ProductFields"]["keyfix/predicted"] == "false"
    assert again["Remediation"]["Recommendation"]["Text"].startswith("keyfix fix: key-policy-statement on ")


def test_off_by_default_security_hub_is_never_called(world, monkeypatch):
    import botocore.client

    services: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        services.append(self.meta.service_model.service_name)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    build_a1(world.env)
    report = run_lambda(load_event("asg-launch-cancelled-a1.json"))
    assert report["findings"] and "securityhub" not in services
