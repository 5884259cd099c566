"""What AWS itself accepts as a name, id or ARN, checked before keyfix puts one in a fix.

A principal or key name in a fix comes from an event or from an AWS response, and ends up
in a key policy, an identity policy and in CLI lines that on-call pastes into a shell.
Anything IAM, STS or KMS would never have accepted cannot name a real principal or key:
keyfix refuses to build a fix from it (`InvalidName`) instead of passing it on.

Validation is not what makes the CLI safe: IAM paths legitimately allow `$`, `;`, `` ` ``,
quotes and globs (`[!-~]`), so every CLI value is also shell-quoted (remedies/documents.py).

AWS validates its parameters with Java regular expressions, where `\\w` is ASCII-only
([A-Za-z0-9_]); hence `re.ASCII` throughout. Each rule cites the API parameter that defines it.
"""

from __future__ import annotations

import re

from keyfix.arns import parse_arn

_MAX_SHOWN = 80  # an offending value is quoted in the message, cut to this many characters


class InvalidName(ValueError):
    """A name, id or ARN that AWS would never accept; the message names the offending part."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        shown = value if not isinstance(value, str) or len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "..."
        super().__init__(f"{what} {shown!r} is not one AWS accepts: {rule}")
        self.what, self.value, self.rule = what, value, rule


def _check(what: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidName(what, value, rule)
    return value


# IAM names: "upper and lowercase alphanumeric characters with no spaces ... _+=,.@-".
_IAM_NAME_CHARS = r"[\w+=,.@-]"

# CreateUser UserName: 1-64, [\w+=,.@-]+
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html
_USER_NAME = re.compile(_IAM_NAME_CHARS + r"{1,64}", re.ASCII)
# CreateRole RoleName: 1-64, [\w+=,.@-]+
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
_ROLE_NAME = re.compile(_IAM_NAME_CHARS + r"{1,64}", re.ASCII)
# PutRolePolicy / PutUserPolicy PolicyName: 1-128, [\w+=,.@-]+
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
_POLICY_NAME = re.compile(_IAM_NAME_CHARS + r"{1,128}", re.ASCII)
# CreateUser / CreateRole Path: 1-512, (\u002F)|(\u002F[\u0021-\u007E]+\u002F). The prose says
# "through DEL (\u007F)"; the pattern AWS validates with stops at ~ (\u007E), so DEL is refused.
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
_PATH = re.compile(r"/|/[\x21-\x7e]{1,510}/", re.ASCII)
# AssumeRole RoleSessionName: 2-64, [\w+=,.@-]*
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
_SESSION_NAME = re.compile(_IAM_NAME_CHARS + r"{2,64}", re.ASCII)
# GetFederationToken Name: 2-32, [\w+=,.@-]*
# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html
_FEDERATED_NAME = re.compile(_IAM_NAME_CHARS + r"{2,32}", re.ASCII)
# An account id is 12 digits.
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
# Partitions: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc ...
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
# AWS's pages list partitions but give no grammar; keyfix accepts the shape they share
# (`aws` and lowercase hyphenated words) so that a new partition is not refused.
_PARTITION = re.compile(r"aws(-[a-z]+){0,3}", re.ASCII)
# Regions: us-east-1, us-gov-west-1, eusc-de-east-1 ... AWS's pages list Regions but define no
# grammar; KMS's MultiRegionKey.Region pattern is ^([a-z]+-){2,3}\d+$. keyfix accepts a 2-4
# letter prefix, one or more words, and a number, which every listed Region has.
# https://docs.aws.amazon.com/kms/latest/APIReference/API_MultiRegionKey.html
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,3}", re.ASCII)
# Key id: a UUID; multi-Region keys: mrk- and 32 hex digits.
# https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id-key-id
# https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html#mrk-key-id
_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}",
                     re.ASCII | re.IGNORECASE)
# CreateGrant Name: 1-256, ^[a-zA-Z0-9:/_-]+$
# https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
_GRANT_NAME = re.compile(r"[a-zA-Z0-9:/_-]{1,256}", re.ASCII)
GRANT_NAME_CHARS = re.compile(r"[^a-zA-Z0-9:/_-]", re.ASCII)  # what a grant name may not contain
# CreateGrant Operations: the GrantOperation enumeration.
# https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
GRANT_OPERATIONS = frozenset({
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
    "DeriveSharedSecret", "Encapsulate", "Decapsulate",
})
# Service principals: CreateGrant GranteeServicePrincipal, 1-128,
# ^([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+$ (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html);
# CreateServiceLinkedRole AWSServiceName is also [\w+=,.@-]{1,128}, which this implies.
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html
_SERVICE_PRINCIPAL = re.compile(r"(?=.{1,128}\Z)[A-Za-z0-9-]+\.[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", re.ASCII)
# CreateAutoScalingGroup AutoScalingGroupName: 1-255, "any ASCII character 33 to 126 ...
# You cannot use a colon (:) in the name."
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html
_GROUP_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]{1,255}", re.ASCII)
# EC2 resource ids: prefix, then 8 or 17 lowercase hex characters.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html
_SNAPSHOT_ID = re.compile(r"snap-([0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
_IMAGE_ID = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
# Volume ids have the same shape as snapshot and AMI ids.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Volume.html
_VOLUME_ID = re.compile(r"vol-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)


def user_name(value: str) -> str:
    return _check("IAM user name", value, _USER_NAME, "1-64 characters of A-Z a-z 0-9 _+=,.@-")


def role_name(value: str) -> str:
    return _check("IAM role name", value, _ROLE_NAME, "1-64 characters of A-Z a-z 0-9 _+=,.@-")


def policy_name(value: str) -> str:
    return _check("IAM policy name", value, _POLICY_NAME, "1-128 characters of A-Z a-z 0-9 _+=,.@-")


def iam_path(value: str) -> str:
    return _check("IAM path", value, _PATH,
                  "'/' or '/.../' of at most 512 printable ASCII characters (! to ~), no spaces")


def session_name(value: str) -> str:
    return _check("role session name", value, _SESSION_NAME, "2-64 characters of A-Z a-z 0-9 _+=,.@-")


def federated_user_name(value: str) -> str:
    return _check("federated user name", value, _FEDERATED_NAME, "2-32 characters of A-Z a-z 0-9 _+=,.@-")


def account_id(value: str) -> str:
    return _check("account id", value, _ACCOUNT, "12 digits")


def partition(value: str) -> str:
    return _check("partition", value, _PARTITION, "aws, aws-cn, aws-us-gov, aws-iso...")


def region(value: str) -> str:
    return _check("Region", value, _REGION, "a Region code such as us-east-1")


def kms_key_id(value: str) -> str:
    return _check("KMS key id", value, _KEY_ID, "a UUID, or mrk- and 32 hexadecimal digits")


def grant_name(value: str) -> str:
    return _check("grant name", value, _GRANT_NAME, "1-256 characters of A-Z a-z 0-9 : / _ -")


def grant_operation(value: str) -> str:
    if value not in GRANT_OPERATIONS:
        raise InvalidName("grant operation", value, "one of KMS's GrantOperation values")
    return value


def service_principal(value: str) -> str:
    return _check("service principal", value, _SERVICE_PRINCIPAL,
                  "dot-separated words of A-Z a-z 0-9 -, such as autoscaling.amazonaws.com")


def group_name(value: str) -> str:
    return _check("Auto Scaling group name", value, _GROUP_NAME,
                  "1-255 printable ASCII characters (! to ~) other than ':'")


def snapshot_id(value: str) -> str:
    return _check("snapshot id", value, _SNAPSHOT_ID, "snap- and 8 or 17 lowercase hexadecimal digits")


def volume_id(value: str) -> str:
    return _check("volume id", value, _VOLUME_ID, "vol- and 8 or 17 lowercase hexadecimal digits")


def image_id(value: str) -> str:
    return _check("AMI id", value, _IMAGE_ID, "ami- and 8 or 17 lowercase hexadecimal digits")


def key_arn(value: str) -> str:
    """arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID
    https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id-key-ARN"""
    parsed = parse_arn(value) if isinstance(value, str) else None
    if parsed is None or parsed.service != "kms":
        raise InvalidName("KMS key ARN", value, "arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID")
    partition(parsed.partition)
    region(parsed.region)
    account_id(parsed.account)
    kind, _, key_id = parsed.resource.partition("/")
    if kind != "key":
        raise InvalidName("KMS key ARN resource", parsed.resource, "key/KEY-ID")
    kms_key_id(key_id)
    return value


def principal_arn(value: str) -> str:
    """An IAM user or role (with its path), a service-linked role, an account root, an STS
    assumed-role session or federated user. IAM and STS ARNs carry no Region.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns"""
    parsed = parse_arn(value) if isinstance(value, str) else None
    if parsed is None or parsed.service not in ("iam", "sts"):
        raise InvalidName("principal ARN", value,
                          "arn:PARTITION:iam::ACCOUNT:user|role/... or arn:PARTITION:sts::ACCOUNT:assumed-role/...")
    partition(parsed.partition)
    if parsed.region:
        raise InvalidName("principal ARN Region", parsed.region, "IAM and STS ARNs have an empty Region field")
    account_id(parsed.account)
    if parsed.service == "iam":
        _iam_resource(parsed.resource)
    else:
        _sts_resource(parsed.resource)
    return value


def _iam_resource(resource: str) -> None:
    if resource == "root":
        return
    kind, slash, rest = resource.partition("/")
    if kind not in ("user", "role") or not slash:
        raise InvalidName("IAM principal", resource, "root, user/PATH/NAME or role/PATH/NAME")
    cut = rest.rfind("/") + 1
    path, name = "/" + rest[:cut], rest[cut:]
    iam_path(path)
    (user_name if kind == "user" else role_name)(name)
    if kind == "role" and path.startswith("/aws-service-role/"):
        # Service-linked roles live at /aws-service-role/SERVICE-PRINCIPAL/.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
        service = path[len("/aws-service-role/"):-1]
        service_principal(service)


def _sts_resource(resource: str) -> None:
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        parts = rest.split("/")
        if len(parts) != 2:
            raise InvalidName("assumed-role session", resource, "assumed-role/ROLE-NAME/SESSION-NAME")
        role_name(parts[0])
        session_name(parts[1])
    elif kind == "federated-user":
        federated_user_name(rest)
    else:
        raise InvalidName("STS principal", resource, "assumed-role/ROLE/SESSION or federated-user/NAME")
