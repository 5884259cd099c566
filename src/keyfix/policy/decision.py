"""The outcome of an evaluation, and its JSON form (contract: keyfix.decision/1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOWED = "Allowed"
IMPLICITLY_DENIED = "ImplicitlyDenied"
EXPLICITLY_DENIED = "ExplicitlyDenied"

# The layers `missing` draws from, in the order they are reported.
LAYERS = (
    "resource_policy",
    "identity_policy",
    "grant",
    "permission_boundary",
    "scp",
    "rcp",
    "session_policy",
)


@dataclass(frozen=True, slots=True)
class DecisiveRef:
    """A statement (policy, sid, statement index) or a grant (policy, grant_id)."""

    policy: str
    sid: str | None = None
    statement: int | None = None
    grant_id: str | None = None

    @property
    def is_grant(self) -> bool:
        return self.statement is None and self.policy.startswith("grants[")

    def to_json(self) -> dict[str, Any]:
        if self.is_grant:
            return {"policy": self.policy, "grant_id": self.grant_id}
        return {"policy": self.policy, "sid": self.sid, "statement": self.statement}

    def describe(self) -> str:
        if self.is_grant:
            return f"{self.policy} (grant {self.grant_id})" if self.grant_id else self.policy
        sid = f" {self.sid!r}" if self.sid else ""
        return f"{self.policy} statement {self.statement}{sid}"


@dataclass(frozen=True)
class Decision:
    """`decisive`: for ExplicitlyDenied the Deny statements; for Allowed the
    statements/grant that allow on the path taken; for ImplicitlyDenied the allows
    found on the nearest path. `missing`: for a denial, the layers that would each
    have to allow (see evaluate.py for how the nearest path is chosen)."""

    decision: str
    decisive: list[DecisiveRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "keyfix.decision/1",
            "decision": self.decision,
            "decisive": [ref.to_json() for ref in self.decisive],
            "missing": list(self.missing),
        }
