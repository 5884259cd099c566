"""What keyfix reads about a principal: `read_principal(gw, arn) -> PrincipalFacts`.

For users and roles of THIS account: existence and unique id (GetUser / GetRole), the
identity policies in force (inline, attached managed at their default version, and for
users the inline and managed policies of their groups) and the permissions boundary
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).

Service-linked roles: existence only. Their permissions policy is defined by the service
and cannot be edited, and the Auto Scaling one has no access to customer managed keys
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html);
`identity_policies` is `()` for them: nothing an identity policy could fix.

Principals of another account: identity policies cannot be read from here (None, with
the reason). The account root user and AWS service principals: no reads.

Never raises for AWS errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyfix.arns import iam_arn_for_session, is_service_linked_role, parse_arn
from keyfix.resolve.facts import PrincipalFacts
from keyfix.resolve.gateway import AwsError, AwsGateway


def principal_kind(arn: str) -> str:
    """user | role | service-linked-role | root | service | federated-user | unknown."""
    parsed = parse_arn(arn)
    if parsed is None:
        return "service" if arn.endswith(".amazonaws.com") or arn.endswith(".amazonaws.com.cn") else "unknown"
    if parsed.service == "sts":
        if parsed.resource.startswith("assumed-role/"):
            return principal_kind(iam_arn_for_session(arn))
        if parsed.resource.startswith("federated-user/"):
            return "federated-user"
        return "unknown"
    if parsed.service != "iam":
        return "unknown"
    if parsed.resource == "root":
        return "root"
    if parsed.resource.startswith("user/"):
        return "user"
    if parsed.resource.startswith("role/"):
        return "service-linked-role" if is_service_linked_role(arn) else "role"
    return "unknown"


def read_principal(gw: AwsGateway, arn: str) -> PrincipalFacts:
    memo_key = ("iam.principal", arn)
    found = gw.memo.get(memo_key)
    if found is not None:
        return found
    facts = _read_principal(gw, arn)
    gw.memo[memo_key] = facts
    gw.memo[("iam.principal", facts.arn)] = facts
    return facts


def _read_principal(gw: AwsGateway, arn: str) -> PrincipalFacts:
    if parse_arn(arn) and parse_arn(arn).service == "sts" and ":assumed-role/" in arn:
        arn = iam_arn_for_session(arn)
    kind = principal_kind(arn)
    parsed = parse_arn(arn)
    account = parsed.account if parsed else None

    if kind == "service":
        return PrincipalFacts(arn=arn, kind="service", account=None)
    if kind == "federated-user":
        # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html: "the
        # session permissions are the intersection of the IAM user policies and the session
        # policies that you pass"; CloudTrail does not record the session policy.
        return PrincipalFacts(
            arn=arn, kind=kind, account=account,
            unreadable=("federated user session: its session policy is not in the event, and its name "
                        "identifies no IAM user",),
        )
    if kind == "unknown":
        return PrincipalFacts(
            arn=arn, kind=kind, account=account, unreadable=(f"{kind} principal: identity policies not read",)
        )
    if kind == "root":
        # The root user is not governed by identity policies; the key policy decides.
        return PrincipalFacts(
            arn=arn,
            kind="root",
            account=account,
            exists=True,
            unreadable=("account root user: not governed by identity policies",),
        )

    home = gw.home_account()
    if account != home:
        return PrincipalFacts(
            arn=arn,
            kind=kind,
            account=account,
            unreadable=(
                f"principal in account {account}: its existence and identity policies cannot be read "
                f"from account {home}",
            ),
        )

    name = parsed.name
    if kind == "user":
        return _read_user(gw, arn, name, account)
    return _read_role(gw, arn, name, account, kind)


def _read_role(gw: AwsGateway, arn: str, name: str, account: str | None, kind: str) -> PrincipalFacts:
    try:
        role = gw.read("iam", "GetRole", RoleName=name)["Role"]
    except AwsError as err:
        if err.code == "NoSuchEntity":
            return PrincipalFacts(arn=arn, kind=kind, account=account, exists=False, identity_policies=())
        return PrincipalFacts(arn=arn, kind=kind, account=account, unreadable=(err.reason(),))
    real_arn = role.get("Arn", arn)
    if real_arn != arn and (_names_path(arn) or is_service_linked_role(real_arn)):
        # Names are unique per account whatever the path, so a lookup by name finds a role
        # even for an event naming another path: that is not the principal the event names,
        # and it must not inherit the other role's trust (or allow-list match). A path-less
        # ARN (derived from an assumed-role session, which carries no path) takes IAM's path.
        return _not_the_named(arn, kind, account, real_arn)
    unique_id = role.get("RoleId")
    iam_name = role.get("RoleName")
    if str(role.get("Path", "")).startswith("/aws-service-role/") or kind == "service-linked-role":
        return PrincipalFacts(
            arn=real_arn, kind="service-linked-role", account=account, exists=True, unique_id=unique_id,
            identity_policies=(), iam_name=iam_name,
        )
    return _with_policies(
        gw, role, "role", real_arn, account, unique_id, lambda: _attached_policies(gw, "Role", name)
    )


def _names_path(arn: str) -> bool:
    """True when a role or user ARN states a path (role/PATH/NAME): then IAM's must match."""
    parsed = parse_arn(arn)
    return bool(parsed) and parsed.resource.count("/") > 1


