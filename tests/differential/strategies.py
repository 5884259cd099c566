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
ORG_ID = "o-a1b2c3d4e5"  # the key owner's organisation
OTHER_ORG_ID = "o-f6g7h8i9j0"
KEY_ID = "1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d"
OTHER_KEY_ID = "0f9e8d7c-6b5a-4f3e-2d1c-0b9a8f7e6d5c"
KEY_ARN = f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:key/{KEY_ID}"
ALIAS_ARN = f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:alias/ebs-key"
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
# Alias operations on an alias resource: authorised by IAM policies alone; the key policy is
# a separate check on the key ARN (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
ALIAS_ACTIONS = ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias")
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
    "kms:CreateAlias",
    "kms:*Alias",
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


# --- drawing helpers ----------------------------------------------------------------
# Strategies are built once; a choice from a sequence is an index drawn from a cached
# integers() strategy.  (Building sampled_from/lists strategies inside every draw made
# generation ~5x slower, and the corpus has to be drawn within the CI time budget.)

_INDEX = {}


class RandomDraw:
    """Stands in for hypothesis' `draw` when a case is built from a seeded
    random.Random instead (see random_cases): the draw_* functions only ever choose
    through pick(), so the same code builds both kinds of corpus."""

    __slots__ = ("rng",)

    def __init__(self, seed: str | int):
        import random

        self.rng = random.Random(seed)

    def __call__(self, strategy):  # pragma: no cover - pick() never gets here
        raise TypeError("RandomDraw only supports pick()")


def pick(draw, seq):
    """Draw one element of `seq` (hypothesis-controlled, so derandomized runs repeat)."""
    n = len(seq)
    if type(draw) is RandomDraw:
        return seq[draw.rng.randrange(n)]
    strat = _INDEX.get(n)
    if strat is None:
        strat = _INDEX[n] = st.integers(0, n - 1)
    return seq[draw(strat)]


def chance(draw, k: int, n: int) -> bool:
    """True with probability k/n."""
    return pick(draw, _RANGES[n]) < k


_RANGES = {n: tuple(range(n)) for n in (2, 3, 4, 5, 6, 8, 10, 20, 40, 100)}


def count(draw, lo: int, hi: int) -> int:
    return pick(draw, tuple(range(lo, hi + 1)))


def subset(draw, seq, lo: int, hi: int) -> list:
    """An ordered selection of distinct elements of `seq`, between lo and hi of them."""
    chosen = []
    for _ in range(count(draw, lo, hi)):
        item = pick(draw, seq)
        if item not in chosen:
            chosen.append(item)
    return chosen


# --- principals -----------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    kind: str  # user | role | session | federated | slr-session | slr-role | root | service
    arn: str  # what goes in request.principal
    account: str | None
    identity_arn: str | None  # the user/role ARN (with path) a key policy would name
    session_arn: str | None = None
    needs_principal_arn: bool = False  # role path not recoverable from the session ARN
    parent_user_arn: str | None = None  # federated user: the IAM user who federated

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
        # GetFederationToken sessions of user alice.
        Principal(
            "federated",
            f"arn:aws:sts::{account}:federated-user/alice",
            account,
            f"arn:aws:sts::{account}:federated-user/alice",
            session_arn=f"arn:aws:sts::{account}:federated-user/alice",
            needs_principal_arn=True,
            parent_user_arn=f"arn:aws:iam::{account}:user/alice",
        ),
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
    "federated": 1,
    "service": 1,
}


_KIND_CHOICES = tuple(k for k, w in PRINCIPAL_WEIGHTS.items() for _ in range(w))
_ACCOUNT_CHOICES = (KEY_ACCOUNT, KEY_ACCOUNT, KEY_ACCOUNT, OTHER_ACCOUNT, OTHER_ACCOUNT)
_PRINCIPALS_BY = {
    (account, kind): tuple(p for p in _principals_in(account) if p.kind == kind)
    for account in (KEY_ACCOUNT, OTHER_ACCOUNT)
    for kind in PRINCIPAL_WEIGHTS
    if kind != "service"
}


