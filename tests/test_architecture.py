"""The one wall that matters: the core never imports Textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import trii_term

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
