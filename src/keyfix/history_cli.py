"""`keyfix history --findings` and `keyfix history --event ID` (keyfix.store.findings).

--findings lists every finding keyfix recorded (not only writes), oldest first, filtered by
--key, --group, --cause and --since, each served by one of the table's indexes (no scan).
--event ID prints the event a finding was recorded from, as JSON, ready for
`keyfix handle -` or a file: the documented replay (README, "Runbook").
Exit status: 0 listed (even nothing); 2 bad filter, no table, no such event; 1 internal.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _line(row: dict[str, Any]) -> str:
    status = ",".join(row["statuses"]) or "-"
    where = row["group"] or (row["principal"] or "-").rsplit("/", 1)[-1]
    predicted = " predicted" if row["predicted"] else ""
    return f"{row['at']}  {row['cause']:<28} {status:<18} {where}  key {row['key']}  event {row['event_id']}{predicted}"


def cli_findings(args: Any) -> int:
    from keyfix.store.findings import HistoryError, list_findings, stored_event

    table = getattr(args, "table", None) or os.environ.get("KEYFIX_TABLE_NAME") or None
    if not table:
        print("keyfix history: KEYFIX_TABLE_NAME not set: there is no table to read", file=sys.stderr)
        return EXIT_BAD_INPUT
    import boto3  # lazy: the CLI's other commands do not need it

    client = boto3.client("dynamodb")
    try:
        if getattr(args, "event", None):
            event = stored_event(client, table, args.event)
            if event is None:
                print(f"keyfix history: no recorded event {args.event!r} (kept only with a finding, "
                      "and within the retention)", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(json.dumps(event, indent=2))
            return EXIT_OK
        rows = list_findings(client, table, key=args.key, group=args.group, cause=args.cause, since=args.since)
    except HistoryError as exc:
        print(f"keyfix history: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - say what the user must change, or exit 1
        from keyfix.cli_common import user_error

        problem = user_error(exc, table)
        print(f"keyfix history: {problem or f'internal error: {type(exc).__name__}: {exc}'}", file=sys.stderr)
        return EXIT_BAD_INPUT if problem else EXIT_INTERNAL
    if getattr(args, "format", "text") == "json":
        print(json.dumps({"schema": "keyfix.findings/1", "findings": rows}, indent=2))
    else:
        for row in rows:
            print(_line(row))
        if not rows:
            print("no findings recorded for these filters", file=sys.stderr)
    return EXIT_OK
