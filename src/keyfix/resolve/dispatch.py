"""The resolver's dispatcher: one reader per trigger, under the per-event bounds.

`resolve(incident, gw) -> Situation` reads only what the diagnosis of that trigger needs,
through an `AwsGateway` (which counts the calls), and never raises for AWS errors: what
could not be read becomes a note or an `unreadable` reason. The package (keyfix.resolve)
re-exports it; importing this module imports every reader, so the cold paths that need only
the gateway never do (keyfix/resolve/__init__.py).
"""

from __future__ import annotations

from collections.abc import Callable

from keyfix.arns import ASG_SLR_NAME, parse_arn, partition_of
from keyfix.events.incident import Incident
from keyfix.report import Trigger
from keyfix.resolve.autoscaling import describe_group, launch_configuration, launch_sources, service_linked_role
from keyfix.resolve.cloudtrail import find_launcher
from keyfix.resolve.context import resolve_context
from keyfix.resolve.denial import kms_access_denied
from keyfix.resolve.ec2 import (
    describe_images,
    describe_instance,
    describe_volumes,
    launch_template_data,
    plan_launch_keys,
)
from keyfix.resolve.facts import Situation
from keyfix.resolve.gateway import AwsError, AwsGateway
from keyfix.resolve.gather import add_keys, add_principal, bounded
from keyfix.resolve.limits import MAX_AWS_CALLS_PER_EVENT
from keyfix.resolve.needs import launch_needs, start_needs
from keyfix.resolve.state_reasons import is_kms_state_reason

__all__ = ["asg_launch_needs", "resolve"]



def resolve(incident: Incident, gw: AwsGateway, *, group: dict | None = None) -> Situation:
    """`group`: the DescribeAutoScalingGroups entry of `incident.group_name`, when the caller
    has it already (keyfix.predict pages through every group): not described again."""
    # "This account" is the one keyfix runs in (STS GetCallerIdentity), never what the event
    # claims: an event relayed from another account's bus, or a direct invoke, could name any
    # account, and every "same account" rule (the SLR of this account, key ownership, where
    # fixes may be written) rests on it.
    if gw.account is None:
        gw.home_account()
    confirmed = gw.account is not None
    if not confirmed:
        gw.account = incident.account
    if gw.region is None:
        gw.region = incident.region
    situation = Situation(incident=incident, account_confirmed=confirmed)
    if not confirmed:
        situation.notes.append("keyfix could not confirm which account it runs in (sts:GetCallerIdentity "
                               f"failed); it reads as account {incident.account}, as the event says, but "
                               "writes nothing")
    if incident.account and incident.account != gw.account:
        situation.notes.append(f"the event comes from account {incident.account}, but keyfix runs in account "
                               f"{gw.account} and looks only at its own account's failures")
        return situation
    handler = _HANDLERS.get(incident.trigger)
    if group is not None:
        def handler(i: Incident, g: AwsGateway, sit: Situation) -> None:
            asg_launch_needs(i, g, sit, group)
    if handler is None:
        return situation
    refused_before = len(gw.refused)
    # Bounded work per event (keyfix.resolve.limits); the remedies and the notification
    # that follow are not counted against it.
    with gw.budget(MAX_AWS_CALLS_PER_EVENT):
        try:
            handler(incident, gw, situation)
        except AwsError as err:  # readers catch their own; this is the last line
            situation.notes.append(err.reason())
        # What the needs' conditions read that keyfix can know, and what it cannot (unknown,
        # not denied): after the handler, so that every need gets it.
        resolve_context(gw, situation)
    _note_refused_calls(gw.refused[refused_before:], situation)
    return situation


def _note_refused_calls(refused: list[tuple[str, str]], s: Situation) -> None:
    if not refused:
        return
    operations = ", ".join(f"{service}:{op}" for service, op in dict.fromkeys(refused))
    s.unchecked.append(f"keyfix stopped reading AWS after {MAX_AWS_CALLS_PER_EVENT} calls, its limit per event; "
                       f"{len(refused)} read(s) were not made ({bounded(operations)}), so what they would have "
                       "shown was not checked")


# -- asg-launch-failure ---------------------------------------------------------------


def _asg_launch_failure(incident: Incident, gw: AwsGateway, s: Situation) -> None:
    if incident.kms_related is False:
        s.not_kms_reason = incident.status_message or incident.status_code or "the launch failure is not about KMS"
        return
    if not incident.group_name:
        s.notes.append("the event names no Auto Scaling group")
        return
    group = describe_group(gw, incident.region, incident.group_name, s.notes)
    if group is not None:
        asg_launch_needs(incident, gw, s, group)


