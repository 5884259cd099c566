"""Faults: AWS misbehaving around keyfix, and what keyfix does about it.

Each fault is injected into the clients keyfix itself creates (tests/support/gateway_hooks.py:
botocore `before-send` for per-attempt faults that retries see, `before-call` for answers that
short-circuit a call, `after-call` to alter a response; or a change to moto's backend mid-run).
Each test asserts the outcome AND that nothing was lost: the key policy keeps every statement
it had, the report is still produced and valid.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from keyfix.resolve.gateway import DEFAULT_MAX_ATTEMPTS
from tests.integration.conftest import FakeLambdaContext, assert_valid_report, load_event, run_lambda
from tests.support import faults
from tests.support.accounts import ASG_ACCOUNT, REGION, build_a1
from tests.support.gateway_hooks import (
    WriteCounter,
    after_call,
    flaky,
    gateway_session,
    no_retry_sleep,
    on_call,
)

A1_EVENT = "asg-launch-cancelled-a1.json"
OPT_IN = [{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}]


@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch):
    """moto builds ~1,300 public AMIs per EC2 backend on every reset (about 1.5 s per test);
    these tests register the images they use. Autouse: set before `world` starts moto and
    still set when its teardown resets the backends."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@dataclass
class A1:
    world: Any
    case: Any
    session: Any  # the boto3 Session every keyfix client is made from
    writes: WriteCounter

    @property
    def key(self) -> str:
        return self.case.key_arn

    def policy(self) -> dict:
        return self.world.key_policy(self.key)

    def statements(self) -> list[dict]:
        s = self.policy()["Statement"]
        return [s] if isinstance(s, dict) else s


@pytest.fixture
def a1(world, monkeypatch) -> A1:
    """Seed A1 in apply mode with the key opted in: without a fault, keyfix adds the SLR's statements."""
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    case = build_a1(world.env)
    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=OPT_IN)
    no_retry_sleep(monkeypatch)
    session = gateway_session(monkeypatch)
    return A1(world, case, session, WriteCounter(session))


def only(report: dict) -> dict:
    assert len(report["findings"]) == 1, report["findings"]
    return report["findings"][0]


def kept_everything(before: list[dict], after: list[dict]) -> bool:
    return all(s in after for s in before)


# ---- throttling ----------------------------------------------------------------------------------


def test_throttled_describe_key_is_retried_and_the_finding_is_right(a1: A1):
    attempts = flaky(a1.session, "kms", "DescribeKey", "ThrottlingException", times=3)
    before = a1.statements()

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert len(attempts) == 4, "three throttled attempts, then the one that got through"
    assert finding["cause"] == "slr-not-in-key-policy" and finding["key_arn"] == a1.key
    assert [f["status"] for f in finding["fixes"]] == ["applied"]
    assert kept_everything(before, a1.statements())


def test_persistent_throttling_is_bounded_and_reported_not_raised(a1: A1):
    attempts = flaky(a1.session, "kms", "DescribeKey", "ThrottlingException", times=None)
    before = a1.policy()

    report = run_lambda(load_event(A1_EVENT))

    # botocore's `max_attempts` counts retries, so the first attempt comes on top.
    assert len(attempts) == DEFAULT_MAX_ATTEMPTS + 1, "retries are bounded by the gateway's max_attempts"
    finding = only(report)
    assert finding["key_arn"] == a1.key
    # The key's tags could not be read either way: nothing may be written to it.
    assert all(f["status"] != "applied" for f in finding["fixes"])
    assert a1.writes.count("kms", "PutKeyPolicy") == 0
    assert a1.policy() == before


