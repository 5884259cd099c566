"""Process each incident once per window, keyed on what makes the incident distinct.

EventBridge delivers at least once and AWS services may send an event twice
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html), and a failing
Auto Scaling group emits a storm of near-identical events (one per launch attempt, each with
its own event id). So the event id is the wrong key; the key is the *incident*, built only
from what the parsed `Incident` knows before any AWS read:

    {"account", "region", "trigger", "subject", "cause_class", "principal", "key_arns",
     "action", "mode"}

- `subject`: the group name, instance id or volume id the failure is about ("" for a
  CloudTrail denial, whose subject is its principal).
- `cause_class`: why it failed, reduced to what a storm of the same failure shares:
  - Auto Scaling: "kms" / "not-kms" / "unknown" (`Incident.kms_related`) and the error code
    of the reason (`Client.InvalidKMSKey.InvalidState`, `Server.InsufficientInstanceCapacity`,
    ...; codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), else the
    reason's text with ids, ARNs and numbers blanked (instance ids and attempt counters change
    within a storm; AWS's pages do not say which parts of StatusMessage vary, so only those go).
    A capacity failure and a KMS failure of one group are two incidents.
  - EC2 state change: the state (stopped / terminated); the reason is not in the event.
  - EBS: the key state the cause states ("Disabled", ...) or the cause's blanked text.
  - CloudTrail: the errorCode and the layer the message blames (`Denial`).
- `principal` (CloudTrail only): the caller exactly as the event states it: type, ARN (the
  session issuer's IAM ARN for a role session), session ARN, the session issuer's ARN,
  principalId (the role's unique id and session name), invokedBy and account
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
  A look-alike of the Auto Scaling service-linked role (same session ARN, no issuer, another
  unique id, no invokedBy) and the genuine role never share a key, so a forged denial cannot
  pre-empt the genuine one. The encryption context and grantee are left out: they carry the
  volume id, which changes with every launch of a storm.
- `key_arns`: the keys the event names, sorted; `action`: the KMS action or EBS operation.
- `mode`: the first run's result stands for later events only when it was produced in the same
  mode: an operator's `keyfix handle --mode apply` is not answered with a propose run's report.

Within `window_seconds` of the first run for an incident key, the wrapped function is not run
again: the first run's (JSON-serialisable) result is returned (`keyfix.pipeline` rebuilds the
first report from it, with `duplicate_of`). A run may decline to be remembered by raising
`NotRemembered(result)`: its result is returned and no record is kept, so the next event of the
incident is handled afresh. The pipeline does this when the run did not settle the incident
(keyfix.duplicates: undetermined, a fix failed, unverified, not attempted, or refused): neither
a transient failure nor a refusal a person is about to resolve answers for the incident for 15
minutes. So a forged denial keyfix cannot fix blocks nothing twice over: its key is not the
genuine incident's, and its refusal is not remembered.
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

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

KEY_PREFIX = "incident"
INCIDENT_FIELDS = ("account", "region", "trigger", "subject", "cause_class", "principal", "key_arns", "action",
                   "mode")
PRINCIPAL_FIELDS = ("type", "arn", "session_arn", "session_issuer_arn", "principal_id", "invoked_by", "account")
DEFAULT_WINDOW_SECONDS = 15 * 60
DEFAULT_CLI_TIMEOUT_SECONDS = 60


class InProgressElsewhere(Exception):
    """Another invocation is processing the same incident right now."""


class NotRemembered(Exception):
    """Raised by the wrapped function to return `result` without keeping it for the window."""

    def __init__(self, result: Any) -> None:
        super().__init__("result not remembered")
        self.result = result


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ValueError(f"incident key field {field} must be a string, not {type(value).__name__}")


def _principal(value: Any) -> dict[str, str]:
    if value is None or value == "":
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError(f"incident key field principal must be a mapping, not {type(value).__name__}")
    extra = set(value) - set(PRINCIPAL_FIELDS)
    if extra:
        raise ValueError(f"incident key principal has fields {sorted(map(str, extra))} beyond {list(PRINCIPAL_FIELDS)}")
    return {name: _text(value.get(name), f"principal.{name}") for name in PRINCIPAL_FIELDS}


def _key_arns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise ValueError(f"incident key field key_arns must be a list of strings, not {type(value).__name__}")
    return sorted({_text(a, "key_arns") for a in value} - {""})


def normalise_incident_key(key: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form that is hashed: exactly INCIDENT_FIELDS, strings, the principal's
    PRINCIPAL_FIELDS, key ARNs sorted and de-duplicated. Anything else (an event id, a time)
    is refused with ValueError, because it would make every delivery of the same incident look
    new."""
    if not isinstance(key, Mapping):
        raise ValueError(f"an incident key is a mapping, not {type(key).__name__}")
    extra = set(key) - set(INCIDENT_FIELDS)
    if extra:
        raise ValueError(f"incident key has fields {sorted(map(str, extra))} beyond {list(INCIDENT_FIELDS)}")
    out: dict[str, Any] = {}
    for name in INCIDENT_FIELDS:
        if name == "principal":
            out[name] = _principal(key.get(name))
        elif name == "key_arns":
            out[name] = _key_arns(key.get(name))
        else:
            out[name] = _text(key.get(name), name)
    return out


