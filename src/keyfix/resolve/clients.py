"""One boto3 session and its clients for the life of the process: a warm Lambda container's.

Lambda keeps a container's module state between invocations, and AWS recommends creating
SDK clients once and reusing them
(https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html, "Take advantage of
execution environment reuse"). A new session plus a DynamoDB client costs ~60 ms; a client
from a warm session ~2 ms; a cached client nothing. So the handler's gateway takes its
clients from `CONTAINER`, a `ClientPool` that builds the session and each client on first
use (nothing at import: the cold start stays deferred) and keeps them.

Only the session and the clients are shared. Everything an invocation learns (the read
cache, memo, call log, call budget) stays on its own `AwsGateway`: a pooled client's
botocore handlers are registered once, here, and forward each call to the gateway *active*
in the calling thread or task (a `ContextVar`), so calls still count per invocation.
botocore clients are thread safe once created; sessions are not, so creation holds a lock
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/clients.html#multithreading-or-multiprocessing-with-clients,
https://boto3.amazonaws.com/v1/documentation/api/latest/guide/session.html#multithreading-or-multiprocessing-with-sessions).

Credentials: Lambda hands the execution role's credentials to the process in environment
variables (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-runtime.html);
botocore reads them when the session first needs them, and re-reads them by itself only when
`AWS_CREDENTIAL_EXPIRATION` is set. AWS's pages do not say how long those credentials stay
valid in one container, so keyfix does not rely on it: the pool is rebuilt when the
environment that shaped it changes (credentials, Region, endpoints: also what tests switch),
and `forget()` drops it when AWS answers that the token expired, so the next call rebuilds
from the environment as it is then.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextvars import ContextVar
from typing import Any

# The gateway whose invocation is running in this thread / task (keyfix.resolve.gateway).
ACTIVE_GATEWAY: ContextVar[Any] = ContextVar("keyfix_active_gateway", default=None)

# Error codes with which AWS says the credentials' session token is no longer valid
# (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html: ExpiredTokenException;
# query-protocol services answer ExpiredToken; RequestExpired is a signature past its time).
EXPIRED_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException"})

# What shapes a session or a client at creation: a change to any of these means the pooled
# ones no longer describe the environment (never the case inside one Lambda container).
_ENV_PREFIXES = ("AWS_ENDPOINT_URL",)
_ENV_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
              "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
              "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
              "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


def environment_fingerprint(environ: Any = None) -> str:
    """A digest of the environment variables that shape a boto3 session or client (hashed:
    the credentials themselves are never kept in the clear beside the pool)."""
    environ = os.environ if environ is None else environ
    names = sorted(n for n in environ if n in _ENV_NAMES or n.startswith(_ENV_PREFIXES))
    text = "\0".join(f"{n}={environ[n]}" for n in names)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- botocore handlers of a pooled client: forward to the active gateway -----------------------

def _record(**kwargs: Any) -> None:
    gateway = ACTIVE_GATEWAY.get()
    if gateway is not None:
        gateway._record(**kwargs)


def _begin_subsegment(**kwargs: Any) -> None:
    gateway = ACTIVE_GATEWAY.get()
    if gateway is not None and gateway.tracer is not None:
        gateway._begin_subsegment(**kwargs)


def _end_subsegment(context: Any = None, exception: Any = None, **_: Any) -> None:
    # Whoever began the subsegment left it in the call's own context.
    manager = context.pop("keyfix_subsegment", None) if context is not None else None
    if manager is not None:
        if exception is not None:
            manager.__exit__(type(exception), exception, exception.__traceback__)
        else:
            manager.__exit__(None, None, None)


class ClientPool:
    """A lazily built boto3 Session and its clients, one per (service, Region, attempts).

    `session_factory()` builds the session (default: `keyfix.resolve.sdk_models.new_session()`).
    `sessions_built` and `clients_built` count what was built, for tests and the bench.
    """

    def __init__(self, session_factory: Any = None) -> None:
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[tuple[str, str | None, int], Any] = {}
        self._fingerprint: str | None = None
        self.sessions_built = 0
        self.clients_built = 0

    def session(self) -> Any:
        with self._lock:
            return self._session_locked()

    def client(self, service: str, region: str | None, max_attempts: int) -> Any:
        """The pooled client for `service` in `region`, built on first use."""
        key = (service, region, int(max_attempts))
        with self._lock:
            session = self._session_locked()  # first: a changed environment empties the pool
            found = self._clients.get(key)
            if found is None:
                from botocore.config import Config  # lazy: cold start

                found = session.client(service, region_name=region,
                                       config=Config(retries={"mode": "standard", "max_attempts": key[2]}))
                events = found.meta.events
                # Registered once per client, never per invocation: handlers would pile up.
                events.register_first("before-parameter-build", _record)
                events.register_first("before-call", _begin_subsegment)
                events.register_last("after-call", _end_subsegment)
                events.register_last("after-call-error", _end_subsegment)
                events.register_last("after-call", self._watch_expiry)
                self._clients[key] = found
                self.clients_built += 1
            return found

    def forget(self) -> None:
        """Drop the session and clients: the next use builds them again."""
        with self._lock:
            self._drop_locked()

    def _watch_expiry(self, parsed: Any = None, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if code in EXPIRED_CREDENTIAL_CODES:
            self.forget()  # this call fails as AWS said; the next invocation starts afresh

    @property
    def built(self) -> list[tuple[str, str | None, int]]:
        """(service, Region, attempts) of every pooled client."""
        with self._lock:
            return list(self._clients)

    def _session_locked(self) -> Any:
        fingerprint = environment_fingerprint()
        if self._session is not None and fingerprint != self._fingerprint:
            self._drop_locked()
        if self._session is None:
            if self._session_factory is not None:
                self._session = self._session_factory()
            else:
                from keyfix.resolve.sdk_models import new_session  # lazy: cold start

                self._session = new_session()  # EC2's model cut to keyfix's calls (sdk_models)
            self._fingerprint = fingerprint
            self.sessions_built += 1
        return self._session

    def _drop_locked(self) -> None:
        self._session = None
        self._clients = {}
        self._fingerprint = None


# The process's pool: in Lambda, the container's. Built on first use, never at import.
CONTAINER = ClientPool()
