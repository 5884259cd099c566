"""Timestamps as keyfix writes them everywhere (reports, table items, Security Hub):
ISO 8601 in UTC with a "Z", e.g. 2026-12-01T08:20:58Z. ASFF requires this form for its
date fields (https://docs.aws.amazon.com/securityhub/latest/userguide/asff-top-level-attributes.html#asff-createdat);
the table and reports use it so that text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_ms(epoch: float) -> str:
    """With milliseconds: for records that often fall in the same second (findings, repairs)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
