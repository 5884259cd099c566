"""Proposed CLI lines never run attacker text (issue #9, section 2).

Every line is executed with `bash -c` where only stub `aws` and `jq` exist
(tests/support/shell_stubs.py), and must: exit 0 without stderr, start nothing but
`aws`/`jq`, leave no file but the two the key-policy merge writes, and hand each stub exactly
the argv the fix means, rebuilt here from the fix's own document (the JSON arguments parse
back to the document). Names come from hostile generators; a name AWS would never accept must
instead make the builder raise InvalidName, and the diagnosis an `undetermined` finding with
no fix.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfix.arns import iam_arn_for_session, parse_arn
from keyfix.diagnose import diagnose
from keyfix.events.incident import Incident
from keyfix.names import InvalidName
from keyfix.remedies import documents as docs
from keyfix.remedies import plan
from keyfix.report import Cause, Fix, FixKind, FixStatus, Trigger
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation
from tests.support.shell_stubs import ALLOWED, StubShell

HERE, OWNER = "111122223333", "444455556666"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:us-east-1:{HERE}:key/{KEY_ID}"
SLR_PATH = "/aws-service-role/autoscaling.amazonaws.com/"
SLR_NAME = "AWSServiceRoleForAutoScaling"
OPS = ("kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext")
EBS_CONTEXT = {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "kms:GrantIsForAWSResource": "true"}
MERGE_FILES = frozenset({docs.POLICY_FILE, docs.NEW_POLICY_FILE})
REFUSAL = "AWS would never accept"

# ---- independent oracles: the documented character sets, spelled out ----------------------
IAM_NAME_CHARS = string.ascii_letters + string.digits + "_+=,.@-"
PATH_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))
HEX = "0123456789abcdef"


def ok_name(value: str, low: int = 1, high: int = 64) -> bool:
    return low <= len(value) <= high and all(c in IAM_NAME_CHARS for c in value)


def ok_path(value: str) -> bool:
    return value == "/" or (3 <= len(value) <= 512 and value[0] == value[-1] == "/"
                            and all(c in PATH_CHARS for c in value))


def ok_region(value: str) -> bool:
    words = value.split("-")
    return (len(words) >= 3 and 2 <= len(words[0]) <= 4 and words[-1].isascii() and words[-1].isdigit()
            and len(words[-1]) <= 3 and all(w.isascii() and w.isalpha() and w.islower() for w in words[:-1]))


def ok_key_id(value: str) -> bool:
    if value.startswith("mrk-"):
        return len(value) == 36 and all(c in HEX for c in value[4:].lower())
    groups = value.split("-")
    return [len(g) for g in groups] == [8, 4, 4, 4, 12] and all(c in HEX for g in groups for c in g.lower())


# ---- hostile generators --------------------------------------------------------------------
# Without whitespace these are legal inside an IAM path ([!-~]), so they must be quoted.
PAYLOADS_NO_SPACE = [
    "$(touch${IFS}CANARY)", "`touch${IFS}CANARY`", ";touch${IFS}CANARY;#", "|touch${IFS}CANARY",
    "&&touch${IFS}CANARY", "||touch${IFS}CANARY", ">CANARY", ">>CANARY", "<CANARY", "$IFS", "${IFS}", "'", '"',
    "\\", "*", "?", "[a-z]", "{a,b}", "~root", "!!", "!$", "#", "$((7*6))", "$'\\x41'", "$0", "$PATH", ")(",
    "&", "|", "<(touch${IFS}CANARY)", ">(touch${IFS}CANARY)", "'$(touch${IFS}CANARY)'", "\"`touch${IFS}CANARY`\"",
    "-", "--help", "=", "@", ",", ".",
]
# Whitespace, controls and look-alikes: no IAM name or path may hold these.
PAYLOADS_SPACE = [
    "$(touch CANARY)", "`touch CANARY`", "|touch CANARY", "&& touch CANARY", "\ntouch CANARY\n", " ", "\t",
    "\r", "\x00", "\x7f", "\u2028", "\u00e9", "\uff04(touch CANARY)",
]
segments = st.one_of(st.sampled_from(PAYLOADS_NO_SPACE), st.sampled_from(PAYLOADS_SPACE),
                     st.text(IAM_NAME_CHARS, min_size=1, max_size=8))
hostile_names = st.one_of(
    st.lists(segments, min_size=1, max_size=3).map("".join),
    st.text(IAM_NAME_CHARS, min_size=1, max_size=70),  # valid, or just over the length limit
)
# Path segments: no "/" inside (the path's own separators come from the join).
hostile_paths = st.one_of(
    st.just("/"),
    st.lists(st.lists(segments, min_size=1, max_size=2).map("".join).filter(lambda s: "/" not in s),
             min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts) + "/"),
)
valid_names = st.text(IAM_NAME_CHARS, min_size=1, max_size=40)
legal_hostile_paths = st.lists(st.sampled_from(PAYLOADS_NO_SPACE).filter(lambda s: "/" not in s),
                               min_size=0, max_size=3).map(lambda parts: "/" + "".join(p + "/" for p in parts))
real_regions = st.sampled_from(["us-east-1", "eu-west-2", "us-gov-west-1", "ap-southeast-4", "cn-north-1"])
real_key_ids = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: f"mrk-{u.hex}"))
hostile_regions = st.one_of(
    real_regions, st.tuples(st.sampled_from(["us-east-1", ""]), segments).map("".join),
)
hostile_key_ids = st.one_of(
    real_key_ids, st.tuples(st.uuids().map(str), segments).map("".join), segments,
)


@st.composite
def principals(draw) -> tuple[str, bool]:
    """(principal ARN as the event names it, whether AWS would accept every part a fix embeds)."""
    kind = draw(st.sampled_from(["user", "role", "session", "slr", "slr-session"]))
    if draw(st.booleans()):  # hostile anywhere
        name, path = draw(hostile_names), draw(hostile_paths)
    else:  # a name AWS accepts, under a path whose legal characters include shell syntax
        name, path = draw(valid_names), draw(legal_hostile_paths)
    name = name.replace("/", "") or "x"
    if kind in ("user", "role"):
        return f"arn:aws:iam::{HERE}:{kind}{path}{name}", ok_name(name) and ok_path(path)
    if kind == "session":
        session = draw(hostile_names).replace("/", "") or "x"
        # Fixes name the role behind the session, never the session: only the role name is embedded.
        return f"arn:aws:sts::{HERE}:assumed-role/{name}/{session}", ok_name(name)
    role = f"{SLR_NAME}_{name}"  # the issue's custom-suffix attack
    if kind == "slr":
        return f"arn:aws:iam::{HERE}:role{SLR_PATH}{role}", ok_name(role)
    return f"arn:aws:sts::{HERE}:assumed-role/{role}/AutoScaling", ok_name(role)


@st.composite
def keys(draw, account: str = HERE) -> tuple[str, bool]:
    if draw(st.integers(0, 3)):  # mostly real keys, so that most examples build a fix
        region, key_id = draw(real_regions), draw(real_key_ids)
    else:
        region, key_id = draw(hostile_regions), draw(hostile_key_ids)
    key_id = key_id.replace(":", "")
    region = region.replace(":", "")
    return f"arn:aws:kms:{region}:{account}:key/{key_id}", ok_region(region) and ok_key_id(key_id)


# ---- running a fix -------------------------------------------------------------------------
class Json:
    """An argument that must parse back to this document."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc

    def __eq__(self, arg: object) -> bool:
        return isinstance(arg, str) and json.loads(arg) == self.doc

    def __repr__(self) -> str:
        return f"Json({self.doc!r})"


