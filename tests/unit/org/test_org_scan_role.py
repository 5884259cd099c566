"""The organisation scan's way in (issue #15, item 4): the StackSet's role and what
`keyfix scan --organization` asks of it agree, and its command line refuses bad input.

The role is read from org/member-additions.yaml as written (no SAM translation needed: it is
plain CloudFormation); the integration tests (tests/integration/test_org_scan.py) create it
from the same document in moto and scan through it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfix.org.scan import (DEFAULT_ROLE_NAME, DEFAULT_ROLE_PATH, SESSION_NAME, OrgScanUsageError, check_arguments,
                             role_arn)
from tests.support.sts_trust import trust_admits

ROOT = Path(__file__).resolve().parents[3]
SECURITY = "999988887777"


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    value = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else \
        loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)
    return {("Ref" if suffix == "Ref" else f"Fn::{suffix}"): value}


CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def additions() -> dict:
    return yaml.load((ROOT / "org" / "member-additions.yaml").read_text(), Loader=CfnLoader)


def _sub(text: str) -> str:
    return text.replace("${AWS::Partition}", "aws").replace("${SecurityAccountId}", SECURITY)


def test_the_role_is_where_the_scan_looks_for_it(additions):
    role = additions["Resources"]["OrgScanRole"]
    assert role["Condition"] == "HasScanRole"
    assert additions["Conditions"]["HasScanRole"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecurityAccountId"}, ""]}]}
    props = role["Properties"]
    assert (props["Path"], props["RoleName"]) == (DEFAULT_ROLE_PATH, DEFAULT_ROLE_NAME)
    assert role_arn("aws", "111122223333", DEFAULT_ROLE_PATH, DEFAULT_ROLE_NAME) == \
        "arn:aws:iam::111122223333:role/keyfix/keyfix-org-scan"
    # RoleSessionName: 2-64 of [\w+=,.@-] (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", SESSION_NAME)


def test_only_the_security_accounts_keyfix_roles_may_assume_it(additions):
    (statement,) = additions["Resources"]["OrgScanRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${SecurityAccountId}:root"}}
    condition = statement["Condition"]
    assert condition == {"ArnLike": {"aws:PrincipalArn": {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${SecurityAccountId}:role/keyfix/*"}}}
    # No external id and no aws:PrincipalOrgID: the scan sends neither (keyfix.org.scan.assumed_session).
    trust = {"Statement": [{**statement, "Principal": {"AWS": _sub(statement["Principal"]["AWS"]["Fn::Sub"])},
                            "Condition": {"ArnLike": {"aws:PrincipalArn": _sub(
                                condition["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"])}}}]}
    cases = {
        f"arn:aws:iam::{SECURITY}:role/keyfix/keyfix-scanner": True,
        f"arn:aws:iam::{SECURITY}:role/keyfix/ci/pipeline": True,
        f"arn:aws:iam::{SECURITY}:role/admin": False,
        f"arn:aws:iam::{SECURITY}:role/keyfixer/x": False,
        f"arn:aws:iam::{SECURITY}:user/keyfix/alice": False,
    }
    for arn, admitted in cases.items():
        assert trust_admits(trust, SECURITY, arn, None) is admitted, arn
    assert trust_admits(trust, "111122223333", "arn:aws:iam::111122223333:role/keyfix/keyfix-scanner", None) is False


def test_the_role_may_only_read(additions):
    (policy,) = additions["Resources"]["OrgScanRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    assert {s["Effect"] for s in statements} == {"Allow"}
    actions = [a for s in statements for a in s["Action"]]
    assert actions and all(re.fullmatch(r"[a-z0-9-]+:(Describe|Get|List)[A-Za-z]+", a) for a in actions), actions
    assert not [a for a in actions if "*" in a]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "apply"}, "--mode apply is refused"),
    ({"groups": ["web-asg"]}, "--group is for one account"),
    ({"role_name": ""}, "not an IAM role name"),
    ({"role_name": "a" * 65}, "not an IAM role name"),
    ({"role_path": "keyfix/"}, "not an IAM path"),
    ({"role_path": "/keyfix"}, "not an IAM path"),
    ({"role_path": "//"}, "not an IAM path"),  # (/)|(/[!-~]+/): https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
    ({"accounts": ["12345678901"]}, "not a 12-digit account id"),
    ({"accounts": ["１２３４５６７８９０１２"]}, "not a 12-digit account id"),  # full-width digits are not ASCII
])
def test_bad_arguments_are_refused(kwargs, message):
    args = {"accounts": None, "role_name": DEFAULT_ROLE_NAME, "role_path": DEFAULT_ROLE_PATH, "mode": "propose",
            "groups": None, **kwargs}
    with pytest.raises(OrgScanUsageError, match=re.escape(message)):
        check_arguments(**args)


@settings(max_examples=300, deadline=None)
@given(accounts=st.one_of(st.none(), st.lists(st.one_of(st.from_regex(r"\A[0-9]{12}\Z"), st.text(max_size=14)),
                                              max_size=6)),
       role_name=st.one_of(st.just(DEFAULT_ROLE_NAME), st.text(max_size=70)),
       role_path=st.one_of(st.just(DEFAULT_ROLE_PATH), st.text(max_size=20)),
       mode=st.sampled_from([None, "propose", "apply"]))
def test_any_arguments_give_the_accounts_or_a_clear_refusal(accounts, role_name, role_path, mode):
    try:
        wanted = check_arguments(accounts, role_name, role_path, mode, None)
    except OrgScanUsageError as exc:
        assert str(exc)
        assert mode == "apply" or not re.fullmatch(r"[\w+=,.@-]{1,64}", role_name, re.ASCII) \
            or not re.fullmatch(r"/([!-~]+/)?", role_path) \
            or any(not re.fullmatch(r"[0-9]{12}", a, re.ASCII) for a in accounts or ())
        return
    assert mode != "apply"
    if accounts is None:
        assert wanted is None
    else:
        assert wanted == list(dict.fromkeys(accounts))  # each once, in the order given
        assert all(re.fullmatch(r"[0-9]{12}", a, re.ASCII) for a in wanted)
