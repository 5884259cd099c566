"""`keyfix scan --organization` on a simulated organisation (issue #15, item 4).

The security account is the organisation's management account here (ListAccounts answers it);
keyfix runs as a role under /keyfix/ of it, as the StackSet's scan role requires. Three members:
`healthy` (a group whose key lets the Auto Scaling role in), `broken` (a group on a root-only
key policy: seed A1) and `no-role` (the StackSet never reached it: no scan role). The two
members with the role get it exactly as org/member-additions.yaml declares it (trust policy and
read-only policy), and AssumeRole checks the trust policy (tests.support.sts_trust: moto alone
would hand out credentials for any role). Every document is validated against
org-scan.schema.json, each account's scan against scan.schema.json and each report against
report.schema.json.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import yaml

from keyfix.sim import accounts, moto_gaps
from keyfix.sim.scenarios.common import Env
from keyfix.sim.scenarios.fleet import Fleet, add_group, make_key, plain_image
from tests.integration.conftest import REPORT_SCHEMA
from tests.support import sts_trust

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "src" / "keyfix" / "schemas"
ORG_SCAN_SCHEMA = json.loads((SCHEMAS / "org-scan.schema.json").read_text())
SCAN_SCHEMA = json.loads((SCHEMAS / "scan.schema.json").read_text())
REGION = "us-east-1"
SECURITY = "999988887777"
SCAN_ROLE = "/keyfix/keyfix-org-scan"


class CfnLoader(yaml.SafeLoader):
    """CloudFormation's short-form tags as {"Fn::X": value} / {"Ref": value}."""


def _tag(loader, suffix, node):
    value = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else \
        loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)
    return {("Ref" if suffix == "Ref" else f"Fn::{suffix}"): value}


CfnLoader.add_multi_constructor("!", _tag)


def _resolve(value, parameters: dict[str, str]):
    """Fn::Sub of the template's ${Name} variables; anything else as written."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, replacement in parameters.items():
            text = text.replace("${" + name + "}", replacement)
        assert "${" not in text, text
        return text
    if isinstance(value, dict):
        return {k: _resolve(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, parameters) for v in value]
    return value


def scan_role_resource() -> dict:
    additions = yaml.load((ROOT / "org" / "member-additions.yaml").read_text(), Loader=CfnLoader)
    return additions["Resources"]["OrgScanRole"]["Properties"]


def scan_role_actions() -> set[str]:
    (policy,) = scan_role_resource()["Policies"]
    return {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}


def deploy_scan_role(env: Env, account: str) -> None:
    """What the StackSet creates with SecurityAccountId=SECURITY, read from the template."""
    props = _resolve(scan_role_resource(), {"AWS::Partition": "aws", "SecurityAccountId": SECURITY})
    iam = env.client("iam", account)
    iam.create_role(RoleName=props["RoleName"], Path=props["Path"],
                    AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
    for policy in props["Policies"]:
        iam.put_role_policy(RoleName=props["RoleName"], PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))


@dataclass
class Organisation:
    env: Env
    members: dict[str, str]  # name -> account
    fleets: dict[str, Fleet]
    attempts: list[dict[str, str]]  # every AssumeRole keyfix made (sts_trust)
    policies_before: dict[str, dict] = field(default_factory=dict)

    def key_policies(self) -> dict[str, dict]:
        out = {}
        for name, fleet in self.fleets.items():
            kms = self.env.client("kms", fleet.account)
            for label, arn in fleet.keys.items():
                out[f"{name}/{label}"] = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
        return out


def become(env: Env, account: str, path: str, name: str) -> str:
    """Switch the process's credentials to a session of role `path``name` in `account`."""
    iam = env.client("iam", account)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}
    arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    creds = env.client("sts", account).assume_role(RoleArn=arn, RoleSessionName="on-call")["Credentials"]
    os.environ.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                      AWS_SESSION_TOKEN=creds["SessionToken"])
    return arn


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "KEYFIX_MODE": "apply"}.items():  # apply in the environment: the scan must still only read
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_ACCOUNT_ID", "KEYFIX_KEY_ALLOWLIST",
                 "KEYFIX_PRINCIPAL_ALLOWLIST", "KEYFIX_SNS_TOPIC_ARN", "KEYFIX_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), moto_gaps.installed(), sts_trust.enforced() as attempts:
        env = Env()
        organizations = accounts.client("organizations", SECURITY, REGION)
        organizations.create_organization(FeatureSet="ALL")
        members = {n: organizations.create_account(AccountName=n, Email=f"{n}@example.com")
                   ["CreateAccountStatus"]["AccountId"] for n in ("healthy", "broken", "no-role")}
        fleets = {}
        for name in ("healthy", "broken"):
            account = members[name]
            deploy_scan_role(env, account)
            fleet = fleets[name] = Fleet(account, REGION, plain_image(env, account))
            fleet.keys["healthy"] = make_key(env, account, healthy=True)
            add_group(env, fleet, "web-asg", fleet.keys["healthy"])
        fleets["broken"].keys["broken"] = make_key(env, members["broken"], healthy=False)
        add_group(env, fleets["broken"], "batch-asg", fleets["broken"].keys["broken"])
        # The no-role account has a broken group too: nobody can see it without the role.
        no_role = fleets["no-role"] = Fleet(members["no-role"], REGION, plain_image(env, members["no-role"]))
        no_role.keys["broken"] = make_key(env, members["no-role"], healthy=False)
        add_group(env, no_role, "hidden-asg", no_role.keys["broken"])
        become(env, SECURITY, "/keyfix/", "keyfix-scanner")
        attempts.clear()  # only keyfix's own
        world = Organisation(env, members, fleets, attempts)
        world.policies_before = world.key_policies()
        yield world


