"""Powertools idempotency keyed on the incident, sharing keyfix's one table."""

from __future__ import annotations

import time

import pytest
from store_support import ACCOUNT, KEY, OTHER_KEY, TABLE

from keyfix.events.incident import Caller, Incident
from keyfix.idempotency import InProgressElsewhere, incident_key, make_idempotent, normalise_incident_key
from keyfix.report import Trigger

INCIDENT = {"account": ACCOUNT, "trigger": "asg-launch-failure", "subject": "web-asg", "key_arns": [KEY],
            "action": ""}


class Counter:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return {"run": len(self.calls), "args": list(args)}


def _items(ddb, prefix):
    items = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return [i for i in items if i["id"]["S"].startswith(prefix)]


def test_second_call_for_the_same_incident_returns_the_first_result_without_running(ddb):
    fn = Counter()
    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    first = once(INCIDENT, "event-1")
    second = once(dict(INCIDENT), "event-2")  # another delivery / another event of the storm
    assert first == {"run": 1, "args": ["event-1"]}
    assert second == first
    assert len(fn.calls) == 1

    [record] = _items(ddb, "incident#")
    assert record["status"]["S"] == "COMPLETED"
    assert len(record["id"]["S"]) == len("incident#") + 64  # sha256 hex
    # Expiry on the table's TTL attribute, in epoch seconds, `window` from now.
    assert abs(int(record["expiration"]["N"]) - (time.time() + 600)) < 5
    assert "in_progress_expiration" in record


def test_key_arn_order_and_duplicates_do_not_matter(ddb):
    fn = Counter()
    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    once({**INCIDENT, "key_arns": [KEY, OTHER_KEY]})
    once({**INCIDENT, "key_arns": [OTHER_KEY, KEY, KEY]})
    assert len(fn.calls) == 1


@pytest.mark.parametrize("field, value", [
    ("account", "444455556666"), ("trigger", "kms-access-denied"), ("subject", "other-asg"),
    ("key_arns", [OTHER_KEY]), ("action", "kms:Decrypt"),
])
def test_a_different_incident_runs(ddb, field, value):
    fn = Counter()
    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    once(INCIDENT)
    once({**INCIDENT, field: value})
    assert len(fn.calls) == 2


def test_after_the_window_it_runs_again(ddb):
    fn = Counter()
    once = make_idempotent(fn, TABLE, 1, dynamodb_client=ddb)
    once(INCIDENT)
    once(INCIDENT)
    assert len(fn.calls) == 1
    time.sleep(2.1)  # Powertools compares whole epoch seconds with its own clock
    assert once(INCIDENT) == {"run": 2, "args": []}
    assert len(fn.calls) == 2


def test_a_failed_run_is_not_remembered(ddb):
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("throttled")
        return {"ok": True}

    once = make_idempotent(flaky, TABLE, 600, dynamodb_client=ddb)
    with pytest.raises(RuntimeError):
        once(INCIDENT)
    assert once(INCIDENT) == {"ok": True}
    assert len(attempts) == 2


def test_same_incident_while_the_first_is_still_running_is_refused(ddb):
    inner = []

    def fn():
        with pytest.raises(InProgressElsewhere):
            once(INCIDENT)  # a concurrent duplicate arrives while we work
        inner.append("done")
        return "first"

    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    assert once(INCIDENT) == "first"
    assert inner == ["done"]


def test_without_a_lambda_context_in_progress_expires_after_the_cli_timeout(ddb):
    seen = {}

    def fn():
        [record] = _items(ddb, "incident#")
        seen["status"] = record["status"]["S"]
        seen["in_progress_ms"] = int(record["in_progress_expiration"]["N"])
        return None

    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb, cli_timeout_seconds=60)
    once(INCIDENT)
    assert seen["status"] == "INPROGRESS"
    # A crashed `keyfix handle` blocks the incident for 60 s, not for the whole window.
    assert abs(seen["in_progress_ms"] - (time.time() + 60) * 1000) < 5000


