"""What keyfix could write, read back before and after it runs, so the demo can say exactly
which AWS writes happened (and that `propose` made none): key policies, grants and key
states in every account of the demo, identity policies of every role and user.
"""

from __future__ import annotations

import json
from typing import Any

from keyfix.sim.scenarios import ASG_ACCOUNT, KEY_ACCOUNT, Env

ACCOUNTS = (ASG_ACCOUNT, KEY_ACCOUNT)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _keys(env: Env, account: str) -> dict[str, str]:
    kms = env.client("kms", account)
    out = {}
    for entry in kms.list_keys()["Keys"]:
        arn = entry["KeyArn"]
        meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
        policy = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
        grants = [{k: g.get(k) for k in ("GranteePrincipal", "Operations", "Constraints", "Name")}
                  for g in kms.list_grants(KeyId=arn)["Grants"]]
        out[f"key policy of {arn}"] = _canon(policy)
        out[f"grants on {arn}"] = _canon(sorted(grants, key=_canon))
        out[f"state of {arn}"] = meta["KeyState"]
    return out


def _identities(env: Env, account: str) -> dict[str, str]:
    iam = env.client("iam", account)
    out = {}
    for kind, lister, key in (("role", iam.list_roles, "Roles"), ("user", iam.list_users, "Users")):
        for entity in lister()[key]:
            name = entity[f"{kind.capitalize()}Name"]
            arg = {f"{kind.capitalize()}Name": name}
            get_inline = iam.get_role_policy if kind == "role" else iam.get_user_policy
            list_inline = iam.list_role_policies if kind == "role" else iam.list_user_policies
            list_attached = iam.list_attached_role_policies if kind == "role" else iam.list_attached_user_policies
            inline = {p: get_inline(PolicyName=p, **arg)["PolicyDocument"] for p in list_inline(**arg)["PolicyNames"]}
            attached = sorted(p["PolicyArn"] for p in list_attached(**arg)["AttachedPolicies"])
            out[f"identity policies of {entity['Arn']}"] = _canon({"inline": inline, "attached": attached})
    return out


def snapshot(env: Env) -> dict[str, str]:
    state: dict[str, str] = {}
    for account in ACCOUNTS:
        state.update(_keys(env, account))
        state.update(_identities(env, account))
    return state


def writes_between(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed, one line per thing: "key policy of arn:...", "grants on arn:..."."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
