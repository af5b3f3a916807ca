"""`trii-term doctor`: can the workstation run here, and if not, what to do.

Each line is `ok`, `warn` (works, but worth knowing) or `PROBLEM` (stops trii-term from running
on its defaults), with what to do. Exit code 0 unless there is a PROBLEM (2 for a config error,
1 otherwise). Nothing is changed: the store is opened read-only. The checks themselves are in
`doctor_checks`; this module runs them and lays them out.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import TYPE_CHECKING, TextIO

from trii_term.cli.common import Subcommands

if TYPE_CHECKING:
    from trii_term.cli.doctor_checks import Check
    from trii_term.paths import Paths


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    doctor = sub.add_parser(
        "doctor",
        parents=[common],
        help="check this machine and setup; say what to fix",
        description="Check versions, config, data dir, store, terminal and keyring. Exit 0 when the "
        "workstation can run on its defaults.",
    )
    # no config is loaded first: checking it (and saying what is wrong with it) is the doctor's job
    doctor.set_defaults(run=lambda args, paths: run_doctor(paths))


def run_doctor(paths: Paths, out: TextIO | None = None) -> int:
    from trii_term.cli.doctor_checks import PROBLEM, WARN, collect

    out = out or sys.stdout
    checks, config_broken = collect(paths)
    out.write(render(checks, _columns(out)))
    problems = [c for c in checks if c.status == PROBLEM]
    warnings = [c for c in checks if c.status == WARN]
    if problems:
        out.write(f"\n{len(problems)} problem(s) stop trii-term from running; fix them as shown above.\n")
        return 2 if config_broken else 1
    tail = f" ({len(warnings)} warning(s))" if warnings else ""
    out.write(f"\ntrii-term can run on its defaults{tail}.\n")
    return 0


def render(checks: list[Check], columns: int | None = None) -> str:
    """The checks as lines: status, label, detail; a fix (→) and further detail lines are
    indented under the detail. With `columns` (a terminal), long lines wrap under the detail
    instead of at the terminal's edge."""
    width = max(len(c.label) for c in checks)
    indent = " " * (8 + width + 2)
    lines: list[str] = []

    def add(first: str, text: str, hang: str) -> None:
        if columns is None or len(first) + len(text) <= columns:
            lines.append(first + text)
            return
        wrapped = textwrap.wrap(
            text,
            width=max(columns, len(first) + 20),
            initial_indent=first,
            subsequent_indent=hang,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.extend(wrapped or [first])

    for c in checks:
        head, *more = c.detail.split("\n")
        add(f"{c.status:<8}{c.label:<{width + 2}}", head, indent)
        for line in more:
            add(indent, line, indent)
        if c.fix:
            add(f"{indent}→ ", c.fix, indent + "  ")
    return "".join(line.rstrip() + "\n" for line in lines)


def _columns(out: TextIO) -> int | None:
    """The terminal's width when `out` is one (None: output redirected, lines stay whole)."""
    try:
        return os.get_terminal_size(out.fileno()).columns if out.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None
