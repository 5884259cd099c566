"""A scan diagnoses each distinct question once (keyfix.predict.diagnosis_memo, issue #14 P6),
and that never changes what it reports: the same document as diagnosing every group afresh, in
any order of the groups, and a key whose policy changed between two scans is read again."""

from __future__ import annotations

import json
import random

import pytest

from keyfix.sim.scenarios.fleet import add_group, build_mixed, slr_key_policy
from tests.support.accounts import ASG_ACCOUNT, REGION


def _scan(*, memo: bool, order: list[str] | None = None) -> tuple[dict, list[int]]:
    """One scan (propose mode, a gateway of its own, as `keyfix scan` runs); returns its document
    with the scan's random event id taken out, and how many times the model was asked."""
    diagnosed: list[int] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        doc = _patched_scan(monkeypatch, diagnosed, memo, order)
    return doc, diagnosed


def _patched_scan(monkeypatch: pytest.MonkeyPatch, diagnosed: list[int], memo: bool, order: list[str] | None) -> dict:
    import keyfix.diagnose
    import keyfix.predict.check as check
    import keyfix.predict.subjects as subjects
    from keyfix.config import Settings
    from keyfix.predict.diagnosis_memo import diagnose_once
    from keyfix.predict.scan import document, scan
    from keyfix.resolve.gateway import AwsGateway

    def counted(situation):
        diagnosed.append(1)
        return keyfix.diagnose.diagnose(situation)

    if memo:
        monkeypatch.setattr(check, "diagnose", counted)
        monkeypatch.setattr(check, "diagnose_once", diagnose_once)
    else:
        monkeypatch.setattr(check, "diagnose_once", lambda situation, names, memo_, diagnose: counted(situation))
    if order is not None:  # the listing in another order: the memo fills in another order
        real_page = subjects.group_page

        def reordered(*args, **kwargs):
            page = real_page(*args, **kwargs)
            ranked = sorted(page.subjects, key=lambda s: order.index(s.name))
            return subjects.Page(page.token, ranked, page.next_token)

        monkeypatch.setattr("keyfix.predict.sweep.group_page", reordered)
    gw = AwsGateway(region=REGION)
    outcome, account, region = scan(Settings.from_env().with_mode("propose"), gw)
    doc = document(outcome, account, region)
    for report in doc["reports"]:
        report["event"]["id"] = "scan"
    return doc


def _fleet(world) -> dict[str, str]:
    fleet = build_mixed(world.env)
    # More groups on each key, and "Decrypt", whose name shows in its own findings' text
    # ("kms:Decrypt"): its diagnosis is never kept for others, though it may use one kept.
    for i in range(4):
        for label in ("healthy", "broken", "disabled"):
            add_group(world.env, fleet, f"{label}-more-{i}", fleet.keys[label])
    add_group(world.env, fleet, "Decrypt", fleet.keys["broken"])
    return fleet.keys


def _listed(world) -> list[str]:
    return [g["AutoScalingGroupName"] for g in
            world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]]


def _questions(order: list[str]) -> int:
    """Diagnoses a scan in this order makes: one per key and one for the unencrypted group, and
    one more when "Decrypt" is the first group on the broken key (its diagnosis is not kept)."""
    on_broken = [n for n in order if n == "Decrypt" or n.startswith("broken")]
    return 4 + (on_broken[0] == "Decrypt")


def _by_resource(doc: dict) -> dict[str, list[dict]]:
    return {r["findings"][0]["resource"]: r["findings"] for r in doc["reports"]}


def test_the_memo_reports_exactly_what_diagnosing_every_group_reports(world):
    _fleet(world)

    fresh, fresh_count = _scan(memo=False)
    memoised, memo_count = _scan(memo=True)

    assert memoised == fresh
    assert fresh["checked"]["groups"] == 17 and len(fresh["reports"]) == 11  # 6 broken (with "Decrypt"), 5 disabled
    assert len(fresh_count) == 17  # every group diagnosed
    # one question per key and one for the unencrypted group
    assert len(memo_count) == _questions(_listed(world))


@pytest.mark.parametrize("seed", ["Decrypt first", "Decrypt last", *range(4)])
def test_any_order_of_the_groups_gives_the_same_findings_per_group(world, seed):
    _fleet(world)
    names = _listed(world)
    if isinstance(seed, int):
        random.Random(seed).shuffle(names)
    else:
        names.remove("Decrypt")
        names = ["Decrypt", *names] if seed == "Decrypt first" else [*names, "Decrypt"]

    fresh, _ = _scan(memo=False)
    shuffled, count = _scan(memo=True, order=names)

    assert _by_resource(shuffled) == _by_resource(fresh)
    assert len(count) == _questions(names)


def test_a_key_policy_changed_between_two_scans_is_read_again(world):
    keys = _fleet(world)

    before, _ = _scan(memo=True)
    world.client("kms").put_key_policy(KeyId=keys["broken"], PolicyName="default",
                                       Policy=json.dumps(slr_key_policy(ASG_ACCOUNT, REGION)))
    after, count = _scan(memo=True)

    causes = lambda doc: sorted({f["cause"] for r in doc["reports"] for f in r["findings"]})  # noqa: E731
    assert causes(before) == ["key-disabled", "slr-not-in-key-policy"]
    assert causes(after) == ["key-disabled"]
    assert len(after["reports"]) == 5 and len(count) == _questions(_listed(world))
