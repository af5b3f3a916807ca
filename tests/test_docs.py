"""The docs cannot drift: the generated reference pages are what tools/gen_docs.py writes now,
every local link resolves, and the JSON shapes in docs/json.md are those the real commands print."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trii_term.paths import Paths

from .conftest import FAST, run_cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_pages_are_what_the_generator_writes_now() -> None:
    pages = gen_docs().pages()
    assert set(pages) == {"config.md", "commands.md", "keys.md", "cli.md"}
    for name, text in pages.items():
        page = DOCS / name
        assert page.exists(), f"docs/{name} is missing: run tools/gen_docs.py"
        assert page.read_text(encoding="utf-8") == text, f"docs/{name} is out of date: run tools/gen_docs.py"


def test_every_config_key_command_and_binding_is_in_the_reference() -> None:
    from trii_term.config import SCHEMA

    gen = gen_docs()
    config_page = (DOCS / "config.md").read_text(encoding="utf-8")
    for dotted, _check in gen._schema_keys(SCHEMA):
        section, _, key = dotted.rpartition(".")
        assert f"## `[{section or dotted}]`" in config_page, dotted
        assert f"| `{key or 'ID'}` |" in config_page or section == "", dotted
    commands_page = (DOCS / "commands.md").read_text(encoding="utf-8")
    for command in gen.all_commands():
        assert f"`{command.id}`" in commands_page, command.id
    keys_page = (DOCS / "keys.md").read_text(encoding="utf-8")
    for owner in gen.binding_owners():
        for binding in owner.__dict__["BINDINGS"]:
            if getattr(binding, "id", None):
                assert f"`{binding.id}`" in keys_page, binding.id


# -- links ----------------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub makes of a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(2)) for m in re.finditer(r"^(#{1,6})\s+(.+)$", text, re.M)}


def broken_links(pages: list[Path]) -> list[str]:
    """Every link in `pages` to a local file that is not there, or to a heading it does not have."""
    broken = []
    for page in pages:
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_every_local_link_in_the_readme_and_docs_resolves() -> None:
    broken = broken_links([ROOT / "README.md", *sorted(DOCS.glob("*.md"))])
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## `ask error`\n\n[a](page.md#ask-error) [b](missing.md) [c](#nowhere) `[d](x.md)`\n"
        "![e](missing.svg)\n\n```\n[f](inside-code.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links([page]) == [
        "page.md: missing.md (no such file)",
        "page.md: #nowhere (no such heading)",
        "page.md: missing.svg (no such file)",
    ]


# -- JSON shapes ----------------------------------------------------------------------------------

TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def documented_shapes() -> dict[str, dict[str, list[str]]]:
    """docs/json.md: each `## `name`` (or `###`) section's fields and their types."""
    shapes: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (DOCS / "json.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{2,3} `([^`]+)`$", line)
        if heading:
            current = heading.group(1)
            shapes[current] = {}
            continue
        row = re.match(r"^\| `(\w+)` \| ([a-z ]+) \|", line)
        if row and current is not None:
            shapes[current][row.group(1)] = row.group(2).split(" or ")
    return {name: fields for name, fields in shapes.items() if fields}


def assert_shape(name: str, value: Any, shapes: dict[str, dict[str, list[str]]]) -> None:
    fields = shapes[name]
    assert isinstance(value, dict), f"{name}: not an object: {value!r}"
    assert set(value) == set(fields), (
        f"docs/json.md `{name}` lists {sorted(fields)}, the command printed {sorted(value)}"
    )
    for field, kinds in fields.items():
        v = value[field]
        ok = any(
            isinstance(v, TYPES[k]) and not (k in ("integer", "number") and isinstance(v, bool))
            for k in kinds
        )
        assert ok, f"docs/json.md `{name}.{field}` is {' or '.join(kinds)}; the command printed {v!r}"


