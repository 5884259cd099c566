"""EC2 instances that stop or terminate: "EC2 Instance State-change Notification".

https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html
The event carries only instance-id and state. Why the instance stopped (StateReason,
e.g. "Client.InternalError: Client error on launch") is not in it; the resolver reads
it with DescribeInstances. So the event alone cannot say whether KMS is involved.
The documentation's example omits the top-level "version" (the envelope defaults it).

This rule fires for every stop in the account, so its model is declared without pydantic
(keyfix.events.plain, issue #14 P1b). The fields and bounds are the shared envelope's
(keyfix.events._common.Envelope, which extends Powertools' EventBridgeModel) and this detail's;
tests/unit/events/test_plain_model.py checks the two agree.
"""

from __future__ import annotations

from typing import Any

from keyfix.events.incident import Incident
from keyfix.events.plain import Const, Field, Model, OptionalStr, Str, StrList
from keyfix.events.wellformed import MAX_NAME_CHARS
from keyfix.report import Trigger

_DETAIL = Model("Ec2StateChangeDetail", (
    Field("instance_id", Str(min_length=1, max_length=MAX_NAME_CHARS), alias="instance-id"),
    # pending | running | shutting-down | stopping | stopped | terminated
    Field("state", Str(min_length=1)),
))

# Envelope's fields in EventBridgeModel's order (the order errors are reported in).
Ec2StateChangeEvent = Model("Ec2StateChangeEvent", (
    Field("version", Str(), default="0"),
    Field("id", Str(max_length=MAX_NAME_CHARS)),
    Field("source", Const("aws.ec2")),
    Field("account", Str(max_length=MAX_NAME_CHARS)),
    Field("time", Str()),  # kept as the string sent (keyfix.events._common.Envelope)
    Field("region", Str()),
    Field("resources", StrList(), default=list),
    Field("detail_type", Const("EC2 Instance State-change Notification"), alias="detail-type"),
    Field("detail", _DETAIL),
    Field("replay_name", OptionalStr(), alias="replay-name", default=None),
))


def to_incident(event: dict[str, Any]) -> Incident:
    return Incident(
        trigger=Trigger.EC2_LAUNCH_FAILURE,
        event_id=event["id"],
        source=event["source"],
        detail_type=event["detail_type"],
        account=event["account"],
        region=event["region"],
        time=event["time"],
        instance_id=event["detail"]["instance_id"],
        instance_state=event["detail"]["state"],
        kms_related=None,
    )
