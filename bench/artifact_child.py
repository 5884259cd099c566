"""One cold start on the built artifact, in a fresh interpreter started by bench/coldstart.py.

    python -I -S -B bench/artifact_child.py ARTIFACT RESULT.json WHAT

ARTIFACT is `.aws-sam/build/KeyfixFunction` (what `make build` ships, bytecode included).
`-I -S` leave out PYTHONPATH, the user's site and the venv's site-packages, so sys.path is
the standard library plus ARTIFACT, first, as /var/task is in Lambda: boto3, botocore,
Powertools, pydantic and keyfix load from the artifact's own pinned copies and .pyc files.
`-B`: Lambda cannot write bytecode either. WHAT is `import boto3`, `import keyfix.handler`, or
an event file (import the handler, then the first invocation, as bench/coldstart_child.py).

After the timed part, it records where keyfix, boto3, botocore, Powertools, pydantic,
pydantic_core and wrapt come from, and every extension module loaded (loaded modules' __file__, otherwise where the import system would find them)
and exits 3 when one is not under ARTIFACT: a row measured on the venv's copies would
otherwise pass for the artifact's.
"""

import sys
import time

ARTIFACT, RESULT, WHAT = sys.argv[1:4]
sys.path.insert(0, ARTIFACT)
# bench/ (for lambda_context), last: nothing the function imports can come from it.
sys.path.append(__file__.rpartition("/")[0] or ".")

t0 = time.perf_counter()
if WHAT == "import boto3":
    import boto3  # noqa: F401 - timing the import is the point
else:
    from keyfix.handler import lambda_handler
t1 = time.perf_counter()

out = {"import_s": t1 - t0}
if WHAT not in ("import boto3", "import keyfix.handler"):
    import json

    from lambda_context import LambdaContext, invocation_summary

    with open(WHAT, encoding="utf-8") as handle:
        event = json.load(handle)
    modules_before = set(sys.modules)
    t2 = time.perf_counter()
    result = lambda_handler(event, LambdaContext())
    t3 = time.perf_counter()
    out.update(invocation_summary(result, modules_before, t3 - t2))

import importlib.util  # noqa: E402 - after the timed part
import json  # noqa: E402
import os  # noqa: E402

root = os.path.realpath(ARTIFACT) + os.sep
origins = {}
for name in ("keyfix", "boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core", "wrapt"):
    module = sys.modules.get(name)
    if module is not None:
        origins[name] = {"file": module.__file__, "loaded": True}
    else:
        spec = importlib.util.find_spec(name)
        origins[name] = {"file": spec.origin if spec else None, "loaded": False}
# Extension modules loaded outside the standard library's lib-dynload (an aarch64 one cannot
# load here, and wrapt would fall back to pure Python without a word).
stdlib_ext = os.path.realpath(os.path.join(sys.base_exec_prefix, sys.platlibdir,
                                           "python%d.%d" % sys.version_info[:2], "lib-dynload")) + os.sep
native = sorted(f for m in list(sys.modules.values()) if (f := getattr(m, "__file__", None) or "").endswith(".so")
                and not os.path.realpath(f).startswith(stdlib_ext))
outside = sorted(n for n, o in origins.items() if not (o["file"] and os.path.realpath(o["file"]).startswith(root)))
outside += [f for f in native if not os.path.realpath(f).startswith(root)]
out.update({"origins": origins, "extension_modules": native, "under_artifact": not outside})
with open(RESULT, "w", encoding="utf-8") as handle:
    json.dump(out, handle)
if outside:
    print(f"artifact_child: {', '.join(outside)} not loaded from {ARTIFACT}: {origins}", file=sys.stderr)
    sys.exit(3)
