"""Process each incident once per window, keyed on what the failure is about.

EventBridge delivers at least once, and a failing Auto Scaling group emits a storm of
near-identical events (one per launch attempt, each with its own event id), so the event
id is the wrong key. The key is the *incident*:

    {"account", "trigger", "subject", "key_arns", "action"}

`subject` is the group name, principal ARN, instance id or volume id the failure is
about. Within `window_seconds` of the first run for an incident key, the wrapped function
is not run again: the first run's (JSON-serialisable) result is returned.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html
https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/

Records live in keyfix's one table beside `keyfix.store`'s items: Powertools'
DynamoDBPersistenceLayer writes `id` = "incident#<sha256 of the key>" (its `key_prefix`),
`expiration` (epoch seconds: the same TTL attribute as every other item),
`in_progress_expiration` (epoch milliseconds), `status` and `data` (the result as JSON).
Store items use other prefixes (lock#, change#, notify#), so the two never collide.

Powertools marks a run INPROGRESS until it finishes; if the process dies meanwhile, the
record stays in progress until `in_progress_expiration`, which it computes from the Lambda
context's remaining time. Outside Lambda (`keyfix handle`) there is no context, so a
stand-in context gives each call `cli_timeout_seconds` (default: the Lambda's 60 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

KEY_PREFIX = "incident"
INCIDENT_FIELDS = ("account", "trigger", "subject", "key_arns", "action")
DEFAULT_WINDOW_SECONDS = 15 * 60
DEFAULT_CLI_TIMEOUT_SECONDS = 60


class InProgressElsewhere(Exception):
    """Another invocation is processing the same incident right now."""


def normalise_incident_key(key: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form that is hashed: exactly INCIDENT_FIELDS, strings, key ARNs
    sorted and de-duplicated. Anything else (an event id, a time) is refused, because it
    would make every delivery of the same incident look new."""
    extra = set(key) - set(INCIDENT_FIELDS)
    if extra:
        raise ValueError(f"incident key has fields {sorted(extra)} beyond {list(INCIDENT_FIELDS)}")
    arns = key.get("key_arns") or ()
    if isinstance(arns, str):
        arns = (arns,)
    return {
        "account": str(key.get("account") or ""),
        "trigger": str(key.get("trigger") or ""),
        "subject": str(key.get("subject") or ""),
        "key_arns": sorted({str(a) for a in arns if a}),
        "action": str(key.get("action") or ""),
    }


def incident_key(incident: Any) -> dict[str, Any]:
    """The incident key of a parsed `keyfix.events.incident.Incident`."""
    caller = getattr(incident, "caller", None)
    caller_arn = (caller.arn or caller.session_arn) if caller is not None else None
    subject = incident.group_name or caller_arn or incident.instance_id or incident.volume_id or ""
    return normalise_incident_key({
        "account": incident.account,
        "trigger": str(incident.trigger),
        "subject": subject,
        "key_arns": list(incident.key_arns or ()),
        "action": incident.action or incident.ebs_operation or "",
    })


class _CliContext:
    """Stands in for the Lambda context outside Lambda: Powertools asks it for the time
    left, to set `in_progress_expiration` (LambdaContext.get_remaining_time_in_millis)."""

    def __init__(self, timeout_seconds: float) -> None:
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def make_idempotent(fn: Callable[..., Any], table_name: str | None,
                    window_seconds: int = DEFAULT_WINDOW_SECONDS, *, dynamodb_client: Any = None,
                    lambda_context: Any = None, cli_timeout_seconds: float = DEFAULT_CLI_TIMEOUT_SECONDS,
                    key_prefix: str = KEY_PREFIX) -> Callable[..., Any]:
    """Wrap `fn` so that `wrapped(incident_key, *args, **kwargs)` runs `fn(*args, **kwargs)`
    at most once per incident key per `window_seconds` and otherwise returns the first
    result. `fn`'s result must be JSON-serialisable (Powertools stores it as JSON).

    `table_name` None (KEYFIX_TABLE_NAME unset) gives a wrapper that always runs `fn`.
    `lambda_context`: the handler's context; `wrapped.register_lambda_context(ctx)` sets it
    later. Without one, each call gets `cli_timeout_seconds` of in-progress protection.
    A concurrent call for an incident still in progress raises `InProgressElsewhere`; an
    exception from `fn` deletes the record, so a retry runs `fn` again.
    """
    if not table_name:
        def passthrough(incident_key: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
            normalise_incident_key(incident_key)
            return fn(*args, **kwargs)

        passthrough.register_lambda_context = lambda ctx: None  # type: ignore[attr-defined]
        return passthrough

    # Powertools' DynamoDB layer imports boto3 at module level: import it only here.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="id",  # the table's partition key (template.yaml)
        expiry_attr="expiration",  # the table's TTL attribute
        in_progress_expiry_attr="in_progress_expiration",
        status_attr="status",
        data_attr="data",
        boto3_client=dynamodb_client,
    )
    config = IdempotencyConfig(
        expires_after_seconds=int(window_seconds),
        hash_function="sha256",
        raise_on_no_idempotency_key=True,
        use_local_cache=False,  # one table is the truth across concurrent invocations
    )
    registered: dict[str, Any] = {"context": lambda_context}

    @idempotent_function(data_keyword_argument="incident_key", persistence_store=persistence,
                         config=config, key_prefix=key_prefix)
    def _once(*args: Any, incident_key: dict[str, Any], **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def wrapped(incident_key: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        key = normalise_incident_key(incident_key)
        config.register_lambda_context(registered["context"] or _CliContext(cli_timeout_seconds))
        try:
            return _once(*args, incident_key=key, **kwargs)
        except IdempotencyAlreadyInProgressError as exc:
            raise InProgressElsewhere(str(exc)) from exc

    def register_lambda_context(context: Any) -> None:
        registered["context"] = context

    wrapped.register_lambda_context = register_lambda_context  # type: ignore[attr-defined]
    wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapped.persistence_layer = persistence  # type: ignore[attr-defined]
    return wrapped