def cli_json(*args: str, paths: Paths, code: int = 0) -> Any:
    done = run_cli(*args, "--json", paths=paths)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def test_the_documented_json_shapes_are_what_the_commands_print(paths: Paths) -> None:
    shapes = documented_shapes()
    assert {"order", "position", "account", "journal entry", "bars", "bar", "split", "record"} <= set(shapes)
    assert {"ask", "ask error", "ask tool call", "ask usage"} <= set(shapes)
    paths.config_file.write_text(FAST)

    filled = cli_json("order", "buy", "10", "AAPL", "--yes", paths=paths)
    assert_shape("order", filled, shapes)
    # MSFT traded 27.71–27.79 on the replayed day: a buy at 27 rests
    working = cli_json("order", "buy", "5", "MSFT", "lmt", "27", "gtc", "--yes", paths=paths)
    assert working["status"] == "new" and working["avg_fill_price"] is None
    orders = cli_json("orders", paths=paths)
    assert len(orders) == 2
    for order in orders:
        assert_shape("order", order, shapes)
    for order in cli_json("cancel", "--all", paths=paths):
        assert_shape("order", order, shapes)
    positions = cli_json("positions", paths=paths)
    assert positions
    for position in positions:
        assert_shape("position", position, shapes)
    assert_shape("account", cli_json("account", paths=paths), shapes)
    journal = cli_json("journal", paths=paths)
    assert {e["event"] for e in journal} >= {"intent", "checked", "submitted", "filled", "canceled"}
    for entry in journal:
        assert_shape("journal entry", entry, shapes)

    bars = cli_json("bars", "AAPL", "--last", "3", paths=paths)
    assert_shape("bars", bars, shapes)
    assert len(bars["bars"]) == 3 and bars["splits"]
    for bar in bars["bars"]:
        assert_shape("bar", bar, shapes)
    for split in bars["splits"]:
        assert_shape("split", split, shapes)

    asked = cli_json("ask", "is", "MSFT", "trending?", paths=paths, code=1)  # no key in the tests
    assert_shape("ask", asked, shapes)
    assert_shape("ask error", asked["error"], shapes)


def test_the_record_summary_is_the_documented_shape(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    summary = cli_json("record", "--seconds", "1", paths=paths)
    assert_shape("record", summary, documented_shapes())
    assert summary["stored"] == summary["ticks"] + summary["quotes"]


@pytest.mark.parametrize(
    ("printed", "problem"),
    [
        (
            {
                "cash": "1.00",
                "equity": "1.00",
                "buying_power": "1.00",
                "realized_pnl": "0",
                "unrealized_pnl": "0",
                "fees": "0",
            },
            "lists",
        ),
        (
            {
                "cash": 1.0,
                "equity": "1.00",
                "buying_power": "1.00",
                "realized_pnl": "0",
                "unrealized_pnl": "0",
                "fees": "0",
                "currency": "USD",
            },
            "is string",
        ),
    ],
)
def test_a_field_missing_or_of_another_type_fails_the_shape_check(
    printed: dict[str, Any], problem: str
) -> None:
    with pytest.raises(AssertionError, match=problem):
        assert_shape("account", printed, documented_shapes())


def test_every_command_in_the_workstation_tables_is_a_command() -> None:
    """docs/workstation.md's tables of keys and commands by task are written by hand: each command
    they name must still be one (by its words or an alias)."""
    from trii_term.commands.registry import CommandRegistry

    registry = CommandRegistry()
    registry.extend(gen_docs().all_commands())
    named = []
    for line in (DOCS / "workstation.md").read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if not line.startswith("|") or len(cells) < 3 or cells[1] in ("command", "---"):
            continue
        for span in re.findall(r"`([^`]+)`", cells[1]):
            words = list(itertools.takewhile(lambda w: re.fullmatch(r"[a-z]+", w) is not None, span.split()))
            named.append(span)
            assert words and registry.match(words) is not None, f"docs/workstation.md names {span!r}"
    assert len(named) > 40