def _region(key_arn: str) -> str:
    return key_arn.split(":")[3]


def intended_calls(fix: Fix) -> list[list[Any]]:
    """What each stub must receive, from the fix's document and target alone."""
    doc = fix.document
    if fix.kind == FixKind.KEY_POLICY_STATEMENT:
        key = fix.target
        get = ["aws", "kms", "get-key-policy", "--region", _region(key), "--key-id", key, "--policy-name", "default",
               "--query", "Policy", "--output", "text"]
        if isinstance(doc, dict) and "DenyingStatements" in doc:
            return [get]
        return [get, ["jq", "--argjson", "add", Json(doc), ".Statement += $add", "keyfix-policy.json"],
                ["aws", "kms", "put-key-policy", "--region", _region(key), "--key-id", key, "--policy-name", "default",
                 "--policy", "file://keyfix-policy.new.json"]]
    if fix.kind == FixKind.GRANT:
        return [["aws", "kms", "create-grant", "--region", _region(doc["KeyId"]), "--key-id", doc["KeyId"],
                 "--grantee-principal", doc["GranteePrincipal"], "--operations", *doc["Operations"],
                 "--name", doc["Name"]]]
    if fix.kind == FixKind.IDENTITY_POLICY:
        if isinstance(doc, dict) and "DenyingStatements" in doc:
            return []
        holder = fix.target if fix.target.startswith("arn:") else f"arn:aws:iam::{fix.target_account}:role/YOUR-ADMIN-ROLE"
        resource = parse_arn(holder).resource
        kind, name = resource.split("/")[0], resource.rsplit("/", 1)[-1]
        return [["aws", "iam", f"put-{kind}-policy", f"--{kind}-name", name, "--policy-name", doc["PolicyName"],
                 "--policy-document", Json(doc["PolicyDocument"])]]
    if fix.kind == FixKind.KEY_STATE:
        base = ["--region", _region(fix.target), "--key-id", fix.target]
        return {
            "PendingDeletion": [["aws", "kms", "cancel-key-deletion", *base], ["aws", "kms", "enable-key", *base]],
            "Disabled": [["aws", "kms", "enable-key", *base]],
            "PendingImport": [
                ["aws", "kms", "get-parameters-for-import", *base, "--wrapping-algorithm", "RSAES_OAEP_SHA_256",
                 "--wrapping-key-spec", "RSA_4096"],
                ["aws", "kms", "import-key-material", *base, "--encrypted-key-material",
                 "fileb://EncryptedKeyMaterial.bin", "--import-token", "fileb://ImportToken.bin",
                 "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE"]],
        }[doc["KeyState"]]
    if fix.kind == FixKind.RE_ENCRYPT:
        raise AssertionError("re-encrypt lines depend on the key's Region: see intended_re_encrypt")
    if fix.kind == FixKind.CREATE_SERVICE_LINKED_ROLE:
        return [["aws", "iam", "create-service-linked-role", "--aws-service-name", doc["AWSServiceName"]]]
    raise AssertionError(f"no oracle for {fix.kind}")


