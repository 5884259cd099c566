"""Irrelevant events decided with one AWS call: an ordinary EC2 stop (issue #14, P1b).

The EC2 state-change rule fires for every stop and termination in the account, and the
event carries only the instance id and its new state
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html).
Whether KMS stopped the instance is in its StateReason, which only DescribeInstances returns
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html: a key problem
shows as `Client.InternalError` or `Client.InvalidKMSKey.*`, keyfix.resolve.state_reasons).
So the pipeline asks this module first, before it imports the diagnosis or builds the store,
and, when the reason is not KMS's, gets the `not-kms` finding at once: no idempotency record,
finding record or notification, since nothing would be written or sent.

In the Lambda runtime the read is one signed Query request (keyfix.ec2_query): building
boto3's EC2 client alone costs about twice `import boto3` of CPU on a cold start. Anywhere
else, or on any doubt the quick read raises before or after sending, it is the gateway's
memoised DescribeInstances (then a KMS-related stop reuses it on the full path). A stop the
quick read finds KMS-related is read again by the full path through the gateway: the quick
read returns the StateReason only, not the volumes the diagnosis needs.
"""

from __future__ import annotations

import logging
import os

from keyfix.events.incident import Incident
from keyfix.report import Cause, Finding, Trigger
from keyfix.resolve.state_reasons import is_kms_state_reason

log = logging.getLogger(__name__)


def ordinary_stop(incident: Incident, gw) -> Finding | None:
    """The `not-kms` finding of an EC2 state change that is not about KMS, or None when the
    full path must decide (a KMS reason, or the instance could not be read)."""
    if incident.trigger != Trigger.EC2_LAUNCH_FAILURE or not incident.instance_id:
        return None
    if incident.kms_related is False:
        return Finding(Cause.NOT_KMS, None, None, [], "the instance failure is not about KMS")
    reason = _quick_reason(incident, gw) if _in_lambda() else None
    if reason is None:
        reason = _gateway_reason(incident, gw)
        if reason is None:
            return None  # unreadable or gone: the full path says so in its report
    code, message = reason["code"], reason["message"]
    if is_kms_state_reason(code, message):
        return None
    # The same words as the full path (keyfix.resolve.dispatch._ec2_launch_failure).
    text = message or code or f"instance {incident.instance_id} ({reason['state']}) gives no state reason"
    return Finding(Cause.NOT_KMS, None, None, [], text)


def _in_lambda() -> bool:
    # The runtime sets both (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html);
    # the CLI keeps boto3, which honours its --endpoint-url and --profile flags.
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("LAMBDA_TASK_ROOT"))


def _quick_reason(incident: Incident, gw) -> dict[str, str] | None:
    from keyfix.ec2_query import Doubt, state_reason

    region = incident.region or os.environ.get("AWS_REGION") or ""
    tracer = getattr(gw, "tracer", None)
    try:
        if tracer is not None:  # the same subsegment as the gateway's calls
            with tracer.provider.in_subsegment(name="## ec2.DescribeInstances"):
                reason = state_reason(region, incident.instance_id)
        else:
            reason = state_reason(region, incident.instance_id)
    except Doubt as doubt:
        log.info("quick DescribeInstances not used: %s", doubt)
        return None
    gw.calls.append(("ec2", "DescribeInstances"))  # keyfix's own count of what a decision cost
    return reason


def _gateway_reason(incident: Incident, gw) -> dict[str, str] | None:
    from keyfix.resolve.ec2 import describe_instance

    instance = describe_instance(gw, incident.region, incident.instance_id, [])
    if instance is None:
        return None
    reason = instance.get("StateReason") or {}
    return {"state": str((instance.get("State") or {}).get("Name")), "code": str(reason.get("Code") or ""),
            "message": str(reason.get("Message") or "")}
