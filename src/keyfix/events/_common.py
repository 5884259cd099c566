"""What the per-trigger parser models share: the tolerant envelope and ARN helpers."""

from __future__ import annotations

import re

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from keyfix.events.wellformed import MAX_ARN_CHARS, MAX_NAME_CHARS

__all__ = ["MAX_ARN_CHARS", "MAX_NAME_CHARS", "Detail", "Envelope", "dedupe", "is_key_arn", "key_arns_in"]




class Envelope(EventBridgeModel):
    """EventBridge's envelope, as tolerant as AWS's own examples require.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    - `version`: the EC2 state-change example omits it
      (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html);
      EventBridge always sends "0".
    - `time`: kept as the string sent; the service documentation examples use the
      placeholder "yyyy-mm-ddThh:mm:ssZ", which must parse.
    - `resources`: always sent by EventBridge; defaulted so a hand-written event
      without it is not rejected for a field keyfix only reads opportunistically.
    Extra envelope fields (e.g. replay-name) are ignored.
    Lengths: the fields keyfix copies into every report are bounded (an event id is a UUID,
    an account 12 digits; the caps leave room for hand-written events, not for essays).
    The Region's shape is checked before the model (keyfix.events.wellformed).
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = Field(max_length=MAX_NAME_CHARS)
    account: str = Field(max_length=MAX_NAME_CHARS)
    source: str = Field(max_length=MAX_NAME_CHARS)
    detail_type: str = Field(alias="detail-type", max_length=MAX_NAME_CHARS)
    version: str = "0"
    time: str  # type: ignore[assignment]  # deliberately a string, see above
    resources: list[str] = Field(default_factory=list)

    def incident_fields(self) -> dict[str, str]:
        """The Incident fields every trigger takes from the envelope alone."""
        return {"event_id": self.id, "source": self.source, "detail_type": self.detail_type,
                "account": self.account, "region": self.region, "time": self.time}


class Detail(BaseModel):
    """Base for `detail` models: unknown fields are ignored, not rejected."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
# arn:partition:service:region:account-id:resource. KMS key ids are UUIDs or
# "mrk-<hex>" for multi-Region keys; the account is matched loosely because AWS's own
# EBS examples use "0123456789ab".
KEY_ARN_RE = re.compile(r"arn:aws[a-z-]{0,20}:kms:[a-z0-9-]{0,30}:[^:\s]{0,20}:key/[A-Za-z0-9-]{1,100}")


def is_key_arn(value: object) -> bool:
    return isinstance(value, str) and KEY_ARN_RE.fullmatch(value) is not None


def key_arns_in(values: list[str]) -> list[str]:
    """The KMS key ARNs among `values`, in order, without duplicates."""
    out: list[str] = []
    for v in values:
        if is_key_arn(v) and v not in out:
            out.append(v)
    return out


def dedupe(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return tuple(out)
