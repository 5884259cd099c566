"""Where keyfix and the iam-simulate oracle disagree, and who is right.

Every disagreement the differential test meets must be explained by an entry here.
An entry is not a free pass: it names the AWS documentation that decides the
question, recognises its cases structurally (`applies`), lists the (keyfix, oracle)
decision pairs it can produce, and *removes* the difference from one side (a
`view`): the explanation only holds when, after the rewrite, the two engines agree
exactly. A disagreement with any other cause therefore stays unexplained.

- `oracle_view` rewrites the case so that iam-simulate is asked what AWS would
  really decide (e.g. drop the SCPs for a service-linked role, which SCPs do not
  affect); keyfix(case) must then equal oracle(oracle_view(case)).
- `keyfix_view` removes from the case what iam-simulate cannot model (grants);
  keyfix(keyfix_view(case)) must then equal oracle(case).
- For KEYFIX_BUGS the oracle_view does the opposite: it makes iam-simulate read the
  case the way keyfix (wrongly) does, so that agreement pins the cause.

KNOWN_DIFFERENCES are the cases where keyfix is right (documented, intended).
UNDECIDED are disagreements the documentation does not settle; they are isolated and
counted like the others, and listed for the policy author to decide.
KEYFIX_BUGS are disagreements where the documentation says iam-simulate is right and
keyfix is wrong; they fail the differential run until fixed, and each has a
strict-xfail test (test_known_differences.py) that turns red once keyfix is fixed.
REGRESSIONS are keyfix bugs this harness found that have since been fixed; their
examples are kept as tests.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

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


def key_policy_names_federating_user(case: dict) -> bool:
    user = federating_user_arn(case)
    if user is None:
        return False
    for s in _statements(case.get("resource_policy")):
        p = s.get("Principal")
        if isinstance(p, dict) and user in _as_list(p.get("AWS", [])):
            return True
    return False


# Actions whose request context has no kms:CallerAccount: neither KMS key resource
# operations nor custom key store operations (conditions-kms.html#conditions-kms-caller-account),
# and the Service Authorization Reference lists no condition key for them.
NO_CALLER_ACCOUNT_ACTIONS = frozenset({"listkeys", "listaliases", "listretirablegrants", "generaterandom"})


def mentions_key(case: dict, key: str) -> bool:
    key = key.lower()
    for policy in _all_policies(case):
        for s in _statements(policy):
            for keys in (s.get("Condition") or {}).values():
                if any(k.lower() == key for k in keys):
                    return True
    return False


def variable_in_arn_prefix(case: dict) -> bool:
    for policy in _all_policies(case):
        if policy.get("Version") != V:
            continue
        for s in _statements(policy):
            for element in ("Resource", "NotResource"):
                if any(_arn_prefix_has_variable(r) for r in _as_list(s.get(element, []))):
                    return True
    return False


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


def resolve_arn_prefix_variables(case: dict) -> dict:
    """Substitute ${aws:PrincipalAccount} before the fifth colon of Resource ARNs, as keyfix
    does (and AWS does not): lets the oracle reproduce keyfix's reading."""
    out = _copy(case)
    account = (out["request"].get("context") or {}).get("aws:PrincipalAccount") or principal_account(out) or ""

    def fix(text: str) -> str:
        split = _arn_prefix(text)
        if split is None:
            return text
        head, rest = split
        return re.sub(r"\$\{aws:PrincipalAccount\}", account, head, flags=re.IGNORECASE) + rest

    for policy in _all_policies(out):
        if policy.get("Version") != V:
            continue
        for s in _statements(policy):
            for element in ("Resource", "NotResource"):
                if element in s:
                    s[element] = [fix(r) for r in s[element]] if isinstance(s[element], list) else fix(s[element])
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


