"""`keyfix` command line. Each command imports what it uses, when it runs.

Exit statuses follow docs/contract.md: 0 processed, 2 bad input (including an environment
keyfix cannot work in: no credentials, an unknown profile, a table that does not exist;
keyfix.cli_common), 1 internal. Options common to every command: keyfix.cli_common.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from keyfix.cli_common import add_command, applied, top_level_options, user_error

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_handle(args: argparse.Namespace) -> int:
    from keyfix.config import ConfigError, Settings
    from keyfix.events import EventError

    try:
        if args.event_file == "-":  # the event on standard input, as `aws ... | keyfix handle -`
            text = sys.stdin.buffer.read()
        else:
            with open(args.event_file, "rb") as fh:
                text = fh.read()
        # Parsing alone keeps a broken file from reaching any AWS call.
        event = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        print(f"keyfix handle: cannot read event {args.event_file}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = Settings.from_env().with_mode(args.mode)
    except ConfigError as exc:
        print(f"keyfix handle: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from keyfix.cli_common import credentials_problem

    # Before any AWS call: without credentials every read would fail and the report would
    # say only that keyfix could not read.
    problem = credentials_problem()
    if problem:
        print(f"keyfix handle: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from keyfix.idempotency import DEFAULT_WINDOW_SECONDS, InProgressElsewhere, make_idempotent
    from keyfix.pipeline import process_event

    once = make_idempotent(lambda act: act(), settings.table_name, DEFAULT_WINDOW_SECONDS)
    try:
        report = process_event(event, settings, once=once, applied_by="keyfix handle")
    except InProgressElsewhere as exc:
        print(f"keyfix handle: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except EventError as exc:
        print(f"keyfix handle: malformed event {args.event_file}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - the Lambda's last-resort net (keyfix.safety_net), same report
        problem = user_error(exc, settings.table_name)
        if problem:  # the caller's environment, not keyfix: nothing was processed
            print(f"keyfix handle: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        from keyfix.safety_net import internal_error_report, notify_best_effort

        report = internal_error_report(event, settings.mode, exc)
        notify_best_effort(report, settings.sns_topic_arn, None, None)
        print(f"keyfix handle: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        _print_report(report, args.format)
        return EXIT_INTERNAL  # the contract's "internal failure", with the report on stdout all the same
    _print_report(report, args.format)
    return EXIT_OK


def _print_report(report, output_format: str) -> None:
    if output_format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        from keyfix.render import report_text
        from keyfix.term import styled

        print(styled(report_text(report), sys.stdout))


def _cmd_rollback(args: argparse.Namespace) -> int:
    from keyfix.remedies.history import cli_rollback

    return cli_rollback(args)


def _cmd_history(args: argparse.Namespace) -> int:
    if args.findings or args.event or args.group or args.cause or args.since:
        from keyfix.history_cli import cli_findings  # findings, through the table's indexes

        return cli_findings(args)
    from keyfix.remedies.history import cli_history

    return cli_history(args)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from keyfix.policy.simulate import run

    return run(args.file, args.format, sys.stdout, sys.stderr)


def _cmd_scan(args: argparse.Namespace) -> int:
    from keyfix.predict.cli_scan import run

    return run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.keep:  # serve one scenario's broken account for `keyfix handle` (keyfix.demo.serve)
        if args.scenario and len(set(args.scenario)) > 1:
            print("keyfix demo: --keep serves one scenario: give at most one --scenario", file=sys.stderr)
            return EXIT_BAD_INPUT
        from keyfix.demo.serve import serve

        return serve((args.scenario or ["a1"])[0], args.seconds, args.port, args.event_dir)
    from keyfix.demo import main as demo_main

    return demo_main(args.scenario, args.mode, args.format)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # negative, NaN, infinite (leave --for out to serve until Ctrl-C)
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0-65535 (0: a free one), not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyfix",
        description="Diagnose and repair KMS permission failures behind Auto Scaling, EC2 and EBS.",
    )
    from keyfix import __version__

    parser.add_argument("--version", action="version", version=f"keyfix {__version__}")
    top_level_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    handle = add_command(
        sub, "handle",
        help="process one EventBridge event exactly as the Lambda does",
        description="Process one EventBridge event exactly as the Lambda does, against the AWS "
        "endpoint boto3's standard configuration points at (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION).",
    )
    handle.add_argument("event_file", metavar="EVENT_FILE", help="the event as JSON; - reads standard input")
    handle.add_argument("--mode", choices=["propose", "apply"], help="override KEYFIX_MODE")
    handle.add_argument("--format", choices=["json", "text"], default="text")
    handle.set_defaults(func=_cmd_handle)

    simulate = add_command(
        sub, "simulate",
        help="decide one KMS request offline with the authorisation model",
        description="Decide one request (simulate.schema.json) offline and explain the decision.",
    )
    simulate.add_argument("file", metavar="FILE")
    simulate.add_argument("--format", choices=["json", "text"], default="text")
    simulate.set_defaults(func=_cmd_simulate)

    rollback = add_command(
        sub, "rollback",
        help="undo one change keyfix applied, if nobody changed it since",
        description="Undo the change CHANGE_ID (see `keyfix history`): remove exactly what keyfix added, "
        "while it is still in force, and only if the audit record's MAC verifies; otherwise say why "
        "(unified diff on stderr) and exit 2.",
    )
    rollback.add_argument("change_id", metavar="CHANGE_ID")
    rollback.add_argument("--by", help="who rolls back, for the audit record (default: the caller's ARN)")
    rollback.add_argument("--table", help="override KEYFIX_TABLE_NAME")
    rollback.add_argument("--audit-key", metavar="ARN", help="override KEYFIX_AUDIT_KEY_ARN (the KMS HMAC key that "
                          "proves an audit record is keyfix's; without it rollback refuses)")
    rollback.add_argument("--wait", type=float, metavar="SECONDS", help="wait this long for the key's write lock (default 20)")
    rollback.add_argument("--format", choices=["json", "text"], default="text")
    rollback.set_defaults(func=_cmd_rollback)

    history = add_command(
        sub, "history",
        help="list the changes keyfix applied",
        description="List the changes keyfix applied (audit records, kept 400 days), oldest first.",
    )
    history.add_argument("--key", metavar="ARN", help="only changes (or findings) about this key")
    history.add_argument("--findings", action="store_true",
                         help="list every finding keyfix recorded (not only changes), through the table's indexes")
    history.add_argument("--group", metavar="NAME", help="only findings about this Auto Scaling group (implies --findings)")
    history.add_argument("--cause", metavar="CAUSE", help="only findings with this cause (implies --findings)")
    history.add_argument("--since", metavar="WHEN", help="findings since an ISO date/time or a duration: 7d, 12h, 30m "
                         "(default 7d; implies --findings)")
    history.add_argument("--event", metavar="EVENT_ID", help="print the recorded event, for keyfix handle (replay)")
    history.add_argument("--scan", action="store_true",
                         help="read changes by scanning the table instead of its by-change index (records written "
                              "before the index existed)")
    history.add_argument("--table", help="override KEYFIX_TABLE_NAME")
    history.add_argument("--audit-key", metavar="ARN", help="override KEYFIX_AUDIT_KEY_ARN (checks each record's MAC)")
    history.add_argument("--format", choices=["json", "text"], default="text")
    history.set_defaults(func=_cmd_history)

    scan = add_command(
        sub, "scan",
        help="check every Auto Scaling group (or the named ones) for a launch that fails or would fail",
        description="Check every Auto Scaling group of the account and Region (or the named ones) and every "
        "stopped instance with a KMS-related state reason, as the scheduled sweep does. Exit status: 0 nothing "
        "fails or would fail, 1 something does, 2 bad input or usage, 3 the scan could not complete.",
    )
    from keyfix.predict.cli_scan import add_arguments as scan_arguments

    scan_arguments(scan)
    scan.set_defaults(func=_cmd_scan)

    demo = add_command(
        sub, "demo",
        help="break and repair each seed scenario on a simulated AWS account on 127.0.0.1",
        description="Start a simulated AWS (moto) on 127.0.0.1, build each broken situation, let the failure "
        "happen, run the Lambda handler on the resulting event, show the SNS message and the retry. "
        "Exit status 0 when every scenario ended as expected, 1 otherwise.",
    )
    demo.add_argument("--scenario", action="append",
                      choices=["a1", "a2", "b", "c", "not-kms", "pending-deletion", "predict"],
                      help="play only this scenario (repeatable; default: all)")
    demo.add_argument("--mode", choices=["apply", "propose"], default="apply",
                      help="apply (default): repair what the safety rules allow; propose: write nothing")
    demo.add_argument("--format", choices=["text", "json"], default="text",
                      help="json: one array of {scenario, report, before, after, retry_succeeded, sns, ...}")
    demo.add_argument("--keep", action="store_true",
                      help="build one scenario's broken account (default a1), write its failure event, print the "
                      "`keyfix handle` commands that diagnose it, and serve it until Ctrl-C (exit 0)")
    demo.add_argument("--for", dest="seconds", type=_seconds, metavar="SECONDS",
                      help="with --keep: stop after SECONDS")
    demo.add_argument("--port", type=_port, default=0, help="with --keep: the server's port on 127.0.0.1 (default: a free one)")
    demo.add_argument("--event-dir", metavar="DIR", help="with --keep: write the event here (kept; default: a "
                      "temporary directory removed on exit)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with applied(args):
            return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the contract's "internal failure": say it, exit 1
        problem = user_error(exc, getattr(args, "table", None))
        if problem:  # unless it is the caller's environment: say what to change, exit 2
            print(f"keyfix {args.command}: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"keyfix {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