def intended_re_encrypt(region: str, source: str | None) -> list[list[str]]:
    where = ["--region", region, "--source-region", region]
    if source and source.startswith("snap-"):
        return [["aws", "ec2", "copy-snapshot", *where, "--source-snapshot-id", source, "--encrypted",
                 "--kms-key-id", "YOUR-CUSTOMER-MANAGED-KEY-ARN"]]
    image = source if source and source.startswith("ami-") else "SOURCE-AMI-ID"
    return [["aws", "ec2", "copy-image", *where, "--source-image-id", image, "--name", "keyfix-reencrypted",
             "--encrypted", "--kms-key-id", "YOUR-CUSTOMER-MANAGED-KEY-ARN"]]


def run_lines(shell: StubShell, lines: list[str], intended: list[list[Any]]) -> int:
    """Run one fix's lines in order, as pasted; returns how many lines ran."""
    shell.reset()
    calls: list[list[str]] = []
    files: frozenset[str] = frozenset()
    for line in lines:
        run = shell.run(line)
        assert run.returncode == 0 and run.stderr == "", f"{line!r} -> {run.returncode} {run.stderr!r}"
        strangers = [c for c in run.calls if c[0] not in ALLOWED]
        assert not strangers, f"{line!r} started {strangers}"
        assert len(run.calls) == 1, f"{line!r} made {run.calls}"
        calls += run.calls
        files = run.files
    assert calls == intended, f"{lines!r}\n  ran      {calls!r}\n  intended {intended!r}"
    assert files <= MERGE_FILES, f"{lines!r} left {sorted(files - MERGE_FILES)}"
    return len(lines)


def run_fix(shell: StubShell, fix: Fix) -> int:
    return run_lines(shell, fix.cli, intended_calls(fix))


@pytest.fixture(scope="module")
def shell(tmp_path_factory) -> StubShell:
    return StubShell(tmp_path_factory.mktemp("stub-shell"))