def draw_principal(draw) -> Principal:
    kind = pick(draw, _KIND_CHOICES)
    if kind == "service":
        return pick(draw, SERVICE_PRINCIPALS)
    # Same-account (key account) about 60%, cross-account about 40%.
    account = pick(draw, _ACCOUNT_CHOICES)
    return pick(draw, _PRINCIPALS_BY[(account, kind)])


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
    if req.session_arn and req.session_arn != req.identity_arn:
        pool.append({"AWS": req.session_arn})
    if req.parent_user_arn:
        pool += [{"AWS": req.parent_user_arn}] * 2
    if req.identity_arn:
        pool.append({"AWS": [req.identity_arn], "Service": ["ec2.amazonaws.com"]})
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
        # Policy variables (only in "Version": "2012-10-17" policies).
        ("StringEquals", "kms:CallerAccount", ["${aws:PrincipalAccount}"]),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::${aws:PrincipalAccount}:role/*"]),
        # Keys the engines derive for every caller; the data-perimeter RCP examples use them.
        ("Bool", "aws:PrincipalIsAWSService", ["false"]),
        ("BoolIfExists", "aws:PrincipalIsAWSService", ["true"]),
        ("StringNotEqualsIfExists", "aws:PrincipalServiceName", ["ec2.amazonaws.com"]),
        # A set operator on a single-valued key, a JSON boolean, "?" wildcards.
        ("ForAllValues:StringLike", VIA, ["ec2.*"]),
        ("ForAnyValue:StringEquals", VIA, [f"ec2.{REGION}.amazonaws.com"]),
        ("Bool", GIFAR, [True]),
        ("StringLike", VIA, [f"ec?.{REGION}.amazonaws.com"]),
        # Keys derived from the principal (principal key table of reference_policies_variables.html).
        ("StringEquals", "aws:PrincipalType", ["AssumedRole"]),
        ("StringEquals", "aws:PrincipalType", ["User", "FederatedUser"]),
        ("StringNotEquals", "aws:PrincipalType", ["Account"]),
        ("StringLike", "aws:username", ["al*"]),
        ("Null", "aws:username", ["true"]),
        # Organisation conditions: how organisations share keys and fence them
        # (reference_policies_condition-keys.html#condition-keys-principalorgid).
        ("StringEquals", "aws:PrincipalOrgID", [ORG_ID]),
        ("StringEquals", "aws:PrincipalOrgID", [ORG_ID, OTHER_ORG_ID]),
        ("StringNotEquals", "aws:PrincipalOrgID", [ORG_ID]),
        ("StringNotEqualsIfExists", "aws:PrincipalOrgID", [ORG_ID]),
        ("StringLike", "aws:PrincipalOrgID", ["o-a1*"]),
        ("Null", "aws:PrincipalOrgID", ["true"]),
    ]


def draw_condition(draw, req: Principal) -> dict:
    clauses = _condition_clauses(req)
    cond: dict[str, dict[str, list[str] | str]] = {}
    for _ in range(count(draw, 1, 3)):
        op, key, values = pick(draw, clauses)
        value: list[str] | str = values[0] if len(values) == 1 and chance(draw, 1, 2) else list(values)
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
    ALIAS_ARN,
    f"arn:aws:kms:{REGION}:{KEY_ACCOUNT}:alias/*",
    "arn:aws:kms:*:${aws:PrincipalAccount}:key/*",
)


def _one_or_list(draw, values):
    values = list(dict.fromkeys(values))
    if len(values) == 1 and chance(draw, 1, 2):
        return values[0]
    return values


_SIDS = ("S1", "AllowUse", "DenyAll", "Delegate")
_RCP_ACTION_PATTERNS = tuple(p for p in ACTION_PATTERNS if p != "*")


def draw_statement(draw, req: Principal, kind: str, allow_percent: int = 80) -> dict:
    """One statement for a policy of `kind`: identity | key | scp | rcp."""
    if kind == "rcp":
        effect = "Deny"
    else:
        effect = "Allow" if pick(draw, _RANGES[100]) < allow_percent else "Deny"
    stmt: dict = {"Effect": effect}
    if chance(draw, 1, 5):
        stmt["Sid"] = pick(draw, _SIDS)
    if kind == "key":
        pool = policy_principal_pool(req)
        if effect == "Deny" and chance(draw, 1, 10):
            stmt["NotPrincipal"] = pick(draw, [p for p in pool if p != "*"])
        else:
            stmt["Principal"] = pick(draw, pool)
    elif kind == "rcp":
        stmt["Principal"] = "*"
    actions = subset(draw, _RCP_ACTION_PATTERNS if kind == "rcp" else ACTION_PATTERNS, 1, 3)
    if kind != "rcp" and chance(draw, 1, 8):
        stmt["NotAction"] = _one_or_list(draw, actions)
    else:
        stmt["Action"] = _one_or_list(draw, actions)
    resources = subset(draw, RESOURCE_PATTERNS, 1, 2)
    if kind == "key" and not chance(draw, 1, 6):
        # In a key policy "*" means "this KMS key"; key policies rarely say more.
        resources = ["*"]
    if chance(draw, 1, 10):
        stmt["NotResource"] = _one_or_list(draw, resources)
    else:
        stmt["Resource"] = _one_or_list(draw, resources)
    if chance(draw, 1, 4):
        stmt["Condition"] = draw_condition(draw, req)
    return stmt


def draw_statements(draw, req: Principal, kind: str, lo: int, hi: int, allow_percent: int = 80) -> list[dict]:
    return [draw_statement(draw, req, kind, allow_percent) for _ in range(count(draw, lo, hi))]


def _policy(stmts: list[dict]) -> dict:
    return {"Version": VERSION, "Statement": stmts}


def _varied_policy(draw, stmts: list[dict]) -> dict:
    """A policy document in the less common spellings now and then: the old policy
    language version (in which ${...} is literal text) and a lone statement object."""
    doc = _policy(stmts)
    if chance(draw, 1, 20):
        doc["Version"] = "2008-10-17"
    if len(stmts) == 1 and chance(draw, 1, 6):
        doc["Statement"] = stmts[0]
    return doc


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


# The statement AWS managed keys (aws/ebs) carry: everyone in the account, through EBS.
_VIA_EBS_FOR_ACCOUNT = {
    "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
    "Resource": "*",
    "Condition": {"StringEquals": {"kms:CallerAccount": KEY_ACCOUNT, "kms:ViaService": f"ec2.{REGION}.amazonaws.com"}},
}


# A key shared with the whole organisation: Principal "*" limited by aws:PrincipalOrgID.
_ORG_SHARE = {
    "Sid": "AllowOrganization",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
    "Resource": "*",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
}


def draw_key_policy(draw, req: Principal) -> dict:
    stmts: list[dict] = []
    if chance(draw, 1, 10):
        stmts.append(_VIA_EBS_FOR_ACCOUNT)
    if chance(draw, 1, 8):
        stmts.append(_ORG_SHARE)
    if chance(draw, 6, 10):
        stmts.append(root_delegation())
    if chance(draw, 1, 5):
        target = pick(draw, (slr_arn(KEY_ACCOUNT), f"arn:aws:iam::{OTHER_ACCOUNT}:root", req.identity_arn or slr_arn(KEY_ACCOUNT)))
        stmts += slr_key_statements(target)
    if req.account and req.account != KEY_ACCOUNT and chance(draw, 1, 3):
        # Seed case A2: the key owner lets the other account use the key.
        stmts += slr_key_statements(f"arn:aws:iam::{req.account}:root")[:1]
        if chance(draw, 1, 2):
            stmts.append({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{req.account}:root"}, "Action": "kms:CreateGrant", "Resource": "*"})
    stmts += draw_statements(draw, req, "key", 0 if stmts else 1, 3)
    # Statement order must not matter; rotate so generated statements also come first.
    k = count(draw, 0, len(stmts) - 1)
    return _varied_policy(draw, stmts[k:] + stmts[:k])


_SLR_OWN_POLICY = _policy([{"Effect": "Allow", "Action": ["ec2:*", "elasticloadbalancing:*"], "Resource": "*"}])


def draw_identity_policies(draw, req: Principal) -> list[dict]:
    if req.is_slr and not chance(draw, 1, 3):
        # The SLR's own, AWS-defined policy: no KMS permissions at all (seed case A).
        return [_SLR_OWN_POLICY]
    out = [_varied_policy(draw, draw_statements(draw, req, "identity", 1, 3)) for _ in range(count(draw, 0, 3))]
    if chance(draw, 2, 3):
        # The usual identity policy of a key user (seed cases B and C).
        out.append(_policy([{"Effect": "Allow", "Action": pick(draw, _TYPICAL_IDENTITY_ACTIONS), "Resource": pick(draw, (KEY_ARN, "*", f"arn:aws:kms:*:{KEY_ACCOUNT}:key/*"))}]))
    return out


_TYPICAL_IDENTITY_ACTIONS = (
    "kms:*",
    ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
    ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
    ["kms:Decrypt", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
)


FULL_SCP = {"Effect": "Allow", "Action": "*", "Resource": "*"}
RCP_FULL_ACCESS = _policy([{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}])


def draw_boundary(draw, req: Principal) -> dict:
    stmts = draw_statements(draw, req, "identity", 1, 2, allow_percent=85)
    if chance(draw, 1, 2):
        stmts.insert(0, {"Effect": "Allow", "Action": pick(draw, ("kms:*", "*", ["kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"])), "Resource": "*"})
    return _policy(stmts)


def draw_scp_levels(draw, req: Principal) -> list[list[dict]]:
    levels = []
    for _ in range(count(draw, 1, 3)):
        r = pick(draw, _RANGES[20])
        if r == 0:
            levels.append([])  # a level with nothing attached allows nothing
            continue
        policies = []
        if r > 3:
            policies.append(_policy([FULL_SCP]))
        else:
            # An allow-list SCP instead of FullAWSAccess.
            policies.append(_policy(draw_statements(draw, req, "scp", 1, 2, allow_percent=100)))
        if chance(draw, 1, 3):
            policies.append(_policy(draw_statements(draw, req, "scp", 1, 2, allow_percent=0)))
        levels.append(policies)
    return levels


def draw_rcp_levels(draw, req: Principal) -> list[list[dict]]:
    levels = []
    for _ in range(count(draw, 1, 2)):
        level = [RCP_FULL_ACCESS]
        if chance(draw, 1, 2):
            level.append(_policy(draw_statements(draw, req, "rcp", 1, 2)))
        levels.append(level)
    return levels


def draw_grants(draw, req: Principal) -> list[dict]:
    pool = [p for p in (req.identity_arn, slr_arn(KEY_ACCOUNT), slr_arn(OTHER_ACCOUNT), f"arn:aws:iam::{KEY_ACCOUNT}:role/AppRole") if p]
    return [
        {
            "GrantId": f"g-{i + 1}",
            "GranteePrincipal": pick(draw, pool),
            "Operations": sorted(subset(draw, GRANT_OPERATIONS, 1, 4)),
            "Constraints": None,
        }
        for i in range(count(draw, 1, 2))
    ]


# --- request context ----------------------------------------------------------------


_VIA_VALUES = (
    f"ec2.{REGION}.amazonaws.com",
    f"ec2.{REGION}.amazonaws.com",
    f"autoscaling.{REGION}.amazonaws.com",
    f"rds.{REGION}.amazonaws.com",
)
_EC_KEY_VALUES = (["aws:ebs:id"], ["Department"], ["Department", "Project"], ["aws:ebs:id", "Department"])


def draw_request_context(draw, req: Principal, action: str) -> dict:
    ctx: dict[str, str | list[str]] = {}
    keys = KEY_ACTIONS.get(action, ())
    if VIA in keys and chance(draw, 2, 3):
        ctx[VIA] = pick(draw, _VIA_VALUES)
    if GIFAR in keys and chance(draw, 3, 4):
        ctx[GIFAR] = pick(draw, ("true", "true", "false"))
    if GRANT_OPS in keys and chance(draw, 3, 4):
        ctx[GRANT_OPS] = sorted(subset(draw, GRANT_OPERATIONS, 1, 5))
    if EC_KEYS in keys and chance(draw, 1, 2):
        ctx[EC_KEYS] = list(pick(draw, _EC_KEY_VALUES))
    if req.kind != "service":
        if req.needs_principal_arn or chance(draw, 1, 10):
            ctx["aws:PrincipalArn"] = req.identity_arn
        if chance(draw, 1, 10):
            ctx["aws:PrincipalAccount"] = req.account
        if action not in WILDCARD_ONLY_ACTIONS and action not in ALIAS_ACTIONS and chance(draw, 1, 10):
            ctx["kms:CallerAccount"] = req.account
        if chance(draw, 1, 3):
            # The caller's organisation, known here (keyfix's diagnosis may not know it).
            ctx["aws:PrincipalOrgID"] = pick(draw, (ORG_ID, ORG_ID, OTHER_ORG_ID))
    return ctx


# --- whole cases ---------------------------------------------------------------------

_ALL_KEY_ACTIONS = tuple(sorted(KEY_ACTIONS))


def draw_case(draw) -> dict:
    req = draw_principal(draw)
    r = pick(draw, _RANGES[40])
    if r == 0 and req.kind != "service":
        action = pick(draw, WILDCARD_ONLY_ACTIONS)
    elif r == 1 and req.kind != "service":
        action = pick(draw, ALIAS_ACTIONS)
    elif r < 28:
        action = pick(draw, HOT_ACTIONS)
    else:
        action = pick(draw, _ALL_KEY_ACTIONS)
    wildcard_only = action in WILDCARD_ONLY_ACTIONS
    alias = action in ALIAS_ACTIONS

    request: dict = {"principal": req.arn, "action": action}
    if wildcard_only:
        request["resource"] = "*"
        request["resource_account"] = req.account
    elif alias:
        request["resource"] = ALIAS_ARN  # an alias has no resource policy: no key policy below
    else:
        request["resource"] = KEY_ARN
        if chance(draw, 1, 4):
            request["resource_account"] = KEY_ACCOUNT
    ctx = draw_request_context(draw, req, action)
    if ctx:
        request["context"] = ctx

    doc: dict = {"request": request}
    if not wildcard_only and not alias and not chance(draw, 1, 20):
        doc["resource_policy"] = draw_key_policy(draw, req)
    if req.kind not in ("service", "root"):
        ids = draw_identity_policies(draw, req)
        if ids or chance(draw, 1, 2):
            doc["identity_policies"] = ids
    if req.kind in ("user", "role", "session", "federated") and chance(draw, 1, 4):
        n = 2 if chance(draw, 1, 6) else 1
        doc["permission_boundaries"] = [draw_boundary(draw, req) for _ in range(n)]
    if req.kind != "service" and chance(draw, 1, 3):
        doc["scps"] = draw_scp_levels(draw, req)
    if not wildcard_only and chance(draw, 1, 4):
        doc["rcps"] = draw_rcp_levels(draw, req)
    if req.kind in ("role", "session") and chance(draw, 1, 5) or req.kind == "federated" and chance(draw, 2, 3):
        doc["session_policy"] = _policy(draw_statements(draw, req, "identity", 1, 2, allow_percent=90))
    if not wildcard_only and not alias and req.kind in ("slr-session", "session", "role", "user", "federated") and chance(draw, 1, 20):
        doc["grants"] = draw_grants(draw, req)
    return doc


# --- public strategies -------------------------------------------------------------------


@st.composite
def principals(draw) -> Principal:
    return draw_principal(draw)


@st.composite
def statements(draw, req: Principal, kind: str = "identity", allow_percent: int = 80) -> dict:
    return draw_statement(draw, req, kind, allow_percent)


@st.composite
def key_policies(draw, req: Principal) -> dict:
    return draw_key_policy(draw, req)


@st.composite
def identity_policies(draw, req: Principal) -> list[dict]:
    return draw_identity_policies(draw, req)


@st.composite
def kms_cases(draw) -> dict:
    """A whole `keyfix simulate` document."""
    return draw_case(draw)


# --- a deterministic corpus ------------------------------------------------------


class _Enough(Exception):
    """Stops hypothesis once the corpus is complete."""


def random_cases(n: int, seed: str = "keyfix-differential") -> list[dict]:
    """`n` distinct cases built by the same draw functions from seeded random.Random.

    Hypothesis' generator (generate_cases) revisits and mutates earlier examples, so a
    few thousand of its cases hold only ~2,000 distinct requests; this corpus adds
    breadth at a fraction of the cost. Deterministic for a given seed.
    """
    import json

    seen: dict[str, dict] = {}
    i = 0
    while len(seen) < n and i < n * 4:
        case = draw_case(RandomDraw(f"{seed}-{i}"))
        seen.setdefault(json.dumps(case, sort_keys=True), case)
        i += 1
    return list(seen.values())


def generate_cases(n: int, strategy=None) -> list[dict]:
    """Draw `n` distinct cases, the same ones on every run (derandomized hypothesis).

    Hypothesis' own generation machinery is used (its distribution: small and
    boundary choices early, richer cases later), but nothing is shrunk or stored: the
    corpus is a fixed function of the strategy code and the hypothesis version.
    Hypothesis repeats itself now and then; duplicates are dropped.
    """
    import json

    from hypothesis import HealthCheck, Phase, given, settings

    strategy = strategy if strategy is not None else kms_cases()
    seen: dict[str, dict] = {}

    @settings(
        max_examples=n * 4,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )
    @given(strategy)
    def collect(case):
        if len(seen) >= n:
            raise _Enough
        seen.setdefault(json.dumps(case, sort_keys=True), case)

    try:
        collect()
    except _Enough:
        pass
    return list(seen.values())[:n]
