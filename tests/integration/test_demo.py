"""`keyfix demo`: every scenario is broken, reported by the real Lambda handler and repaired
(or not) as it is built to show. Assertions read the reports and the simulated account,
never the printed text."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest

from keyfix.sim import accounts, moto_gaps
from keyfix.sim.scenarios import ASG_ACCOUNT, KEY_ACCOUNT, REGION

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "src/keyfix/schemas/report.schema.json").read_text())
ALL = ["a1", "a2", "b", "c", "not-kms", "pending-deletion", "predict"]


def writable_state(endpoint_url: str) -> dict[str, object]:
    """Key policies, grants and identity policies of both demo accounts, read with clients of
    our own (not the demo's)."""
    state: dict[str, object] = {}
    for account in (ASG_ACCOUNT, KEY_ACCOUNT):
        kms = accounts.client("kms", account, REGION, endpoint_url=endpoint_url)
        for key in kms.list_keys()["Keys"]:
            arn = key["KeyArn"]
            state[f"policy {arn}"] = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
            state[f"grants {arn}"] = sorted(g["GrantId"] for g in kms.list_grants(KeyId=arn)["Grants"])
        iam = accounts.client("iam", account, REGION, endpoint_url=endpoint_url)
        for role in iam.list_roles()["Roles"]:
            name = role["RoleName"]
            state[f"role {name}"] = (
                {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                 for p in iam.list_role_policies(RoleName=name)["PolicyNames"]},
                sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]))
        for user in iam.list_users()["Users"]:
            name = user["UserName"]
            state[f"user {name}"] = {p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                                     for p in iam.list_user_policies(UserName=name)["PolicyNames"]}
    return state


