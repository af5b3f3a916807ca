"""The cli package: each subcommand adds its parser and names its handler; `main` only dispatches;
building every parser stays light; and nothing in the core reaches up into the CLI."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import trii_term
from trii_term.cli import SUBCOMMANDS, build_parser

from .test_architecture import core_modules

SRC = Path(trii_term.__file__).parent


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_subcommand_names_the_function_that_runs_it() -> None:
    parser = build_parser()
    assert callable(parser.get_default("run"))  # no command: the workstation
    commands = _subparsers(parser)
    assert list(commands)[:16] == [
        "run", "record", "bars", "order", "orders", "positions", "account", "journal",
        "cancel", "replace", "flatten", "reverse", "ask", "login", "logout", "doctor",
    ]  # fmt: skip
    for name, sub in commands.items():
        if name == "config":  # a command with actions: each action names its handler
            for action in _subparsers(sub).values():
                assert callable(action.get_default("run"))
        else:
            assert callable(sub.get_default("run")), name


def test_each_subcommand_module_adds_itself() -> None:
    for module in SUBCOMMANDS:
        assert module.__name__.startswith("trii_term.cli.")
        assert callable(module.register)


def test_main_has_no_chain_of_command_names() -> None:
    """Dispatch is `args.run(...)`: no `command == "…"` test anywhere in the package."""
    for path in sorted((SRC / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                names = [n.id for n in (node.left, *node.comparators) if isinstance(n, ast.Name)]
                assert not {"command", "what"} & set(names), f"{path.name}:{node.lineno}"


def test_building_the_parser_loads_no_session_store_or_textual() -> None:
    """`trii-term --help` builds every subcommand's parser: it must not pay for what runs them.
    (It does read the entry points: the installed brokers and venues are `--broker`'s and
    `login`'s choices.)"""
    code = (
        "import sys\n"
        "from trii_term.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = ('textual', 'trii_term.session', 'trii_term.config', 'duckdb', 'polars', 'asyncio',\n"
        "         'trii_term.cli.doctor_checks')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_core_never_imports_the_cli() -> None:
    """The CLI sits on the core; the core (ai, commands, session, …) never reaches up into it."""
    offenders = []
    for name in core_modules():
        if name in ("trii_term.__main__",):
            continue
        spec_path = SRC.joinpath(*name.split(".")[1:])
        path = spec_path / "__init__.py" if spec_path.is_dir() else spec_path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            if any(t == "trii_term.cli" or t.startswith("trii_term.cli.") for t in targets):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
