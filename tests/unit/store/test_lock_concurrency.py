"""Many writers, one key policy, a real HTTP endpoint: the per-key lock keeps every
statement. Runs a moto server on 127.0.0.1 (a free port) in this process; each writer
thread has its own boto3 session and clients, as concurrent Lambda invocations would.

KMS PutKeyPolicy replaces the whole policy and has no conditional form
(https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html), so without
serialisation two read-modify-write cycles lose one statement; the lock is DynamoDB's
atomic conditional PutItem
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import types
import uuid

import boto3
import pytest
from store_support import REGION, create_table

from keyfix.remedies import writers
from keyfix.remedies.safety import CheckedPrincipal
from keyfix.store import Store

pytestmark = pytest.mark.server

WRITERS = 8


@pytest.fixture(scope="module")
def endpoint():
    from moto.dynamodb.models import DynamoDBBackend
    from moto.server import ThreadedMotoServer

    # DynamoDB evaluates a condition and writes the item atomically; moto's threaded server
    # does not (it checks, then writes, in whichever request thread runs). Serialise moto's
    # item operations so the fake keeps the one guarantee the lock relies on.
    atomic = threading.RLock()

    def serialised(method):
        def run(*args, **kwargs):
            with atomic:
                return method(*args, **kwargs)
        return run

    quiet = logging.getLogger("werkzeug")  # one INFO line per request otherwise
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("put_item", "update_item", "delete_item", "get_item"):
            patch.setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            quiet.setLevel(level)


def _session_clients(endpoint):
    session = boto3.session.Session(region_name=REGION)
    return (session.client("kms", endpoint_url=endpoint),
            session.client("dynamodb", endpoint_url=endpoint))


@pytest.fixture
def setup(endpoint):
    kms, ddb = _session_clients(endpoint)
    table = create_table(ddb, f"keyfix-{uuid.uuid4().hex[:8]}")
    key_arn = kms.create_key(Description="shared")["KeyMetadata"]["Arn"]
    original = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    return types.SimpleNamespace(endpoint=endpoint, table=table, key_arn=key_arn, original=original, kms=kms)


def _statement(i):
    return {"Sid": f"keyfix-use-writer-{i}", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::111122223333:role/writer-{i}"},
            "Action": ["kms:Decrypt"], "Resource": "*"}


def _add(kms, key_arn, statement):
    """keyfix's key-policy writer, for the one principal the statement names (no journal)."""
    arn = statement["Principal"]["AWS"]
    checked = CheckedPrincipal(arn, "role", arn.rsplit("/", 1)[-1], "111122223333", "test")
    return writers.add_key_policy_statements(kms, checked, key_arn, [statement],
                                             writers.Journal(None, "event", None, "test"))


def _sids(kms, key_arn):
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    return [s.get("Sid") for s in policy["Statement"]], policy


def _run(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a writer hung"


def _assert_no_overlap(intervals):
    ordered = sorted(intervals)
    for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
        assert start >= end, "two writers were inside the lock at once"


def _slow_put(kms):
    # Widen the read-modify-write window so that, without the lock, lost updates would be
    # the rule rather than luck.
    kms.meta.events.register("before-call.kms.PutKeyPolicy", lambda **_: time.sleep(0.05))


def test_concurrent_writers_under_the_lock_lose_nothing(setup):
    barrier = threading.Barrier(WRITERS)
    intervals, errors = [], []

    def writer(i):
        try:
            kms, ddb = _session_clients(setup.endpoint)
            _slow_put(kms)
            store = Store(setup.table, ddb)
            barrier.wait()
            with store.lock(setup.key_arn, owner=f"writer-{i}", ttl_seconds=30, wait_seconds=90):
                start = time.monotonic()
                change = _add(kms, setup.key_arn, _statement(i))
                intervals.append((start, time.monotonic()))
                assert change["added_sids"] == [f"keyfix-use-writer-{i}"]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append((i, exc))

    _run([threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)])
    assert errors == []
    sids, policy = _sids(setup.kms, setup.key_arn)
    assert sorted(sids) == sorted([s.get("Sid") for s in setup.original["Statement"]]
                                  + [f"keyfix-use-writer-{i}" for i in range(WRITERS)])
    assert policy["Statement"][: len(setup.original["Statement"])] == setup.original["Statement"]
    assert len(intervals) == WRITERS
    _assert_no_overlap(intervals)


class InjectedFailure(Exception):
    pass