def test_persistent_throttling_gives_undetermined(a1: A1, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    flaky(a1.session, "kms", "DescribeKey", "ThrottlingException", times=None)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "undetermined", finding
    assert "DescribeKey" in finding["explanation"] and "ThrottlingException" in finding["explanation"]
    assert finding["fixes"] == []


# ---- AccessDenied on keyfix's own calls ----------------------------------------------------------


def test_denied_get_key_policy_never_writes(a1: A1):
    denied = faults.deny(a1.session, "KMS", "GetKeyPolicy")
    before = a1.policy()

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert denied, "the fault was not reached"
    assert all(f["status"] != "applied" for f in finding["fixes"])
    assert all("GetKeyPolicy" in f["reason"] for f in finding["fixes"] if f["status"] == "failed")
    assert a1.writes.count("kms", "PutKeyPolicy") == 0
    assert a1.policy() == before


def test_denied_get_key_policy_names_what_could_not_be_read(a1: A1, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    faults.deny(a1.session, "KMS", "GetKeyPolicy")

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert "GetKeyPolicy" in finding["explanation"], finding
    assert finding["cause"] == "undetermined" or all(f["reason"] for f in finding["fixes"]), finding


def test_denied_put_key_policy_fails_the_fix_and_keeps_the_policy(a1: A1):
    denied = faults.deny(a1.session, "KMS", "PutKeyPolicy")
    before = a1.policy()

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert len(denied) == 1
    (fix,) = finding["fixes"]
    assert fix["status"] == "failed"
    assert "PutKeyPolicy" in fix["reason"] and "AccessDeniedException" in fix["reason"], fix["reason"]
    assert fix["document"] and fix["cli"], "a failed fix still tells a person what to do"
    assert a1.policy() == before
    (message,) = a1.world.notifications()  # on-call hears about it
    assert json.loads(message["MessageAttributes"]["status"]["Value"]) == ["failed"]


def test_denied_identity_reads_still_give_a_report(a1: A1):
    """keyfix's own role may lack iam:GetRole: the SLR's existence is then unknown, not a crash."""
    faults.deny(a1.session, "IAM", "GetRole", code="AccessDenied")
    before = a1.policy()

    report = run_lambda(load_event(A1_EVENT))

    finding = only(report)
    assert finding["key_arn"] == a1.key
    assert kept_everything(before["Statement"], a1.statements())


# ---- things vanish -------------------------------------------------------------------------------


def test_key_not_found_on_describe(a1: A1):
    faults.fail(a1.session, "KMS", "DescribeKey", "NotFoundException", f"Key '{a1.key}' does not exist")

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "key-not-found" and finding["key_arn"] == a1.key
    assert "NotFoundException" in finding["explanation"]
    assert all(f["status"] != "applied" for f in finding["fixes"])
    assert a1.writes.writes == []


def test_key_deleted_between_diagnosis_and_write(a1: A1):
    """The key goes away after keyfix read it: the write fails with the reason, nothing raises."""
    from moto.kms.models import kms_backends

    reads = []

    def vanish(params: dict) -> None:
        reads.append(params)
        if len(reads) == 2:  # the first GetKeyPolicy is the resolver's, the second the writer's
            kms_backends[ASG_ACCOUNT][REGION].keys.pop(a1.case.key_id)

    on_call(a1.session, "kms", "GetKeyPolicy", vanish)

    finding = only(run_lambda(load_event(A1_EVENT)))

    (fix,) = finding["fixes"]
    assert fix["status"] == "failed" and "NotFound" in fix["reason"], fix
    assert a1.writes.count("kms", "PutKeyPolicy") == 0


def test_group_gone_before_keyfix_looks(a1: A1):
    a1.world.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=a1.case.group_name,
                                                             ForceDelete=True)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "undetermined" and a1.case.group_name in finding["explanation"], finding
    assert a1.writes.writes == []


def test_launch_template_deleted_mid_run(a1: A1):
    """The group is read, then its launch template disappears before keyfix reads it."""

    def delete_template(parsed: dict) -> None:
        if parsed.get("AutoScalingGroups"):
            a1.world.client("ec2").delete_launch_template(LaunchTemplateId=a1.case.template_id)

    after_call(a1.session, "autoscaling", "DescribeAutoScalingGroups", delete_template)

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "undetermined", finding
    assert "launch template" in finding["explanation"].lower() or "LaunchTemplate" in finding["explanation"]
    assert a1.writes.writes == []


# ---- the service-linked role does not exist yet ---------------------------------------------------


def _delete_slr() -> None:
    from moto.iam.models import iam_backends

    backend = iam_backends[ASG_ACCOUNT]["aws"]
    (role_id,) = [rid for rid, r in backend.roles.items() if r.name == "AWSServiceRoleForAutoScaling"]
    del backend.roles[role_id]


def test_slr_missing_is_proposed_as_create_then_key_policy(a1: A1, monkeypatch):
    monkeypatch.setenv("KEYFIX_MODE", "propose")
    _delete_slr()

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "service-linked-role-missing" and finding["principal"] == a1.case.slr_arn
    assert [f["kind"] for f in finding["fixes"]] == ["create-service-linked-role", "key-policy-statement"]
    assert finding["fixes"][0]["document"] == {"AWSServiceName": "autoscaling.amazonaws.com"}
    assert all(f["status"] == "proposed" for f in finding["fixes"])
    assert a1.writes.writes == []


def test_slr_missing_in_apply_mode_creates_the_role_then_adds_the_statements(a1: A1):
    _delete_slr()
    before = a1.statements()

    finding = only(run_lambda(load_event(A1_EVENT)))

    create, statements = finding["fixes"]
    assert (create["kind"], create["status"]) == ("create-service-linked-role", "applied"), create
    role = a1.world.client("iam").get_role(RoleName="AWSServiceRoleForAutoScaling")["Role"]
    assert role["Arn"] == a1.case.slr_arn
    assert (statements["kind"], statements["status"]) == ("key-policy-statement", "applied"), statements
    after = a1.statements()
    assert kept_everything(before, after)
    assert [s for s in after if s not in before] == statements["document"]
    assert a1.writes.writes == [("iam", "CreateServiceLinkedRole"), ("kms", "PutKeyPolicy")]


# ---- a key policy keyfix cannot read ---------------------------------------------------------------


def test_malformed_key_policy_in_place_is_undetermined_and_untouched(a1: A1):
    policy = a1.policy()
    policy["Statement"].append({"Sid": "Odd", "Effect": "Allow", "Principal": {"AWS": a1.case.slr_arn},
                                "Action": "kms:Decrypt", "Resource": "*",
                                "Condition": {"StringEqualsWhenTuesday": {"kms:CallerAccount": ASG_ACCOUNT}}})
    a1.world.client("kms").put_key_policy(KeyId=a1.key, PolicyName="default", Policy=json.dumps(policy))
    before = a1.policy()

    finding = only(run_lambda(load_event(A1_EVENT)))

    assert finding["cause"] == "undetermined", finding
    assert "Statement[1]" in finding["explanation"] and "StringEqualsWhenTuesday" in finding["explanation"]
    assert finding["fixes"] == []
    assert a1.policy() == before and a1.writes.writes == []


# ---- notification and read-back faults --------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_sns_failure_keeps_the_fix_and_the_report_and_is_logged(a1: A1):
    failed = faults.fail(a1.session, "SNS", "Publish", "InternalError", "SNS is having a day", status=500)
    records = _Records()
    logging.getLogger("keyfix").addHandler(records)
    try:
        report = run_lambda(load_event(A1_EVENT))
    finally:
        logging.getLogger("keyfix").removeHandler(records)

    assert failed, "the fault was not reached"
    (fix,) = only(report)["fixes"]
    assert fix["status"] == "applied"
    assert all(s in a1.statements() for s in fix["document"]), "the fix was rolled back"
    assert a1.world.notifications() == []
    errors = [r.getMessage() for r in records.records if r.levelno >= logging.ERROR]
    assert any("SNS publish" in m and "InternalError" in m for m in errors), errors


def _read_back_edited(a1: A1, edit) -> tuple[list[dict], list[bool]]:
    """The read-back right after keyfix's write sees the policy as `edit` leaves it: what a
    person's edit landing between keyfix's write and its read looks like to keyfix."""
    puts: list[dict] = []
    on_call(a1.session, "kms", "PutKeyPolicy", puts.append)
    edited: list[bool] = []

    def after_write(parsed: dict) -> None:
        if len(puts) == 1 and not edited:
            policy = json.loads(parsed["Policy"])
            policy["Statement"] = edit(policy["Statement"])
            parsed["Policy"] = json.dumps(policy)
            edited.append(True)

    after_call(a1.session, "kms", "GetKeyPolicy", after_write)
    return puts, edited


def test_an_edit_that_removed_keyfixs_statements_after_its_write_is_left_alone(a1: A1):
    """Restoring keyfix's copy would throw the other writer's edit away: keyfix reports the
    conflict and writes nothing more."""
    puts, edited = _read_back_edited(a1, lambda st: [s for s in st if not s.get("Sid", "").startswith("keyfix-")])

    (fix,) = only(run_lambda(load_event(A1_EVENT)))["fixes"]

    assert edited and len(puts) == 1, "keyfix wrote once and never again"
    assert fix["status"] == "failed" and "conflict" in fix["reason"], fix


def test_an_edit_of_someone_elses_statement_after_the_write_keeps_keyfixs_fix_applied(a1: A1):
    puts, edited = _read_back_edited(a1, lambda st: [s for s in st if s.get("Sid", "").startswith("keyfix-")])

    (fix,) = only(run_lambda(load_event(A1_EVENT)))["fixes"]

    assert edited and len(puts) == 1
    assert fix["status"] == "applied" and "another edit" in fix["reason"], fix


# ---- Lambda time running out ---------------------------------------------------------------------------


class NearlyOutOfTime(FakeLambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 1000


def test_no_write_started_when_lambda_time_is_nearly_out(a1: A1):
    from keyfix.handler import lambda_handler

    before = a1.policy()

    report = assert_valid_report(lambda_handler(load_event(A1_EVENT), NearlyOutOfTime()))

    (fix,) = only(report)["fixes"]
    assert fix["status"] == "proposed", fix
    assert "not attempted" in fix["reason"] and "Lambda time" in fix["reason"], fix
    assert fix["document"] and fix["cli"]
    assert a1.writes.count("kms", "PutKeyPolicy") == 0
    assert a1.policy() == before


def test_plenty_of_lambda_time_still_writes(a1: A1):
    """The other side of the deadline rule (the harness's context has 60 s left)."""
    (fix,) = only(run_lambda(load_event(A1_EVENT)))["fixes"]
    assert fix["status"] == "applied" and a1.writes.count("kms", "PutKeyPolicy") == 1