# ---- the harness can fail --------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "aws kms enable-key --key-id $(touch CANARY)",
    "aws kms enable-key --key-id x;touch${IFS}CANARY;#",
    "aws kms enable-key --key-id x >CANARY",
    "aws kms enable-key --key-id `touch CANARY`",
    "aws kms enable-key --key-id a b",
])
def test_the_harness_catches_an_unquoted_payload(shell, line):
    with pytest.raises(AssertionError):
        run_lines(shell, [line], [["aws", "kms", "enable-key", "--key-id", "x"]])


def test_the_harness_passes_a_quoted_line(shell):
    hostile = "$(touch CANARY);`id`\n'\"*"
    assert run_lines(shell, [docs.command("aws", "kms", "enable-key", "--key-id", hostile)],
                     [["aws", "kms", "enable-key", "--key-id", hostile]]) == 1


# ---- the builders, with hostile principals and keys ---------------------------------------------
def _fixes_from_documents(principal: str, key: str) -> list[Fix]:
    holder = iam_arn_for_session(principal)
    statements = docs.key_policy_statements(holder, ["kms:Decrypt"], ["kms:CreateGrant"])
    fixes = [Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, HERE, key, statements,
                 docs.cli_add_key_policy_statements(key, statements))]
    params = docs.grant_parameters(key, holder, list(docs.SLR_GRANT_OPERATIONS))
    fixes.append(Fix(FixKind.GRANT, FixStatus.PROPOSED, HERE, key, params, docs.cli_create_grant(params)))
    document = docs.identity_policy(key, ["kms:Decrypt"], ["kms:CreateGrant"])
    name = docs.identity_policy_name(key)
    fixes.append(Fix(FixKind.IDENTITY_POLICY, FixStatus.PROPOSED, HERE, holder,
                     {"PolicyName": name, "PolicyDocument": document},
                     docs.cli_put_identity_policy(holder, name, document)))
    for state in ("PendingDeletion", "Disabled", "PendingImport"):
        fixes.append(Fix(FixKind.KEY_STATE, FixStatus.PROPOSED, HERE, key, {"KeyState": state},
                         docs.cli_key_state(key, state)))
    return fixes


def test_documents_builders_refuse_or_quote_every_hostile_name(shell):
    outcomes: Counter[str] = Counter()

    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(principals(), keys())
    def check(principal_ok, key_ok):
        (principal, principal_valid), (key, key_valid) = principal_ok, key_ok
        if not (principal_valid and key_valid):
            with pytest.raises(InvalidName):
                _fixes_from_documents(principal, key)
            outcomes["refused"] += 1
            return
        for fix in _fixes_from_documents(principal, key):
            outcomes["lines run"] += run_fix(shell, fix)
        outcomes["built"] += 1
        # the principal's ARN, path and all, round-trips through the key-policy JSON
        outcomes["hostile path kept"] += any(c in principal for c in "$`;|&'\"<>*?")

    check()
    print(f"documents builders: {dict(outcomes)}")
    assert outcomes["refused"] >= 50 and outcomes["built"] >= 30 and outcomes["lines run"] >= 300
    assert outcomes["hostile path kept"] >= 5


@pytest.mark.parametrize("path", ["/$(touch${IFS}CANARY)/", "/`touch${IFS}CANARY`/", "/;touch${IFS}CANARY;#/",
                                  "/'/\"/", "/*/?/[a]/", "/>CANARY/", "/a|touch${IFS}CANARY/"])
def test_legal_but_hostile_paths_reach_the_cli_intact(shell, path):
    user = f"arn:aws:iam::{HERE}:user{path}alice"
    statements = docs.key_policy_statements(user, ["kms:Decrypt"], [])
    fix = Fix(FixKind.KEY_POLICY_STATEMENT, FixStatus.PROPOSED, HERE, KEY, statements,
              docs.cli_add_key_policy_statements(KEY, statements))
    assert run_fix(shell, fix) == 3
    assert statements[0]["Principal"] == {"AWS": user}
    params = docs.grant_parameters(KEY, user, ["Decrypt"])
    grant = Fix(FixKind.GRANT, FixStatus.PROPOSED, HERE, KEY, params, docs.cli_create_grant(params))
    assert run_fix(shell, grant) == 1


