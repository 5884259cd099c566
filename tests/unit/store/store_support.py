"""Shared helpers of the store tests (imported by conftest and the tests)."""

from __future__ import annotations

REGION = "us-east-1"
TABLE = "keyfix-test"
ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"


def create_table(client, name: str = TABLE) -> str:
    """One table, partition key `id` (S), TTL on `expiration` (template.yaml)."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(TableName=name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    return name


class FakeClock:
    """Epoch seconds that move only when told to (or when the code under test sleeps)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def boto3_client(service: str):
    import boto3

    return boto3.client(service, region_name=REGION)


def create_audit_key(kms) -> str:
    """A KMS HMAC key like template.yaml's AuditMacKey; returns its ARN."""
    return kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC",
                          Description="keyfix audit records")["KeyMetadata"]["Arn"]


class AwsCalls:
    """Every AWS operation made through the given clients, in order ("kms:PutKeyPolicy")."""

    def __init__(self, *clients) -> None:
        self.names: list[str] = []
        for client in clients:
            prefix = client.meta.service_model.endpoint_prefix
            client.meta.events.register(
                "before-call", lambda model, _p=prefix, **_: self.names.append(f"{_p}:{model.name}"))

    def writes(self) -> list[str]:
        reads = ("Get", "List", "Describe", "VerifyMac")
        return [n for n in self.names if not n.split(":", 1)[1].startswith(reads)]
