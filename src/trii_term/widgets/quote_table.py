"""The watchlist's table of quotes, drawn with Textual's line API.

One `render_line` per visible row, no widget per cell or row: a tick repaints one line, and
a 500-symbol list costs what its visible rows cost. The header is the first line and stays put
while rows scroll under it. Meaning never rests on colour alone: ticks carry ▲/▼, changes
carry signs, the cursor row carries `›`, stale quotes say "stale".
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from trii_term import format as fmt
from trii_term.domain import NS_PER_SECOND, SessionPhase
from trii_term.quotebook import QuoteState
from trii_term.session import Session
from trii_term.widgets.quote_columns import COLUMNS, GUTTER, TEXT_COLUMNS, Column, Layout, fit, plan

MEASURED = tuple(c.key for c in COLUMNS if c.key != "name")  # (a name is cut to fit, with …)


class QuoteTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "quote-table--header",
        "quote-table--cursor",
        "quote-table--up",
        "quote-table--down",
        "quote-table--flash-up",
        "quote-table--flash-down",
        "quote-table--stale",
        "quote-table--symbol",
        "quote-table--muted",
    }

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page-up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page-down"),
        Binding("home,g", "jump(0)", "First", show=False, id="table.first"),
        Binding("end,G", "jump(-1)", "Last", show=False, id="table.last"),
    ]

    class CursorMoved(Message):
        def __init__(self, symbol: str | None) -> None:
            super().__init__()
            self.symbol = symbol

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._session = session
        self._rows: list[str] = []
        self._index: dict[str, int] = {}
        self._cursor = 0
        self._needs: dict[str, int] = {}  # per column, the widest text it holds now
        self._plan = plan(80, self._needs)
        self._layout_width = -1  # the width the plan is for; -1: plan again
        self._styles: dict[str, Style] = {}
        self._flashing: dict[str, float] = {}  # symbol -> monotonic end of its flash
        self._sort_column: str | None = None
        self._sort_desc = False
        self._now_ns = 0
        self.empty_hint = "Empty watchlist: press a (or type  watch add AAPL  in ctrl+p) to add a symbol."

    # -- data -----------------------------------------------------------------------------

    @property
    def rows(self) -> list[str]:
        return self._rows

    @property
    def cursor_symbol(self) -> str | None:
        return self._rows[self._cursor] if 0 <= self._cursor < len(self._rows) else None

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def set_rows(
        self, symbols: list[str], *, sort_column: str | None = None, sort_desc: bool = False
    ) -> None:
        """Show these symbols in this order; the cursor stays on its symbol if still present."""
        keep = self.cursor_symbol
        changed = symbols != self._rows or (sort_column, sort_desc) != (self._sort_column, self._sort_desc)
        self._rows = list(symbols)
        self._index = {s: i for i, s in enumerate(self._rows)}
        if changed:
            self.measure()
        self._sort_column, self._sort_desc = sort_column, sort_desc
        if keep in self._index:
            self._cursor = self._index[keep]
        else:
            self._cursor = min(self._cursor, max(0, len(self._rows) - 1))
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._rows) + 1)
        if changed:
            self._scroll_cursor_into_view()
            self.refresh()
            if keep != self.cursor_symbol:
                self.post_message(self.CursorMoved(self.cursor_symbol))

    def update_quotes(self, dirty: set[str]) -> None:
        """Repaint the visible rows whose quotes changed or whose flash ended."""
        now = time.monotonic()
        book = self._session.quotes
        for sym in dirty:
            st = book.get(sym)
            if st is not None and st.flash and st.flash_until > now:
                self._flashing[sym] = st.flash_until
        ended = [s for s, until in self._flashing.items() if until <= now]
        for sym in ended:
            del self._flashing[sym]
        targets = dirty.union(ended) if ended else dirty
        if not targets:
            return
        top = int(self.scroll_offset.y)
        bottom = top + max(0, self.size.height - 1)
        index = self._index
        for sym in targets:
            row = index.get(sym)
            if row is not None and top <= row < bottom:
                self.refresh_line(row + 1)

    def refresh_rows(self) -> None:
        """Measure again and repaint every visible row (ages move on even without ticks)."""
        if self._rows:
            self.measure()
            self.refresh()

    def measure(self) -> None:
        """How wide each column's content is, over every row (not only those on screen), so
        the columns are planned before a number would be cut; the plan changes only when a
        width does."""
        needs = dict.fromkeys(MEASURED, 1)
        for sym in self._rows:
            cells, _stale = self._cells(sym, MEASURED)
            for key, (text, _style) in cells.items():
                if len(text) > needs[key]:
                    needs[key] = len(text)
        if needs != self._needs:
            self._needs = needs
            self._layout_width = -1

    # -- cursor -----------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        if row == self._cursor:
            return
        old = self._cursor
        self._cursor = row
        self.refresh_line(old + 1)
        self.refresh_line(row + 1)
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(self.cursor_symbol))

    def select_symbol(self, symbol: str) -> None:
        if symbol in self._index:
            self.move_cursor(self._index[symbol])

    def _visible_rows(self) -> int:
        return max(1, self.size.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        visible = self._visible_rows()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self._cursor + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(self._cursor + step * max(1, self._visible_rows() - 1))

    def action_jump(self, row: int) -> None:
        self.move_cursor(len(self._rows) - 1 if row < 0 else row)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            col = self._column_at(event.x)
            if col is not None and col.sort is not None:
                self.post_message(self.HeaderClicked(col.sort))
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self._rows):
            self.move_cursor(row)

    def _column_at(self, x: int) -> Column | None:
        pos = GUTTER
        gap = self._plan.gap
        for col in self._plan.columns:
            if pos <= x < pos + col.width + gap:
                return col
            pos += col.width + gap
        return None

    @property
    def layout(self) -> Layout:
        """The columns shown now, and their widths."""
        return self._plan

    # -- layout and styles ------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._layout(self.scrollable_content_region.width)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._rows) + 1)
        self._scroll_cursor_into_view()

    def _layout(self, width: int) -> None:
        if width != self._layout_width:
            self._layout_width = width
            self._plan = plan(width, self._needs)

    def _grown(self, cells: dict[str, tuple[str, Style | None]], width: int) -> bool:
        """A number became wider than its column since the last measure (a tick, an age going
        stale): plan again at once, so it is drawn whole; the rows drawn before it in this
        frame are drawn again with the new columns."""
        wider = {
            c.key: len(cells[c.key][0])
            for c in self._plan.columns
            if c.key not in TEXT_COLUMNS and len(cells[c.key][0]) > max(c.width, self._needs.get(c.key, 0))
        }
        if not wider:
            return False
        self._needs.update(wider)
        self._plan = plan(width, self._needs)
        self._layout_width = width
        self.call_later(self.refresh)
        return True

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self._component_style(f"quote-table--{name}")
        return style

    def _component_style(self, name: str) -> Style:
        """A component's style with its translucent colours laid over the table's background
        (a Rich style has no alpha: `$primary 25%` was drawn as the full colour, and red text
        sat on a bright orange bar)."""
        style = self.get_component_rich_style(name, partial=True)
        styles = self.get_component_styles(name)
        under = self.background_colors[1]
        if styles.has_rule("background") and styles.background.a < 1:
            style += Style(bgcolor=(under + styles.background).rich_color)
        if styles.has_rule("color") and styles.color.a < 1:
            style += Style(color=(under + styles.color).rich_color)
        return style

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        self._layout(width)
        if y == 0:
            return self._header(width)
        row = int(self.scroll_offset.y) + y - 1
        if not self._rows:
            hint = textwrap.wrap(self.empty_hint, max(1, width))
            if 1 <= y <= len(hint):
                text = Segment(fit(hint[y - 1], width, "<"), self._style("muted"))
                return Strip([text], width).apply_style(self.rich_style)
            return Strip.blank(width, self.rich_style)
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        return self._row(row, width)

    def _header(self, width: int) -> Strip:
        style = self._style("header")
        parts = [" " * GUTTER]
        columns = self._plan.columns
        for i, col in enumerate(columns):
            title = col.title
            if col.sort is not None and col.sort == self._sort_column:
                title += fmt.DOWN if self._sort_desc else fmt.UP
            parts.append(fit(title, col.width, col.align))
            if i < len(columns) - 1:
                parts.append(" " * self._plan.gap)
        text = fit("".join(parts), width, "<")
        return Strip([Segment(text, style)], width).apply_style(self.rich_style)

    def _row(self, row: int, width: int) -> Strip:
        sym = self._rows[row]
        cells, stale = self._cells(sym, self._plan.keys())
        if self._grown(cells, width):
            cells, stale = self._cells(sym, self._plan.keys())
        columns = self._plan.columns
        plain = Style()
        gap = " " * self._plan.gap
        is_cursor = row == self._cursor
        segments = [Segment("›" if is_cursor else " ", plain)]
        for i, col in enumerate(columns):
            text, style = cells[col.key]
            if i:
                segments.append(Segment(gap, plain))
            segments.append(Segment(fit(text, col.width, col.align), style))
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), plain))
        if stale and not is_cursor:  # (dim on the cursor bar is unreadable; "stale" still says it)
            dim = self._style("stale")
            segments = [Segment(s.text, s.style + dim if s.style else dim) for s in segments]
        if is_cursor:
            cursor = self._style("cursor")
            segments = [Segment(s.text, s.style + cursor if s.style else cursor) for s in segments]
        # (a Strip told its length does not measure it: crop what is really there)
        strip = Strip(segments)
        return strip.crop(0, width).apply_style(self.rich_style)

    def _cells(self, sym: str, keys: Sequence[str]) -> tuple[dict[str, tuple[str, Style | None]], bool]:
        """The text and style of a row's cells, and whether its quote is stale."""
        session = self._session
        st = session.quotes.get(sym)
        inst = session.instruments.get(sym)
        decimals = inst.price_decimals if inst else 2
        stale = False
        age_text = fmt.DASH
        if st is not None and st.updated_ns is not None:
            now_ns = session.clock.now_ns()
            age_s = max(0.0, (now_ns - st.updated_ns) / NS_PER_SECOND)
            age_text = fmt.age(age_s)
            if age_s > session.config.ui.stale_after:
                market = session.market_of(sym)
                if session.clock.phase(market, now_ns) is SessionPhase.OPEN:
                    stale = True
                    age_text = f"stale {age_text}"
        up, down, muted = self._style("up"), self._style("down"), self._style("muted")
        cells = {
            key: self._cell(key, sym, st, inst, decimals, age_text, stale, up, down, muted) for key in keys
        }
        return cells, stale

    def _cell(
        self,
        key: str,
        sym: str,
        st: QuoteState | None,
        inst,
        decimals: int,
        age_text: str,
        stale: bool,
        up: Style,
        down: Style,
        muted: Style,
    ) -> tuple[str, Style | None]:
        if key == "symbol":
            return sym, self._style("symbol")
        if key == "name":
            return (inst.name if inst else ""), muted
        if key == "age":
            return age_text, muted if st is None else None
        if st is None:
            return fmt.DASH, muted
        if key == "last":
            if st.last is None:
                return fmt.DASH, muted
            text = f"{fmt.arrow(st.direction)} {fmt.price(st.last, decimals)}"
            if sym in self._flashing and not stale:
                return text, self._style("flash-up" if st.flash > 0 else "flash-down")
            return text, up if st.direction > 0 else down if st.direction < 0 else None
        if key == "change":
            ch = st.change
            return fmt.signed(ch, decimals), _sign_style(ch, up, down, muted)
        if key == "pct":
            pc = st.change_pct
            return fmt.signed_pct(pc), _sign_style(pc, up, down, muted)
        if key == "bid":
            return fmt.price(st.bid, decimals), None if st.bid is not None else muted
        if key == "ask":
            return fmt.price(st.ask, decimals), None if st.ask is not None else muted
        if key == "volume":
            return (fmt.volume(st.volume) if st.last is not None else fmt.DASH), None
        if key == "high":
            return fmt.price(st.high, decimals), None
        if key == "low":
            return fmt.price(st.low, decimals), None
        return "", None


def _sign_style(value: float | None, up: Style, down: Style, muted: Style) -> Style | None:
    if value is None:
        return muted
    return up if value > 0 else down if value < 0 else None