def test_grant_names_are_always_ones_kms_accepts():
    # Role names may hold + = , . @ ; grant names may not (CreateGrant Name: [a-zA-Z0-9:/_-]).
    role = f"arn:aws:iam::{HERE}:role{SLR_PATH}{SLR_NAME}_a+b=c,d.e@f"
    params = docs.grant_parameters(KEY, role, ["Decrypt"])
    assert params["Name"].startswith(f"keyfix-{SLR_NAME}_a_b_c_d_e_f-")
    other = docs.grant_parameters(KEY, role.replace("a+b", "a=b"), ["Decrypt"])
    assert other["Name"] != params["Name"]  # the hash keeps grantees whose names fold together apart


def test_re_encrypt_lines(shell):
    for source in ("snap-0123456789abcdef0", "ami-12345678", None, "vol-0123456789abcdef0",
                   f"arn:aws:ec2:us-east-1:{HERE}:volume/vol-0123456789abcdef0", "my-group$(touch${IFS}CANARY)"):
        assert run_lines(shell, docs.cli_re_encrypt("eu-west-2", source), intended_re_encrypt("eu-west-2", source)) == 1
    for source in ("snap-$(touch${IFS}CANARY)", "ami-;id", "snap-0123456789ABCDEF0"):
        with pytest.raises(InvalidName):
            docs.cli_re_encrypt("eu-west-2", source)
    with pytest.raises(InvalidName):
        docs.cli_re_encrypt("eu-west-2;id", None)


def test_create_service_linked_role_line(shell):
    for service in ("autoscaling.amazonaws.com", "spot.amazonaws.com"):
        fix = Fix(FixKind.CREATE_SERVICE_LINKED_ROLE, FixStatus.PROPOSED, HERE, "x", {"AWSServiceName": service},
                  docs.cli_create_service_linked_role(service))
        assert run_fix(shell, fix) == 1
    with pytest.raises(InvalidName):
        docs.cli_create_service_linked_role("autoscaling.amazonaws.com;touch${IFS}CANARY")


def test_identity_policy_cli_refuses_a_hostile_policy_name():
    with pytest.raises(InvalidName, match="policy name"):
        docs.cli_put_identity_policy(f"arn:aws:iam::{HERE}:role/r", "p;id", {"Statement": []})


# ---- end to end through the diagnosis ---------------------------------------------------------
def root_policy(account: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}]}


def admin_only_policy(account: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:role/KeyAdmin"},
         "Action": "kms:*", "Resource": "*"}]}


def deny_all_policy(account: str) -> dict:
    policy = root_policy(account)
    policy["Statement"].append({"Sid": "NoGrants", "Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant",
                                "Resource": "*"})
    return policy


SCENARIOS = {
    # name: (key account, key policy, key state, manager, principal exists, embeds the principal)
    "not-in-key-policy": (HERE, admin_only_policy, "Enabled", "CUSTOMER", True, True),
    "identity-policy": (HERE, root_policy, "Enabled", "CUSTOMER", True, True),
    "foreign-key": (OWNER, None, "Enabled", "CUSTOMER", True, True),
    "foreign-slr": (OWNER, None, "Enabled", "CUSTOMER", True, True),
    "explicit-deny": (HERE, deny_all_policy, "Enabled", "CUSTOMER", True, False),
    "disabled": (HERE, root_policy, "Disabled", "CUSTOMER", True, False),
    "pending-deletion": (HERE, root_policy, "PendingDeletion", "CUSTOMER", True, False),
    "pending-import": (HERE, root_policy, "PendingImport", "CUSTOMER", True, False),
    "aws-managed-foreign": (OWNER, None, "Enabled", "AWS", True, False),
    "slr-missing": (HERE, root_policy, "Enabled", "CUSTOMER", False, True),
}
resources = st.one_of(st.none(), st.sampled_from(["snap-0123456789abcdef0", "ami-0123456789abcdef0"]),
                      st.tuples(st.sampled_from(["snap-", "ami-", "vol-", ""]), segments).map("".join))


