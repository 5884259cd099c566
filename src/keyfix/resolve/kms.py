"""What keyfix reads about a KMS key: `read_key(gw, key_ref, region) -> KeyFacts`.

Reads, in order, and only what the diagnosis needs:

1. DescribeKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html):
   KeyState, KeyManager, the owner account (AWSAccountId). Accepts a key id, key ARN,
   alias name or alias ARN; works across accounts with a key or alias ARN.
2. GetKeyPolicy with PolicyName "default"
   (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html): only for a
   key in this account (or an account keyfix may assume a role in). Cross-account use: No
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-viewing.html).
3. ListGrants (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html),
   paginated; cross-account use is allowed with the key ARN (the key policy must allow
   kms:ListGrants to the calling account).
4. ListResourceTags (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListResourceTags.html):
   same account only; the tags carry `keyfix:auto-remediate`. Not read with the key
   (`KeyFacts.tags_unread`): only `read_tags`, when a policy in force conditions on
   aws:ResourceTag/ (resolve/context.py) or when apply mode is about to write a key policy
   that KEYFIX_KEY_ALLOWLIST does not cover (remedies/apply.py). Propose mode never needs
   the opt-in tag, so in the common case the call is not made at all (issue #14, P2).

AWS managed keys (KeyManager AWS, e.g. aws/ebs): DescribeKey, and in this account the key
policy (AWS writes it: for aws/ebs it lets every principal of the account use the key
through EC2, with kms:ViaService and kms:CallerAccount conditions; the decision needs it to
say "nothing is missing"). Grants and tags are not read: keyfix never writes to such a key.
An AWS managed key of another account cannot be used at all
(https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).

Never raises for AWS errors: NotFoundException -> exists=False; a denied read -> that
field None (tags: empty) and the reason in `unreadable`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from keyfix.arns import key_ref_account_region, parse_arn
from keyfix.resolve.facts import KeyFacts
from keyfix.arns import partition_of
from keyfix.resolve.gateway import AwsError, AwsGateway

CROSS_ACCOUNT_POLICY_REASON = (
    "kms:GetKeyPolicy: the key is in account {account}; a key policy can only be read in the key's own "
    "account (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-viewing.html)"
)
CROSS_ACCOUNT_TAGS_REASON = (
    "kms:ListResourceTags: the key is in account {account}; tags can only be listed in the key's own account"
)
AWS_MANAGED_GRANTS_REASON = "kms:ListGrants not read: AWS managed key (never changed by keyfix)"
AWS_MANAGED_TAGS_REASON = "kms:ListResourceTags not read: AWS managed key (never changed by keyfix)"


def read_key(gw: AwsGateway, key_ref: str, region: str) -> KeyFacts:
    """Facts about one key; memoised per gateway under every reference it was reached by."""
    memo_key = ("kms.key", key_ref)
    found = gw.memo.get(memo_key)
    if found is not None:
        return found
    facts = _read_key(gw, key_ref, region)
    gw.memo[memo_key] = facts
    gw.memo[("kms.key", facts.arn)] = facts
    return facts


def _read_key(gw: AwsGateway, key_ref: str, region: str) -> KeyFacts:
    ref_account, ref_region = key_ref_account_region(key_ref)
    region = ref_region or region
    home = gw.home_account()
    account = ref_account or home or ""
    aliases: tuple[str, ...] = (_alias_name(key_ref),) if _is_alias(key_ref) else ()

    try:
        meta = gw.read("kms", "DescribeKey", region=region, KeyId=key_ref)["KeyMetadata"]
    except AwsError as err:
        arn = key_ref if key_ref.startswith("arn:") else _ref_as_arn(key_ref, account, region)
        if err.code == "NotFoundException":
            return KeyFacts(
                arn=arn, account=account, region=region, exists=False, aliases=aliases, unreadable=(err.reason(),)
            )
        # Denied or unreachable: whether the key exists is unknown; state stays None.
        return KeyFacts(arn=arn, account=account, region=region, aliases=aliases, unreadable=(err.reason(),))

    arn = meta["Arn"]
    account = meta.get("AWSAccountId") or (parse_arn(arn).account if parse_arn(arn) else account)
    state = meta.get("KeyState")
    manager = meta.get("KeyManager")
    unreadable: list[str] = []
    # In another account, act as that account only when a role there is configured.
    own = account == home
    acting = None if own else (account if gw.can_reach(account) else False)

    policy = None
    if acting is False:
        unreadable.append(CROSS_ACCOUNT_POLICY_REASON.format(account=account))
    else:
        try:
            text = gw.read("kms", "GetKeyPolicy", account=acting, region=region, KeyId=arn, PolicyName="default")[
                "Policy"
            ]
            policy = json.loads(text)
            if not isinstance(policy, dict):
                unreadable.append("kms:GetKeyPolicy returned a policy that is not a JSON object")
                policy = None
        except AwsError as err:
            unreadable.append(err.reason())
        except ValueError as err:  # not JSON: AWS never does this, but never raise
            unreadable.append(f"kms:GetKeyPolicy returned a policy that is not JSON: {err}")

    grants: tuple[dict[str, Any], ...] | None = None
    tags_unread = False
    if manager == "AWS":
        unreadable += [AWS_MANAGED_GRANTS_REASON, AWS_MANAGED_TAGS_REASON]
    else:
        grants = _grants(gw, arn, region, acting, unreadable)
        if acting is False:
            unreadable.append(CROSS_ACCOUNT_TAGS_REASON.format(account=account))
        else:
            tags_unread = True  # read_tags, when something needs them

    return KeyFacts(
        arn=arn,
        account=account,
        region=region,
        state=state,
        manager=manager,
        policy=policy,
        grants=grants,
        aliases=aliases,
        unreadable=tuple(unreadable),
        tags_unread=tags_unread,
    )


def read_tags(gw: AwsGateway, key: KeyFacts) -> KeyFacts:
    """`key` with its tags (ListResourceTags, in the key's own account or one keyfix can act
    in), read at most once per gateway; unchanged when they were read or cannot be."""
    if not key.tags_unread:
        return key
    memo_key = ("kms.tags", key.arn)
    found = gw.memo.get(memo_key)
    if found is not None:
        return found
    acting = None if key.account == gw.home_account() else key.account
    tags: dict[str, str] = {}
    unreadable = list(key.unreadable)
    try:
        items = gw.read_all("kms", "ListResourceTags", "Tags", account=acting, region=key.region, KeyId=key.arn)
        tags = {t["TagKey"]: t["TagValue"] for t in items}
    except AwsError as err:
        unreadable.append(err.reason())
    tagged = replace(key, tags=tags, tags_unread=False, unreadable=tuple(unreadable))
    gw.memo[memo_key] = tagged
    gw.memo[("kms.key", key.arn)] = tagged
    return tagged



def _grants(
    gw: AwsGateway, arn: str, region: str, acting: str | bool | None, unreadable: list[str]
) -> tuple[dict[str, Any], ...] | None:
    """ListGrants of a customer managed key; None (and the reason in `unreadable`) if it
    cannot be read."""
    try:
        # From the key's account when keyfix can act there; otherwise across accounts with the key ARN.
        return tuple(gw.read_all("kms", "ListGrants", "Grants", account=acting or None, region=region, KeyId=arn))
    except AwsError as err:
        unreadable.append(err.reason())
        return None


def _is_alias(key_ref: str) -> bool:
    return key_ref.startswith("alias/") or ":alias/" in key_ref


def _alias_name(key_ref: str) -> str:
    return "alias/" + key_ref.split("alias/", 1)[1]


def _ref_as_arn(key_ref: str, account: str, region: str) -> str:
    if _is_alias(key_ref):
        return f"arn:{partition_of(region)}:kms:{region}:{account}:{_alias_name(key_ref)}"
    return f"arn:{partition_of(region)}:kms:{region}:{account}:key/{key_ref}"
