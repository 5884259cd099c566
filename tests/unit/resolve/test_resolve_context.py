"""resolve() on moto: the context reads (keyfix.resolve.context) and their exact AWS call lists.

Only a key policy (or identity policy) that mentions aws:PrincipalOrgID, aws:PrincipalTag/ or
aws:ResourceTag/ costs a read; the seed cases' call lists (test_resolve_asg.py,
test_resolve_kms_denied.py) are unchanged.
"""

from __future__ import annotations

import json

import pytest

from keyfix.resolve import resolve
from tests.support.accounts import ASG_ACCOUNT, build_a1, build_b
from tests.unit.resolve.test_resolve_asg import A1_CALLS

pytestmark = pytest.mark.usefixtures("moto")


def _add_statement(client, key_arn: str, statement: dict) -> None:
    policy = json.loads(client.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    policy["Statement"].append(statement)
    client.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))


def _share(condition: dict) -> dict:
    return {"Sid": "Share", "Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt", "kms:CreateGrant"],
            "Resource": "*", "Condition": condition}


def test_org_condition_adds_one_describe_organization_and_the_id(make_gateway):
    case = build_a1()
    gw = make_gateway()
    org = gw.session.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
    _add_statement(gw.session.client("kms"), case.key_arn, _share({"StringEquals": {"aws:PrincipalOrgID": org}}))

    situation = resolve(case.incident(), gw)

    assert gw.calls == [*A1_CALLS, ("organizations", "DescribeOrganization")]
    (need,) = situation.needs
    assert need.context["aws:PrincipalOrgID"] == org
    assert "aws:PrincipalOrgID" not in need.unknown_keys and "aws:PrincipalOrgPaths" in need.unknown_keys


def test_no_organisation_means_the_key_is_absent_not_unknown(make_gateway):
    case = build_a1()
    gw = make_gateway()
    _add_statement(gw.session.client("kms"), case.key_arn, _share({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}))

    (need,) = resolve(case.incident(), gw).needs

    assert gw.calls[-1] == ("organizations", "DescribeOrganization")
    assert "aws:PrincipalOrgID" not in need.context and "aws:PrincipalOrgID" not in need.unknown_keys


def test_tag_conditions_read_the_users_tags_once(make_gateway):
    case = build_b()
    gw = make_gateway()
    gw.session.client("iam").tag_user(UserName="dev-alice", Tags=[{"Key": "team", "Value": "web"}])
    _add_statement(gw.session.client("kms"), case.key_arn,
                   _share({"StringEquals": {"aws:PrincipalTag/team": "web", "aws:ResourceTag/shared": "yes"}}))

    situation = resolve(case.denied_incident(), gw)

    # The user's tags, then the key's (read only because the key policy mentions aws:ResourceTag/).
    assert gw.calls[-2:] == [("iam", "ListUserTags"), ("kms", "ListResourceTags")]
    assert gw.calls.count(("iam", "ListUserTags")) == 1 and gw.calls.count(("kms", "ListResourceTags")) == 1
    assert not [c for c in gw.calls if c[0] == "organizations" or c == ("iam", "ListRoleTags")]
    (need,) = situation.needs
    assert need.context["aws:PrincipalTag/team"] == "web"
    # the key's tags were read (ListResourceTags): none named "shared", so known absent
    assert "aws:ResourceTag/" not in need.unknown_keys and "aws:PrincipalTag/" not in need.unknown_keys
    assert situation.principals[need.principal].account == ASG_ACCOUNT