def test_writers_that_fail_or_die_holding_the_lock_lose_nobody_elses_statement(setup):
    ttl = 2
    failing = {1, 4}  # PutKeyPolicy raises before reaching KMS; the block exits; lock released
    dies_after_write = 6  # writes, then its process "dies" still holding the lock
    intervals, errors, finished, entries = [], [], [], []
    # Lock managers of "dead" writers stay referenced: a garbage-collected generator context
    # manager would run its `finally` (the release), which a killed process never does.
    zombies = []

    # A writer crashed before writing, holding the lock: nobody may enter until its lease ends.
    crash = {}

    def crashed_writer():
        kms, ddb = _session_clients(setup.endpoint)
        crash["at"] = time.time()
        manager = Store(setup.table, ddb).lock(setup.key_arn, "crashed-writer", ttl_seconds=ttl)
        manager.__enter__()
        zombies.append(manager)
        kms.get_key_policy(KeyId=setup.key_arn, PolicyName="default")
        # ... and the thread ends here without releasing.

    _run([threading.Thread(target=crashed_writer)])

    barrier = threading.Barrier(WRITERS)

    def writer(i):
        try:
            kms, ddb = _session_clients(setup.endpoint)
            _slow_put(kms)
            if i in failing:
                def fail(**_):
                    raise InjectedFailure(f"writer-{i}: connection reset during PutKeyPolicy")
                kms.meta.events.register("before-call.kms.PutKeyPolicy", fail)
            store = Store(setup.table, ddb)
            barrier.wait()
            manager = store.lock(setup.key_arn, owner=f"writer-{i}", ttl_seconds=ttl, wait_seconds=90)
            manager.__enter__()
            start = time.monotonic()
            entries.append(time.time())
            try:
                _add(kms, setup.key_arn, _statement(i))
            except InjectedFailure:
                intervals.append((start, time.monotonic()))
                manager.__exit__(InjectedFailure, None, None)
                errors.append(i)
                return
            intervals.append((start, time.monotonic()))
            if i == dies_after_write:
                finished.append(i)
                zombies.append(manager)
                return  # dies holding the lock: its lease expires after `ttl`
            manager.__exit__(None, None, None)
            finished.append(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append((i, exc))

    _run([threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)])

    assert sorted(errors, key=str) == sorted(failing)  # only the injected failures; no LockTimeout
    succeeded = set(range(WRITERS)) - failing
    assert set(finished) == succeeded
    # Nobody got in while the crashed writer's lease was valid.
    assert len(entries) == WRITERS and min(entries) >= crash["at"] + ttl
    assert len(zombies) == 2
    sids, policy = _sids(setup.kms, setup.key_arn)
    expected = [s.get("Sid") for s in setup.original["Statement"]] + [f"keyfix-use-writer-{i}" for i in succeeded]
    assert sorted(sids) == sorted(expected)  # every successful writer's statement, nothing lost
    assert policy["Statement"][: len(setup.original["Statement"])] == setup.original["Statement"]
    _assert_no_overlap(intervals)


def test_without_the_lock_an_interleaving_loses_an_update(setup):
    """Why the lock exists. Not a race: events force the interleaving read A, read B,
    write A (verified by A's read-back), write B. Both calls report success; A's statement
    is gone."""
    a_read, b_read, a_done = threading.Event(), threading.Event(), threading.Event()
    results, errors = {}, []

    def wait(event):
        assert event.wait(30), "choreography stalled"

    def writer(name, read_event, put_waits_for):
        try:
            kms, _ = _session_clients(setup.endpoint)
            kms.meta.events.register("after-call.kms.GetKeyPolicy", lambda **_: read_event.set())
            kms.meta.events.register("before-call.kms.PutKeyPolicy", lambda **_: wait(put_waits_for))
            results[name] = _add(kms, setup.key_arn, _statement(name))
        except BaseException as exc:  # noqa: BLE001
            errors.append((name, exc))
        finally:
            if name == "A":
                a_done.set()

    _run([threading.Thread(target=writer, args=("A", a_read, b_read)),
          threading.Thread(target=writer, args=("B", b_read, a_done))])
    assert errors == []
    assert results["A"]["added_sids"] == ["keyfix-use-writer-A"]  # A believed it succeeded
    assert results["B"]["added_sids"] == ["keyfix-use-writer-B"]
    sids, _ = _sids(setup.kms, setup.key_arn)
    assert "keyfix-use-writer-B" in sids
    assert "keyfix-use-writer-A" not in sids  # the lost update
