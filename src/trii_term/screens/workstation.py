"""The workstation: the panes of the trading desk, a message line, the status bar, the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import Static

from trii_term.commands import watch
from trii_term.commands.ports import workstation
from trii_term.session import Session
from trii_term.widgets.bindings import command_bindings
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.quote_table import QuoteTable
from trii_term.widgets.status_bar import MessageLine, StatusBar
from trii_term.widgets.watchlist_pane import WatchlistPane

if TYPE_CHECKING:
    from trii_term.ai.chat_session import ChatSession
    from trii_term.charting.model import ChartModel
    from trii_term.widgets.chart import ChartView


class WatchlistKeys(WatchlistPane):
    """The watchlist pane with the `watch …` commands bound to keys while it has focus."""

    BINDINGS = command_bindings(watch.COMMANDS)


class ChartPane(Vertical):
    """The workstation's chart: it follows the watchlist's highlighted symbol. The chart (numpy,
    polars) is attached once the first quotes are on screen, so it does not delay them."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart: ChartView | None = None  # once attached
        self.border_title = "Chart"

    def compose(self) -> ComposeResult:
        yield Static("starting the chart…", id="chart-starting")

    def attach(self, model: ChartModel) -> None:
        from trii_term.widgets.chart import ChartView

        self.chart = ChartView(model, id="chart")
        self.query("#chart-starting").remove()
        self.mount(self.chart)


class WorkstationScreen(Screen[None]):
    AUTO_FOCUS = "#quotes"
    # stacked (each pane the full width) below 200 columns; side by side on very wide terminals
    HORIZONTAL_BREAKPOINTS = [(0, "-stacked"), (200, "-side")]
    # below 18 rows the chart does not fit under the watchlist (each needs its borders and rows)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (18, "-tall")]

    def __init__(self, session: Session) -> None:
        super().__init__(id="workstation")
        self.session = session
        self.watchlist = WatchlistKeys(session, id="watchlist")
        self.chart_pane = ChartPane(id="chart-pane")
        self.chat_pane = Vertical(id="chat-pane")  # the chat view is mounted when first opened
        self.chat_pane.display = False
        self.chat_pane.border_title = "Chat"
        self.message_line = MessageLine(id="message")
        self.status_bar = StatusBar(session, id="status")

    def compose(self) -> ComposeResult:
        with Container(id="panes"):
            yield self.watchlist
            yield self.chart_pane
            yield self.chat_pane
        yield self.message_line
        yield self.status_bar
        yield KeysFooter()

    def on_mount(self) -> None:
        self.watchlist.reload()

    # -- the chat pane: in the chart's place when stacked, a third column side by side --------

    @property
    def chat_visible(self) -> bool:
        return bool(self.chat_pane.display)

    def show_chat(self, controller: ChatSession) -> None:
        from trii_term.widgets.chat import ChatView

        view = next(iter(self.chat_pane.query(ChatView)), None)
        if view is None:
            view = ChatView(controller, id="chat")
            self.chat_pane.mount(view)
        if view not in controller.views:
            controller.views.insert(0, view)  # the pane is below any full-screen chat
        self.chat_pane.display = True
        self.set_class(True, "-chat")
        self.call_after_refresh(view.input.focus)  # (a view just mounted has no input yet)

    def hide_chat(self) -> None:
        self.chat_pane.display = False
        self.set_class(False, "-chat")
        self.watchlist.table.focus()

    def on_quote_table_cursor_moved(self, event: QuoteTable.CursorMoved) -> None:
        self.status_bar.focused_symbol = event.symbol
        if event.symbol:
            workstation(self.app).follow_symbol(event.symbol)

    async def on_quote_table_header_clicked(self, event: QuoteTable.HeaderClicked) -> None:
        w = self.session.watchlists.active if self.session.watchlists else None
        line = (
            "watch reverse"
            if w is not None and w.sort_column == event.column
            else f"watch sort {event.column}"
        )
        await workstation(self.app).execute(line, source="mouse")
