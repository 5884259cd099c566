"""Changes that can break a group before it fails: CloudTrail management events of KMS, EC2
and Auto Scaling, delivered by EventBridge as "AWS API Call via CloudTrail"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html).

Only successful calls are matched (the rule requires no errorCode: a refused PutKeyPolicy
changed nothing). What each names:
- KMS (PutKeyPolicy, DisableKey, ScheduleKeyDeletion, RevokeGrant, RetireGrant): the key, in
  resources[].ARN or requestParameters.keyId
  (https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html);
  RetireGrant may name only a grant token, then the key is unknown.
- EC2 (CreateLaunchTemplateVersion, ModifyLaunchTemplate): the launch template, by id or
  name, somewhere in requestParameters / responseElements (EC2 logs its own request shapes,
  e.g. CreateLaunchTemplateVersionRequest; AWS's pages give no schema for them, so keyfix
  looks for the documented parameter names at any depth);
- EC2 ModifyEbsDefaultKmsKeyId: the account's EBS default key (read back from EC2, never
  taken from the record);
- Auto Scaling (CreateAutoScalingGroup, UpdateAutoScalingGroup): requestParameters.autoScalingGroupName.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from keyfix.events._common import MAX_ARN_CHARS, MAX_NAME_CHARS, Detail, Envelope, dedupe, is_key_arn
from keyfix.events.cloudtrail import CloudTrailResource, UserIdentity, caller_from
from keyfix.events.incident import Incident
from keyfix.report import Trigger

KMS_CHANGES = ("PutKeyPolicy", "DisableKey", "ScheduleKeyDeletion", "RevokeGrant", "RetireGrant")
TEMPLATE_CHANGES = ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate")
EBS_DEFAULT_CHANGES = ("ModifyEbsDefaultKmsKeyId",)
GROUP_CHANGES = ("CreateAutoScalingGroup", "UpdateAutoScalingGroup")
EVENT_SOURCES = {"kms.amazonaws.com": "kms", "ec2.amazonaws.com": "ec2", "autoscaling.amazonaws.com": "autoscaling"}

# Where a walk of an EC2 record stops: deep enough for EC2's request wrappers.
_MAX_DEPTH = 6


class KeyChangeDetail(Detail):
    event_source: Literal["kms.amazonaws.com", "ec2.amazonaws.com", "autoscaling.amazonaws.com"] = \
        Field(alias="eventSource")
    event_name: Literal[KMS_CHANGES + TEMPLATE_CHANGES + EBS_DEFAULT_CHANGES + GROUP_CHANGES] = \
        Field(alias="eventName")  # type: ignore[valid-type]
    user_identity: UserIdentity = Field(alias="userIdentity")
    event_time: str | None = Field(None, alias="eventTime", max_length=MAX_NAME_CHARS)
    error_code: str | None = Field(None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")
    resources: list[CloudTrailResource] | None = None


class KeyChangeEvent(Envelope):
    source: Literal["aws.kms", "aws.ec2", "aws.autoscaling"]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: KeyChangeDetail


@dataclass(frozen=True)
class Change:
    """What the change names; at most one of the targets is set for a given event name."""

    event_name: str
    who: str  # the caller's ARN (or what CloudTrail gives)
    when: str | None
    key_refs: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()  # launch template ids and names
    group: str | None = None
    ebs_default: bool = False
    by_keyfix: bool = False  # keyfix's own role (IAM path /keyfix/)


def change_of(event: KeyChangeEvent) -> Change:
    d = event.detail
    caller, _ = caller_from(d.user_identity)
    who = caller.arn or caller.session_arn or caller.invoked_by or caller.type or "an unknown caller"
    by_keyfix = _by_keyfix(d.user_identity, caller.arn)
    params = d.request_parameters or {}
    name = d.event_name
    if name in KMS_CHANGES:
        refs = [r.arn for r in d.resources or () if r.arn and is_key_arn(r.arn)]
        key_id = params.get("keyId")
        if not refs and isinstance(key_id, str) and 0 < len(key_id) <= MAX_ARN_CHARS:
            refs.append(key_id)
        return Change(name, who, d.event_time, key_refs=dedupe(refs), by_keyfix=by_keyfix)
    if name in TEMPLATE_CHANGES:
        found: list[str] = []
        for record in (params, d.response_elements or {}):
            _template_refs(record, found, 0)
        return Change(name, who, d.event_time, templates=dedupe(found), by_keyfix=by_keyfix)
    if name in GROUP_CHANGES:
        group = params.get("autoScalingGroupName")
        ok = isinstance(group, str) and 1 <= len(group) <= 255
        return Change(name, who, d.event_time, group=group if ok else None, by_keyfix=by_keyfix)
    return Change(name, who, d.event_time, ebs_default=True, by_keyfix=by_keyfix)


def _by_keyfix(identity: UserIdentity, caller_arn: str | None) -> bool:
    """keyfix's own role (IAM path /keyfix/): at least everything KeyChangeRule's pattern
    excludes (the record's sessionContext.sessionIssuer.arn, whatever the identity type:
    caller_from trusts a federated user's issuer only when it is a user or root, the pattern
    does not look at the type), and a caller ARN that carries the path itself."""
    context = identity.session_context
    issuer = context.session_issuer.arn if context and context.session_issuer else None
    return any(":role/keyfix/" in (arn or "") for arn in (issuer, caller_arn))


def _template_refs(value: Any, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if k.lower() in ("launchtemplateid", "launchtemplatename") and isinstance(v, str) \
                    and 0 < len(v) <= MAX_NAME_CHARS:
                out.append(v)
            else:
                _template_refs(v, out, depth + 1)
    elif isinstance(value, list):
        for item in value[:50]:
            _template_refs(item, out, depth + 1)


def to_incident(event: KeyChangeEvent) -> Incident:
    d = event.detail
    caller, _ = caller_from(d.user_identity)
    change = change_of(event)
    return Incident(
        trigger=Trigger.KEY_CHANGE,
        **event.incident_fields(),
        caller=caller,
        action=f"{EVENT_SOURCES[d.event_source]}:{d.event_name}",
        group_name=change.group,
        key_arns=change.key_refs,
    )
