"""One Lambda cold start, in a fresh interpreter started by bench/coldstart.py.

    python bench/coldstart_child.py EVENT.json RESULT.json

Imports the handler module (what Lambda's init phase does) and makes the first
invocation on EVENT, as the Lambda runtime would: `lambda_handler(event, context)`.
Writes {"import_s", "invoke_s", ...} to RESULT.json (stdout carries the handler's own
log and EMF lines, like CloudWatch would). Wall time and peak RSS of the whole process
are measured by the parent (os.wait4).
"""

from __future__ import annotations

import json
import sys
import time

t0 = time.perf_counter()
from keyfix.handler import lambda_handler  # noqa: E402 - timing the import is the point

t1 = time.perf_counter()

from lambda_context import LambdaContext, invocation_summary  # noqa: E402 - bench/lambda_context.py, after the timed import

with open(sys.argv[1], encoding="utf-8") as handle:
    event = json.load(handle)
modules_before = set(sys.modules)
t2 = time.perf_counter()
result = lambda_handler(event, LambdaContext())
t3 = time.perf_counter()

with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump({"import_s": t1 - t0, **invocation_summary(result, modules_before, t3 - t2)}, handle)
