"""The one error the policy model raises: a malformed input, with its place."""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy, grant or request that cannot be read without guessing.

    `place` names where the problem is, in the caller's terms
    ("resource_policy.Statement[2].Condition.StringEquals", "grants[0].Operations[1]",
    "request.principal"), so a person can find and fix it.
    """

    def __init__(self, place: str, message: str) -> None:
        super().__init__(f"{place}: {message}")
        self.place = place
        self.message = message
