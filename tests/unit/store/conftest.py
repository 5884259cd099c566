"""Fixtures for the store, idempotency and rollback tests: dummy credentials, a moto
DynamoDB table shaped like template.yaml's KeyfixTable, a controllable clock."""

from __future__ import annotations

import pytest
from store_support import REGION, TABLE, FakeClock, boto3_client, create_audit_key, create_table


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Nothing here may reach real AWS: dummy credentials, a fixed region, no profile or
    endpoint inherited from the environment."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS",
                 "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "KEYFIX_TABLE_NAME", "KEYFIX_AUDIT_KEY_ARN",
                 "POWERTOOLS_IDEMPOTENCY_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def aws(aws_env):
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def ddb(aws):
    import boto3

    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client)
    return client


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def audit_key(aws):
    """The stack's HMAC key (template.yaml AuditMacKey), on moto."""
    return create_audit_key(boto3_client("kms"))


@pytest.fixture
def mac(audit_key):
    """The signer keyfix uses, with a KMS client of its own (so tests can count the calls
    rollback makes on the key-policy client separately)."""
    from keyfix.store import KmsMac

    return KmsMac(audit_key, boto3_client("kms"))


@pytest.fixture
def store(ddb, clock, mac):
    from keyfix.store import Store

    return Store(TABLE, ddb, clock=clock, sleep=clock.sleep, mac=mac)


@pytest.fixture
def unsigned_store(ddb, clock):
    from keyfix.store import Store

    return Store(TABLE, ddb, clock=clock, sleep=clock.sleep)
