"""A burst is one message (issue #12, keyfix.predict.digest): a key change breaking several groups,
and a sweep finding several broken groups, each page on-call once with a digest listing every
group; the notification windows still hold across them (a finding told by a sweep is not told
again by a key change within the hour, and the reverse), and a lone group is the usual message."""

from __future__ import annotations

import json

from keyfix.notify import DIGEST_SEPARATOR, SEPARATOR
from keyfix.sim.scenarios.common import root_only_policy
from keyfix.sim.scenarios.fleet import build_many
from tests.integration.conftest import load_event, run_lambda
from tests.integration.test_sweep import sweep_lambda
from tests.support.accounts import ASG_ACCOUNT

SAMPLE_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GROUPS = 5  # g-0000 uses the root-only key from the start; g-0001..g-0004 share the healthy key


def _digest(message: dict) -> dict:
    text, separator, json_part = message["Message"].partition(DIGEST_SEPARATOR)
    assert separator, "not a digest"
    digest = json.loads(json_part)
    assert digest["schema"] == "keyfix.digest/1" and digest["count"] == len(digest["reports"])
    return digest


def _groups_of(digest: dict) -> list[str]:
    return sorted(f["resource"].rsplit("/", 1)[1] for r in digest["reports"] for f in r["findings"])


def _break_healthy_key(world, fleet) -> str:
    key = fleet.keys["healthy"]
    world.client("kms").put_key_policy(KeyId=key.rsplit("/", 1)[-1], PolicyName="default",
                                       Policy=json.dumps(root_only_policy(ASG_ACCOUNT)))  # alice's edit
    return key


def test_a_key_change_breaking_several_groups_is_one_digest(world):
    fleet = build_many(world.env, count=GROUPS, broken_every=100)
    key = _break_healthy_key(world, fleet)

    report = run_lambda(load_event("cloudtrail-kms-putkeypolicy-change.json", {SAMPLE_KEY: key}))

    broken = [f"g-{i:04d}" for i in range(1, GROUPS)]
    assert sorted(f["resource"].rsplit("/", 1)[1] for f in report["findings"]) == broken
    (message,) = world.notifications()  # one page, not one per group
    digest = _digest(message)
    assert _groups_of(digest) == broken
    assert all(r["event"]["trigger"] == "key-change" for r in digest["reports"])
    assert message["Subject"].startswith("[keyfix] digest key change PutKeyPolicy by ")
    attributes = message["MessageAttributes"]
    assert attributes["kind"]["Value"] == "digest" and attributes["trigger"]["Value"] == "key-change"
    assert sorted(json.loads(attributes["group"]["Value"])) == broken
    text = message["Message"].partition(DIGEST_SEPARATOR)[0]
    assert all(name in text for name in broken)

    # The same change seen again within the hour: every finding's window is open, no page.
    run_lambda(load_event("cloudtrail-kms-putkeypolicy-change.json",
                          {SAMPLE_KEY: key, "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c": "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1d"}))
    assert world.notifications() == []


def test_a_sweep_finding_several_broken_groups_is_one_digest_then_quiet(world):
    fleet = build_many(world.env, count=GROUPS, broken_every=100)
    _break_healthy_key(world, fleet)

    doc = sweep_lambda("sweep-burst-1")

    assert len(doc["reports"]) == GROUPS  # g-0000 and the four the edit broke
    (message,) = world.notifications()
    assert _groups_of(_digest(message)) == [f"g-{i:04d}" for i in range(GROUPS)]
    assert message["Subject"].startswith("[keyfix] digest sweep sweep-burst-1: 5 reports")

    sweep_lambda("sweep-burst-2")  # within the hour: the windows hold
    assert world.notifications() == []


def test_a_sweep_after_a_key_change_tells_only_what_the_change_did_not(world):
    fleet = build_many(world.env, count=GROUPS, broken_every=100)
    key = _break_healthy_key(world, fleet)
    run_lambda(load_event("cloudtrail-kms-putkeypolicy-change.json", {SAMPLE_KEY: key}))
    assert len(world.notifications()) == 1

    sweep_lambda("sweep-after-change")

    # g-0000 was broken before the change (its own key): the only news. One report: the usual message.
    (message,) = world.notifications()
    assert DIGEST_SEPARATOR not in message["Message"]
    told = json.loads(message["Message"].partition(SEPARATOR)[2])
    assert [f["resource"].rsplit("/", 1)[1] for f in told["findings"]] == ["g-0000"]
