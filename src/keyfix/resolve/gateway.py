"""The one seam between keyfix and AWS: lazily created, cached, counted boto3 clients.

Everything the resolver reads goes through an `AwsGateway`:

* clients are created on first use only (an ec2 client costs ~0.6 s of a Lambda cold
  start), one per (service, account, region), with botocore's *standard* retry mode and a
  bounded number of attempts
  (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html);
* `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` are honoured by boto3 itself
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), so the
  gateway does nothing special for moto or LocalStack;
* every API call made through a client is appended to `calls` as (service, operation),
  from botocore's `before-parameter-build` event, emitted once per call just before
  `before-call` (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html), so tests can
  count exactly what a decision cost;
* `read()` memoises results (and AWS errors) for the life of the gateway, i.e. one
  invocation: a key described twice is read once;
* AWS errors (botocore `ClientError`, `EndpointConnectionError`, any `BotoCoreError`)
  surface as `AwsError`, so the readers never import botocore;
* `budget(n)` bounds the calls made inside it: a call beyond the bound is not sent and
  raises `AwsError(code=limits.BUDGET_EXHAUSTED)`, which every reader already handles as
  "could not read"; `refused` lists the calls it stopped (keyfix.resolve.limits).

boto3/botocore are imported lazily, inside the client factory: importing
`keyfix.resolve` must stay cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keyfix.arns import partition_of
from keyfix.resolve.limits import BUDGET_EXHAUSTED

# Error codes AWS uses for "you may not do this" across the services keyfix reads.
# KMS: AccessDeniedException (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html);
# EC2: UnauthorizedOperation (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html);
# IAM/STS/Auto Scaling/CloudTrail (query protocol): AccessDenied.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthFailure",
        "OptInRequired",
    }
)

DEFAULT_MAX_ATTEMPTS = 5

# The throttling error codes of botocore's standard retry mode (botocore/retries/standard.py).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})


class AwsError(Exception):
    """An AWS call failed: a service error response or a transport problem."""

    def __init__(self, service: str, operation: str, code: str, message: str = "") -> None:
        super().__init__(f"{service}:{operation}: {code}: {message}".rstrip(": "))
        self.service = service
        self.operation = operation
        self.code = code
        self.message = message

    @property
    def denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES

    @property
    def refused(self) -> bool:
        """keyfix itself did not send the call: the event's call budget was spent."""
        return self.code == BUDGET_EXHAUSTED

    @property
    def throttled(self) -> bool:
        """AWS asked keyfix to slow down (after botocore's own retries): worth asking again later,
        so never memoised. Codes: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
        (the standard retry mode's throttling errors)."""
        return self.code in THROTTLING_CODES

    @property
    def not_found(self) -> bool:
        # NotFoundException (KMS), NoSuchEntity (IAM), InvalidXxx.NotFound (EC2),
        # ValidationError "... not found" is handled by the callers that know the API.
        return (
            self.code in ("NotFoundException", "NoSuchEntity", "ResourceNotFoundException")
            or self.code.endswith(".NotFound")
            or self.code.endswith(".Malformed")
        )

    def reason(self) -> str:
        """One line for `unreadable` / `notes`."""
        text = f"{self.service}:{self.operation} failed: {self.code}"
        return f"{text} ({self.message})" if self.message else text


