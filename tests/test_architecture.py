"""The one wall that matters: the core never imports Textual."""

from __future__ import annotations

import ast
import inspect
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import trii_term
from trii_term.paths import Paths

UI_MODULES = ("trii_term.app", "trii_term.__main__")
UI_PACKAGES = ("trii_term.screens", "trii_term.widgets", "trii_term.cli")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(trii_term.__path__, "trii_term."):
        name = info.name
        if name in UI_MODULES or name.startswith(UI_PACKAGES):
            continue
        names.append(name)
    return names


def test_every_core_module_is_checked() -> None:
    names = core_modules()
    for expected in (
        "trii_term.session",
        "trii_term.store.writer",
        "trii_term.feeds.replay",
        "trii_term.commands.registry",
        "trii_term.charting.render",
        "trii_term.charting.model",
        "trii_term.analytics.indicators",
    ):
        assert expected in names


def test_core_never_imports_textual() -> None:
    names = core_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "leaks = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaks))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core modules pulled in Textual: {out.stdout.strip()}"


def test_headless_start_does_not_import_heavy_sdks() -> None:
    """`record`/`doctor` paths and the session never import the AI or broker SDKs at start-up."""
    code = (
        "import sys, trii_term.session, trii_term.cli.record, trii_term.cli.doctor, trii_term.cli\n"
        "heavy = [m for m in ('anthropic', 'alpaca', 'kiteconnect', 'polars') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_workstation_module_does_not_import_the_chart_stack() -> None:
    """numpy and polars (≈ 200 ms) load after the first quotes are painted, not before."""
    code = (
        "import sys, trii_term.app, trii_term.cli\n"
        "print(','.join(m for m in ('numpy', 'polars', 'pyarrow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the layout's rules, read from the source ---------------------------------------------------

SRC = Path(trii_term.__file__).parent


def _modules() -> Iterator[tuple[str, ast.Module]]:
    """Every module of the package, by dotted name, parsed."""
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _is_type_name(node: ast.expr) -> bool:
    """`type(x).__name__` or `x.__class__.__name__`."""
    if not (isinstance(node, ast.Attribute) and node.attr == "__name__"):
        return False
    inner = node.value
    by_type = isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "type"
    return by_type or (isinstance(inner, ast.Attribute) and inner.attr == "__class__")


def test_screens_are_found_by_type_not_by_class_name() -> None:
    """`type(top).__name__ == "ChartScreen"` breaks silently on a rename or a subclass: a screen
    is found with isinstance (its class imported when it can be on the stack)."""
    found = [
        f"{name}:{node.lineno}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
        and any(_is_type_name(side) for side in (node.left, *node.comparators))
    ]
    assert found == [], f"compared by class name: {found}"


# -- the ports commands and screens reach the workstation through ------------------------------


def _port_members(port: type) -> dict[str, object]:
    """What a Protocol declares (with what its bases declare): name -> the declared member."""
    members: dict[str, object] = {}
    for klass in reversed(port.__mro__):
        if not getattr(klass, "_is_protocol", False) or klass is Protocol:
            continue
        members.update({n: v for n, v in vars(klass).items() if not n.startswith("_")})
    return members


def test_the_workstation_implements_every_port(paths: Paths) -> None:
    """Every method a port declares exists on the app with the same parameters, sync or async
    alike, and every attribute on a running app (mypy checks the types, in app.py)."""
    from trii_term.app import TriiTermApp
    from trii_term.commands import ports
    from trii_term.config import parse_config
    from trii_term.session import Session

    app = TriiTermApp(Session(parse_config(""), paths))
    missing: list[str] = []
    for port in (ports.UiPort, ports.WatchlistPort, ports.TradePort, ports.ChartPort, ports.ChatPort):
        for name, declared in _port_members(port).items():
            if isinstance(declared, property):
                if not hasattr(app, name):
                    missing.append(f"{port.__name__}.{name}")
                continue
            mine = getattr(TriiTermApp, name, None)
            is_async = inspect.iscoroutinefunction
            if not callable(mine) or is_async(mine) != is_async(declared):
                missing.append(f"{port.__name__}.{name}()")
                continue
            theirs = inspect.signature(declared).parameters
            have = inspect.signature(mine).parameters
            for p in theirs.values():
                if p.name not in have or have[p.name].kind != p.kind:
                    missing.append(f"{port.__name__}.{name}({p.name})")
    assert missing == []
    assert isinstance(app, ports.Workstation)  # what screens and widgets reach it as


# -- who imports whom ------------------------------------------------------------------------------


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Every trii_term module `name` imports, anywhere in it (a function's lazy import and a
    type-only import count too), as dotted names."""
    package = name if _is_package(name) else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m == "trii_term" or m.startswith("trii_term.")}


def _is_package(name: str) -> bool:
    return (SRC.parent / name.replace(".", "/") / "__init__.py").exists()


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_ai_and_commands_do_not_import_each_other() -> None:
    """The AI's tools run commands through the session (`Session.run_line`), and commands reach
    the chat through its port: neither package imports the other, not even for a type."""
    crossing = [
        f"{name} imports {target}"
        for name, tree in _modules()
        for target in _imports(name, tree)
        if (_within(name, "trii_term.ai") and _within(target, "trii_term.commands"))
        or (_within(name, "trii_term.commands") and _within(target, "trii_term.ai"))
    ]
    assert crossing == []


def _is_cli(name: str) -> bool:
    """The command-line modules: `trii_term.cli` (a module or a package) and `trii_term.*cli`."""
    return _within(name, "trii_term.cli") or (name.count(".") == 1 and name.endswith("cli"))


def test_no_core_module_imports_a_cli_module() -> None:
    """The CLI starts the core, never the other way round (the AI's tools once imported
    `tradecli`)."""
    front = (*UI_MODULES, *UI_PACKAGES)
    offending = [
        f"{name} imports {target}"
        for name, tree in _modules()
        if not _is_cli(name) and not name.startswith(front)
        for target in _imports(name, tree)
        if _is_cli(target)
    ]
    assert offending == []


def test_numpys_blas_runs_on_one_thread_in_trii_term() -> None:
    """The indicator kernels' matrix products never take a second core: numpy's BLAS starts
    with no thread pool once trii_term is imported first (as every entry point does)."""
    code = (
        "import os, sys; {first}import numpy as np; a = np.ones((400, 400)); a @ a; "
        "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_NUM_THREADS", "_MAXIMUM_THREADS"))}
    ours = subprocess.run(
        [sys.executable, "-c", code.format(first="import trii_term; ")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split() == ["1", "1"], ours.stdout
    if (os.cpu_count() or 1) > 1:  # the baseline: numpy alone starts a pool on a machine with cores
        plain = subprocess.run(
            [sys.executable, "-c", code.format(first="")], capture_output=True, text=True, env=env
        )
        assert int(plain.stdout.split()[0]) > 1, plain.stdout
