"""Hooks into the boto3 clients keyfix itself makes, for fault injection and write counting.

The Lambda handler and `keyfix handle` build their own `AwsGateway` (a fresh default boto3
Session), so a test cannot hand them a session. `gateway_session` patches the gateway so
every gateway built without a session uses one shared Session; handlers registered on it
reach every client keyfix creates afterwards (clients copy the session's handlers).

Two levels of botocore events are used
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html):

* `before-call.<service>.<Operation>`: once per API call, before retries; answering it
  short-circuits the call (tests/support/faults.py).
* `before-send.<service>.<Operation>`: once per HTTP attempt, inside botocore's retry
  loop; answering it with an error response makes the retry handler see that error, so
  retries and their bound are exercised for real. It is more specific than moto's own
  `before-send` handler, so it runs first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Operations that change AWS state, per service keyfix could ever write to. Anything a
# keyfix run calls that is in neither list is a write too (see WriteCounter).
READ_PREFIXES = ("Describe", "Get", "List", "Lookup")
BOOKKEEPING = {
    ("sns", "Publish"),  # the notification itself
    ("sts", "GetCallerIdentity"),
    ("dynamodb", "GetItem"), ("dynamodb", "PutItem"), ("dynamodb", "UpdateItem"),
    ("dynamodb", "DeleteItem"), ("dynamodb", "Query"),  # idempotency / locks / audit
}


def gateway_session(monkeypatch: Any) -> Any:
    """A boto3 Session every AwsGateway built without one will use from now on."""
    import boto3

    from keyfix.resolve import gateway

    session = boto3.session.Session()
    original = gateway.AwsGateway.__init__

    def init(self: Any, session_arg: Any = None, **kwargs: Any) -> None:
        original(self, session_arg if session_arg is not None else session, **kwargs)

    monkeypatch.setattr(gateway.AwsGateway, "__init__", init)
    return session


class WriteCounter:
    """Every API call keyfix's clients make, and which of them are writes."""

    def __init__(self, session: Any) -> None:
        self.calls: list[tuple[str, str]] = []
        session.events.register("before-call", self._record)

    def _record(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.calls.append((model.service_model.service_name, model.name))

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [(s, op) for s, op in self.calls
                if not op.startswith(READ_PREFIXES) and (s, op) not in BOOKKEEPING]

    def count(self, service: str, operation: str) -> int:
        return self.calls.count((service, operation))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def error_response(url: str, status: int, code: str, message: str, protocol: str = "json") -> Any:
    """An HTTP error response as the service would send it (JSON protocol: KMS; query: IAM, SNS)."""
    from botocore.awsrequest import AWSResponse

    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault-injected"}
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>fault-injected</RequestId></ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse(url, status, headers, _Raw(body))


def flaky(session: Any, service: str, operation: str, code: str, times: int | None, *,
          status: int = 400, message: str = "Rate exceeded", protocol: str = "json") -> list[int]:
    """The first `times` HTTP attempts of `operation` (every attempt when None) get error
    `code`; later ones reach moto. Returns a list with one entry per attempt seen."""
    attempts: list[int] = []

    def answer(request: Any = None, **_: Any) -> Any:
        attempts.append(len(attempts) + 1)
        if times is None or len(attempts) <= times:
            return error_response(request.url, status, code, message, protocol)
        return None

    session.events.register(f"before-send.{service}.{operation}", answer)
    return attempts


def after_call(session: Any, service: str, operation: str, edit: Callable[[dict], None]) -> None:
    """`edit(parsed)` may change the parsed response of every successful `operation` in place."""

    def handler(parsed: Any = None, http_response: Any = None, **_: Any) -> None:
        if parsed is not None and (http_response is None or http_response.status_code < 300):
            edit(parsed)

    session.events.register(f"after-call.{service}.{operation}", handler)


def on_call(session: Any, service: str, operation: str, act: Callable[[dict], None]) -> None:
    """`act(params)` runs before every `operation` with its API parameters (e.g. {"KeyId": ...})."""

    def handler(params: Any = None, **_: Any) -> None:
        act(dict(params or {}))

    session.events.register(f"before-parameter-build.{service}.{operation}", handler)


def no_retry_sleep(monkeypatch: Any) -> None:
    """botocore's standard retry mode backs off up to seconds per attempt; tests need not wait."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


# -- AWS state, to compare before and after ------------------------------------------------

def iam_state(iam: Any) -> dict[str, Any]:
    """Roles (with path), users, and every inline/attached policy of each."""
    state: dict[str, Any] = {"roles": {}, "users": {}}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            inline = {p: _doc(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
                      for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
            attached = sorted(a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
            state["roles"][role["Arn"]] = {"inline": inline, "attached": attached}
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            name = user["UserName"]
            inline = {p: _doc(iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"])
                      for p in iam.list_user_policies(UserName=name)["PolicyNames"]}
            attached = sorted(a["PolicyArn"] for a in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"])
            state["users"][user["Arn"]] = {"inline": inline, "attached": attached}
    return state


def kms_state(kms: Any) -> dict[str, Any]:
    """Every key: its policy text, grants (id, grantee, operations) and state."""
    state = {}
    for key in kms.list_keys()["Keys"]:
        arn = key["KeyArn"]
        grants = sorted((g["GrantId"], g["GranteePrincipal"], tuple(sorted(g.get("Operations", []))))
                        for g in kms.list_grants(KeyId=arn)["Grants"])
        state[arn] = {
            "policy": kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"],
            "grants": grants,
            "state": kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"],
        }
    return state


def _doc(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def announce(request: Any, line: str) -> None:
    """Write a line to pytest's terminal, outside output capture, so it shows in the default
    (and -q) output; used for case counts from a module-scoped fixture's teardown."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    else:
        reporter.write_line(line)
