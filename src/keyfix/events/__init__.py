"""Raw EventBridge event -> `Incident`.

    parse(raw) -> Incident        classify by the rules' patterns, validate with the
                                  trigger's Powertools Parser model, map to an Incident
    parse_json(text) -> Incident  the same from JSON text
    EventError                    the only exception bad input raises

An event no rule matches (or whose source is not "aws.*") is an Incident with
trigger UNRECOGNISED carrying what can be read safely. An event a rule matches but
whose fields keyfix relies on are missing or mistyped raises EventError naming the
field. A raw value that is not a JSON object raises EventError, and so does any event
holding text that is not Unicode (a lone surrogate), an over-long string, or more than
EventBridge can deliver, and a recognised event whose `region` is not shaped like an AWS
Region (keyfix.events.wellformed).

Cold start: this module imports no pydantic; the trigger's model module is imported
when the first event of that trigger arrives, and the EC2 state-change model, whose rule
fires for every stop in the account, is declared without pydantic (keyfix.events.plain).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from keyfix.events.incident import Caller, Denial, Incident
from keyfix.events.patterns import PATTERNS, classify
from keyfix.events.plain import Invalid, Model
from keyfix.events.wellformed import region_problem, size_problem, text_problem
from keyfix.report import Trigger

__all__ = ["parse", "parse_json", "EventError", "Incident", "Caller", "Denial", "PATTERNS"]


class EventError(ValueError):
    """The event cannot be processed: not a JSON object, or a recognised event whose
    fields keyfix relies on are missing or have the wrong type. The message names the
    rule and the field(s)."""


# rule -> (module, model). A model is a pydantic class or a keyfix.events.plain.Model. Each
# module has `to_incident(validated model) -> Incident`.
_MODELS: dict[str, tuple[str, str]] = {
    "AsgLaunchFailureRule": ("keyfix.events.autoscaling", "AsgLaunchUnsuccessfulEvent"),
    "AsgLaunchTerminatedRule": ("keyfix.events.autoscaling", "AsgTerminateSuccessfulEvent"),
    "KmsAccessDeniedRule": ("keyfix.events.cloudtrail", "KmsCloudTrailEvent"),
    "EbsVolumeFailureRule": ("keyfix.events.ebs", "EbsVolumeNotificationEvent"),
    "Ec2StoppedRule": ("keyfix.events.ec2", "Ec2StateChangeEvent"),
    "AsgLaunchSuccessfulRule": ("keyfix.events.recovery", "AsgLaunchSuccessfulEvent"),
    "KeyChangeRule": ("keyfix.events.keychange", "KeyChangeEvent"),
}

_MAX_ERRORS = 5
_MAX_LOC_PART = 80


def parse(raw: Any) -> Incident:
    """The Incident one EventBridge event describes. Raises EventError only."""
    if not isinstance(raw, Mapping):
        raise EventError(f"an EventBridge event must be a JSON object, not {_json_type(raw)}")
    # Before anything reads a field: an unrecognised event's id and source go into the report too.
    problem = text_problem(raw) or size_problem(raw)
    if problem:
        raise EventError(f"malformed event: {problem}")
    rule = classify(raw)
    if rule is None:
        return _unrecognised(raw)
    problem = region_problem(raw)
    if problem:
        raise EventError(f"{_what(raw, rule)!r} event (rule {rule}) is malformed: {problem}")
    module_name, model_name = _MODELS[rule]
    module = importlib.import_module(module_name)
    model_type = getattr(module, model_name)
    if isinstance(model_type, Model):  # declared without pydantic (keyfix.events.plain)
        invalid: type[ValueError] = Invalid
        validate = model_type.validate
    else:
        from pydantic import ValidationError as invalid

        validate = model_type.model_validate
    try:
        model = validate(raw)
    except invalid as exc:
        raise EventError(_describe(exc, rule, raw)) from None
    incident: Incident = module.to_incident(model)
    return incident


def parse_json(text: str | bytes) -> Incident:
    """parse() of JSON text; unreadable JSON raises EventError too."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise EventError(f"not valid JSON: {str(exc)[:200]}") from None
    return parse(raw)


def _unrecognised(raw: Mapping[str, Any]) -> Incident:
    def text(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    time = raw.get("time")
    return Incident(
        trigger=Trigger.UNRECOGNISED,
        event_id=text("id"),
        source=text("source"),
        detail_type=text("detail-type"),
        account=text("account"),
        region=text("region"),
        time=time if isinstance(time, str) else None,
    )


def _what(raw: Mapping[str, Any], rule: str) -> str:
    detail_type = raw.get("detail-type")
    return detail_type if isinstance(detail_type, str) else rule


def _describe(exc: Any, rule: str, raw: Mapping[str, Any]) -> str:
    what = _what(raw, rule)
    problems = []
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    for err in errors[:_MAX_ERRORS]:
        loc = ".".join(_short(part) for part in err["loc"]) or "(event)"
        problems.append(f"{loc}: {err['msg']}")
    more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
    return f"{what!r} event (rule {rule}) is malformed: " + "; ".join(problems) + more


def _short(part: Any) -> str:
    s = str(part)
    return s if len(s) <= _MAX_LOC_PART else s[: _MAX_LOC_PART - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
