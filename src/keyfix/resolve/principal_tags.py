"""The tags a request of this account's user or role carries as aws:PrincipalTag/<key>.

"aws:PrincipalTag/tag-key ... the tag attached to the principal making the request"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principaltag).

- An IAM user: its own tags (iam:ListUserTags,
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUserTags.html) are all of them.
- A role session: the role's tags (iam:ListRoleTags), plus session tags and transitive tags
  passed when the role was assumed, which override role tags of the same key
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html). CloudTrail's KMS event
  does not carry them, so for an ordinary role keyfix does not know the principal's tags: they
  stay unknown and no call is made.
- A service-linked role is assumed only by its service. AWS's pages do not say whether a
  service passes session tags when it does; keyfix reads the role's own tags (ListRoleTags:
  "The role can be a regular role or a service-linked role", API_TagRole.html) and records that
  reading, so that a decision resting on them is explained but never written on.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfix.resolve.facts import PrincipalFacts
from keyfix.resolve.gateway import AwsError, AwsGateway

READING_SLR_TAGS = "service-linked-role-session-has-no-session-tags"


@dataclass(frozen=True)
class PrincipalTags:
    tags: dict[str, str] | None  # None: unknown
    reason: str | None = None  # why unknown
    reading: str | None = None  # the reading the tags rest on, if any


def read_principal_tags(gw: AwsGateway, principal: PrincipalFacts) -> PrincipalTags:
    """The principal's tags as AWS would send them, or unknown (with the reason)."""
    if principal.account != gw.home_account() or not principal.iam_name or principal.exists is not True:
        return PrincipalTags(None, f"the tags of {principal.arn} cannot be read from this account")
    if principal.kind == "user":
        return _read(gw, "ListUserTags", {"UserName": principal.iam_name})
    if principal.kind == "service-linked-role":
        found = _read(gw, "ListRoleTags", {"RoleName": principal.iam_name})
        return PrincipalTags(found.tags, found.reason, READING_SLR_TAGS if found.tags is not None else None)
    return PrincipalTags(None, f"{principal.arn} acts through role sessions, whose session tags (which add to and "
                               "override the role's tags) the event does not carry")


def _read(gw: AwsGateway, operation: str, params: dict[str, str]) -> PrincipalTags:
    try:
        items = gw.read_all("iam", operation, "Tags", **params)
    except AwsError as err:
        return PrincipalTags(None, err.reason())
    tags: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Key"), str) and isinstance(item.get("Value"), str):
            tags[item["Key"]] = item["Value"]
    return PrincipalTags(tags)
