"""Organisation settings, read from the environment (org/member-additions.yaml sets them).

Kept apart from keyfix.config: a keyfix stack deployed alone never reads them, and every
value is validated here, so a typo in a StackSet parameter is a clear error, not a guess.

| variable | meaning | default |
|---|---|---|
| `KEYFIX_CENTRAL_BUS_ARN` | the security account's central bus; each report is put there | none: reports stay here |
| `KEYFIX_KEY_OWNER_BUS_ARNS` | comma-separated buses of key owners; a proposal for a key of account A goes to A's bus in this list | none: no proposal leaves |
| `KEYFIX_ORG_BUS_NAME` | this account's own organisation bus (proposals in, outcomes in); the owner replies to the sender's bus of this name | `keyfix-org` |
| `KEYFIX_PROPOSAL_ACCOUNTS` | owner side: comma-separated 12-digit accounts whose proposals may be applied | none: every proposal goes to on-call |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyfix.arns import parse_arn

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
# Event bus names: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateEventBus.html
_BUS_NAME = re.compile(r"[\w.\-/]{1,256}", re.ASCII)
DEFAULT_BUS_NAME = "keyfix-org"


class OrgConfigError(ValueError):
    """A setting that is not what its name says; the message names the variable."""


def bus_arn_parts(value: str) -> tuple[str, str, str, str]:
    """(partition, region, account, name) of `arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME`;
    raises OrgConfigError for anything else (a rule ARN, an API destination, a bus name)."""
    parsed = parse_arn(value)
    if parsed is None or parsed.service != "events" or not parsed.region or not _ACCOUNT.fullmatch(parsed.account) \
            or parsed.resource_type != "event-bus" or not _BUS_NAME.fullmatch(parsed.resource_id):
        raise OrgConfigError(f"{value!r} is not an event bus ARN (arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME)")
    return parsed.partition, parsed.region, parsed.account, parsed.resource_id


def bus_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/{name}"


@dataclass(frozen=True)
class OrgSettings:
    central_bus_arn: str | None = None
    key_owner_buses: tuple[str, ...] = ()
    bus_name: str = DEFAULT_BUS_NAME
    proposal_accounts: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrgSettings:
        env = os.environ if env is None else env
        central = (env.get("KEYFIX_CENTRAL_BUS_ARN") or "").strip() or None
        if central is not None:
            _checked("KEYFIX_CENTRAL_BUS_ARN", central)
        owners = tuple(p.strip() for p in (env.get("KEYFIX_KEY_OWNER_BUS_ARNS") or "").split(",") if p.strip())
        for owner in owners:
            _checked("KEYFIX_KEY_OWNER_BUS_ARNS", owner)
        if len({bus_arn_parts(o)[2] for o in owners}) != len(owners):
            raise OrgConfigError("KEYFIX_KEY_OWNER_BUS_ARNS names two buses of one account; give one per key owner")
        name = (env.get("KEYFIX_ORG_BUS_NAME") or "").strip() or DEFAULT_BUS_NAME
        if not _BUS_NAME.fullmatch(name) or name == "default":
            raise OrgConfigError(f"KEYFIX_ORG_BUS_NAME {name!r} is not a custom event bus name")
        accounts = [a.strip() for a in (env.get("KEYFIX_PROPOSAL_ACCOUNTS") or "").split(",") if a.strip()]
        bad = [a for a in accounts if not _ACCOUNT.fullmatch(a)]
        if bad:
            raise OrgConfigError(f"KEYFIX_PROPOSAL_ACCOUNTS must list 12-digit account ids, not {bad}")
        return cls(central, owners, name, frozenset(accounts))

    @property
    def enabled(self) -> bool:
        return bool(self.central_bus_arn or self.key_owner_buses or self.proposal_accounts)

    def owner_bus_for(self, account: str | None) -> str | None:
        """The configured bus of the key owner `account`, if any."""
        return next((b for b in self.key_owner_buses if bus_arn_parts(b)[2] == account), None)


def _checked(variable: str, value: str) -> None:
    try:
        bus_arn_parts(value)
    except OrgConfigError as exc:
        raise OrgConfigError(f"{variable}: {exc}") from None