def asg_launch_needs(incident: Incident, gw: AwsGateway, s: Situation, group: dict) -> None:
    """Every key a launch of `group` would use, and what its service-linked role needs of
    each: shared by launch failures, the sweep, `keyfix scan` and key-change checks."""
    if incident.kms_related is False:
        s.not_kms_reason = incident.status_message or incident.status_code or "the launch failure is not about KMS"
        return
    region, account = incident.region, incident.account
    group_arn = group.get("AutoScalingGroupARN")

    launches: list[tuple[str | None, list[dict]]] = []
    spot_launch_configuration = False
    sources = launch_sources(group)
    if not sources:
        s.notes.append(f"Auto Scaling group {incident.group_name} has no launch template or configuration")
    for source in sources:
        if source.template is not None:
            data = launch_template_data(gw, region, source.template, s.notes)
            if data is not None:
                launches.append((data.get("ImageId"), data.get("BlockDeviceMappings") or []))
        else:
            config = launch_configuration(gw, region, source.configuration or "", s.notes)
            if config is not None:
                spot_launch_configuration |= bool(config.get("SpotPrice"))
                launches.append((config.get("ImageId"), config.get("BlockDeviceMappings") or []))
    if not launches:
        return

    images = describe_images(gw, region, [image for image, _ in launches if image], s.notes)
    key_refs: list[str] = []
    for image_id, mappings in launches:
        for volume in plan_launch_keys(gw, region, account, images.get(image_id or ""), mappings, s.notes):
            key_refs.extend(k for k in (volume.key, volume.source_key) if k)
    key_refs = list(dict.fromkeys(key_refs))
    if not key_refs:
        _no_encrypted_volume(incident, s, f"no volume launched by {incident.group_name} is encrypted with a KMS key")
        return

    keys = add_keys(gw, s, key_refs, region)
    slr = service_linked_role(group, account, region, spot_launch_configuration)
    principal = add_principal(gw, s, slr)
    if principal is None:
        return
    s.principals[slr] = principal
    for key in keys:
        # The same operations apply to a key in another account: there the service-linked
        # role uses a grant instead of the key policy.
        s.needs.extend(launch_needs(slr, account, key.arn, region, group_arn))


# -- ebs-volume-failure -------------------------------------------------------------------


def _ebs_volume_failure(incident: Incident, gw: AwsGateway, s: Situation) -> None:
    if incident.kms_related is False:
        s.not_kms_reason = incident.ebs_cause or "the volume failure is not about KMS"
        return
    region = incident.region
    refs = list(incident.key_arns)
    if not refs and incident.volume_id:
        volume = describe_volumes(gw, region, [incident.volume_id], s.notes).get(incident.volume_id)
        if volume is not None:
            if volume.get("KmsKeyId"):
                refs.append(volume["KmsKeyId"])
            elif not volume.get("Encrypted"):
                _no_encrypted_volume(incident, s, f"volume {incident.volume_id} is not encrypted")
                return
    if not refs:
        s.notes.append("the KMS key of the failed volume operation is unknown")
        return
    add_keys(gw, s, refs, region)
    # Who made the volume call is not in the event: no AccessNeed, the keys' state decides.


# -- ec2-launch-failure --------------------------------------------------------------------


def _ec2_launch_failure(incident: Incident, gw: AwsGateway, s: Situation) -> None:
    if incident.kms_related is False:
        s.not_kms_reason = "the instance failure is not about KMS"
        return
    if not incident.instance_id:
        s.notes.append("the event names no instance")
        return
    region, account, instance_id = incident.region, incident.account, incident.instance_id
    instance = describe_instance(gw, region, instance_id, s.notes)
    if instance is None:
        return
    reason = instance.get("StateReason") or {}
    code, message = str(reason.get("Code") or ""), str(reason.get("Message") or "")
    if not is_kms_state_reason(code, message):
        state = (instance.get("State") or {}).get("Name")
        s.not_kms_reason = message or code or f"instance {instance_id} ({state}) gives no state reason"
        return

    volume_ids = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("VolumeId")]
    volumes = describe_volumes(gw, region, volume_ids, s.notes)
    key_refs = [v["KmsKeyId"] for v in volumes.values() if v.get("Encrypted") and v.get("KmsKeyId")]
    if not volumes and instance.get("ImageId"):
        # The volumes are gone (terminated on launch): infer the keys from the AMI; the
        # launch's own block device overrides are not known any more.
        s.notes.append(f"the volumes of {instance_id} no longer exist; keys inferred from its AMI")
        image_id = instance["ImageId"]
        image = describe_images(gw, region, [image_id], s.notes).get(image_id)
        for volume in plan_launch_keys(gw, region, account, image, [], s.notes):
            key_refs.extend(k for k in (volume.key, volume.source_key) if k)
    key_refs = list(dict.fromkeys(key_refs))
    if not key_refs:
        _no_encrypted_volume(incident, s, f"{code}: but no volume of {instance_id} is encrypted with a KMS key")
        return
    keys = add_keys(gw, s, key_refs, region)

    launcher = find_launcher(gw, region, instance_id, s.notes)
    if launcher is None:
        return  # the keys are recorded; who needs them is unknown
    principal = add_principal(gw, s, launcher.principal)
    if principal is None:
        return
    principal_account = launcher.account or (parse_arn(principal.arn).account if parse_arn(principal.arn) else None)
    resource = f"arn:{partition_of(region)}:ec2:{region}:{account}:instance/{instance_id}"
    is_asg_role = principal.kind == "service-linked-role" and ASG_SLR_NAME in principal.arn
    for key in keys:
        if launcher.event_name == "RunInstances" or is_asg_role:
            s.needs.extend(launch_needs(principal.arn, principal_account, key.arn, region, resource))
        else:
            s.needs.extend(start_needs(principal.arn, principal_account, key.arn, region, resource))


# -- helpers ---------------------------------------------------------------------------------


def _no_encrypted_volume(incident: Incident, s: Situation, text: str) -> None:
    if incident.kms_related:
        s.notes.append(text)
    else:
        s.not_kms_reason = text


_HANDLERS: dict[Trigger, Callable[[Incident, AwsGateway, Situation], None]] = {
    Trigger.ASG_LAUNCH_FAILURE: _asg_launch_failure,
    Trigger.KMS_ACCESS_DENIED: kms_access_denied,
    Trigger.EBS_VOLUME_FAILURE: _ebs_volume_failure,
    Trigger.EC2_LAUNCH_FAILURE: _ec2_launch_failure,
    # A group checked before (or without) any failure event: keyfix.predict.
    Trigger.SCHEDULED_SWEEP: _asg_launch_failure,
    Trigger.KEY_CHANGE: _asg_launch_failure,
}
