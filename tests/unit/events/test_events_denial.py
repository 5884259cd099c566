"""AccessDenied message -> Denial, and the caller read from CloudTrail's userIdentity.

Messages 10-16 are verbatim from tests/fixtures/realevents/_strings-and-facts-catalog.md;
the policy-type forms follow
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_access-denied-error-messages.html
and the policy-ARN suffix
https://aws.amazon.com/blogs/security/enhanced-access-denied-error-messages-with-policy-arns/
"""

from __future__ import annotations

import pytest
from _events_support import sample

from keyfix.events import parse
from keyfix.events.cloudtrail import (
    UserIdentity,
    caller_from,
    denial_from_message,
    principal_from_message,
    resource_from_message,
    role_arn_from_session,
)
from keyfix.events.incident import Denial

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:sts::111122223333:assumed-role/ec2-operator/bob"

CATALOG = [
    # 10 (with the API's "AccessDeniedException: " prefix)
    (
        "AccessDeniedException: User: arn:aws:sts::xxxxxxxxxxxx:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling "
        "is not authorized to perform: kms:GenerateDataKeyWithoutPlaintext on resource: ARN of KMS key",
        Denial.UNSPECIFIED,
    ),
    # 11
    (
        "... is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:...:key/... because no "
        "resource-based policy allows the kms:Decrypt action",
        Denial.NO_RESOURCE_POLICY,
    ),
    # 12
    (
        "... is not authorized to perform: kms:GenerateDataKeyWithoutPlaintext on resource: ... because no "
        "identity-based policy allows the kms:GenerateDataKeyWithoutPlaintext action",
        Denial.NO_IDENTITY_POLICY,
    ),
    # 13
    (
        "... is not authorized to perform: kms:Decrypt on resource: ... with an explicit deny in a resource-based policy",
        Denial.EXPLICIT_DENY_RESOURCE,
    ),
    # 14
    (
        "... is not authorized to perform: kms:Decrypt on resource: ... with an explicit deny in an identity-based policy",
        Denial.EXPLICIT_DENY_IDENTITY,
    ),
    # 15 (older form, no reason)
    (
        "User: arn:aws:iam::123456789012:user/test is not authorized to perform: kms:CreateGr[ant on resource: ...]",
        Denial.UNSPECIFIED,
    ),
    # 15, the seed's full text
    (
        "User: arn:aws:iam::123456789012:user/test is not authorized to perform: kms:CreateGrant on resource: "
        "arn:aws:kms:eu-west-1:123456789012:key/...",
        Denial.UNSPECIFIED,
    ),
    # 16 (AWS Backup: ambiguous between "no resource-based policy" and "explicit deny")
    (
        "User: <assumed role> is not authorized to perform: kms:CreateGrant on this resource because the resource "
        "does not exist in this Region, no resource-based policies allow access, or a resource-based policy "
        "explicitly denies access",
        Denial.UNSPECIFIED,
    ),
]


@pytest.mark.parametrize(("message", "denial"), CATALOG)
def test_catalog_messages(message, denial):
    assert denial_from_message(message) is denial


def _full(why: str) -> str:
    return f"User: {ROLE} is not authorized to perform: kms:CreateGrant on resource: {KEY} {why}"


@pytest.mark.parametrize(
    ("why", "denial"),
    [
        ("with an explicit deny in a service control policy", Denial.EXPLICIT_DENY_OTHER),
        (
            "with an explicit deny in a service control policy: "
            "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd",
            Denial.EXPLICIT_DENY_OTHER,
        ),
        ("with an explicit deny in a resource control policy", Denial.EXPLICIT_DENY_OTHER),
        ("with an explicit deny in a permissions boundary", Denial.EXPLICIT_DENY_OTHER),
        ("with an explicit deny in a session policy", Denial.EXPLICIT_DENY_OTHER),
        ("with an explicit deny in a VPC endpoint policy", Denial.EXPLICIT_DENY_OTHER),
        (
            "with an explicit deny in an identity-based policy: arn:aws:iam::111122223333:policy/DenyKms",
            Denial.EXPLICIT_DENY_IDENTITY,
        ),
        ("with an explicit deny in a resource-based policy", Denial.EXPLICIT_DENY_RESOURCE),
        ("because no resource-based policy allows the kms:CreateGrant action", Denial.NO_RESOURCE_POLICY),
        ("because no identity-based policy allows the kms:CreateGrant action", Denial.NO_IDENTITY_POLICY),
        # implicit denials by other layers have no variant of their own
        ("because no permissions boundary allows the kms:CreateGrant action", Denial.UNSPECIFIED),
        ("because no service control policy allows the kms:CreateGrant action", Denial.UNSPECIFIED),
        ("because no session policy allows the kms:CreateGrant action", Denial.UNSPECIFIED),
        ("", Denial.UNSPECIFIED),
    ],
)
def test_policy_type_forms(why, denial):
    assert denial_from_message(_full(why)) is denial


