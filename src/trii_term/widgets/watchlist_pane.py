"""The watchlist pane: which list is shown (and the others), its sort, and the quote table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from trii_term.session import Session
from trii_term.watchlists import SORT_BY_NAME, ordered_symbols
from trii_term.widgets.quote_table import QuoteTable


class WatchlistPane(Vertical):
    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._session = session
        self.table = QuoteTable(session, id="quotes")

    def compose(self) -> ComposeResult:
        yield self.table

    def reload(self) -> None:
        """Rows, order and titles from the watchlists (after any change, and on a timer when
        sorted by a live column)."""
        lists = self._session.watchlists
        if lists is None:
            self.border_title = "Watchlist"
            self.border_subtitle = "opening store…"
            return
        w = lists.active
        rows = ordered_symbols(w, self._session.quotes, self._session.clock.now_ns())
        self.table.set_rows(rows, sort_column=w.sort_column, sort_desc=w.sort_desc)
        names = [f"▸{other.name}" if other.id == w.id else other.name for other in lists.lists]
        title = "Watchlist " + "  ".join(names)
        room = self.size.width - 6 if self.size.width else len(title)  # (the corners and padding)
        if len(title) > room:  # the list shown, always; the others counted (w switches)
            title = f"▸{w.name} · {len(names)} lists"
        self.border_title = title
        order = (
            "your order"
            if w.sort_column is None
            else (f"by {SORT_BY_NAME[w.sort_column].label} {'▼ desc' if w.sort_desc else '▲ asc'}")
        )
        self.border_subtitle = f"{len(w.symbols)} symbols · {order}"

    def on_resize(self) -> None:
        self.reload()

    @property
    def sorted_live(self) -> bool:
        lists = self._session.watchlists
        return lists is not None and lists.active.sort_column not in (None, "symbol")
