"""Every finding is recorded with its report and event; history lists them by key, group,
cause and time through the table's indexes (never a scan), on moto."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from keyfix.report import Cause, EventRef, Finding, Fix, FixKind, FixStatus, Mode, Report, Trigger
from keyfix.store.findings import HistoryError, list_findings, record_findings, retention_days, stored_event
from tests.unit.test_template import load_template

TABLE = "keyfix"
K1 = "arn:aws:kms:us-east-1:111122223333:key/1111aaaa-12ab-34cd-56ef-1234567890ab"
K2 = "arn:aws:kms:us-east-1:111122223333:key/2222bbbb-12ab-34cd-56ef-1234567890ab"
DAY = 86400.0
T0 = 1_741_900_000.0  # 2025-03-13T21:06:40Z


def group(name):
    return f"arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:1:autoScalingGroupName/{name}"


class Store:  # the attributes record_findings uses from keyfix.store.Store
    persistent = True

    def __init__(self, client, now):
        self.client, self.table_name, self.clock = client, TABLE, lambda: now


@pytest.fixture
def ddb(monkeypatch):
    """The table exactly as template.yaml declares it (keys and indexes)."""
    props = load_template()["Resources"]["KeyfixTable"]["Properties"]
    scans = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        client.meta.events.register("before-call.dynamodb.Scan", lambda **kw: scans.append(kw))
        yield client
    assert scans == [], "history scanned the table"


def report(event_id, *findings):
    return Report(EventRef(event_id, "aws.autoscaling", "x", Trigger.ASG_LAUNCH_FAILURE), Mode.PROPOSE, list(findings))


def finding(cause, key, grp, status=FixStatus.PROPOSED):
    return Finding(cause, "arn:aws:iam::111122223333:role/r", key, ["kms:Decrypt"], "why",
                   [Fix(FixKind.GRANT, status, "111122223333", key or "-")], resource=group(grp) if grp else None)


def test_findings_are_listed_by_key_group_cause_and_time(ddb):
    runs = [
        (T0, "e1", [finding(Cause.SLR_NOT_IN_KEY_POLICY, K1, "web"), finding(Cause.KEY_DISABLED, K2, "web")]),
        (T0 + DAY, "e2", [finding(Cause.SLR_NOT_IN_KEY_POLICY, K1, "api", FixStatus.APPLIED)]),
        (T0 + 2 * DAY, "e3", [finding(Cause.UNDETERMINED, None, None)]),
    ]
    kept = 0
    for when, event_id, findings in runs:
        kept += record_findings(Store(ddb, when), report(event_id, *findings), {"id": event_id, "detail": {"n": 1}})
    assert kept == 4
    now = T0 + 3 * DAY

    def ids(**filters):
        return [r["id"] for r in list_findings(ddb, TABLE, now=now, **filters)]

    assert ids(key=K1) == ["finding#e1#0", "finding#e2#0"]
    assert ids(group="web") == ["finding#e1#0", "finding#e1#1"]
    assert ids(cause="slr-not-in-key-policy") == ["finding#e1#0", "finding#e2#0"]
    assert ids(cause="slr-not-in-key-policy", group="api") == ["finding#e2#0"]
    assert ids(key="none") == ["finding#e3#0"]
    assert ids() == ["finding#e1#0", "finding#e1#1", "finding#e2#0", "finding#e3#0"]
    assert ids(since="2025-03-15T00:00:00Z") == ["finding#e3#0"]
    assert ids(since="2d", key=K1) == ["finding#e2#0"]
    (row,) = list_findings(ddb, TABLE, now=now, key=K1, group="api")
    assert row["statuses"] == ["applied"] and row["report"]["event"]["id"] == "e2" and row["event_kept"]
    assert stored_event(ddb, TABLE, "e2") == {"id": "e2", "detail": {"n": 1}}
    assert stored_event(ddb, TABLE, "nope") is None


def test_records_expire_after_the_retention(ddb, monkeypatch):
    monkeypatch.setenv("KEYFIX_HISTORY_RETENTION_DAYS", "30")
    assert retention_days() == 30
    record_findings(Store(ddb, T0), report("e9", finding(Cause.KEY_DISABLED, K2, "web")), None)
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": "finding#e9#0"}})["Item"]
    assert int(item["expiration"]["N"]) == int(T0) + 30 * 86400 and "event" not in item
    for bad in ("x", ""):
        monkeypatch.setenv("KEYFIX_HISTORY_RETENTION_DAYS", bad)
        assert retention_days() == 400


@pytest.mark.parametrize("filters", [{"since": "yesterday"}, {"since": "90d"}, {"key": " "}, {"group": "g" * 3000}])
def test_bad_filters_are_clear_errors_and_read_nothing(ddb, filters):
    queries = []
    ddb.meta.events.register("before-call.dynamodb.Query", lambda **kw: queries.append(kw))
    with pytest.raises(HistoryError):
        list_findings(ddb, TABLE, now=T0, **filters)
    assert queries == []


def test_a_failed_put_is_logged_and_the_run_goes_on(ddb, caplog):
    from botocore.exceptions import ClientError

    class Broken:
        def put_item(self, **kw):
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "PutItem")

    assert record_findings(Store(Broken(), T0), report("e5", finding(Cause.KEY_DISABLED, K2, "w")), {}) == 0
    assert "finding finding#e5#0 not recorded" in caplog.text
