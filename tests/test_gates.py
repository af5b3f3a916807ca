"""The static gates of .ci/run check what they say: the mypy baseline only shrinks, every
`# type: ignore` names its code and its reason, the import contracts see every core module, and
Textual stays pinned exactly while trii-term uses its private API."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

import trii_term

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mypy_gate", ROOT / "tools" / "mypy_gate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mypy_gate"] = module  # (its dataclasses look themselves up there)
    spec.loader.exec_module(module)
    return module


gate = _load_gate()
STRICT = ("src/trii_term/domain/", "src/trii_term/domain.py", "src/trii_term/store/")

MYPY_OUTPUT = """\
src/trii_term/logs.py:24: error: Name "handler" already defined on line 19  [no-redef]
src/trii_term/logs.py:24: note: see the first definition
src/trii_term/app.py:49: error: Item "None" of "Ui | None" has no attribute "quit"  [union-attr]
src/trii_term/app.py:88: error: Item "None" of "Ui | None" has no attribute "quit"  [union-attr]
src/trii_term/store/sql.py:36: error: Function is missing a type annotation  [no-untyped-def]
Found 4 errors in 3 files (checked 99 source files)
"""


def test_mypy_errors_are_read_without_their_line_numbers() -> None:
    found = gate.parse_mypy(MYPY_OUTPUT)
    assert [f.line for f in found] == [24, 49, 88, 36]  # the note and the summary are not errors
    assert found[0].key == gate.Key(
        "src/trii_term/logs.py", "no-redef", 'Name "handler" already defined on line N'
    )
    assert found[1].key == found[2].key  # one entry, counted twice


def test_an_error_beyond_the_baseline_fails_and_is_shown_with_its_line() -> None:
    found = gate.parse_mypy(MYPY_OUTPUT)[:3]
    baseline = Counter(f.key for f in found[:2])  # the second union-attr is new
    verdict = gate.judge(found, baseline, [], Counter(), STRICT)
    assert verdict.failed
    assert [f.line for f in verdict.new] == [49, 88]  # both lines of the entry that grew
    assert "src/trii_term/app.py:88" in "\n".join(gate.report(verdict, 2, 3))


def test_a_strict_package_has_no_baseline() -> None:
    found = gate.parse_mypy(MYPY_OUTPUT)
    baseline = Counter(f.key for f in found)  # even recorded, the store's error fails the gate
    verdict = gate.judge(found, baseline, [], Counter(), STRICT)
    assert [f.key.file for f in verdict.strict] == ["src/trii_term/store/sql.py"]
    assert not verdict.new and verdict.failed


def test_a_fixed_error_asks_for_the_baseline_to_shrink_and_update_never_adds() -> None:
    found = gate.parse_mypy(MYPY_OUTPUT)[:2]
    baseline = Counter(f.key for f in gate.parse_mypy(MYPY_OUTPUT)[:3])
    verdict = gate.judge(found, baseline, [], Counter(), STRICT)
    assert verdict.failed and sum(verdict.gone.values()) == 1
    assert "--update" in "\n".join(gate.report(verdict, 3, 2))

    grown = Counter(f.key for f in gate.parse_mypy(MYPY_OUTPUT))  # one fixed, two new meanwhile
    shrunk = gate.shrunk(baseline, grown - Counter({found[1].key: 1}))
    assert set(shrunk) <= set(baseline) and all(shrunk[k] <= baseline[k] for k in shrunk)
    assert sum(shrunk.values()) == 2


def test_the_baseline_file_reads_back_as_written(tmp_path: Path) -> None:
    counts = Counter(f.key for f in gate.parse_mypy(MYPY_OUTPUT))
    path = tmp_path / "baseline.txt"
    path.write_text(gate.render_baseline(counts, ["a header"]), encoding="utf-8")
    assert gate.read_baseline(path) == counts


SOURCE = """\
a = f(x)  # type: ignore
b = f(x)  # type: ignore[arg-type]
c = f(x)  # type: ignore[arg-type, union-attr]  # the SDK's stub says str; it returns bytes
d = "# type: ignore[this-is-a-string]"
"""


def test_every_type_ignore_needs_its_code_and_a_reason_or_a_baseline() -> None:
    ignores = gate.scan_ignores(SOURCE, "src/trii_term/x.py")
    assert [(i.line, i.codes, bool(i.reason)) for i in ignores] == [
        (1, "", False),
        (2, "[arg-type]", False),
        (3, "[arg-type, union-attr]", True),
    ]  # not the one inside a string
    verdict = gate.judge([], Counter(), ignores, Counter({"src/trii_term/x.py": 1}), STRICT)
    assert [i.line for i in verdict.bare] == [1]  # a bare ignore fails, baseline or not
    assert not verdict.new_unexplained  # the reasonless one is recorded
    verdict = gate.judge([], Counter(), ignores[1:], Counter(), STRICT)
    assert [i.line for i in verdict.new_unexplained["src/trii_term/x.py"]] == [2]
    strict = gate.scan_ignores(SOURCE, "src/trii_term/store/x.py")[1:]
    verdict = gate.judge([], Counter(), strict, Counter({"src/trii_term/store/x.py": 1}), STRICT)
    assert [i.line for i in verdict.strict_unexplained] == [2]  # no baseline in a strict package


def test_the_strict_packages_come_from_the_mypy_settings() -> None:
    prefixes = gate.strict_prefixes()
    for package in ("domain", "trading", "store"):
        assert f"src/trii_term/{package}/" in prefixes
    assert not gate.in_strict("src/trii_term/session.py", prefixes)


def test_no_override_turns_strict_mode_on() -> None:
    """`strict = true` in a `[[tool.mypy.overrides]]` section switches strict mode on for the whole
    package (mypy applies it to its global options), so the strict packages spell out the flags."""
    for override in PYPROJECT["tool"]["mypy"].get("overrides", []):
        assert "strict" not in override, override["module"]


# -- the import contracts -----------------------------------------------------------------------


def _contract(contract_id: str) -> dict[str, object]:
    return next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["id"] == contract_id)


def _layer_names(layer: str) -> list[str]:
    parts = layer.replace("|", ":").split(":")
    return [p.strip().strip("()") for p in parts]


def test_the_textual_wall_contract_names_every_core_module() -> None:
    """A new top-level module is either under the UI (a layer above `session`) or in the core, and
    then the contract that keeps Textual and the UI out of the core covers it."""
    layers = _contract("layers")["layers"]
    assert isinstance(layers, list)
    above_session = {n for layer in layers[: layers.index("session")] for n in _layer_names(layer)}
    sources = _contract("core-no-ui")["source_modules"]
    assert isinstance(sources, list)
    core = {s.removeprefix("trii_term.").removesuffix(".*") for s in sources}
    for info in pkgutil.iter_modules(trii_term.__path__):
        assert info.name in above_session or info.name in core, f"trii_term.{info.name} is in no room"
    assert not above_session & core


# -- Textual's private API ------------------------------------------------------------------------


def _defined_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _textual_source() -> str:
    spec = importlib.util.find_spec("textual")
    assert spec is not None and spec.origin is not None
    return "\n".join(p.read_text(encoding="utf-8") for p in Path(spec.origin).parent.rglob("*.py"))


def private_textual_uses(sources: dict[str, str], textual_source: str) -> list[str]:
    """Where the sources use Textual's private API: an import from a `textual._…` module, or
    `x._name` in a module that imports Textual where `_name` is not ours and Textual's source
    has it."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    ours = set().union(*(_defined_names(t) for t in trees.values()))
    uses = []
    for name, tree in trees.items():
        imports_textual = False
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for module in modules:
                if module.split(".")[0] == "textual":
                    imports_textual = True
                    if any(part.startswith("_") for part in module.split(".")):
                        uses.append(f"{name}:{node.lineno}: import from {module}")
        if not imports_textual:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                attr = node.attr
                private = attr.startswith("_") and not attr.startswith("__") and attr not in ours
                if private and re.search(rf"\b{attr}\b", textual_source):
                    uses.append(f"{name}:{node.lineno}: .{attr}")
    return uses


def test_private_textual_api_is_found() -> None:
    sources = {
        "a.py": "from textual._time import get_time\n",
        "b.py": "from textual.app import App\nclass A(App):\n    def go(self):\n"
        "        self._mine = 1\n        self._mine\n        self._close_messages_no_wait()\n",
        "c.py": "import os\nos._exit(0)\n",  # no Textual here
    }
    textual = "def _close_messages_no_wait(self): ...\nself._mine = 0\nos._exit(1)\n"
    uses = private_textual_uses(sources, textual)
    assert uses == ["a.py:1: import from textual._time", "b.py:6: ._close_messages_no_wait"]


def test_textual_is_pinned_exactly_while_its_private_api_is_used() -> None:
    src = ROOT / "src" / "trii_term"
    sources = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in src.rglob("*.py")}
    uses = private_textual_uses(sources, _textual_source())
    if not uses:
        pytest.skip("no private Textual API in use: the pin may be a range")
    textual = [r for r in map(Requirement, PYPROJECT["project"]["dependencies"]) if r.name == "textual"]
    assert len(textual) == 1
    specs = list(textual[0].specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"textual must be pinned with == while src uses its private API: {uses}"
    )
