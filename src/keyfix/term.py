"""Text output for a person at a terminal: colour only there, and lines fitted to its width.

Colour: only when the stream is a terminal, TERM is not "dumb", and NO_COLOR is unset or
empty (https://no-color.org: "when present and not an empty string"). Width: the terminal's
(COLUMNS first, as `shutil.get_terminal_size` reads it), wrapping prose at word boundaries;
a pasteable command line (`$ ...`) is never broken, so copying it still works.
Output that is not a terminal (a pipe, a file, `--format json`) is left exactly as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from typing import TextIO

RESET = "\033[0m"
# Fix statuses and causes worth seeing at a glance.
_STATUS_COLOUR = {"applied": "32", "already-present": "32", "proposed": "33", "refused": "35",
                  "failed": "31", "unverified": "31"}
_FINDING = re.compile(r"^(Finding \d+: )(\S+)")
_FIX = re.compile(r"^(\s*fix \[)([a-z-]+)(\])")
_FIELD = re.compile(r"^(\s*)([a-z ]+: |[a-z ]+ : |reason: )")


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def colour_wanted(stream: TextIO, env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("NO_COLOR", ""):
        return False
    if env.get("TERM", "") == "dumb":
        return False
    return is_terminal(stream)


def width_of(stream: TextIO) -> int | None:
    """The terminal's width, or None when the stream is not a terminal (do not wrap)."""
    if not is_terminal(stream):
        return None
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def _paint(text: str, code: str) -> str:
    return f"\033[{code}m{text}{RESET}"


def _colour_line(line: str) -> str:
    if m := _FINDING.match(line):
        cause = m.group(2)
        code = "32" if cause in ("not-kms", "no-missing-permission") else "1;31"
        return m.group(1) + _paint(cause, code) + line[m.end():]
    if m := _FIX.match(line):
        status = m.group(2)
        return m.group(1) + _paint(status, _STATUS_COLOUR.get(status, "0")) + line[m.end(2):]
    return line


def _wrap_line(line: str, width: int) -> list[str]:
    if len(line) <= width or line.lstrip().startswith("$ "):
        return [line]
    indent = len(line) - len(line.lstrip())
    label = _FIELD.match(line)
    hang = " " * min(label.end() if label else indent + 2, width // 2)
    return textwrap.wrap(line, width=width, subsequent_indent=hang, break_long_words=False,
                         break_on_hyphens=False) or [line]


def styled(text: str, stream: TextIO, env: dict[str, str] | None = None, columns: int | None = None) -> str:
    """`text` as it should appear on `stream`: fitted and coloured on a terminal, else as is.
    `columns` overrides the terminal's width (tests)."""
    width = width_of(stream)
    if width is not None and columns is not None:
        width = columns
    lines = text.split("\n")
    if width is not None:
        lines = [part for line in lines for part in _wrap_line(line, width)]
    if colour_wanted(stream, env):
        lines = [_colour_line(line) for line in lines]
    return "\n".join(lines)
