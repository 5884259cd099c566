"""Facts about a differential case, and views: rewrites of a case for one engine.

A case is a `keyfix simulate` document (see strategies.py). The facts recognise the
shape of a disagreement class; the views remove one difference from a case, so that the
two engines can be compared on what is left (known_differences.py explains the method).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable


ALLOWED = "Allowed"
IMPLICIT = "ImplicitlyDenied"
EXPLICIT = "ExplicitlyDenied"

A = "111122223333"  # key account in the examples
B = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"
V = "2012-10-17"

_ROOT = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):root$")
_ASSUMED = re.compile(r"^arn:aws[\w-]*:sts::(\d{12}):assumed-role/([^/]+)/([^/]+)$")
_FEDERATED = re.compile(r"^arn:aws[\w-]*:sts::(\d{12}):federated-user/(.+)$")
_ROLE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(.*/)?([^/]+)$")

# The operations AWS KMS allows on a key in another account: the "Cross-account use"
# column of https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html
# ("Allowing users in other accounts to use a KMS key",
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
CROSS_ACCOUNT_OPERATIONS = frozenset(
    name.lower()
    for name in (
        "CreateGrant", "Decrypt", "Decapsulate", "DeriveSharedSecret", "DescribeKey", "Encapsulate",
        "Encrypt", "GenerateDataKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext", "GenerateMac", "GetKeyRotationStatus", "GetPublicKey",
        "ListGrants", "ReEncryptFrom", "ReEncryptTo", "RetireGrant", "RevokeGrant", "Sign",
        "Verify", "VerifyMac",
    )
)


# --- facts about a case ---------------------------------------------------------------


def principal(case: dict) -> str:
    return case["request"]["principal"]


def principal_account(case: dict) -> str | None:
    p = principal(case)
    if not p.startswith("arn:"):
        return None
    return p.split(":")[4] or None


def resource_account(case: dict) -> str:
    req = case["request"]
    return req.get("resource_account") or req["resource"].split(":")[4]


def is_root_user(case: dict) -> bool:
    return bool(_ROOT.match(principal(case)))


def is_service_principal(case: dict) -> bool:
    p = principal(case)
    return not p.startswith("arn:") and p.endswith(".amazonaws.com")


def is_service_linked_role(case: dict) -> bool:
    """A service-linked role or a session of one.

    SLRs live under the path aws-service-role/ and are named AWSServiceRoleFor...
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html);
    a session ARN carries no path, so a session is told by the role name.
    """
    p = principal(case)
    m = _ROLE.match(p)
    if m:
        return (m.group(2) or "").startswith("aws-service-role/")
    m = _ASSUMED.match(p)
    return bool(m) and m.group(2).startswith("AWSServiceRoleFor")


def is_cross_account(case: dict) -> bool:
    acct = principal_account(case)
    return acct is not None and acct != resource_account(case)


def action_name(case: dict) -> str:
    return case["request"]["action"].split(":", 1)[1].lower()


def _statements(policy: dict | None) -> list[dict]:
    if not policy:
        return []
    s = policy.get("Statement", [])
    return [s] if isinstance(s, dict) else list(s)


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def key_policy_allows_everyone(case: dict) -> bool:
    """Some key-policy Allow statement names "*" (or {"AWS": "*"})."""
    for s in _statements(case.get("resource_policy")):
        if s.get("Effect") != "Allow" or "Principal" not in s:
            continue
        p = s["Principal"]
        if p == "*" or (isinstance(p, dict) and "*" in _as_list(p.get("AWS", []))):
            return True
    return False


def key_policy_names_session(case: dict) -> bool:
    """Some key-policy Allow statement names the caller's session ARN itself (an
    assumed-role session or a federated user session)."""
    p = principal(case)
    if not (_ASSUMED.match(p) or _FEDERATED.match(p)):
        return False
    for s in _statements(case.get("resource_policy")):
        if s.get("Effect") != "Allow" or not isinstance(s.get("Principal"), dict):
            continue
        if p in _as_list(s["Principal"].get("AWS", [])):
            return True
    return False


_VARIABLE = re.compile(r"\$\{[^}]*\}")


def is_federated_user(case: dict) -> bool:
    return bool(_FEDERATED.match(principal(case)))


def _all_policies(case: dict):
    """Every policy document of the case (mutable references)."""
    for k in ("resource_policy", "session_policy"):
        if case.get(k):
            yield case[k]
    for k in ("identity_policies", "permission_boundaries"):
        yield from case.get(k) or []
    for k in ("scps", "rcps"):
        for level in case.get(k) or []:
            yield from level


def _arn_prefix(text: str) -> tuple[str, str] | None:
    """(partition/service/region/account part, rest) of an ARN pattern whose first
    part holds a ${...}; variables may themselves contain colons."""
    if not text.startswith("arn:"):
        return None
    i, colons = 0, 0
    while i < len(text) and colons < 5:
        if text.startswith("${", i):
            i = text.find("}", i) + 1 or len(text)
            continue
        colons += text[i] == ":"
        i += 1
    head, rest = text[:i], text[i:]
    return (head, rest) if "${" in head else None


def _arn_prefix_has_variable(text: str) -> bool:
    return _arn_prefix(text) is not None


def federating_user_arn(case: dict) -> str | None:
    """For a federated user session, the ARN of the IAM user who called GetFederationToken
    (path unknown: the plain user/NAME form)."""
    m = _FEDERATED.match(principal(case))
    return f"arn:aws:iam::{m.group(1)}:user/{m.group(2)}" if m else None


def _arn_condition_values(policy: dict):
    """(statement, operator, key) of ARN-operator conditions in a 2012-10-17 policy."""
    if policy.get("Version") != V:
        return
    for s in _statements(policy):
        for op, keys in (s.get("Condition") or {}).items():
            if op.split(":")[-1].lower().startswith("arn"):
                for key in keys:
                    yield s, op, key


def variable_in_arn_condition_prefix(case: dict) -> bool:
    for policy in _all_policies(case):
        for s, op, key in _arn_condition_values(policy):
            if any(isinstance(v, str) and _arn_prefix_has_variable(v) for v in _as_list(s["Condition"][op][key])):
                return True
    return False


def old_version_policy_with_variable(case: dict) -> bool:
    return any(p.get("Version") != V and "${" in json.dumps(p) for p in _all_policies(case))


def session_issuer_arn(case: dict) -> str | None:
    """What a session is named through: the role of a role session (aws:PrincipalArn when
    the case gives it, as it carries the role's path) or of a role caller, the IAM user who
    federated a federated user session; None for other callers."""
    p = principal(case)
    if _ROLE.match(p):
        return p
    m = _ASSUMED.match(p)
    if m:
        given = (case["request"].get("context") or {}).get("aws:PrincipalArn")
        return given if isinstance(given, str) else f"arn:aws:iam::{m.group(1)}:role/{m.group(2)}"
    return federating_user_arn(case)


# --- views ------------------------------------------------------------------------------


def _copy(case: dict) -> dict:
    return copy.deepcopy(case)


def without(*keys: str) -> Callable[[dict], dict]:
    def view(case: dict) -> dict:
        out = _copy(case)
        for k in keys:
            out.pop(k, None)
        return out

    view.__name__ = f"without_{'_'.join(keys)}"
    return view


def root_user_full_identity(case: dict) -> dict:
    """The root user's implicit permissions, written as the identity policy it cannot have."""
    out = _copy(case)
    out["identity_policies"] = [*out.get("identity_policies", []), {"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    return out


def key_policy_denies_only(case: dict) -> dict:
    """Nothing in the key policy can allow (the operation is not available across accounts)."""
    out = _copy(case)
    denies = [s for s in _statements(out.get("resource_policy")) if s.get("Effect") == "Deny"]
    if denies:
        out["resource_policy"] = {"Version": V, "Statement": denies}
    else:
        out.pop("resource_policy", None)
    out.pop("grants", None)
    return out


def session_policy_unlimited(case: dict) -> dict:
    """Keep the session policy's Deny statements, lift its implicit deny."""
    out = _copy(case)
    denies = [s for s in _statements(out.get("session_policy")) if s.get("Effect") == "Deny"]
    out["session_policy"] = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, *denies]}
    return out



def resolve_arn_condition_prefix_variables(case: dict) -> dict:
    """Substitute ${aws:PrincipalAccount} in ARN-operator condition values before the fifth
    colon, which iam-simulate cannot (it splits the ARN before resolving variables)."""
    out = _copy(case)
    account = (out["request"].get("context") or {}).get("aws:PrincipalAccount") or principal_account(out) or ""

    def fix(text):
        split = _arn_prefix(text) if isinstance(text, str) else None
        if split is None:
            return text
        head, rest = split
        return re.sub(r"\$\{aws:PrincipalAccount\}", account, head, flags=re.IGNORECASE) + rest

    for policy in _all_policies(out):
        for s, op, key in list(_arn_condition_values(policy)):
            value = s["Condition"][op][key]
            s["Condition"][op][key] = [fix(v) for v in value] if isinstance(value, list) else fix(value)
    return out


def literal_variables_in_old_policies(case: dict) -> dict:
    """In a policy without "Version": "2012-10-17", ${...} is text: make it text iam-simulate
    cannot resolve either (no request value contains it, so matching is unchanged)."""
    out = _copy(case)

    def walk(value):
        if isinstance(value, str):
            return _VARIABLE.sub("LITERAL-VARIABLE-TEXT", value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    for policy in list(_all_policies(out)):
        if policy.get("Version") != V and "${" in json.dumps(policy):
            policy["Statement"] = walk(policy["Statement"])
    return out



_NOTHING = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::no-such-bucket/none"}]}


def empty_session_policy(case: dict) -> dict:
    """What GetFederationToken without a policy amounts to: a session policy allowing nothing."""
    out = _copy(case)
    out["session_policy"] = _NOTHING
    return out


def wildcard_allows_name_the_session_issuer(case: dict) -> dict:
    """Key-policy Allow statements naming "*" name the caller's role (or the IAM user who
    federated it) instead: for a session, "*" counts as naming what the session is named
    through, not the session itself (keyfix's reading; see known_differences.py)."""
    out = _copy(case)
    issuer = session_issuer_arn(out)
    for s in _statements(out.get("resource_policy")):
        p = s.get("Principal")
        if s.get("Effect") != "Allow" or p is None:
            continue
        if p == "*":
            s["Principal"] = {"AWS": issuer}
        elif isinstance(p, dict) and "*" in _as_list(p.get("AWS", [])):
            s["Principal"] = {**p, "AWS": [issuer if a == "*" else a for a in _as_list(p["AWS"])]}
    return out