def without_notprincipal_denies(case: dict) -> dict:
    """The key policy without its NotPrincipal Deny statements (what keyfix evaluates
    when NotPrincipal excludes the caller)."""
    out = _copy(case)
    kept = [s for s in _statements(out.get("resource_policy")) if not (s.get("Effect") == "Deny" and "NotPrincipal" in s)]
    if kept:
        out["resource_policy"] = {"Version": out["resource_policy"].get("Version", V), "Statement": kept}
    else:
        out.pop("resource_policy", None)
    return out


def without_federating_user_principal(case: dict) -> dict:
    """The key policy as keyfix reads it for a federated user session: entries naming the
    IAM user who federated do not cover the session."""
    out = _copy(case)
    user = federating_user_arn(out)
    kept = []
    for s in _statements(out.get("resource_policy")):
        p = s.get("Principal")
        if isinstance(p, dict) and user in _as_list(p.get("AWS", [])):
            rest = [a for a in _as_list(p["AWS"]) if a != user]
            others = {k: v for k, v in p.items() if k != "AWS"}
            if rest:
                others["AWS"] = rest
            if not others:
                continue
            s = {**s, "Principal": others}
        kept.append(s)
    if kept:
        out["resource_policy"] = {"Version": out["resource_policy"].get("Version", V), "Statement": kept}
    else:
        out.pop("resource_policy", None)
    return out


def caller_account_as_principal_account(case: dict) -> dict:
    """Conditions on kms:CallerAccount read as aws:PrincipalAccount (the same value), which
    iam-simulate keeps in the context of every action: reproduces keyfix's reading."""
    out = _copy(case)
    for policy in _all_policies(out):
        for s in _statements(policy):
            for op, keys in (s.get("Condition") or {}).items():
                for k in list(keys):
                    if k.lower() == "kms:calleraccount" and "aws:PrincipalAccount" not in keys:
                        keys["aws:PrincipalAccount"] = keys.pop(k)
    return out


_NOTHING = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::no-such-bucket/none"}]}


def empty_session_policy(case: dict) -> dict:
    """What GetFederationToken without a policy amounts to: a session policy allowing nothing."""
    out = _copy(case)
    out["session_policy"] = _NOTHING
    return out


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    name: str
    docs: tuple[str, ...]
    why: str
    applies: Callable[[dict], bool]
    decisions: frozenset[tuple[str, str]]  # (keyfix, oracle) pairs it explains
    oracle_view: Callable[[dict], dict] | None = None
    keyfix_view: Callable[[dict], dict] | None = None
    # keyfix's decision must cite one of these policies (e.g. "grants[") to be explained
    keyfix_cites: str | None = None
    # A minimal case; the tests check both engines answer `example_decisions` on it.
    example: dict = field(default_factory=dict)
    example_decisions: tuple[str, str] = (ALLOWED, IMPLICIT)

    def relevant(self, case: dict, keyfix: dict) -> bool:
        """The case has this difference's shape (whatever the decisions)."""
        if not self.applies(case):
            return False
        if self.keyfix_cites is not None:
            return any(d.get("policy", "").startswith(self.keyfix_cites) for d in keyfix.get("decisive", []))
        return True

    def admits(self, case: dict, keyfix: dict, oracle_decision: str) -> bool:
        """This difference alone can explain these decisions on this case."""
        return (keyfix["decision"], oracle_decision) in self.decisions and self.relevant(case, keyfix)


def _doc(request: dict, **rest) -> dict:
    return {"request": request, **rest}


