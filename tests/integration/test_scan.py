"""`keyfix scan` on a simulated account (docs/contract.md, "keyfix scan"): exit status, the
keyfix.scan/1 document (validated against src/keyfix/schemas/scan.schema.json and each report
against the report schema), what is read once, and --group."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import jsonschema
import pytest

from keyfix.sim.scenarios.fleet import build_mixed
from tests.integration.conftest import REPORT_SCHEMA
from tests.support.accounts import ASG_ACCOUNT, REGION

ROOT = Path(__file__).resolve().parents[2]
SCAN_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/scan.schema.json").read_text())


def scan(*args: str) -> tuple[int, dict | str, str]:
    from keyfix.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["scan", *args])
    if "--format" in args and args[args.index("--format") + 1] == "json":
        doc = json.loads(out.getvalue())
        jsonschema.validate(doc, SCAN_SCHEMA)
        for report in doc["reports"]:
            jsonschema.validate(report, REPORT_SCHEMA)
        return status, doc, err.getvalue()
    return status, out.getvalue(), err.getvalue()


def by_group(doc: dict) -> dict[str, dict]:
    out = {}
    for report in doc["reports"]:
        resources = {f["resource"] for f in report["findings"]}
        assert len(resources) == 1, resources
        out[resources.pop().rsplit("/", 1)[-1]] = report
    return out


def test_scan_finds_the_broken_and_disabled_groups_and_counts_the_rest(world):
    fleet = build_mixed(world.env)
    before = {k: world.key_policy(a) for k, a in fleet.keys.items()}

    status, doc, _ = scan("--format", "json")

    assert status == 1
    assert (doc["account"], doc["region"]) == (ASG_ACCOUNT, REGION)
    assert doc["checked"] == {"groups": 4, "instances": 0, "keys": 3}
    reports = by_group(doc)
    assert sorted(reports) == ["broken-asg", "disabled-asg"]
    for name, report in reports.items():
        assert report["event"]["trigger"] == "scheduled-sweep" and report["mode"] == "propose"
        for finding in report["findings"]:
            assert finding["resource"] == fleet.groups[name]
            assert finding["predicted"] is True
            assert finding["explanation"].startswith(f"{name} will fail at its next launch: ")
    (broken,) = reports["broken-asg"]["findings"]
    assert broken["cause"] == "slr-not-in-key-policy" and broken["key_arn"] == fleet.keys["broken"]
    assert {fix["status"] for fix in broken["fixes"]} == {"proposed"}
    assert any("put-key-policy" in line for fix in broken["fixes"] for line in fix["cli"])
    (disabled,) = reports["disabled-asg"]["findings"]
    assert disabled["cause"] == "key-disabled" and disabled["key_arn"] == fleet.keys["disabled"]
    assert doc["unchecked"] == [] and doc["complete"] is True
    # propose: nothing written, nobody paged
    assert {k: world.key_policy(a) for k, a in fleet.keys.items()} == before
    assert world.notifications() == []


def test_scan_text_names_each_problem_and_sums_up(world):
    build_mixed(world.env)

    status, out, _ = scan()

    assert status == 1
    lines = out.splitlines()
    problems = [line for line in lines if line.startswith("arn:")]
    assert len(problems) == 2
    assert any("broken-asg" in line and "slr-not-in-key-policy" in line and "would fail" in line for line in problems)
    assert any("disabled-asg" in line and "key-disabled" in line for line in problems)
    assert lines[-1].startswith("Checked 4 group(s), 0 stopped instance(s), 3 key(s)")


@pytest.mark.parametrize("names, status, expected", [
    (["healthy-asg"], 0, []),
    (["plain-asg"], 0, []),
    (["broken-asg"], 1, ["broken-asg"]),
    (["healthy-asg", "disabled-asg"], 1, ["disabled-asg"]),
])
def test_group_limits_the_scan(world, names, status, expected):
    build_mixed(world.env)
    args = [a for name in names for a in ("--group", name)]

    got, doc, _ = scan(*args, "--format", "json")

    assert got == status
    assert doc["checked"]["groups"] == len(names) and doc["checked"]["instances"] == 0
    assert sorted(by_group(doc)) == expected


def test_an_unknown_group_is_bad_input(world):
    build_mixed(world.env)

    status, doc, err = scan("--group", "healthy-asg", "--group", "no-such-asg", "--format", "json")

    assert status == 2
    assert doc["unknown_groups"] == ["no-such-asg"] and doc["complete"] is False
    assert "no-such-asg" in err


@pytest.mark.parametrize("name", ["", "x" * 256, "bad\nname"])
def test_a_name_aws_would_never_accept_is_bad_input_and_reads_nothing(world, name):
    status, out, err = scan("--group", name)

    assert status == 2 and out == "" and "not an Auto Scaling group name" in err


def test_apply_mode_repairs_the_broken_group_only(world, monkeypatch):
    fleet = build_mixed(world.env)
    monkeypatch.setenv("KEYFIX_KEY_ALLOWLIST", f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/*")
    disabled_before = world.key_policy(fleet.keys["disabled"])

    status, doc, _ = scan("--mode", "apply", "--format", "json")

    assert status == 1  # it would have failed: the report says so, with the fix applied
    reports = by_group(doc)
    (broken,) = reports["broken-asg"]["findings"]
    assert {fix["status"] for fix in broken["fixes"] if fix["kind"] == "key-policy-statement"} == {"applied"}
    sids = [s.get("Sid", "") for s in world.key_policy(fleet.keys["broken"])["Statement"]]
    assert any(sid.startswith("keyfix-") for sid in sids)
    assert world.key_policy(fleet.keys["disabled"]) == disabled_before  # key state: proposals only
    again, doc2, _ = scan("--format", "json")
    assert sorted(by_group(doc2)) == ["disabled-asg"] and again == 1


def test_each_key_template_image_and_principal_is_read_once(world):
    from keyfix.config import Settings
    from keyfix.predict.scan import scan as run_scan
    from keyfix.resolve.gateway import AwsGateway
    from keyfix.sim.scenarios.fleet import add_group

    fleet = build_mixed(world.env)
    for i in range(6):  # more groups sharing the same key and image
        add_group(world.env, fleet, f"more-{i}", fleet.keys["broken"])
    gw = AwsGateway(region=REGION)

    outcome, _, _ = run_scan(Settings.from_env().with_mode("propose"), gw)

    assert len(outcome.checked_groups) == 10
    calls = gw.calls
    assert calls.count(("kms", "DescribeKey")) == 3
    assert calls.count(("kms", "GetKeyPolicy")) == 3
    assert calls.count(("ec2", "DescribeImages")) == 1
    assert calls.count(("iam", "GetRole")) == 1
    assert calls.count(("ec2", "DescribeLaunchTemplateVersions")) == 10  # one template per group
    assert calls.count(("autoscaling", "DescribeAutoScalingGroups")) == 1
    assert calls.count(("autoscaling", "DescribeScalingActivities")) == 1
