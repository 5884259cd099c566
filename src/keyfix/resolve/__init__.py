"""Resolve: read AWS to learn what the event does not say.

    resolve(incident, gw) -> Situation    keyfix.resolve.dispatch: one reader per trigger
    AwsGateway                            keyfix.resolve.gateway: the one AWS seam
    CONTAINER                             keyfix.resolve.clients: the warm container's clients
    KeyFacts, PrincipalFacts, Situation   keyfix.resolve.facts: what the readers learned
    read_key, read_principal              keyfix.resolve.kms / .iam

Cold start: importing any submodule imports this package first, so it imports nothing of
its own. The handler takes the gateway and the client pool without loading every reader
(issue #14, P1b: the readers cost about 25 ms CPU of an ordinary EC2 stop's first
invocation); the names above are loaded on first use (PEP 562 module __getattr__). No
module here imports boto3/botocore at module level: the gateway imports them when it
creates its first client.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it
_EXPORTS = {
    "resolve": "dispatch",
    "AccessNeed": "facts",
    "KeyFacts": "facts",
    "PrincipalFacts": "facts",
    "Situation": "facts",
    "AwsError": "gateway",
    "AwsGateway": "gateway",
    "read_key": "kms",
    "read_principal": "iam",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