class Recorder:
    """The demo's observer: the simulated account's writable state around each handler run."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], dict[str, object]] = {}
        self.urls: set[str] = set()

    def __call__(self, stage: str, scenario: str, env) -> None:
        self.urls.add(env.endpoint_url)
        self.states[(scenario, stage)] = writable_state(env.endpoint_url)

    def changed(self, scenario: str) -> bool:
        return self.states[(scenario, "before-keyfix")] != self.states[(scenario, "after-keyfix")]


def _run(mode: str) -> tuple[dict[str, dict], Recorder]:
    """The demo in this process, as `keyfix demo --mode MODE` runs it."""
    from keyfix.demo import run

    environ_before, gaps_before = dict(os.environ), moto_gaps.is_installed()
    recorder = Recorder()
    outcomes = run(ALL, mode, observer=recorder)
    assert dict(os.environ) == environ_before, "the demo left environment variables changed"
    assert moto_gaps.is_installed() == gaps_before
    return {o.scenario.name: o.to_dict() for o in outcomes}, recorder


@pytest.fixture(scope="module")
def subprocess_demo():
    """`python -m keyfix demo --format json`, started first so it runs beside the in-process runs."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFIX_", "AWS_", "MOTO_"))}
    child_env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    process = subprocess.Popen([sys.executable, "-m", "keyfix", "demo", "--format", "json"], env=child_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def applied(subprocess_demo):
    return _run("apply")


@pytest.fixture(scope="module")
def proposed(applied):
    return _run("propose")


def only_finding(result: dict) -> dict:
    jsonschema.validate(result["report"], REPORT_SCHEMA)
    (finding,) = result["report"]["findings"]
    return finding


def fixes_by_kind(finding: dict) -> dict[str, dict]:
    return {fix["kind"]: fix for fix in finding["fixes"]}


def test_every_report_is_valid_and_every_scenario_ends_as_built(applied, proposed):
    for results, _ in (applied, proposed):
        assert list(results) == ALL
        for result in results.values():
            jsonschema.validate(result["report"], REPORT_SCHEMA)
            assert result["as_expected"], result["problems"]
            # on-call's message is about the same finding the report holds
            causes = sorted({f["cause"] for f in result["report"]["findings"]})
            if causes == ["not-kms"]:
                assert result["sns"] is None  # keyfix does not page about other teams' failures
            else:
                assert result["sns"]["attributes"]["cause"] == causes


def test_a1_key_policy_statement_applied_and_the_launch_then_allowed(applied):
    results, recorder = applied
    a1 = results["a1"]
    finding = only_finding(a1)
    assert finding["cause"] == "slr-not-in-key-policy"
    fix = fixes_by_kind(finding)["key-policy-statement"]
    assert fix["status"] == "applied" and fix["target_account"] == ASG_ACCOUNT
    assert a1["before"]["decision"] != "Allowed" and a1["after"]["decision"] == "Allowed"
    # the statement keyfix added is what now allows the launch's CreateGrant
    added_sids = {s["Sid"] for s in fix["document"]}
    assert {d.get("sid") for d in a1["after"]["decisive"]} & added_sids
    assert a1["retry_succeeded"] and recorder.changed("a1") and a1["change_ids"]


def test_a2_grant_applied_here_and_key_owner_addressed_in_444455556666(applied):
    results, recorder = applied
    a2 = results["a2"]
    finding = only_finding(a2)
    assert finding["cause"] == "slr-grant-missing" and finding["key_arn"].split(":")[4] == KEY_ACCOUNT
    fixes = fixes_by_kind(finding)
    assert fixes["grant"]["status"] == "applied" and fixes["grant"]["target_account"] == ASG_ACCOUNT
    owner = fixes["key-policy-statement"]
    # the grant could be made, so the owner's side was in place: said, not proposed again
    assert owner["status"] == "already-present" and owner["target_account"] == KEY_ACCOUNT
    assert any(finding["key_arn"] in command for command in owner["cli"])
    assert a2["after"]["decision"] == "Allowed" and a2["after"]["decisive"][0]["policy"].startswith("grants[")
    assert a2["retry_succeeded"] and recorder.changed("a2")
    # seed 004: the admin's own RunInstances was allowed while the group's launch was not
    assert a2["extra"]["admin_run_instances"]["decision"] == "Allowed"
    assert a2["extra"]["admin_run_instances"]["succeeded"]
    assert a2["extra"]["asg_launch"]["decision"] != "Allowed"


def test_b_user_not_allow_listed_gets_a_refused_proposal_and_nothing_written(applied):
    results, recorder = applied
    b = results["b"]
    finding = only_finding(b)
    assert finding["cause"] == "principal-not-in-key-policy"
    assert finding["principal"] == f"arn:aws:iam::{ASG_ACCOUNT}:user/dev-alice"
    fix = fixes_by_kind(finding)["key-policy-statement"]
    assert fix["status"] == "refused" and "KEYFIX_PRINCIPAL_ALLOWLIST" in fix["reason"]
    assert fix["cli"] and not recorder.changed("b")
    assert not b["retry_succeeded"] and b["after"]["decision"] == b["before"]["decision"] != "Allowed"


def test_c_identity_policy_put_on_the_allow_listed_role(applied):
    results, recorder = applied
    c = results["c"]
    finding = only_finding(c)
    assert finding["cause"] == "identity-policy-missing"
    fix = fixes_by_kind(finding)["identity-policy"]
    assert fix["status"] == "applied" and fix["target"] == f"arn:aws:iam::{ASG_ACCOUNT}:role/ec2-operator"
    assert c["before"]["request"]["action"] == "kms:CreateGrant"
    assert c["before"]["missing"] == ["identity_policy"] and c["after"]["decision"] == "Allowed"
    assert c["retry_succeeded"] and recorder.changed("c")


def test_not_kms_is_left_alone(applied):
    results, recorder = applied
    finding = only_finding(results["not-kms"])
    assert finding["cause"] == "not-kms" and finding["fixes"] == []
    assert results["not-kms"]["before"] is None and not recorder.changed("not-kms")


def test_pending_deletion_is_proposed_even_in_apply_mode(applied):
    results, recorder = applied
    result = results["pending-deletion"]
    finding = only_finding(result)
    assert finding["cause"] == "key-pending-deletion"
    (fix,) = finding["fixes"]
    assert (fix["kind"], fix["status"]) == ("key-state", "proposed")
    assert any("cancel-key-deletion" in command for command in fix["cli"])
    assert result["before"]["key_state"] == "PendingDeletion" and not result["retry_succeeded"]
    assert not recorder.changed("pending-deletion")


def test_predict_a_key_policy_edit_is_predicted_to_break_the_group_and_nothing_is_written(applied):
    """Issue #11: alice's PutKeyPolicy drops the service-linked role's statements from a key
    that works; its CloudTrail event reaches the handler; keyfix predicts the next launch's
    failure, names who made the change, and proposes only, even in apply mode on an opted-in
    key; the next launch then fails as predicted."""
    results, recorder = applied
    result = results["predict"]
    report = result["report"]
    assert result["event"]["detail-type"] == "AWS API Call via CloudTrail" and result["event"]["source"] == "aws.kms"
    assert report["event"]["trigger"] == "key-change" and report["mode"] == "apply"
    finding = only_finding(result)
    assert finding["cause"] == "slr-not-in-key-policy" and finding["predicted"] is True
    assert finding["resource"].endswith(":autoScalingGroupName/web-asg")
    assert f"arn:aws:iam::{ASG_ACCOUNT}:user/alice made PutKeyPolicy at " in finding["explanation"]
    assert "this change will break web-asg at its next launch: " in finding["explanation"]
    (fix,) = finding["fixes"]
    assert (fix["kind"], fix["status"]) == ("key-policy-statement", "proposed")
    assert "never reverts a person's change" in fix["reason"] and fix["cli"]
    # nothing written: by keyfix's own account of it, and by our own read of the account
    assert result["writes"] == [] and result["change_ids"] == [] and not recorder.changed("predict")
    assert result["sns"]["attributes"]["trigger"] == "key-change"
    assert result["sns"]["attributes"]["status"] == ["proposed"] and "predicted" in result["sns"]["subject"]
    # the launch worked before the change, and the same request is refused after it
    assert result["extra"]["launch_before_change"]["succeeded"] is True
    assert result["before"]["decision"] == "Allowed" and result["after"]["decision"] != "Allowed"
    assert result["after"]["missing"] == ["resource_policy"]
    assert not result["retry_succeeded"]  # the prediction comes true


def test_predict_on_its_own_from_the_command_line(capsys):
    from keyfix.cli import main

    assert main(["demo", "--scenario", "predict", "--format", "json", "--mode", "propose"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["scenario"] == "predict" and result["as_expected"], result["problems"]
    assert result["report"]["mode"] == "propose" and only_finding(result)["predicted"] is True


def test_propose_mode_writes_nothing_and_every_retry_still_fails(proposed):
    results, recorder = proposed
    for name, result in results.items():
        assert not recorder.changed(name), f"{name}: propose mode changed the account"
        assert result["writes"] == [] and not result["retry_succeeded"]
        statuses = {fix["status"] for f in result["report"]["findings"] for fix in f["fixes"]}
        assert statuses <= {"proposed"}, (name, statuses)
    assert only_finding(results["a1"])["cause"] == "slr-not-in-key-policy"
    assert only_finding(results["c"])["cause"] == "identity-policy-missing"


def test_the_simulated_aws_is_stopped_afterwards(applied):
    _, recorder = applied
    (url,) = recorder.urls
    parsed = urlparse(url)
    assert parsed.hostname == "127.0.0.1"
    with pytest.raises(OSError), socket.create_connection((parsed.hostname, parsed.port), timeout=2):
        pass


def test_command_line_json_in_a_subprocess(subprocess_demo, applied):
    stdout, stderr = subprocess_demo.communicate(timeout=120)
    assert subprocess_demo.returncode == 0, stderr
    results = {r["scenario"]: r for r in json.loads(stdout)}
    assert list(results) == ALL
    causes = {name: only_finding(r)["cause"] for name, r in results.items()}
    assert causes == {"a1": "slr-not-in-key-policy", "a2": "slr-grant-missing", "b": "principal-not-in-key-policy",
                      "c": "identity-policy-missing", "not-kms": "not-kms", "pending-deletion": "key-pending-deletion",
                      "predict": "slr-not-in-key-policy"}
    assert {n for n, r in results.items() if r["retry_succeeded"]} == {"a1", "a2", "c"}
    assert "keyfix demo: b: keyfix" in stderr  # progress while it runs


def test_exit_status_1_when_a_scenario_does_not_end_as_built(monkeypatch, capsys):
    """With dev-alice allow-listed keyfix writes for her, which case B is not built to show."""
    from keyfix.demo import main, play

    alice = f"arn:aws:iam::{ASG_ACCOUNT}:user/dev-alice"
    monkeypatch.setattr(play, "PRINCIPAL_ALLOWLIST", [*play.PRINCIPAL_ALLOWLIST, alice])
    assert main(["b"], "apply", "json") == 1
    (result,) = json.loads(capsys.readouterr().out)
    assert not result["as_expected"] and any("refused" in p for p in result["problems"])