def scan(*args: str) -> tuple[int, dict | str, str]:
    from keyfix.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["scan", "--organization", *args])
    if "--format" in args and out.getvalue():
        doc = json.loads(out.getvalue())
        jsonschema.validate(doc, ORG_SCAN_SCHEMA)
        for one in doc["scans"]:
            jsonschema.validate(one, SCAN_SCHEMA)
            for report in one["reports"]:
                jsonschema.validate(report, REPORT_SCHEMA)
        return status, doc, err.getvalue()
    return status, out.getvalue(), err.getvalue()


def problems(doc: dict) -> dict[str, list[tuple[str, str]]]:
    """account -> [(group name, cause)] of every finding in its scan."""
    return {one["account"]: sorted((f["resource"].rsplit("/", 1)[-1], f["cause"])
                                   for r in one["reports"] for f in r["findings"]) for one in doc["scans"]}


def test_whole_organisation_one_combined_document(org):
    status, doc, err = scan("--format", "json")

    members = org.members
    assert status == 1  # a broken group outranks the account that could not be scanned
    assert doc["scanned_from"] == SECURITY and doc["region"] == REGION and doc["role"] == SCAN_ROLE
    assert doc["organization"].startswith("o-")
    assert doc["accounts"] == {"listed": 4, "scanned": 3, "not_scanned": 1}
    assert problems(doc) == {SECURITY: [], members["healthy"]: [],
                             members["broken"]: [("batch-asg", "slr-not-in-key-policy")]}
    checked = {one["account"]: one["checked"] for one in doc["scans"]}
    assert checked[members["healthy"]]["groups"] == 1 and checked[members["broken"]]["groups"] == 2
    assert checked[SECURITY]["groups"] == 0
    (broken_finding,) = [f for one in doc["scans"] for r in one["reports"] for f in r["findings"]]
    assert broken_finding["predicted"] is True
    assert {fix["status"] for fix in broken_finding["fixes"]} == {"proposed"}  # KEYFIX_MODE=apply is ignored
    (missing,) = doc["not_scanned"]
    assert missing["account"] == members["no-role"] and missing["name"] == "no-role"
    assert missing["code"] == "AccessDenied" and f"{members['no-role']}:role{SCAN_ROLE}" in missing["reason"]
    assert doc["complete"] is False and doc["unknown_accounts"] == []
    assert f"account {members['no-role']} not scanned" in err
    # The role in each member, once, with keyfix's session name, from the /keyfix/ caller; the
    # security account itself is read with the caller's own credentials.
    assert sorted((a["role"].split(":")[4], a["session"], a["outcome"]) for a in org.attempts) == sorted(
        (members[n], "keyfix-org-scan", "denied" if n == "no-role" else "assumed") for n in members)
    assert {a["caller"] for a in org.attempts} == {f"arn:aws:iam::{SECURITY}:role/keyfix/keyfix-scanner"}
    assert org.key_policies() == org.policies_before


