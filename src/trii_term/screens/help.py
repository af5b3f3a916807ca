"""Help: every command, its keys and what it does."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
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
        with VerticalScroll(id="help-body"):
            yield Static(Text("trii-term — keys and commands   (Esc closes)", style="bold"), id="help-title")
            yield Static(KeysTable(help_rows(self._registry, self._keymap)))


Row = tuple[Text, Text, Text]  # keys, command, what it does


def help_rows(registry: CommandRegistry, keymap: dict[str, str]) -> list[Row]:
    """Every command by group, with its keys (as remapped) and what it does."""
    rows: list[Row] = []
    group = None
    order = {g: k for k, g in enumerate(GROUP_ORDER)}
    for cmd in sorted(registry, key=lambda c: (order.get(c.group, len(order)), c.group or "~", c.id)):
        if cmd.group != group:
            group = cmd.group
            rows.append((Text(group or "Other", style="bold underline"), Text(""), Text("")))
        keys = key_display(keymap.get(cmd.id, cmd.key or ""))
        rows.append((Text(keys, style="bold"), Text(cmd.usage), Text(cmd.summary)))
    rows.append((Text(""), Text(""), Text("")))
    palette = Text("command palette: type any command with its arguments")
    rows.append((Text("ctrl+p", style="bold"), Text(""), palette))
    moves = Text("move in the watchlist (also j/k, g/G)")
    rows.append((Text("↑↓ pgup pgdn", style="bold"), Text(""), moves))
    return rows


class KeysTable:
    """Keys, command and what it does: three columns when they fit; on a narrow screen each
    command on its own lines (keys and command, then what it does), so nothing is cut off."""

    SUMMARY = 30  # the room "what it does" needs beside the keys and the commands

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keys_width = max(k.cell_len for k, _u, _s in self.rows)
        usage_width = max(u.cell_len for _k, u, _s in self.rows)
        if options.max_width - keys_width - usage_width - 2 >= self.SUMMARY:
            table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
            table.add_column("keys", no_wrap=True)
            table.add_column("command", no_wrap=True)
            table.add_column("what it does", ratio=1)
            for row in self.rows:
                table.add_row(*row)
            yield table
            return
        for keys, usage, summary in self.rows:
            if not usage.plain and not summary.plain:
                yield keys
                continue
            head = Text.assemble(keys, " " if keys.plain and usage.plain else "", usage)
            yield head
            if summary.plain:
                yield Padding(summary, (0, 0, 0, 2))
