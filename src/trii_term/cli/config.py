"""`trii-term config validate [FILE] [--json]`: is this config file one the workstation accepts?

It reads the file exactly as the workstation does before it opens (the same loader, then the
same session set-up, which finds an unknown provider), so a broken file is reported with the same
line — file, line, key and what to write — and exit 2. A good file prints `FILE: valid`, exit 0.
A file that is missing or cannot be read is exit 2 as well: there is nothing to validate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trii_term.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    config_error_line,
    print_json,
)

if TYPE_CHECKING:
    from trii_term.config import ConfigError
    from trii_term.paths import Paths


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    config = sub.add_parser(
        "config",
        parents=[common],
        help="check the config file",
        description="Work with the config file (TOML). The workstation reads it from --config, "
        "$TRII_TERM_CONFIG or the user config dir.",
    )
    actions = config.add_subparsers(dest="config_action", required=True)
    validate = actions.add_parser(
        "validate",
        parents=[common],
        help="check a config file as the workstation reads it",
        description="Check a config file as the workstation reads it: exit 0 and FILE: valid when it "
        "would start with it; exit 2 and the file, line and key of the first problem when not (or "
        "when the file is missing or cannot be read).",
    )
    validate.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the config file (default: --config, $TRII_TERM_CONFIG or the user config dir)",
    )
    validate.add_argument(
        "--json", action="store_true", help="one JSON object: ok, file, errors [{key, line, message}]"
    )
    validate.set_defaults(run=run_validate)
    actions.metavar = "{" + ",".join(actions.choices) + "}"  # "required: {validate}", not the dest


def run_validate(args: argparse.Namespace, paths: Paths) -> int:
    path = Path(args.file).expanduser() if args.file else paths.config_file
    problem = check_file(path, paths)
    if args.json:
        print_json(_as_json(path, problem), sys.stdout)
    if problem is not None:
        print(config_error_line(problem), file=sys.stderr)
        return EXIT_USAGE
    if not args.json:
        print(f"{path}: valid")
    return EXIT_OK


def check_file(path: Path, paths: Paths) -> ConfigError | None:
    """The first problem the workstation would report for the config file at `path`, or None."""
    from trii_term.config import ConfigError, load_config

    if not path.exists():
        return ConfigError(
            "no such file: give the path of a config file (without one, trii-term runs on its defaults)",
            path=path,
        )
    try:
        config = load_config(path)
        from trii_term.session import Session

        Session(config, paths)  # what the workstation checks next: the providers exist
    except ConfigError as exc:
        return exc
    return None


def _as_json(path: Path, problem: ConfigError | None) -> dict[str, Any]:
    errors = (
        [] if problem is None else [{"key": problem.key, "line": problem.line, "message": problem.message}]
    )
    return {"ok": problem is None, "file": str(path), "errors": errors}
