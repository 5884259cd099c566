"""Irrelevant events decided with one AWS call: an ordinary EC2 stop (issue #14, P1b).

The EC2 state-change rule fires for every stop and termination in the account, and the
event carries only the instance id and its new state
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html).
Whether KMS stopped the instance is in its StateReason, which only DescribeInstances returns
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html: a key problem
shows as `Client.InternalError` or `Client.InvalidKMSKey.*`, keyfix.resolve.KMS_STATE_REASONS).
So the pipeline asks this module first: one DescribeInstances (memoised on the gateway, so the
full resolve reuses it) and, when the reason is not KMS's, the `not-kms` finding at once: no
idempotency record, finding record or notification, since nothing would be written or sent.
"""

from __future__ import annotations

from keyfix.events.incident import Incident
from keyfix.report import Cause, Finding, Trigger


def ordinary_stop(incident: Incident, gw) -> Finding | None:
    """The `not-kms` finding of an EC2 state change that is not about KMS, or None when the
    full path must decide (a KMS reason, or the instance could not be read)."""
    if incident.trigger != Trigger.EC2_LAUNCH_FAILURE or not incident.instance_id:
        return None
    from keyfix.resolve import KMS_STATE_REASONS, resolve

    if incident.kms_related is not False:
        from keyfix.resolve.ec2 import describe_instance

        instance = describe_instance(gw, incident.region, incident.instance_id, [])
        if instance is None:
            return None  # unreadable or gone: the full path says so in its report
        reason = instance.get("StateReason") or {}
        text = f"{reason.get('Code') or ''} {reason.get('Message') or ''}"
        if any(marker in text for marker in KMS_STATE_REASONS):
            return None
    # The same reading as the full path (resolve._ec2_launch_failure), on the memoised read.
    situation = resolve(incident, gw)
    if situation.not_kms_reason and not situation.keys and not situation.needs:
        return Finding(Cause.NOT_KMS, None, None, [], situation.not_kms_reason)
    return None
