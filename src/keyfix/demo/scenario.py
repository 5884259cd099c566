"""What every demo scenario provides, and what one attempt at the failing operation yields.

A scenario builds a broken account (from the seed builders in keyfix.sim.scenarios),
then performs the operation that fails there as AWS would: it asks the authorisation model
(keyfix.demo.authorize) about each KMS request the operation makes and, when one is
refused, records the failure where AWS records it and returns the EventBridge event the
failure emits. The same `attempt` is the retry after keyfix has acted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from keyfix.demo.authorize import Authorizer, KmsCall, Verdict
from keyfix.sim.scenarios import ASG_ACCOUNT, Env


@dataclass
class Attempt:
    operation: str  # what was tried, by whom
    verdicts: list[Verdict]  # the KMS requests made, in order, up to the first refused
    succeeded: bool
    outcome: str  # what the person who tried sees
    event: dict[str, Any] | None = None  # what the failure emitted (None on success)
    records: list[str] = field(default_factory=list)  # where AWS recorded the failure

    @property
    def refused(self) -> Verdict | None:
        return next((v for v in self.verdicts if not v.allowed), None)


@dataclass(frozen=True)
class ExpectedFix:
    kind: str
    status: str
    target_account: str = ASG_ACCOUNT


@dataclass(frozen=True)
class Expected:
    """How the scenario should end in a mode: keyfix's cause, the fixes with their status,
    and whether the retry succeeds."""

    cause: str
    fixes: tuple[ExpectedFix, ...]
    retry_succeeds: bool
    why: str = ""  # said when the ending is not a repair
    notifies: bool = True  # keyfix stays quiet about failures that are not about KMS


class Scenario(ABC):
    name: str
    title: str
    seed: str  # the seed case (docs/seed-cases.md) it plays

    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}  # scenario-specific facts for the JSON output
        self.notes: list[str] = []  # scenario-specific lines for the text output

    @abstractmethod
    def build(self, env: Env) -> list[str]:
        """Build the broken account; returns what is broken, one line each."""

    @abstractmethod
    def attempt(self, env: Env, authorizer: Authorizer) -> Attempt:
        """Try the operation once, as AWS would."""

    @abstractmethod
    def expected(self, mode: str) -> Expected:
        """The ending the scenario is built to show in `mode` (apply | propose)."""

    def original_request(self, first: Attempt) -> KmsCall | None:
        """The request whose decision the demo shows before and after keyfix."""
        refused = first.refused
        return refused.call if refused else (first.verdicts[0].call if first.verdicts else None)


def tag_for_keyfix(env: Env, key_arn: str, account: str = ASG_ACCOUNT) -> None:
    """Opt the key in to `apply` (contract: keyfix:auto-remediate = true)."""
    from keyfix.config import OPT_IN_TAG

    env.client("kms", account).tag_resource(KeyId=key_arn, Tags=[{"TagKey": OPT_IN_TAG[0],
                                                                   "TagValue": OPT_IN_TAG[1]}])


def role_id(env: Env, role_name: str, account: str = ASG_ACCOUNT) -> str:
    return env.client("iam", account).get_role(RoleName=role_name)["Role"]["RoleId"]
