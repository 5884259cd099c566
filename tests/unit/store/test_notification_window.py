"""A write opens its finding's notification window itself (issue #16): `open_window` starts
the window now, whatever was there, and `should_notify` then stays quiet until it passes."""

from __future__ import annotations

from store_support import ACCOUNT, KEY

from keyfix.store import NullStore, finding_fingerprint

FP = finding_fingerprint(ACCOUNT, "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/"
                         "AWSServiceRoleForAutoScaling", KEY, "no-missing-permission")


def test_an_opened_window_keeps_the_finding_quiet_until_it_passes(store, clock):
    store.open_window(FP, 600)
    assert store.should_notify(FP, 600) is False
    clock.advance(599)
    assert store.should_notify(FP, 600) is False
    clock.advance(2)
    assert store.should_notify(FP, 600) is True


def test_opening_restarts_a_window_that_was_already_open(store, clock):
    assert store.should_notify(FP, 600) is True
    clock.advance(500)
    store.open_window(FP, 600)  # the write: on-call hears about it now
    clock.advance(200)  # 700 s after the first page, 200 after the write
    assert store.should_notify(FP, 600) is False
    clock.advance(401)
    assert store.should_notify(FP, 600) is True


def test_a_window_is_per_fingerprint(store):
    store.open_window(FP, 600)
    other = finding_fingerprint(ACCOUNT, "another-principal", KEY, "no-missing-permission")
    assert store.should_notify(other, 600) is True


def test_without_a_table_nothing_is_kept_and_every_notification_goes_out():
    null = NullStore()
    assert null.open_window(FP, 600) is None
    assert null.should_notify(FP, 600) is True
