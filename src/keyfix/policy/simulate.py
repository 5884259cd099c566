"""`keyfix simulate FILE [--format json|text]`: decide one request offline.

The input is described by src/keyfix/schemas/simulate.schema.json; it is checked
here by hand (no jsonschema at runtime), naming the place of any violation.
Absent inputs mean "none in force"; an absent `scps`/`rcps` means "not in an
organisation", an empty level allows nothing. Additive inputs: `request.unknown_keys`
(condition keys whose value is unknown, prefixes ending with "/") and `unknown_policies`
(layers that are unknown rather than absent); with them the decision may be
`Undetermined` (unknowns.py).
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from keyfix.policy.decision import Decision
from keyfix.policy.errors import PolicyError
from keyfix.policy.evaluate import evaluate_resolved
from keyfix.policy.grant import Grant
from keyfix.policy.policy import Policy
from keyfix.policy.policy_set import PolicySet
from keyfix.policy.request import Request, ResolvedRequest, resolve_request
from keyfix.policy.unknowns import UNKNOWN_LAYERS, parse_unknown_keys

_ACCOUNT = re.compile(r"^[0-9]{12}$")


def _object(value: Any, place: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(place, "must be an object")
    return value


def _array(value: Any, place: str) -> list[Any]:
    if not isinstance(value, list):
        raise PolicyError(place, "must be an array")
    return value


def _load_request(raw: Any) -> Request:
    req = _object(raw, "request")
    for name in ("principal", "action", "resource"):
        if name not in req:
            raise PolicyError(f"request.{name}", "is required")
        if not isinstance(req[name], str):
            raise PolicyError(f"request.{name}", "must be a string")
    account = req.get("resource_account")
    if "resource_account" in req and (not isinstance(account, str) or not _ACCOUNT.match(account)):
        raise PolicyError("request.resource_account", "must be a 12-digit account id")
    context = _object(req.get("context", {}), "request.context")
    for key, value in context.items():
        ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not ok:
            raise PolicyError(f"request.context.{key}", "must be a string or an array of strings")
    unknown_keys = req.get("unknown_keys", [])
    parse_unknown_keys(unknown_keys)  # checked here so the place is named
    return Request(req["principal"], req["action"], req["resource"], account, dict(context), tuple(unknown_keys))


def _unknown_layers(doc: dict[str, Any]) -> frozenset[str]:
    raw = _array(doc.get("unknown_policies", []), "unknown_policies")
    for i, name in enumerate(raw):
        if name not in UNKNOWN_LAYERS:
            raise PolicyError(f"unknown_policies[{i}]", f"{name!r} is not one of {', '.join(UNKNOWN_LAYERS)}")
        if doc.get(name) not in (None, []):  # an empty list gives nothing
            raise PolicyError(f"unknown_policies[{i}]", f"{name} is given, so it cannot also be unknown")
    return frozenset(raw)


def _policy_or_none(doc: dict[str, Any], name: str) -> Policy | None:
    value = doc.get(name)
    if value is None:
        return None
    return Policy.parse(_object(value, name), name)


def _policies(doc: dict[str, Any], name: str) -> tuple[Policy, ...]:
    items = _array(doc.get(name, []), name)
    return tuple(_named_policy(p, f"{name}[{i}]") for i, p in enumerate(items))


def _named_policy(value: Any, place: str) -> Policy:
    return Policy.parse(_object(value, place), place)


def _levels(doc: dict[str, Any], name: str) -> tuple[tuple[Policy, ...], ...] | None:
    if name not in doc:
        return None
    levels = _array(doc[name], name)
    out = []
    for i, level in enumerate(levels):
        items = _array(level, f"{name}[{i}]")
        out.append(tuple(_named_policy(p, f"{name}[{i}][{j}]") for j, p in enumerate(items)))
    return tuple(out)


def _grants(doc: dict[str, Any]) -> tuple[Grant, ...]:
    out = []
    for i, entry in enumerate(_array(doc.get("grants", []), "grants")):
        place = f"grants[{i}]"
        entry = _object(entry, place)
        for required in ("GranteePrincipal", "Operations"):
            if required not in entry:
                raise PolicyError(f"{place}.{required}", "is required")
        out.append(Grant.from_aws(entry, place))
    return tuple(out)


def load(doc: dict[str, Any]) -> tuple[Request, PolicySet]:
    """Read a simulate document; PolicyError names the place of anything invalid."""
    resolved, policies = _load(doc)
    return resolved.request, policies


def _load(doc: dict[str, Any]) -> tuple[ResolvedRequest, PolicySet]:
    doc = _object(doc, "document")
    if "request" not in doc:
        raise PolicyError("request", "is required")
    request = _load_request(doc["request"])
    resolved = resolve_request(request)  # the principal, action and resource account, checked now
    policies = PolicySet(
        resource_policy=_policy_or_none(doc, "resource_policy"),
        identity_policies=_policies(doc, "identity_policies"),
        permission_boundaries=_policies(doc, "permission_boundaries"),
        scps=_levels(doc, "scps"),
        rcps=_levels(doc, "rcps"),
        session_policy=_policy_or_none(doc, "session_policy"),
        grants=_grants(doc),
        unknown_layers=_unknown_layers(doc),
    )
    return resolved, policies


def decide(doc: dict[str, Any]) -> dict[str, Any]:
    """The keyfix.decision/1 JSON for one simulate document."""
    resolved, policies = _load(doc)
    return evaluate_resolved(resolved, policies).to_json()


def render_text(decision: Decision, request: Request) -> str:
    lines = [
        f"Request:  {request.principal} -> {request.action} on {request.resource}",
        f"Decision: {decision.decision}",
    ]
    if decision.undetermined:
        lines.append("Possible: " + ", ".join(decision.possible))
        lines.append("Unknown:  " + ", ".join(decision.undetermined_by))
    if decision.project_readings:
        lines.append("Readings: " + ", ".join(decision.project_readings) + " (never written on)")
    if decision.decisive:
        lines.append("Decisive:")
        lines += [f"  - {ref.describe()}" for ref in decision.decisive]
    if decision.missing:
        lines.append("Missing:  " + ", ".join(decision.missing))
    if decision.explanation:
        lines.append("Why:")
        lines += [f"  {sentence}" for sentence in decision.explanation]
    return "\n".join(lines) + "\n"


def run(path: str, fmt: str, stdout: IO[str], stderr: IO[str]) -> int:
    """Exit 0 whatever the decision; 2 for invalid input, the place named on stderr."""
    if fmt not in ("json", "text"):
        stderr.write(f"keyfix simulate: unknown format {fmt!r} (json or text)\n")
        return 2
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        stderr.write(f"keyfix simulate: cannot read {path}: {err}\n")
        return 2
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        stderr.write(f"keyfix simulate: {path}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}\n")
        return 2
    try:
        resolved, policies = _load(doc)
        decision = evaluate_resolved(resolved, policies)
        request = resolved.request
    except PolicyError as err:
        stderr.write(f"keyfix simulate: {path}: invalid input at {err.place}: {err.message}\n")
        return 2
    if fmt == "json":
        stdout.write(json.dumps(decision.to_json()) + "\n")
    else:
        stdout.write(render_text(decision, request))
    return 0