def test_a_registered_lambda_context_sets_in_progress_expiry(ddb):
    class Context:
        def get_remaining_time_in_millis(self):
            return 7_000

    seen = {}

    def fn():
        [record] = _items(ddb, "incident#")
        seen["in_progress_ms"] = int(record["in_progress_expiration"]["N"])

    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    once.register_lambda_context(Context())
    once(INCIDENT)
    assert abs(seen["in_progress_ms"] - (time.time() + 7) * 1000) < 3000


def test_shares_the_table_with_store_items(ddb):
    from keyfix.store import Store

    store = Store(TABLE, ddb)
    fn = Counter()
    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    change_id = store.record_change({"kind": "grant", "target": KEY, "grant_id": "g"}, "e", {}, "me")
    assert store.should_notify("fp", 600)
    with store.lock(KEY, "me"):
        once(INCIDENT)
        once(INCIDENT)
    assert len(fn.calls) == 1
    assert [c["change_id"] for c in store.list_changes()] == [change_id]
    ids = sorted(i["id"]["S"].split("#", 1)[0] for i in ddb.scan(TableName=TABLE)["Items"])
    assert ids == ["change", "incident", "notify"]


def test_without_a_table_every_call_runs():
    fn = Counter()
    once = make_idempotent(fn, None, 600)
    once(INCIDENT)
    once(INCIDENT)
    once.register_lambda_context(object())
    assert len(fn.calls) == 2


def test_event_ids_are_not_part_of_the_key():
    with pytest.raises(ValueError, match="event_id"):
        normalise_incident_key({**INCIDENT, "event_id": "abc"})


def _asg_incident(event_id, message):
    return Incident(Trigger.ASG_LAUNCH_FAILURE, event_id, "aws.autoscaling",
                    "EC2 Instance Launch Unsuccessful", ACCOUNT, "us-east-1", group_name="web-asg",
                    activity_id=event_id, status_code="Failed", status_message=message)


def test_incident_key_of_a_storm_of_asg_events_is_one_key():
    a = incident_key(_asg_incident("e-1", "Client.InternalError: Client error on launch. (attempt 1)"))
    b = incident_key(_asg_incident("e-2", "Client.InternalError: Client error on launch. (attempt 2)"))
    assert a == b == {"account": ACCOUNT, "trigger": "asg-launch-failure", "subject": "web-asg",
                      "key_arns": [], "action": ""}


def test_incident_key_of_a_kms_denial_is_about_the_principal_key_and_action():
    caller = Caller("AssumedRole", f"arn:aws:iam::{ACCOUNT}:role/app", ACCOUNT,
                    session_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1")
    incident = Incident(Trigger.KMS_ACCESS_DENIED, "e-9", "aws.kms", "AWS API Call via CloudTrail", ACCOUNT,
                        "us-east-1", caller=caller, action="kms:Decrypt", key_arns=(KEY,))
    assert incident_key(incident) == {"account": ACCOUNT, "trigger": "kms-access-denied",
                                      "subject": f"arn:aws:iam::{ACCOUNT}:role/app", "key_arns": [KEY],
                                      "action": "kms:Decrypt"}


def test_incident_key_of_ebs_and_ec2_events():
    ebs = Incident(Trigger.EBS_VOLUME_FAILURE, "e", "aws.ec2", "EBS Volume Notification", ACCOUNT, "us-east-1",
                   volume_id="vol-1", ebs_operation="createVolume", key_arns=(KEY,))
    ec2 = Incident(Trigger.EC2_LAUNCH_FAILURE, "e", "aws.ec2", "EC2 Instance State-change Notification", ACCOUNT,
                   "us-east-1", instance_id="i-1", instance_state="terminated")
    assert (incident_key(ebs)["subject"], incident_key(ebs)["action"]) == ("vol-1", "createVolume")
    assert incident_key(ec2)["subject"] == "i-1"
