"""`keyfix handle` in its own process against a moto server on 127.0.0.1, exactly as a
person would point it at an endpoint with AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from keyfix.sim.server import LocalMoto
from tests.integration.conftest import assert_notification_matches, assert_valid_report, build_world, load_event
from tests.support.accounts import KEY_ACCOUNT, REGION, Env, build_a1, build_a2, build_b, build_c

pytestmark = pytest.mark.server


@pytest.fixture
def server_world(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    server = LocalMoto()
    url = server.start()
    try:
        world = build_world(Env(endpoint_url=url))
        creds = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        yield world, url, creds
    finally:
        # ThreadedMotoServer shares this process's moto backends: clear them for the next test.
        # http://docs.getmoto.org/en/latest/docs/server_mode.html#reset-api
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


def handle(url: str, creds: tuple[str, str], event: dict, tmp_path, **env: str) -> subprocess.CompletedProcess:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFIX_", "AWS_"))}
    child_env.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1],
                     AWS_DEFAULT_REGION=REGION, **env)
    return subprocess.run([sys.executable, "-m", "keyfix", "handle", str(path), "--format", "json"],
                          env=child_env, capture_output=True, text=True, timeout=120)


def test_a1_repaired_through_a_moto_server(server_world, tmp_path):
    world, url, creds = server_world
    case = build_a1(world.env)
    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])

    done = handle(url, creds, load_event("asg-launch-cancelled-a1.json"), tmp_path, KEYFIX_MODE="apply",
                  KEYFIX_SNS_TOPIC_ARN=world.topic_arn, KEYFIX_TABLE_NAME=world.table_name)

    assert done.returncode == 0, done.stderr
    report = assert_valid_report(json.loads(done.stdout))
    (finding,) = report["findings"]
    assert finding["cause"] == "slr-not-in-key-policy" and finding["fixes"][0]["status"] == "applied"
    sids = [s.get("Sid", "") for s in world.key_policy(case.key_arn)["Statement"]]
    assert sum(sid.startswith("keyfix-") for sid in sids) == 2
    (message,) = world.notifications()
    assert message["Subject"].startswith("[keyfix] applied")
    # the audit trail names the change, and a second delivery of the same incident is absorbed
    changes = world.client("dynamodb").scan(TableName=world.table_name)["Items"]
    assert [c["id"]["S"].split("#")[0] for c in changes if c["id"]["S"].startswith("change#")] == ["change"]


def test_b_proposed_through_a_moto_server_writes_nothing(server_world, tmp_path):
    world, url, creds = server_world
    case = build_b(world.env)
    before = world.key_policy(case.key_arn)
    event = load_event("cloudtrail-kms-accessdenied-b-user-createvolume.json", {
        "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321": case.key_arn})

    done = handle(url, creds, event, tmp_path)  # no KEYFIX_MODE: propose, no table: said on stderr

    assert done.returncode == 0, done.stderr
    assert "KEYFIX_TABLE_NAME not set" in done.stderr
    (finding,) = assert_valid_report(json.loads(done.stdout))["findings"]
    assert finding["cause"] == "principal-not-in-key-policy" and finding["fixes"][0]["status"] == "proposed"
    assert world.key_policy(case.key_arn) == before


def _opt_in(world, key_arn):
    world.client("kms").tag_resource(KeyId=key_arn, Tags=[{"TagKey": "keyfix:auto-remediate", "TagValue": "true"}])


def _a2(world):
    case = build_a2(world.env)
    return load_event("asg-launch-unsuccessful-a2.json"), lambda: [
        g["GranteePrincipal"] for g in world.client("kms", KEY_ACCOUNT).list_grants(KeyId=case.key_arn)["Grants"]
    ] == [case.slr_arn]


def _c(world):
    case = build_c(world.env)
    event = load_event("ec2-instance-stopped.json", {"i-0c3d4e5f6a7b8c9d0": case.instance_id})
    return event, lambda: world.client("iam").list_role_policies(RoleName="ec2-operator")["PolicyNames"] != []


def _pending_deletion(world):
    case = build_b(world.env, key_state="PendingDeletion")
    event = load_event("ebs-volume-failed-pending-deletion.json", {
        "arn:aws:kms:us-east-1:111122223333:key/2d3e4f5a-6b7c-8d9e-0f1a-2b3c4d5e6f7a": case.key_arn})
    state = lambda: world.client("kms").describe_key(KeyId=case.key_arn)["KeyMetadata"]["KeyState"]  # noqa: E731
    return event, lambda: state() != "PendingDeletion"


def _explicit_deny(world):
    case = build_a1(world.env)
    _opt_in(world, case.key_arn)
    policy = world.key_policy(case.key_arn)
    policy["Statement"].append({"Sid": "NoAutoScaling", "Effect": "Deny", "Principal": {"AWS": case.slr_arn},
                                "Action": "kms:CreateGrant", "Resource": "*"})
    world.client("kms").put_key_policy(KeyId=case.key_arn, PolicyName="default", Policy=json.dumps(policy))
    return load_event("asg-launch-cancelled-a1.json"), lambda: world.key_policy(case.key_arn) != policy


@pytest.mark.parametrize("build,cause,written", [
    (_a2, "slr-grant-missing", True),
    (_c, "identity-policy-missing", True),
    (_pending_deletion, "key-pending-deletion", False),
    (_explicit_deny, "explicit-deny", False),
], ids=["a2", "c", "pending-deletion", "explicit-deny"])
def test_each_case_through_a_moto_server(server_world, tmp_path, build, cause, written):
    world, url, creds = server_world
    event, changed = build(world)

    done = handle(url, creds, event, tmp_path, KEYFIX_MODE="apply", KEYFIX_SNS_TOPIC_ARN=world.topic_arn,
                  KEYFIX_TABLE_NAME=world.table_name,
                  KEYFIX_PRINCIPAL_ALLOWLIST="arn:aws:iam::111122223333:role/ec2-operator")

    assert done.returncode == 0, done.stderr
    report = assert_valid_report(json.loads(done.stdout))
    (finding,) = report["findings"]
    assert finding["cause"] == cause
    assert ("applied" in {f["status"] for f in finding["fixes"]}) is written
    assert changed() is written
    assert_notification_matches(world, report)


def test_malformed_event_file_exits_2_and_calls_nothing(server_world, tmp_path):
    world, url, creds = server_world
    path = tmp_path / "bad.json"
    path.write_text('{"version": "0", "detail-type": "EC2 Instance Launch Unsuccessful", "source": "aws.autoscaling", ')
    child_env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1])
    done = subprocess.run([sys.executable, "-m", "keyfix", "handle", str(path)], env=child_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot read event" in done.stderr and done.stdout == ""
    assert world.notifications() == []
