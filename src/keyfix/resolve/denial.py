"""The CloudTrail KMS denial's reader: who was denied which action on which key, and what
the request carried (kms-access-denied; keyfix.resolve.dispatch calls it)."""

from __future__ import annotations

from keyfix.arns import iam_arn_for_session, is_service_linked_role, parse_arn, partition_of, via_service
from keyfix.events.incident import Caller, Incident
from keyfix.resolve.facts import AccessNeed, Situation
from keyfix.resolve.gateway import AwsGateway
from keyfix.resolve.gather import add_key, add_principal
from keyfix.resolve.needs import CRYPTO_OPERATIONS, EBS_CALLER_OPERATIONS, GRANT_OPERATIONS, LAUNCH_USE_OPERATIONS


def kms_access_denied(incident: Incident, gw: AwsGateway, s: Situation) -> None:
    caller = incident.caller
    if caller is None:
        s.notes.append("the event does not say who was denied")
        return
    region = incident.region
    principal_arn = principal_of(caller)
    if principal_arn is None:
        s.notes.append(f"the denied caller ({caller.type}) has no ARN")
        return
    facts = add_principal(gw, s, principal_arn)
    if facts is None:
        return

    if not incident.key_arns:
        s.notes.append("the event names no KMS key")
        return
    key = add_key(gw, s, incident.key_arns[0], region)

    action = incident.action or ""
    if not action:
        s.notes.append("the event names no KMS action")
        return
    if not action.startswith("kms:"):
        action = "kms:" + action

    context: dict[str, str | list[str]] = {}
    caller_account = caller.account or (parse_arn(facts.arn).account if parse_arn(facts.arn) else None)
    if caller_account:
        context["kms:CallerAccount"] = caller_account
    via = _via_service(incident)
    if via:
        context["kms:ViaService"] = via
        if action == "kms:CreateGrant":
            # An AWS service integrated with KMS created the grant on the caller's behalf.
            context["kms:GrantIsForAWSResource"] = "true"
    if action == "kms:CreateGrant":
        # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grantee-principal
        # and #conditions-kms-grant-operations
        grantee = incident.grantee_principal
        operations = incident.grant_operations
        if grantee:
            context["kms:GranteePrincipal"] = grantee
        if operations:
            context["kms:GrantOperations"] = sorted(operations)
    if action in CRYPTO_OPERATIONS and incident.encryption_context:
        for name, value in incident.encryption_context.items():
            context[f"kms:EncryptionContext:{name}"] = value
        context["kms:EncryptionContextKeys"] = sorted(incident.encryption_context)
    volume = incident.encryption_context.get("aws:ebs:id")
    if volume is not None and not _is_volume_id(volume):
        # Free text in the event, whoever called KMS chose it: never a resource keyfix names.
        s.notes.append("the event's aws:ebs:id is not a volume id; keyfix ignores it")
        volume = None
    resource = (
        f"arn:{partition_of(region)}:ec2:{region}:{incident.account}:volume/{volume}" if volume else None
    )
    operations: tuple[str, ...] = (action,)
    if via and via.startswith("ec2.") and action in EBS_CALLER_OPERATIONS:
        # Through EBS, the denied action is one of a set the caller needs together.
        operations = (GRANT_OPERATIONS + LAUNCH_USE_OPERATIONS) if is_service_linked_role(facts.arn) \
            else EBS_CALLER_OPERATIONS
        context["kms:GrantIsForAWSResource"] = "true"  # sent with the grant operation only (plan.Model)
        for name in [k for k in context if k.lower().startswith("kms:encryptioncontext")]:
            del context[name]  # the other operations carry contexts of their own
    s.needs.append(AccessNeed(principal=facts.arn, key_arn=key.arn, operations=operations, context=context,
                              resource=resource))


def _is_volume_id(value: object) -> bool:
    from keyfix import names

    try:
        names.volume_id(value)  # type: ignore[arg-type]
    except names.InvalidName:
        return False
    return True


def principal_of(caller: Caller) -> str | None:
    """The principal whose permissions decide: the IAM identity behind the session.

    A federated user session is evaluated as itself (arn:aws:sts::A:federated-user/NAME):
    its permissions are the federating user's identity policies intersected with a session
    policy the event does not carry, so neither the user named NAME nor the issuer
    (`caller.session_issuer_arn`, kept on the incident for the diagnosis) stands in for it.
    """
    if caller.type == "AWSService":
        return caller.invoked_by or caller.arn
    if caller.type == "FederatedUser":
        return caller.session_arn
    arn = caller.arn or caller.session_arn
    if arn is None:
        return None
    return iam_arn_for_session(arn)


def _via_service(incident: Incident) -> str | None:
    """kms:ViaService of the denied request, when an AWS service made it for the caller.

    EBS requests carry the encryption context aws:ebs:id
    (https://docs.aws.amazon.com/kms/latest/developerguide/services-ebs.html#ebs-encryption-context)
    and come through EC2. Auto Scaling's role reaches KMS through the EC2 launch it
    requests, so invokedBy autoscaling.amazonaws.com also means EC2.
    """
    region = incident.region
    if "aws:ebs:id" in incident.encryption_context:
        return via_service("ec2", region)
    # EC2 makes its grants to the instance's infrastructure principal
    # ("<account>:aws:ec2-infrastructure:<instance-id>",
    # https://docs.aws.amazon.com/kms/latest/developerguide/ct-ec2two.html).
    if ":aws:ec2-infrastructure:" in (incident.grantee_principal or ""):
        return via_service("ec2", region)
    invoked_by = incident.caller.invoked_by if incident.caller else None
    if invoked_by and invoked_by.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        if invoked_by.startswith("autoscaling."):
            return via_service("ec2", region)
        return via_service(invoked_by, region)
    return None