def test_accounts_limits_the_scan_and_sets_the_exit_status(org):
    members = org.members
    expectations = [
        ([members["healthy"]], 0, [members["healthy"]], []),
        ([members["broken"]], 1, [members["broken"]], []),
        ([members["no-role"]], 3, [], [members["no-role"]]),
        ([members["healthy"], members["no-role"]], 3, [members["healthy"]], [members["no-role"]]),
        ([members["broken"], members["no-role"], members["broken"]], 1, [members["broken"]], [members["no-role"]]),
        ([SECURITY], 0, [SECURITY], []),
    ]
    for wanted, expected_status, scanned, not_scanned in expectations:
        org.attempts.clear()
        status, doc, _ = scan("--accounts", *wanted, "--format", "json")
        assert (status, [s["account"] for s in doc["scans"]], [n["account"] for n in doc["not_scanned"]]) == \
            (expected_status, sorted(scanned), not_scanned), wanted
        assert doc["accounts"]["listed"] == 4
        assert doc["complete"] is (not not_scanned), wanted
        assert sorted(a["role"].split(":")[4] for a in org.attempts) == sorted(a for a in set(wanted) if a != SECURITY)
    assert org.key_policies() == org.policies_before


def test_text_output_names_each_account_and_what_was_not_scanned(org):
    status, out, _ = scan()

    assert status == 1
    assert f"== account {org.members['broken']}" in out and "batch-asg" in out and "slr-not-in-key-policy" in out
    assert f"Not scanned: account {org.members['no-role']} no-role: cannot assume" in out
    assert out.rstrip().splitlines()[-1].endswith("3 account(s) scanned, 1 not scanned, 1 group(s) or instance(s) "
                                                  "with a problem.")


@pytest.mark.parametrize("args, message", [
    (["--mode", "apply"], "--mode apply is refused with --organization"),
    (["--accounts", "12345"], "not a 12-digit account id: '12345'"),
    (["--accounts", "1234567890123"], "not a 12-digit account id"),
    (["--group", "web-asg"], "--group is for one account"),
    (["--role-name", "bad/name"], "not an IAM role name"),
    (["--role-path", "keyfix"], "not an IAM path"),
])
def test_bad_input_is_exit_2_before_any_aws_call(org, args, message):
    from keyfix.resolve.gateway import AwsGateway

    calls = []
    original = AwsGateway._record
    try:
        AwsGateway._record = lambda self, model=None, **kw: (calls.append(model.name) if model else None,
                                                             original(self, model, **kw))[1]
        status, out, err = scan(*args, "--format", "json")
    finally:
        AwsGateway._record = original
    assert (status, out, calls, org.attempts) == (2, "", [], [])
    assert message in err


def test_an_account_outside_the_organisation_is_bad_input_and_named(org):
    status, doc, err = scan("--accounts", "000011112222", org.members["healthy"], "--format", "json")

    assert status == 2
    assert doc["unknown_accounts"] == ["000011112222"] and doc["complete"] is False
    assert [s["account"] for s in doc["scans"]] == [org.members["healthy"]]
    assert "not an active account of the organisation: 000011112222" in err


def test_without_organisation_the_role_options_are_refused(org):
    from keyfix.cli import main

    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["scan", "--accounts", org.members["healthy"]]) == 2
    assert "need --organization" in err.getvalue()


def test_a_caller_outside_keyfix_path_is_refused_by_every_member_role(org):
    """The trust policy admits only /keyfix/ roles of the security account: another role of it
    gets AccessDenied from each member, and the scan says so (exit 3)."""
    become(org.env, SECURITY, "/", "admin")

    status, doc, _ = scan("--format", "json")

    assert status == 3
    assert [s["account"] for s in doc["scans"]] == [SECURITY]
    assert sorted(n["account"] for n in doc["not_scanned"]) == sorted(org.members.values())
    assert {n["code"] for n in doc["not_scanned"]} == {"AccessDenied"}


def test_member_scans_only_make_calls_the_read_only_role_allows(org):
    from keyfix.config import Settings
    from keyfix.org.scan import scan_organization

    result = scan_organization(Settings.from_env())

    allowed = scan_role_actions()
    # GetCallerIdentity needs no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    made = {f"{service}:{operation}" for one in result.scans if one.account != SECURITY
            for service, operation in one.gateway.calls if (service, operation) != ("sts", "GetCallerIdentity")}
    assert made and made <= allowed, made - allowed
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in allowed)
    assert {one.account for one in result.scans} == {SECURITY, org.members["healthy"], org.members["broken"]}


