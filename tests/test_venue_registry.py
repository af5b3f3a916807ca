"""A third venue is a new package plus entry points, nothing else: the core names no venue in its
code (docstrings and comments may use them as examples), and the registry finds the brokers,
feeds and venues through entry points."""

from __future__ import annotations

import ast
from pathlib import Path

from trii_term import brokers, feeds, venues
from trii_term.config import schema

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "trii_term"
VENUE_NAMES = ("alpaca", "kite")

# (file, the text) that may name a venue, and why
ALLOWED = {
    # the error message of `feed.provider = []`, kept word for word (config messages are public)
    ("config.py", 'must name at least one provider, e.g. ["alpaca", "kite"]'),
}
# whole files that may: the store's migrations are forward-only history (schema v3 created Kite's
# instrument master tables; a migration never moves or changes)
ALLOWED_FILES = {"store/migrations.py"}
# the front ends are not the core (ARCHITECTURE.md): their help texts may name a venue
FRONT_ENDS = ("app.py", "screens/", "widgets/", "cli.py", "cli/")


def _docstrings(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _venue_words(path: Path) -> list[str]:
    """Every string literal (not a docstring) and every identifier that names a venue."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.alias):
            text = node.name
        elif isinstance(node, ast.ImportFrom):
            text = node.module or ""
        if text and any(v in text.lower() for v in VENUE_NAMES):
            found.append(text)
    return found


def test_no_core_module_names_a_venue() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("adapters/", *FRONT_ENDS)) or rel in ALLOWED_FILES:
            continue
        for text in _venue_words(path):
            if (rel, text) not in ALLOWED:
                offenders.append(f"{rel}: {text!r}")
    assert not offenders, "the core names a venue (put it in adapters/<venue>/):\n" + "\n".join(offenders)


def test_the_check_finds_a_venue_name_in_code(tmp_path: Path) -> None:
    """The check above can fail: an `if name == "kite"` is caught, a docstring is not."""
    module = tmp_path / "m.py"
    module.write_text('"""Kite and Alpaca as examples."""\n\ndef f(name):\n    return name == "kite"\n')
    assert _venue_words(module) == ["kite"]


def test_brokers_feeds_and_venues_come_from_entry_points() -> None:
    assert brokers.names() == ["paper", "alpaca", "kite"]
    assert feeds.available_feeds()[:3] == ["replay", "alpaca", "kite"]
    assert [v.name for v in venues.venues()] == ["alpaca", "kite"]
    assert venues.login_names() == ["alpaca", "kite"]
    assert venues.credential_names() == ["alpaca", "alpaca-live", "kite"]
    for name in brokers.names():
        plugin = brokers.plugin(name)
        assert plugin.name == name and plugin.live == (name != "paper")


def test_each_venue_brings_its_config_tables() -> None:
    full = schema()
    assert list(full["providers"]) == ["replay", "alpaca", "kite"]
    assert list(full["brokers"]) == ["default", "paper", "alpaca", "kite"]
    assert list(full["brokers"]["alpaca"]) == ["paper", "url", "stream_url"]
    assert list(full["providers"]["kite"]) == ["mode", "ticker_url", "root"]


def test_the_cli_choices_are_what_they_were() -> None:
    from trii_term import adapters

    assert adapters.login_names() == ["alpaca", "kite", "anthropic"]
    assert adapters.logout_names() == ["alpaca", "alpaca-live", "kite", "anthropic"]
