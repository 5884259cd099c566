"""A later read settles a write whose outcome keyfix could not confirm: applied if keyfix's
change is in force, failed if not, still unverified if the read fails too. Reads only."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from keyfix.remedies import documents as docs
from keyfix.remedies.settle import SETTLE_EVERY_SECONDS, settle_now_and_then, settle_unverified

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
OURS = docs.key_policy_statements(SLR, ["kms:Decrypt"], [])
ROOT = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
        "Resource": "*"}


class Kms:
    def __init__(self, statements: list[dict] | None, grants: list[dict] = ()) -> None:
        self.statements, self.grants, self.calls = statements, list(grants), []

    def get_key_policy(self, KeyId: str, PolicyName: str) -> dict:
        self.calls.append("GetKeyPolicy")
        if self.statements is None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetKeyPolicy")
        return {"Policy": json.dumps({"Version": "2012-10-17", "Statement": self.statements})}

    def get_paginator(self, name: str) -> Any:
        grants = self.grants

        class Pages:
            def paginate(self, **kwargs: Any):
                yield {"Grants": [g for g in grants if g["GranteePrincipal"] == kwargs["GranteePrincipal"]]}

        return Pages()


class Gw:
    def __init__(self, kms: Kms) -> None:
        self.kms = kms

    def client(self, service: str) -> Any:
        assert service == "kms", service
        return self.kms


class Store:
    persistent = True
    table_name = "t"

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.outcomes: list[tuple[str, str]] = []

    def list_unverified(self) -> list[dict]:
        return self.records

    def record_outcome(self, change_id: str, status: str, details: dict) -> None:
        self.outcomes.append((change_id, status))


def _policy_record(change_id: str = "c1") -> dict:
    return {"change_id": change_id, "status": "unverified",
            "change": {"kind": "key-policy-statement", "target": KEY, "added_statements": OURS}}


def test_statements_in_force_settle_as_applied():
    store = Store([_policy_record()])
    assert settle_unverified(store, Gw(Kms([ROOT, *OURS]))) == [("c1", "applied")]
    assert store.outcomes == [("c1", "applied")]


def test_statements_absent_settle_as_failed():
    assert settle_unverified(Store([_policy_record()]), Gw(Kms([ROOT]))) == [("c1", "failed")]


def test_an_unreadable_policy_stays_unverified():
    assert settle_unverified(Store([_policy_record()]), Gw(Kms(None))) == [("c1", "unverified")]


def test_grants_settle_by_name():
    grant = docs.grant_parameters(KEY, SLR, list(docs.SLR_GRANT_OPERATIONS))
    record = {"change_id": "g", "status": "unverified", "change": {"kind": "grant", "target": KEY, "grant": grant}}
    found = Kms([], grants=[{**grant, "GrantId": "g-1"}])
    assert settle_unverified(Store([record]), Gw(found)) == [("g", "applied")]
    assert settle_unverified(Store([record]), Gw(Kms([]))) == [("g", "failed")]
    # two grants under the change's own name cannot be told apart: still unverified
    twins = Kms([], grants=[{**grant, "GrantId": "g-1"}, {**grant, "GrantId": "g-2"}])
    assert settle_unverified(Store([record]), Gw(twins)) == [("g", "unverified")]
    # more operations than recorded is not keyfix's grant
    wider = Kms([], grants=[{**grant, "GrantId": "g-3", "Operations": [*grant["Operations"], "Encrypt"]}])
    assert settle_unverified(Store([record]), Gw(wider)) == [("g", "failed")]


def test_a_warm_container_lists_at_most_once_per_period():
    store, gw = Store([_policy_record()]), Gw(Kms([ROOT, *OURS]))
    times = iter([1000.0, 1000.0 + SETTLE_EVERY_SECONDS - 1, 1000.0 + SETTLE_EVERY_SECONDS + 1])
    clock = lambda: next(times)  # noqa: E731
    results = [settle_now_and_then(store, gw, clock) for _ in range(3)]
    assert results == [[("c1", "applied")], [], [("c1", "applied")]]
