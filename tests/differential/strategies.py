"""Hypothesis strategies for realistic KMS authorisation cases.

Every case is a document in keyfix's `keyfix simulate` input format
(src/keyfix/schemas/simulate.schema.json): a request by one principal for one KMS
action on one key, with the key policy, identity policies and the optional
guardrails (permission boundaries, SCPs, RCPs, session policy) in force.

The cases are built around the failures keyfix repairs (the Auto Scaling
service-linked role, EBS/EC2 callers, cross-account keys), but the policy
statements are drawn from a wide space: Allow/Deny, Action/NotAction with KMS
wildcards, Resource/NotResource, Principal/NotPrincipal and the condition operators
the KMS documentation uses.

Realism rules, so that both engines are asked the same question AWS would ask:
- The request context only holds keys that AWS puts in the request for that action
  (Service Authorization Reference, "Actions defined by AWS KMS":
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html).
  The oracle driver reports any key that iam-simulate drops, and the differential
  test fails on them, so this table is checked on every run.
- Policies may name any condition key (a statement naming a key the request lacks is
  normal and is part of what is tested).
- Keys the request implies (aws:PrincipalArn, aws:PrincipalAccount,
  kms:CallerAccount) are usually left for the engines to derive; for a session of a
  role with a path, aws:PrincipalArn is given, as the session ARN does not carry the
  path (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
- RCP levels always contain RCPFullAWSAccess, which AWS attaches to every level and
  which cannot be detached
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_syntax.html);
  custom RCP statements are Deny with Principal "*".
- Permission boundaries and session policies are only attached where AWS allows
  them (not to service-linked roles, the root user or service principals); SCPs are
  not given for service principals, which belong to no account of the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

VERSION = "2012-10-17"

KEY_ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
THIRD_ACCOUNT = "777788889999"  # named in policies, never makes requests
REGION = "us-east-1"
KEY_ID = "1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"
OTHER_KEY_ID = "0f9e8d7c-6b5a-4f3e-2d1c-0b9a8f7e6d5c"
KEY_ARN = f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:key/{KEY_ID}"
OTHER_KEY_ARN = f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:key/{OTHER_KEY_ID}"

ASG_SLR_NAME = "AWSServiceRoleForAutoScaling"
ASG_SLR_PATH = "aws-service-role/autoscaling.amazonaws.com/"
SPOT_SLR_NAME = "AWSServiceRoleForEC2Spot"
SPOT_SLR_PATH = "aws-service-role/spot.amazonaws.com/"


def slr_arn(account: str, name: str = ASG_SLR_NAME, path: str = ASG_SLR_PATH) -> str:
    return f"arn:aws:iam::{account}:role/{path}{name}"


# --- actions -------------------------------------------------------------------

# KMS actions on a key resource, with the KMS-specific request keys AWS can put in
# their request context (subset relevant here) -- Service Authorization Reference.
VIA = "kms:ViaService"
GIFAR = "kms:GrantIsForAWSResource"
GRANT_OPS = "kms:GrantOperations"
EC_KEYS = "kms:EncryptionContextKeys"

_CRYPTO = (VIA, EC_KEYS)
KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    "kms:Encrypt": _CRYPTO,
    "kms:Decrypt": _CRYPTO,
    "kms:ReEncryptFrom": _CRYPTO,
    "kms:ReEncryptTo": _CRYPTO,
    "kms:GenerateDataKey": _CRYPTO,
    "kms:GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "kms:GenerateDataKeyPair": _CRYPTO,
    "kms:GenerateDataKeyPairWithoutPlaintext": _CRYPTO,
    "kms:DescribeKey": (VIA,),
    "kms:CreateGrant": (VIA, GIFAR, GRANT_OPS, EC_KEYS),
    "kms:ListGrants": (VIA, GIFAR),
    "kms:RevokeGrant": (VIA, GIFAR),
    "kms:RetireGrant": (VIA, EC_KEYS),
    "kms:GetKeyPolicy": (VIA,),
    "kms:PutKeyPolicy": (VIA,),
    "kms:EnableKey": (VIA,),
    "kms:DisableKey": (VIA,),
    "kms:ScheduleKeyDeletion": (VIA,),
    "kms:CancelKeyDeletion": (VIA,),
    "kms:TagResource": (VIA,),
    "kms:Sign": (VIA,),
    "kms:Verify": (VIA,),
    "kms:GenerateMac": (VIA,),
    "kms:GetPublicKey": (VIA,),
    "kms:EnableKeyRotation": (VIA,),
    "kms:GetKeyRotationStatus": (VIA,),
}
# The ones the failures keyfix repairs are about come up most often.
HOT_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
)
# Actions whose only resource is "*": authorised by IAM policies alone.
WILDCARD_ONLY_ACTIONS = ("kms:CreateKey", "kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom")

# Action patterns for Action/NotAction elements.
ACTION_PATTERNS = (
    "kms:*",
    "*",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:decrypt",  # action names are case-insensitive
    "kms:ReEncrypt*",
    "kms:ReEncryptFrom",
    "kms:GenerateDataKey*",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKey",
    "kms:De*",
    "kms:Describe*",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:*Grant*",
    "kms:*Grant",
    "kms:List*",
    "kms:Get*",
    "kms:Create*",
    "kms:*Key*",
    "kms:Put*",
    "kms:Enable*",
    "kms:Disable*",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:GenerateMac",
    "kms:?ecrypt",
    "ec2:*",
    "s3:GetObject",
)

# Grant operation names (for kms:GrantOperations and grants' Operations).
GRANT_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
)


# --- principals -----------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    kind: str  # user | role | session | slr-session | slr-role | root | service
    arn: str  # what goes in request.principal
    account: str | None
    identity_arn: str | None  # the user/role ARN (with path) a key policy would name
    session_arn: str | None = None
    needs_principal_arn: bool = False  # role path not recoverable from the session ARN

    @property
    def is_slr(self) -> bool:
        return self.kind in ("slr-session", "slr-role")


def _principals_in(account: str) -> list[Principal]:
    out = [
        Principal("user", f"arn:aws:iam::{account}:user/alice", account, f"arn:aws:iam::{account}:user/alice"),
        Principal("user", f"arn:aws:iam::{account}:user/ops/bob", account, f"arn:aws:iam::{account}:user/ops/bob"),
        Principal("role", f"arn:aws:iam::{account}:role/AppRole", account, f"arn:aws:iam::{account}:role/AppRole"),
        Principal(
            "session",
            f"arn:aws:sts::{account}:assumed-role/AppRole/i-0abc123",
            account,
            f"arn:aws:iam::{account}:role/AppRole",
            session_arn=f"arn:aws:sts::{account}:assumed-role/AppRole/i-0abc123",
        ),
        Principal(
            "session",
            f"arn:aws:sts::{account}:assumed-role/DeployRole/ci-run",
            account,
            f"arn:aws:iam::{account}:role/team/DeployRole",
            session_arn=f"arn:aws:sts::{account}:assumed-role/DeployRole/ci-run",
            needs_principal_arn=True,
        ),
        Principal(
            "slr-session",
            f"arn:aws:sts::{account}:assumed-role/{ASG_SLR_NAME}/AutoScaling",
            account,
            slr_arn(account),
            session_arn=f"arn:aws:sts::{account}:assumed-role/{ASG_SLR_NAME}/AutoScaling",
            needs_principal_arn=True,
        ),
        Principal(
            "slr-session",
            f"arn:aws:sts::{account}:assumed-role/{ASG_SLR_NAME}_custom/AutoScaling",
            account,
            slr_arn(account, f"{ASG_SLR_NAME}_custom"),
            session_arn=f"arn:aws:sts::{account}:assumed-role/{ASG_SLR_NAME}_custom/AutoScaling",
            needs_principal_arn=True,
        ),
        Principal(
            "slr-session",
            f"arn:aws:sts::{account}:assumed-role/{SPOT_SLR_NAME}/EC2Spot",
            account,
            slr_arn(account, SPOT_SLR_NAME, SPOT_SLR_PATH),
            session_arn=f"arn:aws:sts::{account}:assumed-role/{SPOT_SLR_NAME}/EC2Spot",
            needs_principal_arn=True,
        ),
        Principal("slr-role", slr_arn(account), account, slr_arn(account)),
        Principal("root", f"arn:aws:iam::{account}:root", account, f"arn:aws:iam::{account}:root"),
    ]
    return out


SERVICE_PRINCIPALS = (
    Principal("service", "ec2.amazonaws.com", None, None),
    Principal("service", "autoscaling.amazonaws.com", None, None),
)

PRINCIPAL_WEIGHTS = {
    "user": 3,
    "role": 2,
    "session": 4,
    "slr-session": 4,
    "slr-role": 1,
    "root": 1,
    "service": 1,
}


@st.composite
def principals(draw) -> Principal:
    kind = draw(st.sampled_from([k for k, w in PRINCIPAL_WEIGHTS.items() for _ in range(w)]))
    if kind == "service":
        return draw(st.sampled_from(SERVICE_PRINCIPALS))
    # Same-account (key account) about 60%, cross-account about 40%.
    account = draw(st.sampled_from([KEY_ACCOUNT, KEY_ACCOUNT, KEY_ACCOUNT, OTHER_ACCOUNT, OTHER_ACCOUNT]))
    return draw(st.sampled_from([p for p in _principals_in(account) if p.kind == kind]))


def policy_principal_pool(req: Principal) -> list:
    """Principal element values: some about the requester, some about others."""
    pool: list = [
        {"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:root"},
        {"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:root"},
        {"AWS": KEY_ACCOUNT},
        {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        {"AWS": OTHER_ACCOUNT},
        {"AWS": f"arn:aws:iam::{THIRD_ACCOUNT}:root"},
        "*",
        {"AWS": "*"},
        {"AWS": slr_arn(KEY_ACCOUNT)},
        {"AWS": slr_arn(OTHER_ACCOUNT)},
        {"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:role/AppRole"},
        {"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:user/alice"},
        {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/team/DeployRole"},
        {"Service": "ec2.amazonaws.com"},
        {"AWS": [f"arn:aws:iam::{KEY_ACCOUNT}:user/ops/bob", f"arn:aws:iam::{OTHER_ACCOUNT}:root"]},
    ]
    if req.identity_arn:
        pool += [{"AWS": req.identity_arn}] * 3
        pool.append({"AWS": [req.identity_arn, f"arn:aws:iam::{THIRD_ACCOUNT}:root"]})
    if req.session_arn:
        pool.append({"AWS": req.session_arn})
    if req.kind == "service":
        pool += [{"Service": req.arn}] * 3
    return pool


# --- conditions -----------------------------------------------------------------


def _condition_clauses(req: Principal) -> list[tuple[str, str, list[str]]]:
    """(operator, key, values) triples a KMS key or IAM policy might carry."""
    acct = req.account or KEY_ACCOUNT
    ident = req.identity_arn or f"arn:aws:iam::{acct}:role/AppRole"
    return [
        ("StringEquals", VIA, [f"ec2.{REGION}.amazonaws.com"]),
        ("StringEquals", VIA, [f"ec2.{REGION}.amazonaws.com", f"autoscaling.{REGION}.amazonaws.com"]),
        ("StringLike", VIA, ["ec2.*.amazonaws.com"]),
        ("StringNotEquals", VIA, [f"ec2.{REGION}.amazonaws.com"]),
        ("StringEqualsIfExists", VIA, [f"ec2.{REGION}.amazonaws.com"]),
        ("StringNotEqualsIfExists", VIA, [f"ec2.{REGION}.amazonaws.com"]),
        ("StringEqualsIgnoreCase", "kms:viaservice", [f"EC2.{REGION}.AMAZONAWS.COM"]),
        ("Null", VIA, ["true"]),
        ("Null", VIA, ["false"]),
        ("Bool", GIFAR, ["true"]),
        ("Bool", GIFAR, ["false"]),
        ("BoolIfExists", GIFAR, ["true"]),
        ("Null", GIFAR, ["false"]),
        ("StringEquals", "kms:CallerAccount", [KEY_ACCOUNT]),
        ("StringEquals", "kms:CallerAccount", [OTHER_ACCOUNT]),
        ("StringEquals", "kms:CallerAccount", [KEY_ACCOUNT, OTHER_ACCOUNT]),
        ("StringNotEquals", "kms:CallerAccount", [KEY_ACCOUNT]),
        ("StringEquals", "aws:PrincipalAccount", [KEY_ACCOUNT]),
        ("StringNotEquals", "aws:PrincipalAccount", [KEY_ACCOUNT]),
        ("StringNotEqualsIfExists", "aws:PrincipalAccount", [KEY_ACCOUNT, OTHER_ACCOUNT]),
        ("ArnLike", "aws:PrincipalArn", [ident]),
        ("ArnEquals", "aws:PrincipalArn", [ident]),
        ("ArnLike", "aws:PrincipalArn", [f"arn:aws:iam::{acct}:role/*"]),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/aws-service-role/*"]),
        ("ArnNotLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/aws-service-role/*"]),
        ("ArnLikeIfExists", "aws:PrincipalArn", [f"arn:aws:iam::{KEY_ACCOUNT}:*"]),
        ("StringLike", "aws:PrincipalArn", [f"arn:aws:iam::{acct}:user/*"]),
        ("ArnEquals", "aws:PrincipalArn", [f"arn:aws:iam::{THIRD_ACCOUNT}:role/Other"]),
        ("ForAnyValue:StringEquals", GRANT_OPS, ["Decrypt", "GenerateDataKeyWithoutPlaintext"]),
        ("ForAllValues:StringEquals", GRANT_OPS, ["Decrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"]),
        ("ForAllValues:StringEquals", GRANT_OPS, ["Decrypt"]),
        ("ForAnyValue:StringLike", GRANT_OPS, ["ReEncrypt*"]),
        ("ForAnyValue:StringEquals", GRANT_OPS, ["RetireGrant"]),
        ("ForAllValues:StringLike", EC_KEYS, ["aws:ebs:*"]),
        ("ForAnyValue:StringEquals", EC_KEYS, ["aws:ebs:id"]),
        ("ForAnyValue:StringEquals", EC_KEYS, ["Department"]),
        ("ForAllValues:StringEquals", EC_KEYS, ["Department", "Project"]),
        ("Null", EC_KEYS, ["false"]),
        ("Null", EC_KEYS, ["true"]),
    ]


@st.composite
def conditions(draw, req: Principal):
    clauses = draw(st.lists(st.sampled_from(_condition_clauses(req)), min_size=1, max_size=3))
    cond: dict[str, dict[str, list[str] | str]] = {}
    for op, key, values in clauses:
        value: list[str] | str = values[0] if len(values) == 1 and draw(st.booleans()) else list(values)
        cond.setdefault(op, {})[key] = value  # a repeated (op, key) keeps the last
    return cond


# --- statements and policies ---------------------------------------------------

RESOURCE_PATTERNS = (
    "*",
    "*",
    KEY_ARN,
    f"arn:aws:kms:*:{KEY_ACCOUNT}:key/*",
    f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:key/*",
    "arn:aws:kms:*:*:key/*",
    OTHER_KEY_ARN,
    f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/*",
    f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:alias/ebs-key",
)


def _one_or_list(draw, values):
    values = list(dict.fromkeys(values))
    if len(values) == 1 and draw(st.booleans()):
        return values[0]
    return values


@st.composite
def statements(draw, req: Principal, *, kind: str, allow_percent: int = 75):
    """One statement for a policy of `kind`: identity | key | scp | rcp."""
    if kind == "rcp":
        effect = "Deny"
    else:
        effect = "Allow" if draw(st.integers(0, 99)) < allow_percent else "Deny"
    stmt: dict = {"Effect": effect}
    if draw(st.integers(0, 4)) == 0:
        stmt["Sid"] = draw(st.sampled_from(["S1", "AllowUse", "DenyAll", "Delegate"]))
    if kind == "key":
        pool = policy_principal_pool(req)
        if effect == "Deny" and draw(st.integers(0, 9)) == 0:
            stmt["NotPrincipal"] = draw(st.sampled_from([p for p in pool if p not in ("*",)]))
        else:
            stmt["Principal"] = draw(st.sampled_from(pool))
    elif kind == "rcp":
        stmt["Principal"] = "*"
    patterns = [p for p in ACTION_PATTERNS if not (kind == "rcp" and p == "*")]
    actions = draw(st.lists(st.sampled_from(patterns), min_size=1, max_size=3))
    if kind != "rcp" and draw(st.integers(0, 7)) == 0:
        stmt["NotAction"] = _one_or_list(draw, actions)
    else:
        stmt["Action"] = _one_or_list(draw, actions)
    resources = draw(st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2))
    if kind == "key":
        # In a key policy "*" means "this KMS key"; key policies rarely say more.
        resources = ["*"] if draw(st.integers(0, 5)) else resources
    if draw(st.integers(0, 9)) == 0:
        stmt["NotResource"] = _one_or_list(draw, resources)
    else:
        stmt["Resource"] = _one_or_list(draw, resources)
    if draw(st.integers(0, 2)) == 0:
        stmt["Condition"] = draw(conditions(req))
    return stmt


def _policy(stmts: list[dict]) -> dict:
    return {"Version": VERSION, "Statement": stmts}


def root_delegation(account: str = KEY_ACCOUNT) -> dict:
    return {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def slr_key_statements(principal_arn: str) -> list[dict]:
    """The two statements the seed documents add for the Auto Scaling SLR (case A1)."""
    return [
        {
            "Sid": "Allow service-linked role use of the customer managed key",
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


@st.composite
def key_policies(draw, req: Principal):
    stmts: list[dict] = []
    if draw(st.integers(0, 9)) < 6:
        stmts.append(root_delegation())
    if draw(st.integers(0, 4)) == 0:
        target = draw(st.sampled_from([slr_arn(KEY_ACCOUNT), f"arn:aws:iam::{OTHER_ACCOUNT}:root", req.identity_arn or slr_arn(KEY_ACCOUNT)]))
        stmts += slr_key_statements(target)
    stmts += draw(st.lists(statements(req, kind="key"), min_size=0 if stmts else 1, max_size=3))
    draw(st.randoms(use_true_random=False)).shuffle(stmts)
    return _policy(stmts)


@st.composite
def identity_policies(draw, req: Principal):
    if req.is_slr and draw(st.integers(0, 2)):
        # The SLR's own, AWS-defined policy: no KMS permissions at all (seed case A).
        return [_policy([{"Effect": "Allow", "Action": ["ec2:*", "elasticloadbalancing:*"], "Resource": "*"}])]
    n = draw(st.integers(0, 3))
    out = []
    for _ in range(n):
        out.append(_policy(draw(st.lists(statements(req, kind="identity"), min_size=1, max_size=3))))
    return out


FULL_SCP = {"Effect": "Allow", "Action": "*", "Resource": "*"}
RCP_FULL_ACCESS = _policy([{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}])


@st.composite
def scp_levels(draw, req: Principal):
    levels = []
    for _ in range(draw(st.integers(1, 3))):
        policies = []
        r = draw(st.integers(0, 19))
        if r == 0:
            levels.append([])  # a level with nothing attached allows nothing
            continue
        if r > 3:
            policies.append(_policy([FULL_SCP]))
        else:
            # An allow-list SCP instead of FullAWSAccess.
            policies.append(_policy(draw(st.lists(statements(req, kind="scp", allow_percent=100), min_size=1, max_size=2))))
        if draw(st.integers(0, 2)) == 0:
            policies.append(_policy(draw(st.lists(statements(req, kind="scp", allow_percent=0), min_size=1, max_size=2))))
        levels.append(policies)
    return levels


@st.composite
def rcp_levels(draw, req: Principal):
    levels = []
    for _ in range(draw(st.integers(1, 2))):
        level = [RCP_FULL_ACCESS]
        if draw(st.booleans()):
            level.append(_policy(draw(st.lists(statements(req, kind="rcp"), min_size=1, max_size=2))))
        levels.append(level)
    return levels


@st.composite
def grants(draw, req: Principal):
    pool = [p for p in (req.identity_arn, slr_arn(KEY_ACCOUNT), slr_arn(OTHER_ACCOUNT), f"arn:aws:iam::{KEY_ACCOUNT}:role/AppRole") if p]
    out = []
    for i in range(draw(st.integers(1, 2))):
        out.append(
            {
                "GrantId": f"g-{i + 1}",
                "GranteePrincipal": draw(st.sampled_from(pool)),
                "Operations": sorted(draw(st.sets(st.sampled_from(GRANT_OPERATIONS), min_size=1, max_size=4))),
                "Constraints": None,
            }
        )
    return out


# --- request context ----------------------------------------------------------------


@st.composite
def request_context(draw, req: Principal, action: str):
    ctx: dict[str, str | list[str]] = {}
    keys = KEY_ACTIONS.get(action, ())
    if VIA in keys and draw(st.integers(0, 2)):
        ctx[VIA] = draw(
            st.sampled_from([f"ec2.{REGION}.amazonaws.com", f"ec2.{REGION}.amazonaws.com", f"autoscaling.{REGION}.amazonaws.com", f"rds.{REGION}.amazonaws.com"])
        )
    if GIFAR in keys and draw(st.integers(0, 3)):
        ctx[GIFAR] = draw(st.sampled_from(["true", "true", "false"]))
    if GRANT_OPS in keys and draw(st.integers(0, 3)):
        ctx[GRANT_OPS] = sorted(draw(st.sets(st.sampled_from(GRANT_OPERATIONS), min_size=1, max_size=5)))
    if EC_KEYS in keys and draw(st.booleans()):
        ctx[EC_KEYS] = draw(st.sampled_from([["aws:ebs:id"], ["Department"], ["Department", "Project"], ["aws:ebs:id", "Department"]]))
    if req.kind != "service":
        if req.needs_principal_arn or draw(st.integers(0, 9)) == 0:
            ctx["aws:PrincipalArn"] = req.identity_arn
        if draw(st.integers(0, 9)) == 0:
            ctx["aws:PrincipalAccount"] = req.account
        if action not in WILDCARD_ONLY_ACTIONS and draw(st.integers(0, 9)) == 0:
            ctx["kms:CallerAccount"] = req.account
    return ctx


# --- whole cases ---------------------------------------------------------------------


@st.composite
def kms_cases(draw) -> dict:
    req = draw(principals())
    r = draw(st.integers(0, 39))
    if r == 0 and req.kind not in ("service",):
        action = draw(st.sampled_from(WILDCARD_ONLY_ACTIONS))
    elif r < 28:
        action = draw(st.sampled_from(HOT_ACTIONS))
    else:
        action = draw(st.sampled_from(sorted(KEY_ACTIONS)))
    wildcard_only = action in WILDCARD_ONLY_ACTIONS

    request: dict = {"principal": req.arn, "action": action}
    if wildcard_only:
        request["resource"] = "*"
        request["resource_account"] = req.account
    else:
        request["resource"] = KEY_ARN
        if draw(st.integers(0, 3)) == 0:
            request["resource_account"] = KEY_ACCOUNT
    ctx = draw(request_context(req, action))
    if ctx:
        request["context"] = ctx

    doc: dict = {"request": request}
    if not wildcard_only and draw(st.integers(0, 19)):
        doc["resource_policy"] = draw(key_policies(req))
    if req.kind not in ("service", "root"):
        ids = draw(identity_policies(req))
        if ids or draw(st.booleans()):
            doc["identity_policies"] = ids
    if req.kind in ("user", "role", "session") and draw(st.integers(0, 3)) == 0:
        n = 1 if draw(st.integers(0, 5)) else 2
        doc["permission_boundaries"] = [
            _policy(draw(st.lists(statements(req, kind="identity", allow_percent=85), min_size=1, max_size=2))) for _ in range(n)
        ]
    if req.kind != "service" and draw(st.integers(0, 2)) == 0:
        doc["scps"] = draw(scp_levels(req))
    if not wildcard_only and draw(st.integers(0, 3)) == 0:
        doc["rcps"] = draw(rcp_levels(req))
    if req.kind in ("role", "session") and draw(st.integers(0, 4)) == 0:
        doc["session_policy"] = _policy(draw(st.lists(statements(req, kind="identity", allow_percent=90), min_size=1, max_size=2)))
    if not wildcard_only and req.kind in ("slr-session", "session", "role", "user") and draw(st.integers(0, 19)) == 0:
        doc["grants"] = draw(grants(req))
    return doc


# --- a deterministic corpus ------------------------------------------------------


def generate_cases(n: int, strategy=None) -> list[dict]:
    """Draw `n` distinct cases, the same ones on every run (derandomized hypothesis).

    Hypothesis' own generation machinery is used so that the distribution (small
    and boundary values early, richer cases later) is hypothesis', but nothing is
    shrunk or stored: the corpus is a fixed function of the strategy code.
    """
    import json

    from hypothesis import HealthCheck, Phase, given, settings

    strategy = strategy if strategy is not None else kms_cases()
    seen: dict[str, dict] = {}

    @settings(
        max_examples=n * 2,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def collect(case):
        if len(seen) < n:
            seen.setdefault(json.dumps(case, sort_keys=True), case)

    collect()
    return list(seen.values())