def _situation(principal: str, key_arn: str, scenario: str, resource: str | None) -> Situation:
    account, policy, state, manager, exists, _ = SCENARIOS[scenario]
    parsed = parse_arn(key_arn)
    key = KeyFacts(key_arn, account, parsed.region, state=state, manager=manager,
                   policy=policy(account) if policy else None, grants=())
    incident = Incident(Trigger.KMS_ACCESS_DENIED, "evt-1", "aws.kms", "AWS API Call via CloudTrail", HERE,
                        "us-east-1", action="kms:CreateGrant")
    holder = iam_arn_for_session(principal)
    kind = "service-linked-role" if "aws-service-role" in holder else holder.split(":")[5].split("/")[0]
    facts = PrincipalFacts(holder, kind, HERE, exists=exists, identity_policies=())
    need = AccessNeed(principal, key_arn, OPS, dict(EBS_CONTEXT), resource=resource)
    return Situation(incident, needs=[need], keys={key_arn: key}, principals={principal: facts})


def _expect_refusal(scenario: str, principal_ok: bool, key_ok: bool, region_ok: bool, resource: str | None) -> bool:
    if scenario == "aws-managed-foreign":  # the CLI names the Region and the source only
        bad_source = resource is not None and (
            (resource.startswith("snap-") and not (len(resource) in (13, 22) and all(c in HEX for c in resource[5:])))
            or (resource.startswith("ami-") and not (len(resource) in (12, 21) and all(c in HEX for c in resource[4:]))))
        return not region_ok or bad_source
    # The key's own state decides before the principal is looked at; past that, a principal
    # name AWS would never accept ends the diagnosis (diagnose._diagnose_need_model).
    key_decides = scenario in ("disabled", "pending-deletion", "pending-import")
    return not key_ok or (not principal_ok and not key_decides)


def _check_finding(shell: StubShell, finding, expect_refusal: bool, region: str, resource: str | None,
                   outcomes: Counter) -> None:
    if expect_refusal:
        assert finding.cause == Cause.UNDETERMINED and finding.fixes == [], finding
        outcomes["refused"] += 1
        outcomes["refused with the invalid-name finding"] += REFUSAL in finding.explanation
        return
    assert REFUSAL not in finding.explanation, finding.explanation
    if finding.cause == Cause.UNDETERMINED:
        assert finding.fixes == []
        outcomes["undetermined for another reason"] += 1
        return
    for fix in finding.fixes:
        if fix.kind == FixKind.RE_ENCRYPT:
            outcomes["lines run"] += run_lines(shell, fix.cli, intended_re_encrypt(region, resource))
        else:
            outcomes["lines run"] += run_fix(shell, fix)
        outcomes[f"ran {fix.kind}"] += 1
    outcomes["built"] += 1


def test_diagnosis_refuses_or_proposes_only_lines_that_run_as_meant(shell):
    outcomes: Counter[str] = Counter()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(sorted(SCENARIOS)), principals(), st.data(), resources)
    def check(scenario, principal_ok, data, resource):
        principal, principal_valid = principal_ok
        if ":assumed-role/" in principal:  # the diagnosis checks the whole ARN, session name too (2-64)
            principal_valid = principal_valid and ok_name(principal.rsplit("/", 1)[-1], low=2)
        if scenario == "slr-missing":  # only a service-linked role can be missing
            suffix = data.draw(hostile_names).replace("/", "") or "x"
            principal = f"arn:aws:iam::{HERE}:role{SLR_PATH}{SLR_NAME}_{suffix}"
            principal_valid = ok_name(f"{SLR_NAME}_{suffix}")
        elif scenario == "foreign-slr":  # the cross-account grant is made for service-linked roles only
            suffix = data.draw(st.one_of(valid_names, hostile_names)).replace("/", "") or "x"
            principal = f"arn:aws:iam::{HERE}:role{SLR_PATH}{SLR_NAME}_{suffix}"
            principal_valid = ok_name(f"{SLR_NAME}_{suffix}")
        key_arn, key_valid = data.draw(keys(SCENARIOS[scenario][0]))
        region = parse_arn(key_arn).region
        findings = diagnose(_situation(principal, key_arn, scenario, resource))
        assert len(findings) == 1
        expect = _expect_refusal(scenario, principal_valid, key_valid, ok_region(region), resource)
        _check_finding(shell, findings[0], expect, region, resource, outcomes)
        outcomes[f"scenario {scenario}"] += 1

    check()
    print(f"diagnosis end to end: {dict(sorted(outcomes.items()))}")
    assert outcomes["refused"] >= 40 and outcomes["built"] >= 60 and outcomes["lines run"] >= 100
    assert outcomes["refused with the invalid-name finding"] >= 30
    for kind in (FixKind.KEY_POLICY_STATEMENT, FixKind.GRANT, FixKind.IDENTITY_POLICY, FixKind.KEY_STATE,
                 FixKind.RE_ENCRYPT, FixKind.CREATE_SERVICE_LINKED_ROLE):
        assert outcomes[f"ran {kind}"] >= 3, kind


