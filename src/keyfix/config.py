"""Settings, read from the environment (the template's parameters set them).

Names and defaults are part of the public contract (docs/contract.md,
Configuration); command-line flags override them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from keyfix.report import Mode

OPT_IN_TAG = ("keyfix:auto-remediate", "true")


class ConfigError(ValueError):
    pass


def _patterns(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    mode: Mode = Mode.PROPOSE
    key_allowlist: tuple[str, ...] = ()
    principal_allowlist: tuple[str, ...] = ()
    sns_topic_arn: str | None = None
    table_name: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw_mode = env.get("KEYFIX_MODE", "").strip() or Mode.PROPOSE.value
        try:
            mode = Mode(raw_mode)
        except ValueError:
            raise ConfigError(f"KEYFIX_MODE must be 'propose' or 'apply', not {raw_mode!r}") from None
        return cls(
            mode=mode,
            key_allowlist=_patterns(env.get("KEYFIX_KEY_ALLOWLIST", "")),
            principal_allowlist=_patterns(env.get("KEYFIX_PRINCIPAL_ALLOWLIST", "")),
            sns_topic_arn=env.get("KEYFIX_SNS_TOPIC_ARN") or None,
            table_name=env.get("KEYFIX_TABLE_NAME") or None,
        )

    def with_mode(self, mode: str | Mode | None) -> Settings:
        return self if mode is None else replace(self, mode=Mode(mode))

    def key_allowed(self, key_arn: str) -> bool:
        # `*` is the only wildcard the contract names; fnmatchcase also takes `?` and
        # `[...]`, so those are escaped to keep patterns literal.
        return any(_arn_match(p, key_arn) for p in self.key_allowlist)

    def principal_allowed(self, arn: str) -> bool:
        return self.matching_principal_pattern(arn) is not None

    def matching_principal_pattern(self, arn: str) -> str | None:
        return next((p for p in self.principal_allowlist if _arn_match(p, arn)), None)


def _arn_match(pattern: str, value: str) -> bool:
    literal = pattern.replace("[", "[[]").replace("?", "[?]")
    return fnmatch.fnmatchcase(value, literal)