# -- the cause class -------------------------------------------------------------------

# EC2 error and state-reason codes as AWS writes them ("Client.InvalidKMSKey.InvalidState",
# "Server.InsufficientInstanceCapacity"), and the bare launch error codes Auto Scaling relays.
_DOTTED_CODE_RE = re.compile(r"\b(?:Client|Server)\.[A-Za-z]+(?:\.[A-Za-z]+)*")
_BARE_CODE_RE = re.compile(
    r"\b(?:InsufficientInstanceCapacity|InsufficientFreeAddressesInSubnet|InstanceLimitExceeded"
    r"|VcpuLimitExceeded|MaxSpotInstanceCountExceeded|SpotMaxPriceTooLow|UnauthorizedOperation"
    r"|InvalidAMIID(?:\.[A-Za-z]+)?|InvalidSubnetID(?:\.[A-Za-z]+)?|InvalidGroup\.NotFound"
    r"|InvalidKeyPair\.NotFound|InvalidParameterValue|InvalidParameterCombination)\b"
)
# What changes between events of one storm: ARNs, resource ids (i-0abc..., vol-...), times, numbers.
_ARN_RE = re.compile(r"\barn:[^\s,;()\"']+")
_RESOURCE_ID_RE = re.compile(r"\b[a-z]{1,12}-[0-9a-f]{8,32}\b")
_NUMBER_RE = re.compile(r"\d+")


def blanked(text: str | None) -> str:
    """`text` with what varies between events of one storm blanked, whitespace collapsed."""
    if not text:
        return ""
    text = _ARN_RE.sub("<arn>", text)
    text = _RESOURCE_ID_RE.sub("<id>", text)
    text = _NUMBER_RE.sub("#", text)
    return " ".join(text.split())


def error_code_in(text: str | None) -> str | None:
    """The first EC2 error / state-reason code `text` names, if any."""
    if not text:
        return None
    m = _DOTTED_CODE_RE.search(text) or _BARE_CODE_RE.search(text)
    return m.group(0) if m else None


def _kms_class(kms_related: bool | None) -> str:
    return {True: "kms", False: "not-kms"}.get(kms_related, "unknown")


def cause_class(incident: Any) -> str:
    """Why the incident's failure happened, as far as the event says (see the module doc)."""
    trigger = str(incident.trigger)
    if trigger == "asg-launch-failure":
        reason = incident.status_message
        return f"{_kms_class(incident.kms_related)}:{error_code_in(reason) or blanked(reason)}"
    if trigger == "ec2-launch-failure":
        return f"state:{incident.instance_state or ''}"
    if trigger == "ebs-volume-failure":
        return f"{_kms_class(incident.kms_related)}:{incident.key_state_hint or blanked(incident.ebs_cause)}"
    if trigger == "kms-access-denied":
        return f"{incident.error_code or ''}:{incident.denial or ''}"
    return ""


def _principal_of(caller: Any) -> dict[str, Any]:
    if caller is None:
        return {}
    return {name: getattr(caller, name, None) for name in PRINCIPAL_FIELDS}


def incident_key(incident: Any, mode: str = "") -> dict[str, Any]:
    """The incident key of a parsed `keyfix.events.incident.Incident` handled in `mode`."""
    subject = incident.group_name or incident.instance_id or incident.volume_id or ""
    return normalise_incident_key({
        "account": incident.account,
        "region": incident.region,
        "trigger": str(incident.trigger),
        "subject": subject,
        "cause_class": cause_class(incident),
        "principal": _principal_of(incident.caller),
        "key_arns": list(incident.key_arns or ()),
        "action": incident.action or incident.ebs_operation or "",
        "mode": str(mode or ""),
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
    exception from `fn` deletes the record, so a retry runs `fn` again. `fn` raising
    `NotRemembered(result)` returns `result` and keeps no record either.
    """
    if not table_name:
        def passthrough(incident_key: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
            normalise_incident_key(incident_key)
            try:
                return fn(*args, **kwargs)
            except NotRemembered as exc:
                return exc.result

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
        except NotRemembered as exc:  # Powertools deleted the record, as for any exception
            return exc.result

    def register_lambda_context(context: Any) -> None:
        registered["context"] = context

    wrapped.register_lambda_context = register_lambda_context  # type: ignore[attr-defined]
    wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapped.persistence_layer = persistence  # type: ignore[attr-defined]
    return wrapped