def test_every_page_of_accounts_is_listed(org):
    """ListAccounts gives at most 20 a page; an organisation of 45 is listed in three pages,
    and the accounts without the role (42 of them, created here without it) are each named."""
    from keyfix.config import Settings
    from keyfix.org.scan import scan_organization
    from keyfix.resolve.gateway import AwsGateway

    organizations = accounts.client("organizations", SECURITY, REGION)
    extra = [organizations.create_account(AccountName=f"team-{i}", Email=f"team-{i}@example.com")
             ["CreateAccountStatus"]["AccountId"] for i in range(41)]
    gw = AwsGateway(region=REGION)

    result = scan_organization(Settings.from_env(), gw=gw)

    assert gw.calls.count(("organizations", "ListAccounts")) == 3
    assert result.listed == 45
    assert sorted(n.account for n in result.not_scanned) == sorted([*extra, org.members["no-role"]])
    assert sorted(s.account for s in result.scans) == sorted([SECURITY, org.members["healthy"], org.members["broken"]])
    assert result.exit_status() == 1


def test_a_closed_account_is_skipped_and_named_inactive(org):
    organizations = accounts.client("organizations", SECURITY, REGION)
    gone = organizations.create_account(AccountName="gone", Email="gone@example.com")["CreateAccountStatus"]["AccountId"]
    organizations.close_account(AccountId=gone)  # SUSPENDED (State and Status)

    status, doc, _ = scan("--format", "json")

    assert status == 1 and doc["accounts"]["listed"] == 5
    assert doc["inactive"] == [{"account": gone, "state": "SUSPENDED"}]
    assert gone not in {s["account"] for s in doc["scans"]} | {n["account"] for n in doc["not_scanned"]}
    assert all(a["role"].split(":")[4] != gone for a in org.attempts)
    status, doc, err = scan("--accounts", gone, "--format", "json")  # asked for by name: the user's mistake
    assert (status, doc["unknown_accounts"], doc["scans"]) == (2, [gone], [])


def test_outside_any_organisation_is_a_clear_exit_2(org):
    become(org.env, "222233334444", "/keyfix/", "keyfix-scanner")  # an account in no organisation
    org.attempts.clear()

    status, out, err = scan("--format", "json")

    assert (status, out, org.attempts) == (2, "", [])
    assert "cannot list the organisation's accounts from here" in err and "AWSOrganizationsNotInUseException" in err


def test_one_account_failing_inside_keyfix_is_named_and_the_others_still_scanned(org):
    from keyfix.config import Settings
    from keyfix.org.scan import scan_organization
    from keyfix.predict.scan import scan as real_scan

    def scan_one(settings, gw, **kwargs):
        if gw.home_account() == org.members["healthy"]:
            raise RuntimeError("boom")
        return real_scan(settings, gw, **kwargs)

    result = scan_organization(Settings.from_env(), scan_one=scan_one)

    doc = result.document()
    jsonschema.validate(doc, ORG_SCAN_SCHEMA)
    assert [(n["account"], n["code"]) for n in doc["not_scanned"]] == sorted(
        [(org.members["healthy"], "InternalError"), (org.members["no-role"], "AccessDenied")])
    assert "RuntimeError: boom" in next(n["reason"] for n in doc["not_scanned"] if n["code"] == "InternalError")
    assert sorted(s["account"] for s in doc["scans"]) == sorted([SECURITY, org.members["broken"]])
    assert result.exit_status() == 1


@pytest.mark.parametrize("code, expected", [
    ("AccessDeniedException", 2),  # not the management account nor a delegated administrator: the user's to fix
    ("TooManyRequestsException", 3),  # AWS kept throttling: the scan could not complete
])
def test_an_organisation_that_cannot_be_listed_scans_nothing(org, code, expected):
    import boto3

    from keyfix.config import Settings
    from keyfix.org.scan import OrgScanUsageError, scan_organization
    from keyfix.resolve.gateway import AwsGateway
    from tests.support.faults import fail

    session = boto3.session.Session(region_name=REGION)
    refused = fail(session, "Organizations", "ListAccounts", code, "no")
    gw = AwsGateway(session=session, region=REGION, max_attempts=1)

    if expected == 2:
        with pytest.raises(OrgScanUsageError, match="management account or a delegated administrator"):
            scan_organization(Settings.from_env(), gw=gw)
    else:
        result = scan_organization(Settings.from_env(), gw=gw)
        doc = result.document()
        jsonschema.validate(doc, ORG_SCAN_SCHEMA)
        assert (result.exit_status(), doc["scans"], doc["not_scanned"], doc["complete"]) == (3, [], [], False)
        assert doc["unchecked"] == [f"the organisation's accounts could not be listed: organizations:ListAccounts "
                                    f"failed: {code} (no)"]
    assert refused == ["ListAccounts"] and org.attempts == []
