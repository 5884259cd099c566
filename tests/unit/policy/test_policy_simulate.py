"""`keyfix simulate`: input validation, JSON output, text rendering, exit codes."""

import copy
import io
import json

import pytest
from kms_policy_fixtures import KEY_ACCOUNT, OTHER_ACCOUNT, a2_external_statements, enable_iam, policy_doc, slr

from keyfix.policy import PolicyError
from keyfix.policy.simulate import decide, load, render_text, run

KEY = f"arn:aws:kms:us-east-1:{OTHER_ACCOUNT}:key/1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"

# The example document of the contract (docs/contract.md, `keyfix simulate`).
CONTRACT_EXAMPLE = {
    "request": {
        "principal": f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        "action": "kms:CreateGrant",
        "resource": KEY,
        "resource_account": OTHER_ACCOUNT,
        "context": {"kms:GrantIsForAWSResource": "true", "kms:ViaService": "ec2.us-east-1.amazonaws.com"},
    },
    "resource_policy": {"Version": "2012-10-17", "Statement": []},
    "identity_policies": [],
    "permission_boundaries": [],
    "scps": [[], []],
    "rcps": [],
    "session_policy": None,
    "grants": [
        {
            "GrantId": "g-1",
            "GranteePrincipal": slr(KEY_ACCOUNT),
            "Operations": ["Decrypt", "CreateGrant"],
            "Constraints": None,
        }
    ],
}


def test_contract_example_is_allowed_by_its_grant():
    assert decide(CONTRACT_EXAMPLE) == {
        "schema": "keyfix.decision/1",
        "decision": "Allowed",
        "decisive": [{"policy": "grants[0]", "grant_id": "g-1"}],
        "missing": [],
    }


def test_without_the_grant_the_contract_example_is_missing_a_grant():
    doc = {**CONTRACT_EXAMPLE, "grants": []}
    out = decide(doc)
    assert (out["decision"], out["missing"]) == ("ImplicitlyDenied", ["grant"])


def test_absent_layers_mean_none_in_force():
    request, policies = load({"request": CONTRACT_EXAMPLE["request"]})
    assert policies.resource_policy is None and policies.scps is None and policies.rcps is None
    assert policies.grants == () and policies.identity_policies == ()
    assert request.resource_account == OTHER_ACCOUNT


def test_load_keeps_policy_names_for_refs():
    doc = copy.deepcopy(CONTRACT_EXAMPLE)
    doc["scps"] = [[policy_doc({"Effect": "Allow", "Action": "*", "Resource": "*"})]]
    doc["identity_policies"] = [policy_doc(), policy_doc()]
    _, policies = load(doc)
    assert [p.name for p in policies.identity_policies] == ["identity_policies[0]", "identity_policies[1]"]
    assert policies.scps[0][0].name == "scps[0][0]"
    assert policies.grants[0].ref == "grants[0]"


@pytest.mark.parametrize(
    "mutate, place",
    [
        (lambda d: d.pop("request"), "request"),
        (lambda d: d["request"].pop("action"), "request.action"),
        (lambda d: d["request"].update(principal=7), "request.principal"),
        (lambda d: d["request"].update(resource_account="4444"), "request.resource_account"),
        (lambda d: d["request"].update(context={"kms:ViaService": 3}), "request.context.kms:ViaService"),
        (lambda d: d["request"].update(action="kms:Frobnicate"), "request.action"),
        (
            lambda d: d["request"].update(resource="*", resource_account=None) or d["request"].pop("resource_account"),
            "request.resource_account",
        ),
        (lambda d: d.update(resource_policy=[]), "resource_policy"),
        (lambda d: d.update(identity_policies={}), "identity_policies"),
        (
            lambda d: d.update(identity_policies=[{"Statement": [{"Effect": "Permit"}]}]),
            "identity_policies[0].Statement[0].Effect",
        ),
        (lambda d: d.update(scps=[{}]), "scps[0]"),
        (lambda d: d.update(scps=[[{"Statement": []}, 3]]), "scps[0][1]"),
        (
            lambda d: d.update(rcps=[[{"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}]]),
            "rcps[0][0].Statement[0].Principal",
        ),
        (lambda d: d.update(grants=[{"GranteePrincipal": slr(KEY_ACCOUNT)}]), "grants[0].Operations"),
        (
            lambda d: d.update(grants=[{"GranteePrincipal": slr(KEY_ACCOUNT), "Operations": ["Fly"]}]),
            "grants[0].Operations[0]",
        ),
        (
            lambda d: d.update(
                session_policy={
                    "Statement": {
                        "Effect": "Allow",
                        "Action": "kms:*",
                        "Resource": "*",
                        "Condition": {"StringLikeNot": {"a:b": "c"}},
                    }
                }
            ),
            "session_policy.Statement.Condition.StringLikeNot",
        ),
    ],
)
def test_invalid_documents_name_the_place(mutate, place):
    doc = copy.deepcopy(CONTRACT_EXAMPLE)
    mutate(doc)
    with pytest.raises(PolicyError) as err:
        load(doc)
    assert err.value.place == place


def _run(tmp_path, content, fmt="json"):
    path = tmp_path / "case.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    out, err = io.StringIO(), io.StringIO()
    code = run(str(path), fmt, out, err)
    return code, out.getvalue(), err.getvalue()


def test_run_prints_one_json_object_and_exits_0_whatever_the_decision(tmp_path):
    code, out, err = _run(tmp_path, {**CONTRACT_EXAMPLE, "grants": []})
    assert code == 0 and err == ""
    assert json.loads(out)["decision"] == "ImplicitlyDenied"


def test_run_text_format(tmp_path):
    code, out, _ = _run(tmp_path, CONTRACT_EXAMPLE, "text")
    assert code == 0
    assert "Decision: Allowed" in out and "grants[0] (grant g-1)" in out


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{not json", "not valid JSON at line 1"),
        ({"request": {"principal": "x"}}, "request.action"),
        ({**CONTRACT_EXAMPLE, "resource_policy": {"Statement": [{"Effect": "Allow"}]}}, "resource_policy.Statement[0]"),
    ],
)
def test_run_exits_2_on_invalid_input_naming_the_place(tmp_path, content, needle):
    code, out, err = _run(tmp_path, content)
    assert code == 2 and out == ""
    assert needle in err


def test_run_exits_2_on_unreadable_file(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert run(str(tmp_path / "missing.json"), "json", out, err) == 2
    assert "cannot read" in err.getvalue()


def test_render_text_lists_missing_layers():
    doc = {
        "request": {"principal": f"arn:aws:iam::{KEY_ACCOUNT}:user/dev", "action": "kms:Decrypt", "resource": KEY},
        "resource_policy": policy_doc(enable_iam(OTHER_ACCOUNT), *a2_external_statements(KEY_ACCOUNT)),
    }
    from keyfix.policy import evaluate

    request, policies = load(doc)
    text = render_text(evaluate(request, policies), request)
    assert "Missing:  identity_policy" in text
    assert "Decision: ImplicitlyDenied" in text
