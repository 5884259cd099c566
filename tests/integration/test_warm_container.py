"""A warm Lambda container: the boto3 session and clients are built once and reused across
invocations, while everything an invocation reads stays its own (issue #16).

The handler runs as Lambda runs it: one process, invocation after invocation, with the
table and topic of tests/integration/conftest.py. Sessions and clients are counted where
boto3 builds them (boto3.session.Session), so a session built anywhere else would show.
"""

from __future__ import annotations

import json

import pytest

from keyfix.demo.runtime import FakeLambdaContext
from keyfix.resolve import clients
from keyfix.resolve.gateway import AwsError, AwsGateway
from tests.integration.conftest import load_event
from tests.support.accounts import ASG_ACCOUNT, build_a1

A1_EVENT = "asg-launch-cancelled-a1.json"
NOT_KMS_EVENT = "asg-launch-unsuccessful-not-kms.json"


@pytest.fixture
def container(world, monkeypatch):
    """A fresh container: an empty pool, counted sessions and clients, and the gateway of
    each invocation kept (with its call log) when the handler releases it."""
    import boto3

    built = {"sessions": 0, "clients": []}
    user_agents: list[str] = []

    class CountedSession(boto3.session.Session):
        def __init__(self, *args, **kwargs):
            built["sessions"] += 1
            super().__init__(*args, **kwargs)
            # Copied into every client made from this session: the User-Agent each request sends.
            self.events.register("before-send", lambda request=None, **_: user_agents.append(
                request.headers.get("User-Agent", b"").decode() if isinstance(
                    request.headers.get("User-Agent"), bytes) else str(request.headers.get("User-Agent"))))

        def client(self, service_name, *args, **kwargs):
            built["clients"].append(service_name)
            return super().client(service_name, *args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", CountedSession)
    monkeypatch.setattr(clients, "CONTAINER", clients.ClientPool())
    gateways: list[AwsGateway] = []
    release = AwsGateway.release

    def keep(self):
        gateways.append(self)
        release(self)

    monkeypatch.setattr(AwsGateway, "release", keep)
    monkeypatch.setenv("KEYFIX_MODE", "apply")
    return built, gateways, user_agents


def invoke(event: dict) -> dict:
    from keyfix.handler import lambda_handler

    return lambda_handler(event, FakeLambdaContext())


def fresh(event: dict, n: int) -> dict:
    event = json.loads(json.dumps(event))
    event["id"] = f"{event['id'][:-4]}{n:04d}"
    return event


def test_a_warm_container_builds_its_session_and_clients_once(world, container):
    built, gateways, user_agents = container
    case = build_a1(world.env)
    world.client("kms").tag_resource(KeyId=case.key_arn, Tags=[{"TagKey": "keyfix:auto-remediate",
                                                                 "TagValue": "true"}])
    event = load_event(A1_EVENT)
    built["sessions"], built["clients"] = 0, []  # what the builders made is not keyfix's

    first = invoke(event)
    assert first["findings"][0]["fixes"][0]["status"] == "applied"
    after_first = (built["sessions"], list(built["clients"]))
    assert after_first[0] == 1, "the first invocation builds exactly one session"
    assert len(after_first[1]) == len(set(after_first[1])), f"a client built twice: {after_first[1]}"

    duplicates = [invoke(fresh(event, n)) for n in range(1, 21)]
    assert [d["duplicate_of"] for d in duplicates] == [first["event"]["id"]] * 20
    # Nothing more was built for 20 invocations.
    assert (built["sessions"], built["clients"]) == after_first
    assert len(gateways) == 21, "one gateway per invocation"
    # Calls still count per invocation: the first diagnosed and wrote, each duplicate made
    # exactly the idempotency lookup.
    assert ("kms", "PutKeyPolicy") in gateways[0].calls
    assert [g.calls for g in gateways[1:]] == [[("dynamodb", "PutItem")]] * 20
    # Handlers do not pile up on the reused clients: every request of a duplicate carries
    # the same User-Agent as the first duplicate's (Powertools adds its feature once).
    duplicate_agents = user_agents[-20:]
    assert len(set(duplicate_agents)) == 1, duplicate_agents[:2]


def test_reads_do_not_leak_from_one_invocation_into_the_next(world, container):
    """The session is shared; the read cache is not: the next invocation reads the key again."""
    built, gateways, _ = container
    case = build_a1(world.env)
    built["sessions"] = 0
    invoke(load_event(A1_EVENT))
    # Another incident of the same group (another failure reason): a full diagnosis again.
    second = load_event(A1_EVENT)
    second["id"] = "another-incident"
    second["detail"]["StatusMessage"] = second["detail"]["StatusMessage"].replace(
        "Client.InvalidKMSKey.InvalidState", "Client.InternalError")
    report = invoke(second)
    assert report.get("duplicate_of") is None and report["findings"][0]["key_arn"] == case.key_arn
    for gateway in gateways:
        assert gateway.calls.count(("kms", "DescribeKey")) == 1
        assert ("kms", "GetKeyPolicy") in gateway.calls
    assert gateways[1]._cache is not gateways[0]._cache and gateways[1].memo is not gateways[0].memo
    assert built["sessions"] == 1


def test_a_changed_environment_rebuilds_the_pool(monkeypatch):
    made: list[int] = []
    pool = clients.ClientPool(session_factory=lambda: made.append(1) or _FakeSession())
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    a = pool.client("sts", "us-east-1", 3)
    assert pool.client("sts", "us-east-1", 3) is a and len(made) == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    b = pool.client("sts", "us-east-1", 3)
    assert b is not a and len(made) == 2 and pool.sessions_built == 2


def test_an_expired_token_drops_the_pool():
    pool = clients.ClientPool(session_factory=_FakeSession)
    a = pool.client("sts", "us-east-1", 3)
    pool._watch_expiry(parsed={"Error": {"Code": "AccessDenied"}})
    assert pool.client("sts", "us-east-1", 3) is a
    pool._watch_expiry(parsed={"Error": {"Code": "ExpiredTokenException"}})
    assert pool.client("sts", "us-east-1", 3) is not a and pool.sessions_built == 2


def test_calls_through_a_pooled_client_count_on_the_gateway_that_handed_it_out(world, monkeypatch):
    monkeypatch.setattr(clients, "CONTAINER", clients.ClientPool())
    first = AwsGateway(account=ASG_ACCOUNT, pool=clients.CONTAINER)
    first.call("sts", "GetCallerIdentity")
    first.release()
    second = AwsGateway(account=ASG_ACCOUNT, pool=clients.CONTAINER)
    second.call("sts", "GetCallerIdentity")
    second.call("sts", "GetCallerIdentity")
    second.release()
    assert first.client("sts") is second.client("sts")
    assert (first.calls, second.calls) == ([("sts", "GetCallerIdentity")], [("sts", "GetCallerIdentity")] * 2)
    with second.budget(0), pytest.raises(AwsError) as refused:
        second.call("sts", "GetCallerIdentity")
    assert refused.value.refused and second.refused == [("sts", "GetCallerIdentity")]


class _FakeClient:
    class meta:  # noqa: N801 - shaped like a botocore client's
        class events:  # noqa: N801
            @staticmethod
            def register_first(*_a, **_k): pass

            @staticmethod
            def register_last(*_a, **_k): pass


class _FakeSession:
    def client(self, *_a, **_k):
        return _FakeClient()
