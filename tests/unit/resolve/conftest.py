"""Fixtures for the resolver tests: dummy credentials, moto with the gap layer, gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from keyfix.resolve.gateway import AwsGateway
from keyfix.sim import accounts, moto_gaps
from tests.support.accounts import ASG_ACCOUNT, REGION


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; nothing that could point boto3 at a real account."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "MOTO_ACCOUNT_ID",  # would override the per-request account header
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto would build ~1,300 public AMIs (each with a volume and snapshot) per EC2 backend;
    # tests register the images they need.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def moto() -> Iterator[None]:
    from moto import mock_aws

    with moto_gaps.installed(), mock_aws():
        yield


@pytest.fixture
def make_gateway() -> Callable[..., AwsGateway]:
    """A gateway acting in `account` (moto account header on its session)."""

    def make(account: str = ASG_ACCOUNT, **kwargs: Any) -> AwsGateway:
        return AwsGateway(accounts.session(account, REGION), account=account, **kwargs)

    return make
