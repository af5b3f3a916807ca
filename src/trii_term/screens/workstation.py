"""The workstation: the panes of the trading desk, a message line, the status bar, the keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from trii_term.commands import watch
from trii_term.session import Session
from trii_term.widgets.bindings import command_bindings
from trii_term.widgets.quote_table import QuoteTable
from trii_term.widgets.status_bar import MessageLine, StatusBar
from trii_term.widgets.watchlist_pane import WatchlistPane


class WatchlistKeys(WatchlistPane):
    """The watchlist pane with the `watch …` commands bound to keys while it has focus."""

    BINDINGS = command_bindings(watch.COMMANDS)


class WorkstationScreen(Screen[None]):
    AUTO_FOCUS = "#quotes"

    def __init__(self, session: Session) -> None:
        super().__init__(id="workstation")
        self.session = session
        self.watchlist = WatchlistKeys(session, id="watchlist")
        self.message_line = MessageLine(id="message")
        self.status_bar = StatusBar(session, id="status")

    def compose(self) -> ComposeResult:
        yield self.watchlist
        yield self.message_line
        yield self.status_bar
        yield Footer()

    def on_mount(self) -> None:
        self.watchlist.reload()

    def on_quote_table_cursor_moved(self, event: QuoteTable.CursorMoved) -> None:
        self.status_bar.focused_symbol = event.symbol

    async def on_quote_table_header_clicked(self, event: QuoteTable.HeaderClicked) -> None:
        w = self.session.watchlists.active if self.session.watchlists else None
        line = (
            "watch reverse"
            if w is not None and w.sort_column == event.column
            else f"watch sort {event.column}"
        )
        await self.app.execute(line, source="mouse")  # type: ignore[attr-defined]
