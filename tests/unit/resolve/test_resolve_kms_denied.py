"""resolve() for kms-access-denied (CloudTrail AccessDenied on a KMS call)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from keyfix.events.incident import Caller
from keyfix.resolve import resolve
from keyfix.resolve.needs import EBS_CALLER_OPERATIONS, GRANT_OPERATIONS, LAUNCH_USE_OPERATIONS
from tests.support.accounts import ASG_ACCOUNT, KEY_ACCOUNT, REGION, b_key_policy, build_a1, build_b
from tests.support.faults import deny

pytestmark = pytest.mark.usefixtures("moto")

KEY_READS = [("kms", "DescribeKey"), ("kms", "GetKeyPolicy"), ("kms", "ListGrants")]  # tags only when needed (#14)


def test_b_user_denied_create_grant_via_ebs(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(case.denied_incident("kms:CreateGrant"), gw)

    assert gw.calls == [
        ("iam", "GetUser"),
        ("iam", "ListUserPolicies"),
        ("iam", "GetUserPolicy"),
        ("iam", "ListAttachedUserPolicies"),
        ("iam", "ListGroupsForUser"),
        *KEY_READS,
    ]
    assert situation.notes == [] and situation.not_kms_reason is None
    (need,) = situation.needs
    assert need.principal == case.user_arn
    assert need.key_arn == case.key_arn
    # Through EBS, one denied action is the first of the set EBS needs from the caller.
    assert need.operations == EBS_CALLER_OPERATIONS
    # The request came through EBS (encryption context aws:ebs:id), so EC2 made the grant for
    # an AWS resource; no EncryptionContext keys on a grant operation.
    assert need.context == {
        "kms:CallerAccount": ASG_ACCOUNT,
        "kms:ViaService": "ec2.us-east-1.amazonaws.com",
        "kms:GrantIsForAWSResource": "true",
    }
    assert need.resource == f"arn:aws:ec2:{REGION}:{ASG_ACCOUNT}:volume/{case.volume_id}"
    key = situation.keys[case.key_arn]
    assert key.policy == b_key_policy(ASG_ACCOUNT)
    alice = situation.principals[case.user_arn]
    assert (alice.kind, alice.exists, alice.unique_id) == ("user", True, case.user_id)
    assert alice.identity_policy_names == ("inline:ebs-volumes",)
    assert alice.identity_policies[0]["Statement"][0]["Action"] == ["ec2:CreateVolume", "ec2:AttachVolume", "ec2:Describe*"]
    assert alice.permission_boundary is None


def test_b_user_denied_decrypt_through_ebs_needs_the_whole_ebs_set(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(case.denied_incident("Decrypt"), gw)

    (need,) = situation.needs
    assert need.operations == EBS_CALLER_OPERATIONS
    # one volume's encryption context does not describe the other operations' requests
    assert need.context == {
        "kms:CallerAccount": ASG_ACCOUNT,
        "kms:ViaService": "ec2.us-east-1.amazonaws.com",
        "kms:GrantIsForAWSResource": "true",
    }


def test_denied_decrypt_not_through_a_service_keeps_its_encryption_context(make_gateway):
    case = build_b()
    gw = make_gateway()
    incident = dataclasses.replace(case.denied_incident("Decrypt"), encryption_context={"app": "billing"})

    situation = resolve(incident, gw)

    (need,) = situation.needs
    assert need.operations == ("kms:Decrypt",)
    assert need.context == {
        "kms:CallerAccount": ASG_ACCOUNT,
        "kms:EncryptionContext:app": "billing",
        "kms:EncryptionContextKeys": ["app"],
    }


def test_user_with_group_policies(make_gateway):
    from keyfix.sim import accounts

    case = build_b()
    iam = accounts.client("iam", ASG_ACCOUNT)
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    managed = iam.create_policy(PolicyName="kms-users", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    # (moto 5.2 keeps no permissions boundary on users; role boundaries are tested with roles)
    bob = iam.create_user(UserName="dev-bob", Path="/team/")["User"]
    iam.create_group(GroupName="devs")
    iam.add_user_to_group(GroupName="devs", UserName="dev-bob")
    iam.attach_group_policy(GroupName="devs", PolicyArn=managed)
    iam.put_group_policy(GroupName="devs", PolicyName="inline-devs", PolicyDocument=json.dumps(doc))
    gw = make_gateway()
    incident = dataclasses.replace(
        case.denied_incident(), caller=Caller(type="IAMUser", arn=bob["Arn"], account=ASG_ACCOUNT)
    )

    situation = resolve(incident, gw)

    facts = situation.principals[bob["Arn"]]
    assert bob["Arn"] == f"arn:aws:iam::{ASG_ACCOUNT}:user/team/dev-bob"
    assert facts.identity_policy_names == ("group:devs/inline:inline-devs", f"group:devs/{managed}")
    assert facts.identity_policies == (doc, doc)
    assert facts.permission_boundary_arn is None and facts.permission_boundary is None
    # The managed policy document is read at its default version.
    assert gw.calls == [
        ("iam", "GetUser"),
        ("iam", "ListUserPolicies"),
        ("iam", "ListAttachedUserPolicies"),
        ("iam", "ListGroupsForUser"),
        ("iam", "ListGroupPolicies"),
        ("iam", "GetGroupPolicy"),
        ("iam", "ListAttachedGroupPolicies"),
        ("iam", "GetPolicy"),
        ("iam", "GetPolicyVersion"),
        *KEY_READS,
    ]


def test_auto_scaling_role_session_is_the_service_linked_role(make_gateway):
    case = build_a1()
    gw = make_gateway()
    session = f"arn:aws:sts::{ASG_ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
    incident = dataclasses.replace(
        build_b_free_incident(),
        caller=Caller(type="AssumedRole", arn=None, account=ASG_ACCOUNT, session_arn=session,
                      invoked_by="autoscaling.amazonaws.com"),
        action="kms:GenerateDataKeyWithoutPlaintext",
        key_arns=(case.key_arn,),
        encryption_context={},
    )

    situation = resolve(incident, gw)

    (need,) = situation.needs
    assert need.principal == case.slr_arn
    assert need.operations == GRANT_OPERATIONS + LAUNCH_USE_OPERATIONS  # what a launch needs of it
    assert need.context == {"kms:CallerAccount": ASG_ACCOUNT, "kms:ViaService": "ec2.us-east-1.amazonaws.com",
                            "kms:GrantIsForAWSResource": "true"}
    assert situation.principals[case.slr_arn].kind == "service-linked-role"
    assert gw.calls == [("iam", "GetRole"), *KEY_READS]


def test_principal_of_another_account_is_not_read(make_gateway):
    case = build_b()
    gw = make_gateway()
    stranger = f"arn:aws:iam::{KEY_ACCOUNT}:role/builder"
    incident = dataclasses.replace(
        case.denied_incident(), caller=Caller(type="AssumedRole", arn=stranger, account=KEY_ACCOUNT)
    )

    situation = resolve(incident, gw)

    facts = situation.principals[stranger]
    assert facts.identity_policies is None and facts.exists is None
    assert "cannot be read" in facts.unreadable[0]
    assert situation.needs[0].context["kms:CallerAccount"] == KEY_ACCOUNT
    assert gw.calls == KEY_READS


def test_key_policy_denied_and_user_unreadable(make_gateway):
    case = build_b()
    gw = make_gateway()
    deny(gw.session, "KMS", "GetKeyPolicy")
    deny(gw.session, "IAM", "GetUser", code="AccessDenied")

    situation = resolve(case.denied_incident(), gw)

    alice = situation.principals[case.user_arn]
    assert alice.exists is None and alice.identity_policies is None
    assert alice.unreadable == ("iam:GetUser failed: AccessDenied (User is not authorized to perform: GetUser)",)
    key = situation.keys[case.key_arn]
    assert key.policy is None and key.state == "Enabled"
    assert len(situation.needs) == 1
    assert gw.calls == [("iam", "GetUser"), *KEY_READS]


def test_event_without_key(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(dataclasses.replace(case.denied_incident(), key_arns=()), gw)

    assert situation.needs == [] and situation.keys == {}
    assert situation.notes == ["the event names no KMS key"]


def build_b_free_incident():
    from tests.support.accounts import UserCase

    return UserCase(ASG_ACCOUNT, REGION, "", "", "", "").denied_incident()


def test_create_grant_for_an_instance_carries_the_grant_parameters(make_gateway):
    """A CreateGrant EC2 made for an instance (grantee: the instance's infrastructure
    principal) comes through EC2 even without an encryption context."""
    case = build_b()
    gw = make_gateway()
    grantee = f"{ASG_ACCOUNT}:aws:ec2-infrastructure:i-0abc"
    incident = dataclasses.replace(
        case.denied_incident(), encryption_context={}, grantee_principal=grantee, grant_operations=("Decrypt",)
    )

    situation = resolve(incident, gw)

    (need,) = situation.needs
    assert need.resource is None
    assert need.context == {
        "kms:CallerAccount": ASG_ACCOUNT,
        "kms:ViaService": "ec2.us-east-1.amazonaws.com",
        "kms:GrantIsForAWSResource": "true",
        "kms:GranteePrincipal": grantee,
        "kms:GrantOperations": ["Decrypt"],
    }


def test_direct_call_has_no_service_context(make_gateway):
    case = build_b()
    gw = make_gateway()

    situation = resolve(dataclasses.replace(case.denied_incident("kms:Decrypt"), encryption_context={}), gw)

    assert situation.needs[0].context == {"kms:CallerAccount": ASG_ACCOUNT}


def test_unconfirmed_own_account_reads_but_is_flagged():
    from keyfix.resolve.gateway import AwsGateway
    from keyfix.sim import accounts

    case = build_b()
    gw = AwsGateway(accounts.session(ASG_ACCOUNT, REGION))  # no account given: asks STS
    deny(gw.session, "STS", "GetCallerIdentity", code="AccessDenied")

    situation = resolve(case.denied_incident("kms:CreateGrant"), gw)

    assert situation.account_confirmed is False
    assert any("could not confirm which account" in note for note in situation.notes)
    assert situation.needs, "reading and reporting go on; only writing stops (remedies.apply)"


def test_confirmed_own_account_is_flagged_so(make_gateway):
    situation = resolve(build_b().denied_incident("kms:CreateGrant"), make_gateway())
    assert situation.account_confirmed is True
