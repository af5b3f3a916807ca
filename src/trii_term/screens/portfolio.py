"""Positions, the account and the order blotter: working orders first (cancel and replace from the
keyboard), then filled, canceled and the rest, filterable. Money is shown exact, with currency."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from trii_term.commands.order_preview import order_prices
from trii_term.commands.ports import workstation
from trii_term.domain.orders import OrderStatus
from trii_term.session import Session
from trii_term.widgets.keys_footer import KeysFooter
from trii_term.widgets.quote_columns import columns_that_fit
from trii_term.widgets.status_bar import MessageLine, StatusBar


def _signed(x: Decimal | None, places: int = 2, *, column: bool = True) -> Text:
    """▲+1.25 / ▼-0.40 / +0.00: in a column a zero gets a blank where the arrow goes, so the
    numbers line up; in a sentence it does not (no double space)."""
    if x is None:
        return Text("—")
    text = f"{x:+,.{places}f}"
    style = "green" if x > 0 else "red" if x < 0 else ""
    arrow = "▲" if x > 0 else "▼" if x < 0 else " " if column else ""
    return Text(f"{arrow}{text}", style=style, justify="right")


def _num(x: Decimal | None, places: int = 2, unit: str = "") -> Text:
    return Text("—" if x is None else f"{x:,.{places}f}{unit}", justify="right")


POSITION_COLUMNS = (
    "Symbol", "Qty", "Avg cost", "Last", "Mkt value", "Unreal P&L", "%", "Day P&L", "Realized", "Weight",
)  # fmt: skip
POSITIONS_GIVE_WAY = ("Weight", "Realized", "Day P&L", "%", "Avg cost", "Mkt value")
ORDER_COLUMNS = ("ID", "Symbol", "Side", "Qty", "Filled", "Type", "Prices", "TIF", "Status", "Avg fill")
ORDERS_GIVE_WAY = ("Avg fill", "TIF", "Filled", "Type", "Prices")  # (Prices is cut between words first)
STATUS_SHOWN = {OrderStatus.PARTIALLY_FILLED: "partial"}  # the blotter's word (JSON keeps the full one)


def fill_table(
    table: DataTable,
    headers: tuple[str, ...],
    rows: list[tuple[str, list[Text]]],
    give_way: tuple[str, ...],
    *,
    shrink: str | None = None,
) -> None:
    """Rows into a table whose columns give way (the least needed first) before any number is cut:
    each column is as wide as its widest cell, and those that do not fit the table are left out
    whole, never a digit of one shown. `shrink`: a column of words that may instead be cut
    between words, ending with `…` (the blotter's prices: the first stays whole)."""
    width = max(20, table.size.width - 1)
    needs = [(h, max([len(h), *(cells[i].cell_len for _key, cells in rows)])) for i, h in enumerate(headers)]
    shown = columns_that_fit(width, needs, give_way)
    if shrink is not None and shrink in headers:
        i = headers.index(shrink)
        rest = [(h, w) for h, w in needs if h != shrink]
        shortest = max([len(shrink), *(_first_word(cells[i].plain) for _k, cells in rows)])
        kept = columns_that_fit(width - shortest - 2, rest, give_way)  # the shrinkable first
        room = width - sum(w + 2 for h, w in rest if h in kept) - 2
        if room >= shortest:
            shown = [h for h in headers if h in kept or h == shrink]
            rows = [(k, [*c[:i], _cut(c[i], room), *c[i + 1 :]]) for k, c in rows]
    keep = table.cursor_row
    index = [headers.index(h) for h in shown]
    # each column as wide as its widest cell, given, not measured: a table measures rows it was
    # given when it next goes idle, and drew them until then at the width of each header
    # (`P0`, `438.`), on opening and again at each refill
    widths = [max([len(headers[i]), *(cells[i].cell_len for _key, cells in rows)]) for i in index]
    if [(str(c.label), c.width) for c in table.columns.values()] != list(zip(shown, widths, strict=True)):
        table.clear(columns=True)
        for header, width in zip(shown, widths, strict=True):
            table.add_column(header, width=width)
    else:
        table.clear()
    for key, cells in rows:
        table.add_row(*(cells[i] for i in index), key=key)
    if table.row_count:
        table.move_cursor(row=min(keep, table.row_count - 1))


def _first_word(text: str) -> int:
    """How wide the first price of `lmt 430.00 tp 450.00` is (kept whole when cut): `lmt 430.00 …`."""
    words = text.split()
    return len(" ".join(words[:2])) + 2 if len(words) > 2 else len(text)


def _cut(cell: Text, width: int) -> Text:
    if cell.cell_len <= width:
        return cell
    words = cell.plain.split()
    while words and len(" ".join(words)) + 2 > width:
        words.pop()
    return Text(" ".join(words) + " …", style=cell.style)


class PortfolioScreen(Screen[None]):
    # The row cursor as the watchlist draws it: a neutral bar the rows' own text (bold working
    # orders, dim finished ones, red and green P&L) stays legible on. (16 colours and NO_COLOR
    # draw it in reverse video: app.tcss.)
    DEFAULT_CSS = """
    PortfolioScreen DataTable:focus > .datatable--cursor {
        background: $primary 25%;
        color: $text;
        text-style: bold;
    }
    PortfolioScreen DataTable > .datatable--cursor { background: $panel; color: $text; text-style: none; }
    """
    AUTO_FOCUS = "#orders"
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="portfolio.close"),
        Binding("c,delete", "cancel_order", "Cancel order", id="portfolio.cancel"),
        Binding("r", "replace_order", "Replace", id="portfolio.replace"),
        Binding("f", "flatten", "Flatten", id="portfolio.flatten"),
        Binding("slash", "filter", "Filter", id="portfolio.filter"),
        Binding("tab", "app.focus_next", "Next table", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()  # no id: a screen closed and opened again at once would clash
        self.session = session
        self.message_line = MessageLine(id="portfolio-message")
        self._refresh_pending = False
        self._highlighted: str | None = None  # the order whose fills the message line shows

    def compose(self) -> ComposeResult:
        yield Static(id="account")
        yield DataTable(id="positions", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter orders: symbol, side, status, id…  (Esc clears)", id="filter")
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield self.message_line
        yield StatusBar(self.session, id="portfolio-status")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        if self.session.broker is not None:
            self.session.broker.on_update(self._on_order_event)
        self.set_interval(1.0, self.refresh_all)
        self.refresh_all()

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_all)  # the columns that fit change with the width

    def on_unmount(self) -> None:
        if self.session.broker is not None:
            self.session.broker.off_update(self._on_order_event)

    def _on_order_event(self, _event: object) -> None:
        """At once (the blotter shows a fill without waiting for the event loop), and once for
        a burst of events: an order's accept, fill and exits arrive together."""
        if not self._refresh_pending:
            self._refresh_pending = True
            self.refresh_all()
            self.call_later(self._refresh_once)

    def _refresh_once(self) -> None:
        self._refresh_pending = False
        self.refresh_all()  # with the burst's last state

    def refresh_all(self) -> None:
        broker = self.session.broker
        if broker is None:
            return
        acct = broker.account()
        positions = broker.positions()
        day = self.session.day_view() if self.session.desk is not None else None
        total = sum((abs(p.market_value) for p in positions), Decimal(0))
        ccy = acct.currency
        self.query_one("#account", Static).update(
            Text.assemble(
                ("Account ", "bold"),
                f"{broker.name} · equity {acct.equity:,.2f} {ccy} · cash {acct.cash:,.2f} · buying power "
                f"{acct.buying_power:,.2f} · realized today ",
                _signed(day.realized if day else None, column=False),
                " (total ",
                _signed(acct.realized, column=False),
                ")",
                " · unrealized ",
                _signed(acct.unrealized, column=False),
                f" · fees {acct.fees:,.2f}",
            )
        )
        rows = []
        for p in positions:
            pct = p.unrealized_pct
            weight = abs(p.market_value) / total * 100 if total else None
            cells = [
                Text(p.symbol, style="bold"),
                _num(p.qty, 0),
                _num(p.avg_cost),
                _num(p.last),
                _num(p.market_value),
                _signed(p.unrealized_pnl),
                _signed(pct, 2) if pct is not None else Text("—"),
                _signed(day.pnl.get(p.symbol)) if day else Text("—"),
                _signed(p.realized_pnl),
                _num(weight, 1, "%") if weight is not None else Text("—"),
            ]
            rows.append((p.symbol, cells))
        fill_table(self.query_one("#positions", DataTable), POSITION_COLUMNS, rows, POSITIONS_GIVE_WAY)
        self._fill_orders()

    def _fill_orders(self) -> None:
        broker = self.session.broker
        assert broker is not None
        orders = broker.orders()
        words = self.query_one("#filter", Input).value.lower().split()
        working = [o for o in orders if not o.status.done]
        rest = [o for o in reversed(orders) if o.status.done]
        table = self.query_one("#orders", DataTable)
        rows = []
        for o in working + rest:
            r = o.request
            row = [
                o.id,
                r.symbol,
                r.side.value,
                str(r.qty),
                str(o.filled_qty),
                r.type.value,
                order_prices(o),
                r.tif.value,
                STATUS_SHOWN.get(o.status, o.status.value),
                f"{o.avg_fill_price:,.2f}" if o.avg_fill_price is not None else "",
            ]
            if words and not all(any(w in c.lower() for c in row) for w in words):
                continue
            style = "bold" if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) else "dim"
            rows.append((o.id, [Text(c, style=style) for c in row]))
        fill_table(table, ORDER_COLUMNS, rows, ORDERS_GIVE_WAY, shrink="Prices")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted order's fills, in the message line — when the trader moves to another
        order (a refresh puts the cursor back on the same one: what a command said stays)."""
        if event.data_table.id != "orders" or event.row_key is None or self.session.broker is None:
            return
        oid = str(event.row_key.value)
        if oid == self._highlighted:
            return
        self._highlighted = oid
        fills = self.session.broker.fills_of(oid)
        if not fills:
            self.message_line.show(f"{oid}: no fills · c cancel · r replace")
            return
        parts = [f"{q} @ {p:,.2f} (commission {c:,.2f})" for q, p, c in fills]
        self.message_line.show(f"{oid} fills: " + ", ".join(parts))

    def _selected_order(self) -> str | None:
        table = self.query_one("#orders", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key is not None else None

    async def action_cancel_order(self) -> None:
        oid = self._selected_order()
        if oid is None:
            self.message_line.show("No order selected.", "warning")
            return
        result = await workstation(self.app).execute(f"order cancel {oid}", source="key")
        if result is not None and result.message:
            self.message_line.show(result.message, result.level)
        self.refresh_all()

    def action_replace_order(self) -> None:
        oid = self._selected_order()
        if oid is not None:
            workstation(self.app).prompt(f"order replace {oid} ", source="key")

    async def action_flatten(self) -> None:
        """Flatten the highlighted position (or the highlighted order's symbol): the confirm
        dialog shows the market order and the working orders it cancels first."""
        symbol = self._selected_symbol()
        if symbol is None:
            self.message_line.show("No position selected: move to one in the positions table.", "warning")
            return
        await workstation(self.app).execute(f"flatten {symbol}", source="key")

    def _selected_symbol(self) -> str | None:
        positions = self.query_one("#positions", DataTable)
        if positions.has_focus and positions.row_count:
            key = positions.coordinate_to_cell_key(positions.cursor_coordinate).row_key
            return str(key.value) if key is not None else None
        oid = self._selected_order()
        order = next((o for o in self.session.broker.orders() if o.id == oid), None) if oid else None
        return order.symbol if order is not None else None

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._fill_orders()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one("#orders", DataTable).focus()

    def action_close(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            return
        self.dismiss(None)
