"""`keyfix scan [--group NAME ...] [--mode propose|apply] [--format json|text]` (docs/contract.md).

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


def run(args: argparse.Namespace) -> int:
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
