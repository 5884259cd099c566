"""AwsGateway: lazy cached clients, the call log, the read cache, errors, tracing."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest

from keyfix.resolve.gateway import AwsError, AwsGateway
from keyfix.resolve.kms import read_key
from tests.support.accounts import ASG_ACCOUNT, KEY_ACCOUNT, REGION, root_only_policy
from tests.support.faults import deny, unreachable


def test_importing_the_resolver_loads_no_aws_sdk():
    code = (
        "import sys, keyfix.resolve, keyfix.resolve.kms, keyfix.resolve.iam, keyfix.resolve.ec2, "
        "keyfix.resolve.autoscaling, keyfix.resolve.cloudtrail\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_client_until_a_call_needs_one():
    gw = AwsGateway(account=ASG_ACCOUNT, region=REGION)
    assert gw.created_clients == []
    assert gw._session is None  # not even a boto3 session


@pytest.mark.usefixtures("moto")
class TestWithMoto:
    def _key(self, account: str = ASG_ACCOUNT) -> dict:
        from keyfix.sim import accounts

        return accounts.client("kms", account).create_key(Policy=json.dumps(root_only_policy(account)))["KeyMetadata"]

    def test_clients_are_created_once_per_service_with_standard_bounded_retries(self, make_gateway):
        key = self._key()
        gw = make_gateway()
        gw.read("kms", "DescribeKey", KeyId=key["Arn"])
        gw.read("kms", "ListResourceTags", KeyId=key["Arn"])
        assert gw.created_clients == [("kms", None, REGION)]
        client = gw.client("kms")
        assert client is gw.client("kms", account=ASG_ACCOUNT, region=REGION)
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}

    def test_every_call_is_logged_and_reads_are_cached(self, make_gateway):
        key = self._key()
        gw = make_gateway()
        first = gw.read("kms", "DescribeKey", KeyId=key["Arn"])
        second = gw.read("kms", "DescribeKey", KeyId=key["Arn"])
        assert first is second
        gw.call("kms", "DescribeKey", KeyId=key["Arn"])  # call() is never cached
        assert gw.calls == [("kms", "DescribeKey"), ("kms", "DescribeKey")]

    def test_a_key_described_twice_is_read_once(self, make_gateway):
        key = self._key()
        gw = make_gateway()
        by_alias_free_ref = read_key(gw, key["KeyId"], REGION)
        by_arn = read_key(gw, key["Arn"], REGION)
        assert by_alias_free_ref is by_arn
        assert gw.calls == [
            ("kms", "DescribeKey"),
            ("kms", "GetKeyPolicy"),
            ("kms", "ListGrants"),
        ]  # the tags only when something needs them (kms.read_tags, issue #14)

    def test_errors_become_aws_error_and_are_cached(self, make_gateway):
        gw = make_gateway()
        missing = f"arn:aws:kms:{REGION}:{ASG_ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
        for _ in range(2):
            with pytest.raises(AwsError) as caught:
                gw.read("kms", "DescribeKey", KeyId=missing)
            assert caught.value.code == "NotFoundException" and caught.value.not_found
        assert gw.calls == [("kms", "DescribeKey")]

    def test_denied_is_recognised(self, make_gateway):
        gw = make_gateway()
        deny(gw.session, "EC2", "DescribeImages", code="UnauthorizedOperation")
        with pytest.raises(AwsError) as caught:
            gw.read("ec2", "DescribeImages", ImageIds=["ami-12345678"])
        assert caught.value.denied
        assert caught.value.reason() == (
            "ec2:DescribeImages failed: UnauthorizedOperation (User is not authorized to perform: DescribeImages)"
        )

    def test_transport_errors_become_aws_error(self, make_gateway):
        gw = make_gateway()
        unreachable(gw.session, "KMS", "DescribeKey")
        with pytest.raises(AwsError) as caught:
            gw.read("kms", "DescribeKey", KeyId="alias/x")
        assert caught.value.code == "EndpointConnectionError"
        assert gw.calls == [("kms", "DescribeKey")]

    def test_programming_errors_are_not_swallowed(self, make_gateway):
        gw = make_gateway()
        with pytest.raises(AttributeError):
            gw.read("kms", "NoSuchOperation")

    def test_paginated_reads_collect_every_page(self, make_gateway):
        from keyfix.sim import accounts

        key = self._key()
        kms = accounts.client("kms", ASG_ACCOUNT)
        kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": f"k{i}", "TagValue": str(i)} for i in range(3)])
        gw = make_gateway()
        tags = gw.read_all("kms", "ListResourceTags", "Tags", KeyId=key["Arn"])
        assert sorted(t["TagKey"] for t in tags) == ["k0", "k1", "k2"]
        assert gw.read_all("kms", "ListResourceTags", "Tags", KeyId=key["Arn"]) is tags

    def test_subsegments_only_with_a_tracer(self, make_gateway):
        key = self._key()
        opened: list[str] = []
        closed: list[str] = []

        class Provider:
            @contextlib.contextmanager
            def in_subsegment(self, name):
                opened.append(name)
                yield
                closed.append(name)

        class Tracer:
            provider = Provider()

        gw = make_gateway(tracer=Tracer())
        gw.read("kms", "DescribeKey", KeyId=key["Arn"])
        with pytest.raises(AwsError):
            gw.read("kms", "DescribeKey", KeyId=key["Arn"].replace(key["KeyId"], "11111111-2222-3333-4444-555555555555"))
        assert opened == ["## kms.DescribeKey", "## kms.DescribeKey"]
        assert closed == opened

        untraced = make_gateway()
        untraced.read("kms", "DescribeKey", KeyId=key["Arn"])
        assert opened == ["## kms.DescribeKey", "## kms.DescribeKey"]

    def test_another_account_needs_a_configured_role(self, make_gateway):
        gw = make_gateway()
        assert not gw.can_reach(KEY_ACCOUNT) and gw.can_reach(ASG_ACCOUNT)
        with pytest.raises(AwsError) as caught:
            gw.read("kms", "ListResourceTags", account=KEY_ACCOUNT, KeyId="x")
        assert caught.value.code == "CrossAccountNotConfigured"
        assert gw.calls == []

    def test_another_account_through_the_role(self, make_gateway):
        foreign = self._key(KEY_ACCOUNT)
        gw = make_gateway(cross_account_role="KeyfixReader")
        policy = gw.read("kms", "GetKeyPolicy", account=KEY_ACCOUNT, KeyId=foreign["Arn"], PolicyName="default")
        assert json.loads(policy["Policy"]) == root_only_policy(KEY_ACCOUNT)
        assert gw.calls == [("sts", "AssumeRole"), ("kms", "GetKeyPolicy")]
        assert gw.created_clients == [("sts", None, REGION), ("kms", KEY_ACCOUNT, REGION)]
