"""Help: every command, its keys and what it does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from trii_term.commands.registry import CommandRegistry
from trii_term.widgets.bindings import key_display

GROUP_ORDER = ("Watchlist", "Chart", "Replay", "Workstation")  # what a trader reaches for first


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, registry: CommandRegistry, keymap: dict[str, str]) -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self._registry = registry
        self._keymap = keymap

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("keys", no_wrap=True)
        table.add_column("command", no_wrap=True)
        table.add_column("what it does", ratio=1)
        group = None
        order = {g: k for k, g in enumerate(GROUP_ORDER)}
        for cmd in sorted(
            self._registry, key=lambda c: (order.get(c.group, len(order)), c.group or "~", c.id)
        ):
            if cmd.group != group:
                group = cmd.group
                table.add_row(Text(group or "Other", style="bold underline"), "", "")
            keys = key_display(self._keymap.get(cmd.id, cmd.key or ""))
            table.add_row(Text(keys, style="bold"), Text(cmd.usage), Text(cmd.summary))
        table.add_row("", "", "")
        table.add_row(
            Text("ctrl+p", style="bold"), "", "command palette: type any command with its arguments"
        )
        table.add_row(Text("↑↓ pgup pgdn", style="bold"), "", "move in the watchlist (also j/k, g/G)")
        with VerticalScroll(id="help-body"):
            yield Static(Text("trii-term — keys and commands   (Esc closes)", style="bold"), id="help-title")
            yield Static(table)
