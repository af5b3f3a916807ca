"""Where each key of a TOML document is written: its line, for error messages.

tomllib gives values without positions, so the text is scanned once more. The scan follows
strings (basic, literal, and their multi-line forms), comments and nesting ([…], {…}) so that a
`[`, `#` or `=` inside a string, or a value over several lines, never moves the lines of the keys
after it. Only newlines end lines (as in TOML; not str.splitlines' other separators).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PART = r"""(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')"""
_DOTTED = rf"({_PART}(?:\s*\.\s*{_PART})*)"
_HEADER_RE = re.compile(rf"\s*\[\[?\s*{_DOTTED}\s*\]\]?")
_KEY_RE = re.compile(rf"\s*{_DOTTED}\s*=")
_PART_RE = re.compile(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""")


def key_lines(text: str) -> dict[str, int]:
    """Each dotted key (and each table) mapped to the line (from 1) where it is first written."""
    lines: dict[str, int] = {}
    table: list[str] = []
    scan = _ValueScan()
    for number, line in enumerate(text.split("\n"), start=1):
        if scan.open:  # inside a value that began on an earlier line
            scan.feed(line)
            continue
        header = _HEADER_RE.match(line)
        if header is not None:
            table = _parts(header.group(1))
            for i in range(1, len(table) + 1):
                lines.setdefault(".".join(table[:i]), number)
            continue
        key = _KEY_RE.match(line)
        if key is not None:
            parts = table + _parts(key.group(1))
            for i in range(1, len(parts) + 1):
                lines.setdefault(".".join(parts[:i]), number)
            scan.feed(line[key.end() :])
    return lines


def line_of(lines: Mapping[str, int], dotted: str) -> int | None:
    """The line of `dotted`, else of the nearest table that holds it."""
    while dotted:
        if dotted in lines:
            return lines[dotted]
        dotted = dotted.rpartition(".")[0]
    return None


def _parts(key: str) -> list[str]:
    return [p[1:-1] if p[:1] in "\"'" else p for p in _PART_RE.findall(key)]


class _ValueScan:
    """Follows one value across lines: open strings and brackets."""

    def __init__(self) -> None:
        self.depth = 0  # [ and { not yet closed
        self.string = ""  # the multi-line string's delimiter while inside one

    @property
    def open(self) -> bool:
        return self.depth > 0 or bool(self.string)

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.string:
                end = self._string_end(line, i, self.string)
                if end < 0:
                    return
                self.string, i = "", end
                continue
            ch = line[i]
            if ch == "#":
                return
            if ch in "\"'":
                triple = ch * 3
                if line.startswith(triple, i):
                    self.string, i = triple, i + 3
                    continue
                end = self._string_end(line, i + 1, ch)
                i = end if end >= 0 else n
                continue
            if ch in "[{":
                self.depth += 1
            elif ch in "]}":
                self.depth = max(0, self.depth - 1)
            i += 1

    @staticmethod
    def _string_end(line: str, i: int, delim: str) -> int:
        """The index just past the closing `delim` from `i`, or -1 when the line ends first."""
        escapes = delim[0] == '"'
        while i < len(line):
            if escapes and line[i] == "\\":
                i += 2
                continue
            if line.startswith(delim, i):
                end = i + len(delim)
                while len(delim) == 3 and line.startswith(delim[0], end):  # """" ends with a quote
                    end += 1
                return end
            i += 1
        return -1
