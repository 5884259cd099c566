"""Powertools idempotency keyed on the incident, sharing keyfix's one table."""

from __future__ import annotations

import time

import pytest
from store_support import ACCOUNT, KEY, OTHER_KEY, TABLE

from keyfix.idempotency import (
    INCIDENT_FIELDS,
    PRINCIPAL_FIELDS,
    InProgressElsewhere,
    NotRemembered,
    make_idempotent,
    normalise_incident_key,
)

INCIDENT = {"account": ACCOUNT, "region": "us-east-1", "trigger": "asg-launch-failure", "subject": "web-asg",
            "cause_class": "kms:Client.InternalError", "principal": {}, "key_arns": [KEY], "action": "",
            "mode": "propose"}


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
    ("account", "444455556666"), ("region", "eu-west-1"), ("trigger", "kms-access-denied"),
    ("subject", "other-asg"), ("cause_class", "not-kms:Server.InsufficientInstanceCapacity"),
    ("principal", {"principal_id": "AROAOTHER"}), ("key_arns", [OTHER_KEY]), ("action", "kms:Decrypt"),
    ("mode", "apply"),
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
    prefixes = [i["id"]["S"].split("#", 1)[0] for i in ddb.scan(TableName=TABLE)["Items"]]
    # One incident record; the store's own items (change, notify, ...) are all still there.
    assert prefixes.count("incident") == 1 and {"change", "notify"} <= set(prefixes)


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


def test_a_run_that_declines_to_be_remembered_returns_its_result_and_keeps_no_record(ddb):
    results = iter([NotRemembered({"run": 1}), {"run": 2}])

    def fn():
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    assert once(INCIDENT) == {"run": 1}
    assert _items(ddb, "incident#") == []
    assert once(INCIDENT) == {"run": 2}  # ran again: nothing answered for the incident
    assert once(INCIDENT) == {"run": 2}  # now remembered
    [record] = _items(ddb, "incident#")
    assert record["status"]["S"] == "COMPLETED"


def test_without_a_table_a_declined_run_still_returns_its_result():
    once = make_idempotent(lambda: (_ for _ in ()).throw(NotRemembered("r")), None, 600)
    assert once(INCIDENT) == "r"


@pytest.mark.parametrize("key, message", [
    ("not a mapping", "mapping"),
    ({**INCIDENT, "event_id": "abc"}, "event_id"),
    ({**INCIDENT, "account": 111122223333}, "account must be a string"),
    ({**INCIDENT, "key_arns": {"a": 1}}, "key_arns must be a list"),
    ({**INCIDENT, "key_arns": [KEY, 7]}, "key_arns must be a string"),
    ({**INCIDENT, "principal": "arn:aws:iam::111122223333:user/x"}, "principal must be a mapping"),
    ({**INCIDENT, "principal": {"arn": "a", "time": "t"}}, "time"),
    ({**INCIDENT, "principal": {"arn": ["a"]}}, "principal.arn must be a string"),
])
def test_a_malformed_key_is_refused_with_a_clear_error_and_nothing_runs(ddb, key, message):
    fn = Counter()
    once = make_idempotent(fn, TABLE, 600, dynamodb_client=ddb)
    with pytest.raises(ValueError, match=message):
        once(key)
    assert fn.calls == [] and _items(ddb, "incident#") == []


def test_the_canonical_key_has_every_field_and_the_whole_principal():
    key = normalise_incident_key({"account": ACCOUNT, "principal": {"arn": "a"}, "key_arns": KEY})
    assert list(key) == list(INCIDENT_FIELDS)
    assert key["principal"] == {name: ("a" if name == "arn" else "") for name in PRINCIPAL_FIELDS}
    assert key["key_arns"] == [KEY]
