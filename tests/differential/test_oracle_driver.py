"""The oracle driver's translation of keyfix simulate documents (no keyfix involved).

These pin what tests/oracle/oracle.mjs does on top of iam-simulate, so that a
disagreement in the differential run is about the engines, not the plumbing.
"""

from __future__ import annotations

import json
import subprocess

from tests.differential.conftest import BENCH_DRIVER, DRIVER, ORACLE_DIR

V = "2012-10-17"
A, B = "111122223333", "444455556666"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"
USER = f"arn:aws:iam::{A}:user/alice"
ROOT_DELEGATION = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}


def policy(*statements):
    return {"Version": V, "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def doc(principal=USER, action="kms:Decrypt", resource=KEY, context=None, **rest):
    request = {"principal": principal, "action": action, "resource": resource}
    if context:
        request["context"] = context
    return {"request": request, **rest}


def test_same_account_user_allowed_through_root_delegation(oracle):
    r = oracle.one(doc(resource_policy=policy(ROOT_DELEGATION), identity_policies=[policy(allow("kms:Decrypt"))]))
    assert (r["decision"], r["error"], r["runs"]) == ("Allowed", None, 1)


def test_kms_key_policy_is_required(oracle):
    """iam-simulate knows KMS's rule: without a key policy statement for the account
    (or the principal) an identity policy alone allows nothing."""
    no_delegation = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/bob"}, "Action": "kms:*", "Resource": "*"})
    r = oracle.one(doc(resource_policy=no_delegation, identity_policies=[policy(allow("kms:*"))]))
    assert r["decision"] == "ImplicitlyDenied"
    assert oracle.one(doc(identity_policies=[policy(allow("kms:*"))]))["decision"] == "ImplicitlyDenied"


def test_every_permission_boundary_must_allow(oracle):
    base = dict(resource_policy=policy(ROOT_DELEGATION), identity_policies=[policy(allow("kms:*"))])
    decrypt_only, encrypt_only = policy(allow("kms:Decrypt")), policy(allow("kms:Encrypt"))
    one = oracle.one(doc(permission_boundaries=[decrypt_only], **base))
    both = oracle.one(doc(permission_boundaries=[decrypt_only, encrypt_only], **base))
    assert (one["decision"], one["runs"]) == ("Allowed", 1)
    assert (both["decision"], both["runs"]) == ("ImplicitlyDenied", 2)


def test_scp_levels_each_must_allow_and_empty_level_allows_nothing(oracle):
    base = dict(resource_policy=policy(ROOT_DELEGATION), identity_policies=[policy(allow("kms:*"))])
    full = policy(allow("*"))
    assert oracle.one(doc(scps=[[full], [full]], **base))["decision"] == "Allowed"
    assert oracle.one(doc(scps=[[full], []], **base))["decision"] == "ImplicitlyDenied"
    assert oracle.one(doc(scps=[[full], [policy(allow("s3:*"))]], **base))["decision"] == "ImplicitlyDenied"


def test_rcp_full_access_is_implied_and_required(oracle):
    base = dict(resource_policy=policy(ROOT_DELEGATION), identity_policies=[policy(allow("kms:*"))])
    full = policy({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"})
    assert oracle.one(doc(rcps=[[full]], **base))["decision"] == "Allowed"
    assert oracle.one(doc(rcps=[[full, deny]], **base))["decision"] == "ExplicitlyDenied"
    r = oracle.one(doc(rcps=[[deny]], **base))
    assert r["decision"] is None and "RCPFullAWSAccess" in r["error"]


def test_implied_context_keys_are_derived_from_the_principal(oracle):
    session = f"arn:aws:sts::{B}:assumed-role/AppRole/s1"
    key_policy = policy(
        ROOT_DELEGATION,
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{B}:role/AppRole"}, "StringEquals": {"kms:CallerAccount": B, "aws:PrincipalAccount": B}},
        },
    )
    identity = [policy(allow("kms:Decrypt"))]
    assert oracle.one(doc(principal=session, resource_policy=key_policy, identity_policies=identity))["decision"] == "Allowed"
    # A given value wins over the derived one.
    given = {"aws:PrincipalArn": f"arn:aws:iam::{B}:role/path/AppRole"}
    r = oracle.one(doc(principal=session, context=given, resource_policy=key_policy, identity_policies=identity))
    assert r["decision"] == "ImplicitlyDenied"


def test_context_keys_aws_does_not_send_are_reported(oracle):
    r = oracle.one(doc(context={"kms:GrantIsForAWSResource": "true", "kms:ViaService": "ec2.us-east-1.amazonaws.com"}, resource_policy=policy(ROOT_DELEGATION)))
    assert r["ignored_context_keys"] == ["kms:GrantIsForAWSResource"]


def test_grants_are_reported_as_unsupported(oracle):
    grant = {"GranteePrincipal": USER, "Operations": ["Decrypt"]}
    r = oracle.one(doc(resource_policy=policy(ROOT_DELEGATION), grants=[grant]))
    assert (r["decision"], r["unsupported"]) == ("ImplicitlyDenied", ["grants"])


def test_driver_answers_every_line_in_order_even_bad_ones(oracle_installed, node_toolchain):
    lines = [json.dumps({"id": "a", "doc": doc()}), "{not json", json.dumps(doc(action="kms:NoSuchAction"))]
    proc = subprocess.run([node_toolchain["node"], str(DRIVER)], input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ORACLE_DIR, timeout=120)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and [o["id"] for o in out] == ["a", 2, 3]
    assert out[0]["decision"] == "ImplicitlyDenied"
    assert out[1]["decision"] is None and out[1]["error"].startswith("invalid JSON line")
    assert out[2]["decision"] is None and out[2]["error"] == "invalid.action"


def test_bench_driver_times_evaluations(oracle_installed, node_toolchain, tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(d) for d in (doc(resource_policy=policy(ROOT_DELEGATION)), doc(action="kms:Encrypt"))) + "\n")
    proc = subprocess.run([node_toolchain["node"], str(BENCH_DRIVER), str(cases), "-n", "40", "--warmup", "5"], capture_output=True, text=True, cwd=ORACLE_DIR, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["engine"], report["cases"], report["evaluations"], report["errors"]) == ("iam-simulate", 2, 40, 0)
    assert report["decisions"] == {"ImplicitlyDenied": 40}
    assert report["seconds"] > 0 and report["per_eval_us"] > 0


def test_missing_node_skips_locally_and_fails_under_ci():
    import pytest

    from tests.differential.conftest import find_toolchain

    def nothing(_name):
        return None

    with pytest.raises(pytest.skip.Exception, match="node and npm not found"):
        find_toolchain(nothing, {})
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        find_toolchain(nothing, {"CI": "true"})
    only_node = {"node": "/usr/bin/node"}.get
    with pytest.raises(pytest.fail.Exception, match="npm not found"):
        find_toolchain(only_node, {"CI": "true"})
    assert find_toolchain(lambda name: f"/usr/bin/{name}", {"CI": "true"}) == {"node": "/usr/bin/node", "npm": "/usr/bin/npm"}
