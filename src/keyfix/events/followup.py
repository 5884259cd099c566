"""The follow-up message keyfix sends itself (`keyfix.followup/1`), and the SQS batch it
arrives in.

keyfix schedules a re-check by sending this message to its follow-up queue with a delay
(keyfix.followup.schedule); Lambda's SQS event source mapping delivers it back as a batch of
records (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html). The queue's policy
leaves it writable only by keyfix's role (template.yaml), and the message is validated anyway:
its shape here, then its token, attempt and original event against the chain keyfix recorded
in its table (keyfix.followup.state.claim_attempt). A message that fails either changes
nothing and yields a report.

Cold start: this module is imported only when an SQS batch arrives.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import SqsModel
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA = "keyfix.followup/1"
# Attempts at +2, +5 and +10 minutes (keyfix.followup.schedule.DELAYS_SECONDS).
MAX_ATTEMPTS = 3
MAX_CHANGE_IDS = 20
_HEX64 = r"^[0-9a-f]{64}$"
_HEX32 = r"^[0-9a-f]{32}$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class FollowUpMessage(BaseModel):
    """The body of one follow-up message. Strict: unknown fields and wrong types are errors
    (keyfix wrote it; anything else is not keyfix's)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_: Literal["keyfix.followup/1"] = Field(alias="schema")
    chain: str = Field(pattern=_HEX64)  # sha256 of the incident key (keyfix.followup.state.chain_id)
    token: str = Field(pattern=_HEX32)  # the chain's secret, compared with the table's
    attempt: int = Field(ge=1, le=MAX_ATTEMPTS)
    reason: Literal["applied", "unverified", "evidence"]
    first_failure_at: str = Field(max_length=40)
    change_ids: list[str] = Field(default_factory=list, max_length=MAX_CHANGE_IDS)
    group: str | None = Field(None, min_length=1, max_length=255)
    incident_key: dict[str, Any]
    original_event: dict[str, Any]

    @field_validator("first_failure_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        from keyfix.followup.state import epoch_of

        if epoch_of(value) is None:
            raise ValueError("is not an ISO-8601 time")
        return value

    @field_validator("change_ids")
    @classmethod
    def _uuids(cls, values: list[str]) -> list[str]:
        import re

        bad = [v for v in values if not re.fullmatch(_UUID, v)]
        if bad:
            raise ValueError("change ids are keyfix's uuid4s")
        return values


def parse_batch(raw: dict[str, Any]) -> SqsModel:
    """Raises pydantic.ValidationError for a batch Lambda would not send."""
    return SqsModel.model_validate(raw)
