"""CloudTrail records of the simulated requests: who made them (userIdentity) and, for a
refused KMS request, the record AWS writes with its errorCode and errorMessage.

Record fields:
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
userIdentity: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
A KMS request EC2 makes for a caller is logged with the caller's identity and userAgent
"AWS Internal" (https://docs.aws.amazon.com/kms/latest/developerguide/ct-ec2two.html).
"""

from __future__ import annotations

import uuid
from typing import Any

from keyfix.arns import account_of
from keyfix.demo.authorize import KmsCall
from keyfix.demo.eventbridge import now


def user_identity(principal: str, principal_id: str, role_arn: str | None = None) -> dict[str, Any]:
    """`principal` as the request was made (user ARN or assumed-role session ARN);
    `principal_id` the user's or role's unique id; `role_arn` the role (with its path)."""
    account = account_of(principal) or ""
    if ":assumed-role/" not in principal:
        return {"type": "IAMUser", "principalId": principal_id, "arn": principal, "accountId": account,
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": principal.rsplit("/", 1)[-1]}
    _, role_name, session = principal.split(":", 5)[5].split("/")
    return {
        "type": "AssumedRole",
        "principalId": f"{principal_id}:{session}",
        "arn": principal,
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": principal_id, "arn": role_arn or "",
                              "accountId": account, "userName": role_name},
            "webIdFederationData": {},
            "attributes": {"creationDate": now(), "mfaAuthenticated": "false"},
        },
    }


def _request_parameters(call: KmsCall) -> dict[str, Any]:
    context = call.context
    volume = context.get("kms:EncryptionContext:aws:ebs:id")
    if call.action == "kms:CreateGrant":
        params: dict[str, Any] = {"keyId": call.key_arn}
        if context.get("kms:GranteePrincipal"):
            params["granteePrincipal"] = context["kms:GranteePrincipal"]
        return params
    params = {"keyId": call.key_arn}
    if volume:
        params["encryptionContext"] = {"aws:ebs:id": volume}
    if call.action == "kms:GenerateDataKeyWithoutPlaintext":
        params["numberOfBytes"] = 64
    return params


def kms_refused(call: KmsCall, identity: dict[str, Any], region: str, error_message: str) -> dict[str, Any]:
    """The record of a KMS request refused with AccessDeniedException; CloudTrail's
    errorCode for it is "AccessDenied" (strings catalogue, items 11 and 15)."""
    key_account = account_of(call.key_arn) or ""
    return {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": now(),
        "eventSource": "kms.amazonaws.com",
        "eventName": call.action.split(":", 1)[1],
        "awsRegion": region,
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "errorCode": "AccessDenied",
        "errorMessage": error_message,
        "requestParameters": _request_parameters(call),
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"accountId": key_account, "type": "AWS::KMS::Key", "ARN": call.key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId") or key_account,
        "eventCategory": "Management",
    }


def ec2_call(event_name: str, identity: dict[str, Any], region: str, instance_id: str) -> dict[str, Any]:
    """A successful EC2 call on one instance (StartInstances, RunInstances)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": now(),
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": instance_id}]}},
        "responseElements": {"instancesSet": {"items": [{"instanceId": instance_id,
                                                         "currentState": {"code": 0, "name": "pending"}}]}},
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId"),
        "eventCategory": "Management",
    }
