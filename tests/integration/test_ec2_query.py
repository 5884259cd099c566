"""keyfix.ec2_query: the state reason by one signed Query request, against a moto server on
127.0.0.1, compared with what boto3 reads from the same server; every doubt falls back
(raises Doubt) and sends nothing; the Lambda handler decides an ordinary stop with it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import boto3
import pytest

from keyfix import ec2_query
from keyfix.ec2_query import Doubt, state_reason
from keyfix.sim.server import LocalMoto

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.server


@pytest.fixture
def server(monkeypatch):
    for name in ec2_query._DOUBTFUL_SETTINGS + ("AWS_ENDPOINT_URL_EC2", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    moto = LocalMoto()
    url = moto.start()
    try:
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        moto.stop()


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": url,
            "AWS_CONFIG_FILE": "/dev/null", **extra}


def _instances(url: str, stop: int, terminate: int) -> tuple[object, list[str]]:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=stop + terminate + 1,
                                                      MaxCount=stop + terminate + 1)["Instances"]]
    if stop:
        ec2.stop_instances(InstanceIds=ids[:stop])
    if terminate:
        ec2.terminate_instances(InstanceIds=ids[stop:stop + terminate])
    return ec2, ids


def test_state_reason_agrees_with_boto3_for_every_instance(server):
    ec2, ids = _instances(server, stop=3, terminate=2)
    sent = len(ec2_query.SENT)
    for instance_id in ids:
        quick = state_reason(REGION, instance_id, _env(server))
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        reason = instance.get("StateReason") or {}
        assert quick == {"state": instance["State"]["Name"], "code": reason.get("Code", ""),
                         "message": reason.get("Message", "")}
    assert len(ec2_query.SENT) - sent == len(ids)  # one request per read, counted
    states = {state_reason(REGION, i, _env(server))["state"] for i in ids}
    assert states == {"stopped", "terminated", "running"}


def test_the_service_specific_endpoint_wins(server):
    _, ids = _instances(server, stop=1, terminate=0)
    env = _env("http://127.0.0.1:9", AWS_ENDPOINT_URL_EC2=server)  # the global one would refuse
    assert state_reason(REGION, ids[0], env)["state"] == "stopped"


@pytest.mark.parametrize("extra", [
    {"AWS_PROFILE": "someone"}, {"AWS_DEFAULT_PROFILE": "someone"}, {"HTTPS_PROXY": "http://127.0.0.1:9"},
    {"AWS_USE_FIPS_ENDPOINT": "true"}, {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
    {"AWS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"}, {"AWS_ACCESS_KEY_ID": ""}, {"AWS_SECRET_ACCESS_KEY": ""},
])
def test_a_setting_boto3_would_honour_otherwise_is_a_doubt_and_sends_nothing(server, extra):
    _, ids = _instances(server, stop=1, terminate=0)
    sent = len(ec2_query.SENT)
    with pytest.raises(Doubt):
        state_reason(REGION, ids[0], _env(server, **extra))
    assert len(ec2_query.SENT) == sent


def test_a_shared_config_file_with_settings_is_a_doubt(server, tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://127.0.0.1:9\n")
    with pytest.raises(Doubt, match="shared config"):
        state_reason(REGION, "i-0123456789abcdef0", _env(server, AWS_CONFIG_FILE=str(config)))


@pytest.mark.parametrize("region", ["", "cn-north-1", "us-gov-west-1", "us-east-1/../x"])
def test_a_region_outside_the_aws_partition_or_malformed_is_a_doubt(region, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(Doubt):
        state_reason(region, "i-0123456789abcdef0", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
                                                     "AWS_CONFIG_FILE": "/dev/null"})


def test_an_unknown_instance_is_a_doubt_for_the_full_path(server):
    with pytest.raises(Doubt):
        state_reason(REGION, "i-0123456789abcdef0", _env(server))


def test_an_endpoint_that_never_answers_is_retried_then_a_doubt(monkeypatch):
    monkeypatch.setattr(ec2_query, "_BACKOFF_BASE", 0.0)
    attempts = []
    import http.client

    original = http.client.HTTPConnection.request

    def counting(self, *args, **kwargs):
        attempts.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(http.client.HTTPConnection, "request", counting)
    with pytest.raises(Doubt, match="after 3 attempts"):
        state_reason(REGION, "i-0123456789abcdef0", _env("http://127.0.0.1:9"))  # port 9: refused
    assert len(attempts) == ec2_query.MAX_ATTEMPTS


def test_an_in_process_mock_is_a_doubt():
    from moto import mock_aws

    with mock_aws(), pytest.raises(Doubt, match="mock"):
        state_reason(REGION, "i-0123456789abcdef0", _env("http://127.0.0.1:9"))


def test_the_signature_matches_botocores(monkeypatch):
    """The same request signed by botocore's SigV4 signer at the same instant."""
    import datetime

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    instant = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return instant

    monkeypatch.setattr(ec2_query.datetime, "datetime", Frozen)
    body = f"Action=DescribeInstances&Version={ec2_query.API_VERSION}&InstanceId.1=i-0abc"
    ours = ec2_query._signed_headers("ec2.us-east-1.amazonaws.com", "/", REGION, ("AKIDEXAMPLE", "secret", "tok"),
                                     body.encode())
    request = AWSRequest(method="POST", url="https://ec2.us-east-1.amazonaws.com/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    monkeypatch.setattr("botocore.auth.datetime.datetime", Frozen)
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "tok"), "ec2", REGION).add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


def test_the_lambda_handler_decides_an_ordinary_stop_with_the_quick_read(server, monkeypatch):
    """In the Lambda runtime: one request, the not-kms finding, nothing written."""
    _, ids = _instances(server, stop=1, terminate=0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "keyfix")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(ROOT / "src"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("KEYFIX_TABLE_NAME", raising=False)
    monkeypatch.delenv("KEYFIX_SNS_TOPIC_ARN", raising=False)
    event = json.loads((ROOT / "events" / "ec2-instance-stopped.json").read_text())
    event["detail"]["instance-id"] = ids[0]
    import botocore.client

    boto_calls = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        boto_calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    from keyfix.irrelevant import ordinary_stop
    from keyfix.events import parse
    from keyfix.resolve.gateway import AwsGateway

    gw = AwsGateway(region=REGION)
    sent = len(ec2_query.SENT)
    finding = ordinary_stop(parse(event), gw)
    assert finding is not None and finding.cause.value == "not-kms"
    assert len(ec2_query.SENT) - sent == 1 and boto_calls == []
    assert gw.calls == [("ec2", "DescribeInstances")]
