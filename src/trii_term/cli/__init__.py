"""The `trii-term` command: the workstation, and headless commands for the shell.

Each subcommand is one module of this package that adds its parser (`register`) and names the
function that runs it (`set_defaults(run=…)`); `main` parses and calls that function. The list
below is the order `trii-term --help` shows them in.

Exit codes: 0 done; 1 could not run (store in use, damaged, …); 2 invalid input or config;
3 an order not confirmed; 4 an order refused. Imports are kept lazy so `--help`, `--version` and
`doctor` start fast and the workstation pays only for what it draws.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from trii_term import __version__
from trii_term.cli import (
    actions,
    ask,
    bars,
    config,
    doctor,
    listings,
    login,
    order,
    record,
    workstation,
)
from trii_term.cli.common import say_failed, shared_options

# The subcommand modules, in the order --help lists them. A list rather than entry points: the
# commands are part of trii-term, their order in --help is fixed, and reading a list costs no
# start-up time (entry points are for plug-ins a third party adds: feeds and brokers).
SUBCOMMANDS = (workstation, record, bars, order, listings, actions, ask, login, doctor, config)


def build_parser() -> argparse.ArgumentParser:
    common = shared_options()
    parser = argparse.ArgumentParser(
        prog="trii-term",
        description="A keyboard-first trading workstation for the terminal. With no command it "
        "opens the workstation (offline defaults: replay feed, local DuckDB store).",
        parents=[common],
        epilog="Keys in the workstation: ctrl+p command palette, F1 help, ctrl+q quit.",
    )
    parser.add_argument("--version", action="version", version=f"trii-term {__version__}")
    parser.set_defaults(run=workstation.run)  # no command: the workstation
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever a command did not handle itself ends here as one sentence on
    stderr (the traceback goes to the log file) and exit 1: a store it cannot use, a DuckDB
    error in the middle of a command (a damaged block is found only when it is read), a bug."""
    try:
        return _run_command(argv)
    except Exception as exc:
        return _failed(argv, exc)


def _run_command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from trii_term.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    return int(args.run(args, paths))


def _failed(argv: Sequence[str] | None, exc: Exception) -> int:
    """One sentence for an error no command handled: what failed and what to do."""
    import logging

    from trii_term.paths import resolve_paths
    from trii_term.store.db import StoreError, store_error

    args = build_parser().parse_args(argv)  # it parsed before the command ran
    command = args.command or "run"
    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    if not logging.getLogger().handlers:  # the error came before logging was set up
        from trii_term.logs import setup_logging

        setup_logging(paths)
    root = logging.getLogger()
    if any(isinstance(h, logging.FileHandler) for h in root.handlers):  # never on stderr
        logging.getLogger(__name__).error("trii-term %s failed", command, exc_info=exc)
    if isinstance(exc, StoreError) or _from_duckdb(exc):
        text = str(store_error(_store_path(paths), exc))
    else:
        text = (
            f"stopped on an unexpected error ({type(exc).__name__}: {exc}); details are in {paths.log_file}"
        )
    failed = getattr(args, "failed", say_failed)  # a subcommand may say it its own way (ask --json)
    return int(failed(args, text))


def _from_duckdb(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


def _store_path(paths):
    """The store the command used: store.path from the config, else the one in the data dir."""
    from trii_term.config import ConfigError, load_config

    try:
        return load_config(paths.config_file).store.path or paths.default_store
    except ConfigError:
        return paths.default_store
