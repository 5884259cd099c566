"""Run proposed CLI lines in a real shell where only stub `aws` and `jq` exist, and record
exactly what each was called with.

`bash -c LINE` runs with cwd = a scratch directory and PATH = the stub directory alone, so a
payload can run nothing real. Every stub appends one record per call to a log: the number of
arguments, then the program's name and each argument, all NUL-terminated (arguments can hold
anything but NUL, newlines included, so nothing else delimits them safely). Besides `aws` and
`jq` the stub directory holds traps (`touch`, `rm`, `sh`, `curl`, ...), and BASH_ENV defines
`command_not_found_handle`, so that any other command a payload manages to start is logged
too. A payload that needs no command at all (`>CANARY`) leaves a file behind, and the
scratch directory's listing shows it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ALLOWED = ("aws", "jq")
TRAPS = ("touch", "rm", "sh", "bash", "dash", "curl", "wget", "nc", "cat", "cp", "mv", "ls", "id", "env",
         "python", "python3", "perl", "tee", "xargs", "whoami", "uname", "date", "mkdir", "chmod", "PWNED",
         "CANARY")
BASH = shutil.which("bash") or "/bin/bash"

# The stubs print a key policy, so the get-key-policy | jq | put-key-policy sequence runs through.
_STUB = """#!{bash}
{{ printf '%d\\0' "$(( $# + 1 ))"; printf '%s\\0' "${{0##*/}}" "$@"; }} >> "$KEYFIX_STUB_LOG"
{body}
exit 0
"""
_POLICY = '{"Version":"2012-10-17","Statement":[]}'
_BODIES = {"aws": f"printf '%s\\n' '{_POLICY}'", "jq": f"printf '%s\\n' '{_POLICY}'"}
_NOT_FOUND = """command_not_found_handle() {
  { printf '%d\\0' "$#"; printf '%s\\0' "$@"; } >> "$KEYFIX_STUB_LOG"
  return 127
}
"""


@dataclass(frozen=True)
class Run:
    line: str
    returncode: int
    stderr: str
    calls: list[list[str]]  # [program, arg1, ...] per call, in order
    files: frozenset[str]  # what the scratch directory holds afterwards


class StubShell:
    def __init__(self, root: Path) -> None:
        self.bin, self.cwd, self.log, self.bash_env = root / "bin", root / "cwd", root / "calls.log", root / "bash_env"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in ALLOWED + TRAPS:
            stub = self.bin / name
            stub.write_text(_STUB.format(bash=BASH, body=_BODIES.get(name, "")))
            stub.chmod(0o755)
        self.bash_env.write_text(_NOT_FOUND)
        self.env = {"PATH": str(self.bin), "BASH_ENV": str(self.bash_env), "KEYFIX_STUB_LOG": str(self.log),
                    "HOME": str(root), "LC_ALL": "C.UTF-8"}

    def reset(self) -> None:
        """A fresh scratch directory and an empty log: one fix's lines run from here."""
        shutil.rmtree(self.cwd, ignore_errors=True)
        self.cwd.mkdir()
        self.log.write_bytes(b"")

    def run(self, line: str) -> Run:
        """Run one line as on-call would paste it; the log and files accumulate until reset()."""
        before = self.log.stat().st_size if self.log.exists() else 0
        done = subprocess.run([BASH, "-c", line], cwd=self.cwd, env=self.env, capture_output=True, timeout=20)
        data = self.log.read_bytes()[before:]
        return Run(line, done.returncode, done.stderr.decode(errors="replace"), parse_log(data),
                   frozenset(os.listdir(self.cwd)))


def parse_log(data: bytes) -> list[list[str]]:
    fields = data.split(b"\0")
    calls, i = [], 0
    while i < len(fields) - 1:
        count = int(fields[i])
        calls.append([f.decode("utf-8", errors="surrogateescape") for f in fields[i + 1:i + 1 + count]])
        i += 1 + count
    if fields[i:] != [b""]:
        raise AssertionError(f"truncated stub log: {data!r}")
    return calls
