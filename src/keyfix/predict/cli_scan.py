"""`keyfix scan [--group NAME ...] [--mode propose|apply] [--format json|text]` (docs/contract.md),
and `keyfix scan --organization [--accounts ID ...] [--role-name NAME]` (keyfix.org.scan).

Runs with the caller's credentials against whatever endpoint boto3 is configured for. It
writes only with `--mode apply` (the same safety rules as the Lambda), and it neither
notifies nor records idempotency: a scan is a look, run by a person or a pipeline; the
Lambda's events and sweep keep on-call informed, and a scan must not make an event that
arrives later look like a duplicate that needs no page.
"""

from __future__ import annotations

import argparse
import json
import sys

# keyfix.predict.scan is imported when the command runs: building the parser stays cheap.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", action="append", metavar="NAME",
                        help="check only this Auto Scaling group (repeatable; default: every group and every "
                             "stopped instance with a KMS-related state reason)")
    parser.add_argument("--mode", choices=["propose", "apply"], default="propose",
                        help="propose (default): write nothing; apply: repair what the safety rules allow")
    parser.add_argument("--format", choices=["json", "text"], default="text")
    org = parser.add_argument_group("across an organisation (keyfix.org.scan; read-only, no --mode apply)")
    org.add_argument("--organization", action="store_true",
                     help="scan every active account of the organisation through the read-only role the StackSet "
                          "deploys (run from the management account or a delegated administrator)")
    org.add_argument("--accounts", nargs="+", metavar="ID", help="with --organization: only these accounts")
    org.add_argument("--role-name", default=None, metavar="NAME",
                     help="with --organization: the role to assume in each account (default keyfix-org-scan)")
    org.add_argument("--role-path", default=None, metavar="PATH",
                     help="with --organization: the role's IAM path (default /keyfix/)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "organization", False):
        return run_organization(args)
    if args.accounts or args.role_name or args.role_path:
        print("keyfix scan: --accounts, --role-name and --role-path need --organization", file=sys.stderr)
        return 2
    from keyfix.config import ConfigError, Settings
    from keyfix.predict.scan import (EXIT_BAD_INPUT, EXIT_INCOMPLETE, ScanUsageError, document, exit_status, scan,
                                     text)

    try:
        settings = Settings.from_env().with_mode(args.mode)
    except ConfigError as exc:
        print(f"keyfix scan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        outcome, account, region = scan(settings, names=args.group)
    except ScanUsageError as exc:
        print(f"keyfix scan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc = document(outcome, account, region)
    print(json.dumps(doc, indent=2) if args.format == "json" else text(doc))
    status = exit_status(outcome)
    if outcome.unknown_groups:
        print(f"keyfix scan: no such Auto Scaling group in {region}: {', '.join(outcome.unknown_groups)}",
              file=sys.stderr)
    elif status == EXIT_INCOMPLETE:
        print("keyfix scan: the scan could not complete; not checked: " + "; ".join(outcome.unchecked),
              file=sys.stderr)
    return status


def run_organization(args: argparse.Namespace) -> int:
    from keyfix.config import ConfigError, Settings
    from keyfix.org.scan import (DEFAULT_ROLE_NAME, DEFAULT_ROLE_PATH, EXIT_BAD_INPUT, EXIT_INCOMPLETE,
                                 OrgScanUsageError, check_arguments, scan_organization, text)

    role_name, role_path = args.role_name or DEFAULT_ROLE_NAME, args.role_path or DEFAULT_ROLE_PATH
    try:
        accounts = check_arguments(args.accounts, role_name, role_path, args.mode, args.group)
        settings = Settings.from_env()
        result = scan_organization(settings, accounts=accounts, role_name=role_name, role_path=role_path)
    except (OrgScanUsageError, ConfigError) as exc:
        print(f"keyfix scan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc = result.document()
    print(json.dumps(doc, indent=2) if args.format == "json" else text(doc))
    status = result.exit_status()
    if result.unknown_accounts:
        print("keyfix scan: not an active account of the organisation: " + ", ".join(result.unknown_accounts),
              file=sys.stderr)
    for entry in result.not_scanned:
        print(f"keyfix scan: account {entry.account} not scanned: {entry.reason}", file=sys.stderr)
    for what in result.unchecked:
        print(f"keyfix scan: {what}", file=sys.stderr)
    if status == EXIT_INCOMPLETE and not result.not_scanned and not result.unchecked:
        print("keyfix scan: some account's scan could not complete (see each scan's unchecked)", file=sys.stderr)
    return status
