"""KMS AccessDenied, as CloudTrail reports it through EventBridge.

EventBridge delivers a CloudTrail record as the `detail` of an event with detail-type
"AWS API Call via CloudTrail" and source "aws.<service>":
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
Record fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
userIdentity: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
KMS records (keyId, encryptionContext, granteePrincipal, operations, resources[].ARN):
https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from keyfix.arns import iam_arn_for_session, is_service_linked_role
from keyfix.events._common import MAX_ARN_CHARS, MAX_NAME_CHARS, Detail, Envelope, dedupe, is_key_arn
from keyfix.events.incident import Caller, Denial, Incident
from keyfix.report import Trigger


class SessionIssuer(Detail):
    type: str | None = None  # Role | IAMUser (for GetFederationToken sessions)
    principal_id: str | None = Field(None, alias="principalId")
    arn: str | None = Field(None, max_length=MAX_ARN_CHARS)  # the IAM ARN, with its path
    account_id: str | None = Field(None, alias="accountId")
    user_name: str | None = Field(None, alias="userName")


class SessionContext(Detail):
    session_issuer: SessionIssuer | None = Field(None, alias="sessionIssuer")
    attributes: dict[str, Any] | None = None


class UserIdentity(Detail):
    # Service events may carry no type (only accountId/invokedBy).
    type: str | None = None
    principal_id: str | None = Field(None, alias="principalId", max_length=MAX_ARN_CHARS)
    arn: str | None = Field(None, max_length=MAX_ARN_CHARS)
    account_id: str | None = Field(None, alias="accountId", max_length=MAX_NAME_CHARS)
    access_key_id: str | None = Field(None, alias="accessKeyId")
    user_name: str | None = Field(None, alias="userName")
    invoked_by: str | None = Field(None, alias="invokedBy", max_length=MAX_ARN_CHARS)
    session_context: SessionContext | None = Field(None, alias="sessionContext")


class KmsRequestParameters(Detail):
    """The requestParameters keyfix reads. keyId may be a key id, key ARN, alias name
    or alias ARN (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id)."""

    key_id: str | None = Field(None, alias="keyId", max_length=MAX_ARN_CHARS)
    encryption_context: dict[str, str] | None = Field(None, alias="encryptionContext")
    # CreateGrant (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html)
    grantee_principal: str | None = Field(None, alias="granteePrincipal", max_length=MAX_ARN_CHARS)
    retiring_principal: str | None = Field(None, alias="retiringPrincipal")
    operations: list[str] | None = None
    constraints: dict[str, Any] | None = None


class CloudTrailResource(Detail):
    arn: str | None = Field(None, alias="ARN", max_length=MAX_ARN_CHARS)
    account_id: str | None = Field(None, alias="accountId")
    type: str | None = None


class KmsCloudTrailDetail(Detail):
    """Relied upon: eventSource (kms), eventName (the action), errorCode, userIdentity.
    errorMessage is optional (parsed when present)."""

    event_version: str | None = Field(None, alias="eventVersion")
    user_identity: UserIdentity = Field(alias="userIdentity")
    event_time: str | None = Field(None, alias="eventTime")
    event_source: Literal["kms.amazonaws.com"] = Field(alias="eventSource")
    event_name: str = Field(alias="eventName", min_length=1, max_length=MAX_NAME_CHARS)
    aws_region: str | None = Field(None, alias="awsRegion")
    source_ip_address: str | None = Field(None, alias="sourceIPAddress")
    user_agent: str | None = Field(None, alias="userAgent")
    error_code: str = Field(alias="errorCode")
    error_message: str | None = Field(None, alias="errorMessage")
    request_parameters: KmsRequestParameters | None = Field(None, alias="requestParameters")
    request_id: str | None = Field(None, alias="requestID")
    event_id: str | None = Field(None, alias="eventID")
    read_only: bool | None = Field(None, alias="readOnly")
    resources: list[CloudTrailResource] | None = None
    event_type: str | None = Field(None, alias="eventType")
    recipient_account_id: str | None = Field(None, alias="recipientAccountId")


class KmsCloudTrailEvent(Envelope):
    source: Literal["aws.kms"]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: KmsCloudTrailDetail


# -- errorMessage ---------------------------------------------------------------------
#
# "User: <arn> is not authorized to perform: <action> on resource: <arn> because no
#  <type> allows the <action> action" (implicit) / "... with an explicit deny in a(n)
#  <type>[: <policy arn>]" (explicit); older messages end after the resource.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_access-denied-error-messages.html
# Policy ARNs appended to the explicit form:
# https://aws.amazon.com/blogs/security/enhanced-access-denied-error-messages-with-policy-arns/

_PRINCIPAL_RE = re.compile(r"User: (arn:[^\s]{1,2048}) is not authorized to perform")
_RESOURCE_RE = re.compile(r" on resource: (arn:[^\s]{1,2048})")
_EXPLICIT_RE = re.compile(
    r"with an explicit deny in an? (identity-based policy|resource-based policy|service control policy"
    r"|resource control policy|permissions boundary|session policy|VPC endpoint policy)"
)
_IMPLICIT_RE = re.compile(
    r"because no (identity-based policy|resource-based policy|service control policy"
    r"|resource control policy|permissions boundary|session policy|VPC endpoint policy) allows"
)


def denial_from_message(message: str | None) -> Denial:
    """Which layer the AccessDenied message blames.

    Implicit denials by other layers ("because no permissions boundary allows ...",
    SCP, session, VPC endpoint) have no Denial variant of their own: UNSPECIFIED.
    """
    if not message:
        return Denial.UNSPECIFIED
    m = _EXPLICIT_RE.search(message)
    if m:
        kind = m.group(1)
        if kind == "resource-based policy":
            return Denial.EXPLICIT_DENY_RESOURCE
        if kind == "identity-based policy":
            return Denial.EXPLICIT_DENY_IDENTITY
        return Denial.EXPLICIT_DENY_OTHER
    m = _IMPLICIT_RE.search(message)
    if m:
        kind = m.group(1)
        if kind == "resource-based policy":
            return Denial.NO_RESOURCE_POLICY
        if kind == "identity-based policy":
            return Denial.NO_IDENTITY_POLICY
    return Denial.UNSPECIFIED


def principal_from_message(message: str | None) -> str | None:
    m = _PRINCIPAL_RE.search(message) if message else None
    return m.group(1) if m else None


def resource_from_message(message: str | None) -> str | None:
    m = _RESOURCE_RE.search(message) if message else None
    return m.group(1) if m else None


# -- the caller -----------------------------------------------------------------------

_SESSION_RE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/\s]+)/([^\s]+)")
_FEDERATED_RE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):federated-user/")
_ACCOUNT_RE = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")
# Who may call GetFederationToken: an IAM user or the root user.
_FEDERATING_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(?:root|user/[^\s]+)")

def role_arn_from_session(session_arn: str) -> tuple[str, bool] | None:
    """The IAM role ARN behind an assumed-role session ARN, and whether its path is known.

    A session ARN does not carry the role's path, so the result is path-less
    (arn:aws:iam::A:role/Name) unless the name is a service-linked role whose path AWS
    fixes (keyfix.arns.iam_arn_for_session). path_known=False: the true ARN may have a path.
    """
    if not _SESSION_RE.fullmatch(session_arn):
        return None
    role_arn = iam_arn_for_session(session_arn)
    return role_arn, is_service_linked_role(role_arn)


def _account_of(arn: str | None) -> str | None:
    m = _ACCOUNT_RE.match(arn) if arn else None
    return m.group(1) if m else None


def caller_from(identity: UserIdentity, error_message: str | None = None) -> tuple[Caller, bool]:
    """The Caller, and whether `Caller.arn` is exact (False: a path-less role ARN
    derived from a session ARN, whose real path is unknown).

    The message's "User: <arn>" fills in what a partial record leaves out.
    """
    kind = identity.type or "Unknown"
    issuer = identity.session_context.session_issuer if identity.session_context else None
    msg_arn = principal_from_message(error_message)
    arn: str | None = None
    session_arn: str | None = None
    exact = True

    session_candidate = next(
        (a for a in (identity.arn, msg_arn) if a and _SESSION_RE.fullmatch(a)),
        None,
    )
    # AWSAccount: a cross-account caller, logged in the key owner's trail with only its
    # account; the message still names the session.
    if kind == "AssumedRole" or (kind in ("AWSAccount", "Unknown") and session_candidate):
        session_arn = session_candidate or identity.arn
        if issuer and issuer.arn:
            arn = issuer.arn
        elif session_candidate and (derived := role_arn_from_session(session_candidate)):
            arn, exact = derived
        else:
            exact = False
    elif kind == "FederatedUser":
        # The principal is the federated user session itself. Its NAME is whatever was passed
        # to GetFederationToken and identifies no IAM user
        # (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html);
        # "The sessionIssuer element indicates if the API was called with root or IAM user
        # credentials" (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
        # Without it the federating user is unknown, never taken from NAME.
        session_arn = next((a for a in (identity.arn, msg_arn) if a and _FEDERATED_RE.match(a)), None)
        arn = session_arn
        exact = arn is not None
    elif kind == "Root":
        arn = identity.arn or msg_arn
        if arn is None and identity.account_id:
            arn = f"arn:aws:iam::{identity.account_id}:root"
    elif kind == "AWSService":
        # A service principal, e.g. "ec2.amazonaws.com".
        arn = identity.invoked_by
    else:
        # IAMUser, AWSAccount (cross-account: only the account is logged, the message
        # names the caller), IdentityCenterUser, unknown types.
        arn = identity.arn or msg_arn
        if arn is None and identity.invoked_by and not identity.principal_id:
            arn = identity.invoked_by

    account = identity.account_id or _account_of(arn) or _account_of(session_arn)
    caller = Caller(
        type=kind,
        arn=arn,
        account=account,
        session_arn=session_arn,
        principal_id=identity.principal_id,
        invoked_by=identity.invoked_by,
        session_issuer_arn=_session_issuer_arn(kind, issuer),
    )
    return caller, exact


def _session_issuer_arn(kind: str, issuer: SessionIssuer | None) -> str | None:
    """sessionContext.sessionIssuer.arn; for a federated user only an IAM user or root ARN
    (anything else cannot have called GetFederationToken, so it is not trusted)."""
    if issuer is None or not issuer.arn:
        return None
    if kind == "FederatedUser" and not _FEDERATING_RE.fullmatch(issuer.arn):
        return None
    return issuer.arn


def key_refs(detail: KmsCloudTrailDetail) -> tuple[str, ...]:
    """The key(s) the record names: resources[].ARN, else requestParameters.keyId (as
    given - an alias or key id is resolved by the resolver), else the message's
    "on resource: <arn>"."""
    from_resources = [r.arn for r in detail.resources or () if r.arn and is_key_arn(r.arn)]
    if from_resources:
        return dedupe(from_resources)
    params = detail.request_parameters
    if params and params.key_id:
        return (params.key_id,)
    resource = resource_from_message(detail.error_message)
    return (resource,) if resource and resource.startswith("arn:") else ()


def to_incident(event: KmsCloudTrailEvent) -> Incident:
    d = event.detail
    caller, _exact = caller_from(d.user_identity, d.error_message)
    params = d.request_parameters
    return Incident(
        trigger=Trigger.KMS_ACCESS_DENIED,
        **event.incident_fields(),
        caller=caller,
        action=f"kms:{d.event_name}",
        error_code=d.error_code,
        error_message=d.error_message,
        denial=denial_from_message(d.error_message),
        encryption_context=dict(params.encryption_context) if params and params.encryption_context else {},
        key_arns=key_refs(d),
        kms_related=True,
        grantee_principal=params.grantee_principal if params else None,
        grant_operations=tuple(params.operations or ()) if params else (),
    )