class AwsGateway:
    """Lazily created boto3 clients for one invocation, with a call log and a read cache.

    `session`: a boto3 Session to create clients from (default: a new default Session,
    created on first use). `account`: the account keyfix runs in ("this account"); the
    resolver sets it from the event when not given. `region`: default region for clients.
    `tracer`: an optional Powertools `Tracer` (anything whose `.provider` has
    `in_subsegment(name)`); every AWS call is then wrapped in a subsegment named
    `## service.Operation`. `cross_account_role`: a role name (or ARN template containing
    `{account}`) keyfix may assume to read another account; without it, reads that must run
    in another account fail with `AwsError(code="CrossAccountNotConfigured")`.
    """

    def __init__(
        self,
        session: Any = None,
        *,
        account: str | None = None,
        region: str | None = None,
        tracer: Any = None,
        cross_account_role: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        pool: Any = None,
    ) -> None:
        self._session = session
        # keyfix.resolve.clients.ClientPool: this account's session and clients outlive the
        # gateway (a warm container's); an explicit `session` wins (tests hand one in).
        self._pool = pool if session is None else None
        self.account = account
        self.partition: str | None = None  # set from STS GetCallerIdentity (home_account)
        self.region = region
        self.tracer = tracer
        self.cross_account_role = cross_account_role
        self.max_attempts = max_attempts
        self.calls: list[tuple[str, str]] = []
        # Calls the current budget stopped before they were sent, and the bound in force.
        self.refused: list[tuple[str, str]] = []
        # Reads AWS throttled even after retries (not memoised: keyfix.predict backs off and asks again).
        self.throttled: list[tuple[str, str]] = []
        self._call_limit: int | None = None
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}
        self._sessions: dict[str, Any] = {}
        self._cache: dict[tuple[Any, ...], Any] = {}
        # Derived facts readers want to share within the invocation (KeyFacts by any ref, ...).
        self.memo: dict[tuple[Any, ...], Any] = {}

    # -- clients -----------------------------------------------------------------

    @property
    def session(self) -> Any:
        if self._session is None:
            if self._pool is not None:
                return self._pool.session()
            from keyfix.resolve.sdk_models import new_session  # lazy: cold start

            self._session = new_session()  # EC2's model cut to keyfix's calls (sdk_models)
        return self._session

    def default_region(self) -> str | None:
        return self.region or self.session.region_name

    @property
    def created_clients(self) -> list[tuple[str, str | None, str | None]]:
        """(service, account or None for this account, region) of every client created so far."""
        return list(self._clients)

    def can_reach(self, account: str | None) -> bool:
        """Whether calls can be made *as* `account` (this account, or through the role)."""
        return account is None or account == self.account or bool(self.cross_account_role)

    def client(self, service: str, account: str | None = None, region: str | None = None) -> Any:
        """A cached client for `service`, in `account` (default: this account) and `region`."""
        if account is not None and account == self.account:
            account = None
        region = region or self.default_region()
        cache_key = (service, account, region)
        found = self._clients.get(cache_key)
        if found is None:
            if self._pool is not None and account is None:
                found = self._pool.client(service, region, self.max_attempts)
            else:
                found = self._new_client(service, account, region)
            self._clients[cache_key] = found
        if self._pool is not None:
            self.activate()  # a pooled client's calls count on the gateway that handed it out
        return found

    def activate(self) -> None:
        """Make this gateway the one pooled clients report to in this thread (keyfix.resolve.clients)."""
        from keyfix.resolve.clients import ACTIVE_GATEWAY

        if ACTIVE_GATEWAY.get() is not self:
            ACTIVE_GATEWAY.set(self)

    def release(self) -> None:
        """End of the invocation: pooled clients stop reporting to this gateway, and the
        gateway (its read cache, memo, call log) is not kept alive by the pool."""
        if self._pool is not None:
            from keyfix.resolve.clients import ACTIVE_GATEWAY

            if ACTIVE_GATEWAY.get() is self:
                ACTIVE_GATEWAY.set(None)

    def _new_client(self, service: str, account: str | None, region: str | None) -> Any:
        from botocore.config import Config  # lazy: cold start

        session = self.session if account is None else self._session_for(account, region)
        client = session.client(
            service,
            region_name=region,
            config=Config(retries={"mode": "standard", "max_attempts": self.max_attempts}),
        )
        events = client.meta.events
        # Logged at before-parameter-build: emitted for every call, before any before-call
        # handler can answer (short-circuit) the request.
        events.register_first("before-parameter-build", self._record)
        if self.tracer is not None:
            events.register_first("before-call", self._begin_subsegment)
            events.register_last("after-call", self._end_subsegment)
            events.register_last("after-call-error", self._end_subsegment)
        return client

    def _session_for(self, account: str, region: str | None) -> Any:
        """A session with credentials of `cross_account_role` in `account` (STS AssumeRole,
        https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)."""
        found = self._sessions.get(account)
        if isinstance(found, AwsError):
            raise found  # AssumeRole failed once in this invocation: do not ask again
        if found is not None:
            return found
        if not self.cross_account_role:
            raise AwsError(
                "sts",
                "AssumeRole",
                "CrossAccountNotConfigured",
                f"no cross-account role configured to act in account {account}",
            )
        role = self.cross_account_role
        if "{account}" in role:
            role_arn = role.format(account=account)
        elif role.startswith("arn:"):
            role_arn = role
        else:
            role_arn = f"arn:{partition_of(region)}:iam::{account}:role/{role}"
        try:
            creds = self.call("sts", "AssumeRole", region=region, RoleArn=role_arn, RoleSessionName="keyfix")[
                "Credentials"
            ]
        except AwsError as err:
            if not err.refused:
                self._sessions[account] = err
            raise
        from keyfix.resolve.sdk_models import new_session  # lazy

        # A fresh session: handlers registered on the base session (test hooks, header
        # injection) must not leak into another account's clients.
        session = new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )
        self._sessions[account] = session
        return session

    # -- botocore event handlers ------------------------------------------------

    def _record(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            call = (model.service_model.service_name, model.name)
            if self._call_limit is not None and len(self.calls) >= self._call_limit:
                # Raised from botocore's before-parameter-build: the request is never sent.
                self.refused.append(call)
                raise AwsError(call[0], call[1], BUDGET_EXHAUSTED,
                               "not sent: keyfix's per-event limit of AWS calls was reached")
            self.calls.append(call)

    @contextmanager
    def budget(self, calls: int) -> Iterator[None]:
        """At most `calls` more AWS calls inside the block (cached reads cost nothing)."""
        outer = self._call_limit
        self._call_limit = len(self.calls) + calls if outer is None else min(outer, len(self.calls) + calls)
        try:
            yield
        finally:
            self._call_limit = outer

    def _begin_subsegment(self, model: Any = None, context: Any = None, **_: Any) -> None:
        if model is None or context is None:
            return
        manager = self.tracer.provider.in_subsegment(
            name=f"## {model.service_model.service_name}.{model.name}"
        )
        manager.__enter__()
        context["keyfix_subsegment"] = manager

    def _end_subsegment(self, context: Any = None, exception: Any = None, **_: Any) -> None:
        from keyfix.resolve.clients import _end_subsegment  # one closer for pooled and own clients

        _end_subsegment(context=context, exception=exception)

    # -- calls -------------------------------------------------------------------

    def call(
        self,
        service: str,
        operation: str,
        *,
        account: str | None = None,
        region: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Make one API call (not cached). `operation` is the API name, e.g. "DescribeKey"."""
        try:
            client = self.client(service, account, region)
            method = getattr(client, _snake(operation))
            return method(**params)
        except AwsError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised when not AWS's
            err = _translate(service, operation, exc)
            if err is exc:
                raise
            raise err from exc

    def read(
        self,
        service: str,
        operation: str,
        *,
        account: str | None = None,
        region: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """`call`, memoised for this gateway's life (errors too: a denied read stays denied)."""
        key = self._cache_key(service, operation, account, region, params)
        if key in self._cache:
            found = self._cache[key]
            if isinstance(found, AwsError):
                raise found
            return found
        try:
            result = self.call(service, operation, account=account, region=region, **params)
        except AwsError as err:
            if err.throttled:
                self.throttled.append((service, operation))
            elif not err.refused:  # a call the budget stopped may be made once it is lifted
                self._cache[key] = err
            raise
        self._cache[key] = result
        return result

    def read_all(
        self,
        service: str,
        operation: str,
        result_key: str,
        *,
        account: str | None = None,
        region: str | None = None,
        **params: Any,
    ) -> list[Any]:
        """Every item of a paginated read (botocore's paginator), memoised like `read`."""
        key = self._cache_key(service, operation + "#all", account, region, params)
        if key in self._cache:
            found = self._cache[key]
            if isinstance(found, AwsError):
                raise found
            return found
        try:
            client = self.client(service, account, region)
            name = _snake(operation)
            items: list[Any] = []
            if client.can_paginate(name):
                for page in client.get_paginator(name).paginate(**params):
                    items.extend(page.get(result_key, []))
            else:
                items.extend(getattr(client, name)(**params).get(result_key, []))
        except AwsError as err:
            if err.throttled:
                self.throttled.append((service, operation))
            elif not err.refused:
                self._cache[key] = err
            raise
        except Exception as exc:  # noqa: BLE001
            err = _translate(service, operation, exc)
            if err is exc:
                raise
            if err.throttled:
                self.throttled.append((service, operation))
            else:
                self._cache[key] = err
            raise err from exc
        self._cache[key] = items
        return items

    def _cache_key(
        self, service: str, operation: str, account: str | None, region: str | None, params: dict[str, Any]
    ) -> tuple[Any, ...]:
        if account is not None and account == self.account:
            account = None
        region = region or self.region
        return (service, operation, account, region, json.dumps(params, sort_keys=True, default=str))

    def home_account(self) -> str | None:
        """This account: as configured, else from STS GetCallerIdentity (one call, cached)."""
        if self.account is None:
            try:
                identity = self.read("sts", "GetCallerIdentity")
            except AwsError:
                return None
            self.account = identity["Account"]
            # The partition keyfix runs in, as AWS names its own identity: writes never name
            # another partition (remedies.safety).
            self.partition = str(identity.get("Arn", "")).split(":")[1] if identity.get("Arn") else None
        return self.account

    @property
    def home_partition(self) -> str:
        """The partition of keyfix's own identity when STS said so, else of its Region."""
        return getattr(self, "partition", None) or partition_of(self.default_region())


def _snake(operation: str) -> str:
    from botocore import xform_name  # lazy

    return xform_name(operation)


def _translate(service: str, operation: str, exc: Exception) -> Exception:
    """botocore errors -> AwsError; anything else (a bug) is returned unchanged to re-raise."""
    from botocore.exceptions import BotoCoreError, ClientError  # lazy; loaded with boto3 anyway

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return AwsError(service, operation, str(error.get("Code", "Unknown")), str(error.get("Message", "")))
    if isinstance(exc, BotoCoreError):
        return AwsError(service, operation, type(exc).__name__, str(exc))
    return exc

