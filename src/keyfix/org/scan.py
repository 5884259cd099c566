"""The organisation scan (issue #15, item 4): `keyfix scan --organization` from the security account.

Lists the organisation's active accounts, assumes the read-only role the StackSet deploys in
each (org/member-additions.yaml, `OrgScanRole`: `/keyfix/keyfix-org-scan`, trusted only by
roles under `/keyfix/` of the security account, no external id), runs the very scan of
`keyfix scan` with that role's session (one gateway per account), and combines the results:

    {"schema": "keyfix.org-scan/1", "organization", "scanned_from", "region", "role",
     "accounts": {"listed", "scanned", "not_scanned"},
     "scans": [keyfix.scan/1, one per account scanned],
     "not_scanned": [{"account", "name", "code", "reason"}],
     "inactive": [{"account", "state"}], "unknown_accounts": [...], "unchecked": [...], "complete": bool}

Schema: src/keyfix/schemas/org-scan.schema.json. The account the scan runs in is scanned with
the caller's own credentials: it needs no role to read itself (and StackSets never deploys to
the management account, which is often where an organisation is listed from:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-associate-stackset-with-org.html).

It only ever reads: propose mode, no store, no notification; `--mode apply` is refused
before any AWS call (a write in a member account belongs to that account's own keyfix, under
its own allow-lists and audit journal, not to a role that is read-only by design).

Exit status: 2 bad input (an --accounts entry that is not 12 digits, or not an active account
of the organisation; the organisation cannot be listed from here); 1 some account has a group
or instance that fails or would fail (wins over 3, as in `keyfix scan`); 3 an account could
not be scanned or its scan did not complete, or AWS would not list the accounts (throttling,
transport: `unchecked`); 0 otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from keyfix.predict.scan import EXIT_BAD_INPUT, EXIT_BROKEN, EXIT_INCOMPLETE, EXIT_OK, document, exit_status
from keyfix.resolve.gateway import AwsError, AwsGateway

log = logging.getLogger("keyfix")

SCHEMA = "keyfix.org-scan/1"
DEFAULT_ROLE_NAME = "keyfix-org-scan"
DEFAULT_ROLE_PATH = "/keyfix/"  # org/member-additions.yaml, OrgScanRole's Path
# Shown in the member's CloudTrail as the assumed role's session name.
# RoleSessionName: [\w+=,.@-]{2,64}, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
SESSION_NAME = "keyfix-org-scan"
PAGE_SIZE = 20

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
# Role names and paths: https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_ROLE_PATH = re.compile(r"/([\x21-\x7e]{1,510}/)?", re.ASCII)
# Organizations errors that mean "not from here": only the management account or a delegated
# administrator may call ListAccounts (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html),
# and an account in no organisation gets AWSOrganizationsNotInUseException.
_NOT_FROM_HERE = {"AWSOrganizationsNotInUseException", "AccessDeniedException", "AccessDenied"}


class OrgScanUsageError(ValueError):
    """Bad input or usage: exit 2, nothing scanned."""


@dataclass
class AccountScan:
    account: str
    name: str
    doc: dict[str, Any]
    status: int
    gateway: AwsGateway  # kept for tests: every call the account's scan made


@dataclass
class NotScanned:
    account: str
    name: str
    code: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"account": self.account, "name": self.name, "code": self.code, "reason": self.reason}


@dataclass
class OrgScan:
    organization: str
    scanned_from: str
    region: str
    role_path: str
    role_name: str
    listed: int = 0
    scans: list[AccountScan] = field(default_factory=list)
    not_scanned: list[NotScanned] = field(default_factory=list)
    inactive: list[dict[str, str]] = field(default_factory=list)
    unknown_accounts: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # what stopped the whole scan (the listing)

    def document(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "organization": self.organization,
            "scanned_from": self.scanned_from,
            "region": self.region,
            "role": f"{self.role_path}{self.role_name}",
            "accounts": {"listed": self.listed, "scanned": len(self.scans), "not_scanned": len(self.not_scanned)},
            "scans": [s.doc for s in self.scans],
            "not_scanned": [n.to_dict() for n in self.not_scanned],
            "inactive": list(self.inactive),
            "unknown_accounts": list(self.unknown_accounts),
            "unchecked": list(self.unchecked),
            "complete": not self.not_scanned and not self.unknown_accounts and not self.unchecked
            and all(s.doc.get("complete", True) for s in self.scans),
        }

    def exit_status(self) -> int:
        if self.unknown_accounts:
            return EXIT_BAD_INPUT
        statuses = [s.status for s in self.scans]
        if EXIT_BROKEN in statuses:
            return EXIT_BROKEN
        if self.not_scanned or self.unchecked or any(s != EXIT_OK for s in statuses):
            return EXIT_INCOMPLETE
        return EXIT_OK


def check_arguments(accounts: Iterable[str] | None, role_name: str, role_path: str, mode: str | None,
                    groups: Iterable[str] | None) -> list[str] | None:
    """Validate the command line before any AWS call; returns the accounts asked for (None: all)."""
    if mode == "apply":
        raise OrgScanUsageError("--mode apply is refused with --organization: the organisation scan only reads "
                                "(its role is read-only); apply a fix with the account's own keyfix")
    if groups:
        raise OrgScanUsageError("--group is for one account; with --organization every group of each account "
                                "is checked")
    if not _ROLE_NAME.fullmatch(role_name):
        raise OrgScanUsageError(f"not an IAM role name: {role_name!r}")
    if not _ROLE_PATH.fullmatch(role_path):
        raise OrgScanUsageError(f"not an IAM path (/ or /a/b/): {role_path!r}")
    if accounts is None:
        return None
    wanted = list(dict.fromkeys(accounts))
    bad = [a for a in wanted if not isinstance(a, str) or not _ACCOUNT.fullmatch(a)]
    if bad:
        raise OrgScanUsageError("not a 12-digit account id: " + ", ".join(repr(a) for a in bad))
    return wanted


def list_accounts(gw: AwsGateway) -> list[dict[str, Any]]:
    """Every account of the organisation, all pages (botocore's paginator follows NextToken,
    which ListAccounts may return even with an empty page), 20 a page: its largest
    (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html)."""
    try:
        return gw.read_all("organizations", "ListAccounts", "Accounts", PaginationConfig={"PageSize": PAGE_SIZE})
    except AwsError as err:
        if err.code in _NOT_FROM_HERE:
            raise OrgScanUsageError(
                f"cannot list the organisation's accounts from here ({err.reason()}): run it in the management "
                "account or a delegated administrator") from err
        raise


def account_state(account: dict[str, Any]) -> str:
    # `State` replaces `Status`, which AWS retires on 9 September 2026; both are returned until
    # then (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Account.html).
    return str(account.get("State") or account.get("Status") or "UNKNOWN")


def role_arn(partition: str, account: str, role_path: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role{role_path}{role_name}"


def assumed_session(gw: AwsGateway, arn: str, region: str) -> Any:
    """A boto3 Session with the role's temporary credentials (STS AssumeRole, no external id:
    the role's trust policy names the security account and its /keyfix/ roles instead)."""
    creds = gw.call("sts", "AssumeRole", RoleArn=arn, RoleSessionName=SESSION_NAME)["Credentials"]
    from keyfix.resolve.sdk_models import new_session  # lazy

    return new_session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"], region_name=region)


