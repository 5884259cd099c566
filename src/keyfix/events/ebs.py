"""EBS volume failures: "EBS Volume Notification" with result "failed".

https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html
createVolume fails with cause "<key-arn> is disabled." or "<key-arn> is pending
import."; attachVolume / reattachVolume with "<key-arn> is pending deletion.", and
then resources[] lists the key ARN after the volume ARN. request-id may be "".
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from keyfix.events._common import KEY_ARN_RE, Detail, Envelope, dedupe, key_arns_in
from keyfix.events.incident import Incident
from keyfix.report import Trigger


class EbsVolumeDetail(Detail):
    """Relied upon: event (the operation), result. cause is "" on success."""

    event: str = Field(min_length=1)  # createVolume | attachVolume | reattachVolume | ...
    result: str
    cause: str = ""
    request_id: str | None = Field(None, alias="request-id")


class EbsVolumeNotificationEvent(Envelope):
    source: Literal["aws.ec2"]
    detail_type: Literal["EBS Volume Notification"] = Field(alias="detail-type")
    detail: EbsVolumeDetail


# The cause phrases and the KMS KeyState each stands for
# (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html, KeyState).
_STATE_PHRASES = {
    "is disabled": "Disabled",
    "is pending deletion": "PendingDeletion",
    "is pending import": "PendingImport",
}
_CAUSE_RE = re.compile(r"(" + KEY_ARN_RE.pattern + r") (is disabled|is pending deletion|is pending import)\b")
_VOLUME_RE = re.compile(r"arn:aws[a-z-]*:ec2:[a-z0-9-]*:[^:\s]*:volume/(vol-[0-9a-zA-Z]+)")
_KMS_MENTION_RE = re.compile(r"\bKMS\b|:kms:", re.IGNORECASE)


def key_state_hint(cause: str) -> str | None:
    """The KeyState the cause states outright, if any (a hint for the resolver)."""
    m = _CAUSE_RE.search(cause)
    return _STATE_PHRASES[m.group(2)] if m else None


def to_incident(event: EbsVolumeNotificationEvent) -> Incident:
    d = event.detail
    cause = d.cause
    keys = key_arns_in([m.group(1) for m in _CAUSE_RE.finditer(cause)]) or key_arns_in(
        [m.group(0) for m in KEY_ARN_RE.finditer(cause)]
    )
    keys += key_arns_in(list(event.resources))
    volume_id = next((m.group(1) for r in event.resources if (m := _VOLUME_RE.fullmatch(r))), None)
    hint = key_state_hint(cause)
    return Incident(
        trigger=Trigger.EBS_VOLUME_FAILURE,
        **event.incident_fields(),
        volume_id=volume_id,
        ebs_operation=d.event,
        ebs_cause=cause or None,
        key_arns=dedupe(keys),
        key_state_hint=hint,
        # The cause names a key (or KMS): the failure involves KMS. Otherwise unknown.
        kms_related=True if (keys or hint or _KMS_MENTION_RE.search(cause)) else None,
    )