_ROOT_DELEGATION = {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}
_SLR_SESSION = f"arn:aws:sts::{A}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
_SLR_ARN = f"arn:aws:iam::{A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
_SLR_KEY_POLICY = {
    "Version": V,
    "Statement": [
        _ROOT_DELEGATION,
        {"Effect": "Allow", "Principal": {"AWS": _SLR_ARN}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
    ],
}
_RCP_FULL = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
_ALL_DECISION_PAIRS = frozenset(
    (k, o) for k in (ALLOWED, IMPLICIT, EXPLICIT) for o in (ALLOWED, IMPLICIT, EXPLICIT) if k != o
)

KNOWN_DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        name="root-user-needs-no-identity-policy",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html",
        ),
        why=(
            "A key policy statement naming the account (arn:aws:iam::A:root) gives the account full "
            "access to the key, its root user included, and enables IAM policies for everyone else. "
            "The root user has no identity policies (none can be attached) and needs none: it has "
            "full access to its account. iam-simulate treats the root ARN like any IAM principal "
            "and demands an identity-policy Allow, which a root user can never have."
        ),
        applies=is_root_user,
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        oracle_view=root_user_full_identity,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:root", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
        ),
    ),
    Difference(
        name="scps-do-not-affect-service-linked-roles",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html",
        ),
        why=(
            "\"SCPs do not affect any service-linked role.\" The Auto Scaling service-linked role "
            "(and its sessions) is not restricted by any SCP, neither by a Deny nor by a level that "
            "allows nothing. iam-simulate applies the SCPs to every principal."
        ),
        applies=lambda c: is_service_linked_role(c) and c.get("scps") is not None,
        decisions=frozenset({(ALLOWED, IMPLICIT), (ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("scps"),
        example=_doc(
            {"principal": _SLR_SESSION, "action": "kms:Decrypt", "resource": KEY, "context": {"aws:PrincipalArn": _SLR_ARN}},
            resource_policy=_SLR_KEY_POLICY,
            scps=[[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
    Difference(
        name="grants-are-not-modelled-by-iam-simulate",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/grants.html",
            "https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html",
        ),
        why=(
            "A KMS grant allows its grantee principal the grant's operations on the key without any "
            "policy naming it, across accounts too; AWS KMS authorises a request from the key policy, "
            "IAM policies and grants together. iam-simulate has no notion of grants. The difference "
            "only counts when keyfix allows because of a grant and keyfix agrees with the oracle once "
            "the grants are removed."
        ),
        applies=lambda c: bool(c.get("grants")),
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        keyfix_view=without("grants"),
        keyfix_cites="grants[",
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            grants=[{"GrantId": "g-1", "GranteePrincipal": f"arn:aws:iam::{A}:user/alice", "Operations": ["Decrypt"], "Constraints": None}],
        ),
    ),
    Difference(
        name="operation-not-available-across-accounts",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html",
            "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html",
        ),
        why=(
            "Only some KMS operations work on a key in another account (the \"Cross-account use\" "
            "column); for the others (PutKeyPolicy, ScheduleKeyDeletion, TagResource, ...) no key "
            "policy or IAM policy can allow a caller from another account. iam-simulate allows them "
            "like any cross-account request both policies allow."
        ),
        applies=lambda c: is_cross_account(c) and action_name(c) not in CROSS_ACCOUNT_OPERATIONS,
        decisions=frozenset({(IMPLICIT, ALLOWED)}),
        oracle_view=key_policy_denies_only,
        example=_doc(
            {"principal": f"arn:aws:iam::{B}:user/alice", "action": "kms:PutKeyPolicy", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION, {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "kms:*", "Resource": "*"}]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="federated-user-session-without-session-policy-has-no-permissions",
        docs=(
            "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
        ),
        why=(
            "GetFederationToken: \"if you do not pass a policy, then the resulting federated user "
            "session has no permissions. The only exception is when the credentials are used to access "
            "a resource that has a resource-based policy that specifically references the federated "
            "user session in the Principal element\". iam-simulate lets the IAM user's identity "
            "policies act for the federated user session when no session policy is given."
        ),
        applies=lambda c: is_federated_user(c) and c.get("session_policy") is None,
        decisions=frozenset({(IMPLICIT, ALLOWED)}),
        oracle_view=empty_session_policy,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:federated-user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="policy-variables-in-arn-condition-values",
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-conditionelement",),
        why=(
            "\"You can use a policy variable for Condition values in any condition that involves the "
            "string operators or the ARN operators\" (unlike the Resource element, with no restriction "
            "to the resource portion). iam-simulate splits an ArnLike/ArnEquals value at its colons "
            "before substituting, so arn:aws:iam::${aws:PrincipalAccount}:role/* (the variable's own "
            "colon) never matches; StringLike with the same value works in both engines."
        ),
        applies=variable_in_arn_condition_prefix,
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=resolve_arn_condition_prefix_variables,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:role/AppRole", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:role/AppRole"}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/*"}},
            }]},
        ),
    ),
    Difference(
        name="no-policy-variables-before-version-2012-10-17",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html",
        ),
        why=(
            "Policy variables exist only in the 2012-10-17 policy language; in a policy with "
            "\"Version\": \"2008-10-17\" (or none) ${...} is literal text. iam-simulate resolves "
            "variables whatever the version."
        ),
        applies=old_version_policy_with_variable,
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=literal_variables_in_old_policies,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "${aws:PrincipalAccount}"}}}]}],
        ),
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="session-arn-in-key-policy-is-not-limited-by-session-policy",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
        ),
        why=(
            "Role sessions and federated user sessions alike: resource-based policies that grant "
            "permissions to the session ARN \"grant permissions directly to the session. Permissions "
            "granted directly to a session are not limited by an implicit deny in an identity-based "
            "policy, a permissions boundary, or session policy.\" "
            "\"A resource-based policy can specify the ARN of the session as a principal. In that "
            "case, the permissions from the resource-based policy are added after the session is "
            "created. The resource-based policy permissions are not limited by the session policy.\" "
            "iam-simulate denies whenever the session policy does not allow."
        ),
        applies=lambda c: c.get("session_policy") is not None and key_policy_names_session(c),
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        oracle_view=session_policy_unlimited,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        ),
    ),
    Difference(
        name="rcps-do-not-affect-service-linked-roles",
        docs=("https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",),
        why=(
            "\"RCPs do not impact the effective permissions of any service-linked role.\" iam-simulate "
            "applies an RCP Deny to the Auto Scaling service-linked role like to any principal."
        ),
        applies=lambda c: is_service_linked_role(c) and c.get("rcps") is not None,
        decisions=frozenset({(ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("rcps"),
        example=_doc(
            {"principal": _SLR_SESSION, "action": "kms:Decrypt", "resource": KEY, "context": {"aws:PrincipalArn": _SLR_ARN}},
            resource_policy=_SLR_KEY_POLICY,
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
    Difference(
        name="rcps-do-not-affect-retiregrant",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",
            "https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html",
        ),
        why=(
            "\"RCPs do not impact the kms:RetireGrant permission\"; it \"is not effective in an RCP, even "
            "if the Action element specifies an asterisk\". iam-simulate applies the RCP Deny to it."
        ),
        applies=lambda c: action_name(c) == "retiregrant" and c.get("rcps") is not None,
        decisions=frozenset({(ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without("rcps"),
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:RetireGrant", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:RetireGrant", "Resource": "*"}]},
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}]],
        ),
        example_decisions=(ALLOWED, EXPLICIT),
    ),
)


# Disagreements the documentation does not decide. The cause is isolated as for the
# other entries (the view must make the engines agree), the differential run counts
# them separately, and test_known_differences.py pins both engines' answers so that
# a change on either side is noticed. Each needs a decision by the policy author.
UNDECIDED: tuple[Difference, ...] = (
    Difference(
        name="wildcard-principal-vs-session-policy",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
        ),
        why=(
            "Same account, a key-policy Allow with Principal \"*\" and a session policy that does not "
            "allow the action. The documentation says a resource-based policy that grants \"directly to "
            "the IAM user or the session principal that is making the request\" is not limited by a "
            "session policy, and one naming the role ARN is; it does not say which of the two \"*\" is. "
            "keyfix treats \"*\" as naming the caller directly (allowed); iam-simulate applies the "
            "session policy (denied). iam-simulate does let \"*\" bypass a permissions boundary, "
            "so it is not consistent either."
        ),
        applies=lambda c: c.get("session_policy") is not None and key_policy_allows_everyone(c) and not is_cross_account(c),
        decisions=frozenset({(ALLOWED, IMPLICIT)}),
        oracle_view=session_policy_unlimited,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:assumed-role/AppRole/i-0abc123", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        ),
    ),
)


# Disagreements where the documentation says iam-simulate is right and keyfix is wrong.
# The differential run fails on them (reported as "known keyfix bug"), and each gets a
# strict-xfail test of keyfix's correct answer, which turns red once keyfix is fixed so
# that the entry moves to REGRESSIONS. Their oracle_view makes iam-simulate reproduce
# keyfix's reading, so agreement after it pins the cause.
KEYFIX_BUGS: tuple[Difference, ...] = (
    Difference(
        name="no-kms-calleraccount-for-listkeys-listaliases-generaterandom",
        docs=(
            "https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account",
            "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html",
        ),
        why=(
            "kms:CallerAccount is available for \"KMS key resource operations\" and \"custom key store "
            "operations\"; ListKeys, ListAliases, ListRetirableGrants and GenerateRandom are neither, and "
            "the Service Authorization Reference lists no condition keys for them. keyfix "
            "(request._derived) puts kms:CallerAccount in every request's context, so a Deny "
            "conditioned on it applies there (and an Allow conditioned on it allows); in AWS the key "
            "is missing and the condition does not match. iam-simulate drops the key for these actions."
        ),
        applies=lambda c: action_name(c) in NO_CALLER_ACCOUNT_ACTIONS and mentions_key(c, "kms:CallerAccount"),
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=caller_account_as_principal_account,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:ListKeys", "resource": "*", "resource_account": A},
            identity_policies=[{"Version": V, "Statement": [
                {"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:List*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": A}}},
            ]}],
        ),
        # (what keyfix answers today, what AWS and iam-simulate answer)
        example_decisions=(EXPLICIT, ALLOWED),
    ),
    Difference(
        name="a-policy-naming-an-iam-user-covers-its-federated-user-sessions",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html#policy-eval-denyallow",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
        ),
        why=(
            "\"If a resource-based policy grants permission to the ARN of the IAM user who federated, "
            "then requests made by the federated user during the session are limited by an implicit "
            "deny in a permission boundary or session policy\": the statement applies to the "
            "GetFederationToken session (within the session policy), and so does a Deny naming the "
            "user. keyfix (principals.PrincipalEntry.covers) matches a user entry only against IAM "
            "users, so such an Allow never applies (denied) and such a Deny is ignored (allowed). "
            "iam-simulate applies both."
        ),
        applies=key_policy_names_federating_user,
        decisions=_ALL_DECISION_PAIRS,
        oracle_view=without_federating_user_principal,
        example=_doc(
            {"principal": f"arn:aws:sts::{A}:federated-user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            session_policy={"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]},
        ),
        # (what keyfix answers today, what AWS and iam-simulate answer)
        example_decisions=(IMPLICIT, ALLOWED),
    ),
    Difference(
        name="no-policy-variables-before-the-fifth-colon-of-a-resource-arn",
        docs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html",),
        why=(
            "\"You can use a policy variable in the Resource element, but only in the resource portion "
            "of the ARN. This portion of the ARN appears after the fifth colon (:). You can't use a "
            "variable to replace parts of the ARN before the fifth colon, such as the service or "
            "account.\" keyfix (patterns.Pattern) substitutes variables anywhere in a Resource/NotResource "
            "ARN, so arn:aws:kms:*:${aws:PrincipalAccount}:key/* matches the caller's keys; "
            "iam-simulate substitutes only after the fifth colon and the pattern matches nothing."
        ),
        applies=variable_in_arn_prefix,
        decisions=_ALL_DECISION_PAIRS,
        # Make iam-simulate do what keyfix does: agreement then pins the cause.
        oracle_view=resolve_arn_prefix_variables,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [_ROOT_DELEGATION]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"}]}],
        ),
        # (what keyfix answers today, what AWS and iam-simulate answer)
        example_decisions=(ALLOWED, IMPLICIT),
    ),
    Difference(
        name="notprincipal-deny-always-denies-principals-with-a-permissions-boundary",
        docs=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html",
        ),
        why=(
            "\"The NotPrincipal element with a Deny effect will always deny any IAM principal that has a "
            "permissions boundary policy attached, regardless of the values specified in the "
            "NotPrincipal element.\" keyfix (statement.principal_match) lets NotPrincipal exclude the "
            "caller even when a permissions boundary is in force; iam-simulate applies the rule."
        ),
        applies=lambda c: bool(c.get("permission_boundaries")) and any(
            s.get("Effect") == "Deny" and "NotPrincipal" in s for s in _statements(c.get("resource_policy"))
        ),
        decisions=frozenset({(ALLOWED, EXPLICIT), (IMPLICIT, EXPLICIT)}),
        oracle_view=without_notprincipal_denies,
        example=_doc(
            {"principal": f"arn:aws:iam::{A}:user/alice", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [
                _ROOT_DELEGATION,
                {"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{A}:user/alice"}, "Action": "kms:*", "Resource": "*"},
            ]},
            identity_policies=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
            permission_boundaries=[{"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
        ),
        # (what keyfix answers today, what AWS and iam-simulate answer)
        example_decisions=(ALLOWED, EXPLICIT),
    ),
)

ALL_DIFFERENCES = KNOWN_DIFFERENCES + UNDECIDED + KEYFIX_BUGS


@dataclass(frozen=True)
class Regression:
    """A keyfix bug this harness found and that has been fixed: the example keeps it fixed."""

    name: str
    docs: tuple[str, ...]
    why: str
    example: dict
    aws_decision: str
    oracle_agrees: bool  # iam-simulate gives aws_decision too


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        name="rcps-apply-to-service-principals",
        docs=(
            "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#rcp-effects-on-permissions",
            "https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html",
        ),
        why=(
            "RCPs restrict every principal that accesses a resource in a member account, \"regardless of "
            "whether the principals belong to the same organizations or not. This includes root users. "
            "The exception is when principals are service-linked roles\": AWS service principals are not "
            "exempt (the KMS guide's example RCP restricts service principals with aws:SourceAccount). "
            "keyfix used to skip RCPs for service principals."
        ),
        example=_doc(
            {"principal": "ec2.amazonaws.com", "action": "kms:Decrypt", "resource": KEY},
            resource_policy={"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"}]},
            rcps=[[_RCP_FULL, {"Version": V, "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}]],
        ),
        aws_decision=EXPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="slr-asking-for-an-iam-only-action-does-not-crash",
        docs=("https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html",),
        why=(
            "A service-linked role asking for an action authorised by IAM policies alone (kms:ListKeys), "
            "which its identity policy does not allow: keyfix raised StopIteration in "
            "evaluate._nearest() instead of answering ImplicitlyDenied."
        ),
        example=_doc({"principal": _SLR_SESSION, "action": "kms:ListKeys", "resource": "*", "resource_account": A}),
        aws_decision=IMPLICIT,
        oracle_agrees=True,
    ),
    Regression(
        name="rcps-do-not-affect-service-linked-roles",
        docs=("https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html#actions-not-restricted-by-rcps",),
        why="keyfix used to apply RCPs to service-linked roles (now a known difference: iam-simulate still does).",
        example=next(d.example for d in KNOWN_DIFFERENCES if d.name == "rcps-do-not-affect-service-linked-roles"),
        aws_decision=ALLOWED,
        oracle_agrees=False,
    ),
)
