"""Tell the person who hit the problem, as c7n-mailer tells a resource's owner.

A user or role of this account tagged `keyfix:owner` = `alice@example.com` (several
addresses separated by spaces; IAM tag values allow letters, digits, spaces and `_.:/=+-@`:
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html#id_tags_rules_creating) gets
the proposal too: the message carries the attribute `owner` = [addresses], and the owner's
address is subscribed to the topic with the filter policy {"owner": ["alice@example.com"]}
(README, "Notifications"). keyfix never sends to an address nobody subscribed: a tag alone
reaches no one, so tagging a principal cannot make keyfix mail an arbitrary address.

Off unless KEYFIX_NOTIFY_OWNERS=true (template parameter NotifyOwners): only then does keyfix
call iam:ListUserTags / iam:ListRoleTags here (already in its read-only role), once per
principal with a proposed or refused fix. A tag it cannot read is no owner, never an error.
"""

from __future__ import annotations

import logging
import os
import re

from keyfix.arns import Arn, ArnError
from keyfix.report import FixStatus, Report

log = logging.getLogger("keyfix")

OWNER_TAG = "keyfix:owner"
NOTIFY_OWNERS_ENV = "KEYFIX_NOTIFY_OWNERS"
MAX_OWNERS = 5
_ADDRESS = re.compile(r"^[A-Za-z0-9._+=/:-]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}$")
_WORTH_TELLING = {FixStatus.PROPOSED, FixStatus.REFUSED}


def enabled(env=None) -> bool:
    env = os.environ if env is None else env
    return env.get(NOTIFY_OWNERS_ENV, "").strip().lower() == "true"


def addresses(tag_value: str) -> list[str]:
    return [a for a in tag_value.split() if _ADDRESS.match(a)][:MAX_OWNERS]


def principal_name(principal: str | None, account: str) -> tuple[str, str] | None:
    """("user" | "role", name) for a user, role or role session of `account`; None otherwise
    (service-linked roles have no owner to tell: AWS owns them)."""
    try:
        arn = Arn.parse(principal or "")
    except ArnError:
        return None
    if arn.account != account or arn.service not in ("iam", "sts"):
        return None
    kind, _, rest = arn.resource.partition("/")
    if arn.service == "sts" and kind == "assumed-role":
        return ("role", rest.split("/", 1)[0]) if rest else None
    if arn.service == "iam" and kind in ("user", "role") and rest and not rest.startswith("aws-service-role/"):
        return kind, rest.rsplit("/", 1)[-1]
    return None


def owners_to_tell(report: Report, gw, account: str, env=None) -> list[str]:
    if not enabled(env) or not account:
        return []
    from botocore.exceptions import BotoCoreError, ClientError

    found: list[str] = []
    seen = set()
    for finding in report.findings:
        if not any(fix.status in _WORTH_TELLING for fix in finding.fixes):
            continue
        who = principal_name(finding.principal, account)
        if who is None or who in seen:
            continue
        seen.add(who)
        kind, name = who
        try:
            if kind == "user":
                tags = gw.client("iam").list_user_tags(UserName=name).get("Tags", [])
            else:
                tags = gw.client("iam").list_role_tags(RoleName=name).get("Tags", [])
        except (ClientError, BotoCoreError) as exc:
            log.warning("owner tag of %s %s not readable: %s", kind, name, exc)
            continue
        for tag in tags:
            if tag.get("Key") == OWNER_TAG:
                found.extend(addresses(str(tag.get("Value", ""))))
    return list(dict.fromkeys(found))[:MAX_OWNERS]
