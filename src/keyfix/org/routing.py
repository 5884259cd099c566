"""Incoming organisation events, routed before the pipeline (which knows only aws.* events)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from keyfix.org.messages import OUTCOME, PROPOSAL, is_org_event  # noqa: F401 - is_org_event: the handler's test

log = logging.getLogger("keyfix")


def handle_org_event(raw: dict, settings, gw, *, applied_by: str = "keyfix",
                     time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """A proposal (this account owns the key) or an outcome (this account proposed)."""
    from keyfix.org.settings import OrgConfigError, OrgSettings

    try:
        org = OrgSettings.from_env()
    except OrgConfigError as exc:
        log.error("organisation settings: %s", exc)
        return {"schema": "keyfix.error/1", "error": str(exc)}
    switch_paused = _paused()
    if switch_paused:
        return {"schema": "keyfix.org-proposal/1", "status": "ignored", "reason": "paused by the runtime switch"}
    if raw.get("detail-type") == OUTCOME:
        from keyfix.org.member_side import handle_outcome

        return handle_outcome(raw, settings, gw)
    from keyfix.org.owner_side import handle_proposal
    from keyfix.store import store_from_settings
    from keyfix.switch import current_switch

    settings = current_switch().apply(settings)
    try:
        store = store_from_settings(settings, gw.client)
        return handle_proposal(raw, settings, org, gw, store, applied_by=applied_by, time_left=time_left).to_dict()
    except Exception as exc:  # noqa: BLE001 - a bug: reported and logged, never a retry storm of writes
        log.exception("internal error deciding organisation event %s", raw.get("id"))
        return {"schema": "keyfix.org-proposal/1", "status": "failed", "reason": f"keyfix internal error: {exc}"}


def _paused() -> bool:
    from keyfix.switch import current_switch

    return bool(current_switch().paused)
