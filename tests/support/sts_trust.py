"""AssumeRole that checks the role, for tests of the organisation scan.

moto 5.2.5's AssumeRole hands out credentials for any role ARN, existing or not, whatever its
trust policy says ("the role does not need to exist", moto.sts.models.STSBackend.assume_role).
AWS refuses both with AccessDenied ("... is not authorized to perform: sts:AssumeRole on
resource: ..."; https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html).

`enforced()` patches moto's STS response so that AssumeRole succeeds only when the role
exists and one Allow statement of its trust policy admits the caller. The evaluation is the
subset the StackSet's scan role uses, and fails closed on anything else: Principal AWS as an
account id, a root ARN or an exact principal ARN; conditions StringEquals / ArnLike /
ArnEquals / StringLike on aws:PrincipalArn, aws:PrincipalAccount, sts:ExternalId. The
caller's aws:PrincipalArn is its IAM user or role ARN (for a role session, the role's:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
Not the package's gap layer: keyfix's own code never depends on it, only these tests do.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote


def _caller_principal_arn(response: Any) -> tuple[str, str]:
    """(account, aws:PrincipalArn) of the request's access key."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    account = response.get_current_account()
    key = response.get_access_key()
    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
    if assumed is not None:
        return account, assumed.role_arn
    for user in iam_backends[account]["aws"].users.values():
        if any(k.access_key_id == key for k in user.access_keys):
            return account, user.arn
    return account, f"arn:aws:iam::{account}:root"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, account: str, arn: str) -> bool:
    if not isinstance(principal, dict):
        return False
    for entry in _as_list(principal.get("AWS", [])):
        if entry in (account, f"arn:aws:iam::{account}:root", arn):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in conditions.items():
        for key, values in pairs.items():
            actual = context.get(key)
            if actual is None:
                return False
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in _as_list(values)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, v) for v in _as_list(values))
            else:
                return False  # an operator this stand-in does not know: deny
            if not ok:
                return False
    return True


def trust_admits(trust: dict[str, Any], account: str, arn: str, external_id: str | None) -> bool:
    context = {"aws:PrincipalArn": arn, "aws:PrincipalAccount": account}
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    for statement in _as_list(trust.get("Statement", [])):
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in _as_list(statement.get("Action", [])):
            continue
        if _principal_matches(statement.get("Principal"), account, arn) and \
                _conditions_hold(statement.get("Condition", {}), context):
            return True
    return False


@contextlib.contextmanager
def enforced() -> Iterator[list[dict[str, str]]]:
    """Patch AssumeRole; yields the list of attempts (RoleArn, RoleSessionName, caller, outcome)."""
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    original = TokenResponse.assume_role
    attempts: list[dict[str, str]] = []

    def assume_role(self: Any) -> Any:
        role_arn = self._get_param("RoleArn")
        account, caller = _caller_principal_arn(self)
        attempt = {"role": role_arn, "session": self._get_param("RoleSessionName"), "caller": caller}
        attempts.append(attempt)
        target = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        role = next((r for r in iam_backends[target]["aws"].roles.values() if r.arn == role_arn), None) \
            if target else None
        trust = json.loads(unquote(role.assume_role_policy_document)) if role is not None else None
        if trust is None or not trust_admits(trust, account, caller, self._get_param("ExternalId")):
            attempt["outcome"] = "denied"
            raise STSClientError("AccessDenied", f"User: {caller} is not authorized to perform: sts:AssumeRole "
                                                 f"on resource: {role_arn}")
        attempt["outcome"] = "assumed"
        return original(self)

    TokenResponse.assume_role = assume_role
    try:
        yield attempts
    finally:
        TokenResponse.assume_role = original
