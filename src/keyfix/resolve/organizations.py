"""This account's AWS Organizations membership: the value of aws:PrincipalOrgID for its principals.

One read, DescribeOrganization
(https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeOrganization.html),
which "can be called from any account in the organization"
(https://docs.aws.amazon.com/organizations/latest/APIReference/action-reference.html).

- It answers: the account is in organization `Id`; its principals' requests carry
  aws:PrincipalOrgID = that id.
- AWSOrganizationsNotInUseException: the account is in no organization. aws:PrincipalOrgID
  "is included in the request context only if the principal is a member of an organization"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid),
  so the key is known to be absent, not unknown.
- Anything else (AccessDenied, throttling, the call budget): unknown.

aws:PrincipalOrgPaths is never resolved: the account's OU path needs ListParents, which only the
management account or a delegated administrator may call (API_ListParents.html), one call per
level; keyfix leaves it unknown rather than spend calls that a member account is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfix.resolve.gateway import AwsError, AwsGateway

MEMBER = "member"
NOT_IN_ORGANIZATION = "none"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class OrganizationFacts:
    status: str  # member | none | unknown
    org_id: str | None = None
    reason: str | None = None  # why unknown


def read_organization(gw: AwsGateway) -> OrganizationFacts:
    """This account's organization, read at most once per gateway."""
    found = gw.memo.get(("organizations.self",))
    if found is not None:
        return found
    facts = _read(gw)
    gw.memo[("organizations.self",)] = facts
    return facts


def _read(gw: AwsGateway) -> OrganizationFacts:
    try:
        org = gw.read("organizations", "DescribeOrganization").get("Organization") or {}
    except AwsError as err:
        if err.code == "AWSOrganizationsNotInUseException":
            return OrganizationFacts(NOT_IN_ORGANIZATION)
        return OrganizationFacts(UNKNOWN, reason=err.reason())
    org_id = org.get("Id")
    if not isinstance(org_id, str) or not org_id.startswith("o-"):
        return OrganizationFacts(UNKNOWN, reason="organizations:DescribeOrganization returned no organization id")
    return OrganizationFacts(MEMBER, org_id=org_id)