def test_no_message_is_unspecified():
    assert denial_from_message(None) is Denial.UNSPECIFIED
    assert denial_from_message("") is Denial.UNSPECIFIED


def test_message_parts():
    msg = _full("because no identity-based policy allows the kms:CreateGrant action")
    assert principal_from_message(msg) == ROLE
    assert resource_from_message(msg) == KEY
    # catalog 10: "on resource: ARN of KMS key" is not an ARN
    assert resource_from_message(CATALOG[0][0]) is None


@pytest.mark.parametrize(("message", "denial"), CATALOG[1:5])
def test_denial_reaches_the_incident(message, denial):
    event = sample("cloudtrail-kms-accessdenied-c-role-creategrant.json")
    event["detail"]["errorMessage"] = message
    assert parse(event).denial is denial


# -- caller -------------------------------------------------------------------------------

SLR = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
SLR_SESSION = "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"


def _caller(identity: dict, message: str | None = None):
    return caller_from(UserIdentity.model_validate(identity), message)


def test_assumed_role_with_session_issuer_uses_the_role_with_its_path():
    caller, exact = _caller(
        {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:AutoScaling",
            "arn": SLR_SESSION,
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": SLR, "userName": "AWSServiceRoleForAutoScaling"}},
            "invokedBy": "autoscaling.amazonaws.com",
        }
    )
    assert (caller.type, caller.arn, caller.session_arn, caller.invoked_by, exact) == (
        "AssumedRole",
        SLR,
        SLR_SESSION,
        "autoscaling.amazonaws.com",
        True,
    )


def test_assumed_role_without_session_issuer_is_path_less_and_says_so():
    caller, exact = _caller({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s1"})
    assert caller.arn == "arn:aws:iam::111122223333:role/app"
    assert exact is False
    assert caller.account == "111122223333"


def test_known_service_linked_role_path_is_restored():
    assert role_arn_from_session(SLR_SESSION) == (SLR, True)
    custom = "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling_web/AutoScaling"
    assert role_arn_from_session(custom) == (
        "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_web",
        True,
    )
    assert role_arn_from_session("arn:aws-cn:sts::111122223333:assumed-role/r/s") == (
        "arn:aws-cn:iam::111122223333:role/r",
        False,
    )
    assert role_arn_from_session("arn:aws:iam::111122223333:user/u") is None


def test_slr_session_known_only_from_the_message():
    msg = f"User: {SLR_SESSION} is not authorized to perform: kms:CreateGrant on resource: {KEY}"
    caller, exact = _caller({"type": "AssumedRole", "invokedBy": "autoscaling.amazonaws.com"}, msg)
    assert (caller.arn, caller.session_arn, exact) == (SLR, SLR_SESSION, True)


def test_iam_user_root_service_account_federated():
    user, _ = _caller({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/dev-alice", "accountId": "111122223333"})
    assert (user.arn, user.session_arn) == ("arn:aws:iam::111122223333:user/dev-alice", None)

    root, _ = _caller({"type": "Root", "accountId": "111122223333", "principalId": "111122223333"})
    assert root.arn == "arn:aws:iam::111122223333:root"

    service, _ = _caller({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"})
    assert (service.arn, service.account) == ("ec2.amazonaws.com", None)

    # Cross-account caller as the key owner's trail logs it: account only; the message names it.
    msg = f"User: {ROLE} is not authorized to perform: kms:Decrypt on resource: {KEY}"
    other, exact = _caller({"type": "AWSAccount", "principalId": "AROAEXAMPLE:bob", "accountId": "444455556666"}, msg)
    assert (other.arn, other.session_arn, other.account, exact) == (
        "arn:aws:iam::111122223333:role/ec2-operator",
        ROLE,
        "444455556666",
        False,
    )

    fed, exact = _caller(
        {
            "type": "FederatedUser",
            "arn": "arn:aws:sts::111122223333:federated-user/carol",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/broker"}},
        }
    )
    # The principal is the federated session; the IAM user who federated comes from the issuer.
    assert (fed.arn, fed.session_arn, fed.session_issuer_arn, exact) == (
        "arn:aws:sts::111122223333:federated-user/carol",
        "arn:aws:sts::111122223333:federated-user/carol",
        "arn:aws:iam::111122223333:user/broker",
        True,
    )
