"""The request context keyfix can know, and the keys it cannot: unknown is not denied.

After the readers have built each `AccessNeed` (principal x key, with the KMS keys of the
request: kms:ViaService, kms:CallerAccount, ...), this step adds the global condition keys
keyfix can read, and lists in `AccessNeed.unknown_keys` those whose value AWS would send but
keyfix cannot know. The policy model then evaluates a condition on an unknown key as unknown,
not false, and a decision that depends on one is `Undetermined` (keyfix.policy.unknowns):
the diagnosis proposes and writes nothing on it.

Reads are made only for keys a policy in force actually mentions (the key policy, the
principal's identity policies and boundary, as condition keys or policy variables): a key no
policy reads cannot change a decision, and the read would be an AWS call for nothing.

Global keys (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html):
- principal properties: aws:PrincipalOrgID (organizations.py), aws:PrincipalTag/ (principal_tags.py)
  are read; aws:PrincipalOrgPaths is not (organizations.py says why); aws:userid is the IAM
  user's unique id (read with GetUser) and for a role session "role-id:session-name", unknown
  here. aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:username,
  aws:PrincipalIsAWSService, aws:PrincipalServiceName and aws:userid of the root user or a
  federated user are derived by the model (keyfix.policy.request) and never marked unknown.
- resource properties: aws:ResourceTag/ is the key's tags, read with ListResourceTags in the
  key's own account, here and only when a policy in force mentions it (kms.read_tags);
  aws:ResourceAccount is the key's account; aws:ResourceOrgID is this
  account's organization for a key of this account; otherwise unknown.
- network properties: aws:SourceIp, aws:SourceVpc, aws:SourceVpce, aws:SourceVpcArn,
  aws:VpcSourceIp: the event does not carry what the request came through; unknown.
- resource of a service principal's request: aws:SourceArn, aws:SourceAccount,
  aws:SourceOrgID, aws:SourceOrgPaths: "only available when the call to your resource is
  made directly by an AWS service principal"; unknown for a service principal, absent otherwise.
- requests made through services: aws:CalledVia, aws:CalledViaFirst, aws:CalledViaLast,
  aws:ViaAWSService: unknown (KMS's own kms:ViaService is in the context).
- session properties: aws:MultiFactorAuthPresent, aws:MultiFactorAuthAge, aws:TokenIssueTime,
  aws:SourceIdentity: unknown.
- request properties: aws:RequestTag/, aws:TagKeys, aws:SecureTransport, aws:CurrentTime,
  aws:EpochTime, aws:UserAgent, aws:Referer: unknown; aws:RequestedRegion is the key's Region
  (a KMS key is regional: a request for it goes to its Region).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache

from keyfix.arns import account_of
from keyfix.resolve.facts import AccessNeed, KeyFacts, PrincipalFacts, Situation
from keyfix.resolve.gateway import AwsGateway
from keyfix.resolve.iam import principal_kind
from keyfix.resolve.kms import read_tags
from keyfix.resolve.organizations import MEMBER, NOT_IN_ORGANIZATION, read_organization
from keyfix.resolve.principal_tags import read_principal_tags

# Never readable from the event or the account (module docstring).
ALWAYS_UNKNOWN = (
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:SourceVpcArn",
    "aws:VpcSourceIp",
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:ViaAWSService",
    "aws:MultiFactorAuthPresent",
    "aws:MultiFactorAuthAge",
    "aws:TokenIssueTime",
    "aws:SourceIdentity",
    "aws:RequestTag/",
    "aws:TagKeys",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:UserAgent",
    "aws:Referer",
)
# Sent only with a service principal's own requests.
SERVICE_PRINCIPAL_UNKNOWN = ("aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths")


def resolve_context(gw: AwsGateway, s: Situation) -> None:
    """Give every need of `s` the context keyfix can read and the keys it cannot."""
    s.needs = [_with_context(gw, s, need) for need in s.needs]


def _with_context(gw: AwsGateway, s: Situation, need: AccessNeed) -> AccessNeed:
    key = s.keys.get(need.key_arn)
    principal = s.principals.get(need.principal)
    mentioned = _mentioned_once(gw, key, principal)
    home = gw.account
    context = dict(need.context)
    unknown: list[str] = list(ALWAYS_UNKNOWN)
    readings: list[str] = list(need.readings)
    is_service = not need.principal.startswith("arn:")
    own_principal = not is_service and account_of(need.principal) == home

    def org_status() -> tuple[str, str | None]:
        org = read_organization(gw)
        return org.status, org.org_id

    # -- the principal's organization
    if is_service:
        unknown += SERVICE_PRINCIPAL_UNKNOWN  # not an organization member: no aws:PrincipalOrg*
    elif own_principal and "aws:principalorgid" in mentioned:
        status, org_id = org_status()
        if status == MEMBER:
            context["aws:PrincipalOrgID"] = org_id or ""
        elif status != NOT_IN_ORGANIZATION:  # absent when in none: known, not unknown
            unknown.append("aws:PrincipalOrgID")
    else:
        unknown.append("aws:PrincipalOrgID")
    if not is_service:
        if own_principal and "aws:principalorgpaths" in mentioned and org_status()[0] == NOT_IN_ORGANIZATION:
            pass  # absent
        else:
            unknown.append("aws:PrincipalOrgPaths")

    # -- the principal's tags and unique id
    if not is_service:
        tags = read_principal_tags(gw, principal) if (principal and "aws:principaltag/" in mentioned) else None
        if tags is not None and tags.tags is not None:
            context.update({f"aws:PrincipalTag/{k}": v for k, v in tags.tags.items()})
            if tags.reading:
                readings.append(tags.reading)
        else:
            unknown.append("aws:PrincipalTag/")
        kind = principal_kind(need.principal)
        if kind == "user" and principal is not None and principal.unique_id and principal.exists:
            if "aws:userid" in mentioned:
                context["aws:userid"] = principal.unique_id
        elif kind not in ("root", "federated-user"):  # those two the model derives
            unknown.append("aws:userid")

    # -- the key
    if key is not None:
        if "aws:requestedregion" in mentioned:
            context["aws:RequestedRegion"] = key.region
        if "aws:resourceaccount" in mentioned:
            context["aws:ResourceAccount"] = key.account
        if "aws:resourcetag/" in mentioned and key.account == home and key.tags_unread:
            # Read only now that a policy in force conditions on them (kms.read_tags).
            key = read_tags(gw, key)
            s.keys[need.key_arn] = key
        if "aws:resourcetag/" in mentioned and _tags_read(key, home):
            context.update({f"aws:ResourceTag/{k}": v for k, v in key.tags.items()})
        else:
            unknown.append("aws:ResourceTag/")
        if key.account == home and "aws:resourceorgid" in mentioned:
            status, org_id = org_status()
            if status == MEMBER:
                context["aws:ResourceOrgID"] = org_id or ""
            elif status != NOT_IN_ORGANIZATION:
                unknown.append("aws:ResourceOrgID")
        else:
            unknown.append("aws:ResourceOrgID")
        unknown.append("aws:ResourceOrgPaths")

    return replace(need, context=context, unknown_keys=_not_given(unknown, context), readings=tuple(readings))


def _tags_read(key: KeyFacts, home: str | None) -> bool:
    """The key's tags are what ListResourceTags returned in the key's own account."""
    return (key.account == home and key.manager == "CUSTOMER" and not key.tags_unread
            and not any("ListResourceTags" in reason for reason in key.unreadable))


def _mentioned_once(gw: AwsGateway, key: KeyFacts | None, principal: PrincipalFacts | None) -> str:
    """`_mentioned`, once per pair of facts in this gateway's life: a scan asks it for every
    group on the same key and role (issue #14, P6). The facts are frozen and memoised by
    keyfix.resolve.kms / iam for the pass; the entry holds them, so their ids are not reused
    while it lives, and it goes when `gw.memo` is cleared (facts re-read: a new pair)."""
    memo_key = ("context.mentioned", id(key), id(principal))
    found = gw.memo.get(memo_key)
    if found is not None and found[0] is key and found[1] is principal:
        return found[2]
    text = _mentioned(key, principal)
    gw.memo[memo_key] = (key, principal, text)
    return text


def _mentioned(key: KeyFacts | None, principal: PrincipalFacts | None) -> str:
    """The policies in force, lower-cased: condition keys and policy variables show in it."""
    documents: list[object] = []
    if key is not None and key.policy is not None:
        documents.append(key.policy)
    if principal is not None:
        documents += list(principal.identity_policies or ())
        if principal.permission_boundary is not None:
            documents.append(principal.permission_boundary)
    return json.dumps(documents, default=str).lower()


def _not_given(unknown: list[str], context: dict[str, str | list[str]]) -> tuple[str, ...]:
    """A key is given or unknown, never both (keyfix.policy.request)."""
    return _not_given_names(tuple(unknown), tuple(context))


@lru_cache(maxsize=1024)
def _not_given_names(unknown: tuple[str, ...], context_keys: tuple[str, ...]) -> tuple[str, ...]:
    # Depends on names only, and a pass meets few distinct lists (one per kind of principal
    # and key): remembered, as a scan asks it for every group (issue #14, P6).
    given = {k.lower() for k in context_keys}
    out = []
    for name in dict.fromkeys(unknown):
        lowered = name.lower()
        if lowered in given or (lowered.endswith("/") and any(g.startswith(lowered) for g in given)):
            continue
        out.append(name)
    return tuple(out)