def _not_the_named(arn: str, kind: str, account: str | None, real_arn: str) -> PrincipalFacts:
    return PrincipalFacts(
        arn=arn, kind=kind, account=account, exists=None,
        unreadable=(f"IAM's {kind} of that name is {real_arn}, not {arn} as the event says; keyfix does "
                    "not read or act on a different principal",),
    )


def _read_user(gw: AwsGateway, arn: str, name: str, account: str | None) -> PrincipalFacts:
    try:
        user = gw.read("iam", "GetUser", UserName=name)["User"]
    except AwsError as err:
        if err.code == "NoSuchEntity":
            return PrincipalFacts(arn=arn, kind="user", account=account, exists=False, identity_policies=())
        return PrincipalFacts(arn=arn, kind="user", account=account, unreadable=(err.reason(),))
    real_arn = user.get("Arn", arn)
    if real_arn != arn:
        # CloudTrail names users with their path; another path is another (absent) user.
        return _not_the_named(arn, "user", account, real_arn)
    return _with_policies(gw, user, "user", real_arn, account, user.get("UserId"), lambda: _user_policies(gw, name))


def _user_policies(gw: AwsGateway, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """A user's own policies, then those of each of its groups (named "group:<group>/<policy>")."""
    docs, names = _attached_policies(gw, "User", name)
    for group in gw.read_all("iam", "ListGroupsForUser", "Groups", UserName=name):
        group_name = group["GroupName"]
        group_docs, group_names = _attached_policies(gw, "Group", group_name)
        docs.extend(group_docs)
        names.extend(f"group:{group_name}/{n}" for n in group_names)
    return docs, names


def _with_policies(
    gw: AwsGateway,
    entity: dict[str, Any],
    kind: str,
    real_arn: str,
    account: str | None,
    unique_id: str | None,
    read_policies: Callable[[], tuple[list[dict[str, Any]], list[str]]],
) -> PrincipalFacts:
    """The facts of an existing role or user (GetRole/GetUser `entity`): its identity policies
    (`read_policies`) and permissions boundary, or what made them unreadable."""
    boundary_arn = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    iam_name = entity.get("RoleName") if kind == "role" else entity.get("UserName")
    try:
        docs, names = read_policies()
        boundary = _managed_document(gw, boundary_arn) if boundary_arn else None
    except AwsError as err:
        return PrincipalFacts(
            arn=real_arn, kind=kind, account=account, exists=True, unique_id=unique_id,
            permission_boundary_arn=boundary_arn, unreadable=(err.reason(),), iam_name=iam_name,
        )
    return PrincipalFacts(
        arn=real_arn,
        kind=kind,
        account=account,
        exists=True,
        unique_id=unique_id,
        identity_policies=tuple(docs),
        identity_policy_names=tuple(names),
        permission_boundary=boundary,
        permission_boundary_arn=boundary_arn,
        iam_name=iam_name,
    )


def _attached_policies(gw: AwsGateway, entity: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Inline then attached managed policy documents of a User, Role or Group."""
    name_param = {f"{entity}Name": name}
    docs: list[dict[str, Any]] = []
    names: list[str] = []
    for policy_name in gw.read_all("iam", f"List{entity}Policies", "PolicyNames", **name_param):
        doc = gw.read("iam", f"Get{entity}Policy", PolicyName=policy_name, **name_param)["PolicyDocument"]
        docs.append(_as_document(doc))
        names.append(f"inline:{policy_name}")
    for attached in gw.read_all("iam", f"ListAttached{entity}Policies", "AttachedPolicies", **name_param):
        policy_arn = attached["PolicyArn"]
        docs.append(_managed_document(gw, policy_arn))
        names.append(policy_arn)
    return docs, names


def _managed_document(gw: AwsGateway, policy_arn: str) -> dict[str, Any]:
    """The default version of a managed policy (GetPolicy -> DefaultVersionId -> GetPolicyVersion,
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetPolicyVersion.html)."""
    version = gw.read("iam", "GetPolicy", PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    doc = gw.read("iam", "GetPolicyVersion", PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
    return _as_document(doc)


def _as_document(doc: Any) -> dict[str, Any]:
    # boto3 decodes IAM policy documents (URL-encoded JSON) into dicts; be safe with strings.
    if isinstance(doc, str):
        import json
        from urllib.parse import unquote

        return json.loads(unquote(doc))
    return doc
