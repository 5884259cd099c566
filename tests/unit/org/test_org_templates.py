"""The organisation's templates (issue #15): the StackSet template `make stackset` generates,
and the central stack. Generation runs the real SAM translator (aws-sam-cli's venv, which
scripts/setup builds for `make test`); the checks read the generated document."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
ORG_VARIABLES = {"KEYFIX_CENTRAL_BUS_ARN", "KEYFIX_KEY_OWNER_BUS_ARNS", "KEYFIX_ORG_BUS_NAME",
                 "KEYFIX_PROPOSAL_ACCOUNTS"}


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags, kept as {"Fn::X": value}."""


def _tag(loader, suffix, node):
    value = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else \
        loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)
    name = "Ref" if suffix == "Ref" else ("Condition" if suffix == "Condition" else f"Fn::{suffix}")
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)


def generate(tmp_path: Path, *extra: str, additions: Path = ROOT / "org" / "member-additions.yaml"):
    if not TOOLS_PYTHON.exists():
        pytest.fail("the tools venv is missing: run scripts/setup tools")
    out = tmp_path / "member-stackset.yaml"
    done = subprocess.run([str(TOOLS_PYTHON), "scripts/stackset-template", "template.yaml", str(additions), str(out),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return done, out


@pytest.fixture(scope="module")
def stackset(tmp_path_factory) -> dict:
    done, out = generate(tmp_path_factory.mktemp("ss"), "--code-uri", "s3://artifacts/keyfix/code.zip")
    assert done.returncode == 0, done.stderr
    return load(out)


def test_stackset_template_is_plain_cloudformation_with_the_organisation_pieces(stackset):
    additions = load(ROOT / "org" / "member-additions.yaml")
    assert "Transform" not in stackset
    assert not [n for n, r in stackset["Resources"].items() if r["Type"].startswith("AWS::Serverless::")]
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        assert set(additions[section]) <= set(stackset[section]), section
    base = load(ROOT / "template.yaml")
    assert set(base["Parameters"]) <= set(stackset["Parameters"])  # every single-account parameter stays
    function = stackset["Resources"]["KeyfixFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Code"] == {"S3Bucket": "artifacts", "S3Key": "keyfix/code.zip"}
    variables = function["Properties"]["Environment"]["Variables"]
    assert ORG_VARIABLES <= set(variables)
    assert set(base["Resources"]["KeyfixFunction"]["Properties"]["Environment"]["Variables"]) <= set(variables)


def test_every_organisation_resource_is_off_until_its_parameter_is_set(stackset):
    additions = load(ROOT / "org" / "member-additions.yaml")
    for name, resource in additions["Resources"].items():
        assert resource.get("Condition") in additions["Conditions"], name
    for name, parameter in additions["Parameters"].items():
        assert "Default" in parameter, name  # a StackSet without organisation parameters deploys as before


def test_the_buses_admit_only_this_organisations_keyfix_roles(stackset):
    central = load(ROOT / "org" / "central.yaml")
    policies = [stackset["Resources"]["OrgBusPolicy"], central["Resources"]["CentralBusPolicy"]]
    for policy in policies:
        statement = policy["Properties"]["Statement"]
        assert statement["Action"] == "events:PutEvents" and statement["Effect"] == "Allow"
        assert statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
        assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"].endswith(":role/keyfix/*")


def test_the_function_may_only_put_events_and_describe_member_accounts(stackset):
    policy = stackset["Resources"]["KeyfixOrgPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    put, verify = policy[0], policy[1]["Fn::If"][1]
    assert put["Action"] == "events:PutEvents"
    assert verify["Action"] == "organizations:DescribeAccount"
    assert verify["Resource"]["Fn::Sub"].endswith(":account/${OrganizationId}/*")
    scan = stackset["Resources"]["OrgScanRole"]["Properties"]
    actions = scan["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"]
    verbs = {a.split(":")[1] for a in actions}
    assert all(v.startswith(("Describe", "Get", "List")) for v in verbs), verbs  # read-only, nothing else


def test_a_name_clash_with_the_template_is_refused(tmp_path):
    clash = tmp_path / "additions.yaml"
    clash.write_text("Resources:\n  KeyfixTable:\n    Type: AWS::SNS::Topic\n")
    done, out = generate(tmp_path, "--code-uri", "s3://a/b.zip", additions=clash)
    assert done.returncode == 2 and "KeyfixTable" in done.stderr and not out.exists()


def test_the_unpackaged_template_is_refused_without_a_code_location(tmp_path):
    done, out = generate(tmp_path)
    assert done.returncode == 2 and "S3" in done.stderr and not out.exists()


def test_make_stackset_packages_then_generates_then_lints():
    done = subprocess.run(["make", "-n", "stackset", "S3_BUCKET=artifacts"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    steps = done.stdout.replace("\\\n", " ").splitlines()
    order = ["sam build", "sam package", "scripts/stackset-template .aws-sam/packaged.yaml org/member-additions.yaml "
             "org/member-stackset.yaml", "sam validate --lint --template-file org/member-stackset.yaml"]
    positions = [next(i for i, line in enumerate(steps) if needle in line) for needle in order]
    assert positions == sorted(positions), steps


def test_central_stack_aggregates_into_one_topic_one_digest_one_dashboard():
    central = load(ROOT / "org" / "central.yaml")
    types = [r["Type"] for r in central["Resources"].values()]
    assert types.count("AWS::SNS::Topic") == 1 and types.count("AWS::CloudWatch::Dashboard") == 1
    assert types.count("AWS::Lambda::Function") == 1  # the digest
    attention = central["Resources"]["AttentionRule"]["Properties"]["EventPattern"]
    assert attention == {"source": ["keyfix.org"], "detail-type": ["keyfix report"], "detail": {"attention": [True]}}
    body = central["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    widgets = json.loads(body.replace("${AWS::Region}", "r").replace("${LogGroup}", "g"))["widgets"]
    assert any("by detail.account" in w["properties"]["query"] for w in widgets)