def scan_organization(settings: Any, *, accounts: list[str] | None = None, role_name: str = DEFAULT_ROLE_NAME,
                      role_path: str = DEFAULT_ROLE_PATH, gw: AwsGateway | None = None,
                      scan_one: Callable[..., tuple[Any, str, str]] | None = None) -> OrgScan:
    """List, assume, scan each account. Raises OrgScanUsageError for bad input or an organisation
    that cannot be listed from here; every per-account problem is recorded, never raised."""
    from keyfix.predict.scan import scan as scan_account
    from keyfix.store import NullStore

    settings = settings.with_mode("propose")  # never apply, whatever KEYFIX_MODE says
    scan_one = scan_one or scan_account
    gw = gw or AwsGateway()
    region = gw.default_region()
    if not region:
        raise OrgScanUsageError("no AWS Region configured (set AWS_DEFAULT_REGION or AWS_REGION)")
    gw.region = gw.region or region
    home = gw.home_account()
    if home is None:
        raise OrgScanUsageError("keyfix could not learn which account it runs in (sts:GetCallerIdentity failed)")
    try:
        organization = gw.read("organizations", "DescribeOrganization")["Organization"]["Id"]
    except AwsError as err:
        if err.code == "AWSOrganizationsNotInUseException":  # this account is in no organisation
            raise OrgScanUsageError(f"cannot list the organisation's accounts from here ({err.reason()}): this "
                                    "account is in no organisation") from err
        organization = ""  # denied: ListAccounts below says whether the organisation can be listed
    result = OrgScan(organization, home, region, role_path, role_name)
    try:
        listed = list_accounts(gw)
    except AwsError as err:  # throttled past botocore's retries, unreachable, ...: incomplete, exit 3
        result.unchecked.append(f"the organisation's accounts could not be listed: {err.reason()}")
        return result
    result.listed = len(listed)
    by_id = {a.get("Id"): a for a in listed}
    if accounts is not None:
        result.unknown_accounts = [a for a in accounts if a not in by_id or account_state(by_id[a]) != "ACTIVE"]
        targets = [by_id[a] for a in accounts if a not in result.unknown_accounts]
    else:
        targets = [a for a in listed if account_state(a) == "ACTIVE"]
        result.inactive = [{"account": str(a.get("Id")), "state": account_state(a)} for a in listed
                           if account_state(a) != "ACTIVE"]
    for entry in sorted(targets, key=lambda a: str(a.get("Id"))):
        account, name = str(entry["Id"]), str(entry.get("Name") or "")
        if account == home:
            member_gw = AwsGateway(session=gw.session, region=region)  # your own credentials, no role
        else:
            arn = role_arn(gw.home_partition, account, role_path, role_name)
            try:
                member_gw = AwsGateway(session=assumed_session(gw, arn, region), region=region)
            except AwsError as err:
                hint = " (is the StackSet's SecurityAccountId this account, and the caller a /keyfix/ role?)" \
                    if err.denied else ""
                result.not_scanned.append(NotScanned(account, name, err.code, f"cannot assume {arn}: "
                                                     f"{err.reason()}{hint}"))
                continue
        try:
            outcome, seen_account, _ = scan_one(settings, member_gw, store=NullStore(), applied_by="keyfix scan "
                                                "--organization")
        except Exception as exc:  # noqa: BLE001 - one account's failure must not hide the others'
            log.exception("organisation scan of %s failed", account)
            result.not_scanned.append(NotScanned(account, name, "InternalError",
                                                 f"keyfix failed scanning it: {type(exc).__name__}: {exc}"))
            continue
        if seen_account != account:
            result.not_scanned.append(NotScanned(
                account, name, "WrongAccount",
                f"the role's credentials answer for account {seen_account or '?'} (sts:GetCallerIdentity)"))
            continue
        result.scans.append(AccountScan(account, name, document(outcome, account, region), exit_status(outcome),
                                        member_gw))
    return result


def text(doc: dict[str, Any]) -> str:
    """Each account's scan text (keyfix.predict.scan.text), then what was not scanned, and a summary."""
    from keyfix.predict.scan import text as scan_text

    parts = []
    for one in doc["scans"]:
        parts.append(f"== account {one['account']}")
        parts.append(scan_text(one))
    for entry in doc["not_scanned"]:
        parts.append(f"Not scanned: account {entry['account']} {entry['name']}: {entry['reason']}")
    for name in doc["unknown_accounts"]:
        parts.append(f"Unknown or inactive account: {name}")
    for what in doc["unchecked"]:
        parts.append(f"Not checked: {what}")
    counts = doc["accounts"]
    problems = sum(len(one["reports"]) for one in doc["scans"])
    parts.append(f"Organisation {doc['organization'] or '?'} from {doc['scanned_from']} {doc['region']}: "
                 f"{counts['scanned']} account(s) scanned, {counts['not_scanned']} not scanned, "
                 f"{problems} group(s) or instance(s) with a problem.")
    return "\n".join(parts)
