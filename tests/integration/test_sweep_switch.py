"""The scheduled sweep honours on-call's runtime switch as an event does (keyfix.switch,
keyfix.pipeline.process_event): paused, it reads, writes and sends nothing and says so (its
cursor is kept for after the pause); force-propose makes its fixes proposals even in apply
mode on an opted-in key. Each test flips the switch back and shows the same sweep acting, so
what stopped it is the switch and nothing else."""

from __future__ import annotations

import jsonschema
import pytest

from keyfix.predict.cursor import Cursor, TableCursorStore
from keyfix.sim.scenarios.asg import build_a1
from tests.integration.test_sweep import keyfix_statements, sweep_lambda
from tests.integration.test_scan import SCAN_SCHEMA
from tests.support.accounts import ASG_ACCOUNT, REGION

SWITCH = "/keyfix/test/switch"


@pytest.fixture
def flip(world, monkeypatch):
    """flip(value): put the switch parameter in the workload account and drop Powertools'
    cached value and provider, as the cache lifetime running out would."""
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("KEYFIX_SWITCH_PARAMETER", SWITCH)
    ssm = world.client("ssm")

    def set_to(value: str) -> None:
        ssm.put_parameter(Name=SWITCH, Value=value, Type="String", Overwrite=True)
        parameters.clear_caches()

    yield set_to
    parameters.clear_caches()


@pytest.fixture
def apply_mode(monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    monkeypatch.setenv("KEYFIX_KEY_ALLOWLIST", f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/*")


def table_items(world) -> list[dict]:
    return world.client("dynamodb").scan(TableName=world.table_name)["Items"]


def test_a_paused_sweep_does_nothing_but_say_so_and_keeps_its_place(world, apply_mode, flip, gateway_calls):
    case = build_a1(world.env)  # a failed launch that emitted no event: what a sweep is for
    store = TableCursorStore(world.client("dynamodb"), world.table_name, REGION)
    where = Cursor("groups", None, 0)
    store.save(where)  # an earlier sweep ran out of time here
    items_before = table_items(world)
    flip("pause")

    doc = sweep_lambda("sweep-paused")

    assert doc["switch"] == {"state": "pause", "source": SWITCH, "reason": None}
    assert doc["reports"] == [] and doc["checked"] == {"groups": 0, "instances": 0, "keys": 0}
    assert doc["complete"] is False
    (said,) = doc["unchecked"]
    assert "paused by the runtime switch" in said and SWITCH in said
    assert gateway_calls == []  # nothing read through keyfix's gateway
    assert table_items(world) == items_before and store.load() == where  # nothing recorded, the place kept
    assert world.notifications() == [] and keyfix_statements(world, case.key_arn) == []

    flip("normal")  # resumed: the same sweep now checks and repairs
    doc = sweep_lambda("sweep-resumed")

    assert doc["switch"]["state"] == "normal" and doc["resumed_from"] == where.to_json()
    (report,) = doc["reports"]
    assert report["switch"]["state"] == "normal" and report["mode"] == "apply"
    assert report["findings"][0]["cause"] == "slr-not-in-key-policy"
    assert len(keyfix_statements(world, case.key_arn)) == 2
    assert len(world.notifications()) == 1


@pytest.mark.parametrize("value", ["propose", "PROPOSE ", "resume-later"])
def test_force_propose_makes_the_sweeps_fixes_proposals(world, apply_mode, flip, value):
    """`propose`, and a value keyfix does not know (taken as propose: keyfix.switch)."""
    case = build_a1(world.env)
    flip(value)

    doc = sweep_lambda("sweep-proposing")

    assert doc["switch"]["state"] == "propose"
    assert (doc["switch"]["reason"] is None) == (value.strip().lower() == "propose")
    (report,) = doc["reports"]
    assert report["mode"] == "propose" and report["switch"] == doc["switch"]
    (finding,) = report["findings"]
    assert finding["cause"] == "slr-not-in-key-policy" and finding["predicted"] is False
    assert finding["fixes"] and {fix["status"] for fix in finding["fixes"]} == {"proposed"}
    assert keyfix_statements(world, case.key_arn) == []  # apply mode, opted-in key: still nothing written
    (message,) = world.notifications()  # on-call still hears of it
    assert "web-asg" in message["Message"]

    flip("normal")  # the switch, not anything else, held the write back
    doc = sweep_lambda("sweep-applying")

    (report,) = doc["reports"]
    assert report["mode"] == "apply" and report["switch"]["state"] == "normal"
    assert [fix["status"] for f in report["findings"] for fix in f["fixes"]].count("applied") == 1
    assert len(keyfix_statements(world, case.key_arn)) == 2


def test_the_paused_document_is_a_valid_scan_document():
    from keyfix.predict.lambda_sweep import paused_document
    from keyfix.switch import Switch

    for account, region in ((ASG_ACCOUNT, REGION), (None, None)):
        doc = paused_document(Switch("pause", SWITCH), account, region)
        jsonschema.validate(doc, SCAN_SCHEMA)
        assert doc["reports"] == [] and not doc["complete"]
