"""Per-key write lock: a conditional PutItem lease on id="lock#<key ARN>"."""

from __future__ import annotations

import pytest

from store_support import KEY, OTHER_KEY, TABLE

from keyfix.store import LockTimeout, NullStore, Store, store_from_settings


def _lock_item(ddb, key=KEY):
    return ddb.get_item(TableName=TABLE, Key={"id": {"S": f"lock#{key}"}}, ConsistentRead=True).get("Item")


def test_acquire_writes_a_lease_and_release_deletes_it(store, ddb, clock):
    with store.lock(KEY, "writer-a", ttl_seconds=60) as lease:
        item = _lock_item(ddb)
        assert item is not None
        assert item["owner"]["S"] == "writer-a"
        assert int(item["expiration"]["N"]) == int(clock.now) + 60 == lease.expires_at
    assert _lock_item(ddb) is None
    assert lease.lost is False


def test_a_held_lock_makes_others_wait_then_time_out(store, clock):
    with store.lock(KEY, "writer-a", ttl_seconds=60):
        start = clock.now
        with pytest.raises(LockTimeout, match="writer-a"):
            with store.lock(KEY, "writer-b", wait_seconds=5):
                pytest.fail("writer-b entered a lock writer-a holds")
        # It retried with bounded backoff (never more than 1 s per wait), up to the deadline.
        assert len(clock.sleeps) > 3
        assert max(clock.sleeps) <= 1.0
        assert clock.now - start == pytest.approx(5, abs=1e-6)


def test_locks_are_per_key(store):
    with store.lock(KEY, "writer-a"):
        with store.lock(OTHER_KEY, "writer-b") as other:
            assert other.key_arn == OTHER_KEY


def test_released_lock_is_free_at_once(store, clock):
    with store.lock(KEY, "writer-a"):
        pass
    with store.lock(KEY, "writer-b"):
        pass
    assert clock.sleeps == []


def test_exception_in_the_block_still_releases(store, ddb):
    with pytest.raises(RuntimeError):
        with store.lock(KEY, "writer-a"):
            raise RuntimeError("write failed")
    assert _lock_item(ddb) is None


def test_crashed_holder_blocks_until_its_lease_expires_then_is_taken_over(store, ddb, clock):
    crashed = store.lock(KEY, "crashed-writer", ttl_seconds=30)
    crashed.__enter__()  # and never __exit__: the process died holding the lock

    clock.advance(29)
    with pytest.raises(LockTimeout):
        with store.lock(KEY, "writer-b", wait_seconds=0.5):
            pass

    clock.advance(2)  # now past the lease (TTL deletion may lag; the condition checks expiration)
    assert _lock_item(ddb)["owner"]["S"] == "crashed-writer"
    with store.lock(KEY, "writer-b", ttl_seconds=30):
        assert _lock_item(ddb)["owner"]["S"] == "writer-b"
    assert _lock_item(ddb) is None


def test_waiter_gets_the_lock_when_the_crashed_lease_expires_during_its_wait(store, clock):
    crashed = store.lock(KEY, "crashed-writer", ttl_seconds=10)
    crashed.__enter__()
    start = clock.now
    with store.lock(KEY, "writer-b", wait_seconds=30):
        waited = clock.now - start
    assert 10 < waited < 13  # after the lease ran out, not long after (backoff capped at 1 s)


def test_release_never_deletes_a_lock_someone_else_took_over(store, ddb, clock):
    slow = store.lock(KEY, "slow-writer", ttl_seconds=5)
    slow_lease = slow.__enter__()
    clock.advance(10)
    with store.lock(KEY, "writer-b", ttl_seconds=60):
        slow.__exit__(None, None, None)  # the slow writer finally finishes
        assert slow_lease.lost is True
        assert _lock_item(ddb)["owner"]["S"] == "writer-b"
    assert _lock_item(ddb) is None


def test_same_owner_name_twice_is_still_two_holders(store, ddb, clock):
    # Two invocations may use the same owner string; the per-acquisition token keeps them apart.
    first = store.lock(KEY, "keyfix", ttl_seconds=5)
    first_lease = first.__enter__()
    clock.advance(10)
    with store.lock(KEY, "keyfix", ttl_seconds=60) as second:
        first.__exit__(None, None, None)
        assert first_lease.lost is True
        assert _lock_item(ddb)["token"]["S"] == second.token


def test_null_store_lock_is_a_no_op():
    null = NullStore()
    with null.lock(KEY, "a"):
        with null.lock(KEY, "b") as lease:  # would deadlock/timeout on a real lock
            assert lease.key_arn == KEY


def test_store_from_settings_without_table_says_so_on_stderr(capsys):
    from keyfix.config import Settings

    calls = []
    store = store_from_settings(Settings(), lambda service: calls.append(service))
    assert isinstance(store, NullStore)
    assert calls == []
    err = capsys.readouterr().err
    assert err == "keyfix: KEYFIX_TABLE_NAME not set: no idempotency, locks or audit\n"


def test_store_from_settings_with_table(capsys):
    from keyfix.config import Settings

    settings = Settings.from_env({"KEYFIX_TABLE_NAME": "tbl"})
    sentinel = object()
    store = store_from_settings(settings, lambda service, **kw: sentinel if service == "dynamodb" else None)
    assert isinstance(store, Store)
    assert store.table_name == "tbl" and store.client is sentinel
    # No KEYFIX_AUDIT_KEY_ARN here: said once (tests/unit/store/test_audit_integrity.py has the key).
    assert capsys.readouterr().err == (
        "keyfix: KEYFIX_AUDIT_KEY_ARN not set: audit records carry no MAC, and keyfix rollback refuses records "
        "without one\n")
