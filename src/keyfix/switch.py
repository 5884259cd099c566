"""On-call's runtime switch: force propose, or pause, without a deploy.

The SSM parameter named by KEYFIX_SWITCH_PARAMETER (template.yaml `RuntimeSwitch`) holds one
word:

    normal    keyfix runs as deployed (Mode decides whether it writes)
    propose   keyfix diagnoses and proposes, and writes nothing, whatever Mode says
    pause     keyfix handles no event: the report says paused and nothing is read or written
              (the EventBridge archive keeps the events for replay after resuming)

It is read through Powertools Parameters with a cache of SWITCH_CACHE_SECONDS, so a flip takes
effect within that time in every warm container, and a burst of events costs one read:
https://docs.powertools.aws.dev/lambda/python/latest/utilities/parameters/#adjusting-cache-ttl
An unset variable means `normal` and no read. A value keyfix cannot read (denied, throttled,
missing) or does not know is taken as `propose`: never write on a switch nobody can see, but
keep telling on-call. The state is in every report (`switch`) and every log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger("keyfix")

SWITCH_PARAMETER_ENV = "KEYFIX_SWITCH_PARAMETER"
SWITCH_CACHE_SECONDS = 30
STATES = ("normal", "propose", "pause")


@dataclass(frozen=True)
class Switch:
    state: str
    source: str  # the parameter's name, or "none"
    reason: str | None = None  # why the state is not what the parameter says

    @property
    def paused(self) -> bool:
        return self.state == "pause"

    def apply(self, settings):
        """The settings this run uses: propose forces propose mode, whatever was deployed."""
        return settings.with_mode("propose") if self.state == "propose" else settings

    def to_dict(self) -> dict[str, str | None]:
        return {"state": self.state, "source": self.source, "reason": self.reason}


NORMAL = Switch("normal", "none")


def current_switch(env: Mapping[str, str] | None = None, max_age: int = SWITCH_CACHE_SECONDS) -> Switch:
    env = os.environ if env is None else env
    name = (env.get(SWITCH_PARAMETER_ENV) or "").strip()
    if not name:
        return NORMAL
    from aws_lambda_powertools.utilities import parameters
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        raw = parameters.get_parameter(name, max_age=max_age)
    except (parameters.exceptions.GetParameterError, ClientError, BotoCoreError) as exc:
        log.warning("runtime switch %s unreadable, taken as propose: %s", name, exc)
        return Switch("propose", name, f"the switch could not be read ({type(exc).__name__}); taken as propose")
    value = raw.strip().lower() if isinstance(raw, str) else ""
    if value not in STATES:
        shown = repr(raw)[:60]
        log.warning("runtime switch %s holds %s, taken as propose", name, shown)
        return Switch("propose", name, f"the switch holds {shown}, not one of {', '.join(STATES)}; taken as propose")
    return Switch(value, name)
