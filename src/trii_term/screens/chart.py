"""The full-screen chart: the workstation's chart model, as large as the terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen

from trii_term.charting.model import ChartModel
from trii_term.session import Session
from trii_term.widgets.chart import ChartView
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.status_bar import MessageLine, StatusBar


class ChartScreen(Screen[None]):
    AUTO_FOCUS = "#chart-full"

    def __init__(self, session: Session, model: ChartModel) -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self.model = model
        self.chart = ChartView(model, id="chart-full")
        self.message_line = MessageLine(id="chart-message")
        self.status_bar = StatusBar(session, id="chart-status")

    def compose(self) -> ComposeResult:
        yield self.chart
        yield self.message_line
        yield self.status_bar
        yield KeysFooter()

    def on_mount(self) -> None:
        self.status_bar.focused_symbol = self.model.spec.symbol