@pytest.mark.parametrize("principal", [
    f"arn:aws:iam::{HERE}:user/x;touch${{IFS}}PWNED;#",
    f"arn:aws:iam::{HERE}:role{SLR_PATH}{SLR_NAME}_$(touch${{IFS}}PWNED)",
    f"arn:aws:sts::{HERE}:assumed-role/{SLR_NAME}_$(touch${{IFS}}PWNED)/AutoScaling",
])
@pytest.mark.parametrize("scenario", ["not-in-key-policy", "identity-policy", "foreign-key"])
def test_the_issue_examples_end_in_an_undetermined_finding_with_no_fix(principal, scenario):
    account = SCENARIOS[scenario][0]
    key_arn = f"arn:aws:kms:us-east-1:{account}:key/{KEY_ID}"
    (finding,) = diagnose(_situation(principal, key_arn, scenario, None))
    assert (finding.cause, finding.fixes) == (Cause.UNDETERMINED, [])
    # The diagnosis checks the principal before any model or fix sees it, so the refusal says why.
    assert REFUSAL in finding.explanation and "name" in finding.explanation


def test_plan_builders_raise_invalid_name_for_a_hostile_key():
    hostile = f"arn:aws:kms:us-east-1:{HERE}:key/$(touch${{IFS}}PWNED)"
    key = KeyFacts(hostile, HERE, "us-east-1", state="Disabled", manager="CUSTOMER", policy=root_policy(HERE))
    with pytest.raises(InvalidName):
        plan.key_state_fix(key)
    managed = KeyFacts(f"arn:aws:kms:us-east-1;id:{OWNER}:key/{KEY_ID}", OWNER, "us-east-1;id", state="Enabled",
                       manager="AWS")
    with pytest.raises(InvalidName, match="Region"):
        plan.re_encrypt_fix(managed, "snap-0123456789abcdef0")


# ---- quoting in general, and readability ------------------------------------------------------
any_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=24)


def test_command_passes_any_text_as_exactly_one_argument(shell):
    ran: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.one_of(any_text, segments.filter(lambda s: "\x00" not in s)), min_size=1, max_size=4))
    def check(args):
        ran["lines"] += run_lines(shell, [docs.command("aws", *args)], [["aws", *args]])

    check()
    assert ran["lines"] >= 100


def test_safe_values_stay_unquoted_so_lines_read_as_usual():
    slr = f"arn:aws:iam::{HERE}:role{SLR_PATH}{SLR_NAME}"
    lines = docs.cli_add_key_policy_statements(KEY, docs.key_policy_statements(slr, ["kms:Decrypt"], []))
    assert lines[0] == (f"aws kms get-key-policy --region us-east-1 --key-id {KEY} --policy-name default "
                        "--query Policy --output text > keyfix-policy.json")
    assert lines[1].startswith("jq --argjson add '[{") and \
        lines[1].endswith("}]' '.Statement += $add' keyfix-policy.json > keyfix-policy.new.json")
    assert lines[2] == (f"aws kms put-key-policy --region us-east-1 --key-id {KEY} --policy-name default "
                        "--policy file://keyfix-policy.new.json")
    (grant,) = docs.cli_create_grant(docs.grant_parameters(KEY, slr, ["Decrypt", "CreateGrant"]))
    assert grant.startswith(f"aws kms create-grant --region us-east-1 --key-id {KEY} --grantee-principal {slr} "
                            "--operations Decrypt CreateGrant --name keyfix-AWSServiceRoleForAutoScaling-")
