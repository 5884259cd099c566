"""The policies in force for one request, by layer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from keyfix.policy.errors import PolicyError
from keyfix.policy.grant import Grant
from keyfix.policy.policy import Policy
from keyfix.policy.unknowns import UNKNOWN_LAYERS


@dataclass(frozen=True)
class PolicySet:
    """Everything that can allow or deny a request.

    - `resource_policy`: the key policy (None: none known, which allows nothing).
    - `identity_policies`: the caller's identity-based policies (inline, managed, group).
    - `permission_boundaries`: every listed boundary must allow.
    - `scps` / `rcps`: one tuple of policies per organisation level, root first;
      every level must allow; None: not in an organisation / not in force.
    - `session_policy`: the policy passed when the session was created.
    - `grants`: the key's grants (ListGrants entries via Grant.from_aws).
    - `unknown_layers`: layers keyfix could not read ("permission_boundaries", "scps",
      "rcps", "session_policy"): unknown, not absent; they may allow and may deny
      (unknowns.py). A layer cannot be both given and unknown.
    """

    resource_policy: Policy | None
    identity_policies: tuple[Policy, ...] = ()
    permission_boundaries: tuple[Policy, ...] = ()
    scps: tuple[tuple[Policy, ...], ...] | None = None
    rcps: tuple[tuple[Policy, ...], ...] | None = None
    session_policy: Policy | None = None
    grants: tuple[Grant, ...] = field(default=())
    unknown_layers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Accept lists, store tuples; give grants their refs; check what each policy
        # type may say about principals (Policy.check_kind raises PolicyError). Built once
        # per decision: what is already in its stored form is not copied again.
        set_ = object.__setattr__
        if type(self.identity_policies) is not tuple:
            set_(self, "identity_policies", tuple(self.identity_policies))
        if type(self.permission_boundaries) is not tuple:
            set_(self, "permission_boundaries", tuple(self.permission_boundaries))
        if self.scps is not None:
            set_(self, "scps", tuple(tuple(level) for level in self.scps))
        if self.rcps is not None:
            set_(self, "rcps", tuple(tuple(level) for level in self.rcps))
        if self.grants:
            set_(
                self,
                "grants",
                tuple(g if g.ref else replace(g, ref=f"grants[{i}]") for i, g in enumerate(self.grants)),
            )
        elif type(self.grants) is not tuple:
            set_(self, "grants", ())
        if type(self.unknown_layers) is not frozenset:
            set_(self, "unknown_layers", frozenset(self.unknown_layers))
        for layer in self.unknown_layers:
            if layer not in UNKNOWN_LAYERS:
                raise PolicyError("unknown_policies", f"{layer!r} is not one of {', '.join(UNKNOWN_LAYERS)}")
            given = {
                "permission_boundaries": self.permission_boundaries,
                "scps": self.scps,
                "rcps": self.rcps,
                "session_policy": self.session_policy,
            }[layer]
            if given:
                raise PolicyError("unknown_policies", f"{layer} is given, so it cannot also be unknown")
        if self.resource_policy is not None:
            self.resource_policy.check_kind("resource")
        for policy in self.identity_policies:
            policy.check_kind("identity")
        for policy in self.permission_boundaries:
            policy.check_kind("permissions boundary")
        if self.session_policy is not None:
            self.session_policy.check_kind("session")
        for level in self.scps or ():
            for policy in level:
                policy.check_kind("scp")
        for level in self.rcps or ():
            for policy in level:
                policy.check_kind("rcp")
