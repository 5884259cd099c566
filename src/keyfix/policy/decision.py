"""The outcome of an evaluation, and its JSON form (contract: keyfix.decision/1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOWED = "Allowed"
IMPLICITLY_DENIED = "ImplicitlyDenied"
EXPLICITLY_DENIED = "ExplicitlyDenied"
# The decision depends on something keyfix does not know (unknowns.py); `possible` lists
# the decisions it could be, `undetermined_by` what it depends on. The three values above
# keep their meaning: nothing unknown, never Undetermined.
UNDETERMINED = "Undetermined"

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
        if self.statement is None:
            return f"{self.policy} (not read, unknown)"  # an unknown layer (layers._unknown_layer)
        sid = f" {self.sid!r}" if self.sid else ""
        return f"{self.policy} statement {self.statement}{sid}"


@dataclass(frozen=True)
class Decision:
    """`decisive`: for ExplicitlyDenied the Deny statements; for Allowed the
    statements/grant that allow on the path taken; for ImplicitlyDenied the allows
    found on the nearest path; for Undetermined the statements whose unknown match could
    decide. `missing`: for a denial, the layers that would each have to allow (see
    evaluate.py for how the nearest path is chosen); for Undetermined, those that would
    if every unknown went against the request.

    `possible` (Undetermined only): the decisions the unknowns leave open.
    `undetermined_by` (Undetermined only): the unknown keys, layers or readings whose
    value could change the outcome, and only those.
    `project_readings`: the decision rests on a reading AWS's pages do not decide
    (unknowns.READINGS): good for an explanation, never a reason to write."""

    decision: str
    decisive: list[DecisiveRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    possible: tuple[str, ...] = ()
    undetermined_by: tuple[str, ...] = ()
    project_readings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED

    @property
    def undetermined(self) -> bool:
        return self.decision == UNDETERMINED

    @property
    def possible_decisions(self) -> tuple[str, ...]:
        return self.possible if self.decision == UNDETERMINED else (self.decision,)

    @property
    def decided_for_writing(self) -> bool:
        """Nothing unknown and no project reading decides it: a fix may rest on it."""
        return self.decision != UNDETERMINED and not self.project_readings

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": "keyfix.decision/1",
            "decision": self.decision,
            "decisive": [ref.to_json() for ref in self.decisive],
            "missing": list(self.missing),
        }
        # Additive fields, present only when they say something (contract: never renamed).
        if self.decision == UNDETERMINED:
            out["possible"] = list(self.possible)
            out["undetermined_by"] = list(self.undetermined_by)
        if self.project_readings:
            out["project_readings"] = list(self.project_readings)
        return out
